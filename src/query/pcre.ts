/**
 * MongoDB regular expressions (PCRE2) as JavaScript regular expressions, exactly or not at all.
 *
 * mongod compiles `$regex` and `/…/` values with PCRE2 (10.42 in its source tree, since 6.1) in UTF
 * mode and without UCP, with the options i → CASELESS, m → MULTILINE, s → DOTALL, x → EXTENDED; `u`
 * is accepted and does nothing; any other option is an error (mongodb/mongo
 * src/mongo/util/pcre_util.cpp `flagsToOptions`; src/third_party/pcre2/build_posix/config.h:
 * PCRE2 10.42, NEWLINE_DEFAULT 2 = LF, \R matching any Unicode newline).
 *
 * A pattern is parsed here as PCRE2 reads it (pcre2pattern(3), cited per construct below as
 * [§ section]) and written out as a JavaScript pattern with the `u` flag (code points, as PCRE2's
 * UTF mode matches), where every construct whose meanings differ is spelt out: `.`, `^`, `$`, `\s`,
 * `\h`, `\v`, `\R`, POSIX classes, `\A`, `\z`, `\Z`. Constructs with no exact JavaScript
 * equivalent are refused by name (PcreError 'unsupported'); patterns PCRE2 itself rejects are
 * refused as such (PcreError 'invalid'), since mongod answers them with an error, not documents.
 *
 * Case-insensitive matching: PCRE2 folds letters (and, in UTF mode, non-ASCII letters through
 * Unicode case sets) but never the fixed classes `\w`, `\d`, POSIX classes or `\p{…}` [§ Case-
 * independent matching; § Generic character types; § Unicode character properties]. JavaScript's
 * `i` flag folds everything, classes included, and cannot be scoped (no `(?i:…)` in Node 20). So
 * caseless parts are written case by case where their letters are ASCII (`k` → `[Kk\u212A]`, as
 * PCRE2's caseless set for k holds the Kelvin sign), with no `i` flag; only a pattern that is
 * caseless throughout and names non-ASCII letters gets JavaScript's `i` flag, and then the
 * two characters JavaScript's folding adds to ASCII letter classes (U+017F ſ, U+212A K) make a
 * subject unanswerable (`foldHazard`: the caller refuses such a value rather than guess).
 */

export class PcreError extends Error {
  constructor(
    message: string,
    /** 'unsupported': valid PCRE2 with no exact JavaScript form; 'invalid': PCRE2 (and so mongod) rejects it. */
    readonly kind: 'unsupported' | 'invalid',
  ) {
    super(message);
    this.name = 'PcreError';
  }
}

export interface PcreTranslation {
  /** A JavaScript pattern for `new RegExp(source, flags)`. */
  source: string;
  /** `u`, or `iu` (see foldHazard). */
  flags: string;
  /** True when a subject holding U+017F or U+212A cannot be answered exactly (JavaScript's `i` flag). */
  foldHazard: boolean;
}

interface Flags {
  i: boolean;
  m: boolean;
  s: boolean;
  x: boolean;
}

/** A set of code points: ranges, and escapes JavaScript spells the same (\d, \p{L}, …). */
interface SetItem {
  ranges: Array<[number, number]>;
  /** A JavaScript class escape standing for itself (inside or outside brackets). */
  escape?: string;
  /** Holds ASCII letters PCRE2 does not fold (\w, [:alpha:] …): folded by a JavaScript `i` flag. */
  letters?: 'positive' | 'negative';
  /** A Unicode property: folded by JavaScript's `i` flag, never by PCRE2. */
  property?: boolean;
}

type GroupKind = 'plain' | 'ahead' | 'notAhead' | 'behind' | 'notBehind' | 'atomic';

type Node =
  | {t: 'char'; cp: number; i: boolean}
  | {t: 'set'; items: SetItem[]; negated: boolean; i: boolean}
  | {t: 'assert'; js: string; word?: boolean}
  | {t: 'newline'}
  | {t: 'group'; kind: GroupKind; body: Node[][]; capture?: number}
  | {t: 'backref'; n: number; i: boolean; text: string}
  | {t: 'quant'; body: Node; min: number; max: number; mode: 'greedy' | 'lazy' | 'possessive'};

const MAX_REPEAT = 65535;
const MAX_CP = 0x10ffff;
/** PCRE2 caseless sets that reach outside ASCII from an ASCII letter (its ucd caseless sets). */
const KELVIN = 0x212a;
const LONG_S = 0x17f;

const range = (lo: number, hi: number): [number, number] => [lo, hi];
const chars = (s: string): Array<[number, number]> => [...s].map((c) => range(c.codePointAt(0)!, c.codePointAt(0)!));

function complement(ranges: Array<[number, number]>): Array<[number, number]> {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: Array<[number, number]> = [];
  let next = 0;
  for (const [lo, hi] of sorted) {
    if (lo > next) out.push([next, lo - 1]);
    next = Math.max(next, hi + 1);
  }
  if (next <= MAX_CP) out.push([next, MAX_CP]);
  return out;
}

const DIGIT = [range(0x30, 0x39)];
const UPPER = [range(0x41, 0x5a)];
const LOWER = [range(0x61, 0x7a)];
const ALPHA = [...UPPER, ...LOWER];
const WORD = [...DIGIT, ...ALPHA, range(0x5f, 0x5f)];
/** PCRE2 \s without UCP: HT, LF, VT, FF, CR and space [§ Generic character types]. */
const SPACE = [range(0x09, 0x0d), range(0x20, 0x20)];
/** \h: horizontal white space, Unicode-wide in every mode [§ Generic character types]. */
const HSPACE = [range(0x09, 0x09), range(0x20, 0x20), range(0xa0, 0xa0), range(0x1680, 0x1680), range(0x180e, 0x180e), range(0x2000, 0x200a), range(0x202f, 0x202f), range(0x205f, 0x205f), range(0x3000, 0x3000)];
/** \v: vertical white space [§ Generic character types]. */
const VSPACE = [range(0x0a, 0x0d), range(0x85, 0x85), range(0x2028, 0x2029)];

/** POSIX classes, ASCII only without UCP [§ Posix character classes]; `letters` marks those JavaScript's `i` would fold. */
const POSIX: Record<string, {ranges: Array<[number, number]>; letters: boolean}> = {
  alnum: {ranges: [...DIGIT, ...ALPHA], letters: true},
  alpha: {ranges: ALPHA, letters: true},
  ascii: {ranges: [range(0, 0x7f)], letters: true},
  blank: {ranges: [range(0x09, 0x09), range(0x20, 0x20)], letters: false},
  cntrl: {ranges: [range(0, 0x1f), range(0x7f, 0x7f)], letters: false},
  digit: {ranges: DIGIT, letters: false},
  graph: {ranges: [range(0x21, 0x7e)], letters: true},
  lower: {ranges: LOWER, letters: true},
  print: {ranges: [range(0x20, 0x7e)], letters: true},
  punct: {ranges: [range(0x21, 0x2f), range(0x3a, 0x40), range(0x5b, 0x60), range(0x7b, 0x7e)], letters: false},
  space: {ranges: SPACE, letters: false},
  upper: {ranges: UPPER, letters: true},
  word: {ranges: WORD, letters: true},
  xdigit: {ranges: [...DIGIT, range(0x41, 0x46), range(0x61, 0x66)], letters: false},
};

/** General categories, which PCRE2 and JavaScript name alike [§ Unicode character properties]. */
const CATEGORIES = new Set([
  'C', 'Cc', 'Cf', 'Cn', 'Co', 'Cs',
  'L', 'Ll', 'Lm', 'Lo', 'Lt', 'Lu',
  'M', 'Mc', 'Me', 'Mn',
  'N', 'Nd', 'Nl', 'No',
  'P', 'Pc', 'Pd', 'Pe', 'Pf', 'Pi', 'Po', 'Ps',
  'S', 'Sc', 'Sk', 'Sm', 'So',
  'Z', 'Zl', 'Zp', 'Zs',
]);

/** Pattern white space the x option skips: ASCII, and in UTF mode NEL, LRM, RLM, LS, PS (pcre2api, PCRE2_EXTENDED). */
const EXTENDED_SPACE = new Set([0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20, 0x85, 0x200e, 0x200f, 0x2028, 0x2029]);

const isDigit = (cp: number | undefined): boolean => cp !== undefined && cp >= 0x30 && cp <= 0x39;
const isHex = (cp: number | undefined): boolean => cp !== undefined && /[0-9a-fA-F]/.test(String.fromCodePoint(cp));
const isAsciiLetter = (cp: number): boolean => (cp >= 0x41 && cp <= 0x5a) || (cp >= 0x61 && cp <= 0x7a);

/** A non-ASCII character with another case (its folding needs Unicode data: JavaScript's `i`). */
function hasOtherCase(cp: number): boolean {
  if (cp < 0x80) return false;
  const s = String.fromCodePoint(cp);
  return s.toLowerCase() !== s || s.toUpperCase() !== s;
}

function rangeHasOtherCase(lo: number, hi: number): boolean {
  const from = Math.max(lo, 0x80);
  if (from > hi) return false;
  if (hi - from > 0x20000) return true;
  for (let cp = from; cp <= hi; cp++) if (hasOtherCase(cp)) return true;
  return false;
}

class Parser {
  private pos = 0;
  /** Set when the pattern needs JavaScript's `i` (a caseless non-ASCII letter). */
  needsFold = false;
  /** A case-sensitive part that JavaScript's `i` would change. */
  caseSensitiveCased: string | null = null;
  /** Constructs JavaScript's `i` would fold where PCRE2 does not. */
  foldedClass = false;
  usedProperty: string | null = null;
  negatedLetters: string | null = null;
  groups = 0;
  private readonly names = new Map<string, number>();

  constructor(private readonly cps: number[]) {}

  private peek(offset = 0): number | undefined {
    return this.cps[this.pos + offset];
  }

  private at(s: string): boolean {
    for (let k = 0; k < s.length; k++) if (this.cps[this.pos + k] !== s.charCodeAt(k)) return false;
    return true;
  }

  private fail(what: string, kind: 'unsupported' | 'invalid' = 'unsupported'): never {
    throw new PcreError(what, kind);
  }

  private invalid(what: string): never {
    this.fail(`${what} (PCRE2 rejects the pattern, so mongod answers the query with an error)`, 'invalid');
  }

  private skipExtended(flags: Flags): void {
    if (!flags.x) return;
    for (;;) {
      const c = this.peek();
      if (c !== undefined && EXTENDED_SPACE.has(c)) this.pos++;
      else if (c === 0x23) {
        // `#` starts a comment that runs to the next newline (LF, mongod's newline convention).
        while (this.peek() !== undefined && this.peek() !== 0x0a) this.pos++;
      } else return;
    }
  }

  parse(flags: Flags): Node[][] {
    const body = this.alternation({...flags}, false);
    if (this.pos < this.cps.length) this.invalid('an unmatched closing parenthesis');
    return body;
  }

  /** Branches up to `)` (not consumed) or the end; option settings persist across `|` within the group [§ Internal option setting]. */
  private alternation(flags: Flags, inGroup: boolean): Node[][] {
    const branches: Node[][] = [[]];
    for (;;) {
      this.skipExtended(flags);
      const c = this.peek();
      if (c === undefined) {
        if (inGroup) this.invalid('a missing closing parenthesis');
        return branches;
      }
      if (c === 0x29) {
        if (!inGroup) this.invalid('an unmatched closing parenthesis');
        return branches;
      }
      if (c === 0x7c) {
        this.pos++;
        branches.push([]);
        continue;
      }
      const seq = branches[branches.length - 1]!;
      const atom = this.atom(flags);
      if (atom === null) continue;
      seq.push(this.quantified(atom, flags));
    }
  }

  private quantified(atom: Node, flags: Flags): Node {
    this.skipExtended(flags);
    const q = this.quantifier();
    if (q === null) return atom;
    if (atom.t === 'assert' || (atom.t === 'group' && atom.kind !== 'plain' && atom.kind !== 'atomic')) {
      this.fail('a quantifier on an assertion');
    }
    let mode: 'greedy' | 'lazy' | 'possessive' = 'greedy';
    if (this.peek() === 0x3f) {
      this.pos++;
      mode = 'lazy';
    } else if (this.peek() === 0x2b) {
      this.pos++;
      mode = 'possessive';
    }
    const node: Node = {t: 'quant', body: atom, min: q[0], max: q[1], mode};
    this.skipExtended(flags);
    if (this.quantifierAhead()) this.invalid('a quantifier following another quantifier');
    return node;
  }

  private quantifierAhead(): boolean {
    const c = this.peek();
    if (c === 0x2a || c === 0x2b || c === 0x3f) return true;
    if (c !== 0x7b) return false;
    const save = this.pos;
    const q = this.quantifier();
    this.pos = save;
    return q !== null;
  }

  /** `*`, `+`, `?`, `{n}`, `{n,}`, `{n,m}`; a `{` that starts none of these is a literal [§ Repetition]. */
  private quantifier(): [number, number] | null {
    const c = this.peek();
    if (c === 0x2a) return this.pos++, [0, Infinity];
    if (c === 0x2b) return this.pos++, [1, Infinity];
    if (c === 0x3f) return this.pos++, [0, 1];
    if (c !== 0x7b) return null;
    let k = this.pos + 1;
    const digits = (): string => {
      let s = '';
      while (isDigit(this.cps[k])) s += String.fromCodePoint(this.cps[k++]!);
      return s;
    };
    const lo = digits();
    if (lo === '') {
      // `{,m}` is a literal in PCRE2 10.42 and a quantifier from 10.43 on: the answer depends on mongod's version.
      if (this.cps[k] === 0x2c && isDigit(this.cps[k + 1])) this.fail('a `{,n}` quantifier (a literal in older PCRE2, a quantifier in newer)');
      return null;
    }
    let hi = lo;
    if (this.cps[k] === 0x2c) {
      k++;
      hi = digits();
    }
    if (this.cps[k] !== 0x7d) return null;
    this.pos = k + 1;
    const min = Number(lo);
    const max = hi === '' ? Infinity : Number(hi);
    if (min > MAX_REPEAT || (max !== Infinity && max > MAX_REPEAT)) this.invalid('a repeat count above 65535');
    if (max < min) this.invalid('a repeat range out of order');
    return [min, max];
  }

  private caseNode(cp: number, flags: Flags): Node {
    if (flags.i && hasOtherCase(cp)) this.needsFold = true;
    if (!flags.i && (isAsciiLetter(cp) || hasOtherCase(cp) || cp === KELVIN || cp === LONG_S)) this.caseSensitiveCased ??= String.fromCodePoint(cp);
    return {t: 'char', cp, i: flags.i};
  }

  private atom(flags: Flags): Node | null {
    const c = this.peek()!;
    this.pos++;
    switch (c) {
      case 0x28: // (
        return this.group(flags);
      case 0x5b: // [
        return this.charClass(flags);
      case 0x2e: // . : any character but the newline (LF) unless DOTALL [§ Full stop (period, dot) and \N]
        return flags.s ? {t: 'set', items: [{ranges: [range(0, MAX_CP)]}], negated: false, i: false} : {t: 'set', items: [{ranges: chars('\n')}], negated: true, i: false};
      case 0x5e: // ^ [§ Circumflex and dollar]: after internal newlines with MULTILINE, not after a final one
        return {t: 'assert', js: flags.m ? '(?:^|(?<=\\n)(?!$))' : '^'};
      case 0x24: // $: end, or before a final newline; with MULTILINE before any newline
        return {t: 'assert', js: flags.m ? '(?=\\n|$)' : '(?=\\n?$)'};
      case 0x5c: // backslash
        return this.escape(flags);
      case 0x2a:
      case 0x2b:
      case 0x3f:
        this.invalid('a quantifier that does not follow a repeatable item');
        break;
      case 0x7b: {
        this.pos--;
        if (this.quantifier() !== null) this.invalid('a quantifier that does not follow a repeatable item');
        this.pos++;
        return this.caseNode(c, flags);
      }
      default:
        return this.caseNode(c, flags);
    }
    return null;
  }

  private groupName(close: number): string {
    let name = '';
    while (this.peek() !== undefined && this.peek() !== close) name += String.fromCodePoint(this.cps[this.pos++]!);
    if (this.peek() !== close || !/^[A-Za-z_][A-Za-z0-9_]{0,31}$/.test(name)) this.invalid('a group name that is not valid');
    this.pos++;
    return name;
  }

  private group(outer: Flags): Node | null {
    const flags = {...outer};
    let capture: number | undefined;
    let kind: GroupKind = 'plain';
    if (this.peek() === 0x2a) this.fail(`the verb ${this.verbText()}`);
    if (this.peek() === 0x3f) {
      this.pos++;
      const c = this.peek();
      const kinds: Array<[string, GroupKind]> = [[':', 'plain'], ['=', 'ahead'], ['!', 'notAhead'], ['<=', 'behind'], ['<!', 'notBehind'], ['>', 'atomic']];
      const found = kinds.find(([text]) => this.at(text));
      if (found) {
        this.pos += found[0].length;
        kind = found[1];
      } else if (c === 0x23) {
        // (?# comment ) [§ Comments]
        while (this.peek() !== undefined && this.peek() !== 0x29) this.pos++;
        if (this.peek() === undefined) this.invalid('an unterminated (?# comment');
        this.pos++;
        return null;
      } else if (c === 0x3c || c === 0x27 || this.at('P<')) {
        // (?<name>…), (?'name'…), (?P<name>…): named capture [§ Named capture groups]
        if (c === 0x50) this.pos++;
        const close = this.peek() === 0x27 ? 0x27 : 0x3e;
        this.pos++;
        const name = this.groupName(close);
        // The same name twice needs (?J), which is refused: PCRE2 rejects it [§ Named capture groups].
        if (this.names.has(name)) this.invalid(`the group name ${name} used twice`);
        capture = ++this.groups;
        this.names.set(name, capture);
      } else if (c === 0x7c) this.fail('a branch reset group (?|…)');
      else if (c === 0x28) this.fail('a conditional group (?(…)…)');
      else if (c === 0x52 || isDigit(c) || c === 0x2b || (c === 0x2d && isDigit(this.peek(1))) || c === 0x26 || this.at('P>')) this.fail('recursion or a subroutine call');
      else if (this.at('P=')) {
        this.pos += 2;
        return this.namedBackref(this.groupName(0x29), flags, `(?P=…)`);
      }
      else if (c === 0x43) this.fail('a callout (?C…)');
      else {
        const scoped = this.optionSetting(flags);
        if (!scoped) {
          // (?i) and the like change the options of the rest of the enclosing group [§ Internal option setting].
          Object.assign(outer, flags);
          return null;
        }
      }
    } else capture = ++this.groups;
    const body = this.alternation(flags, true);
    this.pos++;
    return {t: 'group', kind, body, ...(capture === undefined ? {} : {capture})};
  }

  private namedBackref(name: string, flags: Flags, text: string): Node {
    const n = this.names.get(name);
    // A name defined later is a forward reference: refused below as a group not yet set.
    if (n === undefined) this.fail(`the backreference ${text} to a group not defined before it`);
    return this.backref(n, flags, text);
  }

  private backref(n: number, flags: Flags, text: string): Node {
    if (n < 1) this.invalid(`the backreference ${text}`);
    return {t: 'backref', n, i: flags.i, text};
  }

  /** \g forms and \k forms [§ Backreferences]. */
  private escapedBackref(letter: string, flags: Flags): Node {
    const open = this.peek();
    if (letter === 'k' || (open === 0x7b && !isDigit(this.peek(1)) && this.peek(1) !== 0x2d && this.peek(1) !== 0x2b)) {
      const close = open === 0x3c ? 0x3e : open === 0x27 ? 0x27 : open === 0x7b ? 0x7d : null;
      if (close === null) this.invalid(`\\${letter} not followed by a group name`);
      this.pos++;
      const name = this.groupName(close);
      return this.namedBackref(name, flags, `\\${letter}${String.fromCodePoint(open!)}${name}${String.fromCodePoint(close)}`);
    }
    const braced = open === 0x7b;
    if (braced) this.pos++;
    let sign = '';
    if (this.peek() === 0x2d || this.peek() === 0x2b) sign = String.fromCodePoint(this.cps[this.pos++]!);
    let digits = '';
    while (isDigit(this.peek())) digits += String.fromCodePoint(this.cps[this.pos++]!);
    if (braced) {
      if (this.peek() !== 0x7d) this.invalid('a malformed \\g{…}');
      this.pos++;
    }
    if (digits === '' || sign === '+') this.fail(`\\g${sign}${digits} (a subroutine call or malformed reference)`);
    const text = `\\g${braced ? `{${sign}${digits}}` : `${sign}${digits}`}`;
    // \g{-n}: the n-th group opened before this point.
    const n = sign === '-' ? this.groups + 1 - Number(digits) : Number(digits);
    return this.backref(n, flags, text);
  }

  private verbText(): string {
    let end = this.pos;
    while (end < this.cps.length && this.cps[end] !== 0x29) end++;
    return `(${String.fromCodePoint(...this.cps.slice(this.pos, end))})`;
  }

  /** `(?imsx-imsx)` or `(?imsx-imsx:`; true when it opens a group. Other letters (n, J, U, xx, ^) are refused. */
  private optionSetting(flags: Flags): boolean {
    const start = this.pos;
    let on = true;
    const seen = new Set<string>();
    for (;;) {
      const c = this.peek();
      if (c === undefined) this.invalid('an unterminated option setting');
      const ch = String.fromCodePoint(c);
      this.pos++;
      if (ch === ')' || ch === ':') return ch === ':';
      if (ch === '-' && on) {
        on = false;
        continue;
      }
      if (ch === 'i' || ch === 'm' || ch === 's' || ch === 'x') {
        if (ch === 'x' && seen.has('x') && on) this.fail('the option (?xx)');
        seen.add(ch);
        flags[ch] = on;
        continue;
      }
      if ('nJU^a'.includes(ch)) this.fail(`the inline option (?${String.fromCodePoint(...this.cps.slice(start, this.pos))}…`);
      this.invalid(`an unknown inline option "${ch}"`);
    }
  }

  private hex(maxDigits: number): number {
    let s = '';
    while (s.length < maxDigits && isHex(this.peek())) s += String.fromCodePoint(this.cps[this.pos++]!);
    return s === '' ? 0 : parseInt(s, 16);
  }

  private braced(what: string, digit: (cp: number | undefined) => boolean, radix: number): number {
    if (this.peek() !== 0x7b) this.invalid(`${what} without {`);
    this.pos++;
    let s = '';
    while (digit(this.peek())) s += String.fromCodePoint(this.cps[this.pos++]!);
    if (this.peek() !== 0x7d || s === '') this.invalid(`a malformed ${what}{…}`);
    this.pos++;
    const value = parseInt(s, radix);
    if (value > MAX_CP || (value >= 0xd800 && value <= 0xdfff)) this.invalid(`${what}{${s}}: not a Unicode scalar value`);
    return value;
  }

  /**
   * A character written as an escape, or null when the escape is something else. Shared by
   * classes and the rest of the pattern [§ Non-printing characters].
   */
  private escapedChar(c: number, inClass: boolean): number | null {
    switch (String.fromCodePoint(c)) {
      case 'a':
        return 0x07;
      case 'e':
        return 0x1b;
      case 'f':
        return 0x0c;
      case 'n':
        return 0x0a;
      case 'r':
        return 0x0d;
      case 't':
        return 0x09;
      case 'b':
        return inClass ? 0x08 : null;
      case 'c': {
        // \cx: x upper-cased, then bit 6 inverted; only printable ASCII may follow.
        const x = this.peek();
        if (x === undefined || x < 0x20 || x > 0x7e) this.invalid('\\c at the end of the pattern or before a non-printing character');
        this.pos++;
        const upper = x >= 0x61 && x <= 0x7a ? x - 0x20 : x;
        return upper ^ 0x40;
      }
      case 'x': {
        if (this.peek() === 0x7b) return this.braced('\\x', isHex, 16);
        return this.hex(2);
      }
      case 'o':
        return this.braced('\\o', (d) => d !== undefined && d >= 0x30 && d <= 0x37, 8);
      case '0': {
        // \0 and up to two more octal digits.
        let value = 0;
        for (let k = 0; k < 2 && this.peek() !== undefined && this.peek()! >= 0x30 && this.peek()! <= 0x37; k++) value = value * 8 + (this.cps[this.pos++]! - 0x30);
        return value;
      }
      default:
        return null;
    }
  }

  private unicodeProperty(negated: boolean): SetItem {
    let name: string;
    if (this.peek() === 0x7b) {
      this.pos++;
      name = '';
      while (this.peek() !== undefined && this.peek() !== 0x7d) name += String.fromCodePoint(this.cps[this.pos++]!);
      if (this.peek() !== 0x7d) this.invalid('a malformed \\p{…}');
      this.pos++;
    } else {
      const c = this.peek();
      if (c === undefined) this.invalid('\\p at the end of the pattern');
      name = String.fromCodePoint(c);
      this.pos++;
    }
    if (name.startsWith('^')) {
      negated = !negated;
      name = name.slice(1);
    }
    const p = negated ? 'P' : 'p';
    this.usedProperty ??= `\\${p}{${name}}`;
    if (name === 'Any') return {ranges: negated ? [] : [range(0, MAX_CP)], property: true};
    if (name === 'L&') {
      // Cased letters: Lu, Ll and Lt. Its complement has no single JavaScript escape to stand in a class.
      if (negated) this.fail('the Unicode property \\P{L&}');
      return {ranges: [], escape: '\\p{Lu}\\p{Ll}\\p{Lt}', property: true};
    }
    if (CATEGORIES.has(name)) return {ranges: [], escape: `\\${p}{${name}}`, property: true};
    // Scripts (PCRE2 10.40 on also match by Script_Extensions) and PCRE2's own Xan, Xsp, Xwd … differ by version or have no JavaScript name.
    return this.fail(`the Unicode property \\${p}{${name}}`);
  }

  /** A class escape usable inside and outside brackets, or null [§ Generic character types]. */
  private classEscape(c: number): SetItem | null {
    switch (String.fromCodePoint(c)) {
      case 'd':
        return {ranges: DIGIT};
      case 'D':
        return {ranges: complement(DIGIT)};
      case 's':
        return {ranges: SPACE};
      case 'S':
        return {ranges: complement(SPACE)};
      case 'w':
        this.foldedClass = true;
        return {ranges: WORD, letters: 'positive', escape: '\\w'};
      case 'W':
        this.foldedClass = true;
        return {ranges: complement(WORD), letters: 'negative', escape: '\\W'};
      case 'h':
        return {ranges: HSPACE};
      case 'H':
        return {ranges: complement(HSPACE)};
      case 'v':
        return {ranges: VSPACE};
      case 'V':
        return {ranges: complement(VSPACE)};
      case 'p':
        return this.unicodeProperty(false);
      case 'P':
        return this.unicodeProperty(true);
      default:
        return null;
    }
  }

  private escape(flags: Flags): Node | null {
    const c = this.peek();
    if (c === undefined) this.invalid('a backslash at the end of the pattern');
    this.pos++;
    const ch = String.fromCodePoint(c);
    const set = this.classEscape(c);
    if (set) return {t: 'set', items: [set], negated: false, i: false};
    switch (ch) {
      // Assertions [§ Simple assertions]. mongod matches from offset 0, so \G is \A.
      case 'A':
      case 'G':
        return {t: 'assert', js: '^'};
      case 'z':
        return {t: 'assert', js: '$'};
      case 'Z':
        return {t: 'assert', js: '(?=\\n?$)'};
      case 'b':
      case 'B':
        this.foldedClass = true;
        return {t: 'assert', js: `\\${ch}`, word: true};
      case 'N':
        if (this.peek() === 0x7b) this.fail('\\N{…}');
        return {t: 'set', items: [{ranges: chars('\n')}], negated: true, i: false};
      case 'R':
        return {t: 'newline'};
      case 'Q': {
        // \Q…\E: everything between is literal [§ Backslash].
        const nodes: Node[] = [];
        while (this.peek() !== undefined && !this.at('\\E')) nodes.push(this.caseNode(this.cps[this.pos++]!, flags));
        if (this.at('\\E')) this.pos += 2;
        if (nodes.length === 0) return null;
        // A quantifier after \Q…\E applies to its last character, as to any literal.
        const last = nodes.pop()!;
        return nodes.length === 0 ? last : {t: 'group', kind: 'plain', body: [[...nodes, this.quantified(last, flags)]]};
      }
      case 'E':
        return null;
      case 'K':
        this.fail('\\K (reset match start)');
        break;
      case 'X':
        this.fail('\\X (extended grapheme cluster)');
        break;
      case 'C':
        this.fail('\\C (one code unit)');
        break;
      case 'g':
      case 'k':
        return this.escapedBackref(ch, flags);
      default:
        break;
    }
    if (c >= 0x31 && c <= 0x39) {
      // \1-\9 always refer back; more digits do when that many groups come before [§ Backreferences].
      let digits = ch;
      while (isDigit(this.peek())) digits += String.fromCodePoint(this.cps[this.pos++]!);
      if (digits.length > 1 && Number(digits) > this.groups) this.fail(`the escape \\${digits} (an octal character or a forward backreference)`);
      return this.backref(Number(digits), flags, `\\${digits}`);
    }
    const value = this.escapedChar(c, false);
    if (value !== null) return this.caseNode(value, flags);
    if (/[A-Za-z0-9]/.test(ch)) this.invalid(`an unrecognised escape \\${ch}`);
    return this.caseNode(c, flags);
  }

  /** One class member after `[`: a character, an escape, a POSIX class. */
  private classAtom(): {cp: number} | {item: SetItem} | {posix: string} {
    if (this.at('[:') || this.at('[.') || this.at('[=')) {
      const kind = String.fromCodePoint(this.peek(1)!);
      const close = this.cps.indexOf(kind.codePointAt(0)!, this.pos + 2);
      if (close > 0 && this.cps[close + 1] === 0x5d) {
        const name = String.fromCodePoint(...this.cps.slice(this.pos + 2, close));
        if (kind !== ':') this.invalid(`the POSIX collating element [${kind}${name}${kind}]`);
        this.pos = close + 2;
        return {posix: name};
      }
    }
    const c = this.cps[this.pos++]!;
    if (c !== 0x5c) return {cp: c};
    const e = this.peek();
    if (e === undefined) this.invalid('a backslash at the end of the pattern');
    this.pos++;
    const set = this.classEscape(e);
    if (set) return {item: set};
    const ch = String.fromCodePoint(e);
    if (ch === 'Q' || ch === 'E') return {item: {ranges: []}};
    if (e >= 0x31 && e <= 0x37) {
      // In a class, \1 … \7 start octal numbers (up to three digits).
      let value = e - 0x30;
      for (let k = 0; k < 2 && this.peek() !== undefined && this.peek()! >= 0x30 && this.peek()! <= 0x37; k++) value = value * 8 + (this.cps[this.pos++]! - 0x30);
      return {cp: value};
    }
    const value = this.escapedChar(e, true);
    if (value !== null) return {cp: value};
    if (/[A-Za-z0-9]/.test(ch)) this.invalid(`an unrecognised escape \\${ch} in a class`);
    return {cp: e};
  }

  /** `[…]` [§ Square brackets and character classes]: a `]` first (after `^`) is a member. */
  private charClass(flags: Flags): Node {
    const items: SetItem[] = [];
    let negated = false;
    if (this.peek() === 0x5e) {
      this.pos++;
      negated = true;
    }
    let first = true;
    for (;;) {
      const c = this.peek();
      if (c === undefined) this.invalid('a missing terminating ] for a character class');
      if (c === 0x5d && !first) {
        this.pos++;
        break;
      }
      first = false;
      if (this.at('\\Q')) {
        this.pos += 2;
        while (this.peek() !== undefined && !this.at('\\E')) {
          const cp = this.cps[this.pos++]!;
          items.push({ranges: [range(cp, cp)]});
        }
        if (this.at('\\E')) this.pos += 2;
        continue;
      }
      const a = this.classAtom();
      if ('posix' in a) {
        let name = a.posix;
        let inverted = false;
        if (name.startsWith('^')) {
          inverted = true;
          name = name.slice(1);
        }
        const def = POSIX[name];
        if (!def) this.invalid(`an unknown POSIX class [:${a.posix}:]`);
        // Caseless [:lower:] and [:upper:] are [:alpha:] (pcre2_compile.c; as Perl).
        const ranges = flags.i && (name === 'lower' || name === 'upper') ? ALPHA : def.ranges;
        if (def.letters) this.foldedClass = true;
        if (def.letters && inverted) this.negatedLetters ??= `[:^${name}:]`;
        items.push({ranges: inverted ? complement(ranges) : ranges, ...(def.letters ? {letters: inverted ? 'negative' : 'positive'} : {})});
        this.noHyphenAfterClass();
        continue;
      }
      if ('item' in a) {
        items.push(a.item);
        this.noHyphenAfterClass();
        continue;
      }
      // A range a-b, unless `-` ends the class or the next member is not a character.
      if (this.peek() === 0x2d && this.peek(1) !== 0x5d && this.peek(1) !== undefined) {
        const save = this.pos;
        this.pos++;
        const b = this.classAtom();
        if ('cp' in b) {
          if (b.cp < a.cp) this.invalid('a range out of order in a character class');
          items.push({ranges: [range(a.cp, b.cp)]});
          this.noteCased(a.cp, b.cp, flags);
          continue;
        }
        if ('posix' in b || ('item' in b && (b.item.ranges.length > 0 || b.item.escape))) this.invalid('a range ending in a class escape');
        this.pos = save;
      }
      items.push({ranges: [range(a.cp, a.cp)]});
      this.noteCased(a.cp, a.cp, flags);
    }
    return {t: 'set', items, negated, i: flags.i};
  }

  /** A hyphen after a class escape or POSIX class, not closing the class, is an error in PCRE2 (Perl only warns) [§ Square brackets]. */
  private noHyphenAfterClass(): void {
    if (this.peek() === 0x2d && this.peek(1) !== 0x5d && this.peek(1) !== undefined) this.invalid('a hyphen after a class escape or POSIX class in a character class');
  }

  private noteCased(lo: number, hi: number, flags: Flags): void {
    const nonAscii = rangeHasOtherCase(lo, hi) || (lo <= KELVIN && KELVIN <= hi) || (lo <= LONG_S && LONG_S <= hi);
    if (flags.i && nonAscii) this.needsFold = true;
    const ascii = lo <= 0x7a && hi >= 0x41 && [...ALPHA].some(([a, b]) => lo <= b && hi >= a);
    if (!flags.i && (ascii || nonAscii)) this.caseSensitiveCased ??= `[${String.fromCodePoint(lo)}-${String.fromCodePoint(hi)}]`;
  }
}

// ---------------------------------------------------------------------------------------------
// Writing the JavaScript pattern.

function cpText(cp: number): string {
  const ch = String.fromCodePoint(cp);
  return /[A-Za-z0-9_ ]/.test(ch) ? ch : `\\u{${cp.toString(16)}}`;
}

/** ASCII letters of [lo, hi] in their other case, and the non-ASCII members of their caseless sets. */
function otherCases(lo: number, hi: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  const a = Math.max(lo, 0x41);
  const b = Math.min(hi, 0x5a);
  if (a <= b) out.push([a + 0x20, b + 0x20]);
  const c = Math.max(lo, 0x61);
  const d = Math.min(hi, 0x7a);
  if (c <= d) out.push([c - 0x20, d - 0x20]);
  const has = (x: number) => (lo <= x && x <= hi) || (lo <= x + 0x20 && x + 0x20 <= hi);
  // PCRE2's caseless sets {K, k, U+212A} and {S, s, U+017F}.
  if (has(0x4b)) out.push([KELVIN, KELVIN]);
  if (has(0x53)) out.push([LONG_S, LONG_S]);
  if (lo <= KELVIN && KELVIN <= hi) out.push([0x4b, 0x4b], [0x6b, 0x6b]);
  if (lo <= LONG_S && LONG_S <= hi) out.push([0x53, 0x53], [0x73, 0x73]);
  return out;
}

class Writer {
  captures = 0;
  /** PCRE2 group number → JavaScript group number (helper groups of atomic forms shift them). */
  private readonly index = new Map<number, number>();
  constructor(private readonly fold: boolean) {}

  private rangeText([lo, hi]: [number, number]): string {
    return lo === hi ? cpText(lo) : `${cpText(lo)}-${cpText(hi)}`;
  }

  private setText(node: Extract<Node, {t: 'set'}>): string {
    const parts: string[] = [];
    for (const item of node.items) {
      // Under JavaScript's `i` the escape folds as the ranges would; spelt as ranges otherwise, so nothing depends on JavaScript's \w.
      if (item.escape && (this.fold || item.property)) parts.push(item.escape);
      else {
        for (const r of item.ranges) {
          parts.push(this.rangeText(r));
          // Letters of ranges typed in the pattern fold when caseless; classes (\w, [:alpha:]) never do.
          if (node.i && !this.fold && !item.letters && !item.escape) for (const o of otherCases(r[0], r[1])) parts.push(this.rangeText(o));
        }
      }
    }
    if (parts.length === 0) return node.negated ? '[\\s\\S]' : '[]';
    return `[${node.negated ? '^' : ''}${parts.join('')}]`;
  }

  node(n: Node): string {
    switch (n.t) {
      case 'char': {
        if (n.i && !this.fold) {
          const others = otherCases(n.cp, n.cp);
          if (others.length > 0) return `[${cpText(n.cp)}${others.map((o) => this.rangeText(o)).join('')}]`;
        }
        return cpText(n.cp);
      }
      case 'set':
        return this.setText(n);
      case 'assert':
        return n.js;
      case 'newline': {
        // \R is atomic: (?>\r\n|\n|\x0b|\f|\r|\x85|\x{2028}|\x{2029}) [§ Newline sequences].
        const k = ++this.captures;
        return `(?=(\\r\\n|[\\n\\v\\f\\r\\u{85}\\u{2028}\\u{2029}]))(?:\\${k})`;
      }
      case 'group': {
        if (n.kind === 'atomic') {
          // (?>X) is (?=(X))\k exactly: a lookahead is atomic, and \k takes what it matched [§ Atomic grouping].
          const k = ++this.captures;
          return `(?=(${this.alternation(n.body)}))(?:\\${k})`;
        }
        if (n.capture !== undefined) {
          this.index.set(n.capture, ++this.captures);
          return `(${this.alternation(n.body)})`;
        }
        const open = {plain: '(?:', ahead: '(?=', notAhead: '(?!', behind: '(?<=', notBehind: '(?<!'}[n.kind];
        return `${open}${this.alternation(n.body)})`;
      }
      case 'backref':
        // Grouped, so that a digit after it is not read as part of the number.
        return `(?:\\${this.index.get(n.n)!})`;
      case 'quant': {
        const q = n.min === 0 && n.max === Infinity ? '*' : n.min === 1 && n.max === Infinity ? '+' : n.min === 0 && n.max === 1 ? '?' : `{${n.min},${n.max === Infinity ? '' : n.max}}`;
        if (n.mode === 'possessive') {
          // X*+ is (?>X*) [§ Atomic grouping and possessive quantifiers].
          const k = ++this.captures;
          return `(?=(${this.atomText(n.body)}${q}))(?:\\${k})`;
        }
        return `${this.atomText(n.body)}${q}${n.mode === 'lazy' ? '?' : ''}`;
      }
    }
  }

  private atomText(n: Node): string {
    const text = this.node(n);
    return n.t === 'char' || n.t === 'set' || n.t === 'group' ? text : `(?:${text})`;
  }

  alternation(branches: Node[][]): string {
    return branches.map((seq) => seq.map((n) => this.node(n)).join('')).join('|');
  }
}

// ---------------------------------------------------------------------------------------------
// Checks on the tree.

/** Whether a node can match the empty string. */
function nullable(n: Node): boolean {
  switch (n.t) {
    case 'char':
    case 'set':
    case 'newline':
      return false;
    case 'assert':
    case 'backref':
      return true;
    case 'group':
      return n.kind !== 'plain' && n.kind !== 'atomic' ? true : n.body.some((seq) => seq.every(nullable));
    case 'quant':
      return n.min === 0 || nullable(n.body);
  }
}

/**
 * PCRE2 ends a repetition when an iteration matches the empty string; JavaScript rejects that
 * iteration and backtracks into it. Both reach the same matches, but not in the same order, which
 * an atomic group (taking the first) makes visible: such a repetition inside one is refused.
 */
function checkAtomic(n: Node, inAtomic: boolean, inBehind: boolean): void {
  switch (n.t) {
    case 'group': {
      const atomic = inAtomic || n.kind === 'atomic';
      if (n.kind === 'atomic' && inBehind) throw new PcreError('an atomic group inside a lookbehind', 'unsupported');
      const behind = inBehind || n.kind === 'behind' || n.kind === 'notBehind';
      for (const seq of n.body) for (const m of seq) checkAtomic(m, atomic, behind);
      return;
    }
    case 'quant': {
      const atomic = inAtomic || n.mode === 'possessive';
      if (n.mode === 'possessive' && inBehind) throw new PcreError('a possessive quantifier inside a lookbehind', 'unsupported');
      if (atomic && n.max > 1 && nullable(n.body)) throw new PcreError('an atomic group or possessive quantifier over a repetition that can match the empty string', 'unsupported');
      checkAtomic(n.body, atomic, inBehind);
      return;
    }
    case 'newline':
      if (inBehind) throw new PcreError('\\R inside a lookbehind', 'invalid');
      return;
    default:
      return;
  }
}

/** Fixed length of a node, or null [§ Lookbehind assertions: each top-level branch of fixed length]. */
function fixedLength(n: Node): number | null {
  switch (n.t) {
    case 'char':
    case 'set':
      return 1;
    case 'assert':
      return 0;
    case 'newline':
    case 'backref':
      return null;
    case 'group': {
      if (n.kind !== 'plain' && n.kind !== 'atomic') return 0;
      const lengths = n.body.map(seqLength);
      if (lengths.some((l) => l === null) || new Set(lengths).size !== 1) return null;
      return lengths[0]!;
    }
    case 'quant': {
      if (n.min !== n.max) return null;
      const l = fixedLength(n.body);
      return l === null ? null : l * n.min;
    }
  }
}

function seqLength(seq: Node[]): number | null {
  let total = 0;
  for (const n of seq) {
    const l = fixedLength(n);
    if (l === null) return null;
    total += l;
  }
  return total;
}

function checkLookbehinds(n: Node): void {
  if (n.t === 'group') {
    if ((n.kind === 'behind' || n.kind === 'notBehind') && n.body.some((seq) => seqLength(seq) === null)) {
      throw new PcreError('a lookbehind that is not of fixed length (PCRE2 rejects the pattern, so mongod answers the query with an error)', 'invalid');
    }
    for (const seq of n.body) for (const m of seq) checkLookbehinds(m);
  } else if (n.t === 'quant') checkLookbehinds(n.body);
}

/**
 * Groups certainly set after `n`, given those set before; refuses a backreference to a group that
 * might not be. PCRE2 fails a backreference to a group that did not take part; JavaScript matches
 * it as empty [§ Backreferences]. The two agree where the group has surely matched before the
 * reference: groups set on every branch, under no quantifier that allows zero, outside lookarounds.
 * A JavaScript quantifier also clears its groups at each iteration; a group set on every path
 * through the body is set again each time, so both keep the last iteration's text.
 */
function checkBackrefs(n: Node, set: ReadonlySet<number>, inBehind: boolean, fold: boolean): ReadonlySet<number> {
  switch (n.t) {
    case 'backref':
      if (inBehind) throw new PcreError(`the backreference ${n.text} inside a lookbehind`, 'unsupported');
      // JavaScript compares a backreference caselessly exactly when its `i` flag is on, for the whole pattern.
      if (n.i !== fold) throw new PcreError(`the ${n.i ? 'case-insensitive' : 'case-sensitive'} backreference ${n.text} in a pattern that is not ${n.i ? 'case-insensitive' : 'case-sensitive'} throughout (with non-ASCII letters)`, 'unsupported');
      if (!set.has(n.n)) throw new PcreError(`the backreference ${n.text} to a group that may not have taken part (JavaScript matches it as empty, PCRE2 fails)`, 'unsupported');
      return set;
    case 'group': {
      const behind = inBehind || n.kind === 'behind' || n.kind === 'notBehind';
      const results = n.body.map((seq) => seq.reduce<ReadonlySet<number>>((acc, m) => checkBackrefs(m, acc, behind, fold), set));
      if (n.kind !== 'plain' && n.kind !== 'atomic') return set;
      const after = new Set([...results[0]!].filter((g) => results.every((r) => r.has(g))));
      if (n.capture !== undefined) after.add(n.capture);
      return after;
    }
    case 'quant': {
      const after = checkBackrefs(n.body, set, inBehind, fold);
      return n.min >= 1 ? after : set;
    }
    default:
      return set;
  }
}

/**
 * The exact JavaScript form of a MongoDB regular expression (pattern and options as stored in
 * BSON), or a PcreError naming what has none.
 */
export function translatePcre(pattern: string, options: string): PcreTranslation {
  const flags: Flags = {i: false, m: false, s: false, x: false};
  for (const o of options) {
    if (o === 'i' || o === 'm' || o === 's' || o === 'x') flags[o] = true;
    else if (o !== 'u') throw new PcreError(`the option "${o}" (mongod accepts only i, m, s, x and u)`, 'invalid');
  }
  if (pattern.includes('\u0000')) throw new PcreError('a NUL character in the pattern', 'invalid');
  const cps = [...pattern].map((c) => c.codePointAt(0)!);
  if (cps[0] === 0x28 && cps[1] === 0x2a) {
    // Start-of-pattern settings such as (*UCP), (*CRLF), (*LIMIT_MATCH=…) change what the rest means.
    const end = pattern.indexOf(')');
    throw new PcreError(`the setting ${end > 0 ? pattern.slice(0, end + 1) : '(*…'} at the start of the pattern`, 'unsupported');
  }
  const parser = new Parser(cps);
  const tree = parser.parse(flags);
  const root: Node = {t: 'group', kind: 'plain', body: tree};
  checkLookbehinds(root);
  checkAtomic(root, false, false);
  const fold = parser.needsFold;
  if (fold) {
    if (parser.caseSensitiveCased !== null) {
      throw new PcreError(`case-insensitive matching of non-ASCII letters in only part of the pattern (${parser.caseSensitiveCased} is case-sensitive)`, 'unsupported');
    }
    if (parser.usedProperty !== null) throw new PcreError(`the Unicode property ${parser.usedProperty} with case-insensitive matching of non-ASCII letters`, 'unsupported');
    if (parser.negatedLetters !== null) throw new PcreError(`the class ${parser.negatedLetters} with case-insensitive matching of non-ASCII letters`, 'unsupported');
  }
  checkBackrefs(root, new Set(), false, fold);
  const writer = new Writer(fold);
  const source = writer.alternation(tree);
  return {source, flags: fold ? 'iu' : 'u', foldHazard: fold && parser.foldedClass};
}

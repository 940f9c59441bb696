/**
 * PCRE2 patterns as the stream engine runs them, against what PCRE2's own documentation says they
 * match. mongod runs `$regex` with PCRE2 10.42 in UTF mode without UCP, newline LF (mongodb/mongo
 * src/mongo/util/pcre_util.cpp, src/third_party/pcre2/build_posix/config.h). Every expected result
 * below is read from pcre2pattern(3) / pcre2unicode(3) of PCRE2 10.42 (section named per row), not
 * from this engine. A construct with no exact JavaScript form is expected to be refused.
 */
import assert from 'node:assert/strict';
import {describe, it} from 'node:test';

import {BSON, BSONRegExp} from 'bson';
import fc from 'fast-check';

import {GravityError} from '../../src/errors.js';
import {compileQuery} from '../../src/query/compile.js';
import {parseQuery} from '../../src/query/parse.js';
import {PcreError, translatePcre} from '../../src/query/pcre.js';

interface Row {
  pattern: string;
  options?: string;
  subject: string;
  /** What PCRE2 answers, per the documentation section `doc`. */
  pcre: boolean;
  doc: string;
}

const P = 'pcre2pattern(3)';
const ROWS: Row[] = [
  // Circumflex and dollar
  {pattern: 'abc$', subject: 'abc\n', pcre: true, doc: `${P} CIRCUMFLEX AND DOLLAR: $ matches before a newline at the end of the string`},
  {pattern: 'abc$', subject: 'abc\nx', pcre: false, doc: `${P} CIRCUMFLEX AND DOLLAR: only a final newline`},
  {pattern: 'abc$', subject: 'abc\n\n', pcre: false, doc: `${P} CIRCUMFLEX AND DOLLAR: only one final newline`},
  {pattern: '^abc$', options: 'm', subject: 'def\nabc', pcre: true, doc: `${P} CIRCUMFLEX AND DOLLAR: /^abc$/ matches "def\\nabc" in multiline mode`},
  {pattern: '^abc$', subject: 'def\nabc', pcre: false, doc: `${P} CIRCUMFLEX AND DOLLAR: "but not otherwise"`},
  {pattern: 'a$', options: 'm', subject: 'a\nb', pcre: true, doc: `${P} CIRCUMFLEX AND DOLLAR: with MULTILINE, $ matches before any newline`},
  {pattern: '\\n^', options: 'm', subject: 'a\n', pcre: false, doc: `${P} CIRCUMFLEX AND DOLLAR: ^ does not match after a newline that ends the string`},
  {pattern: '\\n^', options: 'm', subject: 'a\nb', pcre: true, doc: `${P} CIRCUMFLEX AND DOLLAR: ^ matches after internal newlines`},
  {pattern: '^a', options: 'm', subject: 'x\ra', pcre: false, doc: `${P} CIRCUMFLEX AND DOLLAR with newline LF (mongod's NEWLINE_DEFAULT 2): CR is not a newline`},
  // Simple assertions
  {pattern: '\\Aabc\\z', subject: 'abc', pcre: true, doc: `${P} SIMPLE ASSERTIONS: \\A start, \\z end of subject`},
  {pattern: 'abc\\z', subject: 'abc\n', pcre: false, doc: `${P} SIMPLE ASSERTIONS: \\z matches only at the end`},
  {pattern: 'abc\\Z', subject: 'abc\n', pcre: true, doc: `${P} SIMPLE ASSERTIONS: \\Z matches before a newline at the end`},
  {pattern: '\\Aabc', options: 'm', subject: 'x\nabc', pcre: false, doc: `${P} SIMPLE ASSERTIONS: \\A is never affected by MULTILINE`},
  {pattern: '\\bcat\\b', subject: 'a cat.', pcre: true, doc: `${P} SIMPLE ASSERTIONS: word boundary`},
  {pattern: '\\bcat', subject: 'écat', pcre: true, doc: `${P} GENERIC CHARACTER TYPES: é is not a word character without UCP, so a boundary lies before c`},
  // Full stop (period, dot) and \N
  {pattern: 'a.c', subject: 'a\nc', pcre: false, doc: `${P} FULL STOP: dot does not match the newline (LF)`},
  {pattern: 'a.c', subject: 'a\rc', pcre: true, doc: `${P} FULL STOP: with a one-character newline (LF), dot matches every other character, CR too`},
  {pattern: 'a.c', subject: 'a\u2028c', pcre: true, doc: `${P} FULL STOP: U+2028 is not the newline (LF)`},
  {pattern: 'a.c', options: 's', subject: 'a\nc', pcre: true, doc: `${P} FULL STOP: DOTALL makes dot match newline`},
  {pattern: '^.$', subject: '😀', pcre: true, doc: `${P} FULL STOP: in UTF mode a dot matches one character, however many code units`},
  {pattern: 'a\\Nc', options: 's', subject: 'a\nc', pcre: false, doc: `${P} FULL STOP AND \\N: \\N is not affected by DOTALL`},
  // Generic character types
  {pattern: '\\s', subject: '\u000b', pcre: true, doc: `${P} GENERIC CHARACTER TYPES: the default \\s characters are HT, LF, VT, FF, CR and space`},
  {pattern: '\\s', subject: '\u00a0', pcre: false, doc: `${P} GENERIC CHARACTER TYPES: code points above 127 never match \\s without UCP`},
  {pattern: '\\s', subject: '\u2003', pcre: false, doc: `${P} GENERIC CHARACTER TYPES: code points above 127 never match \\s without UCP`},
  {pattern: '^\\S$', subject: '\u00a0', pcre: true, doc: `${P} GENERIC CHARACTER TYPES: and always match \\S`},
  {pattern: '^\\w+$', subject: 'straße', pcre: false, doc: `${P} GENERIC CHARACTER TYPES: ß is above 127, never \\w`},
  {pattern: '^\\W$', subject: 'é', pcre: true, doc: `${P} GENERIC CHARACTER TYPES: above 127 always matches \\W`},
  {pattern: '\\d', subject: '\u0663', pcre: false, doc: `${P} GENERIC CHARACTER TYPES: ARABIC-INDIC DIGIT THREE is not \\d without UCP`},
  {pattern: '^\\h$', subject: '\u3000', pcre: true, doc: `${P} GENERIC CHARACTER TYPES: U+3000 IDEOGRAPHIC SPACE is horizontal space`},
  {pattern: '^\\h$', subject: '\u00a0', pcre: true, doc: `${P} GENERIC CHARACTER TYPES: U+00A0 is horizontal space (\\h is Unicode in every mode)`},
  {pattern: '^\\v$', subject: '\u2029', pcre: true, doc: `${P} GENERIC CHARACTER TYPES: U+2029 PARAGRAPH SEPARATOR is vertical space`},
  {pattern: '^\\v$', subject: '\t', pcre: false, doc: `${P} GENERIC CHARACTER TYPES: tab is not vertical space`},
  {pattern: '^\\H$', subject: 'a', pcre: true, doc: `${P} GENERIC CHARACTER TYPES: \\H is any character that is not horizontal space`},
  // Newline sequences
  {pattern: '^\\R$', subject: '\r\n', pcre: true, doc: `${P} NEWLINE SEQUENCES: \\R matches CRLF`},
  {pattern: '^\\R$', subject: '\u0085', pcre: true, doc: `${P} NEWLINE SEQUENCES: \\R matches NEL`},
  {pattern: '^\\R\\n$', subject: '\r\n', pcre: false, doc: `${P} NEWLINE SEQUENCES: \\R is (?>\\r\\n|…): atomic, CRLF is not split`},
  // Posix character classes
  {pattern: '^[[:alpha:]]+$', subject: 'Warhol', pcre: true, doc: `${P} POSIX CHARACTER CLASSES: [:alpha:] letters`},
  {pattern: '^[[:alpha:]]+$', subject: 'Émile', pcre: false, doc: `${P} POSIX CHARACTER CLASSES: above 127 no POSIX class matches without UCP`},
  {pattern: '^[01[:alpha:]%]$', subject: '%', pcre: true, doc: `${P} POSIX CHARACTER CLASSES: [01[:alpha:]%] matches "0", "1", any alphabetic character, or "%"`},
  {pattern: '^[01[:alpha:]%]$', subject: '2', pcre: false, doc: `${P} POSIX CHARACTER CLASSES: and nothing else`},
  {pattern: '^[12[:^digit:]]$', subject: '3', pcre: false, doc: `${P} POSIX CHARACTER CLASSES: [12[:^digit:]] matches "1", "2", or any non-digit`},
  {pattern: '^[12[:^digit:]]$', subject: 'x', pcre: true, doc: `${P} POSIX CHARACTER CLASSES: a non-digit`},
  {pattern: '^[[:space:]]$', subject: '\u000b', pcre: true, doc: `${P} POSIX CHARACTER CLASSES: [:space:] is HT, LF, VT, FF, CR and space`},
  {pattern: '^[[:punct:]]$', subject: '~', pcre: true, doc: `${P} POSIX CHARACTER CLASSES: [:punct:] printing characters, excluding letters, digits and space`},
  {pattern: '^[[:xdigit:]]+$', subject: 'c0ffee', pcre: true, doc: `${P} POSIX CHARACTER CLASSES: [:xdigit:] hexadecimal digits`},
  {pattern: '^[[:lower:]]+$', options: 'i', subject: 'ABC', pcre: true, doc: 'PCRE2 10.42 source, pcre2_compile.c compile_class: "If matching is caseless, upper and lower are converted to alpha" (pcre2pattern does not say it)'},
  // Square brackets and character classes
  {pattern: '^[]a]$', subject: ']', pcre: true, doc: `${P} SQUARE BRACKETS: a ] first in the class is a member`},
  {pattern: '^[^]a]$', subject: 'b', pcre: true, doc: `${P} SQUARE BRACKETS: also after an initial circumflex`},
  {pattern: '^[aeiou]$', options: 'i', subject: 'A', pcre: true, doc: `${P} SQUARE BRACKETS: a caseless [aeiou] matches "A" as well as "a"`},
  {pattern: '^[^aeiou]$', options: 'i', subject: 'A', pcre: false, doc: `${P} SQUARE BRACKETS: a caseless [^aeiou] does not match "A"`},
  {pattern: '^[W-c]+$', subject: '[\\]^_`', pcre: true, doc: `${P} SQUARE BRACKETS: a range in code point order`},
  {pattern: '^[b-d-z]+$', subject: 'c-z', pcre: true, doc: `${P} SQUARE BRACKETS: [b-d-z] matches b to d, a hyphen, or z`},
  {pattern: '^[b-d-z]$', subject: 'e', pcre: false, doc: `${P} SQUARE BRACKETS: [b-d-z]`},
  {pattern: '^[\\d-]+$', subject: '1-2', pcre: true, doc: `${P} SQUARE BRACKETS: a hyphen last in the class is literal`},
  // Internal option setting
  {pattern: '(a(?i)b)c', subject: 'aBc', pcre: true, doc: `${P} INTERNAL OPTION SETTING: (a(?i)b)c matches abc and aBc`},
  {pattern: '(a(?i)b)c', subject: 'aBC', pcre: false, doc: `${P} INTERNAL OPTION SETTING: and no other strings`},
  {pattern: '(a(?i)b)c', subject: 'ABc', pcre: false, doc: `${P} INTERNAL OPTION SETTING: and no other strings`},
  {pattern: '(a(?i)b|c)', subject: 'C', pcre: true, doc: `${P} INTERNAL OPTION SETTING: (a(?i)b|c) matches "ab", "aB", "c", and "C"`},
  {pattern: '(?i)warhol', subject: 'WARHOL', pcre: true, doc: `${P} INTERNAL OPTION SETTING: (?i) at the start sets caseless for the whole pattern`},
  {pattern: '^(?i:saturday|sunday)$', subject: 'SUNDAY', pcre: true, doc: `${P} NON-CAPTURING GROUPS: (?i:saturday|sunday)`},
  {pattern: '^(?s:a.)b.', subject: 'a\nb\n', pcre: false, doc: `${P} INTERNAL OPTION SETTING: a scoped s ends with its group`},
  {pattern: '^(?s:a.)b.', subject: 'a\nbc', pcre: true, doc: `${P} INTERNAL OPTION SETTING: a scoped s applies inside its group`},
  {pattern: '(?x) a b', subject: 'ab', pcre: true, doc: `${P} INTERNAL OPTION SETTING: (?x) ignores white space`},
  {pattern: 'a b # comment', options: 'x', subject: 'ab', pcre: true, doc: 'pcre2api(3) PCRE2_EXTENDED: white space ignored, # starts a comment to the newline'},
  {pattern: 'a[ ]b', options: 'x', subject: 'a b', pcre: true, doc: 'pcre2api(3) PCRE2_EXTENDED: except inside a character class'},
  // Case-equivalence in UTF mode
  {pattern: '^k$', options: 'i', subject: '\u212a', pcre: true, doc: 'pcre2unicode(3) CASE-EQUIVALENCE IN UTF MODE: K, k and the Kelvin sign are case-equivalent'},
  {pattern: '^σ$', options: 'i', subject: 'ς', pcre: true, doc: 'pcre2unicode(3) CASE-EQUIVALENCE IN UTF MODE: Greek sigma has more than two case-equivalent code points'},
  {pattern: '^café$', options: 'i', subject: 'CAFÉ', pcre: true, doc: 'pcre2unicode(3) CASE-EQUIVALENCE IN UTF MODE: caseless matching of characters above 127 uses Unicode properties'},
  // Unicode character properties
  {pattern: '^\\p{L}+$', subject: 'Émile', pcre: true, doc: `${P} UNICODE CHARACTER PROPERTIES: \\p{L} letter`},
  {pattern: '^\\p{Lu}$', subject: 'É', pcre: true, doc: `${P} UNICODE CHARACTER PROPERTIES: \\p{Lu} upper case letter`},
  {pattern: '^\\p{Lu}$', options: 'i', subject: 'a', pcre: false, doc: `${P} UNICODE CHARACTER PROPERTIES: caseless matching does not affect them; \\p{Lu} always matches only upper case letters`},
  {pattern: '^\\P{L}$', subject: '5', pcre: true, doc: `${P} UNICODE CHARACTER PROPERTIES: \\P negates`},
  {pattern: '^\\p{Nd}$', subject: '\u0663', pcre: true, doc: `${P} UNICODE CHARACTER PROPERTIES: Nd decimal number`},
  // Backslash: \Q…\E and character codes
  {pattern: '^\\Qabc$xyz\\E$', subject: 'abc$xyz', pcre: true, doc: `${P} BACKSLASH: \\Qabc$xyz\\E matches abc$xyz`},
  {pattern: '^\\Qabc\\$xyz\\E$', subject: 'abc\\$xyz', pcre: true, doc: `${P} BACKSLASH: \\Qabc\\$xyz\\E matches abc\\$xyz`},
  {pattern: '^\\x{263a}\\x41$', subject: '☺A', pcre: true, doc: `${P} NON-PRINTING CHARACTERS: \\x{hhh..} and \\xhh`},
  {pattern: '^\\cA$', subject: '\u0001', pcre: true, doc: `${P} NON-PRINTING CHARACTERS: \\cx, bit 6 of the upper-cased character inverted`},
  {pattern: '^\\e\\t$', subject: '\u001b\t', pcre: true, doc: `${P} NON-PRINTING CHARACTERS: \\e escape, \\t tab`},
  // Repetition
  {pattern: '^x{2,3}$', subject: 'xxxx', pcre: false, doc: `${P} REPETITION: {2,3} at most three`},
  {pattern: '^x{$', subject: 'x{', pcre: true, doc: `${P} REPETITION: a { that is not a quantifier is a literal`},
  {pattern: '^\\d{3}+$', subject: '123', pcre: true, doc: `${P} ATOMIC GROUPING AND POSSESSIVE QUANTIFIERS: \\d{3}+ is (?>\\d{3})`},
  {pattern: '^\\d{3}+$', subject: '123456', pcre: false, doc: `${P} ATOMIC GROUPING AND POSSESSIVE QUANTIFIERS: {3}+ is possessive, not a repetition of {3}`},
  // Atomic grouping and possessive quantifiers
  {pattern: '^(?>a+)a$', subject: 'aaa', pcre: false, doc: `${P} ATOMIC GROUPING: an atomic group gives nothing back`},
  {pattern: '^a++b$', subject: 'aaab', pcre: true, doc: `${P} ATOMIC GROUPING AND POSSESSIVE QUANTIFIERS: a++ is (?>a+)`},
  {pattern: '^a*+a', subject: 'aaaa', pcre: false, doc: `${P} ATOMIC GROUPING AND POSSESSIVE QUANTIFIERS: a*+ takes every a`},
  {pattern: '^(?>a)1$', subject: 'a1', pcre: true, doc: `${P} ATOMIC GROUPING: an atomic group followed by a digit (the digit is a literal)`},
  {pattern: '^a++1$', subject: 'aa1', pcre: true, doc: `${P} POSSESSIVE QUANTIFIERS: a++ followed by a digit`},
  {pattern: '\\d++foo', subject: '123456foo', pcre: true, doc: `${P} ATOMIC GROUPING AND POSSESSIVE QUANTIFIERS: \\d++foo`},
  {pattern: '^(?>.*?a)b', subject: 'aab', pcre: false, doc: `${P} ATOMIC GROUPING: (?>.*?a) keeps its first, shortest match`},
  // Lookbehind assertions
  {pattern: '(?<=bullock|donkey)s', subject: 'donkeys', pcre: true, doc: `${P} LOOKBEHIND ASSERTIONS: branches of different fixed lengths are allowed`},
  {pattern: '(?<!foo)bar', subject: 'foobar', pcre: false, doc: `${P} LOOKBEHIND ASSERTIONS: (?<!foo)bar`},
  // Backreferences
  {pattern: '(sens|respons)e and \\1ibility', subject: 'sense and sensibility', pcre: true, doc: `${P} BACKREFERENCES: matches "sense and sensibility"`},
  {pattern: '(sens|respons)e and \\1ibility', subject: 'response and responsibility', pcre: true, doc: `${P} BACKREFERENCES: and "response and responsibility"`},
  {pattern: '(sens|respons)e and \\1ibility', subject: 'sense and responsibility', pcre: false, doc: `${P} BACKREFERENCES: but not "sense and responsibility"`},
  {pattern: '((?i)rah)\\s+\\1', subject: 'RAH RAH', pcre: true, doc: `${P} BACKREFERENCES: ((?i)rah)\\s+\\1 matches "rah rah" and "RAH RAH"`},
  {pattern: '((?i)rah)\\s+\\1', subject: 'RAH rah', pcre: false, doc: `${P} BACKREFERENCES: but not "RAH rah"`},
  {pattern: '(?<p1>(?i)rah)\\s+\\k<p1>', subject: 'rah rah', pcre: true, doc: `${P} BACKREFERENCES: by name, \\k<p1>`},
  {pattern: '(?<p1>(?i)rah)\\s+(?P=p1)', subject: 'Rah rah', pcre: false, doc: `${P} BACKREFERENCES: by name, (?P=p1), case-sensitive outside the group`},
  {pattern: '^(abc(def)ghi)\\g{-1}$', subject: 'abcdefghidef', pcre: true, doc: `${P} BACKREFERENCES: \\g{-1} is the most recently started group before it`},
  {pattern: '^(a)(?>(b))\\2\\1$', subject: 'abba', pcre: true, doc: `${P} BACKREFERENCES and ATOMIC GROUPING: numbers count capture groups only`},
  // Comments
  {pattern: 'abc(?#comment)def', subject: 'abcdef', pcre: true, doc: `${P} COMMENTS: (?# … ) is ignored`},
];

/** Valid PCRE2 that has no exact JavaScript form: refused, by name. */
const UNSUPPORTED: Array<[string, string, RegExp]> = [
  ['(a|(bc))\\2', '', /backreference \\2 to a group that may not have taken part/],
  ['(?:(a)|b)+\\1', '', /may not have taken part/],
  ['\\1(a)', '', /backreference/],
  ['(a)\\10', '', /\\10 \(an octal character/],
  ['(?i)(a)\\1', '', /case-insensitive backreference/],
  ['(*UCP)\\w', '', /\(\*UCP\)/],
  ['a\\Kb', '', /\\K/],
  ['\\X', '', /grapheme/],
  ['(?|(a)|(b))', '', /branch reset/],
  ['(?(1)a|b)', '', /conditional/],
  ['(a(?R)?b)', '', /recursion/],
  ['(?>(a?)*)b', '', /empty string/],
  ['\\p{Greek}', '', /\\p\{Greek\}/],
  ['(?i:é)e', '', /only part of the pattern/],
  ['x{,3}', '', /\{,n\}/],
  ['(?U)a+', '', /option/],
  ['(?i)é[[:^ascii:]]', '', /\[:\^ascii:\]/],
];

/** Patterns PCRE2 rejects at compile time (so mongod answers with an error). */
const INVALID: Array<[string, string, string]> = [
  ['(?<!dogs?|cats?)', '', `${P} LOOKBEHIND ASSERTIONS: (?<!dogs?|cats?) causes an error at compile time`],
  ['(?<=ab(c|de))', '', `${P} LOOKBEHIND ASSERTIONS: (?<=ab(c|de)) is not permitted`],
  ['a(', '', `${P}: a missing closing parenthesis`],
  ['\\u0041', '', `${P} BACKSLASH: PCRE2 does not support \\u (without PCRE2_ALT_BSUX)`],
  ['[[:foo:]]', '', `${P} POSIX CHARACTER CLASSES: an unknown class name`],
  ['a', 'g', 'mongod: options other than i, m, s, x, u (pcre_util.cpp flagsToOptions, 51108)'],
  ['[\\d-z]', '', `${P} SQUARE BRACKETS: a hyphen after \\d that does not end the class is an error (Perl only warns)`],
  ['(?<n>a)(?<n>b)', '', `${P} NAMED CAPTURE GROUPS: duplicate names need (?J)`],
];

/** The answer of a query `{s: <regex>}` on `{s: subject}`, through the compiled matcher on BSON bytes. */
function engineAnswer(pattern: string, options: string, subject: string): boolean {
  const query = compileQuery({s: new BSONRegExp(pattern, options)});
  return query.matches(Buffer.from(BSON.serialize({s: subject})));
}

describe('PCRE2 patterns against the PCRE2 documentation', () => {
  for (const row of ROWS) {
    it(`/${row.pattern}/${row.options ?? ''} on ${JSON.stringify(row.subject)} is ${row.pcre} (${row.doc})`, () => {
      assert.equal(engineAnswer(row.pattern, row.options ?? '', row.subject), row.pcre);
    });
  }
  it('the same through $regex with $options and through a shell /literal/', () => {
    for (const row of ROWS.filter((r) => !r.pattern.includes('/') && !r.pattern.includes('\n'))) {
      const doc = Buffer.from(BSON.serialize({s: row.subject}));
      const viaOperator = compileQuery(parseQuery(JSON.stringify({s: {$regex: row.pattern, $options: row.options ?? ''}})));
      assert.equal(viaOperator.matches(doc), row.pcre, `$regex ${row.pattern}`);
      const viaLiteral = compileQuery(parseQuery(`{s: /${row.pattern}/${row.options ?? ''}}`));
      assert.equal(viaLiteral.matches(doc), row.pcre, `/${row.pattern}/`);
    }
  });
});

describe('constructs without an exact JavaScript form', () => {
  for (const [pattern, options, why] of UNSUPPORTED) {
    it(`refuses /${pattern}/${options} naming it`, () => {
      assert.throws(() => translatePcre(pattern, options), (e: unknown) => e instanceof PcreError && e.kind === 'unsupported' && why.test(e.message));
      assert.throws(
        () => compileQuery({s: new BSONRegExp(pattern, options)}),
        (e: unknown) => e instanceof GravityError && e.code === 'QUERY_UNSUPPORTED' && e.exitCode === 2 && why.test(e.message),
      );
    });
  }
  for (const [pattern, options, doc] of INVALID) {
    it(`refuses /${pattern}/${options} as mongod does (${doc})`, () => {
      assert.throws(() => translatePcre(pattern, options), (e: unknown) => e instanceof PcreError && e.kind === 'invalid');
    });
  }
  it('refuses, at match time, a caseless \\w on a value holding ſ or the Kelvin sign (JavaScript folds them into \\w, PCRE2 does not)', () => {
    // pcre2pattern(3) GENERIC CHARACTER TYPES: code points above 127 never match \w without UCP; caseless matching does not change the class.
    const query = compileQuery({s: new BSONRegExp('^\\w+é$', 'i')});
    assert.equal(query.matches(Buffer.from(BSON.serialize({s: 'CAFÉ'}))), true);
    assert.throws(() => query.matches(Buffer.from(BSON.serialize({s: 'ſé'}))), (e: unknown) => e instanceof GravityError && e.code === 'QUERY_UNSUPPORTED');
  });
  it('matches a regex stored in a document by its pattern and options, whatever JavaScript would make of it', () => {
    const query = compileQuery({s: new BSONRegExp('(?i)a++', '')});
    assert.equal(query.matches(Buffer.from(BSON.serialize({s: new BSONRegExp('(?i)a++', '')}))), true);
    assert.equal(query.matches(Buffer.from(BSON.serialize({s: new BSONRegExp('(?i)a++', 'm')}))), false);
    assert.equal(compileQuery({s: {$eq: new BSONRegExp('a++', '')}}).matches(Buffer.from(BSON.serialize({s: 'aaa'}))), false);
  });
});

/** The classes as pcre2pattern(3) GENERIC CHARACTER TYPES and POSIX CHARACTER CLASSES define them, without UCP. */
const DEFINED: Array<[string, (cp: number) => boolean]> = [
  ['\\d', (c) => c >= 0x30 && c <= 0x39],
  ['\\s', (c) => (c >= 9 && c <= 13) || c === 32],
  ['\\w', (c) => (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f],
  ['\\h', (c) => [0x09, 0x20, 0xa0, 0x1680, 0x180e, 0x202f, 0x205f, 0x3000].includes(c) || (c >= 0x2000 && c <= 0x200a)],
  ['\\v', (c) => (c >= 0x0a && c <= 0x0d) || c === 0x85 || c === 0x2028 || c === 0x2029],
  ['[[:alpha:]]', (c) => (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)],
  ['[[:blank:]]', (c) => c === 9 || c === 32],
  ['[[:cntrl:]]', (c) => c < 32 || c === 127],
  ['[[:graph:]]', (c) => c >= 33 && c <= 126],
  ['[[:print:]]', (c) => c >= 32 && c <= 126],
  ['[[:punct:]]', (c) => c >= 33 && c <= 126 && !/[A-Za-z0-9]/.test(String.fromCodePoint(c))],
  ['[[:ascii:]]', (c) => c < 128],
  ['.', (c) => c !== 10],
];

describe('character types over random code points (property)', () => {
  for (const [item, defined] of DEFINED) {
    it(`${item} and its negation hold exactly the documented characters`, () => {
      const positive = translatePcre(`^${item}$`, '');
      const re = new RegExp(positive.source, positive.flags);
      const negatedItem = item.startsWith('\\') ? `\\${item[1]!.toUpperCase()}` : item.startsWith('[[:') ? `[[:^${item.slice(3)}` : null;
      const negated = negatedItem ? translatePcre(`^${negatedItem}$`, '') : null;
      const reNegated = negated ? new RegExp(negated.source, negated.flags) : null;
      const codePoint = fc.oneof(fc.integer({min: 0, max: 0x3000}), fc.integer({min: 0, max: 0x10ffff})).filter((c) => c < 0xd800 || c > 0xdfff);
      fc.assert(
        fc.property(codePoint, (cp) => {
          const s = String.fromCodePoint(cp);
          assert.equal(re.test(s), defined(cp), `${item} on U+${cp.toString(16)}`);
          if (reNegated) assert.equal(reNegated.test(s), !defined(cp), `${negatedItem} on U+${cp.toString(16)}`);
        }),
        {numRuns: 3000},
      );
    });
  }
});

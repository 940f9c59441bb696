/**
 * Collations (https://www.mongodb.com/docs/manual/reference/collation/): mongod compares strings
 * with ICU under a collation; Node's `Intl.Collator` is ICU too. `simple` (or none) is binary
 * comparison. Strength 4 and 5 are taken as 3 (ICU's quaternary and identical levels have no
 * `Intl` equivalent), `alternate: "shifted"` as ignoring punctuation.
 */
import {CommandError} from './command-error.js';
import {toNumber} from './compare.js';
import {BDoc, BT, BVal, type Value, stringOf, toValue} from './tree.js';

export interface Collation {
  collator: Intl.Collator;
  /** The collation with every field filled in, as listCollections and listIndexes show it. */
  spec: BDoc;
}

const FIELDS = new Set(['locale', 'caseLevel', 'caseFirst', 'strength', 'numericOrdering', 'alternate', 'maxVariable', 'normalization', 'backwards', 'version']);

function invalid(message: string): CommandError {
  return new CommandError(2, message);
}

function boolField(doc: BDoc, name: string): boolean {
  const v = doc.get(name);
  if (v === undefined) return false;
  if (!(v instanceof BVal) || v.type !== BT.BOOL) throw new CommandError(14, `BSON field 'collation.${name}' is the wrong type, expected type 'bool'`);
  return v.bytes[0] === 1;
}

function stringField(doc: BDoc, name: string, allowed: string[], fallback: string): string {
  const v = doc.get(name);
  if (v === undefined) return fallback;
  if (!(v instanceof BVal) || v.type !== BT.STRING) throw new CommandError(14, `BSON field 'collation.${name}' is the wrong type, expected type 'string'`);
  const s = stringOf(v);
  if (!allowed.includes(s)) throw invalid(`Field '${name}' must be one of: ${allowed.join(', ')}. Got: ${s}`);
  return s;
}

/** Parses a collation document; undefined for the simple (binary) collation. */
export function parseCollation(v: Value | undefined): Collation | undefined {
  if (v === undefined || v.type === BT.NULL) return undefined;
  if (!(v instanceof BDoc)) throw new CommandError(14, "BSON field 'collation' is the wrong type, expected type 'object'");
  for (const [k] of v.entries) if (!FIELDS.has(k)) throw new CommandError(40415, `BSON field 'collation.${k}' is an unknown field.`);
  const localeValue = v.get('locale');
  if (!(localeValue instanceof BVal) || localeValue.type !== BT.STRING) throw new CommandError(40414, "BSON field 'collation.locale' is missing but a required field");
  const locale = stringOf(localeValue);
  const strengthValue = v.get('strength');
  const strength = strengthValue instanceof BVal ? toNumber(strengthValue) : 3;
  if (![1, 2, 3, 4, 5].includes(strength)) throw invalid(`Field 'strength' must be an integer 1 through 5. Got: ${strength}`);
  const caseLevel = boolField(v, 'caseLevel');
  const caseFirst = stringField(v, 'caseFirst', ['upper', 'lower', 'off'], 'off');
  const numericOrdering = boolField(v, 'numericOrdering');
  const alternate = stringField(v, 'alternate', ['non-ignorable', 'shifted'], 'non-ignorable');
  const maxVariable = stringField(v, 'maxVariable', ['punct', 'space'], 'punct');
  const normalization = boolField(v, 'normalization');
  const backwards = boolField(v, 'backwards');
  if (locale === 'simple') {
    if (v.entries.length > 1) throw invalid("If 'locale' is set to 'simple', then all other collation fields must be empty");
    return undefined;
  }
  const icuLocale = locale.replace(/_/g, '-');
  if (Intl.Collator.supportedLocalesOf([icuLocale]).length === 0 && locale !== 'root') throw invalid(`Field 'locale' is invalid in: ${JSON.stringify({locale})}`);
  const sensitivity: Intl.CollatorOptions['sensitivity'] = strength === 1 ? (caseLevel ? 'case' : 'base') : strength === 2 && !caseLevel ? 'accent' : 'variant';
  const collator = new Intl.Collator(locale === 'root' ? 'und' : icuLocale, {
    usage: 'sort',
    sensitivity,
    numeric: numericOrdering,
    caseFirst: caseFirst === 'off' ? 'false' : caseFirst === 'upper' ? 'upper' : 'lower',
    ignorePunctuation: alternate === 'shifted',
  });
  const spec = BDoc.fromEntries([
    ['locale', toValue(locale)],
    ['caseLevel', toValue(caseLevel)],
    ['caseFirst', toValue(caseFirst)],
    ['strength', toValue(strength)],
    ['numericOrdering', toValue(numericOrdering)],
    ['alternate', toValue(alternate)],
    ['maxVariable', toValue(maxVariable)],
    ['normalization', toValue(normalization)],
    ['backwards', toValue(backwards)],
    ['version', toValue('57.1')],
  ]);
  return {collator, spec};
}

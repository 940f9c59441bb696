/**
 * An oracle for the query engine that does not come from the engine: each case is a document, a
 * filter as a person types it for `extract --query`, and whether MongoDB matches it, taken from the
 * MongoDB manual page cited in `manual`. Expectations are for mongod 8.0; where the manual documents
 * a different answer for earlier servers, `before80` holds it.
 *
 * Documents use bson classes so the stored BSON types are exact (Int32, Double, Long, Decimal128).
 * BSON undefined (type 6) cannot be written by the JS serialiser, so documents hold the
 * `BSON_UNDEFINED` marker instead and `trapBytes` writes type 6 for it.
 */
import {BSON, Binary, Decimal128, Double, Int32, Long, MaxKey, MinKey, ObjectId, Timestamp, type Document} from 'bson';

export interface TrapCase {
  name: string;
  doc: Document;
  /** Shell syntax or Extended JSON, as given to `extract --query`. */
  filter: string;
  expected: boolean;
  /** The manual page that documents the expected answer. */
  manual: string;
  /** The documented answer on mongod before 8.0, when it differs from `expected`. */
  before80?: boolean;
}

/** Stands for a BSON undefined value (type 6) in a trap document. */
export const BSON_UNDEFINED: unique symbol = Symbol('BSON undefined');

const M = 'https://www.mongodb.com/docs/manual';
const NULLS = `${M}/tutorial/query-for-null-fields/`;
const UNDEF = `${M}/reference/bson-types/migrate-undefined/`;
const ARRAYS = `${M}/tutorial/query-arrays/`;
const ARRAY_DOCS = `${M}/tutorial/query-array-of-documents/`;
const EMBEDDED = `${M}/tutorial/query-embedded-documents/`;
const DOT = `${M}/core/document/#dot-notation`;
const EQ = `${M}/reference/operator/query/eq/`;
const NE = `${M}/reference/operator/query/ne/`;
const IN = `${M}/reference/operator/query/in/`;
const NIN = `${M}/reference/operator/query/nin/`;
const BRACKETING = `${M}/reference/mql/query-predicates/type-bracketing/`;
const ORDER = `${M}/reference/bson-type-comparison-order/`;
const BSON_TYPES = `${M}/reference/bson-types/`;
const DECIMAL = 'https://www.mongodb.com/docs/v5.0/core/shell-types/#numberdecimal';
const EXISTS = `${M}/reference/operator/query/exists/`;
const TYPE = `${M}/reference/operator/query/type/`;
const SIZE = `${M}/reference/operator/query/size/`;
const ALL = `${M}/reference/operator/query/all/`;
const ELEM = `${M}/reference/operator/query/elemMatch/`;
const REGEX = `${M}/reference/operator/query/regex/`;
const NOT = `${M}/reference/operator/query/not/`;
const OR = `${M}/reference/operator/query/or/`;
const AND = `${M}/reference/operator/query/and/`;
const NOR = `${M}/reference/operator/query/nor/`;
const MOD = `${M}/reference/operator/query/mod/`;

const OID = '57d1c0ffee0000000000cafe';
const OID2 = '57d1c0ffee0000000000beef';
const EARLY = '000000010000000000000000';
const D = (iso: string): Date => new Date(iso);
const dec = (s: string): Decimal128 => Decimal128.fromString(s);
const U = BSON_UNDEFINED;

type Row = [name: string, doc: Document, filter: string, expected: boolean, manual: string, before80?: boolean];

const ROWS: Row[] = [
  // --- null and missing
  ['null matches a null field', {a: null}, '{a: null}', true, NULLS],
  ['null matches a missing field', {b: 1}, '{a: null}', true, NULLS],
  ['null does not match 0', {a: 0}, '{a: null}', false, NULLS],
  ['null does not match an empty string', {a: ''}, '{a: null}', false, NULLS],
  ['null does not match false', {a: false}, '{a: null}', false, NULLS],
  ['null matches an array holding null', {a: [1, null]}, '{a: null}', true, UNDEF],
  ['null does not match an array without null', {a: [1, 2]}, '{a: null}', false, UNDEF],
  ['$eq null matches a missing field', {}, '{a: {$eq: null}}', true, NULLS],
  ['$ne null does not match a null field', {a: null}, '{a: {$ne: null}}', false, NULLS],
  ['$ne null does not match a missing field', {b: 1}, '{a: {$ne: null}}', false, NULLS],
  ['$ne null matches a value', {a: 'x'}, '{a: {$ne: null}}', true, NULLS],
  ['$type null matches a null field', {a: null}, '{a: {$type: "null"}}', true, NULLS],
  ['$type null does not match a missing field', {b: 1}, '{a: {$type: "null"}}', false, NULLS],
  ['$type 10 matches a null field', {a: null}, '{a: {$type: 10}}', true, NULLS],
  ['$exists false matches a missing field', {b: 1}, '{a: {$exists: false}}', true, NULLS],
  ['$exists false does not match a null field', {a: null}, '{a: {$exists: false}}', false, NULLS],
  ['$exists true matches a null field', {a: null}, '{a: {$exists: true}}', true, EXISTS],
  ['$exists true does not match a missing field', {b: 1}, '{a: {$exists: true}}', false, EXISTS],
  ['$in [null] matches a missing field', {b: 1}, '{a: {$in: [null]}}', true, NULLS],
  ['$in [null, 4] matches a null field', {a: null}, '{a: {$in: [null, 4]}}', true, NULLS],
  ['$nin [null] does not match a missing field (as $ne null)', {}, '{a: {$nin: [null]}}', false, NULLS],
  ['dotted null matches when the parent is missing', {b: 1}, '{"a.b": null}', true, NULLS],
  ['dotted null matches when the subdocument lacks the field', {a: {c: 1}}, '{"a.b": null}', true, NULLS],
  ['dotted null does not match a value', {a: {b: 'hi'}}, '{"a.b": null}', false, NULLS],

  // --- BSON undefined (deprecated type 6)
  ['null does not match undefined (8.0)', {name: U}, '{name: null}', false, UNDEF, true],
  ['null does not match an array holding undefined (8.0)', {name: ['Gabriel', U]}, '{name: null}', false, UNDEF, true],
  ['$eq null does not match undefined (8.0)', {name: U}, '{name: {$eq: null}}', false, UNDEF, true],
  ['$in [null] does not match undefined (8.0)', {name: U}, '{name: {$in: [null]}}', false, UNDEF, true],
  ['$type "undefined" matches undefined', {name: U}, '{name: {$type: "undefined"}}', true, UNDEF],
  ['$or null / $type undefined matches undefined', {name: U}, '{$or: [{name: null}, {name: {$type: "undefined"}}]}', true, UNDEF],
  ['$exists true matches an undefined field', {name: U}, '{name: {$exists: true}}', true, UNDEF],
  ['null still matches null next to undefined data', {name: null}, '{name: null}', true, UNDEF],

  // --- arrays: element and whole-array equality
  ['a value matches an array element', {tags: ['red', 'blank']}, '{tags: "red"}', true, ARRAYS],
  ['an array matches the same array in order', {tags: ['red', 'blank']}, '{tags: ["red", "blank"]}', true, ARRAYS],
  ['an array does not match the same elements in another order', {tags: ['blank', 'red']}, '{tags: ["red", "blank"]}', false, ARRAYS],
  ['an array does not match a longer array', {tags: ['red', 'blank', 'plain']}, '{tags: ["red", "blank"]}', false, ARRAYS],
  ['an array matches an element that equals it', {tags: [['A', 'B'], 'C']}, '{tags: {$eq: ["A", "B"]}}', true, EQ],
  ['a value does not match inside a nested array', {tags: [['A', 'B'], 'C']}, '{tags: {$eq: "B"}}', false, EQ],
  ['a value matches a top-level element next to a nested array', {tags: [['A', 'B'], 'C']}, '{tags: "C"}', true, EQ],
  ['$gt matches when one element is greater', {dim_cm: [14, 21]}, '{dim_cm: {$gt: 20}}', true, ARRAYS],
  ['$gt does not match when no element is greater', {dim_cm: [14, 21]}, '{dim_cm: {$gt: 25}}', false, ARRAYS],
  ['range on an array: different elements may satisfy each bound', {a: [0, 5]}, '{a: {$gt: 1, $lt: 3}}', true, ARRAYS],
  ['range on an array: one element satisfying both bounds', {dim_cm: [10, 15.25]}, '{dim_cm: {$gt: 15, $lt: 20}}', true, ARRAYS],
  ['range on an array fails when no element satisfies one bound', {a: [5, 6]}, '{a: {$gt: 1, $lt: 3}}', false, ARRAYS],
  ['$elemMatch range needs one element satisfying both bounds', {a: [0, 5]}, '{a: {$elemMatch: {$gt: 1, $lt: 3}}}', false, ELEM],
  ['$elemMatch range matches one element within bounds', {dim_cm: [10, 15.25]}, '{dim_cm: {$elemMatch: {$gt: 15, $lt: 20}}}', true, ARRAYS],
  ['numeric index selects that element', {dim_cm: [14, 21]}, '{"dim_cm.1": {$gt: 20}}', true, ARRAYS],
  ['numeric index does not look at other elements', {dim_cm: [22, 14]}, '{"dim_cm.1": {$gt: 20}}', false, ARRAYS],
  ['numeric index past the end is missing', {a: [1]}, '{"a.3": {$exists: false}}', true, DOT],
  ['numeric index into a nested array', {a: [[1, 2], [3]]}, '{"a.0.1": 2}', true, DOT],
  ['numeric index yields a nested array for equality', {a: [[1, 2], 3]}, '{"a.0": [1, 2]}', true, DOT],

  // --- arrays of embedded documents and dotted paths
  ['whole embedded document in an array matches exactly', {instock: [{warehouse: 'A', qty: 5}, {warehouse: 'C', qty: 15}]}, '{instock: {warehouse: "A", qty: 5}}', true, ARRAY_DOCS],
  ['embedded document with fields in another order does not match', {instock: [{warehouse: 'A', qty: 5}]}, '{instock: {qty: 5, warehouse: "A"}}', false, ARRAY_DOCS],
  ['dotted path through an array of documents', {instock: [{warehouse: 'A', qty: 60}, {warehouse: 'B', qty: 15}]}, '{"instock.qty": {$lte: 20}}', true, ARRAY_DOCS],
  ['dotted path through an array: no element qualifies', {instock: [{warehouse: 'A', qty: 60}, {warehouse: 'B', qty: 35}]}, '{"instock.qty": {$lte: 20}}', false, ARRAY_DOCS],
  ['dotted path with index 0 into an array of documents', {instock: [{warehouse: 'A', qty: 5}, {warehouse: 'C', qty: 50}]}, '{"instock.0.qty": {$lte: 20}}', true, ARRAY_DOCS],
  ['dotted path with index 0 ignores later elements', {instock: [{warehouse: 'A', qty: 40}, {warehouse: 'B', qty: 5}]}, '{"instock.0.qty": {$lte: 20}}', false, ARRAY_DOCS],
  ['two dotted conditions may be met by different elements', {instock: [{warehouse: 'A', qty: 60}, {warehouse: 'B', qty: 15}]}, '{"instock.qty": 15, "instock.warehouse": "A"}', true, ARRAY_DOCS],
  ['$elemMatch needs one element meeting both conditions', {instock: [{warehouse: 'A', qty: 60}, {warehouse: 'B', qty: 15}]}, '{instock: {$elemMatch: {qty: 15, warehouse: "A"}}}', false, ARRAY_DOCS],
  ['$elemMatch matches an element meeting both conditions', {instock: [{warehouse: 'A', qty: 5}, {warehouse: 'C', qty: 15}]}, '{instock: {$elemMatch: {qty: 5, warehouse: "A"}}}', true, ARRAY_DOCS],
  ['$elemMatch range on a document field', {instock: [{warehouse: 'A', qty: 40}, {warehouse: 'B', qty: 5}]}, '{instock: {$elemMatch: {qty: {$gt: 10, $lte: 20}}}}', false, ARRAY_DOCS],
  ['dotted range on documents combines elements', {instock: [{warehouse: 'A', qty: 40}, {warehouse: 'B', qty: 5}]}, '{"instock.qty": {$gt: 10, $lte: 20}}', true, ARRAY_DOCS],
  ['dotted path does not reach a value in a look-alike field', {a: {partner_id: new ObjectId(OID)}}, `{partner_id: ObjectId("${OID}")}`, false, DOT],

  // --- $ne / $nin on arrays and missing fields
  ['$ne does not match an array containing the value', {tags: ['school', 'home']}, '{tags: {$ne: "school"}}', false, NE],
  ['$ne matches an array without the value', {tags: ['office', 'home']}, '{tags: {$ne: "school"}}', true, NE],
  ['$ne matches a missing field', {item: 'x'}, '{quantity: {$ne: 20}}', true, NE],
  ['$ne matches a value of another type', {a: 'two'}, '{a: {$ne: 2}}', true, BRACKETING],
  ['$ne does not match a numerically equal value of another numeric type', {a: new Double(2)}, '{a: {$ne: 2}}', false, BRACKETING],
  ['$nin does not match an array containing a listed value', {tags: ['school', 'office']}, '{tags: {$nin: ["school"]}}', false, NIN],
  ['$nin matches an array with none of the values', {tags: ['office', 'storage']}, '{tags: {$nin: ["school", "home"]}}', true, NIN],
  ['$nin matches a missing field', {item: 'Maps'}, '{quantity: {$nin: [5, 15]}}', true, NIN],
  ['$nin does not match a listed value', {quantity: 5}, '{quantity: {$nin: [5, 15]}}', false, NIN],

  // --- $in
  ['$in matches a listed value', {qty: 5}, '{qty: {$in: [5, 15]}}', true, IN],
  ['$in matches an array with a listed element', {tags: ['school', 'home']}, '{tags: {$in: ["home", "office"]}}', true, IN],
  ['$in does not match an unlisted value', {qty: 7}, '{qty: {$in: [5, 15]}}', false, IN],
  ['$in with a regex matches a string', {tags: ['blue', 'stone']}, '{tags: {$in: [/^be/, /^st/]}}', true, IN],
  ['$in with a regex does not match other strings', {tags: ['blue', 'green']}, '{tags: {$in: [/^be/, /^st/]}}', false, IN],
  ['$in with a regex and a string matches the string', {tags: 'zzz'}, '{tags: {$in: [/^be/, "zzz"]}}', true, IN],
  ['$in with an array value matches the array', {a: [1, 2]}, '{a: {$in: [[1, 2]]}}', true, EQ],

  // --- $size
  ['$size matches the element count', {a: [1, 2]}, '{a: {$size: 2}}', true, SIZE],
  ['$size does not match another count', {a: [1, 2, 3]}, '{a: {$size: 2}}', false, SIZE],
  ['$size 0 matches an empty array', {a: []}, '{a: {$size: 0}}', true, SIZE],
  ['$size counts a nested array as one element', {a: [[1, 2, 3]]}, '{a: {$size: 1}}', true, SIZE],
  ['$size does not match a non-array', {a: 'ab'}, '{a: {$size: 1}}', false, SIZE],
  ['$size does not match a missing field', {b: 1}, '{a: {$size: 0}}', false, SIZE],

  // --- $all
  ['$all matches an array holding every value', {tags: ['appliance', 'school', 'book']}, '{tags: {$all: ["appliance", "school"]}}', true, ALL],
  ['$all does not match when a value is absent', {tags: ['appliance', 'book']}, '{tags: {$all: ["appliance", "school"]}}', false, ALL],
  ['$all ignores order', {tags: ['school', 'appliance']}, '{tags: {$all: ["appliance", "school"]}}', true, ALL],
  ['$all with a nested array matches an equal array', {tags: ['ssl', 'security']}, '{tags: {$all: [["ssl", "security"]]}}', true, ALL],
  ['$all with a nested array matches an array holding it', {tags: [['ssl', 'security'], 'x']}, '{tags: {$all: [["ssl", "security"]]}}', true, ALL],
  ['$all matches a single value field', {tags: 'ssl'}, '{tags: {$all: ["ssl"]}}', true, ALL],
  ['$all with an empty list matches nothing', {tags: ['ssl']}, '{tags: {$all: []}}', false, ALL],
  [
    '$all with $elemMatch needs each condition met by some element',
    {qty: [{size: 'S', num: 10, color: 'blue'}, {size: 'M', num: 100, color: 'blue'}, {size: 'L', num: 100, color: 'green'}]},
    '{qty: {$all: [{$elemMatch: {size: "M", num: {$gt: 50}}}, {$elemMatch: {num: 100, color: "green"}}]}}',
    true,
    ALL,
  ],
  [
    '$all with $elemMatch fails when one condition has no element',
    {qty: [{size: 'M', num: 100, color: 'blue'}, {size: 'L', num: 10, color: 'green'}]},
    '{qty: {$all: [{$elemMatch: {size: "M", num: {$gt: 50}}}, {$elemMatch: {num: 100, color: "green"}}]}}',
    false,
    ALL,
  ],

  // --- $elemMatch
  ['$elemMatch on scalars', {results: [82, 85, 88]}, '{results: {$elemMatch: {$gte: 80, $lt: 85}}}', true, ELEM],
  ['$elemMatch on scalars: no element in range', {results: [75, 88, 89]}, '{results: {$elemMatch: {$gte: 80, $lt: 85}}}', false, ELEM],
  ['$elemMatch on documents', {results: [{product: 'abc', score: 10}, {product: 'xyz', score: 5}]}, '{results: {$elemMatch: {product: "xyz", score: {$gte: 8}}}}', false, ELEM],
  ['$elemMatch on documents: one element qualifies', {results: [{product: 'abc', score: 10}, {product: 'xyz', score: 9}]}, '{results: {$elemMatch: {product: "xyz", score: {$gte: 8}}}}', true, ELEM],
  ['$elemMatch does not match a non-array field', {results: {product: 'xyz', score: 9}}, '{results: {$elemMatch: {product: "xyz"}}}', false, ELEM],
  ['$elemMatch does not match a missing field', {other: [1]}, '{results: {$elemMatch: {$gt: 0}}}', false, ELEM],
  ['$elemMatch with $ne needs an element not equal', {a: [1, 1]}, '{a: {$elemMatch: {$ne: 1}}}', false, ELEM],
  ['$elemMatch with $ne matches when some element differs', {a: [1, 2]}, '{a: {$elemMatch: {$ne: 1}}}', true, ELEM],

  // --- $type
  ['$type "number" matches an int', {a: new Int32(1)}, '{a: {$type: "number"}}', true, TYPE],
  ['$type "number" matches a long', {a: Long.fromNumber(1)}, '{a: {$type: "number"}}', true, TYPE],
  ['$type "number" matches a double', {a: new Double(1.5)}, '{a: {$type: "number"}}', true, TYPE],
  ['$type "number" matches a decimal', {a: dec('1.5')}, '{a: {$type: "number"}}', true, TYPE],
  ['$type "number" does not match a numeric string', {a: '1'}, '{a: {$type: "number"}}', false, TYPE],
  ['$type "long" matches a long', {a: Long.fromNumber(5)}, '{a: {$type: "long"}}', true, TYPE],
  ['$type "long" does not match an int of the same value', {a: new Int32(5)}, '{a: {$type: "long"}}', false, TYPE],
  ['$type 18 matches a long', {a: Long.fromString('9007199254740993')}, '{a: {$type: 18}}', true, TYPE],
  ['$type 18 does not match a double', {a: new Double(5)}, '{a: {$type: 18}}', false, TYPE],
  ['$type "decimal" matches a decimal', {a: dec('5')}, '{a: {$type: "decimal"}}', true, TYPE],
  ['$type "decimal" does not match a double', {a: new Double(5)}, '{a: {$type: "decimal"}}', false, TYPE],
  ['$type 19 matches a decimal', {a: dec('0.1')}, '{a: {$type: 19}}', true, TYPE],
  ['$type "int" matches an int', {a: new Int32(5)}, '{a: {$type: "int"}}', true, TYPE],
  ['$type 16 does not match a long', {a: Long.fromNumber(5)}, '{a: {$type: 16}}', false, TYPE],
  ['$type "double" matches a whole-number double', {a: new Double(5)}, '{a: {$type: "double"}}', true, TYPE],
  ['$type 1 does not match an int', {a: new Int32(5)}, '{a: {$type: 1}}', false, TYPE],
  ['$type "array" matches an array', {a: [1, 2]}, '{a: {$type: "array"}}', true, TYPE],
  ['$type "array" matches an empty array', {a: []}, '{a: {$type: "array"}}', true, TYPE],
  ['$type 4 does not match a scalar', {a: 5}, '{a: {$type: 4}}', false, TYPE],
  ['$type "string" matches an array holding a string', {tags: [1, 'x']}, '{tags: {$type: "string"}}', true, TYPE],
  ['$type "string" does not match an array without strings', {tags: [1, 2]}, '{tags: {$type: "string"}}', false, TYPE],
  ['$type "long" matches an array holding a long', {a: [new Int32(1), Long.fromNumber(2)]}, '{a: {$type: "long"}}', true, TYPE],
  ['$type list matches any listed type', {a: 'x'}, '{a: {$type: ["double", "string"]}}', true, TYPE],
  ['$type "objectId" does not match a hex string', {a: OID}, '{a: {$type: "objectId"}}', false, TYPE],
  ['$type "minKey" matches MinKey only', {a: new MinKey()}, '{a: {$type: "minKey"}}', true, TYPE],
  ['$type "maxKey" does not match MinKey', {a: new MinKey()}, '{a: {$type: "maxKey"}}', false, TYPE],
  ['$type "object" matches a subdocument', {a: {b: 1}}, '{a: {$type: "object"}}', true, TYPE],
  ['$type "date" matches a date', {a: D('2020-01-01T00:00:00Z')}, '{a: {$type: "date"}}', true, TYPE],

  // --- numbers across types
  ['int query matches a long of the same value', {n: Long.fromNumber(5)}, '{n: 5}', true, BRACKETING],
  ['int query matches a double of the same value', {n: new Double(5)}, '{n: 5}', true, BRACKETING],
  ['int query matches a decimal of the same value', {n: dec('5.00')}, '{n: 5}', true, DECIMAL],
  ['NumberDecimal("10") matches a long 10', {val: Long.fromNumber(10)}, '{val: NumberDecimal("10")}', true, DECIMAL],
  ['double 9.99 does not match NumberDecimal("9.99")', {val: dec('9.99')}, '{val: 9.99}', false, DECIMAL],
  ['NumberDecimal("9.99") does not match double 9.99', {val: new Double(9.99)}, '{val: NumberDecimal("9.99")}', false, DECIMAL],
  ['double 0.1 does not match NumberDecimal("0.1")', {val: dec('0.1')}, '{val: 0.1}', false, DECIMAL],
  ['NumberDecimal("0.1") matches NumberDecimal("0.10")', {val: dec('0.10')}, '{val: NumberDecimal("0.1")}', true, DECIMAL],
  ['double 0.5 matches NumberDecimal("0.5") (exact in binary)', {val: dec('0.5')}, '{val: 0.5}', true, DECIMAL],
  ['a long above 2^53 equals itself', {n: Long.fromString('9007199254740993')}, '{n: NumberLong("9007199254740993")}', true, BSON_TYPES],
  ['adjacent longs above 2^53 are different', {n: Long.fromString('9007199254740993')}, '{n: NumberLong("9007199254740992")}', false, BSON_TYPES],
  ['a long above 2^53 does not equal the nearest double', {n: Long.fromString('9007199254740993')}, '{n: 9007199254740992}', false, DECIMAL],
  ['$gt orders a long above 2^53 against a double', {n: Long.fromString('9007199254740993')}, '{n: {$gt: 9007199254740992}}', true, DECIMAL],
  ['$gt on longs compares numerically, not as text', {n: Long.fromNumber(9)}, '{n: {$gt: NumberLong("10")}}', false, BRACKETING],
  ['$lt on decimals compares numerically, not as text', {n: dec('11')}, '{n: {$lt: NumberDecimal("2")}}', false, DECIMAL],
  ['$gt orders a decimal against an int', {n: dec('5.1')}, '{n: {$gt: 5}}', true, DECIMAL],
  ['$gt: double 0.1 is above NumberDecimal("0.1")', {n: new Double(0.1)}, '{n: {$gt: NumberDecimal("0.1")}}', true, DECIMAL],
  ['-0.0 equals 0', {n: new Double(-0)}, '{n: 0}', true, ORDER],
  ['0 equals -0.0', {n: new Int32(0)}, '{n: -0.0}', true, ORDER],
  ['a number does not match its string', {n: '123'}, '{n: 123}', false, BRACKETING],
  ['a string does not match its number', {n: new Int32(123)}, '{n: "123"}', false, BRACKETING],

  // --- comparison type bracketing
  ['$gt number matches a greater number', {qty: 5}, '{qty: {$gt: 4}}', true, BRACKETING],
  ['$gt number does not match a string', {qty: 'fourteen'}, '{qty: {$gt: 4}}', false, BRACKETING],
  ['$gt number does not match a subdocument', {qty: {'in stock': 8, ordered: 12}}, '{qty: {$gt: 4}}', false, BRACKETING],
  ['$gt number matches an array with a greater number among strings', {a: ['red', 4, 'blue']}, '{a: {$gt: 3}}', true, BRACKETING],
  ['$gt number does not match an array of strings', {a: ['red', 'blue']}, '{a: {$gt: 3}}', false, BRACKETING],
  ['$gt matches any numeric type', {a: dec('1')}, '{a: {$gt: 0}}', true, BRACKETING],
  ['$lt string does not match a number', {a: 1}, '{a: {$lt: "b"}}', false, BRACKETING],
  ['$gte string does not match null', {a: null}, '{a: {$gte: "a"}}', false, BRACKETING],
  ['$lt date does not match a number', {a: 0}, '{a: {$lt: ISODate("2020-01-01T00:00:00Z")}}', false, BRACKETING],
  ['$gt date does not match a date string', {a: '2021-01-01'}, '{a: {$gt: ISODate("2020-01-01T00:00:00Z")}}', false, BRACKETING],
  ['$lt string compares strings', {a: 'apple'}, '{a: {$lt: "b"}}', true, BRACKETING],
  ['$gt false: true is greater', {a: true}, '{a: {$gt: false}}', true, BRACKETING],
  ['$gt 0 does not match a boolean', {a: true}, '{a: {$gt: 0}}', false, BRACKETING],

  // --- dates
  ['a date before 1970 equals itself', {d: D('1960-03-01T00:00:00Z')}, '{d: ISODate("1960-03-01T00:00:00Z")}', true, BSON_TYPES],
  ['a date before 1970 is below the epoch', {d: D('1960-03-01T00:00:00Z')}, '{d: {$lt: ISODate("1970-01-01T00:00:00Z")}}', true, BSON_TYPES],
  ['a date before 1970 is not above the epoch', {d: D('1960-03-01T00:00:00Z')}, '{d: {$gte: ISODate("1970-01-01T00:00:00Z")}}', false, BSON_TYPES],
  ['dates before 1970 order among themselves', {d: D('1960-03-01T00:00:00Z')}, '{d: {$gt: ISODate("1959-12-31T00:00:00Z")}}', true, BSON_TYPES],
  ['Extended JSON negative $date', {d: new Date(-5)}, '{"d": {"$date": {"$numberLong": "-5"}}}', true, BSON_TYPES],
  ['a date range over an array of dates', {d: [D('2019-01-01T00:00:00Z'), D('2020-02-01T00:00:00Z')]}, '{d: {$gte: ISODate("2020-01-01T00:00:00Z"), $lt: ISODate("2021-01-01T00:00:00Z")}}', true, ARRAYS],
  ['a date does not match its milliseconds as a number', {d: new Int32(0)}, '{d: ISODate("1970-01-01T00:00:00Z")}', false, BRACKETING],

  // --- regex
  ['regex matches a string', {name: 'Warhol'}, '{name: /^Wa/}', true, REGEX],
  ['regex is case sensitive without i', {name: 'warhol'}, '{name: /^Wa/}', false, REGEX],
  ['regex i flag', {name: 'WARHOL'}, '{name: /^wa/i}', true, REGEX],
  ['$regex string with $options i', {name: 'WAX'}, '{name: {$regex: "^wa", $options: "i"}}', true, REGEX],
  ['$regex regex object with $options i', {name: 'WAX'}, '{name: {$regex: /^wa/, $options: "i"}}', true, REGEX],
  ['regex matches an array element', {name: ['x', 'warhol']}, '{name: /^wa/}', true, REGEX],
  ['regex does not match a number', {name: new Int32(12)}, '{name: /^1/}', false, REGEX],
  ['regex without m: ^ only at the start of the string', {d: 'First line\nSecond line'}, '{d: {$regex: "^S"}}', false, REGEX],
  ['regex m flag: ^ at the start of each line', {d: 'First line\nSecond line'}, '{d: {$regex: "^S", $options: "m"}}', true, REGEX],
  ['regex without s: dot does not match a newline', {d: 'Multiple\nline description'}, '{d: {$regex: /m.*line/, $options: "i"}}', false, REGEX],
  ['regex s flag: dot matches a newline', {d: 'Multiple\nline description'}, '{d: {$regex: /m.*line/, $options: "si"}}', true, REGEX],
  ['regex x flag ignores whitespace in the pattern', {sku: 'abc123'}, '{sku: {$regex: "abc #category code\\n123 #item number", $options: "x"}}', true, REGEX],
  ['regex x flag keeps escaped whitespace', {sku: 'ab c'}, '{sku: {$regex: "ab\\\\ c", $options: "x"}}', true, REGEX],
  ['regex x flag: whitespace in a character class is literal', {sku: 'a c'}, '{sku: {$regex: "a[ ]c", $options: "x"}}', true, REGEX],
  ['regex without x: whitespace is literal', {sku: 'abc123'}, '{sku: {$regex: "abc 123"}}', false, REGEX],
  ['$regex on a missing field does not match', {other: 'abc'}, '{sku: {$regex: "a"}}', false, REGEX],

  // --- $not
  ['$not regex matches a non-matching string', {item: 'abc'}, '{item: {$not: /^p.*/}}', true, NOT],
  ['$not regex does not match a matching string', {item: 'pen'}, '{item: {$not: /^p.*/}}', false, NOT],
  ['$not regex matches a missing field', {other: 1}, '{item: {$not: /^p.*/}}', true, NOT],
  ['$not $regex expression', {item: 'pen'}, '{item: {$not: {$regex: "^p.*"}}}', false, NOT],
  ['$not $gt matches a smaller value', {price: 1.5}, '{price: {$not: {$gt: 1.99}}}', true, NOT],
  ['$not $gt matches a missing field', {other: 1}, '{price: {$not: {$gt: 1.99}}}', true, NOT],
  ['$not $gt matches a non-numeric value', {price: 'cheap'}, '{price: {$not: {$gt: 1.99}}}', true, NOT],
  ['$not $gt does not match a greater value', {price: 3}, '{price: {$not: {$gt: 1.99}}}', false, NOT],
  ['$not $gt does not match an array with a greater element', {price: [1, 3]}, '{price: {$not: {$gt: 1.99}}}', false, NOT],
  ['$lte does not match a missing field (unlike $not $gt)', {other: 1}, '{price: {$lte: 1.99}}', false, NOT],

  // --- embedded documents
  ['embedded document equality', {size: {h: 14, w: 21, uom: 'cm'}}, '{size: {h: 14, w: 21, uom: "cm"}}', true, EMBEDDED],
  ['embedded document equality is field-order sensitive', {size: {w: 21, h: 14, uom: 'cm'}}, '{size: {h: 14, w: 21, uom: "cm"}}', false, EMBEDDED],
  ['embedded document equality needs every field', {size: {h: 14, w: 21, uom: 'cm'}}, '{size: {h: 14, w: 21}}', false, EMBEDDED],
  ['embedded document equality compares numbers by value', {size: {h: new Double(14), w: Long.fromNumber(21)}}, '{size: {h: 14, w: 21}}', true, ORDER],
  ['dotted path into an embedded document', {size: {h: 14, w: 21, uom: 'in'}}, '{"size.uom": "in"}', true, EMBEDDED],
  ['dotted range into an embedded document', {size: {h: 8.5, w: 11, uom: 'in'}}, '{"size.h": {$lt: 15}}', true, EMBEDDED],
  ['$eq with a document value is field-order sensitive', {item: {code: '123', name: 'ab'}}, '{item: {$eq: {name: "ab", code: "123"}}}', false, EQ],

  // --- ObjectId
  ['ObjectId equality', {partner_id: new ObjectId(OID)}, `{partner_id: ObjectId("${OID}")}`, true, BSON_TYPES],
  ['ObjectId does not equal another ObjectId', {partner_id: new ObjectId(OID2)}, `{partner_id: ObjectId("${OID}")}`, false, BSON_TYPES],
  ['ObjectId does not equal its hex string', {partner_id: OID}, `{partner_id: ObjectId("${OID}")}`, false, BRACKETING],
  ['Extended JSON $oid equality', {partner_id: new ObjectId(OID)}, `{"partner_id": {"$oid": "${OID}"}}`, true, BSON_TYPES],
  ['ObjectId in an array', {ids: [new ObjectId(OID2), new ObjectId(OID)]}, `{ids: ObjectId("${OID}")}`, true, ARRAYS],
  ['ObjectId in a nested array is not reached', {ids: [[new ObjectId(OID)]]}, `{ids: ObjectId("${OID}")}`, false, EQ],
  ['ObjectId $lt orders by leading timestamp', {_ref: new ObjectId(EARLY)}, `{_ref: {$lt: ObjectId("${OID}")}}`, true, BSON_TYPES],
  ['ObjectId $in', {partner_id: new ObjectId(OID)}, `{partner_id: {$in: [ObjectId("${OID2}"), ObjectId("${OID}")]}}`, true, IN],

  // --- $or / $and / $nor
  ['$or matches when one branch matches', {qty: 5, price: 30}, '{$or: [{qty: {$lt: 20}}, {price: 10}]}', true, OR],
  ['$or does not match when no branch matches', {qty: 25, price: 30}, '{$or: [{qty: {$lt: 20}}, {price: 10}]}', false, OR],
  ['$and needs every branch', {price: 1.99, qty: 5}, '{$and: [{price: {$ne: 1.99}}, {price: {$exists: true}}]}', false, AND],
  ['$and on the same field', {price: 2.5}, '{$and: [{price: {$ne: 1.99}}, {price: {$exists: true}}]}', true, AND],
  ['$and with nested $or', {qty: 5, sale: false, price: 0.5}, '{$and: [{$or: [{qty: {$lt: 10}}, {qty: {$gt: 50}}]}, {$or: [{sale: true}, {price: {$lt: 5}}]}]}', true, AND],
  ['$nor matches when every branch fails', {price: 2, sale: false}, '{$nor: [{price: 1.99}, {sale: true}]}', true, NOR],
  ['$nor matches when the fields are missing', {item: 'x'}, '{$nor: [{price: 1.99}, {sale: true}]}', true, NOR],
  ['$nor does not match when a branch matches', {price: 1.99, sale: false}, '{$nor: [{price: 1.99}, {sale: true}]}', false, NOR],
  ['implicit and of two fields', {a: 1, b: 2}, '{a: 1, b: 3}', false, AND],

  // --- $exists through arrays and paths
  ['$exists on a dotted path into a subdocument', {a: {b: null}}, '{"a.b": {$exists: true}}', true, EXISTS],
  ['$exists false on a dotted path when the parent is a scalar', {a: 5}, '{"a.b": {$exists: false}}', true, EXISTS],
  ['$exists through an array of documents', {a: [{c: 1}, {b: null}]}, '{"a.b": {$exists: true}}', true, ARRAY_DOCS],
  ['$exists false through an array without the field', {a: [{c: 1}, {c: 2}]}, '{"a.b": {$exists: false}}', true, ARRAY_DOCS],
  ['$exists false does not match when an element has the field', {a: [{c: 1}, {b: 2}]}, '{"a.b": {$exists: false}}', false, ARRAY_DOCS],
  ['$exists with $nin', {qty: 5}, '{qty: {$exists: true, $nin: [5, 15]}}', false, EXISTS],
  ['$exists with $nin on another value', {qty: 7}, '{qty: {$exists: true, $nin: [5, 15]}}', true, EXISTS],

  // --- $mod
  ['$mod matches a remainder', {qty: 12}, '{qty: {$mod: [4, 0]}}', true, MOD],
  ['$mod matches zero', {qty: 0}, '{qty: {$mod: [4, 0]}}', true, MOD],
  ['$mod does not match another remainder', {qty: 5}, '{qty: {$mod: [4, 0]}}', false, MOD],
  ['$mod: a negative dividend gives a negative remainder', {qty: -6}, '{qty: {$mod: [4, -2]}}', true, MOD],
  ['$mod: a negative dividend does not give a positive remainder', {qty: -6}, '{qty: {$mod: [4, 2]}}', false, MOD],
  ['$mod: a decimal divisor is truncated toward zero', {qty: 12}, '{qty: {$mod: [4.5, 0]}}', true, MOD],
  ['$mod: a divisor of 4.99 is truncated to 4', {qty: 5}, '{qty: {$mod: [4.99, 0]}}', false, MOD],
  ['$mod does not match NaN', {qty: new Double(Number.NaN)}, '{qty: {$mod: [4, 0]}}', false, MOD],
  ['$mod does not match Infinity', {qty: new Double(Infinity)}, '{qty: {$mod: [4, 0]}}', false, MOD],
  ['$mod on a long', {qty: Long.fromString('9007199254740993')}, '{qty: {$mod: [2, 1]}}', true, MOD],
  ['$mod on an array element', {qty: [3, 8]}, '{qty: {$mod: [4, 0]}}', true, MOD],

  // --- other BSON values
  ['Timestamp equality', {ts: new Timestamp({t: 7, i: 2})}, '{ts: Timestamp(7, 2)}', true, BSON_TYPES],
  ['BinData equality', {b: new Binary(Buffer.from([1, 2, 3]), 0)}, '{b: BinData(0, "AQID")}', true, BSON_TYPES],
  ['BinData with another subtype does not match', {b: new Binary(Buffer.from([1, 2, 3]), 5)}, '{b: BinData(0, "AQID")}', false, BSON_TYPES],
  ['MaxKey equality', {m: new MaxKey()}, '{m: MaxKey}', true, TYPE],
];

/**
 * The documents of the null semantics table once kept in test/unit/query-match.test.ts. Rows whose
 * answers the manual documents are traps here; the rest (dotted null paths through arrays) stay there.
 */
const NULL_TABLE_DOCS: Record<string, Document> = {
  a_empty_subobject: {a: {}},
  a_null: {a: null},
  a_number: {a: 4},
  a_sub_b_not_null: {a: {b: 'hi'}},
  a_sub_b_null: {a: {b: null}},
  no_a: {},
  a_double_array: {a: [[]]},
  a_empty_array: {a: []},
  a_objs_some_b_null: {a: [{b: null}, {b: 3}]},
  a_objs_no_b_null: {a: [{b: 1}, {b: 3}, {b: 'string'}]},
  a_objs_some_b_missing: {a: [{b: 3}, {}]},
  a_values_all_null: {a: [null, null]},
  a_values_no_null: {a: [1, 'string', 4]},
  a_values_with_null: {a: [1, 'string', null, 4]},
};
const NON_ARRAY = ['a_empty_subobject', 'a_null', 'a_number', 'a_sub_b_not_null', 'a_sub_b_null', 'no_a'];

/** [filter, manual, documents it covers, documents that match]. */
const NULL_TABLE: [string, string, string[], string[]][] = [
  // null matches null, a missing field and an array holding null (not [] or [[]]).
  ['{a: {$eq: null}}', UNDEF, Object.keys(NULL_TABLE_DOCS), ['a_null', 'no_a', 'a_values_all_null', 'a_values_with_null']],
  // $nin is the negation of $in: null as above, [] equals [] and matches an array holding [].
  [
    '{a: {$nin: [null, []]}}',
    NIN,
    Object.keys(NULL_TABLE_DOCS),
    ['a_empty_subobject', 'a_number', 'a_sub_b_not_null', 'a_sub_b_null', 'a_objs_some_b_null', 'a_objs_no_b_null', 'a_objs_some_b_missing', 'a_values_no_null'],
  ],
  // $elemMatch needs an array with an element equal to null.
  ['{a: {$elemMatch: {$eq: null}}}', ELEM, Object.keys(NULL_TABLE_DOCS), ['a_values_all_null', 'a_values_with_null']],
  // Without arrays on the path, a.b is null, missing or a value.
  ['{"a.b": {$eq: null}}', NULLS, NON_ARRAY, ['a_empty_subobject', 'a_null', 'a_number', 'a_sub_b_null', 'no_a']],
  ['{"a.b": {$ne: null}}', NULLS, NON_ARRAY, ['a_sub_b_not_null']],
  ['{"a.b": {$exists: false}}', EXISTS, NON_ARRAY, ['a_empty_subobject', 'a_null', 'a_number', 'no_a']],
];

for (const [filter, manual, docs, matching] of NULL_TABLE) {
  for (const id of docs) {
    ROWS.push([`null table: ${filter} on ${id}`, NULL_TABLE_DOCS[id], filter, matching.includes(id), manual]);
  }
}

export const TRAPS: TrapCase[] = ROWS.map(([name, doc, filter, expected, manual, before80]) => ({
  name,
  doc,
  filter,
  expected,
  manual,
  ...(before80 === undefined ? {} : {before80}),
}));

// ---------------------------------------------------------------------------------------------
// Serialising trap documents, including BSON undefined.

function hasUndefined(value: unknown): boolean {
  if (value === BSON_UNDEFINED) return true;
  if (Array.isArray(value)) return value.some(hasUndefined);
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.values(value as Record<string, unknown>).some(hasUndefined);
  }
  return false;
}

export function containsUndefined(doc: Document): boolean {
  return hasUndefined(doc);
}

/** Replaces the undefined marker by MaxKey (also a value of zero bytes), to be retyped after serialising. */
function withPlaceholder(value: unknown): unknown {
  if (value === BSON_UNDEFINED) return new MaxKey();
  if (Array.isArray(value)) return value.map(withPlaceholder);
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, withPlaceholder(v)]));
  }
  return value;
}

/** Walks one BSON document (or array) and turns every MaxKey element into undefined (type 6). */
function retype(bytes: Buffer, start: number): void {
  const end = start + bytes.readInt32LE(start) - 1;
  let pos = start + 4;
  while (pos < end) {
    const type = bytes[pos];
    let at = bytes.indexOf(0, pos + 1) + 1;
    if (type === 0x7f) bytes[pos] = 0x06;
    switch (type) {
      case 0x01: case 0x09: case 0x11: case 0x12: at += 8; break;
      case 0x02: case 0x0d: case 0x0e: at += 4 + bytes.readInt32LE(at); break;
      case 0x03: case 0x04: retype(bytes, at); at += bytes.readInt32LE(at); break;
      case 0x05: at += 5 + bytes.readInt32LE(at); break;
      case 0x07: at += 12; break;
      case 0x08: at += 1; break;
      case 0x0b: at = bytes.indexOf(0, bytes.indexOf(0, at) + 1) + 1; break;
      case 0x10: at += 4; break;
      case 0x13: at += 16; break;
      case 0x06: case 0x0a: case 0x7f: case 0xff: break;
      default: throw new Error(`trap documents do not use BSON type 0x${type.toString(16)}`);
    }
    pos = at;
  }
}

/** The document's BSON bytes; undefined markers become BSON undefined (type 6). */
export function trapBytes(doc: Document): Buffer {
  if (!hasUndefined(doc)) return Buffer.from(BSON.serialize(doc));
  const bytes = Buffer.from(BSON.serialize(withPlaceholder(doc) as Document));
  retype(bytes, 0);
  return bytes;
}

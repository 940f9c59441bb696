/**
 * An in-memory MongoDB wire-protocol server for tests on machines without mongod. Test support
 * only: documents are kept as the BSON bytes received; filters, sorts, unique indexes, collations
 * and validators follow mongod's documented semantics (match.ts, compare.ts, schema.ts), while
 * projections, pipelines after their leading `$match` and update operators still run through mingo.
 */
export {startTestMongoServer, type TestMongoServer} from './server.js';

/**
 * An in-memory MongoDB wire-protocol server for tests on machines without mongod. Test support
 * only: documents are kept as the BSON bytes received; filters, sorts, unique indexes, collations,
 * validators (match.ts, compare.ts, schema.ts) and update operators (update.ts, pipeline-update.ts)
 * follow mongod's documented semantics, while projections and pipelines after their leading `$match`
 * still run through mingo. In replica-set mode it logs every write to `local.oplog.rs` (oplog.ts).
 */
export {startTestMongoServer, type TestMongoServer, type TestMongoServerOptions} from './server.js';

/**
 * An in-memory MongoDB wire-protocol server for tests on machines without mongod. Test support
 * only: documents are kept as the BSON bytes received and queries run through mingo.
 */
export {startTestMongoServer, type TestMongoServer} from './server.js';

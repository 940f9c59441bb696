/**
 * Starts the test server and prints its URI on stdout:
 *   node --import tsx test/support/mongo-server/main.ts [--port N] [--host H] [--repl-set NAME]
 * With --repl-set it is the primary of a one-member replica set and writes an oplog.
 * Runs until SIGINT or SIGTERM.
 */
import {parseArgs} from 'node:util';
import {startTestMongoServer} from './index.js';

const {values} = parseArgs({options: {port: {type: 'string', default: '0'}, host: {type: 'string', default: '127.0.0.1'}, 'repl-set': {type: 'string'}}});
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`invalid --port ${values.port}: give a TCP port number (0 picks a free one)`);
  process.exit(2);
}
const server = await startTestMongoServer({port, host: values.host, ...(values['repl-set'] ? {replSet: values['repl-set']} : {})});
console.log(server.uri);
const stop = (): void => {
  void server.close().then(() => process.exit(0));
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);

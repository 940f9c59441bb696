/**
 * `npm run --silent sandbox`: start the local sandbox, print one JSON line when ready, stay up
 * until SIGINT or SIGTERM, then stop everything it started.
 */
import {startSandbox} from './sandbox-lib.js';

const sandbox = await startSandbox();
process.stderr.write(`sandbox: MongoDB backend ${sandbox.info.mongo} (${sandbox.info.mongoDetail}); stop with Ctrl-C\n`);
process.stdout.write(`${JSON.stringify(sandbox.info)}\n`);
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await sandbox.stop();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
// Keep the event loop alive; the servers may run in child processes.
setInterval(() => undefined, 1 << 30);

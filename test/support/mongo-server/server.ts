/** The TCP server: one in-memory store shared by every connection. */
import net from 'node:net';
import {encodeReply} from './bson-values.js';
import {Cursors, type ServerState, runCommand} from './commands.js';
import {Oplog} from './oplog.js';
import {Store} from './storage.js';
import {MessageReader, OP_MSG, OP_QUERY, opMsgReply, opReply, parseOpMsg, parseOpQuery} from './wire.js';

export interface TestMongoServer {
  uri: string;
  port: number;
  close(): Promise<void>;
}

export interface TestMongoServerOptions {
  port?: number;
  host?: string;
  /**
   * Replica-set mode: hello names this one-member set and every write is logged to
   * `local.oplog.rs` (oplog.ts). Without it the server is a standalone, as before.
   */
  replSet?: string;
  /** Replica-set mode: seconds without a write after which a no-op entry is logged (mongod's default 10; 0: never). */
  periodicNoopIntervalSecs?: number;
}

export async function startTestMongoServer(opts: TestMongoServerOptions = {}): Promise<TestMongoServer> {
  const host = opts.host ?? '127.0.0.1';
  const store = new Store();
  if (opts.replSet) store.oplog = new Oplog(opts.replSet, store, opts.periodicNoopIntervalSecs);
  let address = '';
  const cursors = new Cursors();
  const sockets = new Set<net.Socket>();
  const startedAt = Date.now();
  let nextConnectionId = 1;
  let nextRequestId = 1;

  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    const state: ServerState = {store, address, cursors, startedAt, connectionId: nextConnectionId++, connections: () => sockets.size};
    const reader = new MessageReader();
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const msg of reader.push(chunk)) {
          if (msg.opCode !== OP_MSG && msg.opCode !== OP_QUERY) {
            // Compression is never advertised, so anything else is a client bug: drop the connection.
            socket.destroy();
            return;
          }
          const cmd = msg.opCode === OP_MSG ? parseOpMsg(msg.bytes) : parseOpQuery(msg.bytes);
          const reply = encodeReply(runCommand(cmd, state));
          if (cmd.moreToCome) continue;
          const requestId = nextRequestId++;
          socket.write(cmd.legacy ? opReply(reply, requestId, msg.requestId) : opMsgReply(reply, requestId, msg.requestId));
        }
      } catch {
        socket.destroy();
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address();
  if (bound === null || typeof bound === 'string') throw new Error('test MongoDB server did not bind a TCP port');
  const port = bound.port;
  const uriHost = host.includes(':') ? `[${host}]` : host;
  address = `${uriHost}:${port}`;
  let closing: Promise<void> | undefined;
  return {
    uri: `mongodb://${uriHost}:${port}`,
    port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        store.oplog?.stop();
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      });
      return closing;
    },
  };
}

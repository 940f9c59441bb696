/**
 * A TCP proxy between the CLI and a test server (S3 or MongoDB) that can freeze the server's
 * replies at a chosen moment. Interruption tests use it to hold the CLI mid-download or
 * mid-write, deterministically, before sending Ctrl-C: no sleeps, no racing a fast loopback.
 */
import net from 'node:net';

interface Pair {
  client: net.Socket;
  upstream: net.Socket;
  /** The last bytes the client sent, so a marker split across two reads is still seen. */
  tail: Buffer;
  /** Server bytes kept back while held. */
  queue: Buffer[];
}

export interface TcpProxy {
  port: number;
  /** Bytes forwarded from the server to the client so far. */
  readonly serverBytes: number;
  /**
   * Stop forwarding replies once `bytes` more have reached the client; resolves when held.
   * The server keeps running: it just cannot hand the client anything further.
   */
  holdRepliesAfter(bytes: number): Promise<void>;
  /**
   * Stop forwarding replies on the connection that sends a request holding `marker` (the
   * request itself is forwarded, so the server carries it out); resolves when that happened.
   */
  holdRepliesTo(marker: Buffer, options?: {skip?: number}): Promise<void>;
  /** Forward everything again. */
  release(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  const pairs = new Set<Pair>();
  let serverBytes = 0;
  let held = false;
  let byteLimit: {at: number; resolve: () => void} | null = null;
  let markerRule: {marker: Buffer; skip: number; resolve: () => void} | null = null;

  const hold = () => {
    held = true;
    for (const p of pairs) p.upstream.pause();
  };

  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, targetHost);
    const pair: Pair = {client, upstream, tail: Buffer.alloc(0), queue: []};
    pairs.add(pair);
    if (held) upstream.pause();
    client.on('data', (chunk: Buffer) => {
      upstream.write(chunk);
      if (!markerRule) return;
      const window = Buffer.concat([pair.tail, chunk]);
      pair.tail = window.subarray(Math.max(0, window.length - markerRule.marker.length));
      if (window.includes(markerRule.marker)) {
        if (markerRule.skip > 0) {
          markerRule.skip--;
          return;
        }
        const rule = markerRule;
        markerRule = null;
        hold();
        rule.resolve();
      }
    });
    upstream.on('data', (chunk: Buffer) => {
      if (held) {
        pair.queue.push(chunk);
        return;
      }
      if (byteLimit && serverBytes + chunk.length >= byteLimit.at) {
        // Forward up to the limit, keep the rest of this chunk for after release().
        const cut = Math.max(0, byteLimit.at - serverBytes);
        client.write(chunk.subarray(0, cut));
        serverBytes += cut;
        pair.queue.push(chunk.subarray(cut));
        const limit = byteLimit;
        byteLimit = null;
        hold();
        limit.resolve();
        return;
      }
      serverBytes += chunk.length;
      client.write(chunk);
    });
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', end);
    upstream.on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;

  return {
    port,
    get serverBytes() {
      return serverBytes;
    },
    holdRepliesAfter(bytes: number) {
      return new Promise<void>((resolve) => {
        byteLimit = {at: serverBytes + bytes, resolve};
      });
    },
    holdRepliesTo(marker: Buffer, options: {skip?: number} = {}) {
      return new Promise<void>((resolve) => {
        markerRule = {marker, skip: options.skip ?? 0, resolve};
      });
    },
    release() {
      held = false;
      byteLimit = null;
      markerRule = null;
      for (const p of pairs) {
        for (const chunk of p.queue.splice(0)) {
          serverBytes += chunk.length;
          p.client.write(chunk);
        }
        p.upstream.resume();
      }
    },
    async close() {
      for (const p of pairs) {
        p.client.destroy();
        p.upstream.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The bytes a MongoDB command named `name` starts its body with (a BSON string element). */
export function mongoCommandMarker(name: string): Buffer {
  return Buffer.concat([Buffer.from([0x02]), Buffer.from(name), Buffer.from([0x00])]);
}

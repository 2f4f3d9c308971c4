// DNS clients for tests and benchmarks: one query's bytes, a TCP exchange, a crowd of TCP
// connections that hold slots without asking anything (idle, or dripping a byte at a time).
// Independent of vitest so bench scripts can import it.
import net from 'node:net';

/** A query for `name` (type A unless said), RD set, no EDNS. */
export function query(id: number, name: string, type = 1): Buffer {
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  const header = Buffer.from([id >> 8, id & 0xff, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
  return Buffer.concat([header, ...labels, Buffer.from([0, 0, type, 0, 1])]);
}

/** Sends every query in one write on one connection; resolves the length-prefixed replies. */
export function tcpExchange(
  server: { host: string; port: number },
  queries: Buffer[],
  localAddress?: string,
): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ ...server, ...(localAddress ? { localAddress } : {}) });
    let buffered = Buffer.alloc(0);
    const replies: Buffer[] = [];
    socket.on('data', (chunk) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        replies.push(buffered.subarray(2, 2 + buffered.readUInt16BE(0)));
        buffered = buffered.subarray(2 + buffered.readUInt16BE(0));
      }
      if (replies.length === queries.length) {
        socket.end();
        resolve(replies);
      }
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error(`closed after ${replies.length} replies`)));
    socket.write(
      Buffer.concat(
        queries.flatMap((q) => {
          const prefix = Buffer.alloc(2);
          prefix.writeUInt16BE(q.length, 0);
          return [prefix, q];
        }),
      ),
    );
    setTimeout(() => reject(new Error(`only ${replies.length} of ${queries.length} replies`)), 5_000).unref();
  });
}

/** Many TCP connections from <base>.1 .. <base>.<sources> that never send a whole message. */
export interface Crowd {
  /** Connections made (some then closed by the server). */
  settled(): number;
  /** Connections the server closed. */
  closed(): number;
  /** Connections a dripping crowd opened again after the server closed one. */
  reconnects(): number;
  stop(): void;
}

export function openCrowd(
  server: { host: string; port: number },
  { sources, perSource, base, drip }: { sources: number; perSource: number; base: string; drip: boolean },
): Crowd {
  const open = new Set<net.Socket>();
  let settled = 0;
  let closed = 0;
  let reconnects = 0;
  let running = true;
  // Connects are paced so the listen backlog never overflows: past it, the kernel completes the
  // client's handshake but drops the server's side, leaving "connected" sockets the server never saw.
  const waiting = Array.from({ length: sources * perSource }, (_, i) => `${base}.${1 + (i % sources)}`);
  let connecting = 0;
  const pump = () => {
    while (running && connecting < 128 && waiting.length > 0) connect(waiting.pop() as string);
  };
  const connect = (source: string) => {
    connecting += 1;
    const socket = net.connect({ ...server, localAddress: source });
    socket.on('error', () => undefined);
    socket.once('connect', () => {
      connecting -= 1;
      settled += 1;
      open.add(socket);
      // A length prefix promising 512 bytes that will come one at a time, or never.
      if (drip) socket.write(Buffer.from([2, 0]));
      pump();
    });
    socket.once('close', () => {
      if (!open.delete(socket)) connecting -= 1;
      closed += 1;
      if (drip && running) {
        reconnects += 1;
        waiting.push(source);
      }
      pump();
    });
    socket.resume();
  };
  pump();
  const dripper = drip
    ? setInterval(() => {
        for (const socket of open) socket.write(Buffer.from([0]));
      }, 2_000)
    : undefined;
  return {
    settled: () => settled,
    closed: () => closed,
    reconnects: () => reconnects,
    stop() {
      running = false;
      clearInterval(dripper);
      for (const socket of open) socket.destroy();
    },
  };
}

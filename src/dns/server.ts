// Edge: UDP and TCP sockets on dns.listen around the Responder. Nothing here decides an answer.
import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import type { ListenAddress } from '../config/schema.js';
import type { Outcome, Responder, Transport } from './responder.js';
import { TcpSlots } from './tcp-slots.js';

export interface DnsServerOptions {
  readonly listen: ListenAddress;
  readonly responder: Responder;
  readonly log: {
    debug(obj: object, msg: string): void;
    warn(obj: object, msg: string): void;
    /** pino's: when debug is off, UDP replies are sent without a completion callback. */
    isLevelEnabled?(level: string): boolean;
  };
  /** Between messages (RFC 7766 6.2.3: seconds, not minutes). Default TCP_DEFAULTS.idleTimeoutMs. */
  readonly tcpIdleTimeoutMs?: number;
  /** For each whole message, from its first byte. Default TCP_DEFAULTS.messageDeadlineMs. */
  readonly tcpMessageDeadlineMs?: number;
  /** All sources together; when reached, the oldest idle connection makes room. */
  readonly maxTcpConnections?: number;
  /** One source address; beyond it, its new connections are refused. */
  readonly maxTcpConnectionsPerSource?: number;
  readonly onOutcome?: (outcome: Outcome, transport: Transport) => void;
  /** Each TCP connection closed or refused to keep the slots free (for a metric). */
  readonly onTcpShed?: (reason: TcpShedReason) => void;
}

/** Why a TCP connection was closed or refused by us rather than by its client. */
export const TCP_SHED_REASONS = ['evicted', 'source_limit', 'message_deadline', 'idle_timeout'] as const;
export type TcpShedReason = (typeof TCP_SHED_REASONS)[number];

/**
 * The DNS-over-TCP limits (RFC 7766 6.2), chosen near what operators know from other servers:
 * CoreDNS reads a message within 3 s and keeps an idle connection 10 s (BIND: 30 s, Unbound: 30 s,
 * both far fewer connections: BIND tcp-clients 150, Unbound 10 per thread). 1,000 connections
 * keep well under any fd limit a pod gets. 100 from one address is far more than a CoreDNS pod
 * opens (it uses TCP only to retry a truncated answer) and a tenth of the whole.
 */
export const TCP_DEFAULTS = {
  idleTimeoutMs: 10_000,
  messageDeadlineMs: 3_000,
  maxConnections: 1_000,
  maxPerSource: 100,
} as const;

// Replies queued for a client that does not read them, before it is cut off.
const MAX_TCP_PENDING_WRITE = 1 << 20;
// Under open-loop load the default ~208 KB receive buffer drops datagrams at about 50k/s (measured
// on the bench machine); 4 MB keeps up with what one Node.js thread can answer.
const UDP_RECEIVE_BUFFER = 4 << 20;
// Connections the kernel completes before we accept them. Node's default, 511, overflows when a
// thousand clients reconnect at once (as drippers cut off at their deadline do); past it a new
// client's SYN is dropped and retried a second later, however free the slots are. The kernel caps
// it at net.core.somaxconn (4096 by default since Linux 5.4).
const TCP_BACKLOG = 4096;
// After our FIN, how long a client that does not read its last replies keeps the fd.
const CLOSE_GRACE_MS = 1_000;
// At most one warning per this long about connections shed, with the counts since the last one.
const SHED_LOG_INTERVAL_MS = 10_000;

/** One accepted TCP connection: its socket and the timer for its slot's deadline. */
interface TcpConnection {
  readonly socket: net.Socket;
  timer: NodeJS.Timeout | undefined;
}

export class DnsServer {
  readonly #udp: dgram.Socket;
  readonly #tcp: net.Server;
  readonly #connections = new Set<net.Socket>();
  #slots: TcpSlots<TcpConnection> | undefined;

  private constructor(udp: dgram.Socket, tcp: net.Server) {
    this.#udp = udp;
    this.#tcp = tcp;
  }

  /** Binds UDP and TCP; rejects with the bind error (EADDRINUSE, ...) and leaves nothing open. */
  static async start(options: DnsServerOptions): Promise<DnsServer> {
    // With port 0 the port UDP is given may already be taken for TCP by someone else: take another
    // pair then, rather than fail a start that asked for any free port.
    for (let attempt = 1; ; attempt++) {
      try {
        const server = await DnsServer.#bind(options);
        server.#serveUdp(options);
        server.#serveTcp(options);
        return server;
      } catch (err) {
        const taken = (err as NodeJS.ErrnoException).code === 'EADDRINUSE';
        if (options.listen.port !== 0 || !taken || attempt >= 5) throw err;
      }
    }
  }

  static async #bind(options: DnsServerOptions): Promise<DnsServer> {
    const { host, port } = options.listen;
    const udp = dgram.createSocket({
      type: net.isIPv6(host) ? 'udp6' : 'udp4',
      recvBufferSize: UDP_RECEIVE_BUFFER,
    });
    const tcp = net.createServer({ noDelay: true });
    const server = new DnsServer(udp, tcp);
    try {
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind({ address: host, port, exclusive: true }, () => {
          udp.off('error', reject);
          resolve();
        });
      });
      // With port 0 (tests) TCP takes the port UDP got, so one address serves both.
      const udpPort = (udp.address() as AddressInfo).port;
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen({ host, port: udpPort, exclusive: true, backlog: TCP_BACKLOG }, () => {
          tcp.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      udp.close();
      tcp.close();
      throw err;
    }
    return server;
  }

  get address(): { host: string; port: number } {
    const info = this.#udp.address() as AddressInfo;
    return { host: info.address, port: info.port };
  }

  #serveUdp(options: DnsServerOptions): void {
    const { responder, onOutcome, log } = options;
    const record = onOutcome ? (o: Outcome) => onOutcome(o, 'udp') : undefined;
    // A completion callback costs a process.nextTick per reply (dgram defers it even when the send
    // finished at once), about a tenth of what a hot answer costs; its only use is a debug line.
    const debug = log.isLevelEnabled === undefined || log.isLevelEnabled('debug');
    this.#udp.on('message', (message, peer) => {
      let reply: Buffer | undefined;
      try {
        reply = responder.respond(message, 'udp', record);
      } catch (err) {
        // respond() is meant never to throw; if it does, this one query goes unanswered, not the rest.
        log.warn({ err, peer: peer.address }, 'dns: failed to answer a UDP query');
        return;
      }
      // A datagram from port 0 cannot be answered (send throws ERR_SOCKET_BAD_PORT).
      if (!reply || peer.port === 0) return;
      if (!debug) {
        this.#udp.send(reply, peer.port, peer.address);
        return;
      }
      this.#udp.send(reply, peer.port, peer.address, (err) => {
        if (err) log.debug({ err, peer: peer.address }, 'dns: UDP reply not sent');
      });
    });
    this.#udp.on('error', (err) => log.warn({ err }, 'dns: UDP socket error'));
  }

  /** Open DNS-over-TCP connections holding a slot (for tests and the bench). */
  get tcpConnections(): number {
    return this.#slots?.size ?? 0;
  }

  #serveTcp(options: DnsServerOptions): void {
    const { responder, onOutcome, log } = options;
    const slots = new TcpSlots<TcpConnection>({
      idleTimeoutMs: options.tcpIdleTimeoutMs ?? TCP_DEFAULTS.idleTimeoutMs,
      messageDeadlineMs: options.tcpMessageDeadlineMs ?? TCP_DEFAULTS.messageDeadlineMs,
      maxConnections: options.maxTcpConnections ?? TCP_DEFAULTS.maxConnections,
      maxPerSource: options.maxTcpConnectionsPerSource ?? TCP_DEFAULTS.maxPerSource,
    });
    this.#slots = slots;
    const record = onOutcome ? (o: Outcome) => onOutcome(o, 'tcp') : undefined;
    const shed = shedReporter(log, options.onTcpShed);

    const release = (conn: TcpConnection) => {
      slots.release(conn);
      clearTimeout(conn.timer);
      conn.timer = undefined;
    };
    // One timer per connection, re-armed only when its state changes (a message starts or ends),
    // never per byte: a byte does not postpone the deadline of the message it belongs to.
    const arm = (conn: TcpConnection, now: number) => {
      const deadline = slots.deadline(conn);
      // Released (evicted, timed out): whatever timer it has left is its close grace.
      if (deadline === undefined) return;
      clearTimeout(conn.timer);
      conn.timer = setTimeout(() => expire(conn), Math.max(0, deadline - now));
    };
    const expire = (conn: TcpConnection) => {
      const idle = slots.isIdle(conn);
      release(conn);
      if (!idle) {
        shed('message_deadline');
        conn.socket.destroy();
        return;
      }
      shed('idle_timeout');
      // end() alone only half-closes: a client that never closes its side would keep the fd for
      // ever. So the socket is destroyed once our FIN and what is queued have gone to the kernel,
      // or after a grace if the client does not read them.
      conn.socket.end(() => conn.socket.destroy());
      conn.timer = setTimeout(() => conn.socket.destroy(), CLOSE_GRACE_MS);
    };

    this.#tcp.on('connection', (socket: net.Socket) => {
      const conn: TcpConnection = { socket, timer: undefined };
      const now = Date.now();
      const admission = slots.admit(conn, sourceOf(socket), now);
      if (!admission.admitted) {
        shed('source_limit');
        socket.destroy();
        return;
      }
      if (admission.evicted) {
        release(admission.evicted);
        shed('evicted');
        admission.evicted.socket.destroy();
      }
      this.#connections.add(socket);
      arm(conn, now);
      socket.on('close', () => {
        this.#connections.delete(socket);
        release(conn);
      });
      socket.on('error', (err) => log.debug({ err }, 'dns: TCP connection error'));
      let pending: Buffer = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        const continuing = pending.length > 0;
        pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
        let answered = false;
        // Each message is length-prefixed (RFC 1035 4.2.2); several may arrive in one chunk.
        while (pending.length >= 2) {
          const length = pending.readUInt16BE(0);
          if (pending.length < 2 + length) break;
          const message = pending.subarray(2, 2 + length);
          pending = pending.subarray(2 + length);
          answered = true;
          let reply: Buffer | undefined;
          try {
            reply = responder.respond(message, 'tcp', record);
          } catch (err) {
            log.warn({ err }, 'dns: failed to answer a TCP query');
          }
          if (!reply) continue;
          const prefix = Buffer.allocUnsafe(2);
          prefix.writeUInt16BE(reply.length, 0);
          socket.write(Buffer.concat([prefix, reply]));
          // A client that sends but never reads must not make us buffer without bound.
          if (socket.writableLength > MAX_TCP_PENDING_WRITE) {
            socket.destroy();
            return;
          }
        }
        // The slot's deadline moves only when a message starts or the last one is complete.
        if (pending.length === 0) {
          if (answered) {
            slots.becomeIdle(conn, Date.now());
            arm(conn, Date.now());
          }
        } else if (answered || !continuing) {
          slots.startMessage(conn, Date.now());
          arm(conn, Date.now());
        }
      });
    });
    this.#tcp.on('error', (err) => log.warn({ err }, 'dns: TCP server error'));
  }

  /** Stops accepting, lets open TCP connections finish what they were sent, then closes. */
  async close(): Promise<void> {
    const tcpClosed = new Promise<void>((resolve) => this.#tcp.close(() => resolve()));
    for (const socket of this.#connections) socket.end();
    const udpClosed = new Promise<void>((resolve) => this.#udp.close(() => resolve()));
    // A peer that never closes its side must not hold up shutdown.
    const deadline = setTimeout(() => {
      for (const socket of this.#connections) socket.destroy();
    }, 1_000);
    await Promise.all([tcpClosed, udpClosed]);
    clearTimeout(deadline);
  }
}

/** The client's address; an IPv4 client on a dual-stack socket counts as its IPv4 address. */
function sourceOf(socket: net.Socket): string {
  const address = socket.remoteAddress ?? '';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

/**
 * Counts each connection shed, for the callback and for one warning per SHED_LOG_INTERVAL_MS
 * with the counts by reason: a flood is said once, not once per connection.
 */
function shedReporter(
  log: DnsServerOptions['log'],
  onShed: ((reason: TcpShedReason) => void) | undefined,
): (reason: TcpShedReason) => void {
  let counts: Partial<Record<TcpShedReason, number>> = {};
  let lastLog = 0;
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    timer = undefined;
    lastLog = Date.now();
    log.warn({ shed: counts }, 'dns: TCP connections closed or refused to keep slots free');
    counts = {};
  };
  return (reason) => {
    onShed?.(reason);
    // Idle timeouts are the normal end of a connection: counted for the metric, not warned about.
    if (reason === 'idle_timeout') return;
    counts[reason] = (counts[reason] ?? 0) + 1;
    if (timer) return;
    const wait = Math.max(0, lastLog + SHED_LOG_INTERVAL_MS - Date.now());
    timer = setTimeout(flush, wait);
    timer.unref();
  };
}

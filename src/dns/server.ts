// Edge: UDP and TCP sockets on dns.listen around the Responder. Nothing here decides an answer.
import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import type { ListenAddress } from '../config/schema.js';
import type { Outcome, Responder, Transport } from './responder.js';

export interface DnsServerOptions {
  readonly listen: ListenAddress;
  readonly responder: Responder;
  readonly log: {
    debug(obj: object, msg: string): void;
    warn(obj: object, msg: string): void;
    /** pino's: when debug is off, UDP replies are sent without a completion callback. */
    isLevelEnabled?(level: string): boolean;
  };
  /** RFC 7766 6.2.3 suggests seconds, not minutes: idle connections pin memory. */
  readonly tcpIdleTimeoutMs?: number;
  readonly maxTcpConnections?: number;
  readonly onOutcome?: (outcome: Outcome, transport: Transport) => void;
}

// A client that sends but never reads must not make us buffer without bound.
const MAX_TCP_PENDING_WRITE = 1 << 20;
// Under open-loop load the default ~208 KB receive buffer drops datagrams at about 50k/s
// (RECIPES.md); 4 MB keeps up with what one Node.js thread can answer.
const UDP_RECEIVE_BUFFER = 4 << 20;

export class DnsServer {
  readonly #udp: dgram.Socket;
  readonly #tcp: net.Server;
  readonly #connections = new Set<net.Socket>();

  private constructor(udp: dgram.Socket, tcp: net.Server) {
    this.#udp = udp;
    this.#tcp = tcp;
  }

  /** Binds UDP and TCP; rejects with the bind error (EADDRINUSE, ...) and leaves nothing open. */
  static async start(options: DnsServerOptions): Promise<DnsServer> {
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
        tcp.listen({ host, port: udpPort, exclusive: true }, () => {
          tcp.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      udp.close();
      tcp.close();
      throw err;
    }
    server.#serveUdp(options);
    server.#serveTcp(options);
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

  #serveTcp(options: DnsServerOptions): void {
    const { responder, onOutcome, log } = options;
    const idleMs = options.tcpIdleTimeoutMs ?? 10_000;
    const maxConnections = options.maxTcpConnections ?? 1_000;
    const record = onOutcome ? (o: Outcome) => onOutcome(o, 'tcp') : undefined;
    this.#tcp.on('connection', (socket) => {
      if (this.#connections.size >= maxConnections) {
        socket.destroy();
        return;
      }
      this.#connections.add(socket);
      // end() alone only half-closes: a client that never closes its side would keep the slot
      // (and the fd) for ever, and enough of them would lock every client out of TCP. So the
      // socket is destroyed once our FIN and anything still queued have been handed to the kernel.
      socket.setTimeout(idleMs, () => socket.end(() => socket.destroy()));
      socket.on('close', () => this.#connections.delete(socket));
      socket.on('error', (err) => log.debug({ err }, 'dns: TCP connection error'));
      let pending: Buffer = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
        // Each message is length-prefixed (RFC 1035 4.2.2); several may arrive in one chunk.
        while (pending.length >= 2) {
          const length = pending.readUInt16BE(0);
          if (pending.length < 2 + length) break;
          const message = pending.subarray(2, 2 + length);
          pending = pending.subarray(2 + length);
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
          if (socket.writableLength > MAX_TCP_PENDING_WRITE) {
            socket.destroy();
            return;
          }
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

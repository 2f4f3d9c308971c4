// The practical ceiling for one Node.js thread answering UDP: node:dgram, one reply precomputed
// from the first query for the benchmark's name, and per query only a copy of it with the ID and
// RD bit patched. No decoding, no checks: nothing a real server could do with less.
// Same receive buffer as our server (4 MB), so the socket is not what differs.
//   node bench/servers/ceiling.mjs HOST   -> prints {"listening":{"host","port"}} and serves
import dgram from 'node:dgram';

const host = process.argv[2] ?? '127.0.0.1';
const socket = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
let template;

// proxy.egress.svc A -> 10.0.0.1, TTL 5: question copied as asked, answer owner a pointer to it.
function buildTemplate(query) {
  let end = 12;
  while (query[end] !== 0) end += query[end] + 1;
  const questionEnd = end + 5;
  const out = Buffer.alloc(questionEnd + 16);
  query.copy(out, 0, 0, questionEnd);
  out[2] = 0x84;
  out[3] = 0;
  out.writeUInt16BE(1, 4);
  out.writeUInt16BE(1, 6);
  out.writeUInt16BE(0, 8);
  out.writeUInt16BE(0, 10);
  out.set([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 10, 0, 0, 1], questionEnd);
  return out;
}

socket.on('message', (query, peer) => {
  if (query.length < 12 || peer.port === 0) return;
  template ??= buildTemplate(query);
  const out = Buffer.allocUnsafe(template.length);
  template.copy(out);
  out[0] = query[0];
  out[1] = query[1];
  out[2] = 0x84 | (query[2] & 0x01);
  socket.send(out, peer.port, peer.address);
});
socket.bind(0, host, () => {
  process.stdout.write(`${JSON.stringify({ listening: socket.address() })}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));

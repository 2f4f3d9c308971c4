// A plain dns2 3.1.1 server, as its README shows it: decode a Packet per query, build the
// response Packet, encode it. What an operator gets from the library without a hand-made fast path.
//   node bench/servers/dns2-plain.mjs HOST  -> prints {"listening":{"host","port"}} and serves
import dns2 from 'dns2';

const { Packet } = dns2;
const host = process.argv[2] ?? '127.0.0.1';

const server = dns2.createServer({
  udp: true,
  handle(request, send) {
    const response = Packet.createResponseFromRequest(request);
    const [question] = request.questions;
    response.header.aa = 1;
    if (question && question.name.toLowerCase() === 'proxy.egress.svc' && question.type === Packet.TYPE.A) {
      response.answers.push({
        name: question.name,
        type: Packet.TYPE.A,
        class: Packet.CLASS.IN,
        ttl: 5,
        address: '10.0.0.1',
      });
    } else {
      response.header.rcode = Packet.RCODE.NXDOMAIN;
    }
    send(response);
  },
});
const addresses = await server.listen({ udp: { port: 0, address: host } });
process.stdout.write(`${JSON.stringify({ listening: addresses.udp })}\n`);
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));

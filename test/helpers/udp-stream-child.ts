// The process behind startUdpStreamProcess (udp-stream.ts): streams queries until its stdin ends
// with the lateness bound, then prints the result as JSON.
import { type StreamResult, startUdpStream } from './udp-stream.js';

const { server, ...options } = JSON.parse(process.argv[2] ?? '{}');
const stream = startUdpStream(server, options);
let input = '';
process.stdin.on('data', (chunk: Buffer) => {
  input += chunk.toString();
});
process.stdin.on('end', async () => {
  const result: StreamResult = await stream.stop(Number(input.trim()));
  process.stdout.write(JSON.stringify(result));
});

// A noisy neighbour, as its own process: holds many TCP connections to the given ports and says
// nothing on them. Run by flood.ts (under prlimit, so its own descriptor limit is not the bound).
// Plain JavaScript so it starts without a build.
//
//   node flood.mjs '{"targets":[{"host":"127.0.0.1","port":8080}],"connections":20000,...}'
//
// Options (JSON, the only argument):
//   targets      [{host, port}], connections spread over them in turn
//   connections  how many to hold open at once, in all
//   sources      local addresses to connect from, in turn (more ports, and several "clients")
//   lifeMs       0: hold each until the server closes it; else close each after a random time
//                in [0, lifeMs] (churn)
//   reopen       open a new connection for each one that ends (default true)
//   inFlight     at most this many connects pending at once (default 1000)
//   ratePerSec   at most this many new connections a second (default: as fast as it can)
// Every 250 ms it prints one JSON line of counts; SIGTERM ends it at once.
import net from 'node:net';

const options = JSON.parse(process.argv[2] ?? '{}');
const targets = options.targets;
const sources = options.sources ?? ['127.0.0.1'];
const wanted = options.connections;
const lifeMs = options.lifeMs ?? 0;
const reopen = options.reopen ?? true;
const inFlightMax = options.inFlight ?? 1000;
const rate = options.ratePerSec ?? 0;
// Tokens for new connections, refilled every 50 ms; unbounded without a rate.
let budget = rate > 0 ? 0 : Number.POSITIVE_INFINITY;
if (rate > 0)
  setInterval(() => {
    budget = Math.min(budget + rate / 20, rate / 10);
    fill();
  }, 50);

const counts = {
  open: 0,
  connecting: 0,
  opened: 0,
  /** Ended by the server (FIN or RST) before we closed it. */
  closedByServer: 0,
  closedByUs: 0,
  /** Connections the server closed, by how long they had been open: [<1.5 s, <2.5 s, longer]. */
  serverClosedAfter: [0, 0, 0],
  maxOpen: 0,
  errors: {},
};
let next = 0;
let live = 0;

function openOne() {
  const target = targets[next % targets.length];
  const localAddress = sources[next % sources.length];
  next += 1;
  live += 1;
  counts.connecting += 1;
  const socket = net.connect({ host: target.host, port: target.port, localAddress });
  let connectedAt;
  let ours = false;
  socket.on('connect', () => {
    counts.connecting -= 1;
    counts.open += 1;
    counts.opened += 1;
    counts.maxOpen = Math.max(counts.maxOpen, counts.open);
    connectedAt = Date.now();
    setImmediate(fill);
    if (lifeMs > 0) {
      setTimeout(() => {
        ours = true;
        socket.destroy();
      }, Math.random() * lifeMs);
    }
  });
  // Whatever the server says (a 408, a DNS reply) is read and dropped.
  socket.on('data', () => undefined);
  socket.on('error', (err) => {
    const code = err.code ?? 'other';
    counts.errors[code] = (counts.errors[code] ?? 0) + 1;
  });
  socket.on('close', () => {
    live -= 1;
    if (connectedAt === undefined) counts.connecting -= 1;
    else {
      counts.open -= 1;
      if (ours) counts.closedByUs += 1;
      else {
        counts.closedByServer += 1;
        const age = Date.now() - connectedAt;
        counts.serverClosedAfter[age < 1_500 ? 0 : age < 2_500 ? 1 : 2] += 1;
      }
    }
    if (reopen && !stopping) setImmediate(fill);
  });
}

let stopping = false;
let initial = 0;
function fill() {
  while (live < wanted && counts.connecting < inFlightMax && (reopen || initial < wanted) && budget >= 1) {
    initial += 1;
    budget -= 1;
    openOne();
  }
}

// The parent gone (its end of the pipe closed): nobody to report to, so the flood ends too.
process.stdout.on('error', () => process.exit(0));
const report = () => process.stdout.write(`${JSON.stringify({ at: Date.now(), ...counts })}\n`);
setInterval(() => {
  fill();
  report();
}, 250);
fill();
process.on('SIGTERM', () => {
  stopping = true;
  report();
  process.exit(0);
});

// Sums a .cpuprofile's self time by function (and by file, with --by-file), top N.
//   node bench/profile-summary.mjs /tmp/ef-prof/123.cpuprofile [N] [--by-file]
import { readFileSync } from 'node:fs';

const [file, n = '40'] = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const byFile = process.argv.includes('--by-file');
const profile = JSON.parse(readFileSync(file, 'utf8'));
const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
const dt = new Map();
for (let i = 0; i < profile.samples.length; i++) {
  const id = profile.samples[i];
  dt.set(id, (dt.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
}
const total = [...dt.values()].reduce((a, b) => a + b, 0);
const sums = new Map();
for (const [id, us] of dt) {
  const { callFrame: f } = nodes.get(id);
  const where = f.url.replace(/^file:\/\/\/work\/main\//, '').replace(/.*node_modules\//, '');
  const key = byFile
    ? where || `(${f.functionName || 'native'})`
    : `${f.functionName || '(anon)'} ${where}:${f.lineNumber + 1}`;
  sums.set(key, (sums.get(key) ?? 0) + us);
}
console.log(`total ${(total / 1e6).toFixed(2)} s sampled`);
for (const [key, us] of [...sums].sort((a, b) => b[1] - a[1]).slice(0, Number(n)))
  console.log(`${((100 * us) / total).toFixed(1).padStart(5)} %  ${key}`);

// Preload for profiling a process whose command line we do not control (NODE_OPTIONS refuses
// --cpu-prof): NODE_OPTIONS="--require ./bench/cpu-profile.cjs" CPU_PROFILE_DIR=/tmp/prof.
// Starts V8's sampling profiler and writes <dir>/<pid>.cpuprofile when the process exits.
const inspector = require('node:inspector');
const { writeFileSync, mkdirSync } = require('node:fs');
const { join } = require('node:path');
const dir = process.env.CPU_PROFILE_DIR;
if (dir) {
  const session = new inspector.Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 500 });
  session.post('Profiler.start');
  process.once('exit', () => {
    // The in-process session answers synchronously, so this completes before the exit.
    session.post('Profiler.stop', (err, result) => {
      if (err) return;
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, `${process.pid}.cpuprofile`), JSON.stringify(result.profile));
    });
  });
}

// `node --import ./bench/register.js bench/run.ts`: lets Node 20 (no type stripping) run the bench
// driver and the test helpers it shares, straight from their TypeScript sources. Types are erased
// with typescript's transpileModule (already a devDependency); nothing is type-checked here, that
// is `tsc --noEmit -p .`'s job. Our server itself runs from dist/, as operators run it.
import { register } from 'node:module';

register('./ts-hooks.js', import.meta.url);

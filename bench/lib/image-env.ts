// The V8 flags the image runs our server with (the Dockerfile's `ENV NODE_OPTIONS=`), so the bench
// measures the server as deployed. An empty string if the Dockerfile sets none.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const IMAGE_NODE_OPTIONS =
  /^ENV NODE_OPTIONS=(.*)$/m
    .exec(readFileSync(join(import.meta.dirname, '../../Dockerfile'), 'utf8'))?.[1]
    ?.trim() ?? '';

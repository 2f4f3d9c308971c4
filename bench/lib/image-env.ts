// The V8 flags the image runs our server with (the Dockerfile's `ENV NODE_OPTIONS=`), so the bench
// measures the server as deployed. An empty string if the Dockerfile sets none.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const IMAGE_NODE_OPTIONS =
  /^ENV NODE_OPTIONS=(.*)$/m
    .exec(readFileSync(join(import.meta.dirname, '../../Dockerfile'), 'utf8'))?.[1]
    ?.trim() ?? '';

/**
 * The sidecar's NODE_OPTIONS, which its container sets itself (k8s/squid-primary.yaml; the
 * secondary's are the same, test/unit/k8s-manifests.test.ts), replacing the image's.
 */
export const SIDECAR_NODE_OPTIONS =
  /name: NODE_OPTIONS, value: "([^"]*)"/.exec(
    readFileSync(join(import.meta.dirname, '../../k8s/squid-primary.yaml'), 'utf8'),
  )?.[1] ?? '';

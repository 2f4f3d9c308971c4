// coredns/patch-configmap.sh against a stand-in kubectl (no cluster runs here): the script reads the
// zone and the Service's address from the cluster, appends the zone's block to a Corefile without
// one, repairs a block that forwards to a stale address, leaves a current one alone, and refuses a
// Service without an address. The stand-in answers the `get`s from files and keeps each `patch`.
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { ROOT } from '../helpers/kustomize.js';

const run = promisify(execFile);
const SCRIPT = join(ROOT, 'coredns', 'patch-configmap.sh');

const STAND_IN = `#!/usr/bin/env bash
# kubectl as the script uses it: gets answered from files in $STUB, patches kept there.
case "$*" in
  *"get service egress-dns"*) cat "$STUB/service-ip" ;;
  *"get configmap egress-dns"*) cat "$STUB/config.yaml" ;;
  *"get configmap coredns"*) cat "$STUB/coredns" ;;
  *"get configmap node-local-dns"*) cat "$STUB/node-local-dns" ;;
  *"patch configmap"*)
    cm="$5"; while [[ $# -gt 0 && "$1" != --patch-file ]]; do shift; done
    cp "$2" "$STUB/patched-$cm" ;;
  *) echo "stand-in kubectl: unexpected: $*" >&2; exit 3 ;;
esac
`;

// kubeadm's Corefile, as `kubeadm init` writes it.
const KUBEADM_COREFILE = `.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30
    loop
    reload
    loadbalance
}`;

const NODE_LOCAL_COREFILE = `cluster.local:53 {
    errors
    cache {
            success 9984 30
            denial 9984 5
    }
    reload
    loop
    bind 169.254.20.10 10.96.0.10
    forward . __PILLAR__CLUSTER__DNS__ {
            force_tcp
    }
    prometheus :9253
    health 169.254.20.10:8080
    }
.:53 {
    errors
    cache 30
    reload
    loop
    bind 169.254.20.10 10.96.0.10
    forward . __PILLAR__UPSTREAM__SERVERS__
    prometheus :9253
    }`;

let stub: string;

beforeEach(async () => {
  stub = await mkdtemp(join(tmpdir(), 'ef-coredns-'));
  await writeFile(join(stub, 'kubectl'), STAND_IN);
  await chmod(join(stub, 'kubectl'), 0o755);
  await writeFile(join(stub, 'service-ip'), '10.43.12.7');
  await writeFile(join(stub, 'config.yaml'), 'dns:\n  zone: egress.internal # the zone\n  ttl: 5\n');
  await writeFile(join(stub, 'coredns'), KUBEADM_COREFILE);
  await writeFile(join(stub, 'node-local-dns'), NODE_LOCAL_COREFILE);
});
afterEach(async () => {
  await rm(stub, { recursive: true, force: true });
});

async function script(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env, STUB: stub, PATH: `${stub}:${process.env.PATH}` };
  try {
    const { stdout, stderr } = await run(SCRIPT, args, { env });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const { code, stdout, stderr } = err as { code: number; stdout: string; stderr: string };
    return { code, stdout, stderr };
  }
}

/** The Corefile a patch sets, or undefined where the script patched nothing. */
async function patched(configmap: string): Promise<string | undefined> {
  const text = await readFile(join(stub, `patched-${configmap}`), 'utf8').catch(() => undefined);
  return text === undefined ? undefined : (parseYaml(text) as { data: { Corefile: string } }).data.Corefile;
}

/** The lines of one server block (header to its closing brace), trimmed. */
function block(corefile: string, header: string): string[] {
  const lines = corefile.split('\n');
  const start = lines.findIndex((l) => l.trim() === `${header} {`);
  expect(start, `${header} block`).toBeGreaterThanOrEqual(0);
  const end = lines.findIndex((l, i) => i > start && l === '}');
  return lines.slice(start, end + 1).map((l) => l.trim());
}

describe('coredns/patch-configmap.sh', () => {
  it("appends the zone's block: the zone from the ConfigMap, the address from the Service", async () => {
    const result = await script();
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const corefile = await patched('coredns');
    expect(corefile?.startsWith(KUBEADM_COREFILE)).toBe(true);
    expect(block(corefile ?? '', 'egress.internal:53')).toEqual([
      'egress.internal:53 {',
      'errors',
      'log',
      'cache 5',
      'forward . 10.43.12.7',
      'prometheus :9153',
      '}',
    ]);
    expect(await patched('node-local-dns')).toBeUndefined();
  });

  it('leaves a block that forwards to the current address alone', async () => {
    await script();
    await writeFile(join(stub, 'coredns'), (await patched('coredns')) ?? '');
    await rm(join(stub, 'patched-coredns'));
    const result = await script();
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('already forwards to 10.43.12.7; left as is');
    expect(await patched('coredns')).toBeUndefined();
  });

  it("sets a stale block's forward address to the Service's, and touches nothing else", async () => {
    await script();
    const before = (await patched('coredns')) ?? '';
    await writeFile(join(stub, 'coredns'), before.replace('forward . 10.43.12.7', 'forward . 10.43.0.99'));
    await writeFile(join(stub, 'service-ip'), '10.43.200.1');
    const result = await script();
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('setting its forward address to 10.43.200.1');
    expect(await patched('coredns')).toBe(before.replace('forward . 10.43.12.7', 'forward . 10.43.200.1'));
  });

  it('with --node-local, adds the block to NodeLocal DNSCache too, on its bind addresses, over TCP', async () => {
    const result = await script('--node-local');
    expect(result.code).toBe(0);
    const corefile = (await patched('node-local-dns')) ?? '';
    expect(corefile.startsWith(NODE_LOCAL_COREFILE)).toBe(true);
    expect(block(corefile, 'egress.internal:53')).toEqual([
      'egress.internal:53 {',
      'errors',
      'cache 5',
      'reload',
      'bind 169.254.20.10 10.96.0.10',
      'forward . 10.43.12.7 {',
      'force_tcp',
      '}',
      'prometheus :9253',
      '}',
    ]);
  });

  it('--dry-run shows the patch and applies nothing', async () => {
    const result = await script('--dry-run');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('forward . 10.43.12.7');
    expect(await patched('coredns')).toBeUndefined();
  });

  it('refuses a Service without a clusterIP, and a config without a zone, saying which', async () => {
    await writeFile(join(stub, 'service-ip'), 'None');
    const headless = await script();
    expect(headless.code).toBe(1);
    expect(headless.stderr).toContain('service egress/egress-dns has no clusterIP');

    await writeFile(join(stub, 'service-ip'), '10.43.12.7');
    await writeFile(join(stub, 'config.yaml'), '# zone: commented.out\nhttp: { listen: 0.0.0.0:8080 }\n');
    const zoneless = await script();
    expect(zoneless.code).toBe(1);
    expect(zoneless.stderr).toContain('no dns.zone in configmap egress/egress-dns');
    expect(await patched('coredns')).toBeUndefined();
  });
});

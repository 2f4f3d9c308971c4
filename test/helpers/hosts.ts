// Names with several addresses for tests and benchmarks, in /etc/hosts: what a headless Service
// gives in a cluster (one name, one address per pod), here with loopback "pods". getaddrinfo reads
// the file on every lookup, so the real binaries see a change at their next lookup, as they would
// see a pod come or go. Each line carries a marker; run under the integration lock (one at a time).
//
//   const hosts = new HostsFile('ef-sidecars');
//   await hosts.set('squid-pods.ef.test', ['127.0.0.51', '127.0.0.52']);
//   await hosts.clear();   // afterAll: removes every line this marker added
import { readFile, writeFile } from 'node:fs/promises';

const HOSTS = '/etc/hosts';

export class HostsFile {
  readonly #marker: string;

  /** `tag` names the test or bench that owns the lines (letters, digits, hyphens). */
  constructor(tag: string) {
    this.#marker = `# egress-failover test ${tag}`;
  }

  /** The name resolves to exactly `addresses` from now on (none: the line is gone, the name unknown). */
  async set(name: string, addresses: readonly string[]): Promise<void> {
    await this.#rewrite(
      (line) => !(line.endsWith(this.#marker) && line.split(/\s+/)[1] === name),
      [...addresses.map((address) => `${address} ${name} ${this.#marker}`)],
    );
  }

  /** Removes every line of this tag. Never throws. */
  async clear(): Promise<void> {
    await this.#rewrite((line) => !line.endsWith(this.#marker), []).catch(() => undefined);
  }

  // In place, not by rename: in a container /etc/hosts is often a mount point of its own.
  async #rewrite(keep: (line: string) => boolean, add: readonly string[]): Promise<void> {
    const lines = (await readFile(HOSTS, 'utf8')).split('\n').filter((line) => line !== '' && keep(line));
    await writeFile(HOSTS, `${[...lines, ...add].join('\n')}\n`);
  }
}

// The alerts an operator applies (k8s/monitoring/prometheus-rules.yaml) are checked by Prometheus's
// own promtool: the rules parse, and each alert fires (with its labels and rendered annotations)
// when it should and stays quiet when it should not (test/fixtures/alerts/tests.yaml, two dns
// replicas throughout). And every metric the rules read is one the dns server exports, so a
// renamed metric cannot leave an alert silently watching nothing.
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify } from 'yaml';
import { createDnsMetrics } from '../../src/commands/dns/metrics.js';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');
const RULES = join(ROOT, 'k8s', 'monitoring', 'prometheus-rules.yaml');
const TESTS = join(ROOT, 'test', 'fixtures', 'alerts', 'tests.yaml');

interface Rule {
  readonly alert: string;
  readonly expr: string;
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
}
interface PrometheusRule {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace: string };
  readonly spec: { readonly groups: readonly { readonly name: string; readonly rules: readonly Rule[] }[] };
}
interface AlertCase {
  readonly alertname: string;
  readonly exp_alerts: readonly unknown[];
}
interface PromtoolTests {
  readonly tests: readonly { readonly alert_rule_test: readonly AlertCase[] }[];
}

let dir: string;
let manifest: PrometheusRule;
let rules: Rule[];

beforeAll(async () => {
  manifest = parseYaml(await readFile(RULES, 'utf8')) as PrometheusRule;
  rules = manifest.spec.groups.flatMap((g) => g.rules);
  // promtool reads a plain rule file: the PrometheusRule's spec is exactly that.
  dir = await mkdtemp(join(tmpdir(), 'ef-alerts-'));
  await writeFile(join(dir, 'rules.yaml'), stringify(manifest.spec));
  await copyFile(TESTS, join(dir, 'tests.yaml'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('k8s/monitoring/prometheus-rules.yaml', () => {
  it('is a PrometheusRule in the egress namespace', () => {
    expect([manifest.apiVersion, manifest.kind]).toEqual(['monitoring.coreos.com/v1', 'PrometheusRule']);
    expect(manifest.metadata.namespace).toBe('egress');
  });

  it('passes promtool check rules', async () => {
    const { stdout } = await run('promtool', ['check', 'rules', join(dir, 'rules.yaml')]);
    expect(stdout).toContain(`SUCCESS: ${rules.length} rules found`);
  });

  it('passes its promtool unit tests: each alert fires, and stays quiet, when it should', async () => {
    const result = await run('promtool', ['test', 'rules', 'tests.yaml'], { cwd: dir }).catch(
      (err: { stdout?: string; stderr?: string }) => ({ stdout: `${err.stdout}\n${err.stderr}` }),
    );
    expect(result.stdout).toContain('SUCCESS');
    expect(result.stdout).not.toContain('FAILED');
  });

  it('every alert has a test where it fires and one where it does not', async () => {
    const tests = parseYaml(await readFile(TESTS, 'utf8')) as PromtoolTests;
    const cases = tests.tests.flatMap((t) => t.alert_rule_test);
    for (const { alert } of rules) {
      const mine = cases.filter((c) => c.alertname === alert);
      expect(
        mine.some((c) => c.exp_alerts.length > 0),
        `${alert} fires in some test`,
      ).toBe(true);
      expect(
        mine.some((c) => c.exp_alerts.length === 0),
        `${alert} is quiet in some test`,
      ).toBe(true);
    }
  });

  it('every alert has a severity, a summary and a description', () => {
    for (const rule of rules) {
      expect(['warning', 'critical'], rule.alert).toContain(rule.labels?.severity);
      expect(rule.annotations?.summary, rule.alert).toBeTruthy();
      expect(rule.annotations?.description, rule.alert).toBeTruthy();
    }
  });

  it('reads only metrics the dns server exports', () => {
    const { registry } = createDnsMetrics({ processMetrics: false });
    const used = new Set(rules.flatMap((r) => r.expr.match(/\begress_[a-z_]+\b/g) ?? []));
    expect(used.size).toBeGreaterThan(0);
    for (const name of used) expect(registry.getSingleMetric(name), name).toBeDefined();
  });
});

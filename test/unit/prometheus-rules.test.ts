/**
 * config/prometheus/: Prometheus's own promtool accepts the rules and passes their unit tests;
 * every metric the rules and the test series name is one the operator, the agent or the
 * kube-state-metrics config exports, with labels it has (so renaming a metric or a label breaks
 * this test); every alert links to its runbook section; the chart ships the same file.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';
import { repoRoot } from '../../dev/control-plane/binaries.js';
import { exportedMetrics, selectorsIn, TARGET_LABELS, type ExportedMetrics, type Selector } from '../support/exported-metrics.js';
import { locatePromtool, promtool } from '../support/promtool.js';

const RULES = path.join(repoRoot, 'config', 'prometheus', 'gpudiag.rules.yaml');
const TESTS_DIR = path.join(repoRoot, 'config', 'prometheus', 'tests');
const CHART_COPY = path.join(repoRoot, 'charts', 'gpudiag', 'files', 'prometheus-rules.yaml');
const RUNBOOK_PREFIX = 'https://github.com/gpudiag/gpudiag/blob/main/docs/operations.md#';

interface Rule {
  record?: string;
  alert?: string;
  expr: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

let binary: string;
let rules: Rule[];
let exported: ExportedMetrics;
let testFiles: string[];

beforeAll(async () => {
  binary = await locatePromtool();
  const doc = parse(await readFile(RULES, 'utf8')) as { groups: { name: string; rules: Rule[] }[] };
  rules = doc.groups.flatMap((g) => g.rules);
  exported = await exportedMetrics();
  testFiles = (await readdir(TESTS_DIR)).filter((f) => f.endsWith('.yaml')).map((f) => path.join('config', 'prometheus', 'tests', f));
}, 15 * 60_000);

/** Selectors naming neither an exported metric nor a recording rule, or matching a label the metric lacks. */
function unknown(selectors: Selector[], records: Set<string>): string[] {
  return selectors.flatMap((s) => {
    if (records.has(s.metric)) return [];
    const labels = exported.get(s.metric);
    if (labels === undefined) return [`${s.metric} (not exported)`];
    return s.labels.filter((l) => !labels.has(l) && !TARGET_LABELS.includes(l)).map((l) => `${s.metric}{${l}} (no such label)`);
  });
}

/** GitHub's anchor of a Markdown heading. */
function anchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\w\- ]/g, '')
    .replace(/ /g, '-');
}

describe('Prometheus rules', () => {
  it('pass promtool check rules', async () => {
    expect(await promtool(binary, 'check', 'rules', RULES)).toContain(`SUCCESS: ${rules.length} rules found`);
  });

  it('pass their promtool unit tests (config/prometheus/tests)', async () => {
    expect(testFiles.length).toBeGreaterThan(0);
    const out = await promtool(binary, 'test', 'rules', ...testFiles);
    expect(out).toContain('SUCCESS');
    expect(out).not.toContain('FAILED');
  });

  it('name only metrics and labels gpudiag exports, or recording rules defined beside them', () => {
    const records = new Set(rules.flatMap((r) => (r.record === undefined ? [] : [r.record])));
    const selectors = rules.flatMap((r) => selectorsIn(r.expr));
    expect(selectors.length).toBeGreaterThan(rules.length);
    expect(unknown(selectors, records)).toEqual([]);
  });

  it('have unit-test series with exported metric names and their real labels, and a test for every alert', async () => {
    const alertsTested = new Set<string>();
    const series: Selector[] = [];
    for (const file of testFiles) {
      const doc = parse(await readFile(path.join(repoRoot, file), 'utf8')) as {
        tests: { input_series: { series: string }[]; alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[];
      };
      for (const t of doc.tests) {
        series.push(...t.input_series.flatMap((s) => selectorsIn(s.series)));
        for (const a of t.alert_rule_test ?? []) if (a.exp_alerts.length > 0) alertsTested.add(a.alertname);
      }
    }
    expect(series.length).toBeGreaterThan(20);
    expect(unknown(series, new Set())).toEqual([]);
    expect([...alertsTested].sort()).toEqual(rules.flatMap((r) => (r.alert === undefined ? [] : [r.alert])).sort());
  });

  it('give every alert a severity, a summary and a runbook section in docs/operations.md', async () => {
    const docs = await readFile(path.join(repoRoot, 'docs', 'operations.md'), 'utf8');
    const anchors = new Set([...docs.matchAll(/^#+ (.+)$/gm)].map((m) => anchor(m[1] ?? '')));
    for (const r of rules.filter((x) => x.alert !== undefined)) {
      const url = r.annotations?.['runbook_url'] ?? '';
      expect({ alert: r.alert, severity: r.labels?.['severity'] }).toEqual({
        alert: r.alert,
        severity: expect.stringMatching(/^(critical|warning)$/),
      });
      expect({ alert: r.alert, summary: typeof r.annotations?.['summary'] }).toEqual({ alert: r.alert, summary: 'string' });
      expect({ alert: r.alert, url }).toEqual({ alert: r.alert, url: RUNBOOK_PREFIX + (r.alert ?? '').toLowerCase() });
      expect({ alert: r.alert, section: anchors.has(url.slice(RUNBOOK_PREFIX.length)) }).toEqual({ alert: r.alert, section: true });
    }
  });

  it('are shipped by the chart as the same file', async () => {
    expect(await readFile(CHART_COPY, 'utf8')).toBe(await readFile(RULES, 'utf8'));
  });
});

describe('exported metrics and PromQL selectors (the checks above rest on them)', () => {
  it('reads both registries, histogram series and the kube-state-metrics names', () => {
    for (const name of [
      'gpudiag_gpu_health_score',
      'gpudiag_agent_nvml_hung_calls',
      'gpudiag_reconcile_duration_seconds_bucket',
      'gpudiag_agent_collection_duration_seconds_count',
      'gpudiag_operator_process_resident_memory_bytes',
      'gpudiag_gpuhealthpolicy_status_condition',
    ]) {
      expect({ name, exported: exported.has(name) }).toEqual({ name, exported: true });
    }
    expect([...(exported.get('gpudiag_xid_events_total') ?? [])].sort()).toEqual(['action', 'node', 'severity', 'xid']);
    expect(exported.get('gpudiag_reconcile_duration_seconds_bucket')?.has('le')).toBe(true);
    expect(exported.has('gpudiag_reconcile_duration_seconds')).toBe(false);
  });

  it.each<[string, Selector[]]>([
    [
      'sum by (node, gpu) (rate(a_total{x="1", y=~"b|c"}[5m] offset 30m)) / on (node) group_left b',
      [
        { metric: 'a_total', labels: ['x', 'y'] },
        { metric: 'b', labels: [] },
      ],
    ],
    [
      '(sum(gpudiag_leader) or vector(0)) < 1 unless c:rec',
      [
        { metric: 'gpudiag_leader', labels: [] },
        { metric: 'c:rec', labels: [] },
      ],
    ],
    ['histogram_quantile(0.95, sum by (le) (rate(h_bucket{node=~"$node"}[$__rate_interval])))', [{ metric: 'h_bucket', labels: ['node'] }]],
    ['label_replace(m{a!="2"}, "dst", "$1", "src", "(.*)")', [{ metric: 'm', labels: ['a'] }]],
  ])('finds the selectors of %s', (expr, selectors) => {
    expect(selectorsIn(expr)).toEqual(selectors);
  });
});

/**
 * The metrics gpudiag exports, read from the real registries (OperatorMetrics, AgentMetrics) and
 * from the kube-state-metrics config in config/, with their label names; and the metric
 * selectors a PromQL expression uses. The rule, dashboard and kube-state-metrics tests check
 * every query against them, so renaming a metric or a label breaks those tests.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'yaml';
import { AgentMetrics } from '../../agent/metrics.js';
import { repoRoot } from '../../dev/control-plane/binaries.js';
import { OperatorMetrics } from '../../operator/metrics.js';
import { isRecord } from '../../lib/records.js';

/** Labels Prometheus adds from the scrape target (kubernetes_sd relabelling, the Prometheus Operator's monitors). */
export const TARGET_LABELS: readonly string[] = ['instance', 'job', 'namespace', 'pod', 'container', 'service', 'endpoint', 'node'];

/** Exported metric name → its label names (target labels not included). */
export type ExportedMetrics = ReadonlyMap<string, ReadonlySet<string>>;

export const KSM_CONFIG = path.join(repoRoot, 'config', 'kube-state-metrics', 'gpudiag.yaml');

/** Labels kube-state-metrics puts on every custom-resource series. */
const KSM_LABELS = ['customresource_group', 'customresource_kind', 'customresource_version'];

function labelNamesOf(metric: unknown): string[] {
  if (!isRecord(metric) || !Array.isArray(metric['labelNames'])) return [];
  return metric['labelNames'].filter((l): l is string => typeof l === 'string');
}

/** The series names of one prom-client metric: a histogram is read as `_bucket` (with `le`), `_sum` and `_count`. */
function seriesOf(name: string, type: string, labels: string[]): [string, Set<string>][] {
  if (type === 'histogram') {
    return [
      [`${name}_bucket`, new Set([...labels, 'le'])],
      [`${name}_sum`, new Set(labels)],
      [`${name}_count`, new Set(labels)],
    ];
  }
  if (type === 'summary')
    return [
      [name, new Set([...labels, 'quantile'])],
      [`${name}_sum`, new Set(labels)],
      [`${name}_count`, new Set(labels)],
    ];
  return [[name, new Set(labels)]];
}

/** Every series name the operator and the agent export (process metrics included), with label names. */
export async function registryMetrics(): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>();
  for (const registry of [new OperatorMetrics().registry, new AgentMetrics(true).registry]) {
    for (const m of await registry.getMetricsAsJSON()) {
      for (const [name, labels] of seriesOf(m.name, String(m.type), labelNamesOf(registry.getSingleMetric(m.name)))) out.set(name, labels);
    }
  }
  return out;
}

/** One resource of the kube-state-metrics custom-resource-state config. */
export interface KsmResource {
  kind: string;
  prefix: string;
  labels: string[];
  metrics: { name: string; type: string; paths: { base: string[]; relative: string[][] }; labels: string[] }[];
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

function record(value: unknown): Record<string, unknown> {
  return isRecord(value) ? value : {};
}

/** The config's resources, with the paths each metric reads (base path, and paths relative to each element there). */
export async function ksmResources(): Promise<KsmResource[]> {
  const config = record(parse(await readFile(KSM_CONFIG, 'utf8')));
  const resources = Array.isArray(record(config['spec'])['resources']) ? (record(config['spec'])['resources'] as unknown[]) : [];
  return resources.map((r) => {
    const res = record(r);
    const labelsFromPath = record(res['labelsFromPath']);
    const metrics = (Array.isArray(res['metrics']) ? res['metrics'] : []).map((m) => {
      const metric = record(m);
      const each = record(metric['each']);
      const type = String(each['type']);
      const body = record(each[type.charAt(0).toLowerCase() + type.slice(1)]);
      const rel = record(body['labelsFromPath']);
      const relative = [...Object.values(rel).map(strings), ...(body['valueFrom'] !== undefined ? [strings(body['valueFrom'])] : [])];
      const labels = [...Object.keys(rel), ...Object.keys(record(metric['commonLabels']))];
      if (type === 'StateSet') labels.push(String(body['labelName']));
      return { name: String(metric['name']), type, paths: { base: strings(body['path']), relative }, labels };
    });
    return {
      kind: String(record(res['groupVersionKind'])['kind']),
      prefix: String(res['metricNamePrefix']),
      labels: Object.keys(labelsFromPath),
      metrics,
    };
  });
}

/** Every series name the kube-state-metrics config makes, with label names. */
export async function ksmMetrics(): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>();
  for (const r of await ksmResources()) {
    for (const m of r.metrics) {
      const name = `${r.prefix}_${m.name}`;
      out.set(name, new Set([...(out.get(name) ?? []), ...KSM_LABELS, ...r.labels, ...m.labels]));
    }
  }
  return out;
}

/** Everything gpudiag exports: both registries and the kube-state-metrics config. */
export async function exportedMetrics(): Promise<ExportedMetrics> {
  return new Map([...(await registryMetrics()), ...(await ksmMetrics())]);
}

/** One metric selector in an expression: the metric's name and the label names it matches on. */
export interface Selector {
  metric: string;
  labels: string[];
}

const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'offset',
  'bool',
  'and',
  'or',
  'unless',
  'atan2',
  'inf',
  'nan',
]);

/**
 * The selectors of a PromQL expression (rule or dashboard query). Strings, durations, Grafana
 * variables, function calls and keywords are not metric names; what is left is. A name this
 * misses would be reported as unknown, never passed over.
 */
export function selectorsIn(expr: string): Selector[] {
  const text = expr
    .replace(/\$\{[^}]*\}|\$\w+/g, '1') // Grafana variables ($__rate_interval, ${node})
    .replace(/\[[^\]]*\]/g, '') // ranges and subqueries
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ') // label lists
    .replace(/\b\d+(?:\.\d+)?(?:e[+-]?\d+)?(?:ms|[smhdwy])?\b/gi, ' '); // numbers, offsets
  const out: Selector[] = [];
  const token = /"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|([a-zA-Z_:][\w:]*)\s*(\{[^}]*\}|\()?/g;
  for (let m = token.exec(text); m !== null; m = token.exec(text)) {
    const [, word, suffix] = m;
    if (word === undefined || suffix === '(' || KEYWORDS.has(word.toLowerCase())) continue;
    const labels = suffix === undefined ? [] : [...suffix.matchAll(/([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)/g)].map((l) => l[1] ?? '');
    out.push({ metric: word, labels });
  }
  return out;
}

/**
 * config/grafana/gpudiag-overview.json is a valid Grafana dashboard whose every query names only
 * metrics (and labels) gpudiag exports or its recording rules define, so a renamed metric breaks
 * this test; and the chart ships the same file.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';
import { repoRoot } from '../../dev/control-plane/binaries.js';
import { exportedMetrics, selectorsIn, TARGET_LABELS, type ExportedMetrics } from '../support/exported-metrics.js';

const DASHBOARD = path.join(repoRoot, 'config', 'grafana', 'gpudiag-overview.json');
const CHART_COPY = path.join(repoRoot, 'charts', 'gpudiag', 'files', 'grafana-dashboard.json');
const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };

interface Target {
  refId: string;
  expr: string;
  datasource?: unknown;
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: unknown;
  targets?: Target[];
  gridPos: { w: number; h: number };
}
interface Variable {
  name: string;
  type: string;
  query: unknown;
  datasource?: unknown;
}
interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: Variable[] };
}

let dashboard: Dashboard;
let exported: ExportedMetrics;
let records: Set<string>;

beforeAll(async () => {
  dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8')) as Dashboard;
  exported = await exportedMetrics();
  const rules = parse(await readFile(path.join(repoRoot, 'config', 'prometheus', 'gpudiag.rules.yaml'), 'utf8')) as {
    groups: { rules: { record?: string }[] }[];
  };
  records = new Set(rules.groups.flatMap((g) => g.rules.flatMap((r) => (r.record === undefined ? [] : [r.record]))));
});

function problems(expr: string): string[] {
  return selectorsIn(expr).flatMap((s) => {
    if (records.has(s.metric)) return [];
    const labels = exported.get(s.metric);
    if (labels === undefined) return [`${s.metric} (not exported)`];
    return s.labels.filter((l) => !labels.has(l) && !TARGET_LABELS.includes(l)).map((l) => `${s.metric}{${l}}`);
  });
}

describe('Grafana dashboard', () => {
  it('is a dashboard with a uid, a title and a Prometheus data-source variable', () => {
    expect(dashboard.uid).toMatch(/^[\w-]{1,40}$/);
    expect(dashboard.title).toContain('gpudiag');
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dashboard.templating.list.find((v) => v.name === 'datasource')).toMatchObject({ type: 'datasource', query: 'prometheus' });
  });

  it('has panels with unique ids and sizes, each query on the data-source variable', () => {
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const queryPanels = dashboard.panels.filter((p) => p.type !== 'row');
    expect(queryPanels.length).toBeGreaterThanOrEqual(15);
    for (const p of queryPanels) {
      expect({
        panel: p.title,
        datasource: p.datasource,
        targets: (p.targets ?? []).length > 0,
        sized: p.gridPos.w > 0 && p.gridPos.h > 0,
      }).toEqual({ panel: p.title, datasource: DATASOURCE, targets: true, sized: true });
      for (const t of p.targets ?? [])
        expect({ panel: p.title, ref: t.refId, datasource: t.datasource }).toEqual({
          panel: p.title,
          ref: t.refId,
          datasource: DATASOURCE,
        });
    }
  });

  it('covers fleet health, worst GPUs, XIDs by action, agents, the operator and latency', () => {
    const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)).join('\n');
    for (const needed of [
      'gpudiag_gpu_health_score',
      'bottomk',
      'sum by (action)',
      'gpudiag_fanout_results_total',
      'gpudiag_agent_nvml_hung_calls',
      'gpudiag_leader',
      'gpudiag_reconcile_duration_seconds_bucket',
    ]) {
      expect({ needed, present: exprs.includes(needed) }).toEqual({ needed, present: true });
    }
  });

  it('queries only metrics and labels gpudiag exports (panels and variables)', () => {
    const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
    const variableQueries = dashboard.templating.list.flatMap((v) => {
      const q = typeof v.query === 'object' && v.query !== null && 'query' in v.query ? String(v.query.query) : '';
      const m = /^label_values\((\w+),\s*(\w+)\)$/.exec(q);
      return v.type === 'query' ? [m === null ? `unparsed variable query ${q}` : `${m[1]}{${m[2]}=""}`] : [];
    });
    expect(variableQueries).toEqual(['gpudiag_node_health_score{node=""}']);
    expect([...exprs, ...variableQueries].flatMap(problems)).toEqual([]);
  });

  it('is shipped by the chart as the same file', async () => {
    expect(await readFile(CHART_COPY, 'utf8')).toBe(await readFile(DASHBOARD, 'utf8'));
  });
});

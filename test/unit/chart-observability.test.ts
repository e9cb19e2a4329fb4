/**
 * The chart's opt-in observability objects, rendered by the pinned helm: off by default (no
 * PrometheusRule CRD needed), and when on, a PrometheusRule whose spec is exactly
 * config/prometheus/gpudiag.rules.yaml and a dashboard ConfigMap with the sidecar's label.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { parse, parseAllDocuments } from 'yaml';
import { repoRoot } from '../../dev/control-plane/binaries.js';

const run = promisify(execFile);
let helm: string;

interface Rendered {
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: unknown;
  data?: Record<string, string>;
}

async function render(...set: string[]): Promise<Rendered[]> {
  const args = ['template', 'obs', path.join(repoRoot, 'charts', 'gpudiag'), '--namespace', 'gpu-ops', ...set.flatMap((s) => ['--set', s])];
  const { stdout } = await run(helm, args, { maxBuffer: 16 << 20 });
  return parseAllDocuments(stdout)
    .map((d) => d.toJS() as Rendered)
    .filter((o) => o !== null);
}

beforeAll(async () => {
  // Cached by version; a cold build takes a few minutes (CI builds it before the tests).
  const { stdout } = await run('bash', [path.join(repoRoot, 'dev', 'tools', 'build-helm.sh')], { timeout: 15 * 60_000 });
  helm = stdout.trim().split('\n').at(-1) ?? '';
}, 15 * 60_000);

describe('chart observability objects', () => {
  it('renders neither by default', async () => {
    const objects = await render();
    expect(objects.length).toBeGreaterThan(5);
    expect(objects.filter((o) => o.kind === 'PrometheusRule' || o.metadata.name.endsWith('-dashboard'))).toEqual([]);
  });

  it('renders the PrometheusRule from the rules file, with the labels a ruleSelector matches', async () => {
    const rule = (await render('prometheusRule.enabled=true', 'prometheusRule.labels.release=kube-prometheus-stack')).find(
      (o) => o.kind === 'PrometheusRule',
    );
    expect(rule).toMatchObject({
      apiVersion: 'monitoring.coreos.com/v1',
      metadata: { namespace: 'gpu-ops', labels: { release: 'kube-prometheus-stack' } },
    });
    expect(rule?.spec).toEqual(parse(await readFile(path.join(repoRoot, 'config', 'prometheus', 'gpudiag.rules.yaml'), 'utf8')));
  });

  it('renders the dashboard ConfigMap with the sidecar label (configurable) and the dashboard JSON', async () => {
    const dashboard = JSON.parse(await readFile(path.join(repoRoot, 'config', 'grafana', 'gpudiag-overview.json'), 'utf8')) as unknown;
    const byDefault = (await render('grafanaDashboard.enabled=true')).find(
      (o) => o.kind === 'ConfigMap' && o.metadata.name.endsWith('-dashboard'),
    );
    expect(byDefault?.metadata.labels).toMatchObject({ grafana_dashboard: '1' });
    expect(JSON.parse(byDefault?.data?.['gpudiag-overview.json'] ?? '')).toEqual(dashboard);
    const custom = (
      await render(
        'grafanaDashboard.enabled=true',
        'grafanaDashboard.sidecarLabel=dashboards',
        'grafanaDashboard.sidecarLabelValue=gpu',
        'grafanaDashboard.namespace=monitoring',
      )
    ).find((o) => o.kind === 'ConfigMap' && o.metadata.name.endsWith('-dashboard'));
    expect(custom?.metadata).toMatchObject({ namespace: 'monitoring', labels: { dashboards: 'gpu' } });
    expect(custom?.metadata.labels).not.toHaveProperty('grafana_dashboard');
  });
});

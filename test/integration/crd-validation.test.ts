/** The API server rejects invalid objects with a message that names the offending field. */
import { describe, expect, it } from '@jest/globals';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { GPU_DIAGNOSTICS, GPU_HEALTH_POLICIES } from '../../api/index.js';
import { expectApiFailure } from '../support/api-errors.js';
import { testCluster, uniqueSuffix, useTestNamespace } from '../support/cluster.js';

const ns = useTestNamespace('validation');

interface InvalidCase {
  name: string;
  kind: 'GPUDiagnostic' | 'GPUHealthPolicy';
  spec: Record<string, unknown>;
  /** Substrings the rejection message must contain (the field path first). */
  expect: string[];
}

const tooManyNodes = Array.from({ length: 1001 }, (_, i) => `node-${i}`);

const cases: InvalidCase[] = [
  {
    name: 'node name with uppercase and underscore',
    kind: 'GPUDiagnostic',
    spec: { nodeNames: ['GPU_Node-1'] },
    expect: ['spec.nodeNames[0]', 'should match'],
  },
  {
    name: 'node name longer than 253 characters',
    kind: 'GPUDiagnostic',
    spec: { nodeNames: ['a'.repeat(254)] },
    expect: ['spec.nodeNames[0]', '253'],
  },
  { name: 'more than 1000 node names', kind: 'GPUDiagnostic', spec: { nodeNames: tooManyNodes }, expect: ['spec.nodeNames', '1000'] },
  { name: 'duplicate node names', kind: 'GPUDiagnostic', spec: { nodeNames: ['a', 'a'] }, expect: ['spec.nodeNames[1]', 'Duplicate'] },
  {
    name: 'negative timeout',
    kind: 'GPUDiagnostic',
    spec: { timeoutSeconds: -5 },
    expect: ['spec.timeoutSeconds', 'greater than or equal to 1'],
  },
  {
    name: 'huge timeout',
    kind: 'GPUDiagnostic',
    spec: { timeoutSeconds: 86400 },
    expect: ['spec.timeoutSeconds', 'less than or equal to 3600'],
  },
  {
    name: 'per-node timeout above the overall timeout',
    kind: 'GPUDiagnostic',
    spec: { timeoutSeconds: 10, perNodeTimeoutSeconds: 30 },
    expect: ['spec.perNodeTimeoutSeconds', 'must not exceed spec.timeoutSeconds'],
  },
  {
    name: 'unknown check',
    kind: 'GPUDiagnostic',
    spec: { checks: ['health', 'voltage'] },
    expect: ['spec.checks[1]', 'Unsupported value: "voltage"'],
  },
  { name: 'empty check list', kind: 'GPUDiagnostic', spec: { checks: [] }, expect: ['spec.checks', 'at least 1'] },
  { name: 'bad duration', kind: 'GPUDiagnostic', spec: { xidLookback: 'one hour' }, expect: ['spec.xidLookback', 'should match'] },
  { name: 'lookback beyond 30 days', kind: 'GPUDiagnostic', spec: { xidLookback: '1000h' }, expect: ['spec.xidLookback', 'at most 720h'] },
  {
    name: 'In selector without values',
    kind: 'GPUDiagnostic',
    spec: { nodeSelector: { matchExpressions: [{ key: 'pool', operator: 'In' }] } },
    expect: ['spec.nodeSelector.matchExpressions[0]', 'values must be non-empty'],
  },
  {
    name: 'unknown selector operator',
    kind: 'GPUDiagnostic',
    spec: { nodeSelector: { matchExpressions: [{ key: 'pool', operator: 'Matches', values: ['x'] }] } },
    expect: ['spec.nodeSelector.matchExpressions[0].operator', 'Unsupported value'],
  },
  {
    name: 'invalid label key in matchLabels',
    kind: 'GPUDiagnostic',
    spec: { nodeSelector: { matchLabels: { 'bad key!': 'x' } } },
    expect: ['spec.nodeSelector.matchLabels', 'valid label key'],
  },
  { name: 'policyRef without a name', kind: 'GPUDiagnostic', spec: { policyRef: {} }, expect: ['spec.policyRef.name', 'Required value'] },
  {
    name: 'negative ttl',
    kind: 'GPUDiagnostic',
    spec: { ttlSecondsAfterFinished: -1 },
    expect: ['spec.ttlSecondsAfterFinished', 'greater than or equal to 0'],
  },
  { name: 'interval below 30s', kind: 'GPUHealthPolicy', spec: { interval: '5s' }, expect: ['spec.interval', 'between 30s and 24h'] },
  {
    name: 'thermal margin out of range',
    kind: 'GPUHealthPolicy',
    spec: { thresholds: { thermal: { warningMarginCelsius: 200, criticalMarginCelsius: 0 } } },
    expect: ['spec.thresholds.thermal.warningMarginCelsius', 'less than or equal to 60'],
  },
  {
    name: 'thermal critical margin above warning',
    kind: 'GPUHealthPolicy',
    spec: { thresholds: { thermal: { warningMarginCelsius: 5, criticalMarginCelsius: 10 } } },
    expect: ['spec.thresholds.thermal', 'warningMarginCelsius must be >= criticalMarginCelsius'],
  },
  {
    name: 'memory threshold below 50%',
    kind: 'GPUHealthPolicy',
    spec: { thresholds: { memory: { usedPercentWarning: 10 } } },
    expect: ['spec.thresholds.memory.usedPercentWarning', 'greater than or equal to 50'],
  },
  {
    name: 'unknown XID severity override',
    kind: 'GPUHealthPolicy',
    spec: { xid: { overrides: [{ xid: 13, severity: 'fatal' }] } },
    expect: ['spec.xid.overrides[0].severity', 'Unsupported value: "fatal"'],
  },
  {
    name: 'XID override that changes nothing',
    kind: 'GPUHealthPolicy',
    spec: { xid: { overrides: [{ xid: 13 }] } },
    expect: ['spec.xid.overrides[0]', 'must set severity or action'],
  },
  {
    name: 'XID code out of range',
    kind: 'GPUHealthPolicy',
    spec: { xid: { ignore: [0] } },
    expect: ['spec.xid.ignore[0]', 'greater than or equal to 1'],
  },
  {
    name: 'scoring cut-offs inverted',
    kind: 'GPUHealthPolicy',
    spec: { scoring: { healthyMinScore: 30, degradedMinScore: 60 } },
    expect: ['spec.scoring', 'healthyMinScore must be greater than scoring.degradedMinScore'],
  },
  {
    name: 'guardrail above 100%',
    kind: 'GPUHealthPolicy',
    spec: { nodeSelector: {}, actions: { taint: { enabled: true, maxTaintedPercent: 150 } } },
    expect: ['spec.actions.taint.maxTaintedPercent', 'less than or equal to 100'],
  },
  {
    name: 'taint without a node selector',
    kind: 'GPUHealthPolicy',
    spec: { actions: { taint: { enabled: true } } },
    expect: ['spec.nodeSelector', 'required when spec.actions.taint.enabled'],
  },
  {
    name: 'unknown taint effect',
    kind: 'GPUHealthPolicy',
    spec: { nodeSelector: {}, actions: { taint: { enabled: true, effect: 'Evict' } } },
    expect: ['spec.actions.taint.effect', 'Unsupported value: "Evict"'],
  },
];

describe('CRD validation', () => {
  it('has a table of at least 15 invalid objects', () => {
    expect(cases.length).toBeGreaterThanOrEqual(15);
  });

  it.each(cases.map((c) => [c.name, c] as const))('rejects %s', async (_name, c) => {
    const api = testCluster().admin().makeApiClient(CustomObjectsApi);
    const metadata = { name: `invalid-${uniqueSuffix()}` };
    const body = { apiVersion: 'gpudiag.io/v1alpha1', kind: c.kind, metadata, spec: c.spec };
    const failure = await expectApiFailure(() =>
      c.kind === 'GPUDiagnostic'
        ? api.createNamespacedCustomObject({ ...GPU_DIAGNOSTICS, namespace: ns.name, body })
        : api.createClusterCustomObject({ ...GPU_HEALTH_POLICIES, body }),
    );
    expect(failure.code).toBe(422);
    for (const fragment of c.expect) expect(failure.message).toContain(fragment);
  });

  it('rejects an edit of a GPUDiagnostic spec after creation, naming spec', async () => {
    const api = testCluster().admin().makeApiClient(CustomObjectsApi);
    const name = `immutable-${uniqueSuffix()}`;
    await api.createNamespacedCustomObject({
      ...GPU_DIAGNOSTICS,
      namespace: ns.name,
      body: { apiVersion: 'gpudiag.io/v1alpha1', kind: 'GPUDiagnostic', metadata: { name }, spec: { nodeNames: ['gpu-node-1'] } },
    });
    const failure = await expectApiFailure(() =>
      api.patchNamespacedCustomObject({
        ...GPU_DIAGNOSTICS,
        namespace: ns.name,
        name,
        body: [{ op: 'replace', path: '/spec/timeoutSeconds', value: 120 }],
      }),
    );
    expect(failure.code).toBe(422);
    expect(failure.message).toContain('spec: Invalid value');
    expect(failure.message).toContain('spec is immutable');
  });
});

/** Printer columns, short names and the gpudiag category, through the real kubectl. */
import { describe, expect, it, beforeAll } from '@jest/globals';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { GPU_DIAGNOSTICS, GPU_HEALTH_POLICIES } from '../../api/index.js';
import type { GPUDiagnostic, GPUHealthPolicy } from '../../api/index.js';
import { testCluster, uniqueSuffix, useTestNamespace } from '../support/cluster.js';
import { kubectl } from '../support/kubectl.js';

const ns = useTestNamespace('kubectl');
const policyName = `kubectl-${uniqueSuffix()}`;
const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');

/** Splits kubectl's table output into rows of whitespace-separated cells keyed by header. */
function table(stdout: string): { header: string; rows: string[] } {
  const lines = stdout.trimEnd().split('\n');
  return { header: lines[0] ?? '', rows: lines.slice(1) };
}

beforeAll(async () => {
  const api = testCluster().admin().makeApiClient(CustomObjectsApi);
  const diag = (await api.createNamespacedCustomObject({
    ...GPU_DIAGNOSTICS,
    namespace: ns.name,
    body: { apiVersion: 'gpudiag.io/v1alpha1', kind: 'GPUDiagnostic', metadata: { name: 'fleet' }, spec: {} },
  })) as GPUDiagnostic;
  await api.replaceNamespacedCustomObjectStatus({
    ...GPU_DIAGNOSTICS,
    namespace: ns.name,
    name: 'fleet',
    body: {
      ...diag,
      status: {
        phase: 'Completed',
        observedGeneration: 1,
        conditions: [
          { type: 'Ready', status: 'True', reason: 'Completed', message: 'all nodes answered', lastTransitionTime: now },
          { type: 'Healthy', status: 'False', reason: 'CriticalGPUs', message: '1 GPU critical on gpu-node-3', lastTransitionTime: now },
        ],
        summary: {
          nodesTargeted: 4,
          nodesSucceeded: 3,
          nodesFailed: 1,
          minScore: 40,
          gpus: { total: 24, healthy: 23, degraded: 0, critical: 1, unknown: 0 },
        },
      },
    },
  });
  const policy = (await api.createClusterCustomObject({
    ...GPU_HEALTH_POLICIES,
    body: { apiVersion: 'gpudiag.io/v1alpha1', kind: 'GPUHealthPolicy', metadata: { name: policyName }, spec: { interval: '15m' } },
  })) as GPUHealthPolicy;
  await api.replaceClusterCustomObjectStatus({
    ...GPU_HEALTH_POLICIES,
    name: policyName,
    body: {
      ...policy,
      status: {
        observedGeneration: 1,
        lastCheckTime: now,
        conditions: [
          { type: 'Ready', status: 'True', reason: 'Checked', message: 'checked 8 nodes', lastTransitionTime: now },
          { type: 'Healthy', status: 'True', reason: 'AllHealthy', message: 'no critical node', lastTransitionTime: now },
        ],
        nodes: { governed: 8, healthy: 8, degraded: 0, critical: 0, unknown: 0, minScore: 95 },
      },
    },
  });
});

describe('kubectl', () => {
  it('shows GPUDiagnostic printer columns', async () => {
    const res = await kubectl(testCluster().adminKubeconfigPath, ['get', 'gpudiagnostics', '-n', ns.name]);
    expect(res.code).toBe(0);
    const { header, rows } = table(res.stdout);
    expect(header.split(/\s{2,}/)).toEqual(['NAME', 'PHASE', 'NODES', 'SUCCEEDED', 'HEALTHY', 'CRITICAL GPUS', 'MIN SCORE', 'AGE']);
    expect(rows[0]?.split(/\s+/).slice(0, 7)).toEqual(['fleet', 'Completed', '4', '3', 'False', '1', '40']);
  });

  it('shows GPUHealthPolicy printer columns', async () => {
    const res = await kubectl(testCluster().adminKubeconfigPath, ['get', 'gpuhealthpolicy', policyName]);
    expect(res.code).toBe(0);
    const { header, rows } = table(res.stdout);
    expect(header.split(/\s{2,}/)).toEqual(['NAME', 'READY', 'HEALTHY', 'NODES', 'CRITICAL', 'MIN SCORE', 'INTERVAL', 'LAST CHECK', 'AGE']);
    expect(rows[0]?.split(/\s+/).slice(0, 7)).toEqual([policyName, 'True', 'True', '8', '0', '95', '15m']);
  });

  it('lists both kinds under the gpudiag category and resolves short names', async () => {
    const all = await kubectl(testCluster().adminKubeconfigPath, ['get', 'gpudiag', '-A', '-o', 'name']);
    expect(all.code).toBe(0);
    expect(all.stdout).toContain('gpudiagnostic.gpudiag.io/fleet');
    expect(all.stdout).toContain(`gpuhealthpolicy.gpudiag.io/${policyName}`);
    const short = await kubectl(testCluster().adminKubeconfigPath, ['get', 'gdiag', '-n', ns.name, '-o', 'name']);
    expect(short.stdout.trim()).toBe('gpudiagnostic.gpudiag.io/fleet');
    const ghp = await kubectl(testCluster().adminKubeconfigPath, ['get', 'ghp', policyName, '-o', 'name']);
    expect(ghp.stdout.trim()).toBe(`gpuhealthpolicy.gpudiag.io/${policyName}`);
  });

  it('explains fields from the CRD descriptions', async () => {
    const res = await kubectl(testCluster().adminKubeconfigPath, ['explain', 'gpudiagnostics.spec.xidLookback']);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('How far back to report XID errors');
  });

  it('kubectl apply of an invalid object fails with a message naming the field', async () => {
    const manifest = `apiVersion: gpudiag.io/v1alpha1
kind: GPUDiagnostic
metadata:
  name: bad-timeout
  namespace: ${ns.name}
spec:
  timeoutSeconds: 0
`;
    const res = await kubectl(testCluster().adminKubeconfigPath, ['apply', '-f', '-'], manifest);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('spec.timeoutSeconds');
  });
});

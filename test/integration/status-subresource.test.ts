/** The status subresource: spec writes leave status alone; status writes leave generation alone. */
import { describe, expect, it } from '@jest/globals';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { GPU_DIAGNOSTICS, GPU_HEALTH_POLICIES } from '../../api/index.js';
import type { GPUDiagnostic, GPUHealthPolicy } from '../../api/index.js';
import { testCluster, uniqueSuffix, useTestNamespace } from '../support/cluster.js';

const ns = useTestNamespace('status');

const now = (): string => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

describe('status subresource', () => {
  it('GPUDiagnostic: a status write does not bump generation; a spec write does not change status', async () => {
    const api = testCluster().admin().makeApiClient(CustomObjectsApi);
    const name = `status-${uniqueSuffix()}`;
    const created = (await api.createNamespacedCustomObject({
      ...GPU_DIAGNOSTICS,
      namespace: ns.name,
      body: { apiVersion: 'gpudiag.io/v1alpha1', kind: 'GPUDiagnostic', metadata: { name }, spec: {} },
    })) as GPUDiagnostic;
    expect(created.metadata.generation).toBe(1);

    const withStatus = (await api.replaceNamespacedCustomObjectStatus({
      ...GPU_DIAGNOSTICS,
      namespace: ns.name,
      name,
      body: {
        ...created,
        status: {
          phase: 'Running',
          observedGeneration: 1,
          startTime: now(),
          conditions: [
            {
              type: 'Reconciling',
              status: 'True',
              reason: 'Progressing',
              message: 'asking agents',
              lastTransitionTime: now(),
              observedGeneration: 1,
            },
          ],
        },
      },
    })) as GPUDiagnostic;
    expect(withStatus.metadata.generation).toBe(1);
    expect(withStatus.status?.phase).toBe('Running');

    // A write of the main resource that carries a different status: status is ignored.
    const relabelled = (await api.replaceNamespacedCustomObject({
      ...GPU_DIAGNOSTICS,
      namespace: ns.name,
      name,
      body: { ...withStatus, metadata: { ...withStatus.metadata, labels: { team: 'ml' } }, status: { phase: 'Completed' } },
    })) as GPUDiagnostic;
    expect(relabelled.metadata.labels).toEqual({ team: 'ml' });
    expect(relabelled.status?.phase).toBe('Running');
    expect(relabelled.metadata.generation).toBe(1);
  });

  it('GPUHealthPolicy: a spec change bumps generation and keeps status; a status write keeps generation', async () => {
    const api = testCluster().admin().makeApiClient(CustomObjectsApi);
    const name = `status-${uniqueSuffix()}`;
    const created = (await api.createClusterCustomObject({
      ...GPU_HEALTH_POLICIES,
      body: { apiVersion: 'gpudiag.io/v1alpha1', kind: 'GPUHealthPolicy', metadata: { name }, spec: { interval: '5m' } },
    })) as GPUHealthPolicy;
    const withStatus = (await api.replaceClusterCustomObjectStatus({
      ...GPU_HEALTH_POLICIES,
      name,
      body: {
        ...created,
        status: { observedGeneration: 1, lastCheckTime: now(), nodes: { governed: 3, healthy: 3, degraded: 0, critical: 0, unknown: 0 } },
      },
    })) as GPUHealthPolicy;
    expect(withStatus.metadata.generation).toBe(1);

    const edited = (await api.replaceClusterCustomObject({
      ...GPU_HEALTH_POLICIES,
      name,
      body: { ...withStatus, spec: { ...withStatus.spec, interval: '10m' }, status: {} },
    })) as GPUHealthPolicy;
    expect(edited.metadata.generation).toBe(2);
    expect(edited.status?.nodes?.governed).toBe(3);
  });

  it('rejects an invalid status written by a buggy controller, naming the field', async () => {
    const api = testCluster().admin().makeApiClient(CustomObjectsApi);
    const name = `status-${uniqueSuffix()}`;
    const created = (await api.createNamespacedCustomObject({
      ...GPU_DIAGNOSTICS,
      namespace: ns.name,
      body: { apiVersion: 'gpudiag.io/v1alpha1', kind: 'GPUDiagnostic', metadata: { name }, spec: {} },
    })) as GPUDiagnostic;
    await expect(
      api.replaceNamespacedCustomObjectStatus({
        ...GPU_DIAGNOSTICS,
        namespace: ns.name,
        name,
        body: { ...created, status: { phase: 'Exploded' } },
      }),
    ).rejects.toMatchObject({ code: 422, body: expect.stringContaining('status.phase') });
  });
});

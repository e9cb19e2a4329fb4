/** Every sample in config/samples/ is accepted by the real API server, and defaults are as documented. */
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { CustomObjectsApi, type KubernetesObject } from '@kubernetes/client-node';
import { GPU_DIAGNOSTICS, GPU_HEALTH_POLICIES } from '../../api/index.js';
import { BUILT_IN_POLICY_SPEC, DIAGNOSTIC_SPEC_DEFAULTS } from '../../api/defaults.js';
import { validateGPUDiagnostic, validateGPUHealthPolicy } from '../../api/validation.js';
import { applyObjects, readManifests } from '../../dev/apply.js';
import { repoRoot } from '../../dev/control-plane/binaries.js';
import { testCluster, uniqueSuffix, useTestNamespace } from '../support/cluster.js';

const ns = useTestNamespace('samples');

type AnyObject = KubernetesObject & { spec?: Record<string, unknown> };

describe('config/samples', () => {
  it('are all accepted by the API server and pass the generated validators', async () => {
    const kc = testCluster().admin();
    const samples = (await readManifests([path.join(repoRoot, 'config', 'samples')])) as AnyObject[];
    expect(samples.length).toBeGreaterThanOrEqual(4);
    const suffix = uniqueSuffix();
    // Namespaced samples go to this file's namespace; cluster-scoped ones get a unique name.
    const renamed = samples.map((s) => ({
      ...s,
      metadata:
        s.kind === 'GPUHealthPolicy'
          ? { ...s.metadata, name: `${s.metadata?.name ?? ''}-${suffix}` }
          : { ...s.metadata, namespace: ns.name },
    }));
    await applyObjects(kc, renamed);

    const api = kc.makeApiClient(CustomObjectsApi);
    for (const sample of renamed) {
      const name = sample.metadata.name ?? '';
      const stored =
        sample.kind === 'GPUDiagnostic'
          ? await api.getNamespacedCustomObject({ ...GPU_DIAGNOSTICS, namespace: ns.name, name })
          : await api.getClusterCustomObject({ ...GPU_HEALTH_POLICIES, name });
      const result = sample.kind === 'GPUDiagnostic' ? validateGPUDiagnostic(stored) : validateGPUHealthPolicy(stored);
      expect(result).toMatchObject({ ok: true });
    }
  });

  it('a GPUDiagnostic with an empty spec gets the documented defaults', async () => {
    const api = testCluster().admin().makeApiClient(CustomObjectsApi);
    const created = (await api.createNamespacedCustomObject({
      ...GPU_DIAGNOSTICS,
      namespace: ns.name,
      body: { apiVersion: 'gpudiag.io/v1alpha1', kind: 'GPUDiagnostic', metadata: { name: 'defaults' }, spec: {} },
    })) as AnyObject;
    expect(created.spec).toEqual(DIAGNOSTIC_SPEC_DEFAULTS);
  });

  it('a GPUHealthPolicy with no spec gets the documented built-in policy', async () => {
    const api = testCluster().admin().makeApiClient(CustomObjectsApi);
    const created = (await api.createClusterCustomObject({
      ...GPU_HEALTH_POLICIES,
      body: { apiVersion: 'gpudiag.io/v1alpha1', kind: 'GPUHealthPolicy', metadata: { name: `defaults-${uniqueSuffix()}` } },
    })) as AnyObject;
    expect(created.spec).toEqual(BUILT_IN_POLICY_SPEC);
  });
});

/**
 * End to end, RBAC as configured: config/rbac/operator.yaml is not only sufficient (the other
 * e2e files run the operator with exactly it) but its status permission is necessary. An
 * operator whose ClusterRole lacks gpudiagnostics/status never writes a status and keeps
 * retrying; once the permission is granted the same diagnostic completes, with no restart.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { AuthorizationV1Api, CustomObjectsApi, type KubernetesObject } from '@kubernetes/client-node';
import { GPU_DIAGNOSTICS, type GPUDiagnostic } from '../../api/index.js';
import { applyObjects } from '../../dev/apply.js';
import { freePort } from '../../dev/control-plane/control-plane.js';
import { uniqueFleetNames, type SimulatedFleet } from '../../dev/fleet/simulated-fleet.js';
import { createLogger } from '../../lib/logger.js';
import type { Operator } from '../../operator/operator.js';
import { testCluster, useTestNamespace } from '../support/cluster.js';
import { readDiagnostic as readIn } from '../support/diagnostics.js';
import { startTestFleet, startTestOperator, testOperatorArgs } from '../support/operator-env.js';
import { applyRbac } from '../support/rbac.js';

interface Rule {
  apiGroups?: string[];
  resources?: string[];
  verbs?: string[];
}

const ns = useTestNamespace('e2e-rbac');
const logger = createLogger({ silent: true });
let fleet: SimulatedFleet;
let operator: Operator;
let clusterRole: KubernetesObject & { rules?: Rule[] };
let healthyNode: string;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function readDiagnostic(name: string): Promise<GPUDiagnostic> {
  return readIn(ns.name, name);
}

/** Whether the operator's ServiceAccount may update GPUDiagnostic status in the test namespace. */
async function operatorMayWriteStatus(): Promise<boolean> {
  const api = testCluster().admin().makeApiClient(AuthorizationV1Api);
  const review = await api.createSubjectAccessReview({
    body: {
      spec: {
        user: `system:serviceaccount:${ns.name}:gpudiag-operator`,
        groups: ['system:serviceaccounts', `system:serviceaccounts:${ns.name}`, 'system:authenticated'],
        resourceAttributes: {
          group: GPU_DIAGNOSTICS.group,
          resource: GPU_DIAGNOSTICS.plural,
          subresource: 'status',
          verb: 'update',
          namespace: ns.name,
        },
      },
    },
  });
  return review.status?.allowed === true;
}

/** The summed value of gpudiag_reconcile_total for one outcome. */
async function reconciles(outcome: string): Promise<number> {
  const metric = await operator.metrics.registry.getSingleMetric('gpudiag_reconcile_total')?.get();
  return (metric?.values ?? [])
    .filter((v) => v.labels['controller'] === 'gpudiagnostic' && v.labels['outcome'] === outcome)
    .reduce((sum, v) => sum + v.value, 0);
}

beforeAll(async () => {
  const cluster = testCluster();
  const applied = await applyRbac('operator.yaml', ns.name);
  await applyRbac('agent.yaml', ns.name);
  const role = applied.find((o) => o.kind === 'ClusterRole');
  if (role === undefined) throw new Error('config/rbac/operator.yaml has no ClusterRole');
  clusterRole = role as typeof clusterRole;
  // The same ClusterRole without gpudiagnostics/status (and nothing else changed).
  const without = {
    ...clusterRole,
    rules: (clusterRole.rules ?? []).filter((r) => !(r.resources ?? []).includes(`${GPU_DIAGNOSTICS.plural}/status`)),
  };
  expect(without.rules.length).toBe((clusterRole.rules ?? []).length - 1);
  await applyObjects(cluster.admin(), [without]);
  const deadline = Date.now() + 5_000;
  while (await operatorMayWriteStatus()) {
    if (Date.now() > deadline) throw new Error('the narrowed ClusterRole did not take effect');
    await sleep(100);
  }

  const port = await freePort();
  const specs = uniqueFleetNames(ns.name, [{ name: 'healthy', scenario: 'h100-sxm-8x-healthy' }]);
  healthyNode = specs[0]?.name ?? '';
  fleet = await startTestFleet(ns.name, specs, port, logger);
  operator = await startTestOperator(ns.name, [...testOperatorArgs(ns.name, port), '--per-node-timeout-seconds', '5'], 'e2e-rbac', logger);
});

afterAll(async () => {
  await operator?.stop();
  await fleet?.stop();
});

describe('operator resilience: RBAC as configured', () => {
  it('writes no status without gpudiagnostics/status, retrying; completes the same diagnostic once it is granted', async () => {
    const api = testCluster().admin().makeApiClient(CustomObjectsApi);
    await api.createNamespacedCustomObject({
      ...GPU_DIAGNOSTICS,
      namespace: ns.name,
      body: {
        apiVersion: 'gpudiag.io/v1alpha1',
        kind: 'GPUDiagnostic',
        metadata: { name: 'needs-status' },
        spec: { nodeNames: [healthyNode] },
      },
    });
    // For two seconds: the operator leads and reconciles, but every status write is forbidden.
    const until = Date.now() + 2_000;
    while (Date.now() < until) {
      const obj = await readDiagnostic('needs-status');
      expect(obj.status ?? {}).toEqual({});
      await sleep(200);
    }
    expect(operator.isLeading).toBe(true);
    expect(await reconciles('retry')).toBeGreaterThanOrEqual(2);
    expect(await reconciles('success')).toBe(0);

    // Grant exactly config/rbac/operator.yaml again: the operator recovers on its own.
    await applyObjects(testCluster().admin(), [clusterRole]);
    const deadline = Date.now() + 20_000;
    let obj = await readDiagnostic('needs-status');
    while (obj.status?.phase !== 'Completed' && obj.status?.phase !== 'Failed') {
      if (Date.now() > deadline) throw new Error(`needs-status not finished after the grant: ${JSON.stringify(obj.status)}`);
      await sleep(200);
      obj = await readDiagnostic('needs-status');
    }
    expect(obj.status).toMatchObject({
      phase: 'Completed',
      summary: { nodesTargeted: 1, nodesSucceeded: 1, nodesByStatus: { healthy: 1 } },
    });
    expect(obj.status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True', reason: 'Completed' });
  });
});

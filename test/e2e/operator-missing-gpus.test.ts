/**
 * End to end over the simulated fleet: GPUs that vanish without an XID. The fleet's Nodes
 * advertise GPUs as NVIDIA's device plugin and GPU feature discovery would (nvidia.com/gpu
 * capacity/allocatable, label nvidia.com/gpu.count); on `gpu-vanished` NVML counts 7 of the 8,
 * on `all-gpus-vanished` none (the agent runs in no-GPU mode). Both are critical with the counts
 * in the message, through a GPUDiagnostic and a GPUHealthPolicy's periodic check; a healthy node
 * stays healthy, and a policy's thresholds.inventory.missingGpusSeverity changes the severity.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { GPU_HEALTH_POLICIES, type GPUDiagnostic, type GPUHealthPolicy } from '../../api/index.js';
import { createLogger } from '../../lib/logger.js';
import { POLICY_SHARD_LABEL } from '../../operator/config.js';
import { testCluster, useTestNamespace } from '../support/cluster.js';
import { createDiagnostic, waitFinished } from '../support/diagnostics.js';
import { assertKstatus } from '../support/kstatus.js';
import { startScenarioEnv, waitUntil, type ScenarioEnv } from '../support/operator-env.js';

type StatusNode = NonNullable<NonNullable<GPUDiagnostic['status']>['nodes']>[number];

const ns = useTestNamespace('e2e-missing-gpus');
const logger = createLogger({ silent: true });
const FLEET_LABEL = 'gpudiag.io/e2e-missing-gpus';
const SCENARIOS = ['h100-sxm-8x-healthy', 'gpu-vanished', 'all-gpus-vanished'] as const;
type Scenario = (typeof SCENARIOS)[number];

let env: ScenarioEnv | undefined;
let done: GPUDiagnostic;
let nodeNames: ReadonlyMap<string, string> = new Map();
const policies: string[] = [];

function custom(): CustomObjectsApi {
  return testCluster().admin().makeApiClient(CustomObjectsApi);
}

function node(d: GPUDiagnostic, scenario: Scenario): StatusNode {
  const name = nodeNames.get(scenario);
  const found = d.status?.nodes?.find((n) => n.name === name);
  if (found === undefined)
    throw new Error(`no status for ${scenario} (${name ?? '?'}): ${JSON.stringify(d.status?.nodes?.map((n) => n.name))}`);
  return found;
}

function missing(n: StatusNode): { severity: string; message: string } | undefined {
  return n.findings?.find((f) => f.code === 'GpusMissing');
}

async function createPolicy(suffix: string, spec: Record<string, unknown>): Promise<string> {
  const name = `${ns.name}-${suffix}`;
  await custom().createClusterCustomObject({
    ...GPU_HEALTH_POLICIES,
    body: {
      apiVersion: 'gpudiag.io/v1alpha1',
      kind: 'GPUHealthPolicy',
      metadata: { name, labels: { [POLICY_SHARD_LABEL]: ns.name } },
      spec,
    },
  });
  policies.push(name);
  return name;
}

beforeAll(async () => {
  env = await startScenarioEnv(ns.name, SCENARIOS, {
    label: FLEET_LABEL,
    identity: 'e2e-missing-gpus-operator',
    logger,
    operatorArgs: ['--per-node-timeout-seconds', '10', '--policy-max-interval-seconds', '1'],
  });
  nodeNames = env.nodeNames;
  await createDiagnostic(ns.name, 'missing-gpus', { checks: ['health', 'xid'], nodeSelector: { matchLabels: { [FLEET_LABEL]: ns.name } } });
  done = await waitFinished(ns.name, 'missing-gpus', { timeoutMs: 60_000, pollMs: 250 });
}, 120_000);

afterAll(async () => {
  for (const name of policies) await custom().deleteClusterCustomObject({ ...GPU_HEALTH_POLICIES, name });
  await env?.stop();
});

describe('operator: GPUs the node advertises but the agent does not see', () => {
  it('the fleet advertises the GPUs each scenario is meant to have', async () => {
    const core = testCluster().admin().makeApiClient(CoreV1Api);
    const advertised = await Promise.all(
      SCENARIOS.map(async (s) => {
        const n = await core.readNode({ name: nodeNames.get(s) ?? '' });
        return [
          s,
          n.status?.capacity?.['nvidia.com/gpu'],
          n.status?.allocatable?.['nvidia.com/gpu'],
          n.metadata?.labels?.['nvidia.com/gpu.count'],
        ];
      }),
    );
    expect(advertised).toEqual([
      ['h100-sxm-8x-healthy', '8', '8', '8'],
      ['gpu-vanished', '8', '8', '8'],
      ['all-gpus-vanished', '8', '8', '8'],
    ]);
  });

  it('both vanished scenarios are critical with the counts in the message; the healthy node stays healthy', () => {
    expect(done.status).toMatchObject({ phase: 'Completed', summary: { nodesTargeted: 3, nodesSucceeded: 3, nodesFailed: 0 } });
    expect(Object.fromEntries(SCENARIOS.map((s) => [s, node(done, s).status]))).toEqual({
      'h100-sxm-8x-healthy': 'healthy',
      'gpu-vanished': 'critical',
      'all-gpus-vanished': 'critical',
    });
    const healthy = node(done, 'h100-sxm-8x-healthy');
    expect(healthy).toMatchObject({ score: 100, gpuCount: 8 });
    expect(missing(healthy)).toBeUndefined();

    const one = node(done, 'gpu-vanished');
    expect(one.gpuCount).toBe(7);
    expect(missing(one)).toMatchObject({ severity: 'critical' });
    expect(missing(one)?.message).toMatch(
      /^node advertises 8 GPUs \(capacity nvidia\.com\/gpu, allocatable nvidia\.com\/gpu, label nvidia\.com\/gpu\.count\) but the agent sees 7;/,
    );
    // No XID and no other fault: the seven GPUs it sees are healthy, the node is not.
    expect(one.xidEvents ?? []).toEqual([]);
    expect(one.gpus?.every((g) => g.status === 'healthy')).toBe(true);
    expect(one.message).toBe(missing(one)?.message);

    const all = node(done, 'all-gpus-vanished');
    expect(all.gpuCount ?? 0).toBe(0);
    expect(missing(all)).toMatchObject({ severity: 'critical' });
    // NVML initialises and counts zero devices; its reason (or the no-GPU mode's) is in the message.
    expect(missing(all)?.message).toMatch(
      /^node advertises 8 GPUs \(.*\) but the agent sees none \(NVML: (no GPUs found|NVML reports no GPUs)\);/,
    );
    expect([...(done.status?.summary?.criticalNodes ?? [])].sort()).toEqual(
      [nodeNames.get('all-gpus-vanished'), nodeNames.get('gpu-vanished')].sort(),
    );
  });

  it('a referenced policy sets the severity (thresholds.inventory.missingGpusSeverity)', async () => {
    const policy = await createPolicy('warn', {
      suspend: true,
      nodeSelector: { matchLabels: { [FLEET_LABEL]: `none-${ns.name}` } },
      thresholds: { inventory: { missingGpusSeverity: 'warning' } },
    });
    await createDiagnostic(ns.name, 'missing-gpus-warning', {
      checks: ['health'],
      policyRef: { name: policy },
      nodeNames: [nodeNames.get('gpu-vanished')],
    });
    const warned = await waitFinished(ns.name, 'missing-gpus-warning', { timeoutMs: 60_000, pollMs: 250 });
    const one = node(warned, 'gpu-vanished');
    expect(missing(one)).toMatchObject({ severity: 'warning' });
    expect(one.status).not.toBe('critical');
  });

  it("a GPUHealthPolicy's periodic check finds the same two nodes critical", async () => {
    const name = await createPolicy('periodic', {
      interval: '30s',
      checks: ['health', 'xid'],
      nodeSelector: { matchLabels: { [FLEET_LABEL]: ns.name } },
    });
    let p: GPUHealthPolicy | undefined;
    await waitUntil('a policy check over the fleet', 30_000, async () => {
      p = (await custom().getClusterCustomObject({ ...GPU_HEALTH_POLICIES, name })) as GPUHealthPolicy;
      assertKstatus(p);
      return p.status?.nodes?.governed === 3;
    });
    expect(p?.status?.nodes).toMatchObject({ governed: 3, healthy: 1, critical: 2 });
    const worst = p?.status?.worstNodes ?? [];
    expect(worst.map((w) => w.name).sort()).toEqual([nodeNames.get('all-gpus-vanished'), nodeNames.get('gpu-vanished')].sort());
    expect(worst.find((w) => w.name === nodeNames.get('gpu-vanished'))?.message).toContain('node advertises 8 GPUs');
  });
});

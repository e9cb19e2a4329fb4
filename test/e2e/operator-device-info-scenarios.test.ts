/**
 * End to end over the simulated fleet: one node per device-info scenario (NVSwitch fabric state,
 * InfoROM validity, HBM temperature, violation time, PCIe errors), the operator against the real
 * API server, and a GPUDiagnostic over those nodes. Each fault must reach the GPU's status as the
 * finding the built-in policy names. The simulated fleet watches no NVML events (its XIDs come
 * from kmsg), so the memory events are checked by the driver-era matrix and score tests instead.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { GPUDiagnostic } from '../../api/index.js';
import { freePort } from '../../dev/control-plane/control-plane.js';
import { uniqueFleetNames, type SimulatedFleet } from '../../dev/fleet/simulated-fleet.js';
import { createLogger } from '../../lib/logger.js';
import type { Operator } from '../../operator/operator.js';
import { testCluster, useTestNamespace } from '../support/cluster.js';
import { createDiagnostic, waitFinished } from '../support/diagnostics.js';
import { startTestFleet, startTestOperator, testOperatorArgs } from '../support/operator-env.js';
import { applyRbac } from '../support/rbac.js';

type StatusNode = NonNullable<NonNullable<GPUDiagnostic['status']>['nodes']>[number];

const ns = useTestNamespace('e2e-devinfo');
const logger = createLogger({ silent: true });
const SCENARIOS = ['h100-sxm-8x-healthy', 'hgx-h100-fabric-not-ready', 'h100-inforom-corrupted', 'h100-memory-faults'] as const;
type Scenario = (typeof SCENARIOS)[number];

let fleet: SimulatedFleet;
let operator: Operator;
const nodeNames = new Map<Scenario, string>();

async function diagnose(name: string): Promise<GPUDiagnostic> {
  await createDiagnostic(ns.name, name, { checks: ['health', 'xid'], nodeSelector: { matchLabels: { 'gpudiag.io/e2e': ns.name } } });
  return waitFinished(ns.name, name, { timeoutMs: 60_000, pollMs: 250 });
}

function node(done: GPUDiagnostic, scenario: Scenario): StatusNode {
  const name = nodeNames.get(scenario);
  const found = done.status?.nodes?.find((n) => n.name === name);
  if (found === undefined) throw new Error(`no status for ${scenario} (${name ?? '?'})`);
  return found;
}

/** `index:severity:code` of the GPUs' warning and critical findings, sorted (info, such as lifetime ECC counts, left out). */
function gpuFindings(n: StatusNode): string[] {
  return (n.gpus ?? [])
    .flatMap((g) => (g.findings ?? []).filter((f) => f.severity !== 'info').map((f) => `${g.index}:${f.severity}:${f.code}`))
    .sort();
}

beforeAll(async () => {
  const cluster = testCluster();
  await applyRbac('operator.yaml', ns.name);
  await applyRbac('agent.yaml', ns.name);
  const port = await freePort();
  const nodes = uniqueFleetNames(
    ns.name,
    SCENARIOS.map((scenario) => ({ name: scenario, scenario, labels: { 'gpudiag.io/e2e': ns.name } })),
  );
  nodes.forEach((n, i) => nodeNames.set(SCENARIOS[i] as Scenario, n.name));
  fleet = await startTestFleet(ns.name, nodes, port, logger);
  operator = await startTestOperator(
    ns.name,
    [...testOperatorArgs(ns.name, port), '--per-node-timeout-seconds', '10'],
    'e2e-devinfo-operator',
    logger,
    () => cluster.serviceAccountToken(ns.name, 'gpudiag-operator', ['gpudiag-agent']),
  );
}, 120_000);

afterAll(async () => {
  await operator?.stop();
  await fleet?.stop();
});

describe('operator: device-info faults from the fake NVML library', () => {
  it('scores every fault with the built-in policy and leaves the healthy HGX node healthy', async () => {
    const done = await diagnose('device-info');
    expect(done.status).toMatchObject({ phase: 'Completed', summary: { nodesTargeted: SCENARIOS.length, nodesFailed: 0 } });
    expect(Object.fromEntries(SCENARIOS.map((s) => [s, node(done, s).status]))).toEqual({
      'h100-sxm-8x-healthy': 'healthy',
      'hgx-h100-fabric-not-ready': 'critical',
      // one warning costs 15 points: the node stays healthy (85), its GPU carries the finding
      'h100-inforom-corrupted': 'healthy',
      'h100-memory-faults': 'critical',
    });
    expect(gpuFindings(node(done, 'h100-sxm-8x-healthy'))).toEqual([]);
    expect(gpuFindings(node(done, 'hgx-h100-fabric-not-ready'))).toEqual([
      '0:critical:FabricNotCompleted',
      '1:critical:FabricRegistrationFailed',
    ]);
    expect(gpuFindings(node(done, 'h100-inforom-corrupted'))).toEqual(['1:warning:InforomCorrupted']);
    expect(gpuFindings(node(done, 'h100-memory-faults'))).toEqual([
      '0:critical:MemoryTemperatureMargin',
      '0:warning:PcieCorrectableErrors',
      '0:warning:PcieReplayRollover',
      '0:warning:ThermalViolationTime',
    ]);
  });
});

/**
 * End to end, the operator's own failures: an operator stopped in the middle of a diagnostic
 * and replaced by a new one (the diagnostic is re-run, never left Running), and two replicas
 * competing for the leader Lease (exactly one leads; when it stops and releases the Lease the
 * other takes over and diagnoses). Every status read passes the kstatus checker.
 *
 * Not covered here: an operator killed without releasing the Lease. Operator passes no lease
 * duration to its elector (OperatorConfig has none), so the default 15 s applies and a takeover
 * would cost this suite over 15 s; test/integration/runtime-leader-election.test.ts covers a
 * leader dying without release (with a 2 s lease) at the elector level.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { CoordinationV1Api, type V1Lease } from '@kubernetes/client-node';
import type { GPUDiagnostic } from '../../api/index.js';
import { freePort } from '../../dev/control-plane/control-plane.js';
import { uniqueFleetNames, type SimulatedFleet } from '../../dev/fleet/simulated-fleet.js';
import { createLogger } from '../../lib/logger.js';
import type { Operator } from '../../operator/operator.js';
import { testCluster, useTestNamespace } from '../support/cluster.js';
import { createDiagnostic as createIn, readDiagnostic as readIn, waitFinished as waitFinishedIn } from '../support/diagnostics.js';
import { startTestFleet, startTestOperator, testOperatorArgs } from '../support/operator-env.js';
import { applyRbac } from '../support/rbac.js';

const ns = useTestNamespace('e2e-replicas');
const logger = createLogger({ silent: true });
const LEASE_NAME = 'gpudiag-operator';
let fleet: SimulatedFleet;
let port: number;
/** Short name → full (namespace-prefixed) node name. */
const n: Record<string, string> = {};
/** Operators started by a test; afterEach stops whatever is left. */
const running = new Set<Operator>();

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function createDiagnostic(name: string, spec: Record<string, unknown>): Promise<void> {
  await createIn(ns.name, name, spec);
}

async function readDiagnostic(name: string): Promise<GPUDiagnostic> {
  return readIn(ns.name, name);
}

/** Polls until Completed or Failed, checking kstatus on every status seen; `seen` collects each status. */
async function waitFinished(name: string, timeoutMs = 20_000, seen: GPUDiagnostic[] = []): Promise<GPUDiagnostic> {
  return waitFinishedIn(ns.name, name, { timeoutMs, pollMs: 100, seen });
}

async function waitFor(what: string, timeoutMs: number, check: () => boolean | Promise<boolean>): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(50);
  }
  return Date.now() - started;
}

async function readLease(): Promise<V1Lease> {
  return testCluster().admin().makeApiClient(CoordinationV1Api).readNamespacedLease({ namespace: ns.name, name: LEASE_NAME });
}

/** Starts an operator replica with leader election on the shared Lease; `identity` prefixes its holder identity. */
async function startReplica(identity: string): Promise<Operator> {
  const args = [
    ...testOperatorArgs(ns.name, port),
    '--per-node-timeout-seconds',
    '10',
    '--policy-grace-seconds',
    '1',
    '--lease-name',
    LEASE_NAME,
    '--identity',
    identity,
  ];
  const operator = await startTestOperator(ns.name, args, 'unused-hostname', logger);
  running.add(operator);
  return operator;
}

async function stopReplica(operator: Operator): Promise<void> {
  await operator.stop();
  running.delete(operator);
}

function reconcilingMessages(seen: readonly GPUDiagnostic[]): string[] {
  return seen
    .map((o) => o.status?.conditions?.find((c) => c.type === 'Reconciling' && c.status === 'True')?.message)
    .filter((m): m is string => m !== undefined);
}

beforeAll(async () => {
  await applyRbac('operator.yaml', ns.name);
  await applyRbac('agent.yaml', ns.name);
  port = await freePort();
  const specs = uniqueFleetNames(ns.name, [
    { name: 'healthy', scenario: 'h100-sxm-8x-healthy' },
    { name: 'slow', scenario: 'h100-sxm-8x-healthy' },
    { name: 'lost', scenario: 'gpu-lost-xid79' },
  ]);
  for (const spec of specs) n[spec.name.slice(ns.name.length + 1)] = spec.name;
  fleet = await startTestFleet(ns.name, specs, port, logger);
});

afterEach(async () => {
  await Promise.all([...running].map((o) => stopReplica(o)));
});

afterAll(async () => {
  await fleet?.stop();
});

describe('operator resilience: restarts and replicas', () => {
  it('re-runs a diagnostic left Running by an operator that stopped mid-run, and completes it', async () => {
    const slow = fleet.node(n['slow'] ?? '').controller;
    if (slow === undefined) throw new Error('slow has no fake NVML controller');
    // The slow agent needs about 3 s per snapshot (two sequential NVML calls of 1.5 s).
    await slow.inject({ kind: 'delay', call: 'nvmlSystemGetDriverVersion', ms: 1_500 });
    await slow.inject({ kind: 'delay', call: 'nvmlSystemGetNVMLVersion', ms: 1_500 });
    try {
      const first = await startReplica('first');
      await waitFor('first replica leads', 10_000, () => first.isLeading);
      await createDiagnostic('restart', { nodeNames: [n['healthy'], n['slow']], timeoutSeconds: 30 });
      const seen: GPUDiagnostic[] = [];
      await waitFor('diagnostic Running', 10_000, async () => {
        const obj = await readDiagnostic('restart');
        seen.push(obj);
        return obj.status?.phase === 'Running';
      });
      const startTime = seen.at(-1)?.status?.startTime;
      expect(startTime).toBeDefined();

      await stopReplica(first);
      // Nobody leads now: the diagnostic is left Running, as after a crash or a rollout.
      expect((await readDiagnostic('restart')).status?.phase).toBe('Running');
      expect((await readLease()).spec?.holderIdentity ?? '').toBe('');

      const second = await startReplica('second');
      const done = await waitFinished('restart', 20_000, seen);
      expect(second.isLeading).toBe(true);
      expect(done.status).toMatchObject({
        phase: 'Completed',
        startTime,
        summary: { nodesTargeted: 2, nodesSucceeded: 2, nodesByStatus: { healthy: 2 } },
      });
      expect(done.status?.nodes?.find((x) => x.name === n['slow'])).toMatchObject({ result: 'Succeeded', status: 'healthy' });
      expect(reconcilingMessages(seen).some((m) => m.includes('restarted after an operator restart'))).toBe(true);
      // Never back to Pending, and Running only until Completed.
      const phases = seen.map((o) => o.status?.phase ?? '');
      expect(phases.slice(phases.indexOf('Running'))).toEqual(expect.not.arrayContaining(['Pending', 'Failed']));
    } finally {
      await slow.load('h100-sxm-8x-healthy');
    }
  });

  it('runs two replicas with exactly one leader; when it stops, the other takes over the Lease and diagnoses', async () => {
    const [a, b] = await Promise.all([startReplica('replica-a'), startReplica('replica-b')]);
    await waitFor('a leader', 10_000, () => a.isLeading || b.isLeading);
    // Stays that way across renewals (the retry period is 2 s).
    for (let i = 0; i < 5; i++) {
      expect([a.isLeading, b.isLeading].filter(Boolean)).toHaveLength(1);
      await sleep(500);
    }
    const [leader, follower] = a.isLeading ? [a, b] : [b, a];
    const leaderName = leader === a ? 'replica-a' : 'replica-b';
    const followerName = leader === a ? 'replica-b' : 'replica-a';
    const lease = await readLease();
    expect(lease.spec?.holderIdentity).toMatch(new RegExp(`^${leaderName}_`));
    expect(await leader.metrics.registry.getSingleMetricAsString('gpudiag_leader')).toMatch(/^gpudiag_leader 1$/m);
    expect(await follower.metrics.registry.getSingleMetricAsString('gpudiag_leader')).toMatch(/^gpudiag_leader 0$/m);

    await createDiagnostic('replicas-1', { nodeNames: [n['healthy'], n['lost']] });
    const first = await waitFinished('replicas-1');
    expect(first.status).toMatchObject({ phase: 'Completed', summary: { nodesSucceeded: 2, nodesByStatus: { healthy: 1, critical: 1 } } });

    await stopReplica(leader);
    const takeoverMs = await waitFor('the follower takes over', 8_000, () => follower.isLeading);
    expect(takeoverMs).toBeLessThan(8_000);
    const after = await readLease();
    expect(after.spec?.holderIdentity).toMatch(new RegExp(`^${followerName}_`));
    expect(after.spec?.leaseTransitions ?? 0).toBeGreaterThan(lease.spec?.leaseTransitions ?? 0);

    await createDiagnostic('replicas-2', { nodeNames: [n['healthy'], n['lost']] });
    const second = await waitFinished('replicas-2');
    expect(second.status).toMatchObject({ phase: 'Completed', summary: { nodesSucceeded: 2, nodesByStatus: { healthy: 1, critical: 1 } } });
    expect(second.status?.summary?.criticalNodes).toEqual([n['lost']]);
    // The first diagnostic, finished under the old leader, is left as it was.
    expect((await readDiagnostic('replicas-1')).status).toEqual(first.status);
  });
});

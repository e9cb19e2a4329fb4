/** Leader election on a real coordination.k8s.io/v1 Lease, with short durations. */
import { afterEach, describe, expect, it } from '@jest/globals';
import { CoordinationV1Api, RbacAuthorizationV1Api, V1MicroTime } from '@kubernetes/client-node';
import { LeaderElector, type LeaderElectionOptions } from '../../operator/runtime/leader-election.js';
import { testCluster, uniqueSuffix, useTestNamespace } from '../support/cluster.js';

const ns = useTestNamespace('rt-leader');

/** One elector plus a record of when it led, for overlap checks. */
interface Replica {
  elector: LeaderElector;
  intervals: { from: number; to?: number }[];
  signals: AbortSignal[];
}

const replicas: Replica[] = [];

afterEach(async () => {
  await Promise.all(replicas.splice(0).map((r) => r.elector.stop()));
});

function replica(lease: string, identity: string, overrides: Partial<LeaderElectionOptions> = {}): Replica {
  const r: Replica = { intervals: [], signals: [], elector: undefined as unknown as LeaderElector };
  r.elector = new LeaderElector({
    kubeConfig: testCluster().admin(),
    namespace: ns.name,
    name: lease,
    identity,
    leaseDurationSeconds: 2,
    renewDeadlineMs: 1_500,
    retryPeriodMs: 250,
    stopGraceMs: 1_000,
    onStartedLeading: async (signal) => {
      const interval: { from: number; to?: number } = { from: Date.now() };
      r.intervals.push(interval);
      r.signals.push(signal);
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
      interval.to = Date.now();
    },
    ...overrides,
  });
  replicas.push(r);
  return r;
}

async function eventually(what: string, check: () => boolean, timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return Date.now() - started;
}

function expectNoOverlap(a: Replica, b: Replica): void {
  for (const x of a.intervals) {
    for (const y of b.intervals) {
      const xEnd = x.to ?? Infinity;
      const yEnd = y.to ?? Infinity;
      expect(x.from < yEnd && y.from < xEnd).toBe(false);
    }
  }
}

async function readLease(name: string): Promise<{ holder: string; duration: number | undefined; transitions: number | undefined }> {
  const lease = await testCluster().admin().makeApiClient(CoordinationV1Api).readNamespacedLease({ name, namespace: ns.name });
  return {
    holder: lease.spec?.holderIdentity ?? '',
    duration: lease.spec?.leaseDurationSeconds,
    transitions: lease.spec?.leaseTransitions,
  };
}

describe('LeaderElector', () => {
  it('two electors on one Lease: exactly one leads', async () => {
    const lease = `lease-${uniqueSuffix()}`;
    const a = replica(lease, 'replica-a');
    const b = replica(lease, 'replica-b');
    a.elector.start();
    b.elector.start();
    await eventually('a leader', () => a.elector.isLeader || b.elector.isLeader, 5_000);
    // Watch for a few lease durations: the leader keeps renewing, the other never leads.
    const leaderFirst = a.elector.isLeader ? a : b;
    for (let i = 0; i < 60; i++) {
      expect(a.elector.isLeader && b.elector.isLeader).toBe(false);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(leaderFirst.elector.isLeader).toBe(true);
    expect((await readLease(lease)).holder).toBe(leaderFirst.elector.identity);
    expectNoOverlap(a, b);
  });

  it('stopping the leader releases the Lease; the other takes over at once', async () => {
    const lease = `lease-${uniqueSuffix()}`;
    const a = replica(lease, 'replica-a');
    a.elector.start();
    await eventually('a leads', () => a.elector.isLeader, 5_000);
    const b = replica(lease, 'replica-b');
    b.elector.start();
    await new Promise((r) => setTimeout(r, 600));
    expect(b.elector.isLeader).toBe(false);

    await a.elector.stop();
    expect(a.signals[0]?.aborted).toBe(true);
    expect(a.intervals[0]?.to).toBeDefined();
    // Released: no need to wait for the 2 s lease to expire.
    const tookMs = await eventually('b leads', () => b.elector.isLeader, 3_000);
    expect(tookMs).toBeLessThan(1_500);
    const after = await readLease(lease);
    expect(after.holder).toBe('replica-b');
    expect(after.transitions).toBe(1);
    expectNoOverlap(a, b);
  });

  it('a leader that dies without releasing is replaced after the lease expires', async () => {
    const lease = `lease-${uniqueSuffix()}`;
    const a = replica(lease, 'replica-a');
    const b = replica(lease, 'replica-b');
    a.elector.start();
    await eventually('a leads', () => a.elector.isLeader, 5_000);
    b.elector.start();
    await new Promise((r) => setTimeout(r, 500));
    await a.elector.stop(false); // crash: no release
    const tookMs = await eventually('b leads', () => b.elector.isLeader, 6_000);
    expect(tookMs).toBeGreaterThan(1_000); // waited for expiry (2 s lease)
    expectNoOverlap(a, b);
  });

  it('a leader whose Lease was taken by another holder stops leading', async () => {
    const lease = `lease-${uniqueSuffix()}`;
    let stoppedReason = '';
    const a = replica(lease, 'replica-a', { onStoppedLeading: (reason) => (stoppedReason = reason) });
    a.elector.start();
    await eventually('a leads', () => a.elector.isLeader, 5_000);

    const api = testCluster().admin().makeApiClient(CoordinationV1Api);
    const current = await api.readNamespacedLease({ name: lease, namespace: ns.name });
    const now = new V1MicroTime(Date.now());
    await api.replaceNamespacedLease({
      name: lease,
      namespace: ns.name,
      body: {
        ...current,
        spec: { ...current.spec, holderIdentity: 'intruder', renewTime: now, acquireTime: now, leaseDurationSeconds: 30 },
      },
    });
    await eventually('a stops leading', () => !a.elector.isLeader, 2_000);
    expect(a.signals[0]?.aborted).toBe(true);
    expect(stoppedReason).toBe('lease taken by another holder');
    // It stays a follower while the intruder's lease is valid, and does not overwrite it.
    await new Promise((r) => setTimeout(r, 700));
    expect(a.elector.isLeader).toBe(false);
    expect((await readLease(lease)).holder).toBe('intruder');
  });

  it('runs with only get/create/update on Leases, and stops leading when renewals fail past the deadline', async () => {
    const lease = `lease-${uniqueSuffix()}`;
    const user = `leader-${uniqueSuffix()}`;
    const rbac = testCluster().admin().makeApiClient(RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({
      namespace: ns.name,
      body: {
        metadata: { name: user },
        rules: [{ apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: ns.name,
      body: {
        metadata: { name: user },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: user },
        subjects: [{ kind: 'User', name: user, apiGroup: 'rbac.authorization.k8s.io' }],
      },
    });
    const a = replica(lease, 'replica-a', { kubeConfig: await testCluster().as({ user, groups: [] }) });
    a.elector.start();
    await eventually('a leads', () => a.elector.isLeader, 5_000);
    await new Promise((r) => setTimeout(r, 600));
    expect(a.elector.isLeader).toBe(true); // renewals succeed with these permissions

    // Permission revoked: every renewal now fails with 403.
    await rbac.deleteNamespacedRoleBinding({ namespace: ns.name, name: user });
    const tookMs = await eventually('a stops leading', () => !a.elector.isLeader, 4_000);
    expect(tookMs).toBeLessThanOrEqual(2_000); // renew deadline 1.5 s after the last good renewal
    expect(a.signals[0]?.aborted).toBe(true);
  });
});

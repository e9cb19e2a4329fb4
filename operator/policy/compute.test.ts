import { describe, expect, it } from '@jest/globals';
import type { GPUHealthPolicyStatus } from '../../api/index.js';
import { assertKstatus } from '../../test/support/kstatus.js';
import type { NodeResultInput } from '../diagnostic/results.js';
import { BUILT_IN_POLICY, scoreNode } from '../scoring/index.js';
import { h100, lostGpu, minutesAgo, NOW, nodeSnapshot, xidEvent } from '../scoring/test-fixtures.js';
import { planActions } from './actions.js';
import {
  checkedGeneration,
  computePolicyStatus,
  healthyCondition,
  nextCheckAt,
  POLICY_STATUS_LIMITS,
  recentXids,
  worstNodes,
  type PolicyObservation,
} from './compute.js';

const later = (s: number): Date => new Date(NOW.getTime() + s * 1000);

function scored(node: string, gpus = [h100(0)], events: ReturnType<typeof xidEvent>[] = []): NodeResultInput {
  return { node, result: 'Succeeded', score: scoreNode({ ...nodeSnapshot({ gpus, events }), node }, BUILT_IN_POLICY, NOW) };
}
const healthy = scored('node-a');
const critical = scored('node-b', [lostGpu(0)]);
const unreachable: NodeResultInput = { node: 'node-c', result: 'Unreachable', message: 'connection refused' };

function cond(
  status: GPUHealthPolicyStatus | undefined,
  type: string,
): { status: string; reason: string; message: string; lastTransitionTime: string } | undefined {
  return status?.conditions?.find((c) => c.type === type);
}

/** Walks observations like the controller would, checking kstatus at every step. */
function walk(steps: [number, PolicyObservation][], start?: GPUHealthPolicyStatus): (GPUHealthPolicyStatus | undefined)[] {
  let current = start;
  return steps.map(([generation, o], i) => {
    current = computePolicyStatus(current, generation, o, later(i));
    assertKstatus({ kind: 'GPUHealthPolicy', metadata: { name: 'p', generation }, status: current });
    return current;
  });
}

const checked = (results: NodeResultInput[], extra: Partial<Extract<PolicyObservation, { kind: 'checked' }>> = {}): PolicyObservation => ({
  kind: 'checked',
  results,
  nextCheckTime: later(300),
  ...extra,
});

describe('computePolicyStatus', () => {
  it('first check: Reconciling while checking, then Ready=True with counts, times and Healthy', () => {
    const [checking, done] = walk([
      [1, { kind: 'checking', governed: 2 }],
      [1, checked([healthy, critical])],
    ]);
    expect(cond(checking, 'Reconciling')).toMatchObject({ status: 'True', reason: 'Checking' });
    expect(cond(checking, 'Ready')).toMatchObject({ status: 'Unknown' });
    expect(cond(checking, 'Healthy')).toMatchObject({ status: 'Unknown', reason: 'NotChecked' });
    expect(done).toMatchObject({
      observedGeneration: 1,
      lastCheckTime: '2025-06-01T12:00:01Z',
      nextCheckTime: '2025-06-01T12:05:00Z',
      nodes: { governed: 2, healthy: 1, critical: 1, degraded: 0, unknown: 0, minScore: critical.score?.score },
    });
    expect(cond(done, 'Ready')).toMatchObject({ status: 'True', reason: 'Checked' });
    expect(cond(done, 'Reconciling')).toBeUndefined();
    expect(cond(done, 'Healthy')).toMatchObject({ status: 'False', reason: 'CriticalNodes' });
    expect(cond(done, 'Healthy')?.message).toContain('node-b');
    expect(done?.worstNodes?.map((n) => n.name)).toEqual(['node-b']);
    expect(checkedGeneration(done, 1)).toBe(true);
    expect(checkedGeneration(done, 2)).toBe(false);
  });

  it.each<[string, NodeResultInput[], string, string]>([
    ['all healthy', [healthy], 'True', 'NoCriticalNodes'],
    ['a critical node', [healthy, critical, unreachable], 'False', 'CriticalNodes'],
    ['a node that could not be checked', [healthy, unreachable], 'Unknown', 'NodesNotChecked'],
    ['no governed node', [], 'Unknown', 'NoGovernedNodes'],
  ])('Healthy for %s', (_name, results, status, reason) => {
    expect(healthyCondition(results)).toMatchObject({ status, reason });
  });

  it('a routine re-check of the same generation keeps Ready=True and its transition time', () => {
    const [first, second] = walk([
      [1, checked([healthy])],
      [1, checked([healthy, critical])],
    ]);
    expect(cond(second, 'Ready')?.lastTransitionTime).toBe(cond(first, 'Ready')?.lastTransitionTime);
    expect(cond(second, 'Healthy')).toMatchObject({ status: 'False' });
    expect(cond(second, 'Healthy')?.lastTransitionTime).not.toBe(cond(first, 'Healthy')?.lastTransitionTime);
  });

  it('health clears itself: a recovered node is healthy at the next check', () => {
    const [, recovered] = walk([
      [1, checked([critical])],
      [1, checked([scored('node-b')])],
    ]);
    expect(cond(recovered, 'Healthy')).toMatchObject({ status: 'True' });
    expect(recovered?.worstNodes).toEqual([]);
  });

  it('suspend keeps the data of the last check and Ready=True; a new generation then re-checks', () => {
    const [done, suspended, checking] = walk([
      [1, checked([critical])],
      [2, { kind: 'suspended' }],
      [3, { kind: 'checking', governed: 1 }],
    ]);
    expect(suspended).toMatchObject({
      observedGeneration: 2,
      lastCheckTime: done?.lastCheckTime,
      nodes: done?.nodes,
      worstNodes: done?.worstNodes,
    });
    expect(suspended?.nextCheckTime).toBeUndefined();
    expect(cond(suspended, 'Ready')).toMatchObject({ status: 'True', reason: 'Suspended' });
    expect(cond(suspended, 'Ready')?.lastTransitionTime).toBe(cond(done, 'Ready')?.lastTransitionTime);
    expect(cond(suspended, 'Healthy')).toMatchObject({ status: 'False' });
    expect(checkedGeneration(suspended, 2)).toBe(false);
    expect(cond(checking, 'Reconciling')).toMatchObject({ status: 'True' });
    expect(checking?.nodes).toEqual(done?.nodes);
  });

  it.each<['InvalidSpec' | 'InvalidPolicy']>([['InvalidSpec'], ['InvalidPolicy']])(
    'an unusable spec is Stalled (%s), keeping the last data',
    (reason) => {
      const [done, stalled] = walk([
        [1, checked([healthy])],
        [2, { kind: 'stalled', reason, message: 'explained' }],
      ]);
      expect(cond(stalled, 'Stalled')).toMatchObject({ status: 'True', reason });
      expect(cond(stalled, 'Ready')).toMatchObject({ status: 'False', reason });
      expect(cond(stalled, 'Healthy')).toMatchObject({ status: 'Unknown' });
      expect(stalled?.lastCheckTime).toBe(done?.lastCheckTime);
    },
  );

  it('is idempotent', () => {
    const obs = checked([healthy, critical]);
    const first = computePolicyStatus(undefined, 1, obs, later(1));
    expect(computePolicyStatus(first, 1, obs, later(1))).toEqual(first);
  });

  it('reports the actions plan, dry run included', () => {
    const plan = planActions({
      policy: 'p',
      actions: { ...BUILT_IN_POLICY.actions, dryRun: true, taint: { ...BUILT_IN_POLICY.actions.taint, enabled: true } },
      governed: [
        { node: 'node-b', status: 'critical', checked: true, score: 0, heldTaint: false, foreignTaint: false, heldVerdict: false },
      ],
      outOfScope: [],
    });
    const [done] = walk([[1, checked([critical], { actions: plan })]]);
    expect(done?.actions).toMatchObject({ dryRun: true, tainted: ['node-b'], heldByGuardrail: [] });
    expect(done?.actions?.message).toContain('dry run');
  });
});

describe('bounded lists', () => {
  it('worstNodes lists non-healthy nodes only, worst first, and counts the rest', () => {
    const many = [
      healthy,
      ...Array.from({ length: 60 }, (_, i) => ({
        node: `u-${String(i).padStart(2, '0')}`,
        result: 'Timeout' as const,
        message: 'deadline',
      })),
      critical,
    ];
    const { list, truncated } = worstNodes(many);
    expect(list).toHaveLength(POLICY_STATUS_LIMITS.worstNodes);
    expect(list[0]).toMatchObject({ name: 'node-b', status: 'critical' });
    expect(list.every((n) => n.status !== 'healthy')).toBe(true);
    expect(truncated).toBe(61 - POLICY_STATUS_LIMITS.worstNodes);
    const status = computePolicyStatus(undefined, 1, checked(many), NOW);
    expect(status.worstNodesTruncated).toBe(truncated);
  });

  it('recentXids deduplicates by node+gpu+xid, worst then newest first', () => {
    const gpu0 = h100(0);
    const gpu1 = h100(1);
    const a = scored(
      'node-a',
      [gpu0, gpu1],
      [
        xidEvent(13, { lastSeen: minutesAgo(10), firstSeen: minutesAgo(10), pid: 1 }, gpu0),
        xidEvent(13, { lastSeen: minutesAgo(2), firstSeen: minutesAgo(2), pid: 2 }, gpu0),
        xidEvent(13, { lastSeen: minutesAgo(1), firstSeen: minutesAgo(1) }, gpu1),
        xidEvent(79, { lastSeen: minutesAgo(30), firstSeen: minutesAgo(30) }, gpu1),
      ],
    );
    const xids = recentXids([a]);
    expect(xids.map((x) => [x.xid, x.gpu])).toEqual([
      [79, gpu1.uuid],
      [13, gpu1.uuid],
      [13, gpu0.uuid],
    ]);
    expect(xids[2]).toMatchObject({ count: 2, lastSeen: minutesAgo(2) });
  });

  it('recentXids is bounded', () => {
    const gpu = h100(0);
    const events = Array.from({ length: 70 }, (_, i) => xidEvent(100 + i, {}, gpu));
    expect(recentXids([scored('node-a', [gpu], events)])).toHaveLength(POLICY_STATUS_LIMITS.recentXids);
  });
});

describe('nextCheckAt', () => {
  it.each([
    [0, 270_000],
    [0.5, 300_000],
    [0.999999, 330_000],
  ])('jitters the interval by ±10%% (random %p)', (random, ms) => {
    expect(nextCheckAt(NOW, 300_000, random).getTime() - NOW.getTime()).toBeCloseTo(ms, -1);
  });
});

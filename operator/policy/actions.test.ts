import { describe, expect, it } from '@jest/globals';
import type { V1Node } from '@kubernetes/client-node';
import { BUILT_IN_POLICY, type ResolvedActions } from '../scoring/index.js';
import {
  desiredNodeCondition,
  formatTaintedBy,
  nodeMetadataPatch,
  parseTaintedBy,
  planActions,
  taintAllowance,
  taintState,
  TAINTED_BY_ANNOTATION,
  UNHEALTHY_BY_ANNOTATION,
  type PlanNode,
} from './actions.js';

const KEY = 'gpudiag.io/gpu-unhealthy';

function actions(overrides: { dryRun?: boolean; taint?: Partial<ResolvedActions['taint']>; condition?: boolean } = {}): ResolvedActions {
  return {
    dryRun: overrides.dryRun ?? false,
    nodeCondition: { enabled: overrides.condition ?? false },
    podCondition: { enabled: false },
    taint: { ...BUILT_IN_POLICY.actions.taint, enabled: true, ...overrides.taint },
  };
}

function n(node: string, status: PlanNode['status'], extra: Partial<PlanNode> = {}): PlanNode {
  return {
    node,
    status,
    checked: status !== 'unknown',
    score: status === 'critical' ? 0 : status === 'degraded' ? 60 : status === 'healthy' ? 100 : undefined,
    heldTaint: false,
    foreignTaint: false,
    heldVerdict: false,
    ...extra,
  } as PlanNode;
}

describe('taintAllowance', () => {
  it.each([
    [10, 25, 2],
    [10, 5, 1],
    [25, 4, 1],
    [50, 4, 2],
    [0, 10, 1],
    [100, 3, 3],
    [10, 0, 0],
  ])('%p%% of %p governed nodes allows %p', (percent, governed, allowed) => {
    expect(taintAllowance(percent, governed)).toBe(allowed);
  });
});

describe('planActions', () => {
  it('the guardrail holds: 4 nodes, 2 critical, 25% → the most critical is tainted, the other held', () => {
    const plan = planActions({
      policy: 'p',
      actions: actions({ taint: { maxTaintedPercent: 25 } }),
      governed: [n('a', 'healthy'), n('b', 'critical', { score: 30 }), n('c', 'critical', { score: 10 }), n('d', 'healthy')],
      outOfScope: [],
    });
    expect(plan).toMatchObject({ allowed: 1, add: ['c'], held: ['b'], remove: [], keep: [], tainted: ['c'] });
    expect(plan.message).toContain('held by the guardrail');
  });

  it('already tainted nodes count against the allowance and keep their taint while critical', () => {
    const plan = planActions({
      policy: 'p',
      actions: actions({ taint: { maxTaintedPercent: 25 } }),
      governed: [
        n('a', 'critical', { score: 40, heldTaint: true }),
        n('b', 'critical', { score: 0 }),
        n('c', 'healthy'),
        n('d', 'healthy'),
      ],
      outOfScope: [],
    });
    expect(plan).toMatchObject({ add: [], keep: ['a'], held: ['b'], tainted: ['a'] });
  });

  it('recovery removes the taint and frees the allowance for the next critical node', () => {
    const plan = planActions({
      policy: 'p',
      actions: actions({ taint: { maxTaintedPercent: 25 } }),
      governed: [n('a', 'healthy', { heldTaint: true }), n('b', 'critical'), n('c', 'degraded'), n('d', 'healthy')],
      outOfScope: [],
    });
    expect(plan).toMatchObject({ remove: ['a'], add: ['b'], held: [], tainted: ['b'] });
  });

  it('a node that could not be checked is never newly tainted, and keeps a taint it has', () => {
    const plan = planActions({
      policy: 'p',
      actions: actions({ taint: { maxTaintedPercent: 100 } }),
      governed: [n('a', 'unknown', { heldTaint: true }), n('b', 'unknown')],
      outOfScope: [],
    });
    expect(plan).toMatchObject({ add: [], remove: [], keep: ['a'], tainted: ['a'] });
  });

  it('leaves a taint with its key that no gpudiag policy recorded alone', () => {
    const plan = planActions({
      policy: 'p',
      actions: actions({ taint: { maxTaintedPercent: 100 } }),
      governed: [n('a', 'critical', { foreignTaint: true })],
      outOfScope: [],
    });
    expect(plan).toMatchObject({ add: [], held: [], tainted: [] });
  });

  it('removes taints when tainting is turned off, and from nodes out of scope', () => {
    const plan = planActions({
      policy: 'p',
      actions: actions({ taint: { enabled: false } }),
      governed: [n('a', 'critical', { heldTaint: true })],
      outOfScope: ['z'],
    });
    expect(plan).toMatchObject({ add: [], keep: [], remove: ['a', 'z'], tainted: [] });
  });

  it('dry run plans the same and says so', () => {
    const plan = planActions({
      policy: 'p',
      actions: actions({ dryRun: true, taint: { maxTaintedPercent: 50 } }),
      governed: [n('a', 'critical'), n('b', 'healthy')],
      outOfScope: [],
    });
    expect(plan).toMatchObject({ dryRun: true, add: ['a'], tainted: ['a'] });
    expect(plan.message).toMatch(/^dry run, nothing changed: would /);
  });

  it('GPUHealthy verdicts for checked nodes only; releases when the action is off', () => {
    const on = planActions({
      policy: 'p',
      actions: actions({ taint: { enabled: false }, condition: true }),
      governed: [n('a', 'critical', { message: 'GPU 0 lost' }), n('b', 'healthy'), n('c', 'unknown')],
      outOfScope: [],
    });
    expect(on.verdicts).toEqual([
      { node: 'a', verdict: 'critical', message: 'GPU 0 lost' },
      { node: 'b', verdict: 'ok', message: '' },
    ]);
    const off = planActions({
      policy: 'p',
      actions: actions({ taint: { enabled: false } }),
      governed: [n('a', 'critical', { heldVerdict: true }), n('b', 'healthy')],
      outOfScope: [],
    });
    expect(off.verdicts).toEqual([{ node: 'a', verdict: 'release', message: '' }]);
  });
});

function node(
  parts: {
    taints?: { key: string; effect: string }[];
    annotations?: Record<string, string>;
    condition?: { status: string; reason: string; message: string };
  } = {},
): V1Node {
  return {
    metadata: { name: 'n1', resourceVersion: '42', ...(parts.annotations !== undefined ? { annotations: parts.annotations } : {}) },
    spec: { ...(parts.taints !== undefined ? { taints: parts.taints } : {}) },
    status: { conditions: parts.condition === undefined ? [] : [{ type: 'GPUHealthy', ...parts.condition }] },
  };
}

describe('nodeMetadataPatch', () => {
  const add = { op: 'add' as const, key: KEY, effect: 'NoSchedule' };
  const remove = { op: 'remove' as const, key: KEY, effect: 'NoSchedule' };

  it('adds the taint, keeps other taints, records the policy, with a resourceVersion precondition', () => {
    const patch = nodeMetadataPatch(node({ taints: [{ key: 'other', effect: 'NoSchedule' }] }), { policy: 'p', taint: add });
    expect(patch?.metadata).toEqual({ resourceVersion: '42', annotations: { [TAINTED_BY_ANNOTATION]: `p=${KEY}` } });
    expect(patch?.spec?.taints.map((t) => t.key)).toEqual(['other', KEY]);
  });

  it('is undefined when the node is already as wanted', () => {
    expect(
      nodeMetadataPatch(node({ taints: [{ key: KEY, effect: 'NoSchedule' }], annotations: { [TAINTED_BY_ANNOTATION]: `p=${KEY}` } }), {
        policy: 'p',
        taint: add,
      }),
    ).toBeUndefined();
    expect(nodeMetadataPatch(node(), { policy: 'p', taint: remove })).toBeUndefined();
  });

  it('never claims or removes a taint it did not record', () => {
    const foreign = node({ taints: [{ key: KEY, effect: 'NoSchedule' }] });
    expect(nodeMetadataPatch(foreign, { policy: 'p', taint: add })).toBeUndefined();
    expect(nodeMetadataPatch(foreign, { policy: 'p', taint: remove })).toBeUndefined();
    expect(taintState(foreign, 'p', KEY)).toEqual({ heldTaint: false, foreignTaint: true });
  });

  it('shares a key with another policy: the taint goes only when the last holder releases it', () => {
    const shared = node({ taints: [{ key: KEY, effect: 'NoSchedule' }], annotations: { [TAINTED_BY_ANNOTATION]: `p=${KEY},q=${KEY}` } });
    const first = nodeMetadataPatch(shared, { policy: 'p', taint: remove });
    expect(first).toEqual({ metadata: { resourceVersion: '42', annotations: { [TAINTED_BY_ANNOTATION]: `q=${KEY}` } } });
    const last = nodeMetadataPatch(
      node({
        taints: [
          { key: KEY, effect: 'NoSchedule' },
          { key: 'other', effect: 'NoExecute' },
        ],
        annotations: { [TAINTED_BY_ANNOTATION]: `q=${KEY}` },
      }),
      { policy: 'q', taint: remove },
    );
    expect(last?.metadata.annotations).toEqual({ [TAINTED_BY_ANNOTATION]: null });
    expect(last?.spec?.taints.map((t) => t.key)).toEqual(['other']);
    // A second policy with the same key joins the holders without adding a second taint.
    const join = nodeMetadataPatch(
      node({ taints: [{ key: KEY, effect: 'NoSchedule' }], annotations: { [TAINTED_BY_ANNOTATION]: `q=${KEY}` } }),
      { policy: 'p', taint: add },
    );
    expect(join).toEqual({ metadata: { resourceVersion: '42', annotations: { [TAINTED_BY_ANNOTATION]: `p=${KEY},q=${KEY}` } } });
  });

  it('records and clears the unhealthy verdict', () => {
    const critical = nodeMetadataPatch(node(), { policy: 'p', verdict: { node: 'n1', verdict: 'critical', message: 'x' } });
    expect(critical?.metadata.annotations).toEqual({ [UNHEALTHY_BY_ANNOTATION]: 'p' });
    const ok = nodeMetadataPatch(node({ annotations: { [UNHEALTHY_BY_ANNOTATION]: 'p,q' } }), {
      policy: 'p',
      verdict: { node: 'n1', verdict: 'ok', message: '' },
    });
    expect(ok?.metadata.annotations).toEqual({ [UNHEALTHY_BY_ANNOTATION]: 'q' });
  });

  it('round-trips the tainted-by annotation and drops malformed entries', () => {
    expect(formatTaintedBy(parseTaintedBy(`b=${KEY},a=other/key,junk,=x,y=`))).toBe(`a=other/key,b=${KEY}`);
  });
});

describe('desiredNodeCondition', () => {
  it.each<[string, V1Node, 'critical' | 'ok' | 'release', { status: string; reason: string } | undefined]>([
    ['critical', node({ annotations: { [UNHEALTHY_BY_ANNOTATION]: 'p' } }), 'critical', { status: 'False', reason: 'CriticalGPU' }],
    ['healthy', node(), 'ok', { status: 'True', reason: 'GPUsHealthy' }],
    [
      'healthy here, critical per another policy (condition absent)',
      node({ annotations: { [UNHEALTHY_BY_ANNOTATION]: 'q' } }),
      'ok',
      { status: 'False', reason: 'CriticalGPU' },
    ],
    [
      'healthy here, another policy already set False',
      node({ annotations: { [UNHEALTHY_BY_ANNOTATION]: 'q' }, condition: { status: 'False', reason: 'CriticalGPU', message: 'q says' } }),
      'ok',
      undefined,
    ],
    [
      'released, last verdict gone',
      node({ condition: { status: 'False', reason: 'CriticalGPU', message: 'p says' } }),
      'release',
      { status: 'True', reason: 'NoCriticalVerdict' },
    ],
    ['released, condition already True', node({ condition: { status: 'True', reason: 'GPUsHealthy', message: '' } }), 'release', undefined],
  ])('%s', (_name, n1, verdict, want) => {
    const got = desiredNodeCondition(n1, 'p', { node: 'n1', verdict, message: 'GPU 0 lost' });
    if (want === undefined) expect(got).toBeUndefined();
    else expect(got).toMatchObject(want);
  });
});

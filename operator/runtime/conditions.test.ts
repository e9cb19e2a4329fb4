import { describe, expect, it } from '@jest/globals';
import { assertKstatus } from '../../test/support/kstatus.js';
import {
  boundMessage,
  findCondition,
  formatTime,
  InvalidConditionError,
  isConditionTrue,
  markReady,
  markReconciling,
  markStalled,
  MAX_MESSAGE_LENGTH,
  removeCondition,
  setCondition,
  type Condition,
} from './conditions.js';

const T0 = new Date('2025-01-02T03:04:05.678Z');
const T1 = new Date('2025-01-02T03:10:00.000Z');
const T0S = '2025-01-02T03:04:05Z';
const T1S = '2025-01-02T03:10:00Z';

const ready = (status: Condition['status'], at = T0S, gen = 1): Condition => ({
  type: 'Ready',
  status,
  observedGeneration: gen,
  lastTransitionTime: at,
  reason: 'Done',
  message: 'm',
});

describe('setCondition', () => {
  it.each<[string, Condition[] | undefined, Parameters<typeof setCondition>[1], number, Condition[]]>([
    ['adds to an empty list', undefined, { type: 'Ready', status: 'True', reason: 'Done', message: 'm' }, 1, [ready('True', T1S)]],
    [
      'keeps lastTransitionTime when the status is unchanged',
      [ready('True')],
      { type: 'Ready', status: 'True', reason: 'Done', message: 'm' },
      1,
      [ready('True')],
    ],
    [
      'updates reason, message and generation without a transition',
      [ready('True')],
      { type: 'Ready', status: 'True', reason: 'Again', message: 'n' },
      2,
      [{ ...ready('True', T0S, 2), reason: 'Again', message: 'n' }],
    ],
    [
      'moves lastTransitionTime when the status changes',
      [ready('True')],
      { type: 'Ready', status: 'False', reason: 'Done', message: 'm' },
      1,
      [ready('False', T1S)],
    ],
    [
      'keeps the position of existing conditions and appends new ones',
      [{ ...ready('True'), type: 'Healthy' }, ready('True')],
      { type: 'Reconciling', status: 'True', reason: 'Progressing', message: 'p' },
      3,
      [
        { ...ready('True'), type: 'Healthy' },
        ready('True'),
        { type: 'Reconciling', status: 'True', observedGeneration: 3, lastTransitionTime: T1S, reason: 'Progressing', message: 'p' },
      ],
    ],
  ])('%s', (_name, before, input, generation, expected) => {
    const snapshot = JSON.stringify(before);
    expect(setCondition(before, input, generation, T1)).toEqual(expected);
    expect(JSON.stringify(before)).toBe(snapshot); // pure: the input is not mutated
  });

  it.each([
    ['a reason with a space', { type: 'Ready', status: 'True' as const, reason: 'Not Ready', message: '' }],
    ['an empty reason', { type: 'Ready', status: 'True' as const, reason: '', message: '' }],
    ['a reason ending with a comma', { type: 'Ready', status: 'True' as const, reason: 'A,', message: '' }],
    ['a lower-case type', { type: 'ready', status: 'True' as const, reason: 'Done', message: '' }],
    ['an invalid status', { type: 'Ready', status: 'Yes' as 'True', reason: 'Done', message: '' }],
  ])('rejects %s', (_name, input) => {
    expect(() => setCondition([], input, 1, T0)).toThrow(InvalidConditionError);
  });

  it.each(['Done', 'a', 'Reason_1', 'A,B:C_D', 'NoMatchingNodes'])('accepts reason %j', (reason) => {
    expect(setCondition([], { type: 'Ready', status: 'True', reason, message: '' }, 1, T0)[0]?.reason).toBe(reason);
  });

  it('bounds long messages', () => {
    const c = setCondition([], { type: 'Ready', status: 'False', reason: 'Failed', message: 'x'.repeat(10_000) }, 1, T0)[0];
    expect(c?.message).toHaveLength(MAX_MESSAGE_LENGTH);
    expect(c?.message.endsWith('…')).toBe(true);
    expect(boundMessage('short')).toBe('short');
    const emoji = boundMessage(`${'a'.repeat(MAX_MESSAGE_LENGTH - 2)}😀😀`);
    expect(emoji.length).toBeLessThanOrEqual(MAX_MESSAGE_LENGTH);
    expect(emoji).not.toMatch(/[\uD800-\uDBFF]…$/);
  });

  it('formats times as whole-second RFC 3339', () => {
    expect(formatTime(T0)).toBe(T0S);
  });
});

describe('findCondition / isConditionTrue / removeCondition', () => {
  const list = [ready('True'), { ...ready('False'), type: 'Healthy' }];
  it('finds by type', () => {
    expect(findCondition(list, 'Healthy')?.status).toBe('False');
    expect(findCondition(list, 'Stalled')).toBeUndefined();
    expect(findCondition(undefined, 'Ready')).toBeUndefined();
    expect(isConditionTrue(list, 'Ready')).toBe(true);
    expect(isConditionTrue(list, 'Healthy')).toBe(false);
  });
  it('removes by type without touching the input', () => {
    expect(removeCondition(list, 'Ready').map((c) => c.type)).toEqual(['Healthy']);
    expect(list).toHaveLength(2);
  });
});

describe('kstatus helpers', () => {
  const obj = (
    conditions: Condition[],
    generation = 1,
    observedGeneration = generation,
  ): { metadata: { name: string; generation: number }; status: { observedGeneration: number; conditions: Condition[] } } => ({
    metadata: { name: 'diag', generation },
    status: { observedGeneration, conditions },
  });

  it('markReconciling: Reconciling=True, Ready=Unknown, Stalled gone', () => {
    const stalled = markStalled([], { reason: 'NoMatchingNodes', message: 'none' }, 1, T0);
    const c = markReconciling(stalled, { reason: 'Progressing', message: 'asking agents' }, 2, T1);
    expect(c.map((x) => [x.type, x.status, x.reason, x.observedGeneration])).toEqual([
      ['Ready', 'Unknown', 'Progressing', 2],
      ['Reconciling', 'True', 'Progressing', 2],
    ]);
    assertKstatus(obj(c, 2));
    expect(
      markReconciling([], { reason: 'RetryingAfterError', message: 'x' }, 1, T0, 'False').find((x) => x.type === 'Ready')?.status,
    ).toBe('False');
  });

  it('markStalled: Stalled=True, Ready=False, Reconciling gone', () => {
    const reconciling = markReconciling([], { reason: 'Progressing', message: 'p' }, 1, T0);
    const c = markStalled(reconciling, { reason: 'PolicyNotFound', message: 'policy "x" not found' }, 1, T1);
    expect(c.map((x) => [x.type, x.status, x.reason])).toEqual([
      ['Ready', 'False', 'PolicyNotFound'],
      ['Stalled', 'True', 'PolicyNotFound'],
    ]);
    // Ready went Unknown → False: a transition.
    expect(findCondition(c, 'Ready')?.lastTransitionTime).toBe(T1S);
    assertKstatus(obj(c));
  });

  it('markReady: Ready=True only with Reconciling and Stalled gone; Healthy untouched', () => {
    let c = setCondition([], { type: 'Healthy', status: 'False', reason: 'CriticalGPUs', message: 'gpu-node-3' }, 1, T0);
    c = markReconciling(c, { reason: 'Progressing', message: 'p' }, 1, T0);
    c = markReady(c, { reason: 'Completed', message: 'done' }, 1, T1);
    expect(c.map((x) => [x.type, x.status])).toEqual([
      ['Healthy', 'False'],
      ['Ready', 'True'],
    ]);
    expect(findCondition(c, 'Healthy')?.lastTransitionTime).toBe(T0S);
    assertKstatus(obj(c));
  });

  it('every sequence of helper calls keeps the kstatus invariants', () => {
    const steps = [
      (c: Condition[], g: number, t: Date) => markReconciling(c, { reason: 'Progressing', message: '' }, g, t),
      (c: Condition[], g: number, t: Date) => markStalled(c, { reason: 'InvalidSpec', message: '' }, g, t),
      (c: Condition[], g: number, t: Date) => markReady(c, { reason: 'Completed', message: '' }, g, t),
    ];
    for (const a of steps)
      for (const b of steps)
        for (const c of steps) {
          const out = c(b(a([], 1, T0), 2, T0), 3, T1);
          assertKstatus(obj(out, 3));
        }
  });
});

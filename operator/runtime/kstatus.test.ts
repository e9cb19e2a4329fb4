import { describe, expect, it } from '@jest/globals';
import { assertKstatus, kstatusViolations, type KstatusSubject } from '../../test/support/kstatus.js';

const at = '2025-01-01T00:00:00Z';
const cond = (type: string, status: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  type,
  status,
  reason: 'Because',
  message: '',
  lastTransitionTime: at,
  observedGeneration: 1,
  ...extra,
});
const obj = (
  conditions: Record<string, unknown>[],
  generation = 1,
  observedGeneration: number | undefined = generation,
): KstatusSubject => ({
  kind: 'GPUDiagnostic',
  metadata: { name: 'diag', namespace: 'ns', generation },
  status: observedGeneration === undefined ? { conditions } : { observedGeneration, conditions },
});

describe('assertKstatus', () => {
  it.each<[string, KstatusSubject]>([
    ['no status yet', { metadata: { name: 'new', generation: 1 } }],
    ['reconciling without Ready', obj([cond('Reconciling', 'True')])],
    ['ready and healthy=false', obj([cond('Ready', 'True'), cond('Healthy', 'False')])],
    ['stalled with Ready=False', obj([cond('Ready', 'False'), cond('Stalled', 'True')])],
    ['Reconciling=False with Ready', obj([cond('Ready', 'True'), cond('Reconciling', 'False')])],
    ['an older generation observed', obj([cond('Ready', 'True')], 3, 2)],
    [
      'cluster-scoped',
      {
        kind: 'GPUHealthPolicy',
        metadata: { name: 'p', generation: 2 },
        status: { observedGeneration: 2, conditions: [cond('Ready', 'True', { observedGeneration: 2 })] },
      },
    ],
  ])('accepts %s', (_name, o) => {
    expect(kstatusViolations(o)).toEqual([]);
    expect(() => assertKstatus(o)).not.toThrow();
  });

  it.each<[string, KstatusSubject, string]>([
    [
      'Reconciling and Stalled both True',
      obj([cond('Reconciling', 'True'), cond('Stalled', 'True')]),
      'Reconciling and Stalled are both True',
    ],
    ['Ready=True while Reconciling', obj([cond('Ready', 'True'), cond('Reconciling', 'True')]), 'Ready is True while Reconciling is True'],
    ['Ready=True while Stalled', obj([cond('Ready', 'True'), cond('Stalled', 'True')]), 'Ready is True while Stalled is True'],
    [
      'a condition from the future',
      obj([cond('Ready', 'True', { observedGeneration: 2 })]),
      'condition Ready observedGeneration 2 > metadata.generation 1',
    ],
    [
      'status.observedGeneration from the future',
      obj([cond('Ready', 'True')], 1, 2),
      'status.observedGeneration 2 > metadata.generation 1',
    ],
    ['a duplicated type', obj([cond('Ready', 'True'), cond('Ready', 'False')]), 'condition type Ready appears more than once'],
    ['a bad reason', obj([cond('Ready', 'True', { reason: 'not ok' })]), 'condition Ready has reason "not ok"'],
    ['an empty reason', obj([cond('Ready', 'True', { reason: '' })]), 'condition Ready has reason ""'],
    ['a bad status', obj([cond('Ready', 'Yes')]), 'condition Ready has status "Yes"'],
    ['done but no Ready', obj([cond('Healthy', 'True')]), 'Ready is absent'],
    ['done, Reconciling=False, no Ready', obj([cond('Reconciling', 'False')]), 'Ready is absent'],
  ])('rejects %s', (_name, o, rule) => {
    expect(() => assertKstatus(o)).toThrow(rule);
    expect(() => assertKstatus(o)).toThrow('GPUDiagnostic ns/diag');
  });
});

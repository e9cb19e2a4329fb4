import { describe, expect, it } from '@jest/globals';
import type { GPUDiagnosticStatus } from '../../api/index.js';
import { EXIT, verdictOf } from './verdict.js';

type Summary = NonNullable<GPUDiagnosticStatus['summary']>;

const completed = (summary: Summary): GPUDiagnosticStatus => ({ phase: 'Completed', summary });
const nodes = (
  targeted: number,
  succeeded: number,
  byStatus: NonNullable<Summary['nodesByStatus']>,
  gpus: NonNullable<Summary['gpus']> = {},
): Summary => ({
  nodesTargeted: targeted,
  nodesCompleted: targeted,
  nodesSucceeded: succeeded,
  nodesFailed: targeted - succeeded,
  nodesByStatus: byStatus,
  gpus,
});

describe('verdictOf', () => {
  const cases: [string, GPUDiagnosticStatus | undefined, boolean, number][] = [
    ['every node answered, all healthy', completed(nodes(3, 3, { healthy: 3 }, { total: 24, healthy: 24 })), true, EXIT.healthy],
    ['a critical node', completed(nodes(3, 3, { healthy: 2, critical: 1 }, { total: 24, critical: 1 })), true, EXIT.unhealthy],
    ['a degraded node', completed(nodes(2, 2, { healthy: 1, degraded: 1 })), true, EXIT.unhealthy],
    [
      'a degraded GPU counted only in the GPU totals',
      completed(nodes(1, 1, { healthy: 1 }, { total: 8, degraded: 1 })),
      true,
      EXIT.unhealthy,
    ],
    [
      'a critical node while another did not answer: what was found wins',
      completed(nodes(2, 1, { critical: 1, unknown: 1 })),
      true,
      EXIT.unhealthy,
    ],
    ['a node without an agent, the rest healthy', completed(nodes(2, 1, { healthy: 1, unknown: 1 })), true, EXIT.undiagnosed],
    ['a GPU that could not be read', completed(nodes(1, 1, { healthy: 1 }, { total: 8, unknown: 1 })), true, EXIT.undiagnosed],
    [
      'no node matched',
      {
        phase: 'Failed',
        conditions: [
          {
            type: 'Stalled',
            status: 'True',
            reason: 'NoMatchingNodes',
            message: 'no node matches',
            lastTransitionTime: '2025-01-01T00:00:00Z',
          },
        ],
      },
      true,
      EXIT.undiagnosed,
    ],
    ['completed with nothing targeted', completed(nodes(0, 0, {})), true, EXIT.undiagnosed],
    ['not finished (the wait expired)', { phase: 'Running', summary: nodes(2, 2, { critical: 2 }) }, false, EXIT.undiagnosed],
    ['no status at all', undefined, false, EXIT.undiagnosed],
  ];
  it.each(cases)('%s', (_name, status, finished, code) => {
    expect(verdictOf(status, finished).code).toBe(code);
  });

  it('says why in one line', () => {
    expect(verdictOf(completed(nodes(2, 1, { healthy: 1, unknown: 1 })), true).reason).toBe(
      '1 of 2 node(s) could not be diagnosed; the others are healthy',
    );
    const failed = verdictOf(
      {
        phase: 'Failed',
        conditions: [
          {
            type: 'Stalled',
            status: 'True',
            reason: 'PolicyNotFound',
            message: 'no GPUHealthPolicy "x"',
            lastTransitionTime: '2025-01-01T00:00:00Z',
          },
        ],
      },
      true,
    );
    expect(failed.reason).toBe('the diagnostic failed: PolicyNotFound: no GPUHealthPolicy "x"');
  });

  it('keeps the documented codes', () => {
    expect(EXIT).toEqual({ healthy: 0, unhealthy: 1, undiagnosed: 2, usage: 64, interrupted: 130 });
  });
});

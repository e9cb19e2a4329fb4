import { describe, expect, it } from '@jest/globals';
import { assertKstatus } from '../../test/support/kstatus.js';
import { BUILT_IN_POLICY, scoreNode } from '../scoring/index.js';
import { h100, lostGpu, NOW, nodeSnapshot } from '../scoring/test-fixtures.js';
import { computeDiagnosticStatus, type DiagnosticObservation } from './compute.js';
import type { NodeResultInput } from './results.js';
import type { GPUDiagnosticStatus } from '../../api/index.js';

const healthy: NodeResultInput = {
  node: 'gpu-node-1',
  result: 'Succeeded',
  score: scoreNode({ ...nodeSnapshot({ gpus: [h100(0)] }), node: 'gpu-node-1' }, BUILT_IN_POLICY, NOW),
};
const broken: NodeResultInput = {
  node: 'gpu-node-2',
  result: 'Succeeded',
  score: scoreNode({ ...nodeSnapshot({ gpus: [lostGpu(0)] }), node: 'gpu-node-2' }, BUILT_IN_POLICY, NOW),
};
const later = (s: number): Date => new Date(NOW.getTime() + s * 1000);

function condition(status: GPUDiagnosticStatus, type: string): { status: string; reason: string } | undefined {
  return status.conditions?.find((c) => c.type === type);
}

/** Walks a sequence of observations like the controller would, checking kstatus at every step. */
function walk(observations: DiagnosticObservation[]): GPUDiagnosticStatus[] {
  const out: GPUDiagnosticStatus[] = [];
  let current: GPUDiagnosticStatus | undefined;
  observations.forEach((o, i) => {
    current = computeDiagnosticStatus(current, 1, o, later(i));
    assertKstatus({ metadata: { name: 'd', generation: 1 }, status: current });
    out.push(current);
  });
  return out;
}

describe('computeDiagnosticStatus', () => {
  it('goes Pending → Running → Completed with kstatus conditions and a Healthy verdict', () => {
    const start = '2025-06-01T12:00:00Z';
    const [pending, running, completed] = walk([
      { kind: 'pending', message: 'waiting for caches' },
      { kind: 'running', startTime: start, targeted: 2, completed: [healthy], restarted: false },
      { kind: 'finished', startTime: start, targeted: 2, results: [healthy, broken] },
    ]);
    expect(pending).toMatchObject({ phase: 'Pending' });
    expect(condition(pending!, 'Reconciling')).toMatchObject({ status: 'True', reason: 'Pending' });
    expect(running).toMatchObject({ phase: 'Running', startTime: start, summary: { nodesTargeted: 2, nodesCompleted: 1 } });
    expect(condition(running!, 'Ready')).toMatchObject({ status: 'Unknown', reason: 'Running' });
    expect(completed).toMatchObject({
      phase: 'Completed',
      startTime: start,
      completionTime: expect.any(String),
      summary: { nodesTargeted: 2, nodesSucceeded: 2 },
    });
    expect(condition(completed!, 'Ready')).toMatchObject({ status: 'True', reason: 'Completed' });
    expect(condition(completed!, 'Reconciling')).toBeUndefined();
    expect(condition(completed!, 'Healthy')).toMatchObject({ status: 'False', reason: 'CriticalNodes' });
    expect(completed?.nodes?.[0]?.name).toBe('gpu-node-2');
  });

  const stalledReasons: ('InvalidSpec' | 'PolicyNotFound' | 'NoMatchingNodes')[] = ['InvalidSpec', 'PolicyNotFound', 'NoMatchingNodes'];
  it.each(stalledReasons)('fails with Stalled=True and reason %s when nothing can run', (reason) => {
    const [failed] = walk([{ kind: 'stalled', reason, message: 'explained' }]);
    expect(failed).toMatchObject({ phase: 'Failed', completionTime: expect.any(String) });
    expect(condition(failed!, 'Stalled')).toMatchObject({ status: 'True', reason });
    expect(condition(failed!, 'Ready')).toMatchObject({ status: 'False', reason });
    expect(condition(failed!, 'Healthy')).toMatchObject({ status: 'Unknown' });
  });

  it('is idempotent: recomputing a finished status keeps its completion time and transition times', () => {
    const obs: DiagnosticObservation = { kind: 'finished', startTime: '2025-06-01T12:00:00Z', targeted: 1, results: [healthy] };
    const first = computeDiagnosticStatus(undefined, 1, obs, later(1));
    const again = computeDiagnosticStatus(first, 1, obs, later(100));
    expect(again).toEqual(first);
  });

  it('says so when a run restarted after an operator restart', () => {
    const status = computeDiagnosticStatus(
      undefined,
      1,
      { kind: 'running', startTime: '2025-06-01T12:00:00Z', targeted: 3, completed: [], restarted: true },
      NOW,
    );
    expect(condition(status, 'Reconciling')?.reason).toBe('Running');
    expect(status.conditions?.find((c) => c.type === 'Reconciling')?.message).toContain('restarted');
  });
});

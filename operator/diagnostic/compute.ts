/**
 * Pure: (current status, generation, what the controller observed, now) → the desired status of
 * a GPUDiagnostic. Every status the controller writes comes from here, so the lifecycle and the
 * kstatus conditions are decided (and tested) in one place.
 *
 *   Pending ──► Running ──► Completed      (Ready=True; Healthy says what was found)
 *      └──────────┴───────► Failed         (nothing could run: Stalled=True, needs a human)
 */
import type { GPUDiagnosticStatus } from '../../api/index.js';
import { formatTime, markReady, markReconciling, markStalled, setCondition, type Condition } from '../runtime/conditions.js';
import { buildResults, healthyCondition, summarize, type NodeResultInput } from './results.js';

/** The condition type that reports what the diagnostic found (separate from Ready). */
export const HEALTHY = 'Healthy';

/** What the controller observed about one GPUDiagnostic. */
export type DiagnosticObservation =
  /** Accepted, waiting for a turn (e.g. the operator is not leading yet or caches are syncing). */
  | { kind: 'pending'; message: string }
  /** The spec cannot be acted on: invalid, missing policy, no matching nodes. */
  | { kind: 'stalled'; reason: 'InvalidSpec' | 'PolicyNotFound' | 'InvalidPolicy' | 'NoMatchingNodes'; message: string }
  /** Agents are being asked; `completed` holds the nodes that finished so far. */
  | { kind: 'running'; startTime: string; targeted: number; completed: readonly NodeResultInput[]; restarted: boolean }
  /** Every node has a final result. */
  | { kind: 'finished'; startTime: string; targeted: number; results: readonly NodeResultInput[] };

type Status = GPUDiagnosticStatus;

function conditionsOf(status: Status | undefined): Condition[] {
  return (status?.conditions ?? []) as Condition[];
}

/** The status to write for an observation (idempotent: same inputs, same status). */
export function computeDiagnosticStatus(
  current: Status | undefined,
  generation: number,
  observation: DiagnosticObservation,
  now: Date,
): Status {
  const conditions = conditionsOf(current);
  switch (observation.kind) {
    case 'pending':
      return {
        phase: 'Pending',
        observedGeneration: generation,
        conditions: markReconciling(conditions, { reason: 'Pending', message: observation.message }, generation, now),
      };
    case 'stalled': {
      let next = markStalled(conditions, { reason: observation.reason, message: observation.message }, generation, now);
      next = setCondition(
        next,
        { type: HEALTHY, status: 'Unknown', reason: 'NotDiagnosed', message: 'no node was diagnosed' },
        generation,
        now,
      );
      return {
        phase: 'Failed',
        observedGeneration: generation,
        ...(current?.startTime !== undefined ? { startTime: current.startTime } : {}),
        completionTime: current?.completionTime ?? formatTime(now),
        conditions: next,
      };
    }
    case 'running': {
      const done = observation.completed.length;
      const message =
        (observation.restarted ? 'restarted after an operator restart; ' : '') + `${done}/${observation.targeted} node(s) answered`;
      return {
        phase: 'Running',
        observedGeneration: generation,
        startTime: observation.startTime,
        conditions: markReconciling(conditions, { reason: 'Running', message }, generation, now),
        summary: summarize(observation.completed, observation.targeted),
      };
    }
    case 'finished': {
      const results = buildResults(observation.results, observation.targeted);
      const summary = results.summary ?? {};
      const ready =
        `diagnosed ${summary.nodesTargeted ?? 0} node(s): ${summary.nodesSucceeded ?? 0} answered, ${summary.nodesFailed ?? 0} ` +
        `could not be diagnosed`;
      let next = markReady(conditions, { reason: 'Completed', message: ready }, generation, now);
      next = setCondition(next, { type: HEALTHY, ...healthyCondition(summary) }, generation, now);
      return {
        phase: 'Completed',
        observedGeneration: generation,
        startTime: observation.startTime,
        completionTime: current?.phase === 'Completed' && current.completionTime !== undefined ? current.completionTime : formatTime(now),
        conditions: next,
        ...results,
      };
    }
  }
}

/** True when the diagnostic reached a final phase. */
export function isFinished(status: Status | undefined): boolean {
  return status?.phase === 'Completed' || status?.phase === 'Failed';
}

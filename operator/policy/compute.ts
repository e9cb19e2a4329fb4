/**
 * Pure: (previous status, generation, what the controller observed, now) → the desired status of
 * a GPUHealthPolicy. Every status the policy controller writes comes from here, so the kstatus
 * conditions, the Healthy verdict and the bounds of every list are decided (and tested) in one
 * place.
 *
 *   first check / new spec ──► Reconciling=True (Ready=Unknown) ──► Ready=True after the check
 *   routine periodic checks of an unchanged spec keep Ready=True (no flapping every interval)
 *   suspend: Ready=True (Suspended), data of the last check kept
 *   invalid spec: Stalled=True (Ready=False), data of the last check kept
 */
import type { GPUHealthPolicyStatus } from '../../api/index.js';
import type { EvaluatedXidEvent, HealthStatus, Severity } from '../scoring/index.js';
import { formatTime, markReady, markReconciling, markStalled, setCondition, type Condition } from '../runtime/conditions.js';
import { compareNodesWorstFirst, isAffected, toStatusPod, type NodeResultInput } from '../diagnostic/results.js';
import type { ActionsPlan } from './actions.js';

/** The condition type that reports what the policy found (separate from Ready). */
export const HEALTHY = 'Healthy';

/** Bounds of the status; the CRD's maxItems/maxLength are the hard limits these stay within. */
export const POLICY_STATUS_LIMITS = {
  worstNodes: 50,
  affectedPodsPerNode: 16,
  recentXids: 50,
  actionNodes: 100,
  criticalNamesInMessage: 20,
  message: 1024,
  xidName: 128,
  xidAction: 128,
  gpu: 96,
} as const;

/** What the controller observed about one GPUHealthPolicy. */
export type PolicyObservation =
  /** The spec cannot be acted on (a human must change it). */
  | { kind: 'stalled'; reason: 'InvalidSpec' | 'InvalidPolicy'; message: string }
  /** spec.suspend is true: no checks. */
  | { kind: 'suspended' }
  /** A check of a new generation (or the first check) is under way. */
  | { kind: 'checking'; governed: number }
  /** A check finished: every governed node has an outcome. */
  | { kind: 'checked'; results: readonly NodeResultInput[]; nextCheckTime: Date; actions?: ActionsPlan };

type Status = GPUHealthPolicyStatus;
type StatusNode = NonNullable<Status['worstNodes']>[number];
type StatusXid = NonNullable<Status['recentXids']>[number];
type StatusAffectedPod = NonNullable<StatusNode['affectedPods']>[number];

const SEVERITY_RANK: Record<Severity, number> = { critical: 0, warning: 1, info: 2 };

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

function nodeStatus(input: NodeResultInput): HealthStatus {
  return input.result === 'Succeeded' && input.score !== undefined ? input.score.status : 'unknown';
}

function conditionsOf(status: Status | undefined): Condition[] {
  return (status?.conditions ?? []) as Condition[];
}

/** The last check's data (kept while suspended, stalled or re-checking). */
function dataOf(current: Status | undefined): Omit<Status, 'observedGeneration' | 'conditions' | 'nextCheckTime'> {
  if (current === undefined) return {};
  const data: Status = { ...current };
  delete data.observedGeneration;
  delete data.conditions;
  delete data.nextCheckTime;
  return data;
}

/** Governed node counts and the lowest score. */
export function countNodes(results: readonly NodeResultInput[]): NonNullable<Status['nodes']> {
  const counts = { healthy: 0, degraded: 0, critical: 0, unknown: 0 };
  let minScore: number | undefined;
  for (const r of results) {
    counts[nodeStatus(r)] += 1;
    if (r.result === 'Succeeded' && r.score !== undefined) minScore = Math.min(minScore ?? 100, r.score.score);
  }
  return { governed: results.length, ...counts, ...(minScore !== undefined ? { minScore } : {}) };
}

/** The containers on a node's degraded and critical GPUs, worst GPU first, bounded. */
export function affectedPods(input: NodeResultInput): { list: StatusAffectedPod[]; truncated: number } {
  const gpus = (input.score?.gpus ?? [])
    .filter((g) => isAffected(g.status))
    .sort((a, b) => (a.status === b.status ? a.score - b.score || a.index - b.index : a.status === 'critical' ? -1 : 1));
  const all: StatusAffectedPod[] = [];
  let truncated = 0;
  for (const g of gpus) {
    truncated += g.podsOmitted ?? 0;
    for (const p of g.pods ?? []) {
      all.push({
        gpu: clip(g.uuid ?? String(g.index), POLICY_STATUS_LIMITS.gpu),
        gpuStatus: g.status === 'critical' ? 'critical' : 'degraded',
        ...toStatusPod(p),
      });
    }
  }
  const list = all.slice(0, POLICY_STATUS_LIMITS.affectedPodsPerNode);
  return { list, truncated: truncated + all.length - list.length };
}

/** Non-healthy nodes, worst first, bounded; `truncated` counts those left out. */
export function worstNodes(results: readonly NodeResultInput[]): { list: StatusNode[]; truncated: number } {
  const bad = results.filter((r) => nodeStatus(r) !== 'healthy').sort(compareNodesWorstFirst);
  const list = bad.slice(0, POLICY_STATUS_LIMITS.worstNodes).map((r): StatusNode => {
    const pods = affectedPods(r);
    return {
      name: r.node,
      result: r.result,
      status: nodeStatus(r),
      ...(r.score !== undefined ? { score: r.score.score } : {}),
      message: clip(r.message ?? r.score?.worstMessage ?? '', POLICY_STATUS_LIMITS.message),
      ...(pods.list.length > 0 ? { affectedPods: pods.list } : {}),
      ...(pods.truncated > 0 ? { affectedPodsTruncated: pods.truncated } : {}),
    };
  });
  return { list, truncated: bad.length - list.length };
}

function gpuOf(e: EvaluatedXidEvent): string | undefined {
  const gpu = e.gpuUuid ?? e.pciBusId;
  return gpu === undefined || gpu === '' ? undefined : clip(gpu, POLICY_STATUS_LIMITS.gpu);
}

/**
 * XID events of every governed node, deduplicated by (node, GPU, code) — counts summed, the
 * newest lastSeen and the worst severity kept — then worst first, newest first, bounded.
 */
export function recentXids(results: readonly NodeResultInput[]): StatusXid[] {
  const merged = new Map<string, StatusXid & { severity: Severity; lastMs: number }>();
  for (const r of results) {
    for (const e of r.score?.xidEvents ?? []) {
      const gpu = gpuOf(e);
      const key = `${r.node}\u0000${gpu ?? ''}\u0000${e.xid}`;
      const lastMs = Date.parse(e.lastSeen);
      const prev = merged.get(key);
      if (prev === undefined) {
        merged.set(key, {
          node: r.node,
          xid: e.xid,
          name: clip(e.name, POLICY_STATUS_LIMITS.xidName),
          count: Math.max(1, e.count),
          ...(gpu !== undefined ? { gpu } : {}),
          lastSeen: e.lastSeen,
          severity: e.severity,
          action: clip(e.action, POLICY_STATUS_LIMITS.xidAction),
          immediateAction: clip(e.immediateAction, 64),
          persistsUntil: e.persistsUntil,
          lastMs: Number.isNaN(lastMs) ? 0 : lastMs,
        });
        continue;
      }
      prev.count += Math.max(1, e.count);
      if (SEVERITY_RANK[e.severity] < SEVERITY_RANK[prev.severity]) {
        prev.severity = e.severity;
        prev.action = clip(e.action, POLICY_STATUS_LIMITS.xidAction);
        prev.immediateAction = clip(e.immediateAction, 64);
        prev.persistsUntil = e.persistsUntil;
      }
      if (!Number.isNaN(lastMs) && lastMs > prev.lastMs) {
        prev.lastMs = lastMs;
        prev.lastSeen = e.lastSeen;
      }
    }
  }
  return [...merged.values()]
    .sort(
      (a, b) =>
        SEVERITY_RANK[a.severity] - SEVERITY_RANK[b.severity] || b.lastMs - a.lastMs || a.node.localeCompare(b.node) || a.xid - b.xid,
    )
    .slice(0, POLICY_STATUS_LIMITS.recentXids)
    .map(({ lastMs: _ms, ...x }) => x);
}

/** The Healthy condition: False naming the critical nodes; Unknown when nodes could not be checked; else True. */
export function healthyCondition(results: readonly NodeResultInput[]): {
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
} {
  const counts = countNodes(results);
  const critical = results
    .filter((r) => nodeStatus(r) === 'critical')
    .map((r) => r.node)
    .sort();
  if (critical.length > 0) {
    const shown = critical.slice(0, POLICY_STATUS_LIMITS.criticalNamesInMessage);
    const more = critical.length - shown.length;
    return {
      status: 'False',
      reason: 'CriticalNodes',
      message: clip(
        `${critical.length} of ${counts.governed ?? 0} governed node(s) critical: ` +
          `${shown.join(', ')}${more > 0 ? ` and ${more} more` : ''}`,
        POLICY_STATUS_LIMITS.message,
      ),
    };
  }
  if (counts.governed === 0) return { status: 'Unknown', reason: 'NoGovernedNodes', message: 'no node matches spec.nodeSelector' };
  const degraded = counts.degraded ?? 0;
  const tail = degraded > 0 ? `; ${degraded} degraded` : '';
  if ((counts.unknown ?? 0) > 0) {
    return {
      status: 'Unknown',
      reason: 'NodesNotChecked',
      message: `${counts.unknown ?? 0} of ${counts.governed ?? 0} governed node(s) could not be checked; none critical${tail}`,
    };
  }
  return { status: 'True', reason: 'NoCriticalNodes', message: `${counts.governed ?? 0} governed node(s) checked, none critical${tail}` };
}

function actionsStatus(plan: ActionsPlan): NonNullable<Status['actions']> {
  return {
    dryRun: plan.dryRun,
    tainted: plan.tainted.slice(0, POLICY_STATUS_LIMITS.actionNodes),
    heldByGuardrail: plan.held.slice(0, POLICY_STATUS_LIMITS.actionNodes),
    message: clip(plan.message, POLICY_STATUS_LIMITS.message),
  };
}

/** The status to write for an observation (idempotent: same inputs, same status). */
export function computePolicyStatus(current: Status | undefined, generation: number, observation: PolicyObservation, now: Date): Status {
  const conditions = conditionsOf(current);
  switch (observation.kind) {
    case 'stalled': {
      let next = markStalled(conditions, { reason: observation.reason, message: observation.message }, generation, now);
      next = setCondition(
        next,
        { type: HEALTHY, status: 'Unknown', reason: observation.reason, message: 'no check runs until the spec is fixed' },
        generation,
        now,
      );
      return { ...dataOf(current), observedGeneration: generation, conditions: next };
    }
    case 'suspended': {
      const last = current?.lastCheckTime;
      let next = markReady(
        conditions,
        {
          reason: 'Suspended',
          message: `periodic checks are suspended (spec.suspend)${last !== undefined ? `; status shows the check of ${last}` : ''}`,
        },
        generation,
        now,
      );
      if (next.every((c) => c.type !== HEALTHY))
        next = setCondition(next, { type: HEALTHY, status: 'Unknown', reason: 'NotChecked', message: 'no check has run' }, generation, now);
      return { ...dataOf(current), observedGeneration: generation, conditions: next };
    }
    case 'checking': {
      const message = `checking ${observation.governed} governed node(s)`;
      let next = markReconciling(conditions, { reason: 'Checking', message }, generation, now);
      if (next.every((c) => c.type !== HEALTHY))
        next = setCondition(
          next,
          { type: HEALTHY, status: 'Unknown', reason: 'NotChecked', message: 'the first check is under way' },
          generation,
          now,
        );
      return { ...dataOf(current), observedGeneration: generation, conditions: next };
    }
    case 'checked': {
      const { results } = observation;
      const nodes = countNodes(results);
      const answered = results.filter((r) => r.result === 'Succeeded').length;
      let next = markReady(
        conditions,
        {
          reason: 'Checked',
          message: `checked ${results.length} governed node(s): ${answered} answered, ${results.length - answered} could not be checked`,
        },
        generation,
        now,
      );
      next = setCondition(next, { type: HEALTHY, ...healthyCondition(results) }, generation, now);
      const worst = worstNodes(results);
      const xids = recentXids(results);
      return {
        observedGeneration: generation,
        conditions: next,
        lastCheckTime: formatTime(now),
        // Whole seconds, rounded up: the next check is never shown at or before the last one.
        nextCheckTime: formatTime(
          new Date(Math.max(Math.ceil(observation.nextCheckTime.getTime() / 1000), Math.floor(now.getTime() / 1000) + 1) * 1000),
        ),
        nodes,
        worstNodes: worst.list,
        ...(worst.truncated > 0 ? { worstNodesTruncated: worst.truncated } : {}),
        recentXids: xids,
        ...(observation.actions !== undefined ? { actions: actionsStatus(observation.actions) } : {}),
      };
    }
  }
}

/** True once a check of `generation` has completed (Ready=True for it, not merely suspended). */
export function checkedGeneration(status: Status | undefined, generation: number): boolean {
  const ready = status?.conditions?.find((c) => c.type === 'Ready');
  return (
    status?.observedGeneration === generation &&
    ready?.status === 'True' &&
    ready.reason === 'Checked' &&
    status.lastCheckTime !== undefined
  );
}

/**
 * When the next check is due: `lastCheck + interval × (1 + jitter)`, jitter uniform in ±10%
 * from `random` ∈ [0, 1), so a fleet of policies does not hit the agents at once.
 */
export function nextCheckAt(lastCheck: Date, intervalMs: number, random: number): Date {
  const jitter = (random * 2 - 1) * 0.1;
  return new Date(lastCheck.getTime() + Math.round(intervalMs * (1 + jitter)));
}

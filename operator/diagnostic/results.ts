/**
 * Pure: per-node outcomes and scores → the `summary` and the bounded, worst-first `nodes[]` of a
 * GPUDiagnostic's status. The summary always counts every node; the list is cut by entry count
 * and by an approximate byte budget, so the object stays far below etcd's request limit even at
 * 5,000 nodes × 8 GPUs.
 */
import type { GPUDiagnosticStatus } from '../../api/index.js';
import type { AffectedPod, EvaluatedXidEvent, Finding, GpuScore, HealthStatus, NodeScore } from '../scoring/index.js';

/** What a node's agent request came to. */
export type NodeResult = 'Succeeded' | 'NoAgent' | 'Unreachable' | 'Timeout' | 'Error';

/** One node's outcome, scored when its agent answered. */
export interface NodeResultInput {
  node: string;
  result: NodeResult;
  message?: string;
  durationMs?: number;
  /** Present when result is Succeeded. */
  score?: NodeScore;
}

type StatusNode = NonNullable<GPUDiagnosticStatus['nodes']>[number];
type StatusGpu = NonNullable<StatusNode['gpus']>[number];
type StatusFinding = NonNullable<StatusGpu['findings']>[number];
type StatusPod = NonNullable<StatusGpu['pods']>[number];
type StatusXid = NonNullable<StatusNode['xidEvents']>[number];
type Summary = NonNullable<GPUDiagnosticStatus['summary']>;

/** Bounds of the status; the CRD's maxItems/maxLength are the hard limits these stay within. */
export const STATUS_LIMITS = {
  nodes: 200,
  gpusPerNode: 16,
  findingsPerGpu: 16,
  findingsPerNode: 16,
  /** Containers listed per GPU (the CRD's maxItems). */
  podsPerGpu: 8,
  xidEventsPerNode: 20,
  criticalNodeNames: 50,
  /** Above this many targeted nodes, healthy GPUs without findings are counted, not listed. */
  detailedNodeLimit: 20,
  /** Approximate JSON budget for nodes[] (the object limit is 1.5 MiB; we aim far below). */
  nodesBudgetBytes: 384 * 1024,
  message: 1024,
  findingMessage: 512,
  xidMessage: 512,
  xidName: 128,
  xidAction: 128,
  process: 64,
} as const;

const STATUS_RANK: Record<HealthStatus, number> = { critical: 0, degraded: 1, unknown: 2, healthy: 3 };

/**
 * A node's score cut to what a status can show: the findings and XID events past the status
 * limits are counted, not kept, and kernel text is clipped.
 */
export function retainedScore(score: NodeScore, maxXidEvents: number = STATUS_LIMITS.xidEventsPerNode): NodeScore {
  const gpus = score.gpus.map((g) => {
    const cut =
      g.findings.length <= STATUS_LIMITS.findingsPerGpu
        ? g
        : {
            ...g,
            findings: g.findings.slice(0, STATUS_LIMITS.findingsPerGpu),
            findingsOmitted: (g.findingsOmitted ?? 0) + g.findings.length - STATUS_LIMITS.findingsPerGpu,
          };
    return withPodsCut(cut, STATUS_LIMITS.podsPerGpu);
  });
  const findings = score.findings.slice(0, STATUS_LIMITS.findingsPerNode);
  const xidEvents = score.xidEvents
    .slice(0, maxXidEvents)
    .map((e) => (e.message.length <= STATUS_LIMITS.xidMessage ? e : { ...e, message: clip(e.message, STATUS_LIMITS.xidMessage) }));
  return {
    ...score,
    gpus,
    findings,
    xidEvents,
    findingsOmitted: (score.findingsOmitted ?? 0) + score.findings.length - findings.length,
    xidEventsOmitted: (score.xidEventsOmitted ?? 0) + score.xidEvents.length - xidEvents.length,
  };
}

/** `gpu` with at most `max` pods, the rest counted (the same object when nothing is cut). */
function withPodsCut<G extends GpuScore>(gpu: G, max: number): G {
  const pods = gpu.pods;
  if (pods === undefined || pods.length <= max) return gpu;
  return { ...gpu, pods: pods.slice(0, max), podsOmitted: (gpu.podsOmitted ?? 0) + pods.length - max };
}

/** Degraded and critical GPUs are the ones whose pods a status names. */
export function isAffected(status: HealthStatus): boolean {
  return status === 'critical' || status === 'degraded';
}

/** A container as a status lists it (GPUDiagnostic per-GPU pods, GPUHealthPolicy affected pods). */
export function toStatusPod(p: AffectedPod): StatusPod {
  return {
    ...(p.namespace !== undefined ? { namespace: p.namespace } : {}),
    ...(p.name !== undefined ? { name: p.name } : {}),
    ...(p.uid !== undefined ? { uid: p.uid } : {}),
    ...(p.container !== undefined ? { container: p.container } : {}),
    source: p.source,
    ...(p.controller !== undefined
      ? {
          controller: clip(
            `${p.controller.kind}/${p.controller.name}${p.owner === undefined ? '' : ` of ${p.owner.kind}/${p.owner.name}`}`,
            320,
          ),
        }
      : {}),
  };
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

function nodeStatus(input: NodeResultInput): HealthStatus {
  return input.result === 'Succeeded' && input.score !== undefined ? input.score.status : 'unknown';
}

function toFinding(f: Finding): StatusFinding {
  return { check: f.check, severity: f.severity, code: clip(f.code, 64), message: clip(f.message, STATUS_LIMITS.findingMessage) };
}

function toXid(e: EvaluatedXidEvent): StatusXid {
  return {
    xid: e.xid,
    name: clip(e.name, STATUS_LIMITS.xidName),
    count: Math.max(1, e.count),
    firstSeen: e.firstSeen,
    lastSeen: e.lastSeen,
    ...(e.gpuUuid !== undefined ? { gpu: e.gpuUuid } : {}),
    ...(e.pciBusId !== undefined ? { pciBusId: e.pciBusId } : {}),
    ...(e.pid !== null ? { pid: e.pid } : {}),
    ...(e.process !== null ? { process: clip(e.process, STATUS_LIMITS.process) } : {}),
    severity: e.severity,
    action: clip(e.action, STATUS_LIMITS.xidAction),
    immediateAction: clip(e.immediateAction, 64),
    ...(e.investigatoryAction !== null ? { investigatoryAction: clip(e.investigatoryAction, 128) } : {}),
    persistsUntil: e.persistsUntil,
    ...(e.decoded !== undefined ? { decoded: clip(e.decoded, 256) } : {}),
    message: clip(e.message, STATUS_LIMITS.xidMessage),
  };
}

function bounded<T, U>(items: readonly T[], max: number, map: (t: T) => U): { list: U[]; truncated: number } {
  return { list: items.slice(0, max).map(map), truncated: Math.max(0, items.length - max) };
}

function toStatusNode(input: NodeResultInput, detailed: boolean): StatusNode {
  const status = nodeStatus(input);
  const score = input.score;
  const base: StatusNode = {
    name: input.node,
    result: input.result,
    status,
    ...(score !== undefined ? { score: score.score } : {}),
    message: clip(input.message ?? score?.worstMessage ?? '', STATUS_LIMITS.message),
    ...(input.durationMs !== undefined ? { durationMs: Math.round(input.durationMs) } : {}),
  };
  if (score === undefined) return base;
  const gpus = [...score.gpus]
    .filter((g) => detailed || g.status !== 'healthy' || g.findings.length > 0)
    .sort((a, b) => STATUS_RANK[a.status] - STATUS_RANK[b.status] || a.score - b.score || a.index - b.index);
  const gpuList = bounded(gpus, STATUS_LIMITS.gpusPerNode, (g): StatusGpu => {
    const findings = bounded(g.findings, STATUS_LIMITS.findingsPerGpu, toFinding);
    findings.truncated += g.findingsOmitted ?? 0;
    // Every GPU's pods in a detailed (small) diagnostic; only the affected GPUs' in a large one.
    const pods =
      detailed || isAffected(g.status) ? bounded(g.pods ?? [], STATUS_LIMITS.podsPerGpu, toStatusPod) : { list: [], truncated: 0 };
    if (pods.list.length > 0) pods.truncated += g.podsOmitted ?? 0;
    return {
      index: g.index,
      ...(g.uuid !== undefined ? { uuid: g.uuid } : {}),
      ...(g.name !== undefined ? { name: clip(g.name, 96) } : {}),
      ...(g.pciBusId !== undefined ? { pciBusId: g.pciBusId } : {}),
      score: g.score,
      status: g.status,
      ...(findings.list.length > 0 ? { findings: findings.list } : {}),
      ...(findings.truncated > 0 ? { findingsTruncated: findings.truncated } : {}),
      ...(pods.list.length > 0 ? { pods: pods.list } : {}),
      ...(pods.truncated > 0 ? { podsTruncated: pods.truncated } : {}),
    };
  });
  const nodeFindings = bounded(score.findings, STATUS_LIMITS.findingsPerNode, toFinding);
  const xids = bounded(score.xidEvents, STATUS_LIMITS.xidEventsPerNode, toXid);
  xids.truncated += score.xidEventsOmitted ?? 0;
  const gpusTruncated = score.gpus.length - gpuList.list.length;
  return {
    ...base,
    gpuCount: score.gpus.length,
    ...(gpuList.list.length > 0 ? { gpus: gpuList.list } : {}),
    ...(gpusTruncated > 0 ? { gpusTruncated } : {}),
    ...(nodeFindings.list.length > 0 ? { findings: nodeFindings.list } : {}),
    ...(xids.list.length > 0 ? { xidEvents: xids.list } : {}),
    ...(xids.truncated > 0 ? { xidEventsTruncated: xids.truncated } : {}),
  };
}

/**
 * A node's score reduced to what the summary counts (status and score of the node and of each
 * GPU, the XID event count) plus the worst finding and the pods of its degraded and critical
 * GPUs and, for policies,
 * its first `keepXidEvents` XID events without their kernel text. A few hundred bytes per
 * healthy node whatever the agent answered.
 */
export function summaryScore(score: NodeScore, keepXidEvents = 0): NodeScore {
  const xidEvents = score.xidEvents.slice(0, keepXidEvents).map((e) => ({ ...e, message: '', process: null }));
  return {
    node: score.node,
    score: score.score,
    status: score.status,
    worstMessage: clip(score.worstMessage, STATUS_LIMITS.message),
    gpus: score.gpus.map((g) =>
      withPodsCut(
        {
          index: g.index,
          ...(g.uuid !== undefined ? { uuid: g.uuid } : {}),
          score: g.score,
          status: g.status,
          // An affected GPU keeps its worst finding: the fault Events and Pod conditions name.
          findings: isAffected(g.status) ? g.findings.slice(0, 1) : [],
          findingsOmitted: g.findings.length - (isAffected(g.status) ? Math.min(1, g.findings.length) : 0) + (g.findingsOmitted ?? 0),
          ...(isAffected(g.status) && g.pods !== undefined ? { pods: g.pods } : {}),
          ...(isAffected(g.status) && g.podsOmitted !== undefined ? { podsOmitted: g.podsOmitted } : {}),
        },
        STATUS_LIMITS.podsPerGpu,
      ),
    ),
    findings: [],
    findingsOmitted: score.findings.length + (score.findingsOmitted ?? 0),
    xidEvents,
    xidEventsOmitted: score.xidEvents.length - xidEvents.length + (score.xidEventsOmitted ?? 0),
  };
}

/**
 * The outcomes of a diagnostic run, bounded for any fleet size: every node keeps its summary,
 * and only the worst STATUS_LIMITS.nodes keep the detail a status can show (status-sized, see
 * retainedScore). When twice that many hold detail, the better half is reduced to summaries; a
 * node reduced once is never among the worst again, so the final status is the same.
 */
export class RetainedResults {
  private readonly items: NodeResultInput[] = [];
  private readonly summarized = new WeakSet<NodeScore>();
  private detailed = 0;

  constructor(private readonly keepDetail: number = STATUS_LIMITS.nodes) {}

  /** Every outcome so far (summaries and the worst with detail). */
  get all(): readonly NodeResultInput[] {
    return this.items;
  }

  push(input: NodeResultInput): void {
    if (input.score === undefined) {
      this.items.push(input);
      return;
    }
    this.items.push({ ...input, score: retainedScore(input.score) });
    this.detailed += 1;
    if (this.detailed > 2 * this.keepDetail) this.summarizeBetterHalf();
  }

  private summarizeBetterHalf(): void {
    const withDetail = this.items.filter((i) => i.score !== undefined && !this.summarized.has(i.score)).sort(compareNodesWorstFirst);
    for (const item of withDetail.slice(this.keepDetail)) {
      if (item.score === undefined) continue;
      item.score = summaryScore(item.score);
      this.summarized.add(item.score);
    }
    this.detailed = this.keepDetail;
  }
}

/** Orders nodes worst first: critical, degraded, unknown (not diagnosed), healthy; then by score and name. */
export function compareNodesWorstFirst(a: NodeResultInput, b: NodeResultInput): number {
  return (
    STATUS_RANK[nodeStatus(a)] - STATUS_RANK[nodeStatus(b)] ||
    (a.score?.score ?? 101) - (b.score?.score ?? 101) ||
    a.node.localeCompare(b.node)
  );
}

/** The summary over every node, including nodes left out of nodes[]. */
export function summarize(inputs: readonly NodeResultInput[], targeted: number): Summary {
  const nodesByResult = { Succeeded: 0, NoAgent: 0, Unreachable: 0, Timeout: 0, Error: 0 };
  const nodesByStatus = { healthy: 0, degraded: 0, critical: 0, unknown: 0 };
  const gpus = { total: 0, healthy: 0, degraded: 0, critical: 0, unknown: 0 };
  let minScore: number | undefined;
  let xidEvents = 0;
  const critical: string[] = [];
  for (const input of inputs) {
    nodesByResult[input.result] += 1;
    const status = nodeStatus(input);
    nodesByStatus[status] += 1;
    if (status === 'critical') critical.push(input.node);
    if (input.score !== undefined) {
      minScore = Math.min(minScore ?? 100, input.score.score);
      xidEvents += input.score.xidEvents.length + (input.score.xidEventsOmitted ?? 0);
      for (const g of input.score.gpus) {
        gpus.total += 1;
        gpus[g.status] += 1;
      }
    }
  }
  critical.sort();
  return {
    nodesTargeted: targeted,
    nodesCompleted: inputs.length,
    nodesSucceeded: nodesByResult.Succeeded,
    nodesFailed: inputs.length - nodesByResult.Succeeded,
    nodesByResult,
    nodesByStatus,
    gpus,
    ...(minScore !== undefined ? { minScore } : {}),
    xidEvents,
    ...(critical.length > 0 ? { criticalNodes: critical.slice(0, STATUS_LIMITS.criticalNodeNames) } : {}),
    ...(critical.length > STATUS_LIMITS.criticalNodeNames
      ? { criticalNodesTruncated: critical.length - STATUS_LIMITS.criticalNodeNames }
      : {}),
  };
}

/** The summary and the bounded worst-first node list for a set of outcomes. */
export function buildResults(
  inputs: readonly NodeResultInput[],
  targeted: number,
): Pick<GPUDiagnosticStatus, 'summary' | 'nodes' | 'nodesTruncated'> {
  const detailed = targeted <= STATUS_LIMITS.detailedNodeLimit;
  const ordered = [...inputs].sort(compareNodesWorstFirst);
  const nodes: StatusNode[] = [];
  let bytes = 0;
  for (const input of ordered) {
    if (nodes.length >= STATUS_LIMITS.nodes) break;
    const node = toStatusNode(input, detailed);
    const size = JSON.stringify(node).length;
    if (bytes + size > STATUS_LIMITS.nodesBudgetBytes) break;
    bytes += size;
    nodes.push(node);
  }
  return { summary: summarize(inputs, targeted), nodes, nodesTruncated: inputs.length - nodes.length };
}

/** The Healthy condition: False when anything is critical or degraded, Unknown when nodes were not diagnosed. */
export function healthyCondition(summary: Summary): { status: 'True' | 'False' | 'Unknown'; reason: string; message: string } {
  const byStatus = summary.nodesByStatus ?? {};
  const critical = byStatus.critical ?? 0;
  const degraded = byStatus.degraded ?? 0;
  const unknown = byStatus.unknown ?? 0;
  if (critical > 0) {
    const names = summary.criticalNodes ?? [];
    const more = summary.criticalNodesTruncated ?? 0;
    return {
      status: 'False',
      reason: 'CriticalNodes',
      message: clip(
        `${critical} node(s) critical: ${names.join(', ')}${more > 0 ? ` and ${more} more` : ''} ` +
          `(${summary.gpus?.critical ?? 0} critical GPU(s))`,
        STATUS_LIMITS.message,
      ),
    };
  }
  if (degraded > 0) return { status: 'False', reason: 'DegradedNodes', message: `${degraded} node(s) degraded, none critical` };
  if (unknown > 0)
    return { status: 'Unknown', reason: 'NodesNotDiagnosed', message: `${unknown} node(s) could not be diagnosed; the others are healthy` };
  return {
    status: 'True',
    reason: 'AllHealthy',
    message: `${summary.nodesSucceeded ?? 0} node(s) and ${summary.gpus?.total ?? 0} GPU(s) healthy`,
  };
}

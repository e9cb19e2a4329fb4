/**
 * Scoring model: `(snapshot, policy, now) → NodeScore`, pure.
 *
 * - Each GPU runs the chain of small checks in checks/ (a lost GPU only reports GpuLost), plus
 *   the XID findings mapped to it by UUID or kernel-form PCI bus id.
 * - score = max(0, 100 − Σ penalty(severity)) with the policy's info/warning/critical penalties.
 * - status: any critical finding → critical; else score ≥ healthyMinScore → healthy;
 *   ≥ degradedMinScore → degraded; else critical. A GPU the collector could not observe at all
 *   (no handle, or reads skipped after deadlines) is at least `unknown`.
 * - Node-level findings: XIDs tied to no reported GPU, NVML unavailable, XID sources down,
 *   system-level collection errors, truncated XID lists. They are scored like one more GPU.
 * - The node's score is the lowest of its GPUs' and the node-level score; its status the worst,
 *   ranked healthy < unknown < degraded < critical (a known fault outranks not knowing).
 * - No-GPU nodes: when NVML is unavailable because the node has zero GPUs (the agent's reason
 *   says "no GPUs"), the node is healthy with 0 GPUs (XIDs still count: a GPU that fell off the
 *   bus can leave a node with none). Any other NVML failure (library missing, init failed,
 *   cannot count) means the GPUs are unobserved: a NvmlUnavailable warning and status at least
 *   `unknown`, never a silent healthy.
 * - Missing GPUs (missing-gpus.ts): a node that advertises more GPUs than the agent sees, none
 *   included, gets GpusMissing (critical by default), whatever NVML says about the rest.
 * Nothing is remembered between calls, so every fault clears as soon as the snapshot stops
 * showing it (GPU back, remap applied, XID older than the lookback).
 */
import type { NodeSnapshotDocument, SnapshotGpu } from '../../agent/api/snapshot-document.js';
import type { GpuSnapshot } from '../../agent/nvml/types.js';
import type { XidCatalog } from '../../agent/xid/catalog.js';
import type { GpuAdvertisement } from './advertised-gpus.js';
import { checkLost, GPU_CHECKS, isUnobserved, memoryEventFinding, type GpuCheck, type NodeContext } from './checks/index.js';
import { boundText, finding, sortWorstFirst, type Finding, type HealthStatus, type Severity } from './finding.js';
import { podsOfGpu, type AffectedPod } from './gpu-pods.js';
import { checkMissingGpus } from './missing-gpus.js';
import { FIXED_SEVERITIES, type ResolvedPolicy, type ResolvedScoring } from './policy.js';
import {
  busLossFinding,
  busLossKey,
  evaluateXidEvents,
  kernelBusIdKey,
  NODE_LEVEL_KEY,
  switchFindings,
  type EvaluatedXidEvent,
} from './xid.js';

/** The best possible score. */
export const MAX_SCORE = 100;

/** The CRD's maxLength for a node's message. */
export const MAX_NODE_MESSAGE_LENGTH = 1024;

/** How the agent words "NVML works but there are no GPUs" (agent/nvml/collector.ts: 'no GPUs found'). */
export const ZERO_GPUS_REASON = /\bno GPUs?\b/i;

/** Statuses from best to worst (index = rank). */
export const STATUS_RANK: readonly HealthStatus[] = ['healthy', 'unknown', 'degraded', 'critical'];

/** One GPU's result. */
export interface GpuScore {
  readonly index: number;
  readonly uuid?: string;
  readonly name?: string;
  /** Kernel-form PCI bus id (`0000:3b:00`). */
  readonly pciBusId?: string;
  readonly score: number;
  readonly status: HealthStatus;
  /** Worst first. */
  readonly findings: readonly Finding[];
  /** Findings dropped when the score was retained for a status (results.ts retainedScore). */
  readonly findingsOmitted?: number;
  /** The containers on this GPU the agent reported (absent when it listed none). */
  readonly pods?: readonly AffectedPod[];
  /** Containers left out of `pods` (by the agent, or when the score was retained). */
  readonly podsOmitted?: number;
}

/** One node's result. */
export interface NodeScore {
  readonly node: string;
  /** Lowest of the GPU scores and the node-level score. */
  readonly score: number;
  readonly status: HealthStatus;
  readonly gpus: readonly GpuScore[];
  /** Node-level findings (XIDs tied to no GPU, NVML/XID source problems), worst first. */
  readonly findings: readonly Finding[];
  /** XID events in the lookback after the policy, worst first. */
  readonly xidEvents: readonly EvaluatedXidEvent[];
  /** Node findings and XID events dropped when the score was retained for a status (results.ts retainedScore). */
  readonly findingsOmitted?: number;
  readonly xidEventsOmitted?: number;
  /** The worst finding (prefixed with its GPU), or a one-line all-clear. */
  readonly worstMessage: string;
}

/** Options for scoreNode. */
export interface ScoreNodeOptions {
  /** XID catalog to judge events against (default: the built-in one). */
  readonly catalog?: XidCatalog;
  /** What the node's Node object advertises (parseAdvertisedGpus); without it, GPU counts are not compared. */
  readonly advertised?: GpuAdvertisement;
}

function penalty(severity: Severity, scoring: ResolvedScoring): number {
  switch (severity) {
    case 'critical':
      return scoring.criticalPenalty;
    case 'warning':
      return scoring.warningPenalty;
    case 'info':
      return scoring.infoPenalty;
  }
}

/** max(0, 100 − Σ penalties) for a set of findings. */
export function scoreFindings(findings: readonly Finding[], scoring: ResolvedScoring): number {
  return Math.max(0, MAX_SCORE - findings.reduce((sum, f) => sum + penalty(f.severity, scoring), 0));
}

/** Status of a set of findings and its score: any critical → critical, else by the score cut-offs. */
export function statusFor(findings: readonly Finding[], score: number, scoring: ResolvedScoring): HealthStatus {
  if (findings.some((f) => f.severity === 'critical')) return 'critical';
  if (score >= scoring.healthyMinScore) return 'healthy';
  if (score >= scoring.degradedMinScore) return 'degraded';
  return 'critical';
}

/** The worse of two statuses (healthy < unknown < degraded < critical). */
export function worseStatus(a: HealthStatus, b: HealthStatus): HealthStatus {
  return STATUS_RANK.indexOf(a) >= STATUS_RANK.indexOf(b) ? a : b;
}

function xidFindingsFor(gpu: GpuSnapshot, byGpu: ReadonlyMap<string, readonly Finding[]>, claimed: Set<string>): Finding[] {
  const keys = new Set<string>();
  if (gpu.uuid !== undefined) keys.add(gpu.uuid);
  const bus = gpu.pciBusIdKernel ?? gpu.pciBusId;
  const busKey = bus === undefined ? undefined : kernelBusIdKey(bus);
  if (busKey !== undefined) keys.add(busKey);
  const found: Finding[] = [];
  for (const key of keys) {
    const findings = byGpu.get(key);
    if (findings === undefined) continue;
    found.push(...findings);
    claimed.add(key);
  }
  return found;
}

function scoreGpu(gpu: SnapshotGpu, policy: ResolvedPolicy, node: NodeContext, xidFindings: readonly Finding[]): GpuScore {
  // A lost GPU answers nothing meaningful: only GpuLost (and its XIDs) describe it.
  const checks: readonly GpuCheck[] = gpu.lost ? [checkLost] : GPU_CHECKS;
  const findings = sortWorstFirst([...checks.flatMap((check) => check(gpu, policy, node)), ...xidFindings]);
  const score = scoreFindings(findings, policy.scoring);
  const status = statusFor(findings, score, policy.scoring);
  const bus = gpu.pciBusIdKernel ?? (gpu.pciBusId === undefined ? undefined : kernelBusIdKey(gpu.pciBusId));
  const pods = podsOfGpu(gpu);
  return Object.freeze({
    index: gpu.index,
    ...(gpu.uuid === undefined ? {} : { uuid: gpu.uuid }),
    ...(gpu.name === undefined ? {} : { name: gpu.name }),
    ...(bus === undefined ? {} : { pciBusId: bus }),
    score,
    status: isUnobserved(gpu) ? worseStatus(status, 'unknown') : status,
    findings,
    ...(pods.pods.length > 0 ? { pods: pods.pods } : {}),
    ...(pods.omitted > 0 ? { podsOmitted: pods.omitted } : {}),
  });
}

function nodeFindings(snapshot: NodeSnapshotDocument): { findings: Finding[]; unobserved: boolean } {
  const findings: Finding[] = [];
  const nvml = snapshot.nvml;
  let unobserved = false;
  if (!nvml.available && !ZERO_GPUS_REASON.test(nvml.reason)) {
    unobserved = true;
    const code = nvml.code === undefined ? '' : ` (NVML return code ${nvml.code})`;
    findings.push(
      finding(
        'health',
        FIXED_SEVERITIES.nvmlUnavailable,
        'NvmlUnavailable',
        `NVML is unavailable${code}: ${nvml.reason}; GPU health cannot be observed`,
      ),
    );
  }
  if (snapshot.errors.length > 0) {
    const fields = [...new Set(snapshot.errors.map((e) => e.field))].join(', ');
    findings.push(
      finding(
        'inventory',
        FIXED_SEVERITIES.systemCollectionError,
        'SystemCollectionError',
        `NVML could not read system field(s): ${fields}`,
      ),
    );
  }
  const sources = snapshot.agent.xidSources;
  if (snapshot.checks.includes('xid') && !sources.kmsg.running && !sources.nvmlEvents.running) {
    findings.push(
      finding(
        'xid',
        FIXED_SEVERITIES.xidSourcesDown,
        'XidSourcesDown',
        'Neither the kernel log nor NVML events are watched on this node, so XID errors go unseen',
      ),
    );
  }
  if (snapshot.xid.truncated > 0) {
    findings.push(
      finding(
        'xid',
        FIXED_SEVERITIES.xidEventsTruncated,
        'XidEventsTruncated',
        `The agent left ${snapshot.xid.truncated} XID event(s) out of its answer to bound it`,
      ),
    );
  }
  return { findings, unobserved };
}

function worstMessage(gpus: readonly GpuScore[], nodeLevel: readonly Finding[]): string {
  const candidates: { severity: Severity; text: string }[] = [
    ...nodeLevel.map((f) => ({ severity: f.severity, text: f.message })),
    ...gpus.flatMap((g) =>
      g.findings.map((f) => ({ severity: f.severity, text: `GPU ${g.index}${g.uuid === undefined ? '' : ` (${g.uuid})`}: ${f.message}` })),
    ),
  ].filter((c) => c.severity !== 'info');
  const worst = candidates.find((c) => c.severity === 'critical') ?? candidates[0];
  if (worst !== undefined) return boundText(worst.text, MAX_NODE_MESSAGE_LENGTH);
  return `${gpus.length} GPU(s), no problems found`;
}

/** Scores one node's snapshot under a policy at time `now` (XIDs older than the lookback are ignored). */
export function scoreNode(snapshot: NodeSnapshotDocument, policy: ResolvedPolicy, now: Date, options: ScoreNodeOptions = {}): NodeScore {
  const driverVersion = snapshot.nvml.available ? (snapshot.nvml.driverVersion ?? null) : null;
  const xid = evaluateXidEvents(snapshot.xid.events, policy, now, options.catalog, driverVersion);
  const findingsByGpu = new Map(xid.findingsByGpu);
  for (const loss of snapshot.xid.busLoss ?? []) {
    const key = busLossKey(loss);
    findingsByGpu.set(key, sortWorstFirst([busLossFinding(loss), ...(findingsByGpu.get(key) ?? [])]));
  }
  for (const report of snapshot.xid.memoryEvents ?? []) {
    const memoryFinding = memoryEventFinding(report, policy);
    if (memoryFinding === null) continue;
    const key = report.gpuUuid ?? (report.pciBusId === undefined ? undefined : kernelBusIdKey(report.pciBusId)) ?? NODE_LEVEL_KEY;
    findingsByGpu.set(key, sortWorstFirst([memoryFinding, ...(findingsByGpu.get(key) ?? [])]));
  }
  const context: NodeContext = { gpus: snapshot.gpus };
  const claimed = new Set<string>();
  const gpus = snapshot.gpus.map((gpu) => scoreGpu(gpu, policy, context, xidFindingsFor(gpu, findingsByGpu, claimed)));

  const { findings: nodeOwn, unobserved } = nodeFindings(snapshot);
  const own = [...nodeOwn, ...checkMissingGpus(snapshot, options.advertised, policy), ...switchFindings(snapshot.xid.switchEvents ?? [])];
  const unmapped = [...findingsByGpu].filter(([key]) => key === NODE_LEVEL_KEY || !claimed.has(key)).flatMap(([, f]) => f);
  const findings = sortWorstFirst([...own, ...unmapped]);
  const nodeLevelScore = scoreFindings(findings, policy.scoring);

  let status = statusFor(findings, nodeLevelScore, policy.scoring);
  if (unobserved) status = worseStatus(status, 'unknown');
  for (const g of gpus) status = worseStatus(status, g.status);
  const score = Math.min(nodeLevelScore, ...gpus.map((g) => g.score));

  return Object.freeze({
    node: snapshot.node,
    score,
    status,
    gpus: Object.freeze(gpus),
    findings,
    xidEvents: xid.events,
    worstMessage: worstMessage(gpus, findings),
  });
}

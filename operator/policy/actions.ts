/**
 * The opt-in actions of a GPUHealthPolicy: a pure planner (which nodes get the taint, which lose
 * it, which the guardrail holds back, what the GPUHealthy Node condition says) and pure helpers
 * that turn a plan into the exact change of one Node, so the applier (apply-actions.ts) only
 * does I/O.
 *
 * Overlapping policies combine through two Node annotations that record who did what:
 * - `gpudiag.io/tainted-by: <policy>=<taint key>,...` — the policies holding a taint on the node.
 *   A policy removes a taint only when no other policy holding the same key remains, and never
 *   touches a taint with its key that no gpudiag policy recorded (a human's or another tool's).
 * - `gpudiag.io/unhealthy-by: <policy>,...` — the policies (with nodeCondition enabled) that
 *   last found the node critical. GPUHealthy is False while this list is non-empty.
 */
import type { V1Node, V1NodeCondition, V1Taint } from '@kubernetes/client-node';
import type { HealthStatus, ResolvedActions } from '../scoring/index.js';

/** Annotation listing `policy=taintKey` pairs of the policies holding a taint on the node. */
export const TAINTED_BY_ANNOTATION = 'gpudiag.io/tainted-by';
/** Annotation listing the policies that found the node critical (nodeCondition action). */
export const UNHEALTHY_BY_ANNOTATION = 'gpudiag.io/unhealthy-by';
/** The Node condition type the nodeCondition action sets. */
export const GPU_HEALTHY_CONDITION = 'GPUHealthy';
const MAX_CONDITION_MESSAGE = 1024;

/** One governed node as the planner sees it. */
export interface PlanNode {
  node: string;
  /** Health at this check; `unknown` when the agent did not answer. */
  status: HealthStatus;
  /** Whether the agent answered (only answered nodes are judged). */
  checked: boolean;
  score?: number;
  /** The worst finding or why the node could not be checked. */
  message?: string;
  /** This policy holds a taint on the node (recorded in the tainted-by annotation). */
  heldTaint: boolean;
  /** The node carries a taint with this policy's key that no gpudiag policy recorded. */
  foreignTaint: boolean;
  /** This policy is recorded in the unhealthy-by annotation. */
  heldVerdict: boolean;
}

/** What the planner needs. */
export interface PlanInput {
  policy: string;
  actions: ResolvedActions;
  governed: readonly PlanNode[];
  /** Nodes where this policy holds a taint or an unhealthy verdict but that it no longer governs. */
  outOfScope: readonly string[];
}

/** The verdict a policy records on one node for the GPUHealthy condition. */
export interface NodeVerdict {
  node: string;
  /** critical: join unhealthy-by; ok: leave it; release: leave it (no longer judged by this policy). */
  verdict: 'critical' | 'ok' | 'release';
  message: string;
}

/** What the actions do (or, in dry run, would do) at one check. */
export interface ActionsPlan {
  dryRun: boolean;
  taintEnabled: boolean;
  conditionEnabled: boolean;
  /** Taints to add (critical nodes within the guardrail), most critical first. */
  add: string[];
  /** Taints to remove (recovered, out of scope, or tainting turned off). */
  remove: string[];
  /** Nodes keeping this policy's taint (still critical, or not checked: unknown is not healthy). */
  keep: string[];
  /** Critical nodes not tainted because of maxTaintedPercent, most critical first. */
  held: string[];
  /** Nodes carrying this policy's taint after the plan (keep + add), sorted. */
  tainted: string[];
  /** Most nodes this policy may hold tainted: max(1, floor(maxTaintedPercent% × governed)). */
  allowed: number;
  /** GPUHealthy verdicts to record (empty when the condition action is off and nothing is held). */
  verdicts: NodeVerdict[];
  message: string;
}

/** The guardrail's allowance: max(1, floor(percent × governed / 100)); 0 when nothing is governed. */
export function taintAllowance(maxTaintedPercent: number, governed: number): number {
  if (governed <= 0) return 0;
  return Math.max(1, Math.floor((maxTaintedPercent * governed) / 100));
}

function byCriticality(a: PlanNode, b: PlanNode): number {
  return (a.score ?? 101) - (b.score ?? 101) || a.node.localeCompare(b.node);
}

/**
 * Plans the actions of one check. Rules:
 * - a held taint stays while the node is critical or could not be checked (unknown ≠ healthy);
 *   it goes when the node is checked and not critical, leaves the policy's scope, or tainting
 *   is turned off;
 * - critical nodes get the taint, most critical (lowest score) first, while the policy holds
 *   fewer than the allowance — held taints count against it; the rest are held by the guardrail;
 * - a node that could not be checked is never newly tainted, and its GPUHealthy verdict is kept;
 * - a node already carrying the key from someone else is left alone.
 */
export function planActions(input: PlanInput): ActionsPlan {
  const { actions, governed } = input;
  const taintEnabled = actions.taint.enabled;
  const conditionEnabled = actions.nodeCondition.enabled;
  const allowed = taintAllowance(actions.taint.maxTaintedPercent, governed.length);
  const add: string[] = [];
  const remove: string[] = [];
  const keep: string[] = [];
  const held: string[] = [];

  for (const n of governed) {
    if (!n.heldTaint) continue;
    if (taintEnabled && (!n.checked || n.status === 'critical')) keep.push(n.node);
    else remove.push(n.node);
  }
  remove.push(...input.outOfScope.filter((name) => !governed.some((n) => n.node === name)));
  if (taintEnabled) {
    const candidates = governed.filter((n) => n.checked && n.status === 'critical' && !n.heldTaint && !n.foreignTaint).sort(byCriticality);
    let room = Math.max(0, allowed - keep.length);
    for (const c of candidates) {
      if (room > 0) {
        add.push(c.node);
        room -= 1;
      } else held.push(c.node);
    }
  }

  const verdicts: NodeVerdict[] = [];
  for (const n of governed) {
    if (!conditionEnabled || !n.checked) continue;
    verdicts.push({ node: n.node, verdict: n.status === 'critical' ? 'critical' : 'ok', message: n.message ?? '' });
  }
  if (!conditionEnabled) for (const n of governed) if (n.heldVerdict) verdicts.push({ node: n.node, verdict: 'release', message: '' });
  for (const name of input.outOfScope)
    if (!governed.some((n) => n.node === name)) verdicts.push({ node: name, verdict: 'release', message: '' });

  const tainted = [...keep, ...add].sort();
  return {
    dryRun: actions.dryRun,
    taintEnabled,
    conditionEnabled,
    add,
    remove: remove.sort(),
    keep: keep.sort(),
    held,
    tainted,
    allowed,
    verdicts,
    message: planMessage(actions, governed.length, { add, remove, keep, held, allowed, verdicts }),
  };
}

function planMessage(
  actions: ResolvedActions,
  governed: number,
  p: Pick<ActionsPlan, 'add' | 'remove' | 'keep' | 'held' | 'allowed' | 'verdicts'>,
): string {
  const would = actions.dryRun ? 'dry run, nothing changed: would ' : '';
  const parts: string[] = [];
  if (actions.taint.enabled) {
    parts.push(
      `${p.keep.length + p.add.length} node(s) tainted ${actions.taint.key}:${actions.taint.effect} (${p.add.length} new, ` +
        `${p.remove.length} removed)`,
    );
    if (p.held.length > 0)
      parts.push(
        `${p.held.length} critical node(s) held by the guardrail (maxTaintedPercent ${actions.taint.maxTaintedPercent}% of ` +
          `${governed} governed node(s) allows ${p.allowed})`,
      );
  } else if (p.remove.length > 0) parts.push(`${p.remove.length} taint(s) removed`);
  if (actions.nodeCondition.enabled) {
    const critical = p.verdicts.filter((v) => v.verdict === 'critical').length;
    const judged = p.verdicts.filter((v) => v.verdict !== 'release').length;
    parts.push(`${GPU_HEALTHY_CONDITION} set on ${judged} node(s) (${critical} False)`);
  }
  if (parts.length === 0) return 'no action enabled';
  return `${would}${parts.join('; ')}`;
}

/** Parses `policy=key,...`; malformed entries are dropped. */
export function parseTaintedBy(value: string | undefined): Map<string, string> {
  const map = new Map<string, string>();
  for (const part of (value ?? '').split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0 || eq === part.length - 1) continue;
    map.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return map;
}

/** Formats a tainted-by map (sorted), or undefined when empty (the annotation is removed). */
export function formatTaintedBy(map: ReadonlyMap<string, string>): string | undefined {
  if (map.size === 0) return undefined;
  return [...map.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([p, k]) => `${p}=${k}`)
    .join(',');
}

/** Parses `policy,...`. */
export function parseUnhealthyBy(value: string | undefined): Set<string> {
  return new Set(
    (value ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== ''),
  );
}

function formatUnhealthyBy(set: ReadonlySet<string>): string | undefined {
  return set.size === 0 ? undefined : [...set].sort().join(',');
}

/** How this policy relates to a node's taints, from the Node object. */
export function taintState(node: V1Node, policy: string, key: string): { heldTaint: boolean; foreignTaint: boolean } {
  const holders = parseTaintedBy(node.metadata?.annotations?.[TAINTED_BY_ANNOTATION]);
  const hasKey = (node.spec?.taints ?? []).some((t) => t.key === key);
  const recordedForKey = [...holders.values()].includes(key);
  return { heldTaint: holders.has(policy), foreignTaint: hasKey && !recordedForKey };
}

/** The policies recorded on a node (either annotation), for releasing a deleted policy's marks. */
export function policiesRecordedOn(node: V1Node): Set<string> {
  const annotations = node.metadata?.annotations ?? {};
  return new Set([...parseTaintedBy(annotations[TAINTED_BY_ANNOTATION]).keys(), ...parseUnhealthyBy(annotations[UNHEALTHY_BY_ANNOTATION])]);
}

/** A JSON merge patch of a Node's metadata and taints (with a resourceVersion precondition). */
export interface NodeMetadataPatch {
  metadata: { resourceVersion: string; annotations: Record<string, string | null> };
  spec?: { taints: V1Taint[] };
}

/** A change of one node: the taint and/or the verdict of this policy. */
export interface NodeChange {
  policy: string;
  taint?: { op: 'add' | 'remove'; key: string; effect: string };
  verdict?: NodeVerdict;
}

/**
 * The merge patch that applies `change` to `node`, or undefined when the node already is as
 * wanted. Only this policy's entries and its key's taint are touched; other taints are kept.
 */
export function nodeMetadataPatch(node: V1Node, change: NodeChange): NodeMetadataPatch | undefined {
  const annotations = node.metadata?.annotations ?? {};
  const holders = parseTaintedBy(annotations[TAINTED_BY_ANNOTATION]);
  const unhealthy = parseUnhealthyBy(annotations[UNHEALTHY_BY_ANNOTATION]);
  const taints = [...(node.spec?.taints ?? [])];
  let taintsChanged = false;
  const patchAnnotations: Record<string, string | null> = {};

  if (change.taint !== undefined) {
    const { op, key, effect } = change.taint;
    const hasKey = taints.some((t) => t.key === key);
    if (op === 'add') {
      const recordedForKey = [...holders.values()].includes(key);
      // Someone else's taint with our key: neither claim nor touch it.
      if (!(hasKey && !recordedForKey) && holders.get(change.policy) !== key) {
        holders.set(change.policy, key);
        if (!hasKey) {
          taints.push({ key, effect, value: 'true', timeAdded: new Date() });
          taintsChanged = true;
        }
      }
    } else if (holders.has(change.policy)) {
      const heldKey = holders.get(change.policy);
      holders.delete(change.policy);
      const othersHoldKey = [...holders.values()].includes(heldKey ?? key);
      if (!othersHoldKey && taints.some((t) => t.key === heldKey)) {
        taints.splice(0, taints.length, ...taints.filter((t) => t.key !== heldKey));
        taintsChanged = true;
      }
    }
    const formatted = formatTaintedBy(holders);
    if (formatted !== annotations[TAINTED_BY_ANNOTATION]) patchAnnotations[TAINTED_BY_ANNOTATION] = formatted ?? null;
  }
  if (change.verdict !== undefined) {
    if (change.verdict.verdict === 'critical') unhealthy.add(change.policy);
    else unhealthy.delete(change.policy);
    const formatted = formatUnhealthyBy(unhealthy);
    if (formatted !== annotations[UNHEALTHY_BY_ANNOTATION]) patchAnnotations[UNHEALTHY_BY_ANNOTATION] = formatted ?? null;
  }
  if (!taintsChanged && Object.keys(patchAnnotations).length === 0) return undefined;
  return {
    metadata: { resourceVersion: node.metadata?.resourceVersion ?? '', annotations: patchAnnotations },
    ...(taintsChanged ? { spec: { taints } } : {}),
  };
}

/**
 * The GPUHealthy condition a node should carry after `policy` recorded `verdict`, given the
 * unhealthy-by list now on the node; undefined when the condition should not change (a release
 * of a node whose condition is absent or already True).
 */
export function desiredNodeCondition(
  node: V1Node,
  policy: string,
  verdict: NodeVerdict,
): Pick<V1NodeCondition, 'type' | 'status' | 'reason' | 'message'> | undefined {
  const unhealthy = parseUnhealthyBy(node.metadata?.annotations?.[UNHEALTHY_BY_ANNOTATION]);
  const existing = node.status?.conditions?.find((c) => c.type === GPU_HEALTHY_CONDITION);
  const others = [...unhealthy].filter((p) => p !== policy).sort();
  const alsoOthers = others.length > 0 ? `; also critical per GPUHealthPolicy ${others.join(', ')}` : '';
  const clip = (m: string): string => (m.length <= MAX_CONDITION_MESSAGE ? m : `${m.slice(0, MAX_CONDITION_MESSAGE - 1)}…`);
  const othersOwnIt = others.length > 0 && existing?.status === 'False';
  if (verdict.verdict === 'critical') {
    // Another policy's critical message already stands: the annotation names every policy.
    if (othersOwnIt) return undefined;
    return {
      type: GPU_HEALTHY_CONDITION,
      status: 'False',
      reason: 'CriticalGPU',
      message: clip(`GPUHealthPolicy ${policy}: ${verdict.message}${alsoOthers}`),
    };
  }
  if (others.length > 0) {
    if (othersOwnIt) return undefined;
    return {
      type: GPU_HEALTHY_CONDITION,
      status: 'False',
      reason: 'CriticalGPU',
      message: clip(`critical per GPUHealthPolicy ${others.join(', ')}`),
    };
  }
  if (verdict.verdict === 'release') {
    if (existing === undefined || existing.status === 'True') return undefined;
    return {
      type: GPU_HEALTHY_CONDITION,
      status: 'True',
      reason: 'NoCriticalVerdict',
      message: 'no GPUHealthPolicy finds this node critical',
    };
  }
  return {
    type: GPU_HEALTHY_CONDITION,
    status: 'True',
    reason: 'GPUsHealthy',
    message: clip(`GPUHealthPolicy ${policy}: ${verdict.message === '' ? 'no critical finding' : verdict.message}`),
  };
}

/** Whether the node's GPUHealthy condition already says `wanted` (no status write needed). */
export function conditionUpToDate(node: V1Node, wanted: Pick<V1NodeCondition, 'status' | 'reason' | 'message'>): boolean {
  const existing = node.status?.conditions?.find((c) => c.type === GPU_HEALTHY_CONDITION);
  return (
    existing !== undefined && existing.status === wanted.status && existing.reason === wanted.reason && existing.message === wanted.message
  );
}

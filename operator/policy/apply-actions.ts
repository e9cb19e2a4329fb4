/**
 * Applies an ActionsPlan to Nodes: the taint and the tainted-by/unhealthy-by annotations through
 * a JSON merge patch of the Node with a resourceVersion precondition (other taints and
 * annotations untouched; a conflict re-reads the Node and recomputes), then the GPUHealthy
 * condition through a strategic merge patch of nodes/status (merged by type into the existing
 * conditions). Writes only what changes. Never called in dry run.
 */
import type { V1Node } from '@kubernetes/client-node';
import { kubeRequest, type KubeTarget } from '../../lib/kube/raw-request.js';
import { errorFields, type Logger } from '../../lib/logger.js';
import { formatTime } from '../runtime/conditions.js';
import { isConflict, isNotFound } from '../runtime/errors.js';
import { runBounded } from '../fanout/pool.js';
import {
  conditionUpToDate,
  desiredNodeCondition,
  GPU_HEALTHY_CONDITION,
  nodeMetadataPatch,
  type ActionsPlan,
  type NodeChange,
} from './actions.js';

/** Node writes in flight at once. */
const NODE_WRITE_CONCURRENCY = 8;
const MAX_NODE_ATTEMPTS = 5;

/** What applying a plan did. */
export interface AppliedActions {
  /** Taints added (the plan's `add` minus failures). */
  added: string[];
  removed: string[];
  conditionsWritten: number;
  /** Nodes whose change could not be written (retried at the next check). */
  failed: { node: string; error: string }[];
}

/** Applies `plan` for `policy`; `cached(name)` gives the informer's copy of a Node (saves a GET per node). */
export async function applyActions(options: {
  kc: KubeTarget;
  policy: string;
  plan: ActionsPlan;
  taint: { key: string; effect: string };
  cached: (name: string) => V1Node | undefined;
  logger: Logger;
  signal: AbortSignal;
  now?: () => Date;
}): Promise<AppliedActions> {
  const { kc, policy, plan, taint, logger, signal } = options;
  const now = options.now ?? ((): Date => new Date());
  const changes = new Map<string, NodeChange>();
  const change = (node: string): NodeChange => {
    let c = changes.get(node);
    if (c === undefined) {
      c = { policy };
      changes.set(node, c);
    }
    return c;
  };
  for (const node of plan.add) change(node).taint = { op: 'add', ...taint };
  for (const node of plan.remove) change(node).taint = { op: 'remove', ...taint };
  for (const v of plan.verdicts) change(v.node).verdict = v;

  const result: AppliedActions = { added: [], removed: [], conditionsWritten: 0, failed: [] };
  await runBounded(
    [...changes.entries()],
    NODE_WRITE_CONCURRENCY,
    async ([name, c], _i, s) => {
      try {
        const outcome = await applyToNode(kc, name, c, options.cached(name), now, s);
        if (outcome === 'gone') return;
        if (c.taint?.op === 'add' && outcome.taintChanged) result.added.push(name);
        if (c.taint?.op === 'remove' && outcome.taintChanged) result.removed.push(name);
        if (outcome.conditionWritten) result.conditionsWritten += 1;
      } catch (err) {
        if (s.aborted) throw err;
        logger.warn('could not update node', { node: name, policy, ...errorFields(err) });
        result.failed.push({ node: name, error: err instanceof Error ? err.message : String(err) });
      }
    },
    signal,
  );
  result.added.sort();
  result.removed.sort();
  return result;
}

async function getNode(kc: KubeTarget, name: string, signal: AbortSignal): Promise<V1Node> {
  return kubeRequest<V1Node>(kc, { method: 'GET', path: `/api/v1/nodes/${encodeURIComponent(name)}`, signal });
}

function hasTaint(node: V1Node, key: string): boolean {
  return (node.spec?.taints ?? []).some((t) => t.key === key);
}

async function applyToNode(
  kc: KubeTarget,
  name: string,
  change: NodeChange,
  cached: V1Node | undefined,
  now: () => Date,
  signal: AbortSignal,
): Promise<'gone' | { taintChanged: boolean; conditionWritten: boolean }> {
  let node = cached;
  let taintChanged = false;
  for (let attempt = 1; ; attempt++) {
    try {
      node ??= await getNode(kc, name, signal);
      const patch = nodeMetadataPatch(node, change);
      if (patch === undefined) break;
      const before = change.taint === undefined ? false : hasTaint(node, change.taint.key);
      node = await kubeRequest<V1Node>(kc, {
        method: 'PATCH',
        path: `/api/v1/nodes/${encodeURIComponent(name)}`,
        contentType: 'application/merge-patch+json',
        body: patch,
        signal,
      });
      taintChanged = change.taint !== undefined && before !== hasTaint(node, change.taint.key);
      break;
    } catch (err) {
      if (isNotFound(err)) return 'gone';
      if (!isConflict(err) || attempt >= MAX_NODE_ATTEMPTS) throw err;
      signal.throwIfAborted();
      node = undefined;
    }
  }

  if (change.verdict === undefined) return { taintChanged, conditionWritten: false };
  const wanted = desiredNodeCondition(node, change.policy, change.verdict);
  if (wanted === undefined || conditionUpToDate(node, wanted)) return { taintChanged, conditionWritten: false };
  const existing = node.status?.conditions?.find((c) => c.type === GPU_HEALTHY_CONDITION);
  const at = formatTime(now());
  try {
    await kubeRequest<V1Node>(kc, {
      method: 'PATCH',
      path: `/api/v1/nodes/${encodeURIComponent(name)}/status`,
      contentType: 'application/strategic-merge-patch+json',
      body: {
        status: {
          conditions: [
            {
              ...wanted,
              lastHeartbeatTime: at,
              lastTransitionTime: existing !== undefined && existing.status === wanted.status ? existing.lastTransitionTime : at,
            },
          ],
        },
      },
      signal,
    });
  } catch (err) {
    if (isNotFound(err)) return 'gone';
    throw err;
  }
  return { taintChanged, conditionWritten: true };
}

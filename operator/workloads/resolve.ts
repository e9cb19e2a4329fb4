/**
 * Completes what the agent could not know about the containers on a node's GPUs: pod-resources
 * entries get the pod's UID and controlling owner, cgroup entries the pod's namespace, name and
 * container name. A pod that has gone (or a lookup that failed) keeps what the agent reported.
 */
import { compareNodesWorstFirst, isAffected, type NodeResultInput } from '../diagnostic/results.js';
import type { AffectedPod, GpuScore, NodeScore } from '../scoring/index.js';
import { errorFields, type Logger } from '../../lib/logger.js';
import type { NodePod, NodePodLookup, NodePods, OwnerLookup, OwnerRef } from './node-pods.js';

/** Most nodes whose pods one run reads (the worst first); the rest keep the agent's entries. */
export const MAX_NODE_LOOKUPS = 50;
/** Node pod lists read at once. */
const LOOKUP_CONCURRENCY = 4;
/** Most controllers whose own controller one run reads. */
export const MAX_OWNER_LOOKUPS = 50;
/** A run's status waits at most this long for the pod reads; nodes not read by then keep the agent's entries. */
export const RESOLVE_BUDGET_MS = 10_000;

function completed(pod: AffectedPod, found: NodePod, container: string | undefined): AffectedPod {
  return {
    ...pod,
    namespace: found.namespace,
    name: found.name,
    uid: found.uid,
    ...(container !== undefined ? { container } : {}),
    ...(found.controller !== undefined ? { controller: found.controller } : {}),
  };
}

/** One container completed from the node's pods (unchanged when its pod is not there). */
export function resolvePod(pod: AffectedPod, pods: NodePods): AffectedPod {
  if (pod.source === 'pod-resources') {
    const found = pod.namespace !== undefined && pod.name !== undefined ? pods.byName(pod.namespace, pod.name) : undefined;
    return found === undefined ? pod : completed(pod, found, pod.container);
  }
  const byContainer = pod.containerId !== undefined ? pods.byContainerId(pod.containerId) : undefined;
  // The container id names the pod too; trust it only when it agrees with the cgroup's UID.
  if (byContainer !== undefined && (pod.uid === undefined || byContainer.pod.uid === pod.uid))
    return completed(pod, byContainer.pod, byContainer.container);
  const found = pod.uid !== undefined ? pods.byUid(pod.uid) : undefined;
  return found === undefined ? pod : completed(pod, found, undefined);
}

/** `score` with every GPU's containers completed from the node's pods (pure). */
export function resolveScorePods(score: NodeScore, pods: NodePods): NodeScore {
  const gpus = score.gpus.map((g): GpuScore => (g.pods === undefined ? g : { ...g, pods: g.pods.map((p) => resolvePod(p, pods)) }));
  return { ...score, gpus };
}

/** True when some GPU lists a container the status or an Event would name. */
function namesPods(score: NodeScore, everyGpu: boolean): boolean {
  return score.gpus.some((g) => (everyGpu || isAffected(g.status)) && (g.pods?.length ?? 0) > 0);
}

/** Reads the pods of the nodes whose GPUs list containers, and completes their entries. */
export class AffectedPodResolver {
  constructor(
    private readonly lookup: NodePodLookup,
    private readonly logger: Logger,
    private readonly ownerOf?: OwnerLookup,
  ) {}

  /**
   * `results` (worst first) with their containers completed, for at most MAX_NODE_LOOKUPS nodes:
   * those with containers on degraded or critical GPUs, or on any GPU when `everyGpu` (a small
   * diagnostic lists every GPU's pods). A failed lookup, or one still running after `budgetMs`,
   * leaves that node as the agent reported it.
   */
  async resolve(
    results: readonly NodeResultInput[],
    everyGpu: boolean,
    caller: AbortSignal,
    budgetMs = RESOLVE_BUDGET_MS,
  ): Promise<NodeResultInput[]> {
    const signal = AbortSignal.any([caller, AbortSignal.timeout(budgetMs)]);
    const out = [...results];
    const wanted = out
      .flatMap((r, i) => (r.score !== undefined && namesPods(r.score, everyGpu) ? [i] : []))
      .sort((a, b) => compareNodesWorstFirst(out[a] as NodeResultInput, out[b] as NodeResultInput))
      .slice(0, MAX_NODE_LOOKUPS);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < wanted.length && !signal.aborted) {
        const index = wanted[next++] as number;
        const input = out[index] as NodeResultInput;
        try {
          const pods = await this.lookup(input.node, signal);
          if (input.score !== undefined) out[index] = { ...input, score: resolveScorePods(input.score, pods) };
        } catch (err) {
          if (signal.aborted) {
            this.logger.warn('the node pods were not all read within the budget; the rest stay as the agents reported them', {
              budgetMs,
              read: next,
            });
            return;
          }
          this.logger.warn("could not read the node's pods; its GPUs' containers stay as the agent reported them", {
            node: input.node,
            ...errorFields(err),
          });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(LOOKUP_CONCURRENCY, wanted.length) }, worker));
    return this.ownerOf === undefined ? out : this.withOwners(out, this.ownerOf, signal);
  }

  /** Adds the controller's controller (a ReplicaSet's Deployment, a Job's JobSet) to each resolved container. */
  private async withOwners(results: NodeResultInput[], ownerOf: OwnerLookup, signal: AbortSignal): Promise<NodeResultInput[]> {
    const owners = new Map<string, Promise<OwnerRef | undefined>>();
    const ownerFor = (pod: AffectedPod): Promise<OwnerRef | undefined> | undefined => {
      const c = pod.controller;
      if (c === undefined || pod.namespace === undefined) return undefined;
      let found = owners.get(c.uid);
      if (found === undefined) {
        if (owners.size >= MAX_OWNER_LOOKUPS) return undefined;
        found = ownerOf(c, pod.namespace, signal).catch((err: unknown) => {
          this.logger.debug("could not read a pod controller's owner", { controller: `${c.kind}/${c.name}`, ...errorFields(err) });
          return undefined;
        });
        owners.set(c.uid, found);
      }
      return found;
    };
    return Promise.all(
      results.map(async (r) => {
        if (r.score === undefined || !r.score.gpus.some((g) => g.pods?.some((p) => p.controller !== undefined) === true)) return r;
        const gpus = await Promise.all(
          r.score.gpus.map(async (g): Promise<GpuScore> => {
            if (g.pods === undefined) return g;
            const pods = await Promise.all(
              g.pods.map(async (p) => {
                const owner = await ownerFor(p);
                return owner === undefined ? p : { ...p, owner };
              }),
            );
            return { ...g, pods };
          }),
        );
        return { ...r, score: { ...r.score, gpus } };
      }),
    );
  }
}

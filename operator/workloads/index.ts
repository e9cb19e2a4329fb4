/** The workloads on the GPUs: finding their pods, telling them, marking them. */
import type { KubeTarget } from '../../lib/kube/raw-request.js';
import type { Logger } from '../../lib/logger.js';
import type { EventRecorder } from '../events.js';
import type { OperatorMetrics } from '../metrics.js';
import { apiNodePodLookup, apiOwnerLookup } from './node-pods.js';
import { WorkloadNotifier } from './notifier.js';
import { PodConditionMarker } from './pod-condition.js';
import { AffectedPodResolver } from './resolve.js';

export {
  apiNodePodLookup,
  apiOwnerLookup,
  indexNodePods,
  type NodePod,
  type NodePodLookup,
  type NodePods,
  type OwnerLookup,
  type OwnerRef,
} from './node-pods.js';
export { MAX_WORKLOAD_EVENTS_PER_RUN, WorkloadNotifier, workloadNote } from './notifier.js';
export { POD_GPU_HEALTHY_CONDITION, PodConditionMarker, type PodConditionOutcome } from './pod-condition.js';
export { AffectedPodResolver, MAX_NODE_LOOKUPS, resolvePod, resolveScorePods } from './resolve.js';

/** What the controllers use to reach the workloads of a finished run; shared, so a pod is told once whoever found the fault. */
export interface Workloads {
  readonly resolver: AffectedPodResolver;
  readonly notifier: WorkloadNotifier;
  readonly podConditions: PodConditionMarker;
}

/** Workloads through the API server. */
export function apiWorkloads(
  kc: KubeTarget,
  events: EventRecorder,
  metrics: OperatorMetrics,
  logger: Logger,
  apiTimeoutMs?: number,
): Workloads {
  return {
    resolver: new AffectedPodResolver(apiNodePodLookup(kc, apiTimeoutMs), logger, apiOwnerLookup(kc, apiTimeoutMs)),
    notifier: new WorkloadNotifier(events, metrics),
    podConditions: new PodConditionMarker(kc, logger),
  };
}

/**
 * The containers on a GPU as the operator keeps them: what the agent reported (pod-resources
 * entries name the pod, cgroup entries only its UID and container id), to be completed from the
 * node's pods by operator/workloads before they reach a status or an Event.
 */
import type { GpuPodReport, SnapshotGpu } from '../../agent/api/snapshot-document.js';

/** One container on a GPU. */
export interface AffectedPod {
  readonly source: GpuPodReport['source'];
  readonly namespace?: string;
  readonly name?: string;
  readonly uid?: string;
  readonly container?: string;
  /** The runtime's container id (cgroup entries): how the container's name is found. */
  readonly containerId?: string;
  /** The pod's controlling owner, once resolved from the node's pods. */
  readonly controller?: WorkloadRef;
  /** The controller's own controller, when it has one (the Deployment of a ReplicaSet, the JobSet or CronJob of a Job). */
  readonly owner?: WorkloadRef;
}

/** An object that owns pods, as an ownerReference names it. */
export interface WorkloadRef {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly uid: string;
}

/** The containers the agent listed on `gpu`, and how many it left out. */
export function podsOfGpu(gpu: SnapshotGpu): { pods: readonly AffectedPod[]; omitted: number } {
  const pods = (gpu.pods ?? []).map((p): AffectedPod =>
    p.source === 'pod-resources'
      ? { source: p.source, namespace: p.namespace, name: p.name, container: p.container }
      : { source: p.source, uid: p.uid, containerId: p.containerId },
  );
  return { pods, omitted: gpu.podsOmitted ?? 0 };
}

/**
 * Tells the workloads on a critical GPU: a Warning Event on each affected Pod and on its
 * controlling owner (Job, StatefulSet, ReplicaSet, JobSet... whatever ownerReferences names),
 * saying in plain words which GPU on which node failed, how, and what happens next. Each pod and
 * each owner hears about one fault of one GPU once: a periodic policy re-finding the same fault
 * every minute adds nothing. The memory of what was told is in-process and bounded, so after an
 * operator restart a still-critical GPU is announced once more.
 */
import { LruCache } from '../../lib/lru-cache.js';
import type { NodeResultInput } from '../diagnostic/results.js';
import type { EventRecorder, EventSubject } from '../events.js';
import { faultClassOf, type OperatorMetrics } from '../metrics.js';
import type { AffectedPod, GpuScore } from '../scoring/index.js';

/** Most pods (and as many owners) told per run; the rest are told by the next runs. */
export const MAX_WORKLOAD_EVENTS_PER_RUN = 50;
/** Pod-and-fault pairs remembered as told. */
const TOLD_REMEMBERED = 20_000;
/** How long a pair stays told: longer than any pod on a failed GPU lives, short enough to bound memory. */
const TOLD_FOR_MS = 24 * 3_600_000;

/** Finding codes after which the container's GPU is gone, not merely unreliable. */
const GPU_GONE = new Set(['GpuLost', 'GpuFellOffBus', 'GpusMissing']);

/** One container on a critical GPU that can be told: its pod's UID is known. */
interface Target {
  node: string;
  gpu: GpuScore;
  pod: AffectedPod & { namespace: string; name: string; uid: string };
  fault: string;
}

function gpuLabel(gpu: GpuScore): string {
  return gpu.uuid === undefined ? `GPU ${gpu.index}` : `${gpu.uuid} (GPU ${gpu.index})`;
}

/** The Event text: which GPU, on which node, what failed, what it means for the container, what happens next. */
export function workloadNote(node: string, gpu: GpuScore, containers: string): string {
  const fault = gpu.findings.find((f) => f.severity === 'critical') ?? gpu.findings[0];
  const what =
    fault === undefined ? 'scored critical.' : `is critical: ${/[.!?]$/.test(fault.message) ? fault.message : `${fault.message}.`}`;
  const meaning =
    fault !== undefined && GPU_GONE.has(fault.code)
      ? "Your container's GPU is gone; its work on it has failed."
      : 'Work on this GPU may fail or give wrong results; restart it on a healthy GPU.';
  return `${gpuLabel(gpu)} on node ${node}, used by ${containers}, ${what} ${meaning}`;
}

function targetsOf(results: readonly NodeResultInput[]): Target[] {
  const targets: Target[] = [];
  for (const r of results) {
    for (const gpu of r.score?.gpus ?? []) {
      if (gpu.status !== 'critical') continue;
      for (const pod of gpu.pods ?? []) {
        // A pod the operator could not find (gone, or its lookup failed) is not told.
        if (pod.namespace === undefined || pod.name === undefined || pod.uid === undefined) continue;
        targets.push({
          node: r.node,
          gpu,
          pod: { ...pod, namespace: pod.namespace, name: pod.name, uid: pod.uid },
          fault: faultClassOf(gpu),
        });
      }
    }
  }
  return targets;
}

/** Records the Warning Events of critical GPUs on their workloads, once per pod (or owner) and fault. */
export class WorkloadNotifier {
  private readonly told = new LruCache<string, true>(TOLD_REMEMBERED);

  constructor(
    private readonly events: EventRecorder,
    private readonly metrics: OperatorMetrics,
  ) {}

  /** Tells the pods on critical GPUs in `results`, and their owners, what they have not been told. */
  async notify(results: readonly NodeResultInput[], signal?: AbortSignal): Promise<void> {
    let told = 0;
    for (const t of targetsOf(results)) {
      if (told >= MAX_WORKLOAD_EVENTS_PER_RUN || signal?.aborted === true) return;
      const faultKey = `${t.node}|${t.gpu.uuid ?? t.gpu.index}|${t.fault}`;
      const podKey = `${t.pod.uid}|${faultKey}`;
      if (this.told.get(podKey) === true) continue;
      this.told.set(podKey, true, TOLD_FOR_MS);
      const container =
        t.pod.container === undefined
          ? `pod ${t.pod.namespace}/${t.pod.name}`
          : `container "${t.pod.container}" of pod ${t.pod.namespace}/${t.pod.name}`;
      const pod: EventSubject = { apiVersion: 'v1', kind: 'Pod', namespace: t.pod.namespace, name: t.pod.name, uid: t.pod.uid };
      await this.events.warning(pod, 'GPUCritical', workloadNote(t.node, t.gpu, container), signal);
      this.metrics.workloadEvents.inc({ fault: t.fault, object: 'Pod' });
      told += 1;
      // The pod's controller, and the controller's own (the Deployment of a ReplicaSet, the JobSet of a Job).
      for (const owner of [t.pod.controller, t.pod.owner]) {
        if (owner === undefined) continue;
        const ownerKey = `${owner.uid}|${faultKey}`;
        if (this.told.get(ownerKey) === true) continue;
        this.told.set(ownerKey, true, TOLD_FOR_MS);
        const subject: EventSubject = {
          apiVersion: owner.apiVersion,
          kind: owner.kind,
          namespace: t.pod.namespace,
          name: owner.name,
          uid: owner.uid,
        };
        await this.events.warning(
          subject,
          'GPUCritical',
          workloadNote(
            t.node,
            t.gpu,
            `its pod ${t.pod.namespace}/${t.pod.name}${t.pod.container === undefined ? '' : ` (container "${t.pod.container}")`}`,
          ),
          signal,
        );
        this.metrics.workloadEvents.inc({ fault: t.fault, object: 'controller' });
      }
    }
  }
}

/**
 * The opt-in `podCondition` policy action: a Pod condition `gpudiag.io/GPUHealthy` for schedulers
 * and job controllers that read conditions. False (reason: the fault's code) on pods whose GPU is
 * critical, True again once the policy sees that GPU no longer critical. Written through a
 * strategic merge patch of pods/status (merged by type into the kubelet's conditions) with the
 * pod's UID as precondition, so a new pod of the same name is never marked.
 *
 * Which pods a policy marked is remembered in-process: after an operator restart a pod marked
 * False keeps the condition until the GPU is critical again or the pod ends (a pod on a critical
 * GPU rarely outlives it).
 */
import { KubeRequestError, kubeRequest, type KubeTarget } from '../../lib/kube/raw-request.js';
import { errorFields, type Logger } from '../../lib/logger.js';
import type { NodeResultInput } from '../diagnostic/results.js';
import { faultClassOf } from '../metrics.js';
import { formatTime } from '../runtime/conditions.js';
import { workloadNote } from './notifier.js';

/** The Pod condition type. */
export const POD_GPU_HEALTHY_CONDITION = 'gpudiag.io/GPUHealthy';
/** Most pods one check marks or clears; the rest follow at the next checks. */
export const MAX_POD_CONDITION_WRITES = 100;

interface Mark {
  namespace: string;
  name: string;
  uid: string;
  reason: string;
}

/** What one check wrote. */
export interface PodConditionOutcome {
  markedFalse: number;
  markedTrue: number;
  failed: number;
}

/** Marks and clears the Pod condition of the pods on each policy's critical GPUs. */
export class PodConditionMarker {
  /** Per policy: pod UID → what was written False. */
  private readonly marked = new Map<string, Map<string, Mark>>();

  constructor(
    private readonly kc: KubeTarget,
    private readonly logger: Logger,
    private readonly now: () => Date = (): Date => new Date(),
  ) {}

  /** Pods the policy has marked False now. */
  markedBy(policy: string): number {
    return this.marked.get(policy)?.size ?? 0;
  }

  /** Brings the condition of the pods in `results` (a finished check of `policy`) up to date. */
  async apply(policy: string, results: readonly NodeResultInput[], signal: AbortSignal): Promise<PodConditionOutcome> {
    const marks = this.marked.get(policy) ?? new Map<string, Mark>();
    this.marked.set(policy, marks);
    const outcome: PodConditionOutcome = { markedFalse: 0, markedTrue: 0, failed: 0 };
    const critical = new Map<string, { mark: Mark; message: string }>();
    for (const r of results) {
      for (const gpu of r.score?.gpus ?? []) {
        if (gpu.status !== 'critical') continue;
        for (const p of gpu.pods ?? []) {
          if (p.namespace === undefined || p.name === undefined || p.uid === undefined || critical.has(p.uid)) continue;
          const container = p.container === undefined ? `pod ${p.namespace}/${p.name}` : `container "${p.container}"`;
          critical.set(p.uid, {
            mark: { namespace: p.namespace, name: p.name, uid: p.uid, reason: faultClassOf(gpu) },
            message: workloadNote(r.node, gpu, container),
          });
        }
      }
    }
    let writes = 0;
    for (const [uid, { mark, message }] of critical) {
      if (writes >= MAX_POD_CONDITION_WRITES) break;
      if (marks.get(uid)?.reason === mark.reason) continue;
      writes += 1;
      const written = await this.write(mark, 'False', mark.reason, message, signal);
      if (written === 'failed') outcome.failed += 1;
      else if (written === 'written') {
        marks.set(uid, mark);
        outcome.markedFalse += 1;
      }
    }
    for (const [uid, mark] of [...marks]) {
      if (critical.has(uid)) continue;
      if (writes >= MAX_POD_CONDITION_WRITES) break;
      writes += 1;
      const written = await this.write(mark, 'True', 'GPUHealthy', 'The GPU of this pod is no longer critical.', signal);
      if (written === 'failed') outcome.failed += 1;
      else {
        marks.delete(uid);
        if (written === 'written') outcome.markedTrue += 1;
      }
    }
    if (marks.size === 0) this.marked.delete(policy);
    return outcome;
  }

  private async write(
    mark: Mark,
    status: 'True' | 'False',
    reason: string,
    message: string,
    signal: AbortSignal,
  ): Promise<'written' | 'gone' | 'failed'> {
    try {
      await kubeRequest(this.kc, {
        method: 'PATCH',
        path: `/api/v1/namespaces/${encodeURIComponent(mark.namespace)}/pods/${encodeURIComponent(mark.name)}/status`,
        contentType: 'application/strategic-merge-patch+json',
        body: {
          metadata: { uid: mark.uid },
          status: {
            conditions: [
              {
                type: POD_GPU_HEALTHY_CONDITION,
                status,
                reason,
                message: message.slice(0, 1024),
                lastTransitionTime: formatTime(this.now()),
              },
            ],
          },
        },
        signal,
      });
      return 'written';
    } catch (err) {
      // Deleted, or replaced by a pod of the same name (the UID precondition failed).
      if (err instanceof KubeRequestError && (err.statusCode === 404 || err.statusCode === 409)) return 'gone';
      if (signal.aborted) throw err;
      this.logger.warn('could not write the pod condition', {
        pod: `${mark.namespace}/${mark.name}`,
        condition: POD_GPU_HEALTHY_CONDITION,
        ...errorFields(err),
      });
      return 'failed';
    }
  }
}

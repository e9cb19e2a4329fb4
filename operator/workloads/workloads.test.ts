import { describe, expect, it } from '@jest/globals';
import type { V1Pod } from '@kubernetes/client-node';
import type { GpuPodReport, SnapshotGpu } from '../../agent/api/snapshot-document.js';
import { createLogger } from '../../lib/logger.js';
import { buildResults, STATUS_LIMITS, summaryScore, type NodeResultInput } from '../diagnostic/results.js';
import type { EventRecorder, EventSubject } from '../events.js';
import { OperatorMetrics } from '../metrics.js';
import { worstNodes } from '../policy/compute.js';
import { BUILT_IN_POLICY, scoreNode, type AffectedPod } from '../scoring/index.js';
import { h100, lostGpu, NOW, nodeSnapshot, xidEvent } from '../scoring/test-fixtures.js';
import { indexNodePods } from './node-pods.js';
import { WorkloadNotifier } from './notifier.js';
import { AffectedPodResolver, resolvePod } from './resolve.js';

const JOB_UID = '0b7e3c6e-5f0a-4c1e-9a57-2f8d6c1e0a11';
const TRAINER_UID = '6f0c1b2a-3d4e-4f50-8a9b-0c1d2e3f4a5b';
const STATIC_UID = '0123456789abcdef0123456789abcdef';
const CONTAINER_ID = 'a'.repeat(64);

function pod(
  namespace: string,
  name: string,
  uid: string,
  extra: { owner?: boolean; containerId?: string; container?: string } = {},
): V1Pod {
  return {
    metadata: {
      namespace,
      name,
      uid,
      ...(extra.owner === true
        ? {
            ownerReferences: [
              { apiVersion: 'batch/v1', kind: 'Job', name: 'trainer', uid: JOB_UID, controller: true },
              { apiVersion: 'v1', kind: 'ConfigMap', name: 'not-a-controller', uid: 'x' },
            ],
          }
        : {}),
    },
    status: {
      phase: 'Running',
      startTime: new Date('2025-06-01T11:00:00.123Z'),
      ...(extra.containerId !== undefined
        ? {
            containerStatuses: [
              {
                name: extra.container ?? 'main',
                containerID: `containerd://${extra.containerId}`,
                image: 'x',
                imageID: 'x',
                ready: true,
                restartCount: 0,
              },
            ],
          }
        : {}),
    },
  };
}

const nodePods = indexNodePods([
  pod('ml', 'trainer-0', TRAINER_UID, { owner: true, containerId: CONTAINER_ID, container: 'pytorch' }),
  pod('kube-system', 'static-probe', STATIC_UID),
  // A pod without a UID (never from a real API server) is left out, not trusted.
  { metadata: { namespace: 'ml', name: 'half' } },
]);

describe('resolvePod', () => {
  const table: { what: string; reported: AffectedPod; expected: AffectedPod }[] = [
    {
      what: 'a pod-resources entry gets the UID and the controller',
      reported: { source: 'pod-resources', namespace: 'ml', name: 'trainer-0', container: 'pytorch' },
      expected: {
        source: 'pod-resources',
        namespace: 'ml',
        name: 'trainer-0',
        container: 'pytorch',
        uid: TRAINER_UID,
        controller: { apiVersion: 'batch/v1', kind: 'Job', name: 'trainer', uid: JOB_UID },
      },
    },
    {
      what: 'a cgroup entry gets namespace, name and container name through its container id',
      reported: { source: 'process-cgroup', uid: TRAINER_UID, containerId: CONTAINER_ID },
      expected: {
        source: 'process-cgroup',
        uid: TRAINER_UID,
        containerId: CONTAINER_ID,
        namespace: 'ml',
        name: 'trainer-0',
        container: 'pytorch',
        controller: { apiVersion: 'batch/v1', kind: 'Job', name: 'trainer', uid: JOB_UID },
      },
    },
    {
      what: 'a cgroup entry of a static pod (32-hex UID) whose container is not listed is found by UID',
      reported: { source: 'process-cgroup', uid: STATIC_UID, containerId: 'b'.repeat(64) },
      expected: { source: 'process-cgroup', uid: STATIC_UID, containerId: 'b'.repeat(64), namespace: 'kube-system', name: 'static-probe' },
    },
    {
      what: 'a container id that names another pod than the cgroup UID is not trusted',
      reported: { source: 'process-cgroup', uid: STATIC_UID, containerId: CONTAINER_ID },
      expected: { source: 'process-cgroup', uid: STATIC_UID, containerId: CONTAINER_ID, namespace: 'kube-system', name: 'static-probe' },
    },
    {
      what: 'a pod that has gone keeps what the agent reported (pod-resources)',
      reported: { source: 'pod-resources', namespace: 'ml', name: 'trainer-1', container: 'pytorch' },
      expected: { source: 'pod-resources', namespace: 'ml', name: 'trainer-1', container: 'pytorch' },
    },
    {
      what: 'a pod that has gone keeps what the agent reported (cgroup)',
      reported: { source: 'process-cgroup', uid: '99999999-3d4e-4f50-8a9b-0c1d2e3f4a5b', containerId: 'c'.repeat(64) },
      expected: { source: 'process-cgroup', uid: '99999999-3d4e-4f50-8a9b-0c1d2e3f4a5b', containerId: 'c'.repeat(64) },
    },
    {
      what: 'a pod without a UID in the list is not matched',
      reported: { source: 'pod-resources', namespace: 'ml', name: 'half', container: 'c' },
      expected: { source: 'pod-resources', namespace: 'ml', name: 'half', container: 'c' },
    },
  ];
  it.each(table)('$what', ({ reported, expected }) => {
    expect(resolvePod(reported, nodePods)).toEqual(expected);
  });

  it('indexes start times in RFC 3339 seconds and ignores non-controller owners', () => {
    expect(nodePods.byUid(TRAINER_UID)).toMatchObject({
      startTime: '2025-06-01T11:00:00Z',
      phase: 'Running',
      controller: { kind: 'Job', name: 'trainer' },
    });
    expect(nodePods.byUid(STATIC_UID)?.controller).toBeUndefined();
  });
});

const TRAINER: GpuPodReport = { source: 'pod-resources', namespace: 'ml', name: 'trainer-0', container: 'pytorch' };
const BYSTANDER: GpuPodReport = { source: 'pod-resources', namespace: 'ml', name: 'bystander', container: 'main' };

function withPods(gpu: SnapshotGpu, pods: GpuPodReport[]): SnapshotGpu {
  return { ...gpu, pods };
}

/** GPU 3 fell off the bus (XID 79) under trainer-0; bystander runs on healthy GPU 0. */
function lostGpuNode(node = 'gpu-node-1'): NodeResultInput {
  const gpus = [withPods(h100(0), [BYSTANDER]), h100(1), h100(2), withPods(lostGpu(3), [TRAINER])];
  const snapshot = { ...nodeSnapshot({ gpus, events: [xidEvent(79, {}, lostGpu(3))] }), node };
  return { node, result: 'Succeeded', score: scoreNode(snapshot, BUILT_IN_POLICY, NOW) };
}

describe('pods in the status', () => {
  it('a small diagnostic names the pods of every GPU; a large one only those of degraded and critical GPUs', () => {
    const small = buildResults([lostGpuNode()], 1).nodes?.[0];
    expect(small?.gpus?.find((g) => g.index === 3)?.pods).toEqual([
      { source: 'pod-resources', namespace: 'ml', name: 'trainer-0', container: 'pytorch' },
    ]);
    expect(small?.gpus?.find((g) => g.index === 0)?.pods).toEqual([
      { source: 'pod-resources', namespace: 'ml', name: 'bystander', container: 'main' },
    ]);
    const large = buildResults([lostGpuNode()], STATUS_LIMITS.detailedNodeLimit + 1).nodes?.[0];
    expect(large?.gpus?.map((g) => [g.index, g.pods?.length ?? 0])).toEqual([[3, 1]]);
  });

  it('at most 8 pods per GPU, the rest counted with what the agent left out', () => {
    const many = Array.from({ length: 12 }, (_, i): GpuPodReport => ({
      source: 'pod-resources',
      namespace: 'ml',
      name: `p-${i}`,
      container: 'c',
    }));
    const snapshot = { ...nodeSnapshot({ gpus: [{ ...lostGpu(0), pods: many, podsOmitted: 20 }] }), node: 'n' };
    const gpu = buildResults([{ node: 'n', result: 'Succeeded', score: scoreNode(snapshot, BUILT_IN_POLICY, NOW) }], 1).nodes?.[0]
      ?.gpus?.[0];
    expect(gpu?.pods).toHaveLength(STATUS_LIMITS.podsPerGpu);
    expect(gpu?.podsTruncated).toBe(24);
  });

  it("a policy's worst nodes name the pods of the critical GPU with their controller, not the healthy GPU's", async () => {
    const resolver = new AffectedPodResolver(async () => nodePods, createLogger({ silent: true }));
    const input = lostGpuNode();
    const summarized = { ...input, score: summaryScore(input.score as NonNullable<NodeResultInput['score']>) };
    const [resolved] = await resolver.resolve([summarized], false, AbortSignal.timeout(5000));
    expect(worstNodes([resolved as NodeResultInput]).list[0]?.affectedPods).toEqual([
      {
        gpu: lostGpu(3).uuid,
        gpuStatus: 'critical',
        namespace: 'ml',
        name: 'trainer-0',
        uid: TRAINER_UID,
        container: 'pytorch',
        source: 'pod-resources',
        controller: 'Job/trainer',
      },
    ]);
  });

  it('a failed pod lookup keeps the agent’s entries and the other nodes’ resolution', async () => {
    const resolver = new AffectedPodResolver(
      async (node) => {
        if (node === 'gpu-node-2') throw new Error('the API server said no');
        return nodePods;
      },
      createLogger({ silent: true }),
    );
    const resolved = await resolver.resolve([lostGpuNode('gpu-node-1'), lostGpuNode('gpu-node-2')], false, AbortSignal.timeout(5000));
    const podOf = (r: NodeResultInput | undefined): AffectedPod | undefined => r?.score?.gpus.find((g) => g.index === 3)?.pods?.[0];
    expect(podOf(resolved[0])?.uid).toBe(TRAINER_UID);
    expect(podOf(resolved[1])).toEqual({ source: 'pod-resources', namespace: 'ml', name: 'trainer-0', container: 'pytorch' });
  });
});

function recordingEvents(): EventRecorder & { warnings: { subject: EventSubject; reason: string; note: string }[] } {
  const warnings: { subject: EventSubject; reason: string; note: string }[] = [];
  return {
    warnings,
    normal: async () => undefined,
    warning: async (subject, reason, note) => {
      warnings.push({ subject, reason, note });
    },
  };
}

describe('WorkloadNotifier', () => {
  it('tells the pod on the critical GPU and its Job once, in plain words, and nobody else', async () => {
    const events = recordingEvents();
    const metrics = new OperatorMetrics();
    const notifier = new WorkloadNotifier(events, metrics);
    const resolver = new AffectedPodResolver(
      async () =>
        indexNodePods([
          pod('ml', 'trainer-0', TRAINER_UID, { owner: true }),
          pod('ml', 'bystander', '11111111-3d4e-4f50-8a9b-0c1d2e3f4a5b'),
        ]),
      createLogger({ silent: true }),
    );
    const results = await resolver.resolve([lostGpuNode()], true, AbortSignal.timeout(5000));
    await notifier.notify(results);
    expect(events.warnings.map((w) => [w.subject.kind, w.subject.name, w.subject.uid, w.reason])).toEqual([
      ['Pod', 'trainer-0', TRAINER_UID, 'GPUCritical'],
      ['Job', 'trainer', JOB_UID, 'GPUCritical'],
    ]);
    const [toPod, toJob] = events.warnings;
    expect(toPod?.note).toMatch(
      new RegExp(
        `^${lostGpu(3).uuid} \\(GPU 3\\) on node gpu-node-1, used by container "pytorch" of pod ml/trainer-0, is critical: ` +
          `.*Your container's GPU is gone`,
      ),
    );
    expect(toJob?.note).toContain('used by its pod ml/trainer-0 (container "pytorch")');
    // The next diagnostic finds the same fault: nothing new is said.
    await notifier.notify(await resolver.resolve([lostGpuNode()], true, AbortSignal.timeout(5000)));
    expect(events.warnings).toHaveLength(2);
    const text = await metrics.registry.getSingleMetricAsString('gpudiag_workload_events_total');
    expect(text).toMatch(/gpudiag_workload_events_total\{fault="GpuLost",object="Pod"\} 1/);
    expect(text).toMatch(/gpudiag_workload_events_total\{fault="GpuLost",object="controller"\} 1/);
  });

  it('does not tell a pod it could not find (gone, or not looked up)', async () => {
    const events = recordingEvents();
    await new WorkloadNotifier(events, new OperatorMetrics()).notify([lostGpuNode()]);
    expect(events.warnings).toEqual([]);
  });
});

describe('gpudiag_affected_pods', () => {
  it('counts containers on affected GPUs by fault class, summed over nodes, without node or pod labels', async () => {
    const metrics = new OperatorMetrics();
    for (const n of ['a', 'b']) metrics.recordNodeScore(lostGpuNode(n).score as NonNullable<NodeResultInput['score']>);
    expect(await metrics.registry.getSingleMetricAsString('gpudiag_affected_pods')).toMatch(
      /^gpudiag_affected_pods\{fault="GpuLost",gpu_status="critical"\} 2$/m,
    );
    metrics.forgetNode('a');
    expect(await metrics.registry.getSingleMetricAsString('gpudiag_affected_pods')).toMatch(
      /^gpudiag_affected_pods\{fault="GpuLost",gpu_status="critical"\} 1$/m,
    );
  });
});

describe("the controller's controller", () => {
  it('is read once per controller, and a failed read leaves the pod with its controller only', async () => {
    const calls: string[] = [];
    const resolver = new AffectedPodResolver(
      async () => nodePods,
      createLogger({ silent: true }),
      async (controller) => {
        calls.push(controller.name);
        throw new Error('forbidden');
      },
    );
    const [a, b] = await resolver.resolve([lostGpuNode('n1'), lostGpuNode('n2')], false, AbortSignal.timeout(5000));
    expect(calls).toEqual(['trainer']);
    const pod = a?.score?.gpus.find((g) => g.index === 3)?.pods?.[0];
    expect(pod?.controller?.kind).toBe('Job');
    expect(pod?.owner).toBeUndefined();
    expect(b?.score?.gpus.find((g) => g.index === 3)?.pods?.[0]?.owner).toBeUndefined();
  });

  it('names the CronJob of a Job in the status, and tells it once', async () => {
    const cron = { apiVersion: 'batch/v1', kind: 'CronJob', name: 'nightly', uid: '22222222-3d4e-4f50-8a9b-0c1d2e3f4a5b' };
    const resolver = new AffectedPodResolver(
      async () => nodePods,
      createLogger({ silent: true }),
      async () => cron,
    );
    const results = await resolver.resolve([lostGpuNode()], false, AbortSignal.timeout(5000));
    expect(buildResults(results, 1).nodes?.[0]?.gpus?.find((g) => g.index === 3)?.pods?.[0]?.controller).toBe(
      'Job/trainer of CronJob/nightly',
    );
    const events = recordingEvents();
    await new WorkloadNotifier(events, new OperatorMetrics()).notify(results);
    expect(events.warnings.map((w) => `${w.subject.kind}/${w.subject.name}`)).toEqual(['Pod/trainer-0', 'Job/trainer', 'CronJob/nightly']);
  });
});

describe('the pod reads of a run', () => {
  it('stop at the budget: a node whose pods are not read in time keeps the agent’s entries, the status is not held up', async () => {
    const resolver = new AffectedPodResolver(
      (node, signal) =>
        node === 'slow'
          ? new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true }))
          : Promise.resolve(nodePods),
      createLogger({ silent: true }),
    );
    // The caller never gives up: only the 200 ms budget can end the slow read.
    const [slow, quick] = await resolver.resolve([lostGpuNode('slow'), lostGpuNode('quick')], false, new AbortController().signal, 200);
    expect(slow?.score?.gpus.find((g) => g.index === 3)?.pods?.[0]?.uid).toBeUndefined();
    expect(quick?.score?.gpus.find((g) => g.index === 3)?.pods?.[0]?.uid).toBe(TRAINER_UID);
  });
});

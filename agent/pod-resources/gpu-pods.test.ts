import { describe, expect, it } from '@jest/globals';
import type { GpuSnapshot } from '../nvml/types.js';
import { assignPodResources, gpuOfDeviceId, MAX_PODS_PER_GPU, MAX_UNMATCHED_DEVICES, processCgroupPods, withPods } from './gpu-pods.js';
import type { PodResources } from './messages.js';

const GPU0 = 'GPU-b176d2db-6067-d821-ded0-eebe18aace84';
const GPU1 = 'GPU-2a4e7c1f-0b3d-4e5f-8a9b-c0d1e2f30415';
const MIG = 'MIG-5c7b6fd8-8b2e-5e26-9a5f-3c1d2e3f4a5b';
const uuids = new Set([GPU0, GPU1]);
const noMig = new Map<string, string>();

describe('gpuOfDeviceId', () => {
  it.each<[string, string, ReadonlyMap<string, string>, string | undefined]>([
    ['a GPU UUID', GPU0, noMig, GPU0],
    ['a time-slicing replica of a GPU', `${GPU1}::3`, noMig, GPU1],
    ['a MIG UUID whose parent is known', MIG, new Map([[MIG, GPU1]]), GPU1],
    ['a shared replica of a MIG device whose parent is known', `${MIG}::1`, new Map([[MIG, GPU1]]), GPU1],
    ['a MIG UUID whose parent is not known', MIG, noMig, undefined],
    ['a MIG UUID whose known parent is not in the snapshot', MIG, new Map([[MIG, 'GPU-00000000-0000-0000-0000-000000000000']]), undefined],
    ['a pre-R470 MIG id (names its parent)', `MIG-${GPU0}/1/0`, noMig, GPU0],
    ['a pre-R470 MIG id of a GPU not in the snapshot', 'MIG-GPU-00000000-0000-0000-0000-000000000000/1/0', noMig, undefined],
    ['a GPU the snapshot does not have (gone from NVML)', 'GPU-00000000-0000-0000-0000-000000000000', noMig, undefined],
    ["an index (the plugin's DEVICE_ID_STRATEGY=index)", '0', noMig, undefined],
    ['a UUID in other case', GPU0.toUpperCase(), noMig, undefined],
    ['an empty id', '', noMig, undefined],
  ])('%s', (_what, id, migParents, gpu) => {
    expect(gpuOfDeviceId(id, uuids, migParents)).toBe(gpu);
  });
});

const pod = (name: string, containers: PodResources['containers'], namespace = 'ml'): PodResources => ({ name, namespace, containers });
const gpuDevices = (...deviceIds: string[]): PodResources['containers'][number]['devices'][number] => ({
  resourceName: 'nvidia.com/gpu',
  deviceIds,
});

describe('assignPodResources', () => {
  it('puts each container on the GPU its device ids name, once per container and GPU', () => {
    const pods = [
      pod('trainer-0', [
        { name: 'pytorch', devices: [gpuDevices(GPU0, GPU1)] },
        { name: 'sidecar', devices: [] },
      ]),
      pod(
        'shared-a',
        [{ name: 'infer', devices: [{ resourceName: 'nvidia.com/gpu.shared', deviceIds: [`${GPU1}::0`, `${GPU1}::1`] }] }],
        'serving',
      ),
      pod('web', [{ name: 'nginx', devices: [{ resourceName: 'example.com/nic', deviceIds: [GPU0] }] }]),
    ];
    const { byGpu, unmatched, unmatchedOmitted } = assignPodResources(pods, uuids, noMig);
    expect(byGpu.get(GPU0)).toEqual([{ source: 'pod-resources', namespace: 'ml', name: 'trainer-0', container: 'pytorch' }]);
    expect(byGpu.get(GPU1)).toEqual([
      { source: 'pod-resources', namespace: 'ml', name: 'trainer-0', container: 'pytorch' },
      { source: 'pod-resources', namespace: 'serving', name: 'shared-a', container: 'infer', deviceId: `${GPU1}::0` },
    ]);
    expect([unmatched, unmatchedOmitted]).toEqual([[], 0]);
  });

  it('lists NVIDIA devices that match no GPU: unknown ids, MIG devices without a known parent, GPUs gone from NVML', () => {
    const pods = [
      pod('mig-job', [{ name: 'c', devices: [{ resourceName: 'nvidia.com/mig-1g.10gb', deviceIds: [MIG] }] }]),
      pod('old', [{ name: 'c', devices: [gpuDevices('GPU-00000000-0000-0000-0000-000000000000', '3')] }]),
    ];
    const { byGpu, unmatched } = assignPodResources(pods, uuids, noMig);
    expect(byGpu.size).toBe(0);
    expect(unmatched).toEqual([
      { namespace: 'ml', name: 'mig-job', container: 'c', resourceName: 'nvidia.com/mig-1g.10gb', deviceId: MIG },
      {
        namespace: 'ml',
        name: 'old',
        container: 'c',
        resourceName: 'nvidia.com/gpu',
        deviceId: 'GPU-00000000-0000-0000-0000-000000000000',
      },
      { namespace: 'ml', name: 'old', container: 'c', resourceName: 'nvidia.com/gpu', deviceId: '3' },
    ]);
    expect(assignPodResources(pods, uuids, new Map([[MIG, GPU0]])).byGpu.get(GPU0)).toEqual([
      { source: 'pod-resources', namespace: 'ml', name: 'mig-job', container: 'c', deviceId: MIG },
    ]);
  });

  it("a pod that has gone from the kubelet's answer is on no GPU, and no pods is an empty assignment", () => {
    expect(assignPodResources([], uuids, noMig)).toEqual({ byGpu: new Map(), unmatched: [], unmatchedOmitted: 0 });
  });

  it('bounds the unmatched list and counts the rest', () => {
    const ids = Array.from({ length: MAX_UNMATCHED_DEVICES + 5 }, (_, i) => String(i));
    const { unmatched, unmatchedOmitted } = assignPodResources([pod('p', [{ name: 'c', devices: [gpuDevices(...ids)] }])], uuids, noMig);
    expect([unmatched.length, unmatchedOmitted]).toEqual([MAX_UNMATCHED_DEVICES, 5]);
  });
});

describe('processCgroupPods', () => {
  const a = { podUid: '7c1b2f0e-3d4a-4b5c-8d9e-0f1a2b3c4d5e', containerId: 'a'.repeat(64) };
  const b = { podUid: '8d2c3f1f-4e5b-4c6d-9e0f-1a2b3c4d5e6f', containerId: 'b'.repeat(64) };

  it("groups the GPU's processes by container; processes outside pods or gone are left out", () => {
    const containers = new Map([
      [100, a],
      [101, a],
      [200, b],
    ]);
    // 300: a host process (no container); 400: ended before its cgroup was read.
    expect(processCgroupPods([{ pid: 100 }, { pid: 300 }, { pid: 200 }, { pid: 101 }, { pid: 400 }], containers)).toEqual([
      { source: 'process-cgroup', uid: a.podUid, containerId: a.containerId, pids: [100, 101] },
      { source: 'process-cgroup', uid: b.podUid, containerId: b.containerId, pids: [200] },
    ]);
  });

  it('keeps at most 16 pids per container', () => {
    const processes = Array.from({ length: 40 }, (_, i) => ({ pid: 1000 + i }));
    const [entry] = processCgroupPods(processes, new Map(processes.map((p) => [p.pid, a])));
    expect(entry?.pids).toHaveLength(16);
  });
});

describe('withPods', () => {
  const gpu: GpuSnapshot = { index: 0, lost: false, uuid: GPU0, unsupported: [], errors: [] };

  it('adds the pods to a copy, bounded, and leaves a GPU without a list as it is', () => {
    const many = Array.from({ length: MAX_PODS_PER_GPU + 3 }, (_, i) => ({
      source: 'pod-resources' as const,
      namespace: 'ml',
      name: `p-${i}`,
      container: 'c',
    }));
    const annotated = withPods(gpu, many);
    expect([annotated.pods?.length, annotated.podsOmitted]).toEqual([MAX_PODS_PER_GPU, 3]);
    expect(gpu).not.toHaveProperty('pods');
    expect(withPods(gpu, [])).toEqual({ ...gpu, pods: [] });
    expect(withPods(gpu, undefined)).toBe(gpu);
  });
});

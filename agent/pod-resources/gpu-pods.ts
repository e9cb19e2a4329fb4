/**
 * Which containers hold which GPU, as pure functions of what the agent observed: the kubelet's
 * pod-resources answer (device ids of NVIDIA resources → GPU UUIDs) and, for GPUs that no
 * device plugin allocated, NVML's processes mapped to containers through their cgroups.
 * Every list is bounded.
 */
import type {
  GpuPodReport,
  PodResourcesPodReport,
  ProcessCgroupPodReport,
  SnapshotGpu,
  UnmatchedDeviceReport,
} from '../api/snapshot-document.js';
import type { GpuSnapshot } from '../nvml/types.js';
import type { ProcessContainer } from './cgroup.js';
import { isGpuResource, type ContainerDevices, type PodResources } from './messages.js';

/** Most containers listed per GPU (the rest are counted in `podsOmitted`). */
export const MAX_PODS_PER_GPU = 32;
/** Most unmatched devices listed (the rest are counted in `unmatchedOmitted`). */
export const MAX_UNMATCHED_DEVICES = 32;
/** Most pids listed per container and GPU. */
const MAX_PIDS_PER_CONTAINER = 16;

/** Drivers before R470 named MIG devices after their parent GPU: `MIG-GPU-<uuid>/<gi>/<ci>`. */
const LEGACY_MIG_UUID = /^MIG-(GPU-[0-9A-Fa-f-]+)\/\d+\/\d+$/;

/**
 * The UUID of the GPU a device-plugin device id stands for, or undefined:
 * - a GPU UUID, or a shared replica of one (`GPU-…::2`: time-slicing and MPS add `::<replica>`);
 * - a MIG UUID whose parent `migParents` knows, or a pre-R470 MIG id that names its parent.
 */
export function gpuOfDeviceId(
  deviceId: string,
  gpuUuids: ReadonlySet<string>,
  migParents: ReadonlyMap<string, string>,
): string | undefined {
  const cut = deviceId.indexOf('::');
  const id = cut < 0 ? deviceId : deviceId.slice(0, cut);
  if (gpuUuids.has(id)) return id;
  if (!id.startsWith('MIG-')) return undefined;
  const parent = migParents.get(id) ?? LEGACY_MIG_UUID.exec(id)?.[1];
  return parent !== undefined && gpuUuids.has(parent) ? parent : undefined;
}

/** The pod-resources containers of each GPU (by UUID), and the NVIDIA devices that match none. */
export interface PodResourcesAssignment {
  byGpu: Map<string, PodResourcesPodReport[]>;
  unmatched: UnmatchedDeviceReport[];
  unmatchedOmitted: number;
}

/** Assigns every NVIDIA device the kubelet allocated to the GPU it stands for; one entry per container and GPU. */
export function assignPodResources(
  pods: readonly PodResources[],
  gpuUuids: ReadonlySet<string>,
  migParents: ReadonlyMap<string, string>,
): PodResourcesAssignment {
  const byGpu = new Map<string, PodResourcesPodReport[]>();
  const seen = new Set<string>();
  const unmatched: UnmatchedDeviceReport[] = [];
  let unmatchedOmitted = 0;
  for (const pod of pods) {
    for (const container of pod.containers) {
      for (const devices of container.devices) {
        if (!isGpuResource(devices.resourceName)) continue;
        for (const deviceId of devices.deviceIds) {
          const gpu = gpuOfDeviceId(deviceId, gpuUuids, migParents);
          if (gpu === undefined) {
            if (unmatched.length < MAX_UNMATCHED_DEVICES) {
              unmatched.push({
                namespace: pod.namespace,
                name: pod.name,
                container: container.name,
                resourceName: devices.resourceName,
                deviceId,
              });
            } else unmatchedOmitted += 1;
            continue;
          }
          // Two replicas of one GPU in one container are still one container on that GPU.
          const key = `${gpu}\u0000${pod.namespace}\u0000${pod.name}\u0000${container.name}`;
          if (seen.has(key)) continue;
          seen.add(key);
          const report: PodResourcesPodReport = {
            source: 'pod-resources',
            namespace: pod.namespace,
            name: pod.name,
            container: container.name,
          };
          if (deviceId !== gpu) report.deviceId = deviceId;
          const list = byGpu.get(gpu) ?? [];
          list.push(report);
          byGpu.set(gpu, list);
        }
      }
    }
  }
  return { byGpu, unmatched, unmatchedOmitted };
}

/** The containers of one GPU's processes, one entry per container, in the order of NVML's list. */
export function processCgroupPods(
  processes: readonly { pid: number }[],
  containers: ReadonlyMap<number, ProcessContainer>,
): ProcessCgroupPodReport[] {
  const byContainer = new Map<string, ProcessCgroupPodReport>();
  for (const { pid } of processes) {
    const container = containers.get(pid);
    if (container === undefined) continue;
    const entry = byContainer.get(container.containerId) ?? {
      source: 'process-cgroup' as const,
      uid: container.podUid,
      containerId: container.containerId,
      pids: [],
    };
    if (entry.pids.length < MAX_PIDS_PER_CONTAINER && !entry.pids.includes(pid)) entry.pids.push(pid);
    byContainer.set(container.containerId, entry);
  }
  return [...byContainer.values()];
}

/** `gpu` with its pods, bounded (a new object: collected snapshots are shared and never changed). */
export function withPods(gpu: GpuSnapshot, pods: readonly GpuPodReport[] | undefined): SnapshotGpu {
  if (pods === undefined) return gpu;
  const listed = pods.slice(0, MAX_PODS_PER_GPU);
  return { ...gpu, pods: listed, ...(pods.length > listed.length ? { podsOmitted: pods.length - listed.length } : {}) };
}

/**
 * The UUID of the one lost GPU NVML could not name, when the kubelet's allocatable devices leave
 * exactly one GPU UUID that no other GPU of the snapshot has: the device plugin advertised it
 * when the GPU was healthy, so it is that GPU's. Anything less certain (several lost GPUs,
 * several unknown ids, MIG devices) infers nothing.
 */
export function inferLostGpuUuid(
  gpus: readonly GpuSnapshot[],
  allocatable: readonly ContainerDevices[],
): { index: number; uuid: string } | undefined {
  const unnamed = gpus.filter((g) => g.lost && g.uuid === undefined);
  const [lost] = unnamed;
  if (lost === undefined || unnamed.length > 1) return undefined;
  const known = new Set(gpus.flatMap((g) => (g.uuid === undefined ? [] : [g.uuid])));
  const unknown = new Set<string>();
  for (const devices of allocatable) {
    if (!isGpuResource(devices.resourceName)) continue;
    for (const deviceId of devices.deviceIds) {
      const id = deviceId.split('::')[0] ?? deviceId;
      if (id.startsWith('GPU-') && !known.has(id)) unknown.add(id);
    }
  }
  const [uuid] = unknown;
  return uuid !== undefined && unknown.size === 1 ? { index: lost.index, uuid } : undefined;
}

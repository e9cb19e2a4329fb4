/**
 * What a GPU was before it fell off the bus. A lost GPU answers GPU_IS_LOST to every call,
 * its UUID included, yet its UUID (or its MIG devices' UUIDs) is exactly what the kubelet
 * allocated to pods and what an SRE must replace. The agent remembers the identity (UUID, name,
 * serial, PCI bus id, MIG devices) each index
 * last reported and gives it back to that index once it is lost, unless the remembered UUID is
 * now reported by another index (NVML re-enumerated) or the PCI bus id says it is another GPU.
 * Only what this agent process saw is known: an agent started after the loss knows nothing.
 */
import type { GpuSnapshot } from './types.js';

type IdentityKey = 'uuid' | 'name' | 'serial' | 'pciBusId' | 'pciBusIdKernel' | 'migDevices';
type Identity = { [K in IdentityKey]?: GpuSnapshot[K] | undefined };

/** Remembers the identity of each GPU index and restores it on lost GPUs. */
export class GpuIdentityMemory {
  private readonly byIndex = new Map<number, Identity>();

  /** `gpus` with lost GPUs' missing identity restored (the same array when nothing changes); remembers the others. */
  recall(gpus: readonly GpuSnapshot[]): readonly GpuSnapshot[] {
    const seenUuids = new Set(gpus.flatMap((g) => (g.lost || g.uuid === undefined ? [] : [g.uuid])));
    let changed = false;
    const out = gpus.map((gpu) => {
      if (!gpu.lost) {
        if (gpu.uuid !== undefined) {
          const known = this.byIndex.get(gpu.index);
          // A snapshot without the modes check does not read MIG devices: keep the ones seen before.
          const migDevices = gpu.migDevices ?? (known?.uuid === gpu.uuid ? known.migDevices : undefined);
          this.byIndex.set(gpu.index, {
            uuid: gpu.uuid,
            name: gpu.name,
            serial: gpu.serial,
            pciBusId: gpu.pciBusId,
            pciBusIdKernel: gpu.pciBusIdKernel,
            migDevices,
          });
        }
        return gpu;
      }
      const known = this.byIndex.get(gpu.index);
      if (known?.uuid === undefined || gpu.uuid !== undefined || seenUuids.has(known.uuid)) return gpu;
      if (gpu.pciBusId !== undefined && known.pciBusId !== undefined && gpu.pciBusId !== known.pciBusId) return gpu;
      changed = true;
      const restored: GpuSnapshot = { ...gpu };
      for (const key of ['uuid', 'name', 'serial', 'pciBusId', 'pciBusIdKernel'] as const) {
        const value = known[key];
        if (value !== undefined && restored[key] === undefined) restored[key] = value;
      }
      if (known.migDevices !== undefined && restored.migDevices === undefined) restored.migDevices = known.migDevices;
      return restored;
    });
    return changed ? out : gpus;
  }
}

/**
 * Builds NodeSnapshotDocuments. Concurrent requests for the same checks share one NVML
 * collection (single-flight), and a finished collection is reused for a short while, so a
 * fan-out burst from the operator never hammers NVML.
 */
import { GpuIdentityMemory } from './nvml/gpu-identities.js';
import type { NvmlSnapshotSource } from './nvml/sources.js';
import type { NvmlCheck, NvmlSnapshot } from './nvml/types.js';
import {
  SNAPSHOT_API_VERSION,
  SNAPSHOT_KIND,
  type AgentStatus,
  type DiagnosticCheck,
  type NodeSnapshotDocument,
} from './api/snapshot-document.js';
import type { AgentMetrics } from './metrics.js';
import type { GpuPodsService } from './pod-resources/gpu-pods-service.js';
import type { XidService } from './xid-service.js';

/** NVML field groups each diagnostic check needs (identity is always collected). */
export const NVML_CHECKS_FOR: Record<DiagnosticCheck, readonly NvmlCheck[]> = {
  inventory: ['memory', 'modes'],
  health: ['memory', 'temperature', 'power', 'utilization', 'clocks', 'ecc', 'retiredPages', 'remappedRows', 'pcie', 'nvlink', 'modes'],
  xid: [],
  ecc: ['ecc', 'retiredPages', 'remappedRows'],
  thermal: ['temperature', 'clocks'],
  power: ['power', 'clocks'],
  nvlink: ['nvlink'],
  pcie: ['pcie'],
  processes: ['processes'],
};

/** Dependencies of the snapshot service. */
export interface SnapshotServiceOptions {
  nodeName: string;
  /** NVML snapshots (an NVML thread, or the binding in process); undefined in no-GPU mode. */
  nvml: NvmlSnapshotSource | undefined;
  xid: XidService;
  /** The pods of each GPU; without it snapshots carry no `pods` or `podResources`. */
  pods?: GpuPodsService;
  metrics: AgentMetrics;
  cacheMs: number;
  agentStatus: () => Omit<AgentStatus, 'xidSources'>;
  now?: () => Date;
}

interface CacheEntry {
  promise: Promise<NvmlSnapshot>;
  /** When the collection finished (undefined while in flight). */
  finishedAt?: number;
}

/** Produces snapshot documents, coalescing NVML collections. */
export class SnapshotService {
  private readonly cache = new Map<string, CacheEntry>();
  private collections = 0;
  private readonly identities = new GpuIdentityMemory();

  constructor(private readonly options: SnapshotServiceOptions) {}

  /** How many NVML collections actually ran (tests prove coalescing with it). */
  get collectionCount(): number {
    return this.collections;
  }

  /** A snapshot answering `checks`, with XID events last seen at or after `xidSince`. */
  async snapshot(checks: readonly DiagnosticCheck[], xidSince: Date, signal: AbortSignal): Promise<NodeSnapshotDocument> {
    const nvmlChecks = [...new Set(checks.flatMap((c) => NVML_CHECKS_FOR[c]))].sort();
    const wantsGpus = checks.some((c) => c !== 'xid');
    const pods = wantsGpus ? this.options.pods : undefined;
    // The kubelet is asked while NVML collects.
    pods?.prefetch();
    const nvmlSnapshot = wantsGpus ? await this.collect(nvmlChecks, signal) : await this.collect(['modes'], signal);
    const gpuPods = pods === undefined || nvmlSnapshot.gpus.length === 0 ? undefined : await pods.annotate(nvmlSnapshot.gpus);
    const { events, truncated } = this.options.xid.eventsSince(xidSince.getTime());
    const reportXids = checks.includes('xid') || checks.includes('health');
    return {
      apiVersion: SNAPSHOT_API_VERSION,
      kind: SNAPSHOT_KIND,
      node: this.options.nodeName,
      collectedAt: nvmlSnapshot.collectedAt,
      checks: [...checks],
      nvml: nvmlSnapshot.nvml,
      gpus: !wantsGpus ? [] : (gpuPods?.gpus ?? nvmlSnapshot.gpus),
      ...(gpuPods !== undefined ? { podResources: gpuPods.podResources } : {}),
      ...(gpuPods?.processCgroups !== undefined ? { processCgroups: gpuPods.processCgroups } : {}),
      errors: nvmlSnapshot.errors,
      xid: {
        since: xidSince.toISOString(),
        events: reportXids ? events : [],
        truncated: reportXids ? truncated : 0,
        ...(reportXids
          ? {
              switchEvents: this.options.xid.switchEventsSince(xidSince.getTime()),
              busLoss: this.options.xid.busLossReports(),
              memoryEvents: this.options.xid.memoryEventsSince(xidSince.getTime()),
            }
          : {}),
      },
      agent: { ...this.options.agentStatus(), xidSources: this.options.xid.status() },
    };
  }

  private collect(nvmlChecks: readonly NvmlCheck[], signal: AbortSignal): Promise<NvmlSnapshot> {
    const key = nvmlChecks.join(',');
    const now = Date.now();
    const cached = this.cache.get(key);
    if (cached !== undefined && (cached.finishedAt === undefined || now - cached.finishedAt < this.options.cacheMs)) return cached.promise;
    const { nvml, metrics } = this.options;
    // The shared collection must not die with the first caller's request, so it gets no
    // caller signal; each NVML call has its own deadline in the binding.
    const promise = (async (): Promise<NvmlSnapshot> => {
      this.collections += 1;
      const timer = metrics.collectionDuration.startTimer();
      try {
        const collected =
          nvml === undefined
            ? {
                collectedAt: (this.options.now?.() ?? new Date()).toISOString(),
                nvml: { available: false as const, reason: 'NVML disabled (no-GPU mode)' },
                gpus: [],
                errors: [],
              }
            : await nvml.collect(nvmlChecks);
        // A GPU that fell off the bus keeps the UUID it had: the pods and XIDs on it are found by it.
        const gpus = this.identities.recall(collected.gpus);
        const snap = gpus === collected.gpus ? collected : { ...collected, gpus: [...gpus] };
        if (snap.nvml.available) this.options.xid.setDriverVersion(snap.nvml.driverVersion);
        for (const gpu of snap.gpus) this.options.xid.observeGpu(gpu);
        metrics.nvmlAvailable.set(snap.nvml.available ? 1 : 0);
        if (nvmlChecks.length > 1 || snap.gpus.length === 0) metrics.recordGpus(snap.gpus);
        return snap;
      } finally {
        timer();
      }
    })();
    const entry: CacheEntry = { promise };
    promise.then(
      () => {
        entry.finishedAt = Date.now();
      },
      () => this.cache.delete(key),
    );
    this.cache.set(key, entry);
    // The caller may give up early; the collection carries on for the others.
    return signal.aborted ? Promise.reject(signal.reason as Error) : entry.promise;
  }
}

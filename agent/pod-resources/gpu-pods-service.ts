/**
 * Adds the pods of each GPU to snapshots. The kubelet's List answer is fetched once per
 * `cacheMs` (single-flight, failures cached too), so a burst of snapshots costs one call and a
 * missing socket is not hammered; a failed call never fails a snapshot, it makes
 * `podResources` say "unknown" and why. The annotated GPU list is memoised per NVML collection
 * and List answer, so answers sharing both share one GPU array (and its serialised JSON).
 */
import { errorFields, type Logger } from '../../lib/logger.js';
import type {
  GpuPodReport,
  PodResourcesStatus,
  PodResourcesUnknownReason,
  ProcessCgroupsStatus,
  SnapshotGpu,
} from '../api/snapshot-document.js';
import type { GpuSnapshot } from '../nvml/types.js';
import { PodResourcesClient, PodResourcesError } from './client.js';
import { assignPodResources, inferLostGpuUuid, processCgroupPods, withPods } from './gpu-pods.js';
import type { ContainerDevices, PodResources } from './messages.js';
import { containersOfPids } from './process-containers.js';

/** Most GPU processes looked up in /proc per snapshot (64 GPUs × 256 processes could be 16k files). */
const MAX_PIDS_LOOKED_UP = 1024;

/** Options of the service. */
export interface GpuPodsServiceOptions {
  /** The kubelet's pod-resources socket; "" disables the API (the cgroup path still runs). */
  socketPath: string;
  /** Where the host's /proc is (NVML's pids are the host's); "" skips the cgroup path. */
  procRoot: string;
  /** How long one List answer (or failure) is reused. */
  cacheMs: number;
  /** Deadline of one List call. */
  deadlineMs?: number;
  logger: Logger;
}

/** The kubelet's answer, or why there is none. */
type ListOutcome = { ok: true; pods: PodResources[] } | { ok: false; reason: PodResourcesUnknownReason; message: string };

/** What a snapshot gets: its GPUs with their pods, and the status of both sources. */
export interface GpuPods {
  gpus: SnapshotGpu[];
  podResources: PodResourcesStatus;
  processCgroups?: ProcessCgroupsStatus;
}

/** Finds the pods of the GPUs of each snapshot. */
export class GpuPodsService {
  private readonly client: PodResourcesClient | undefined;
  private listing: { outcome: Promise<ListOutcome>; finishedAt?: number } | undefined;
  private allocatable: { devices: Promise<ContainerDevices[] | undefined>; finishedAt?: number } | undefined;
  private readonly memo = new WeakMap<readonly GpuSnapshot[], { outcome: ListOutcome; result: Promise<GpuPods> }>();
  private lastReason: PodResourcesUnknownReason | 'ok' | undefined;
  private calls = 0;

  constructor(private readonly options: GpuPodsServiceOptions) {
    this.client =
      options.socketPath === ''
        ? undefined
        : new PodResourcesClient({
            socketPath: options.socketPath,
            ...(options.deadlineMs !== undefined ? { deadlineMs: options.deadlineMs } : {}),
          });
  }

  /** List calls made (tests prove the cache with it). */
  get listCalls(): number {
    return this.calls;
  }

  /** Starts (or reuses) the List call; snapshots call it before NVML collects, so both run at once. */
  prefetch(): void {
    void this.list();
  }

  /** `gpus` with their pods; never rejects because of the kubelet or /proc. */
  async annotate(gpus: GpuSnapshot[]): Promise<GpuPods> {
    const outcome = await this.list();
    const memo = this.memo.get(gpus);
    if (memo !== undefined && memo.outcome === outcome) return memo.result;
    const result = this.compute(gpus, outcome);
    this.memo.set(gpus, { outcome, result });
    return result;
  }

  private async compute(collected: GpuSnapshot[], outcome: ListOutcome): Promise<GpuPods> {
    const gpus = outcome.ok ? await this.nameLostGpu(collected) : collected;
    const uuids = new Set(gpus.flatMap((g) => (g.uuid !== undefined ? [g.uuid] : [])));
    // A MIG device's UUID leads to the GPU it is part of (pre-R470 MIG ids name their parent themselves).
    const migParents = new Map(
      gpus.flatMap((g) => (g.uuid === undefined ? [] : (g.migDevices ?? []).map((d): [string, string] => [d.uuid, g.uuid as string]))),
    );
    const assignment = outcome.ok ? assignPodResources(outcome.pods, uuids, migParents) : undefined;
    const byGpu = new Map<string, GpuPodReport[]>(assignment?.byGpu ?? []);

    // GPUs that no device plugin allocated: their processes' cgroups name the containers.
    const unallocated = gpus.filter(
      (g) => this.options.procRoot !== '' && g.uuid !== undefined && !byGpu.has(g.uuid) && (g.processes?.length ?? 0) > 0,
    );
    const pids = unallocated.flatMap((g) => (g.processes ?? []).map((p) => p.pid)).slice(0, MAX_PIDS_LOOKED_UP);
    let processCgroups: ProcessCgroupsStatus | undefined;
    if (pids.length > 0) {
      const { containers, unreadable } = await containersOfPids(this.options.procRoot, pids);
      processCgroups = { looked: new Set(pids).size, inPods: containers.size, unreadable };
      for (const gpu of unallocated) {
        const pods = processCgroupPods(gpu.processes ?? [], containers);
        if (pods.length > 0) byGpu.set(gpu.uuid as string, pods);
      }
    }

    const podResources: PodResourcesStatus = !outcome.ok
      ? { status: 'unknown', reason: outcome.reason, message: outcome.message }
      : {
          status: 'ok',
          ...(assignment !== undefined && assignment.unmatched.length > 0 ? { unmatchedDevices: assignment.unmatched } : {}),
          ...(assignment !== undefined && assignment.unmatchedOmitted > 0 ? { unmatchedOmitted: assignment.unmatchedOmitted } : {}),
        };
    // With an answer, every GPU gets a list (empty: nobody holds it); without one, only those the cgroups named.
    const annotated = gpus.map((g) => withPods(g, g.uuid === undefined ? undefined : (byGpu.get(g.uuid) ?? (outcome.ok ? [] : undefined))));
    // No GPU gained pods (no kubelet answer, no cgroup match): the collected list itself, whose
    // JSON the answer reuses (snapshot-json.ts) instead of serialising a copy per collection.
    const unchanged = annotated.every((g, i) => g === gpus[i]);
    return { gpus: unchanged ? gpus : annotated, podResources, ...(processCgroups !== undefined ? { processCgroups } : {}) };
  }

  /**
   * `gpus` with the UUID of a lost GPU NVML cannot name, inferred from the kubelet's allocatable
   * devices (GetAllocatableResources) when exactly one GPU UUID there is unaccounted for.
   */
  private async nameLostGpu(gpus: GpuSnapshot[]): Promise<GpuSnapshot[]> {
    if (!gpus.some((g) => g.lost && g.uuid === undefined)) return gpus;
    const devices = await this.allocatableDevices();
    const inferred = devices === undefined ? undefined : inferLostGpuUuid(gpus, devices);
    if (inferred === undefined) return gpus;
    return gpus.map((g) => (g.index === inferred.index ? { ...g, uuid: inferred.uuid } : g));
  }

  /** The kubelet's allocatable devices, fetched once per `cacheMs`; undefined when the call fails. */
  private allocatableDevices(): Promise<ContainerDevices[] | undefined> {
    const cached = this.allocatable;
    if (cached !== undefined && (cached.finishedAt === undefined || Date.now() - cached.finishedAt < this.options.cacheMs))
      return cached.devices;
    const client = this.client;
    const devices =
      client === undefined
        ? Promise.resolve(undefined)
        : client.allocatable().catch((err: unknown) => {
            this.options.logger.debug('pod-resources GetAllocatableResources failed: a lost GPU stays unnamed', errorFields(err));
            return undefined;
          });
    const entry: { devices: Promise<ContainerDevices[] | undefined>; finishedAt?: number } = { devices };
    void devices.then(() => (entry.finishedAt = Date.now()));
    this.allocatable = entry;
    return devices;
  }

  private list(): Promise<ListOutcome> {
    const cached = this.listing;
    if (cached !== undefined && (cached.finishedAt === undefined || Date.now() - cached.finishedAt < this.options.cacheMs))
      return cached.outcome;
    const entry: { outcome: Promise<ListOutcome>; finishedAt?: number } = { outcome: this.fetch() };
    void entry.outcome.then(() => (entry.finishedAt = Date.now()));
    this.listing = entry;
    return entry.outcome;
  }

  private async fetch(): Promise<ListOutcome> {
    if (this.client === undefined)
      return { ok: false, reason: 'disabled', message: 'the pod-resources API is disabled (--pod-resources-socket "")' };
    this.calls += 1;
    let outcome: ListOutcome;
    try {
      outcome = { ok: true, pods: await this.client.list() };
    } catch (err) {
      if (!(err instanceof PodResourcesError)) {
        this.options.logger.error('pod-resources List failed unexpectedly', errorFields(err));
        outcome = { ok: false, reason: 'malformed-answer', message: 'unexpected error reading the answer (see the agent log)' };
      } else outcome = { ok: false, reason: err.reason, message: err.message };
    }
    this.logTransition(outcome);
    return outcome;
  }

  /** One log line when the API starts or stops answering, not one per snapshot. */
  private logTransition(outcome: ListOutcome): void {
    const now = outcome.ok ? 'ok' : outcome.reason;
    if (now === this.lastReason) return;
    this.lastReason = now;
    if (outcome.ok) this.options.logger.info('pod-resources API answers', { socket: this.options.socketPath, pods: outcome.pods.length });
    else
      this.options.logger.warn('pod-resources API unavailable: GPU pods are unknown', {
        socket: this.options.socketPath,
        reason: outcome.reason,
        error: outcome.message,
      });
  }
}

/** The agent's Prometheus metrics, on a Registry of its own (never the global one). */
import { Counter, Gauge, Histogram, Registry, collectProcessMetrics } from './prom-lean.js';
import type { KeyRefreshCounts } from './auth/issuer-keys.js';
import type { GpuSnapshot } from './nvml/types.js';

/** Every metric the agent exports. */
export class AgentMetrics {
  readonly registry = new Registry();
  private readonly gpuLabels = ['gpu', 'uuid'] as const;
  readonly temperature = new Gauge({
    name: 'gpudiag_agent_gpu_temperature_celsius',
    help: 'GPU core temperature.',
    labelNames: this.gpuLabels,
    registers: [this.registry],
    collect: () => this.flushGpus(),
  });
  readonly slowdownMargin = new Gauge({
    name: 'gpudiag_agent_gpu_slowdown_margin_celsius',
    help: "Degrees below the GPU's slowdown threshold.",
    labelNames: this.gpuLabels,
    registers: [this.registry],
    collect: () => this.flushGpus(),
  });
  readonly power = new Gauge({
    name: 'gpudiag_agent_gpu_power_watts',
    help: 'GPU power draw.',
    labelNames: this.gpuLabels,
    registers: [this.registry],
    collect: () => this.flushGpus(),
  });
  readonly powerLimit = new Gauge({
    name: 'gpudiag_agent_gpu_power_limit_watts',
    help: 'Enforced power limit.',
    labelNames: this.gpuLabels,
    registers: [this.registry],
    collect: () => this.flushGpus(),
  });
  readonly memoryUsed = new Gauge({
    name: 'gpudiag_agent_gpu_memory_used_bytes',
    help: 'Framebuffer memory in use.',
    labelNames: this.gpuLabels,
    registers: [this.registry],
    collect: () => this.flushGpus(),
  });
  readonly memoryTotal = new Gauge({
    name: 'gpudiag_agent_gpu_memory_total_bytes',
    help: 'Framebuffer memory size.',
    labelNames: this.gpuLabels,
    registers: [this.registry],
    collect: () => this.flushGpus(),
  });
  readonly eccVolatile = new Gauge({
    name: 'gpudiag_agent_gpu_ecc_volatile_errors',
    help: 'ECC errors since the driver loaded.',
    labelNames: [...this.gpuLabels, 'type'],
    registers: [this.registry],
    collect: () => this.flushGpus(),
  });
  readonly eccAggregate = new Gauge({
    name: 'gpudiag_agent_gpu_ecc_aggregate_errors',
    help: 'Lifetime ECC errors.',
    labelNames: [...this.gpuLabels, 'type'],
    registers: [this.registry],
    collect: () => this.flushGpus(),
  });
  readonly remappedRows = new Gauge({
    name: 'gpudiag_agent_gpu_remapped_rows',
    help: 'Rows remapped, by cause.',
    labelNames: [...this.gpuLabels, 'type'],
    registers: [this.registry],
    collect: () => this.flushGpus(),
  });
  readonly remapPending = new Gauge({
    name: 'gpudiag_agent_gpu_remap_pending',
    help: '1 when a row remap waits for a GPU reset.',
    labelNames: this.gpuLabels,
    registers: [this.registry],
    collect: () => this.flushGpus(),
  });
  readonly remapFailure = new Gauge({
    name: 'gpudiag_agent_gpu_remap_failure',
    help: '1 when a row remap failed.',
    labelNames: this.gpuLabels,
    registers: [this.registry],
    collect: () => this.flushGpus(),
  });
  readonly lost = new Gauge({
    name: 'gpudiag_agent_gpu_lost',
    help: '1 when the GPU fell off the bus (GPU_IS_LOST).',
    labelNames: this.gpuLabels,
    registers: [this.registry],
    collect: () => this.flushGpus(),
  });
  readonly gpus = new Gauge({ name: 'gpudiag_agent_gpus', help: 'GPUs NVML reports.', registers: [this.registry] });
  readonly nvmlAvailable = new Gauge({
    name: 'gpudiag_agent_nvml_available',
    help: '1 when NVML initialised; 0 in no-GPU mode.',
    registers: [this.registry],
  });
  readonly xidEvents = new Counter({
    name: 'gpudiag_agent_xid_events_total',
    help: 'XID events seen, by code and source.',
    labelNames: ['xid', 'source'],
    registers: [this.registry],
  });
  readonly collectionDuration = new Histogram({
    name: 'gpudiag_agent_collection_duration_seconds',
    help: 'Time to collect one NVML snapshot.',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  private hungCallCount: (() => number) | undefined;
  /** Read at scrape time: a hung call keeps its GPU out of snapshots until it returns, and alerts page on it. */
  readonly nvmlHungCalls: InstanceType<typeof Gauge> = new Gauge({
    name: 'gpudiag_agent_nvml_hung_calls',
    help: 'NVML calls past their deadline that have not returned (their GPU is skipped until they do).',
    registers: [this.registry],
    collect: (): void => this.nvmlHungCalls.set(this.hungCallCount?.() ?? 0),
  });
  readonly requests = new Counter({
    name: 'gpudiag_agent_http_requests_total',
    help: 'HTTP requests by path and status code.',
    labelNames: ['path', 'code'],
    registers: [this.registry],
  });
  readonly tokenVerifications = new Counter({
    name: 'gpudiag_agent_token_verifications_total',
    help: "Callers' token verifications (cached answers not counted), by method (local, tokenreview) and result (allowed, denied, error).",
    labelNames: ['method', 'result'],
    registers: [this.registry],
  });
  readonly heapTrims = new Counter({
    name: 'gpudiag_agent_heap_trims_total',
    help: 'Full collections run while the agent was idle, to give back heap a burst grew, by thread (main, nvml).',
    labelNames: ['thread'],
    registers: [this.registry],
  });
  private keyRefreshCounts: (() => Readonly<KeyRefreshCounts>) | undefined;
  private readonly keyRefreshesCounted: KeyRefreshCounts = { success: 0, failure: 0 };
  /** Read at scrape time from the key cache, which agents in one process may share (it then counts for all of them). */
  readonly jwksRefreshes: InstanceType<typeof Counter> = new Counter({
    name: 'gpudiag_agent_jwks_refreshes_total',
    help: "Fetches of the service-account issuer's keys (OIDC discovery and JWKS), by result (success, failure).",
    labelNames: ['result'],
    registers: [this.registry],
    collect: (): void => this.flushKeyRefreshes(),
  });

  /**
   * @param defaultMetrics process metrics (CPU, memory, event-loop lag). Their monitors run for
   *   the life of the process, so many agents sharing one process (the simulated fleet) skip them.
   */
  constructor(defaultMetrics = true) {
    if (defaultMetrics) collectProcessMetrics(this.registry, 'gpudiag_agent_');
  }

  /** Reports the NVML thread's hung calls from `count` at every scrape. */
  observeNvmlHungCalls(count: () => number): void {
    this.hungCallCount = count;
  }

  /** Reports the issuer key cache's fetches from `counts` at every scrape. */
  observeKeyRefreshes(counts: () => Readonly<KeyRefreshCounts>): void {
    this.keyRefreshCounts = counts;
  }

  /** Adds the fetches made since the last scrape to the counter. */
  private flushKeyRefreshes(): void {
    const counts = this.keyRefreshCounts?.();
    if (counts === undefined) return;
    for (const result of ['success', 'failure'] as const) {
      this.jwksRefreshes.inc({ result }, Math.max(0, counts[result] - this.keyRefreshesCounted[result]));
      this.keyRefreshesCounted[result] = Math.max(counts[result], this.keyRefreshesCounted[result]);
    }
  }

  /** The last collection's GPUs, not yet written into the per-GPU gauges. */
  private unrecordedGpus: readonly GpuSnapshot[] | undefined;

  /**
   * Takes the GPUs of a fresh collection for the per-GPU gauges (GPUs that vanished drop out). The
   * gauges are written when they are read (a scrape, every 15-60 s), not on every collection:
   * labelling ~120 series cost 0.1 ms, a tenth of an 8-GPU collection.
   */
  recordGpus(gpus: readonly GpuSnapshot[]): void {
    this.unrecordedGpus = gpus;
    this.gpus.set(gpus.length);
  }

  /** Writes the GPUs {@link recordGpus} took into the per-GPU gauges (each gauge's collect hook). */
  private flushGpus(): void {
    const gpus = this.unrecordedGpus;
    if (gpus === undefined) return;
    this.unrecordedGpus = undefined;
    for (const g of [
      this.temperature,
      this.slowdownMargin,
      this.power,
      this.powerLimit,
      this.memoryUsed,
      this.memoryTotal,
      this.eccVolatile,
      this.eccAggregate,
      this.remappedRows,
      this.remapPending,
      this.remapFailure,
      this.lost,
    ])
      g.reset();
    for (const gpu of gpus) {
      const l = { gpu: String(gpu.index), uuid: gpu.uuid ?? '' };
      this.lost.set(l, gpu.lost ? 1 : 0);
      const t = gpu.temperature;
      if (t?.gpuCelsius !== undefined) this.temperature.set(l, t.gpuCelsius);
      if (t?.gpuCelsius !== undefined && t.slowdownCelsius !== undefined) this.slowdownMargin.set(l, t.slowdownCelsius - t.gpuCelsius);
      if (gpu.power?.usageWatts !== undefined) this.power.set(l, gpu.power.usageWatts);
      if (gpu.power?.enforcedLimitWatts !== undefined) this.powerLimit.set(l, gpu.power.enforcedLimitWatts);
      if (gpu.memory !== undefined) {
        this.memoryUsed.set(l, gpu.memory.usedBytes);
        this.memoryTotal.set(l, gpu.memory.totalBytes);
      }
      const ecc = gpu.ecc;
      if (ecc?.volatileCorrected !== undefined) this.eccVolatile.set({ ...l, type: 'corrected' }, ecc.volatileCorrected);
      if (ecc?.volatileUncorrected !== undefined) this.eccVolatile.set({ ...l, type: 'uncorrected' }, ecc.volatileUncorrected);
      if (ecc?.aggregateCorrected !== undefined) this.eccAggregate.set({ ...l, type: 'corrected' }, ecc.aggregateCorrected);
      if (ecc?.aggregateUncorrected !== undefined) this.eccAggregate.set({ ...l, type: 'uncorrected' }, ecc.aggregateUncorrected);
      const rows = gpu.remappedRows;
      if (rows !== undefined) {
        this.remappedRows.set({ ...l, type: 'corrected' }, rows.corrected);
        this.remappedRows.set({ ...l, type: 'uncorrected' }, rows.uncorrected);
        this.remapPending.set(l, rows.pending ? 1 : 0);
        this.remapFailure.set(l, rows.failure ? 1 : 0);
      }
    }
  }
}

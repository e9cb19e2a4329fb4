/**
 * The operator's Prometheus metrics, on a Registry of its own (never the global one). Per-node
 * series are written only through recordNodeScore and countXidEvents, which remember them, so
 * forgetNode can remove every series of a Node that is gone: the series count follows the fleet.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { LruCache } from '../lib/lru-cache.js';
import type { GpuScore, NodeScore } from './scoring/index.js';

/** XID events remembered per node to count each occurrence once (the agent reports an event until it ages out). */
const XID_EVENTS_REMEMBERED_PER_NODE = 512;
/** How long an XID event is remembered after it was last reported (longer than any lookback). */
const XID_EVENT_MEMORY_MS = 31 * 24 * 3_600_000;

/** The series of one node, so they can be removed with it. */
interface NodeSeries {
  /** gpu label values of gpudiag_gpu_health_score. */
  gpus: Set<string>;
  /** `xid|severity|action` label triples of gpudiag_xid_events_total. */
  xidLabels: Set<string>;
  /** Last count counted per reported event (xid, GPU, pid, first seen). */
  counted: LruCache<string, number>;
  /** Containers on the node's degraded and critical GPUs, by `fault|gpu_status`. */
  affected: Map<string, number>;
}

/** The fault class of an affected GPU: the code of its worst finding (a bounded set of CamelCase codes). */
export function faultClassOf(gpu: GpuScore): string {
  return gpu.findings[0]?.code ?? 'LowScore';
}

/** Every metric the operator exports. */
export class OperatorMetrics {
  readonly registry = new Registry();
  readonly reconciles = new Counter({
    name: 'gpudiag_reconcile_total',
    help: 'Reconciles by controller and outcome.',
    labelNames: ['controller', 'outcome'],
    registers: [this.registry],
  });
  readonly reconcileDuration = new Histogram({
    name: 'gpudiag_reconcile_duration_seconds',
    help: 'Reconcile duration by controller.',
    labelNames: ['controller'],
    buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({
    name: 'gpudiag_workqueue_depth',
    help: 'Keys waiting in the work queue.',
    labelNames: ['controller'],
    registers: [this.registry],
  });
  readonly fanoutResults = new Counter({
    name: 'gpudiag_fanout_results_total',
    help: 'Agent requests by result.',
    labelNames: ['result'],
    registers: [this.registry],
  });
  private circuitCounts: (() => { closed: number; open: number; halfOpen: number }) | undefined;
  /** Read at scrape time from the circuit breaker shared by all diagnostics and policies. */
  readonly circuits = new Gauge({
    name: 'gpudiag_agent_circuits',
    help: 'Agent circuit breakers by state (closed, open, half-open).',
    labelNames: ['state'],
    registers: [this.registry],
    collect: () => {
      const counts = this.circuitCounts?.();
      if (counts === undefined) return;
      this.circuits.set({ state: 'closed' }, counts.closed);
      this.circuits.set({ state: 'open' }, counts.open);
      this.circuits.set({ state: 'half-open' }, counts.halfOpen);
    },
  });
  readonly nodeScore = new Gauge({
    name: 'gpudiag_node_health_score',
    help: 'Latest node health score (0-100).',
    labelNames: ['node'],
    registers: [this.registry],
  });
  readonly gpuScore = new Gauge({
    name: 'gpudiag_gpu_health_score',
    help: 'Latest GPU health score (0-100).',
    labelNames: ['node', 'gpu'],
    registers: [this.registry],
  });
  readonly xidEvents = new Counter({
    name: 'gpudiag_xid_events_total',
    help: "XID occurrences found by diagnostics and policy checks (each counted once), by node, code, severity and NVIDIA's action bucket.",
    // action (the decoded bucket: RESET_GPU, RESTART_BM, ...) is what an alert pages on; it follows from the code, so adds few series.
    labelNames: ['node', 'xid', 'severity', 'action'],
    registers: [this.registry],
  });
  /** Summed over nodes at scrape time: one series per fault class and GPU status, never per pod or node. */
  readonly affectedPods = new Gauge({
    name: 'gpudiag_affected_pods',
    help: "Containers on degraded or critical GPUs at each node's latest check, by fault class (the worst finding's code) and GPU status.",
    labelNames: ['fault', 'gpu_status'],
    registers: [this.registry],
    collect: () => {
      const totals = new Map<string, number>();
      for (const s of this.series.values()) for (const [key, n] of s.affected) totals.set(key, (totals.get(key) ?? 0) + n);
      this.affectedPods.reset();
      for (const [key, n] of totals) {
        const [fault = '', status = ''] = key.split('|');
        this.affectedPods.set({ fault, gpu_status: status }, n);
      }
    },
  });
  readonly workloadEvents = new Counter({
    name: 'gpudiag_workload_events_total',
    help: 'Warning Events recorded on pods and their controllers about a critical GPU, by fault class and object kind (Pod or controller).',
    labelNames: ['fault', 'object'],
    registers: [this.registry],
  });
  private readonly series = new Map<string, NodeSeries>();
  readonly diagnostics = new Counter({
    name: 'gpudiag_diagnostics_total',
    help: 'Finished GPUDiagnostics by phase.',
    labelNames: ['phase'],
    registers: [this.registry],
  });
  readonly leader = new Gauge({ name: 'gpudiag_leader', help: '1 while this replica leads.', registers: [this.registry] });

  /** Reports circuit states from `counts` at every scrape. */
  observeCircuits(counts: () => { closed: number; open: number; halfOpen: number }): void {
    this.circuitCounts = counts;
  }

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'gpudiag_operator_' });
  }

  /** Nodes that have series now. */
  get nodesWithSeries(): number {
    return this.series.size;
  }

  /** Sets the node's and its GPUs' scores; series of GPUs the node no longer reports are removed. */
  recordNodeScore(score: NodeScore): void {
    const node = score.node;
    const series = this.seriesOf(node);
    this.nodeScore.set({ node }, score.score);
    const gpus = new Set(score.gpus.map((g) => g.uuid ?? String(g.index)));
    for (const gpu of series.gpus) if (!gpus.has(gpu)) this.gpuScore.remove({ node, gpu });
    for (const g of score.gpus) this.gpuScore.set({ node, gpu: g.uuid ?? String(g.index) }, g.score);
    series.gpus = gpus;
    series.affected = new Map();
    for (const g of score.gpus) {
      if ((g.status !== 'critical' && g.status !== 'degraded') || g.pods === undefined) continue;
      const key = `${faultClassOf(g)}|${g.status}`;
      series.affected.set(key, (series.affected.get(key) ?? 0) + g.pods.length + (g.podsOmitted ?? 0));
    }
    this.countXidEvents(score);
  }

  /** Counts XID occurrences not counted before: a diagnostic or check re-reporting an event adds only its new occurrences. */
  private countXidEvents(score: NodeScore): void {
    const series = this.seriesOf(score.node);
    for (const e of score.xidEvents) {
      const key = `${e.xid}|${e.gpuKey}|${e.pid ?? ''}|${e.firstSeen}`;
      const before = series.counted.get(key) ?? 0;
      const labels = { node: score.node, xid: String(e.xid), severity: e.severity, action: e.immediateAction };
      if (e.count > before) this.xidEvents.inc(labels, e.count - before);
      series.counted.set(key, Math.max(before, e.count), XID_EVENT_MEMORY_MS);
      series.xidLabels.add(`${labels.xid}|${labels.severity}|${labels.action}`);
    }
  }

  /** Removes every series of a node that no longer exists. */
  forgetNode(node: string): void {
    const series = this.series.get(node);
    if (series === undefined) return;
    this.nodeScore.remove({ node });
    for (const gpu of series.gpus) this.gpuScore.remove({ node, gpu });
    for (const triple of series.xidLabels) {
      const [xid = '', severity = '', action = ''] = triple.split('|');
      this.xidEvents.remove({ node, xid, severity, action });
    }
    this.series.delete(node);
  }

  private seriesOf(node: string): NodeSeries {
    let series = this.series.get(node);
    if (series === undefined) {
      series = { gpus: new Set(), xidLabels: new Set(), counted: new LruCache(XID_EVENTS_REMEMBERED_PER_NODE), affected: new Map() };
      this.series.set(node, series);
    }
    return series;
  }
}

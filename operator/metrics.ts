/** The operator's Prometheus metrics, on a Registry of its own (never the global one). */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Every metric the operator exports. */
export class OperatorMetrics {
  readonly registry = new Registry();
  readonly reconciles = new Counter({ name: 'gpudiag_reconcile_total', help: 'Reconciles by controller and outcome.', labelNames: ['controller', 'outcome'], registers: [this.registry] });
  readonly reconcileDuration = new Histogram({
    name: 'gpudiag_reconcile_duration_seconds',
    help: 'Reconcile duration by controller.',
    labelNames: ['controller'],
    buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({ name: 'gpudiag_workqueue_depth', help: 'Keys waiting in the work queue.', labelNames: ['controller'], registers: [this.registry] });
  readonly fanoutResults = new Counter({ name: 'gpudiag_fanout_results_total', help: 'Agent requests by result.', labelNames: ['result'], registers: [this.registry] });
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
  readonly nodeScore = new Gauge({ name: 'gpudiag_node_health_score', help: 'Latest node health score (0-100).', labelNames: ['node'], registers: [this.registry] });
  readonly gpuScore = new Gauge({ name: 'gpudiag_gpu_health_score', help: 'Latest GPU health score (0-100).', labelNames: ['node', 'gpu'], registers: [this.registry] });
  readonly xidEvents = new Counter({ name: 'gpudiag_xid_events_total', help: 'XID events found by diagnostics, by node, code and severity.', labelNames: ['node', 'xid', 'severity'], registers: [this.registry] });
  readonly diagnostics = new Counter({ name: 'gpudiag_diagnostics_total', help: 'Finished GPUDiagnostics by phase.', labelNames: ['phase'], registers: [this.registry] });
  readonly leader = new Gauge({ name: 'gpudiag_leader', help: '1 while this replica leads.', registers: [this.registry] });

  /** Reports circuit states from `counts` at every scrape. */
  observeCircuits(counts: () => { closed: number; open: number; halfOpen: number }): void {
    this.circuitCounts = counts;
  }

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'gpudiag_operator_' });
  }
}

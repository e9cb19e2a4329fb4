/**
 * prom-client's metric classes and process metrics, without loading its index: the index loads
 * every default metric, and the CPU one loads @opentelemetry/api (for exemplars we do not use),
 * ~9 MiB of the agent's 60 MiB budget. The classes and the other default metrics are prom-client's
 * own modules (the package has no exports map, so its files are public paths); the three CPU
 * counters are written here, as prom-client writes them, without the exemplar hook.
 */
import { createRequire } from 'node:module';
import type * as PromClient from 'prom-client';

const load = createRequire(import.meta.url);

export const Counter = load('prom-client/lib/counter.js') as typeof PromClient.Counter;
export const Gauge = load('prom-client/lib/gauge.js') as typeof PromClient.Gauge;
export const Histogram = load('prom-client/lib/histogram.js') as typeof PromClient.Histogram;
export const Registry = load('prom-client/lib/registry.js') as typeof PromClient.Registry;
export type Registry = PromClient.Registry;

type DefaultMetric = (registry: PromClient.Registry, config: { prefix: string }) => void;

/** prom-client's default metrics, except processCpuTotal (the one that loads OpenTelemetry). */
const DEFAULT_METRICS = [
  'processStartTime',
  'osMemoryHeap',
  'processOpenFileDescriptors',
  'processMaxFileDescriptors',
  'eventLoopLag',
  'processHandles',
  'processRequests',
  'processResources',
  'heapSizeAndUsed',
  'heapSpacesSizeAndUsed',
  'version',
  'gc',
] as const;

const MICROS_PER_SECOND = 1e6;

/** process_cpu_{user,system}_seconds_total and process_cpu_seconds_total, as prom-client names them. */
function processCpuTotal(registry: PromClient.Registry, prefix: string): void {
  let last = process.cpuUsage();
  const registers = [registry];
  // The registry reads its metrics in registration order: the first counter's collect() adds,
  // to all three, what was spent since the last scrape, before the other two are read.
  const cpu = {
    user: undefined as PromClient.Counter | undefined,
    system: undefined as PromClient.Counter | undefined,
    total: undefined as PromClient.Counter | undefined,
  };
  cpu.user = new Counter({
    name: `${prefix}process_cpu_user_seconds_total`,
    help: 'Total user CPU time spent in seconds.',
    registers,
    collect() {
      const now = process.cpuUsage();
      const userSeconds = (now.user - last.user) / MICROS_PER_SECOND;
      const systemSeconds = (now.system - last.system) / MICROS_PER_SECOND;
      last = now;
      cpu.user?.inc(userSeconds);
      cpu.system?.inc(systemSeconds);
      cpu.total?.inc(userSeconds + systemSeconds);
    },
  });
  cpu.system = new Counter({
    name: `${prefix}process_cpu_system_seconds_total`,
    help: 'Total system CPU time spent in seconds.',
    registers,
  });
  cpu.total = new Counter({
    name: `${prefix}process_cpu_seconds_total`,
    help: 'Total user and system CPU time spent in seconds.',
    registers,
  });
}

/** The metrics `collectDefaultMetrics({ register, prefix })` would register, without OpenTelemetry. */
export function collectProcessMetrics(registry: PromClient.Registry, prefix: string): void {
  processCpuTotal(registry, prefix);
  for (const name of DEFAULT_METRICS) (load(`prom-client/lib/metrics/${name}.js`) as DefaultMetric)(registry, { prefix });
}

/**
 * NVML collection benchmark: one 8-GPU snapshot with every check, collected synchronously in this
 * process (what an NVML thread does), on the fake NVML library (real ABI, scenario
 * h100-sxm-8x-healthy). Prints p50/p90/p99 and NVML calls per snapshot; asserts nothing.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/nvml-collect-bench.js [--snapshots 500] [--scenario NAME]
 */
import { parseArgs } from 'node:util';
import { startFakeNvml } from '../agent/fake-nvml/harness.js';
import { NvmlBinding } from '../agent/nvml/binding.js';
import { collectSnapshot } from '../agent/nvml/collector.js';
import { percentile, round } from './support.js';

const WARMUP_SNAPSHOTS = 50;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { snapshots: { type: 'string', default: '500' }, scenario: { type: 'string', default: 'h100-sxm-8x-healthy' } },
  });
  const snapshots = Number(values.snapshots);
  const fake = await startFakeNvml(values.scenario);
  const nvml = new NvmlBinding({ libraryPath: fake.libraryPath, fallbackToSystemLibrary: false, synchronous: true });
  try {
    await nvml.init();
    for (let i = 0; i < WARMUP_SNAPSHOTS; i++) await collectSnapshot({ nvml });
    const callsBefore = fake.library.totalCalls();
    const samples: number[] = [];
    for (let i = 0; i < snapshots; i++) {
      const start = process.hrtime.bigint();
      await collectSnapshot({ nvml });
      samples.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
    const calls = (fake.library.totalCalls() - callsBefore) / snapshots;
    samples.sort((a, b) => a - b);
    const figures = {
      scenario: values.scenario,
      snapshots,
      nvmlCallsPerSnapshot: round(calls, 1),
      p50Ms: round(percentile(samples, 50), 3),
      p90Ms: round(percentile(samples, 90), 3),
      p99Ms: round(percentile(samples, 99), 3),
      usPerCall: round((percentile(samples, 50) * 1000) / Math.max(1, calls), 2),
    };
    console.log(JSON.stringify(figures, null, 2));
  } finally {
    await nvml.shutdown();
    await fake.dispose();
  }
}

await main();

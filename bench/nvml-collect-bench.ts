/**
 * NVML collection benchmark: one snapshot with every check, collected synchronously in this
 * process (what an NVML thread does). By default on the fake NVML library (real ABI, scenario
 * h100-sxm-8x-healthy); `--nvml-library PATH` times a real driver's library instead (on a GPU
 * machine: `--nvml-library libnvidia-ml.so.1`). Prints p50/p90/p99 and, on the fake, NVML calls
 * per snapshot; `--per-call` adds each NVML function's calls and time per snapshot (through the
 * binding's call guard), to see where a real driver spends it; `--per-field` times each field id
 * the agent reads (NvmlFieldId) alone in nvmlDeviceGetFieldValues on GPU 0; `--allocated` measures
 * the heap one snapshot allocates (rounds of snapshots between forced GCs, in a young generation
 * big enough that no GC runs inside a round). Asserts nothing.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/nvml-collect-bench.js [--snapshots 500] [--scenario NAME] \
 *     [--nvml-library PATH] [--per-call] [--per-field]
 *   node --expose-gc --max-semi-space-size=64 --min-semi-space-size=64 dist/bench/nvml-collect-bench.js --allocated
 */
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import { startFakeNvml, type FakeNvmlEnvironment } from '../agent/fake-nvml/harness.js';
import { NvmlBinding, NvmlFieldId, type NvmlCallGuard } from '../agent/nvml/binding.js';
import { collectSnapshot } from '../agent/nvml/collector.js';
import { percentile, round } from './support.js';

const WARMUP_SNAPSHOTS = 50;
const TOP_FUNCTIONS = 25;
const FIELD_REPEATS = 50;
const ALLOCATION_ROUNDS = 7;
const SNAPSHOTS_PER_ROUND = 40;
/** Young generation a round needs (~1 MiB per 8-GPU snapshot, with room): else a scavenge would hide some. */
const ALLOCATION_NEW_SPACE_BYTES = SNAPSHOTS_PER_ROUND * 1.5 * 1024 * 1024;

function heapUsedBytes(): number {
  return v8.getHeapSpaceStatistics().reduce((sum, space) => sum + space.space_used_size, 0);
}

/** KiB one snapshot allocates, per round of SNAPSHOTS_PER_ROUND (each round starts after two full GCs). */
async function allocatedPerSnapshot(nvml: NvmlBinding): Promise<number[]> {
  const gc = (globalThis as { gc?: () => void }).gc;
  const newSpace = v8.getHeapSpaceStatistics().find((space) => space.space_name === 'new_space')?.space_size ?? 0;
  if (gc === undefined || newSpace < ALLOCATION_NEW_SPACE_BYTES)
    throw new Error('--allocated needs node --expose-gc --max-semi-space-size=64 --min-semi-space-size=64');
  const rounds: number[] = [];
  for (let round = 0; round < ALLOCATION_ROUNDS; round++) {
    gc();
    gc();
    const before = heapUsedBytes();
    for (let i = 0; i < SNAPSHOTS_PER_ROUND; i++) await collectSnapshot({ nvml });
    rounds.push(Math.round((heapUsedBytes() - before) / SNAPSHOTS_PER_ROUND / 1024));
  }
  return rounds;
}

/** p50 of one field read alone, per field of NvmlFieldId (NVLink fields for link 0). */
async function timeFieldsAlone(nvml: NvmlBinding): Promise<Record<string, { p50Us: number; code: number }>> {
  const h = await nvml.deviceGetHandleByIndex(0);
  const out: Record<string, { p50Us: number; code: number }> = {};
  for (const [name, fieldId] of Object.entries(NvmlFieldId)) {
    const samples: number[] = [];
    let code = -1;
    for (let i = 0; i < FIELD_REPEATS; i++) {
      const start = process.hrtime.bigint();
      const [answer] = await nvml.deviceGetFieldValues(h, [{ fieldId, scopeId: 0 }]);
      samples.push(Number(process.hrtime.bigint() - start) / 1000);
      code = answer?.code ?? -1;
    }
    samples.sort((a, b) => a - b);
    out[name] = { p50Us: round(percentile(samples, 50), 1), code };
  }
  return out;
}

/** Times every native call by function name (a call guard: told before and after each one). */
class CallTimer implements NvmlCallGuard {
  readonly byFunction = new Map<string, { calls: number; ns: bigint }>();
  private started = 0n;
  enabled = false;

  before(): void {
    this.started = process.hrtime.bigint();
  }

  after(fn: string): void {
    if (!this.enabled) return;
    const entry = this.byFunction.get(fn) ?? { calls: 0, ns: 0n };
    entry.calls++;
    entry.ns += process.hrtime.bigint() - this.started;
    this.byFunction.set(fn, entry);
  }

  /** The costliest functions, per snapshot. */
  table(snapshots: number): Array<{ fn: string; callsPerSnapshot: number; usPerSnapshot: number; usPerCall: number }> {
    return [...this.byFunction.entries()]
      .map(([fn, { calls, ns }]) => ({
        fn,
        callsPerSnapshot: round(calls / snapshots, 2),
        usPerSnapshot: round(Number(ns) / 1000 / snapshots, 1),
        usPerCall: round(Number(ns) / 1000 / calls, 1),
      }))
      .sort((a, b) => b.usPerSnapshot - a.usPerSnapshot)
      .slice(0, TOP_FUNCTIONS);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      snapshots: { type: 'string', default: '500' },
      scenario: { type: 'string', default: 'h100-sxm-8x-healthy' },
      'nvml-library': { type: 'string' },
      'per-call': { type: 'boolean', default: false },
      'per-field': { type: 'boolean', default: false },
      allocated: { type: 'boolean', default: false },
    },
  });
  const snapshots = Number(values.snapshots);
  const realLibrary = values['nvml-library'];
  let fake: FakeNvmlEnvironment | undefined;
  let libraryPath: string;
  if (realLibrary === undefined) {
    fake = await startFakeNvml(values.scenario);
    libraryPath = fake.libraryPath;
  } else libraryPath = realLibrary;
  const timer = values['per-call'] ? new CallTimer() : undefined;
  const nvml = new NvmlBinding({ libraryPath, fallbackToSystemLibrary: false, synchronous: true, ...(timer ? { guard: timer } : {}) });
  try {
    await nvml.init();
    let gpus = 0;
    for (let i = 0; i < WARMUP_SNAPSHOTS; i++) gpus = (await collectSnapshot({ nvml })).gpus.length;
    const callsBefore = fake?.library.totalCalls() ?? 0;
    const samples: number[] = [];
    if (timer) timer.enabled = true;
    for (let i = 0; i < snapshots; i++) {
      const start = process.hrtime.bigint();
      await collectSnapshot({ nvml });
      samples.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
    const calls = fake === undefined ? undefined : (fake.library.totalCalls() - callsBefore) / snapshots;
    samples.sort((a, b) => a - b);
    const figures = {
      library: realLibrary ?? `fake (${values.scenario})`,
      gpus,
      snapshots,
      nvmlCallsPerSnapshot: calls === undefined ? null : round(calls, 1),
      p50Ms: round(percentile(samples, 50), 3),
      p90Ms: round(percentile(samples, 90), 3),
      p99Ms: round(percentile(samples, 99), 3),
      usPerCall: calls === undefined ? null : round((percentile(samples, 50) * 1000) / Math.max(1, calls), 2),
    };
    const perCall = timer === undefined ? {} : { perCall: timer.table(snapshots) };
    const perField = values['per-field'] && gpus > 0 ? { perFieldAlone: await timeFieldsAlone(nvml) } : {};
    const rounds = values.allocated ? await allocatedPerSnapshot(nvml) : undefined;
    const allocated =
      rounds === undefined
        ? {}
        : {
            allocatedKiBPerSnapshot: {
              median: round(
                percentile(
                  [...rounds].sort((a, b) => a - b),
                  50,
                ),
                0,
              ),
              rounds,
            },
          };
    console.log(JSON.stringify({ ...figures, ...perCall, ...perField, ...allocated }, null, 2));
  } finally {
    await nvml.shutdown();
    await fake?.dispose();
  }
}

await main();

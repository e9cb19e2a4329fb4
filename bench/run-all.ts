/**
 * Runs every benchmark, one after another, and writes one JSON summary: what each wrote to
 * bench/results/ plus the headline figures the issues name. Each benchmark is its own process
 * with its own deadline; one that fails is recorded as failed and the others still run.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/run-all.js [--quick] [--out bench/results/summary.json]
 *
 * --quick runs smaller versions (fewer requests, nodes and runs), for checking that they work.
 */
import { spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot } from '../dev/control-plane/binaries.js';
import { progress, round } from './support.js';

/** One benchmark: its script, arguments (full and quick), and the result file it writes. */
interface Step {
  name: string;
  script: string;
  args: string[];
  quickArgs: string[];
  result: string;
}

const STEPS: readonly Step[] = [
  { name: 'agent', script: 'agent-bench.js', args: [], quickArgs: ['--requests', '50', '--duration-s', '3'], result: 'agent.json' },
  {
    name: 'parser',
    script: 'parser-bench.js',
    args: [],
    quickArgs: ['--lines', '100000', '--runs', '1', '--cli-runs', '1'],
    result: 'parser.json',
  },
  {
    name: 'operator-scale',
    script: 'operator-scale-bench.js',
    args: [],
    quickArgs: ['--nodes', '100,1000', '--runs', '2', '--policy-nodes', '1000', '--policy-minutes', '2'],
    result: 'operator-scale.json',
  },
  {
    name: 'mcp',
    script: 'mcp-bench.js',
    args: ['--agent-cache-ms', '3600000'],
    quickArgs: ['--agent-cache-ms', '3600000', '--calls-one', '10', '--calls-all', '3'],
    result: 'mcp.json',
  },
];

/** Runs one script to its end; resolves with its exit code (stdout and stderr pass through). */
function runScript(script: string, args: readonly string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(repoRoot, 'dist', 'bench', script), ...args], { stdio: 'inherit' });
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve(code ?? (signal === null ? 1 : 128)));
  });
}

type Json = Record<string, unknown>;

function isRecord(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The figures the issues name, read from each benchmark's own JSON (absent ones are left out). */
function headline(name: string, result: Json): Json {
  if (name === 'operator-scale' && Array.isArray(result['sizes'])) {
    return Object.fromEntries(
      result['sizes'].filter(isRecord).map((size) => {
        const runs = (Array.isArray(size['runs']) ? size['runs'] : []).filter(isRecord);
        const max = (field: string): number => Math.max(...runs.map((r) => Number(r[field])));
        return [
          `nodes${String(size['nodes'])}`,
          {
            coldCreateToReadyMs: size['coldCreateToReadyMs'],
            warmCreateToReadyP50Ms: size['warmCreateToReadyP50Ms'],
            operatorRssPeakMiB: max('operatorRssPeakMiB'),
            eventLoopLagMaxMs: max('eventLoopLagMaxMs'),
            operatorApiRequestsMax: Math.max(...runs.map((r) => Number((r['apiRequests'] as Json | undefined)?.['operator']))),
            ...(size['policy'] !== undefined ? { policy: size['policy'] } : {}),
          },
        ];
      }),
    );
  }
  if (name === 'mcp' && Array.isArray(result['series'])) {
    return Object.fromEntries(
      result['series'].filter(isRecord).map((s) => [String(s['name']), isRecord(s['stats']) ? s['stats']['p50Ms'] : undefined]),
    );
  }
  return {};
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      out: { type: 'string', default: path.join('bench', 'results', 'summary.json') },
    },
  });
  const started = Date.now();
  const benchmarks: Json = {};
  for (const step of STEPS) {
    progress(`=== ${step.name} ===`);
    const t0 = Date.now();
    const code = await runScript(step.script, values.quick ? step.quickArgs : step.args);
    const entry: Json = { exitCode: code, seconds: round((Date.now() - t0) / 1000, 1) };
    if (code === 0) {
      const result = JSON.parse(await readFile(path.join(repoRoot, 'bench', 'results', step.result), 'utf8')) as Json;
      entry['headline'] = headline(step.name, result);
      entry['result'] = result;
    }
    benchmarks[step.name] = entry;
  }
  const summary = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    quick: values.quick,
    seconds: round((Date.now() - started) / 1000, 1),
    benchmarks,
  };
  const outFile = path.resolve(repoRoot, values.out ?? path.join('bench', 'results', 'summary.json'));
  await mkdir(path.dirname(outFile), { recursive: true });
  await writeFile(outFile, `${JSON.stringify(summary, null, 2)}\n`);
  const failed = Object.entries(benchmarks).filter(([, e]) => isRecord(e) && e['exitCode'] !== 0);
  process.stdout.write(
    `${JSON.stringify(Object.fromEntries(Object.entries(benchmarks).map(([k, e]) => [k, isRecord(e) ? e['headline'] : e])), null, 2)}\n` +
      `written: ${path.relative(process.cwd(), outFile)}${failed.length > 0 ? `; failed: ${failed.map(([k]) => k).join(', ')}` : ''}\n`,
  );
  process.exitCode = failed.length > 0 ? 1 : 0;
}

main().catch((err: unknown) => {
  process.stderr.write(`run-all failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});

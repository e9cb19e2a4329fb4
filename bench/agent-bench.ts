/**
 * Agent benchmark: snapshot latency, throughput under 64 concurrent clients and RSS, on the
 * fake NVML library (real ABI, scenario h100-sxm-8x-healthy: 8 GPUs), or on a real driver's
 * library with `--nvml-library PATH` (a GPU machine). Loopback only, bounded in time, stops by
 * itself. Prints figures and writes bench/results/agent.json; asserts nothing.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/agent-bench.js [--requests 300] [--duration-s 10] [--clients 64] [--nvml-library PATH]
 *
 * Clients hold keep-alive connections (node:http). (a) and (b) run the agent in this process
 * (Agent.start), so client and server share one event loop; (c) runs `gpudiag agent` as a
 * separate process (cache 0 and 2000 ms) and samples its VmRSS.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Agent } from '../agent/agent.js';
import type { AgentConfig } from '../agent/config.js';
import { startFakeNvml, type FakeNvmlEnvironment } from '../agent/fake-nvml/harness.js';
import { FAKE_NVML_STATE_ENV } from '../agent/fake-nvml/scenario.js';
import { createLogger } from '../lib/logger.js';
import { freePort, percentile, round, sleep } from './support.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const SCENARIO = 'h100-sxm-8x-healthy';
const DEFAULT_CACHE_MS = 2000;
/** The whole run is killed after this, whatever happens. */
const HARD_DEADLINE_MS = 5 * 60_000;
const RSS_SAMPLE_MS = 100;
const IDLE_SETTLE_MS = 3000;
const AFTER_SETTLE_MS = 3000;
const WARMUP_REQUESTS = 20;
const REQUEST_TIMEOUT_MS = 10_000;

/** The NVML library the agents load, and what their environment needs for it. */
interface NvmlUnderTest {
  libraryPath: string;
  env: Record<string, string>;
  label: string;
}

function nvmlUnderTest(fake: FakeNvmlEnvironment | undefined, realLibrary: string | undefined): NvmlUnderTest {
  if (fake !== undefined)
    return {
      libraryPath: fake.libraryPath,
      env: { [FAKE_NVML_STATE_ENV]: fake.controller.stateFile },
      label: `${SCENARIO} (8 GPUs, fake NVML)`,
    };
  const libraryPath = realLibrary ?? 'libnvidia-ml.so.1';
  return { libraryPath, env: {}, label: `real NVML (${libraryPath})` };
}

/** The agent child process, killed on the hard deadline too. */
let agentChild: ChildProcess | undefined;

interface LatencyStats {
  requests: number;
  errors: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
}

interface LoadResult {
  clients: number;
  durationS: number;
  requests: number;
  errors: number;
  snapshotsPerS: number;
  collections: number;
  latency: LatencyStats;
}

function stats(samples: readonly number[], errors: number): LatencyStats {
  const sorted = [...samples].sort((a, b) => a - b);
  const mean = sorted.reduce((s, v) => s + v, 0) / Math.max(1, sorted.length);
  return {
    requests: samples.length + errors,
    errors,
    p50Ms: round(percentile(sorted, 50), 2),
    p90Ms: round(percentile(sorted, 90), 2),
    p99Ms: round(percentile(sorted, 99), 2),
    maxMs: round(sorted[sorted.length - 1] ?? NaN, 2),
    meanMs: round(mean, 2),
  };
}

/**
 * Keep-alive connections, as a polling client (the operator) holds them. `fetch` per request
 * cost the client more CPU than the agent spent answering, on the same two cores.
 */
const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 256 });

/** One GET /v1/snapshot; resolves with the latency in ms and the body size, or throws. */
function getSnapshot(url: string): Promise<{ ms: number; bytes: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.get(`${url}/v1/snapshot?checks=health,xid`, { agent: keepAlive, timeout: REQUEST_TIMEOUT_MS }, (res) => {
      let bytes = 0;
      res.on('data', (chunk: Buffer) => (bytes += chunk.length));
      res.on('error', reject);
      res.on('end', () =>
        res.statusCode === 200 ? resolve({ ms: performance.now() - started, bytes }) : reject(new Error(`HTTP ${String(res.statusCode)}`)),
      );
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)));
    req.on('error', reject);
  });
}

async function sequential(
  url: string,
  requests: number,
  collections: () => number,
): Promise<LatencyStats & { bodyBytes: number; collections: number }> {
  for (let i = 0; i < WARMUP_REQUESTS; i += 1) await getSnapshot(url);
  const before = collections();
  const samples: number[] = [];
  let errors = 0;
  let bodyBytes = 0;
  for (let i = 0; i < requests; i += 1) {
    try {
      const r = await getSnapshot(url);
      samples.push(r.ms);
      bodyBytes = r.bytes;
    } catch {
      errors += 1;
    }
  }
  return { ...stats(samples, errors), bodyBytes, collections: collections() - before };
}

async function load(url: string, clients: number, durationMs: number, collections: () => Promise<number>): Promise<LoadResult> {
  const before = await collections();
  const samples: number[] = [];
  let errors = 0;
  const started = performance.now();
  const end = started + durationMs;
  const worker = async (): Promise<void> => {
    while (performance.now() < end) {
      try {
        samples.push((await getSnapshot(url)).ms);
      } catch {
        errors += 1;
      }
    }
  };
  await Promise.all(Array.from({ length: clients }, worker));
  const elapsedS = (performance.now() - started) / 1000;
  return {
    clients,
    durationS: round(elapsedS, 2),
    requests: samples.length + errors,
    errors,
    snapshotsPerS: round(samples.length / elapsedS, 1),
    collections: (await collections()) - before,
    latency: stats(samples, errors),
  };
}

async function inProcessAgent(nvml: NvmlUnderTest, kmsgPath: string, snapshotCacheMs: number): Promise<Agent> {
  const config: AgentConfig = {
    nodeName: 'bench-node',
    // No kubelet here, and the scenarios' pids are not this machine's processes.
    podResourcesSocket: '',
    procRoot: '',
    listenHost: '127.0.0.1',
    listenPort: 0,
    auth: 'none',
    allowedCallers: [],
    tokenAudience: 'gpudiag-agent',
    nvmlLibraryPath: nvml.libraryPath,
    nvmlNoFallback: true,
    nvmlCallTimeoutMs: 2000,
    nvmlThreads: true,
    nvmlEvents: true,
    kmsgPath,
    kmsgPollMs: 500,
    snapshotCacheMs,
    requestTimeoutMs: 30_000,
    shutdownGraceMs: 5_000,
    logLevel: 'error',
  };
  return Agent.start(config, { logger: createLogger({ silent: true }) });
}

async function rssKiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (m === null) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]);
}

async function waitReady(url: string, child: ChildProcess, stderr: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`agent exited with ${child.exitCode}: ${stderr()}`);
    try {
      const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch (err) {
      // Not listening yet; the last failure is reported if it never comes up.
      lastError = err;
    }
    await sleep(100);
  }
  throw new Error(`agent not ready within 30 s (last: ${String(lastError)}): ${stderr()}`);
}

async function collectionsFromMetrics(url: string): Promise<number> {
  const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  const text = await res.text();
  const m = /^gpudiag_agent_collection_duration_seconds_count (\d+)/m.exec(text);
  return m === null ? NaN : Number(m[1]);
}

/** Runs `gpudiag agent` as a child process and measures RSS idle, under load and after. */
async function separateProcess(
  nvml: NvmlUnderTest,
  kmsgPath: string,
  clients: number,
  durationMs: number,
  cacheMs: number,
  nodeFlags: readonly string[],
): Promise<Record<string, unknown>> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const args = [
    ...nodeFlags,
    path.join(REPO_ROOT, 'bin', 'gpudiag.js'),
    'agent',
    '--node-name',
    'bench-node',
    '--listen',
    `127.0.0.1:${port}`,
    '--auth',
    'none',
    '--nvml-library',
    nvml.libraryPath,
    '--nvml-no-fallback',
    '--kmsg-path',
    kmsgPath,
    '--snapshot-cache-ms',
    String(cacheMs),
  ];
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ...nvml.env },
    // info-level JSON logs (one line per snapshot) go nowhere, as they would to a log shipper
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderrTail = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderrTail = (stderrTail + chunk.toString()).slice(-4000)));
  agentChild = child;
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not spawn the agent');
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    const spawnedAt = performance.now();
    await waitReady(url, child, () => stderrTail);
    const readyMs = performance.now() - spawnedAt;
    await sleep(IDLE_SETTLE_MS);
    const idleKiB = await rssKiB(pid);

    let maxKiB = 0;
    const sampler = setInterval(() => {
      rssKiB(pid).then(
        (kib) => (maxKiB = Math.max(maxKiB, kib)),
        () => undefined,
      );
    }, RSS_SAMPLE_MS);
    let result: LoadResult;
    try {
      result = await load(url, clients, durationMs, () => collectionsFromMetrics(url));
    } finally {
      clearInterval(sampler);
    }
    maxKiB = Math.max(maxKiB, await rssKiB(pid));
    await sleep(AFTER_SETTLE_MS);
    const afterKiB = await rssKiB(pid);

    const stopStarted = performance.now();
    child.kill('SIGTERM');
    const code = await Promise.race([exited, sleep(10_000).then(() => 'timeout' as const)]);
    const stopMs = performance.now() - stopStarted;
    return {
      snapshotCacheMs: cacheMs,
      startToReadyMs: round(readyMs, 0),
      rssIdleMiB: round(idleKiB / 1024, 1),
      rssLoadMaxMiB: round(maxKiB / 1024, 1),
      rssAfterMiB: round(afterKiB / 1024, 1),
      load: result,
      sigtermExitCode: code,
      sigtermToExitMs: round(stopMs, 0),
    };
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  }
}

/** The Node flags Dockerfile.agent's ENTRYPOINT gives (between `node` and the script), so the process runs as in the image. */
async function imageNodeFlags(): Promise<string[]> {
  const dockerfile = await readFile(path.join(REPO_ROOT, 'Dockerfile.agent'), 'utf8');
  const line = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(dockerfile)?.[1];
  const argv = line === undefined ? undefined : (JSON.parse(line) as unknown);
  if (!Array.isArray(argv) || argv[0] !== 'node') throw new Error('Dockerfile.agent: no ENTRYPOINT ["node", …] found');
  const script = argv.indexOf('bin/gpudiag.js');
  return argv.slice(1, script < 0 ? undefined : script).map(String);
}

function row(cells: (string | number)[], widths: number[]): string {
  return cells.map((c, i) => (i === 0 ? String(c).padEnd(widths[i] ?? 0) : String(c).padStart(widths[i] ?? 0))).join('  ');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      requests: { type: 'string', default: '300' },
      'duration-s': { type: 'string', default: '10' },
      clients: { type: 'string', default: '64' },
      // Node flags of the separate agent process; by default those of the agent image's ENTRYPOINT
      'agent-node-flags': { type: 'string' },
      // a real driver's libnvidia-ml.so.1 instead of the fake
      'nvml-library': { type: 'string' },
    },
  });
  const agentNodeFlags =
    values['agent-node-flags'] === undefined ? await imageNodeFlags() : values['agent-node-flags'].split(' ').filter((f) => f !== '');
  const requests = Number(values.requests);
  const durationMs = Number(values['duration-s']) * 1000;
  const clients = Number(values.clients);
  if (![requests, durationMs, clients].every((n) => Number.isInteger(n) && n > 0))
    throw new Error('--requests, --duration-s and --clients must be positive integers');

  const dir = await mkdtemp(path.join(os.tmpdir(), 'gpudiag-bench-'));
  const kmsgPath = path.join(dir, 'kmsg');
  // a few real XID lines, so snapshots carry XID events as on a troubled node
  await copyFile(path.join(REPO_ROOT, 'test', 'fixtures', 'xid', 'sample-dmesg.log'), kmsgPath);
  const fake = values['nvml-library'] === undefined ? await startFakeNvml(SCENARIO) : undefined;
  const nvml = nvmlUnderTest(fake, values['nvml-library']);
  const out: Record<string, unknown> = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    loadAverage1mAtStart: round(os.loadavg()[0] ?? NaN, 2),
    nvml: nvml.label,
    agentNodeFlags,
    query: 'checks=health,xid',
  };
  try {
    const inProcess: Record<string, unknown> = {};
    for (const cacheMs of [0, DEFAULT_CACHE_MS]) {
      const agent = await inProcessAgent(nvml, kmsgPath, cacheMs);
      try {
        const url = `http://127.0.0.1:${agent.address.port}`;
        process.stderr.write(`in-process agent, cache ${cacheMs} ms: ${requests} sequential requests...\n`);
        const seq = await sequential(url, requests, () => agent.snapshots.collectionCount);
        process.stderr.write(`in-process agent, cache ${cacheMs} ms: ${clients} clients for ${durationMs / 1000} s...\n`);
        const conc = await load(url, clients, durationMs, () => Promise.resolve(agent.snapshots.collectionCount));
        inProcess[`cache${cacheMs}ms`] = { snapshotCacheMs: cacheMs, sequential: seq, concurrent: conc };
      } finally {
        await agent.stop();
      }
    }
    out['inProcess'] = inProcess;

    process.stderr.write(`separate process (cache 0 ms): idle, ${clients} clients for ${durationMs / 1000} s, after...\n`);
    out['separateProcess'] = await separateProcess(nvml, kmsgPath, clients, durationMs, 0, agentNodeFlags);
    process.stderr.write(`separate process (cache ${DEFAULT_CACHE_MS} ms): ${clients} clients for ${durationMs / 1000} s...\n`);
    out['separateProcessCached'] = await separateProcess(nvml, kmsgPath, clients, durationMs, DEFAULT_CACHE_MS, agentNodeFlags);
  } finally {
    await fake?.dispose();
    await rm(dir, { recursive: true, force: true });
  }

  const resultsDir = path.join(REPO_ROOT, 'bench', 'results');
  await mkdir(resultsDir, { recursive: true });
  await writeFile(path.join(resultsDir, 'agent.json'), `${JSON.stringify(out, null, 2)}\n`);

  const ip = out['inProcess'] as Record<
    string,
    { sequential: LatencyStats & { bodyBytes: number; collections: number }; concurrent: LoadResult }
  >;
  const sp = out['separateProcess'] as {
    rssIdleMiB: number;
    rssLoadMaxMiB: number;
    rssAfterMiB: number;
    load: LoadResult;
    startToReadyMs: number;
    sigtermExitCode: unknown;
    sigtermToExitMs: number;
  };
  const w = [38, 8, 8, 8, 8, 10, 11, 11];
  const lines = [
    `gpudiag agent benchmark — ${nvml.label}, ${out['cpus']} CPUs, node ${process.version}`,
    `agent process flags: ${agentNodeFlags.length === 0 ? '(none)' : agentNodeFlags.join(' ')}`,
    '',
    row(['latency (ms), GET /v1/snapshot', 'p50', 'p90', 'p99', 'max', 'errors', 'snaps/s', 'collections'], w),
  ];
  for (const [label, key] of [
    ['in-process, cache 0 ms', 'cache0ms'],
    ['in-process, cache 2000 ms', `cache${DEFAULT_CACHE_MS}ms`],
  ] as const) {
    const r = ip[key];
    if (r === undefined) continue;
    const s = r.sequential;
    lines.push(row([`${label}, sequential`, s.p50Ms, s.p90Ms, s.p99Ms, s.maxMs, s.errors, round(1000 / s.meanMs, 1), s.collections], w));
    const c = r.concurrent;
    lines.push(
      row(
        [
          `${label}, ${c.clients} clients`,
          c.latency.p50Ms,
          c.latency.p90Ms,
          c.latency.p99Ms,
          c.latency.maxMs,
          c.errors,
          c.snapshotsPerS,
          c.collections,
        ],
        w,
      ),
    );
  }
  const spc = out['separateProcessCached'] as typeof sp;
  for (const [label, l] of [
    [`process, cache 0 ms`, sp.load],
    [`process, cache ${DEFAULT_CACHE_MS} ms`, spc.load],
  ] as const) {
    lines.push(
      row(
        [
          `${label}, ${l.clients} clients`,
          l.latency.p50Ms,
          l.latency.p90Ms,
          l.latency.p99Ms,
          l.latency.maxMs,
          l.errors,
          l.snapshotsPerS,
          l.collections,
        ],
        w,
      ),
    );
  }
  lines.push(
    '',
    `snapshot body: ${ip['cache0ms']?.sequential.bodyBytes ?? '?'} bytes`,
    `agent process RSS (cache 0 ms): idle ${sp.rssIdleMiB} MiB, under load max ${sp.rssLoadMaxMiB} MiB, ` +
      `${AFTER_SETTLE_MS / 1000} s after ${sp.rssAfterMiB} MiB`,
    `agent process RSS (cache ${DEFAULT_CACHE_MS} ms): idle ${spc.rssIdleMiB} MiB, under load max ${spc.rssLoadMaxMiB} MiB, ` +
      `${AFTER_SETTLE_MS / 1000} s after ${spc.rssAfterMiB} MiB`,
    `agent process: spawn→ready ${sp.startToReadyMs} ms, SIGTERM→exit ${sp.sigtermToExitMs} ms (exit code ` +
      `${String(sp.sigtermExitCode)})`,
    `written: ${path.relative(process.cwd(), path.join(resultsDir, 'agent.json'))}`,
  );
  process.stdout.write(`${lines.join('\n')}\n`);
}

const deadline = setTimeout(() => {
  process.stderr.write(`agent-bench: gave up after ${HARD_DEADLINE_MS / 1000} s\n`);
  if (agentChild !== undefined && agentChild.exitCode === null) agentChild.kill('SIGKILL');
  process.exit(1);
}, HARD_DEADLINE_MS);
deadline.unref();

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`agent-bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);

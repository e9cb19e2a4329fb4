/**
 * Operator benchmark: time from creating a GPUDiagnostic to Ready=True, the operator's memory,
 * and the API requests one diagnostic costs, for fleets of 1, 100 and 1,000 simulated nodes × 8
 * GPUs. Loopback only, bounded in time (hard deadline), stops everything it started. Prints
 * figures and writes bench/results/operator.json; asserts nothing.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/operator-bench.js [--nodes 1,100,1000] [--faulty-every 50]
 *     [--cold-max 100] [--no-in-process] [--private-libraries] [--deadline-s 1800] [--out bench/results/operator.json]
 *
 * Each fleet size gets a fresh environment, so every figure is that of a cluster of N GPU nodes
 * (the operator's caches hold N Nodes and N agent Pods, not 1,000):
 *   a real etcd + kube-apiserver, the CRDs and config/rbac/, a simulated fleet of N nodes whose
 *   agents run in this process (one HTTP server per node on its own 127.1.x.y address, shared
 *   fake NVML library per scenario) and verify callers with TokenReview, as in-cluster agents do.
 * Then, in that environment, diagnostics over every node:
 *   1. Only for N ≤ --cold-max (100): `gpudiag operator` as a separate process (its own
 *      ServiceAccount kubeconfig and projected token file, exactly the permissions of
 *      config/rbac/operator.yaml), agents cold: each collects its 8 GPUs from the fake NVML during
 *      the diagnostic. Then the token is rotated, so every agent runs its TokenReview again.
 *      (Cold, 1,000 agents in one process collect 8,000 GPUs on the same cores and event loop,
 *      where real nodes collect in parallel: that measures the simulation, not the operator.)
 *   2. The agents pre-collect their snapshot in-process (8 at a time; the time is reported), then
 *      the same operator process runs a diagnostic with agents warm: the operator, real HTTP,
 *      TokenReview and the API server. The operator's RSS and CPU come from /proc/<pid>.
 *   3. The operator in this process (as `gpudiag dev up` runs it), agents warm, a fresh token.
 * API requests are the kube-apiserver's `apiserver_request_total` before and after, by verb and
 * resource (the metric has no user label; what the operator, the agents and the API server's own
 * loops did is told apart by resource).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CustomObjectsApi, EventsV1Api, type KubeConfig } from '@kubernetes/client-node';
import { tokenVerifier } from '../agent/auth/token-verifier.js';
import { GPU_DIAGNOSTICS, type GPUDiagnostic } from '../api/index.js';
import { repoRoot } from '../dev/control-plane/binaries.js';
import { ControlPlane, freePort, kubeConfigForToken } from '../dev/control-plane/control-plane.js';
import { startOrphanWatchdog, startProcess, type ManagedProcess } from '../dev/control-plane/processes.js';
import { SimulatedFleet, type FleetNodeSpec } from '../dev/fleet/simulated-fleet.js';
import { createLogger, type Logger } from '../lib/logger.js';
import { parseOperatorConfig } from '../operator/config.js';
import { Operator } from '../operator/operator.js';
import {
  AGENT_AUDIENCE,
  AGENT_NAMESPACE,
  DIAGNOSTIC_NAMESPACE,
  FAULTY_SCENARIOS,
  HEALTHY_SCENARIO,
  apiDelta,
  counterByLabel,
  metricsText,
  sampleProcess,
  subtract,
  waitLeading,
  startBenchCluster,
  watchUntilReady,
  type ApiDelta,
} from './operator-support.js';
import { apiRequestCounts, progress, round, sleep } from './support.js';

const FANOUT_CONCURRENCY = 256;
/**
 * What every benchmark diagnostic asks. The per-node deadline is raised from 20 s because the
 * simulated fleet runs all N agents in one process on the same cores: cold, 1,000 agents collect
 * 8,000 GPUs one after another, where real nodes would each collect in parallel.
 */
const DIAGNOSTIC_SPEC = { checks: ['health', 'xid'] as const, timeoutSeconds: 300, perNodeTimeoutSeconds: 120 };
/** Agents reuse their snapshot this long, so the runs after the first find it collected ("warm"). */
const AGENT_SNAPSHOT_CACHE_MS = 30 * 60_000;
/** The operator re-reads its token file at most every 10 s (operator/agent-token.ts). */
const TOKEN_RECHECK_WAIT_MS = 11_000;
/** Agents collecting at once while the fleet is pre-warmed. */
const PREWARM_CONCURRENCY = 8;
/** The whole run is killed after this, whatever happens (override with --deadline-s). */
const DEFAULT_DEADLINE_S = 30 * 60;
/** One diagnostic must reach Ready within this. */
const DIAGNOSTIC_TIMEOUT_MS = 5 * 60_000;
const RSS_SAMPLE_MS = 100;
/** After Ready: time for the Completed/CriticalGPU Events before the "after" scrape. */
const SETTLE_AFTER_READY_MS = 2_000;
const IDLE_SETTLE_MS = 3_000;
const CPU_IDLE_WINDOW_MS = 5_000;

/** Everything started, for the hard deadline and for cleanup. */
const running: { operatorProcess?: ManagedProcess } = {};

/** Where the operator ran, and whether the agents had to collect from NVML during the diagnostic. */
interface RunMode {
  operator: 'process' | 'in-process';
  agents: 'cold' | 'warm';
}

interface DiagnosticRun {
  operator: RunMode['operator'];
  agents: RunMode['agents'];
  nodes: number;
  createToReadyMs: number;
  createToRunningMs: number | null;
  nodesPerS: number;
  phase: string;
  nodesSucceeded: number;
  nodesByStatus: Record<string, number>;
  healthy: { status: string; reason: string } | null;
  statusWritesSeen: number;
  /** CPU seconds of this process from create to Ready: the N agents (and the operator when in-process). */
  benchProcessCpuSeconds: number;
  objectBytes: number;
  statusBytes: number;
  nodesListed: number;
  nodesTruncated: number;
  /** The first listed node of each status that is not healthy, with its message. */
  examples: Record<string, string>;
  apiRequests: ApiDelta;
  events: Record<string, number>;
  fanoutResults: Record<string, number>;
  operatorProcess?: {
    rssIdleMiB: number;
    rssPeakDuringMiB: number;
    rssAfterMiB: number;
    vmHwmMiB: number;
    cpuSeconds: number;
  };
}

// ---------------------------------------------------------------- helpers

/** N nodes named gpu-node-1..N: every `faultyEvery`-th one faulty (cycling FAULTY_SCENARIOS), the rest healthy H100s. */
function benchFleet(count: number, faultyEvery: number): FleetNodeSpec[] {
  let faulty = 0;
  return Array.from({ length: count }, (_, i) => {
    const isFaulty = faultyEvery > 0 && (i + 1) % faultyEvery === 0;
    const scenario = isFaulty ? (FAULTY_SCENARIOS[faulty++ % FAULTY_SCENARIOS.length] ?? HEALTHY_SCENARIO) : HEALTHY_SCENARIO;
    return { name: `gpu-node-${i + 1}`, scenario };
  });
}

// ---------------------------------------------------------------- one environment

interface Environment {
  controlPlane: ControlPlane;
  admin: KubeConfig;
  fleet: SimulatedFleet;
  agentPort: number;
  /** A kubeconfig for ServiceAccount `name` in the agent namespace, and the token (audience `audiences`). */
  serviceAccount(name: string, audiences: string[]): Promise<{ kc: KubeConfig; token: string }>;
  fleetStartMs: number;
  fleetRssMiBPerAgent: number;
  fleetIdleCpuPercent: number;
}

/** Collects every agent's snapshot in this process (no HTTP, no auth), PREWARM_CONCURRENCY agents at a time. */
async function prewarm(fleet: SimulatedFleet): Promise<{ seconds: number; gpus: number; gpusWithErrors: number }> {
  const started = performance.now();
  const agents = fleet.nodes.flatMap((n) => (n.agent === undefined ? [] : [n.agent]));
  let next = 0;
  let gpus = 0;
  let gpusWithErrors = 0;
  const lane = async (): Promise<void> => {
    while (next < agents.length) {
      const agent = agents[next++];
      if (agent === undefined) continue;
      const doc = await agent.snapshots.snapshot(DIAGNOSTIC_SPEC.checks, new Date(Date.now() - 3_600_000), AbortSignal.timeout(60_000));
      gpus += doc.gpus.length;
      gpusWithErrors += doc.gpus.filter((g) => g.errors.length > 0).length;
    }
  };
  await Promise.all(Array.from({ length: PREWARM_CONCURRENCY }, lane));
  return { seconds: round((performance.now() - started) / 1000, 1), gpus, gpusWithErrors };
}

async function startEnvironment(
  nodes: FleetNodeSpec[],
  sharedLibrary: boolean,
  logger: Logger,
  stops: (() => Promise<void>)[],
): Promise<Environment> {
  const { controlPlane, admin, caPem, serviceAccountToken } = await startBenchCluster(stops);
  const serviceAccount = async (name: string, audiences: string[]): Promise<{ kc: KubeConfig; token: string }> => {
    const token = await serviceAccountToken(name, audiences);
    return { kc: kubeConfigForToken(controlPlane.endpoint.server, caPem, token, name), token };
  };

  const agentPort = await freePort();
  const agentIdentity = await serviceAccount('gpudiag-agent', []);
  const rssBefore = process.memoryUsage.rss();
  progress(
    `starting ${nodes.length} simulated node(s) × 8 GPUs (agents in this process, token verification auto: local, TokenReview fallback)`,
  );
  const fleetStarted = performance.now();
  let lastReport = fleetStarted;
  let started = 0;
  const fleet = await SimulatedFleet.start({
    kc: admin,
    namespace: AGENT_NAMESPACE,
    nodes,
    port: agentPort,
    logger,
    sharedLibrary,
    snapshotCacheMs: AGENT_SNAPSHOT_CACHE_MS,
    auth: {
      authenticator: tokenVerifier(agentIdentity.kc, { mode: 'auto', audience: AGENT_AUDIENCE, logger }),
      allowedCallers: [`system:serviceaccount:${AGENT_NAMESPACE}:gpudiag-operator`],
    },
    onProgress: (message) => {
      if (!message.startsWith('simulated node ')) return;
      started += 1;
      if (performance.now() - lastReport > 10_000) {
        lastReport = performance.now();
        progress(`  ${started}/${nodes.length} nodes started`);
      }
    },
  });
  stops.push(() => fleet.stop());
  const fleetStartMs = performance.now() - fleetStarted;
  await sleep(IDLE_SETTLE_MS);
  const rssAfter = process.memoryUsage.rss();
  // What N idle agents cost this process: kernel-log polls, heartbeats, metrics collectors.
  const cpuBefore = process.cpuUsage();
  await sleep(CPU_IDLE_WINDOW_MS);
  const cpu = process.cpuUsage(cpuBefore);
  return {
    controlPlane,
    admin,
    fleet,
    agentPort,
    serviceAccount,
    fleetStartMs,
    fleetRssMiBPerAgent: (rssAfter - rssBefore) / 1024 / 1024 / nodes.length,
    fleetIdleCpuPercent: ((cpu.user + cpu.system) / 1000 / CPU_IDLE_WINDOW_MS) * 100,
  };
}

/** Creates one GPUDiagnostic over every node and follows it with a watch until Ready=True (or Failed). */
async function runDiagnostic(
  env: Environment,
  name: string,
  mode: RunMode,
  operatorMetrics: () => Promise<string>,
  operatorPid: number | undefined,
): Promise<DiagnosticRun> {
  const nodes = env.fleet.nodes.length;
  const custom = env.admin.makeApiClient(CustomObjectsApi);
  let t0 = 0;
  let running: number | null = null;
  const watch = await watchUntilReady(env.admin, DIAGNOSTIC_NAMESPACE, name, (obj) => {
    if (t0 !== 0 && running === null && obj.status?.phase === 'Running') running = performance.now() - t0;
  });
  const finished = watch.finished;
  try {
    const opBefore = await operatorMetrics();
    const apiBefore = await apiRequestCounts(env.admin);
    const idle = operatorPid === undefined ? undefined : await sampleProcess(operatorPid);
    let peakKiB = idle?.rssKiB ?? 0;
    const sampler =
      operatorPid === undefined
        ? undefined
        : setInterval(() => {
            sampleProcess(operatorPid).then(
              (s) => (peakKiB = Math.max(peakKiB, s.rssKiB)),
              () => undefined,
            );
          }, RSS_SAMPLE_MS);
    let obj: GPUDiagnostic;
    let readyMs: number;
    let cpu: NodeJS.CpuUsage;
    try {
      const cpuBefore = process.cpuUsage();
      t0 = performance.now();
      await custom.createNamespacedCustomObject({
        ...GPU_DIAGNOSTICS,
        namespace: DIAGNOSTIC_NAMESPACE,
        body: { apiVersion: 'gpudiag.io/v1alpha1', kind: 'GPUDiagnostic', metadata: { name }, spec: DIAGNOSTIC_SPEC },
      });
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${name} not Ready within ${DIAGNOSTIC_TIMEOUT_MS / 1000} s`)), DIAGNOSTIC_TIMEOUT_MS);
      });
      try {
        obj = await Promise.race([finished, timeout]);
      } finally {
        clearTimeout(timer);
      }
      readyMs = performance.now() - t0;
      cpu = process.cpuUsage(cpuBefore);
      await sleep(SETTLE_AFTER_READY_MS);
    } finally {
      if (sampler !== undefined) clearInterval(sampler);
    }
    const after = operatorPid === undefined ? undefined : await sampleProcess(operatorPid);
    const apiAfter = await apiRequestCounts(env.admin);
    const opAfter = await operatorMetrics();

    const events: Record<string, number> = {};
    const list = await env.admin.makeApiClient(EventsV1Api).listNamespacedEvent({ namespace: DIAGNOSTIC_NAMESPACE });
    for (const e of list.items) if (e.regarding?.name === name) events[e.reason ?? '?'] = (events[e.reason ?? '?'] ?? 0) + 1;
    const status = obj.status ?? {};
    const healthy = status.conditions?.find((c) => c.type === 'Healthy');
    return {
      operator: mode.operator,
      agents: mode.agents,
      nodes,
      createToReadyMs: Math.round(readyMs),
      createToRunningMs: running === null ? null : Math.round(running),
      nodesPerS: round(nodes / (readyMs / 1000), 1),
      phase: status.phase ?? '?',
      nodesSucceeded: status.summary?.nodesSucceeded ?? 0,
      nodesByStatus: { ...(status.summary?.nodesByStatus ?? {}) },
      healthy: healthy === undefined ? null : { status: healthy.status, reason: healthy.reason },
      statusWritesSeen: watch.writes(),
      benchProcessCpuSeconds: round((cpu.user + cpu.system) / 1e6, 2),
      objectBytes: Buffer.byteLength(JSON.stringify(obj)),
      statusBytes: Buffer.byteLength(JSON.stringify(status)),
      nodesListed: status.nodes?.length ?? 0,
      examples: Object.fromEntries(
        ['critical', 'degraded', 'unknown'].flatMap((s) => {
          const n = status.nodes?.find((x) => x.status === s);
          return n === undefined ? [] : [[s, `${n.name}: ${n.message ?? ''}`.slice(0, 300)]];
        }),
      ),
      nodesTruncated: status.nodesTruncated ?? 0,
      apiRequests: apiDelta(apiBefore, apiAfter),
      events,
      fanoutResults: subtract(
        counterByLabel(opAfter, 'gpudiag_fanout_results_total', 'result'),
        counterByLabel(opBefore, 'gpudiag_fanout_results_total', 'result'),
      ),
      ...(idle !== undefined && after !== undefined
        ? {
            operatorProcess: {
              rssIdleMiB: round(idle.rssKiB / 1024, 1),
              rssPeakDuringMiB: round(Math.max(peakKiB, after.rssKiB) / 1024, 1),
              rssAfterMiB: round(after.rssKiB / 1024, 1),
              vmHwmMiB: round(after.hwmKiB / 1024, 1),
              cpuSeconds: round(after.cpuS - idle.cpuS, 2),
            },
          }
        : {}),
    };
  } finally {
    watch.abort();
  }
}

/** Runs one fleet size in a fresh environment: the runs 1–3 described at the top of this file. */
async function benchSize(
  count: number,
  options: { faultyEvery: number; sharedLibrary: boolean; inProcess: boolean; coldMax: number },
  logger: Logger,
): Promise<Record<string, unknown>> {
  const stops: (() => Promise<void>)[] = [];
  try {
    const env = await startEnvironment(benchFleet(count, options.faultyEvery), options.sharedLibrary, logger, stops);
    progress(
      `${count} node(s) running in ${round(env.fleetStartMs / 1000, 1)} s; ${round(env.fleetRssMiBPerAgent, 2)} MiB and ` +
        `${round(env.fleetIdleCpuPercent, 1)}% CPU idle for the fleet`,
    );
    const runs: DiagnosticRun[] = [];

    // 1. The operator as its own process, as in a cluster.
    const dir = await mkdtemp(path.join(os.tmpdir(), 'gpudiag-operator-bench-'));
    stops.push(() => rm(dir, { recursive: true, force: true }));
    const identity = await env.serviceAccount('gpudiag-operator', []);
    const agentToken = await env.serviceAccount('gpudiag-operator', [AGENT_AUDIENCE]);
    const kubeconfig = path.join(dir, 'operator.kubeconfig');
    const tokenFile = path.join(dir, 'agent-token');
    await writeFile(kubeconfig, identity.kc.exportConfig(), { mode: 0o600 });
    await writeFile(tokenFile, agentToken.token, { mode: 0o600 });
    let probePort = await freePort();
    // Agents listen on 127.1.x.y, so the same port number may be free on 127.0.0.1; keep them apart for clarity.
    while (probePort === env.agentPort) probePort = await freePort();
    const probeUrl = `http://127.0.0.1:${probePort}`;
    const args = [
      path.join(repoRoot, 'bin', 'gpudiag.js'),
      'operator',
      '--kubeconfig',
      kubeconfig,
      '--agent-namespace',
      AGENT_NAMESPACE,
      '--agent-port',
      String(env.agentPort),
      '--agent-token-file',
      tokenFile,
      '--fanout-concurrency',
      String(FANOUT_CONCURRENCY),
      '--probe-listen',
      `127.0.0.1:${probePort}`,
      '--identity',
      'bench-operator-process',
    ];
    const logFile = path.join(env.controlPlane.endpoint.dir, 'logs', 'operator.log');
    const spawnedAt = performance.now();
    const child = await startProcess('gpudiag operator', process.execPath, args, logFile);
    running.operatorProcess = child;
    const stopWatchdog = startOrphanWatchdog(process.pid, [child.pid]);
    let childExited = false;
    void child.exited.then(() => (childExited = true));
    let sigtermMs = NaN;
    let sigtermExit = '';
    let warm: Awaited<ReturnType<typeof prewarm>> | undefined;
    try {
      await waitLeading(probeUrl, () => !childExited);
      const readyMs = performance.now() - spawnedAt;
      await sleep(IDLE_SETTLE_MS);
      if (count <= options.coldMax) {
        progress(`${count} node(s): diagnostic with the operator as a separate process, agents cold`);
        runs.push(
          await runDiagnostic(
            env,
            `fleet-${count}-process-cold`,
            { operator: 'process', agents: 'cold' },
            () => metricsText(`${probeUrl}/metrics`),
            child.pid,
          ),
        );
        // A new token (as after kubelet rotation), so every agent runs its TokenReview again.
        await writeFile(tokenFile, (await env.serviceAccount('gpudiag-operator', [AGENT_AUDIENCE])).token, { mode: 0o600 });
        await sleep(TOKEN_RECHECK_WAIT_MS);
      }
      warm = await prewarm(env.fleet);
      progress(`${count} node(s): agents pre-collected ${warm.gpus} GPUs in ${warm.seconds} s (${warm.gpusWithErrors} with NVML errors)`);
      await sleep(IDLE_SETTLE_MS);
      progress(`${count} node(s): diagnostic with the operator as a separate process, agents warm`);
      runs.push(
        await runDiagnostic(
          env,
          `fleet-${count}-process-warm`,
          { operator: 'process', agents: 'warm' },
          () => metricsText(`${probeUrl}/metrics`),
          child.pid,
        ),
      );
      const stopStarted = performance.now();
      await child.stop(10_000);
      sigtermMs = performance.now() - stopStarted;
      sigtermExit = await child.exited;
      progress(
        `operator process: ready and leading ${Math.round(readyMs)} ms after spawn; SIGTERM → exit ${Math.round(sigtermMs)} ms ` +
          `(${sigtermExit})`,
      );
    } finally {
      await child.stop(5_000);
      stopWatchdog();
      delete running.operatorProcess;
    }

    // 2. The operator in this process, as `gpudiag dev up` runs it (it takes over the released Lease).
    if (options.inProcess) {
      const freshToken = await env.serviceAccount('gpudiag-operator', [AGENT_AUDIENCE]);
      const config = parseOperatorConfig(
        [
          '--agent-namespace',
          AGENT_NAMESPACE,
          '--agent-port',
          String(env.agentPort),
          '--probe-listen',
          '127.0.0.1:0',
          '--fanout-concurrency',
          String(FANOUT_CONCURRENCY),
          '--identity',
          'bench-operator-in-process',
        ],
        {},
        'bench',
      );
      const operator = await Operator.start(config, { kc: identity.kc, logger, tokenProvider: () => Promise.resolve(freshToken.token) });
      stops.push(() => operator.stop());
      await waitLeading(`http://127.0.0.1:${operator.probeAddress?.port ?? 0}`, () => true);
      await sleep(IDLE_SETTLE_MS);
      progress(`${count} node(s): diagnostic with the operator in this process, agents warm`);
      runs.push(
        await runDiagnostic(
          env,
          `fleet-${count}-in-process-warm`,
          { operator: 'in-process', agents: 'warm' },
          () => operator.metrics.registry.metrics(),
          undefined,
        ),
      );
    }
    return {
      nodes: count,
      gpus: count * 8,
      faultyNodes: env.fleet.nodes.filter((n) => n.spec.scenario !== HEALTHY_SCENARIO).length,
      fleetStartS: round(env.fleetStartMs / 1000, 1),
      fleetRssMiBPerAgent: round(env.fleetRssMiBPerAgent, 2),
      fleetIdleCpuPercent: round(env.fleetIdleCpuPercent, 1),
      prewarm: warm,
      operatorSigtermToExitMs: Math.round(sigtermMs),
      operatorExit: sigtermExit,
      runs,
    };
  } finally {
    for (const stop of stops.reverse()) await stop();
  }
}

// ---------------------------------------------------------------- report

function row(cells: (string | number)[], widths: number[]): string {
  return cells.map((c, i) => (i === 0 ? String(c).padEnd(widths[i] ?? 0) : String(c).padStart(widths[i] ?? 0))).join('  ');
}

function verbSummary(delta: ApiDelta): string {
  const byVerb: Record<string, number> = {};
  for (const [key, n] of Object.entries(delta.byVerbResource)) {
    const resource = key.slice(key.indexOf(' ') + 1);
    if (!/^gpudiag\.io\/|^events\.k8s\.io\//.test(resource)) continue;
    const short = `${key.slice(0, key.indexOf(' '))} ${resource.replace(/^[^/]+\//, '')}`;
    byVerb[short] = (byVerb[short] ?? 0) + n;
  }
  return Object.entries(byVerb)
    .map(([k, n]) => `${n} ${k}`)
    .join(', ');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      nodes: { type: 'string', default: '1,100,1000' },
      'faulty-every': { type: 'string', default: '50' },
      'deadline-s': { type: 'string', default: String(DEFAULT_DEADLINE_S) },
      'private-libraries': { type: 'boolean', default: false },
      'no-in-process': { type: 'boolean', default: false },
      'cold-max': { type: 'string', default: '100' },
      out: { type: 'string', default: path.join('bench', 'results', 'operator.json') },
    },
  });
  const sizes = (values.nodes ?? '').split(',').map((s) => Number(s.trim()));
  const faultyEvery = Number(values['faulty-every']);
  const deadlineS = Number(values['deadline-s']);
  const coldMax = Number(values['cold-max']);
  if (!Number.isInteger(coldMax) || coldMax < 0) throw new Error('--cold-max must be a non-negative integer');
  if (sizes.length === 0 || !sizes.every((n) => Number.isInteger(n) && n >= 1 && n <= 1000))
    throw new Error('--nodes must be a comma-separated list of integers from 1 to 1000 (nodeNames allows 1,000)');
  if (!Number.isInteger(faultyEvery) || faultyEvery < 0) throw new Error('--faulty-every must be a non-negative integer (0: all healthy)');
  if (!(deadlineS > 0)) throw new Error('--deadline-s must be positive');
  const deadline = setTimeout(() => {
    process.stderr.write(`operator-bench: gave up after ${deadlineS} s\n`);
    // The control plane's watchdog stops etcd and kube-apiserver once this process is gone.
    void running.operatorProcess?.stop(1_000);
    setTimeout(() => process.exit(1), 1_500).unref();
  }, deadlineS * 1000);
  deadline.unref();

  const logger = createLogger({ level: 'warn', defaultMeta: { component: 'operator-bench' }, stderrOnly: true });
  const out: Record<string, unknown> = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: round(os.totalmem() / 1024 ** 3, 1),
    loadAverage1mAtStart: round(os.loadavg()[0] ?? NaN, 2),
    agentAuth:
      'auto: local verification against the issuer keys (one shared key cache), TokenReview fallback; each agent caches answers 30 s',
    fanoutConcurrency: FANOUT_CONCURRENCY,
    fleet:
      `fresh environment per size; ${HEALTHY_SCENARIO}, every ${faultyEvery}th node faulty (${FAULTY_SCENARIOS.join(', ')}); ` +
      `${values['private-libraries'] ? 'a private' : 'one shared'} fake NVML library ` +
      `${values['private-libraries'] ? 'per node' : 'per scenario'}`,
    diagnosticSpec: DIAGNOSTIC_SPEC,
    agentSnapshotCacheMs: AGENT_SNAPSHOT_CACHE_MS,
  };
  const results: Record<string, unknown>[] = [];
  for (const [index, count] of sizes.entries()) {
    progress(`=== ${count} node(s) (${index + 1}/${sizes.length}) ===`);
    results.push(
      await benchSize(
        count,
        { faultyEvery, sharedLibrary: !values['private-libraries'], inProcess: !values['no-in-process'], coldMax },
        logger,
      ),
    );
  }
  out['sizes'] = results;
  out['loadAverage1mAtEnd'] = round(os.loadavg()[0] ?? NaN, 2);

  const outFile = path.resolve(repoRoot, values.out ?? path.join('bench', 'results', 'operator.json'));
  await mkdir(path.dirname(outFile), { recursive: true });
  await writeFile(outFile, `${JSON.stringify(out, null, 2)}\n`);

  const w = [16, 5, 10, 7, 10, 10, 6, 8, 7, 8, 10];
  const lines = [
    `gpudiag operator benchmark — GPUDiagnostic over N simulated nodes × 8 GPUs, ${String(out['cpus'])} CPUs, node ${process.version}`,
    '',
    row(
      ['operator, agents', 'N', 'create→Rdy', 'nodes/s', 'RSS idle', 'RSS peak', 'op CPU', 'agents', 'API op', 'TokenRev', 'status KiB'],
      w,
    ),
  ];
  for (const size of results) {
    for (const r of size['runs'] as DiagnosticRun[]) {
      const p = r.operatorProcess;
      lines.push(
        row(
          [
            `${r.operator}, ${r.agents}`,
            r.nodes,
            `${r.createToReadyMs} ms`,
            r.nodesPerS,
            p === undefined ? '-' : `${p.rssIdleMiB} MiB`,
            p === undefined ? '-' : `${p.rssPeakDuringMiB} MiB`,
            p === undefined ? '-' : `${p.cpuSeconds} s`,
            r.operator === 'process' ? `${r.benchProcessCpuSeconds} s` : '-',
            r.apiRequests.operator,
            r.apiRequests.agentTokenReviews,
            round(r.statusBytes / 1024, 1),
          ],
          w,
        ),
      );
    }
  }
  lines.push('', "operator API requests per diagnostic, by verb (the benchmark's own create excluded):");
  for (const size of results)
    for (const r of size['runs'] as DiagnosticRun[])
      lines.push(
        `  ${r.operator}/${r.agents} N=${r.nodes}: ${verbSummary(r.apiRequests)}; background leases ${r.apiRequests.leases}, ` +
          `other ${r.apiRequests.other}`,
      );
  lines.push('', 'outcomes:');
  for (const size of results) {
    for (const r of size['runs'] as DiagnosticRun[]) {
      lines.push(
        `  ${r.operator}/${r.agents} N=${r.nodes}: ${r.phase}, ${r.nodesSucceeded}/${r.nodes} succeeded (fan-out ` +
          `${JSON.stringify(r.fanoutResults)}), by status ${JSON.stringify(r.nodesByStatus)}, Healthy=${r.healthy?.status ?? '?'} ` +
          `(${r.healthy?.reason ?? '?'}), nodes[] ${r.nodesListed} listed + ${r.nodesTruncated} truncated, ${r.statusWritesSeen} ` +
          `status writes, events ${JSON.stringify(r.events)}`,
      );
    }
    const pw = size['prewarm'] as { seconds: number; gpus: number; gpusWithErrors: number } | undefined;
    lines.push(
      `  fleet N=${String(size['nodes'])}: pre-collected ${pw?.gpus ?? '?'} GPUs in ${pw?.seconds ?? '?'} s ` +
        `(${pw?.gpusWithErrors ?? '?'} with NVML errors); started in ${String(size['fleetStartS'])} s, ` +
        `${String(size['fleetRssMiBPerAgent'])} MiB per agent, ${String(size['fleetIdleCpuPercent'])}% CPU idle; operator ` +
        `SIGTERM→exit ${String(size['operatorSigtermToExitMs'])} ms (${String(size['operatorExit'])})`,
    );
  }
  lines.push(`written: ${path.relative(process.cwd(), outFile)}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`operator-bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);

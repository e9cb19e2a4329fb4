/**
 * Operator scale benchmark: a GPUDiagnostic over 100 … 5,000 simulated nodes × 8 GPUs with the
 * operator as its own process and the fleet in other processes, so the figures are the
 * operator's, not the simulation's. Loopback only, bounded in time, stops everything it started;
 * prints figures and writes bench/results/operator-scale.json; asserts nothing.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/operator-scale-bench.js [--nodes 100,1000,2000,5000]
 *     [--runs 5] [--fleet-processes 2] [--faulty-every 50] [--policy-nodes 5000] [--policy-minutes 3]
 *     [--token-verification auto|local|tokenreview] [--operator-node-flags="--max-old-space-size=…"]
 *     [--fanout-concurrency N] [--deadline-s 3600] [--out bench/results/operator-scale.json]
 *
 * Per size, a fresh environment: a real etcd + kube-apiserver with the CRDs and config/rbac/; N
 * Node objects and N Running agent Pods (as a kubelet and NVIDIA's device plugin leave them);
 * `--fleet-processes` processes (bench/fleet-process.ts) serving N prepared-snapshot agents, each
 * on its own 127.1.x.y address behind the agent's real HTTP handler and caller check; and
 * `gpudiag operator` as ServiceAccount gpudiag-operator (exactly config/rbac/operator.yaml).
 * The snapshots are what a real agent on the fake NVML library answers for each scenario,
 * collected once. Then: one diagnostic on first contact ("cold": new connections, no cached
 * token answers), `--runs` more ("warm"), and for sizes in `--policy-nodes` a GPUHealthPolicy
 * with a 1-minute interval over every node, watched for `--policy-minutes`.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import type { NodeSnapshotDocument } from '../agent/api/snapshot-document.js';
import type { TokenVerificationMode } from '../agent/config.js';
import { GPU_DIAGNOSTICS, GPU_HEALTH_POLICIES, type GPUDiagnostic } from '../api/index.js';
import { repoRoot } from '../dev/control-plane/binaries.js';
import { freePort, kubeConfigForToken } from '../dev/control-plane/control-plane.js';
import { startOrphanWatchdog, startProcess, type ManagedProcess } from '../dev/control-plane/processes.js';
import { SCENARIO_LABEL, SIMULATED_NODE_LABELS, createAgentPod, createSimulatedNode } from '../dev/fleet/fleet-objects.js';
import { collectScenarioDocument, type PreparedNode } from '../dev/fleet/prepared-agents.js';
import { deviceAdvertisement, fleetAddress } from '../dev/fleet/simulated-fleet.js';
import { loadScenario } from '../agent/fake-nvml/scenario.js';
import { createLogger } from '../lib/logger.js';
import type { FleetAuth, FleetProcessSpec } from './fleet-process.js';
import {
  AGENT_AUDIENCE,
  AGENT_NAMESPACE,
  DIAGNOSTIC_NAMESPACE,
  FAULTY_SCENARIOS,
  HEALTHY_SCENARIO,
  apiDelta,
  counterByLabel,
  gaugeValue,
  metricsText,
  sampleProcess,
  subtract,
  waitLeading,
  startBenchCluster,
  watchUntilReady,
  type ApiDelta,
} from './operator-support.js';
import { apiRequestCounts, percentile, progress, round, sleep } from './support.js';

const OPERATOR_USER = `system:serviceaccount:${AGENT_NAMESPACE}:gpudiag-operator`;
const DIAGNOSTIC_SPEC = { checks: ['health', 'xid'] as const, timeoutSeconds: 300 };
/** API objects created at once while the fleet is set up. */
const CREATE_CONCURRENCY = 24;
const DIAGNOSTIC_TIMEOUT_MS = 5 * 60_000;
const SAMPLE_MS = 100;
/** After Ready: time for the Events before the "after" scrape. */
const SETTLE_AFTER_READY_MS = 2_000;
const IDLE_SETTLE_MS = 3_000;
const DEFAULT_DEADLINE_S = 60 * 60;
/** The most nodes the benchmark's loopback addresses and the API's bounds are sized for. */
const MAX_NODES = 5_000;

/** Everything started, for the hard deadline. */
const running = new Set<ManagedProcess>();

interface RunFigures {
  name: string;
  contact: 'cold' | 'warm';
  nodes: number;
  createToReadyMs: number;
  phase: string;
  nodesSucceeded: number;
  nodesByStatus: Record<string, number>;
  statusBytes: number;
  statusWritesSeen: number;
  operatorCpuS: number;
  fleetCpuS: number;
  operatorRssIdleMiB: number;
  operatorRssPeakMiB: number;
  eventLoopLagMaxMs: number;
  apiRequests: ApiDelta;
  fanoutResults: Record<string, number>;
}

interface PolicyFigures {
  nodes: number;
  minutes: number;
  checksCompleted: number;
  operatorCpuCoresAvg: number;
  operatorRssPeakMiB: number;
  eventLoopLagMaxMs: number;
  apiRequestsPerMinute: { operator: number; agentTokenReviews: number; leases: number; other: number };
  statusBytes: number;
  nodesGoverned: number | null;
}

/** The operator's Node flags in the chart's default values (`operator.maxHeapMiB`, passed as NODE_OPTIONS). */
async function chartOperatorNodeFlags(): Promise<string> {
  const values = await readFile(path.join(repoRoot, 'charts', 'gpudiag', 'values.yaml'), 'utf8');
  const heap = /^ {2}maxHeapMiB: (\d+)$/m.exec(values)?.[1];
  if (heap === undefined) throw new Error('charts/gpudiag/values.yaml: operator.maxHeapMiB not found');
  return `--max-old-space-size=${heap}`;
}

/** N nodes named gpu-node-1..N: every `faultyEvery`-th one faulty (cycling FAULTY_SCENARIOS), the rest healthy H100s. */
function benchNodes(count: number, faultyEvery: number): PreparedNode[] {
  let faulty = 0;
  return Array.from({ length: count }, (_, i) => {
    const isFaulty = faultyEvery > 0 && (i + 1) % faultyEvery === 0;
    const scenario = isFaulty ? (FAULTY_SCENARIOS[faulty++ % FAULTY_SCENARIOS.length] ?? HEALTHY_SCENARIO) : HEALTHY_SCENARIO;
    return { name: `gpu-node-${i + 1}`, address: fleetAddress(i), scenario };
  });
}

/** Runs `task` over `items`, `concurrency` at a time. */
async function eachLimited<T>(items: readonly T[], concurrency: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++];
      if (item !== undefined) await task(item);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
}

/** Sum of the CPU seconds of `pids`. */
async function cpuOf(pids: readonly number[]): Promise<number> {
  const samples = await Promise.all(pids.map((p) => sampleProcess(p)));
  return samples.reduce((sum, s) => sum + s.cpuS, 0);
}

async function waitForFile(file: string, isAlive: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(file)) {
    if (!isAlive()) throw new Error(`a fleet process exited before writing ${file}`);
    if (Date.now() > deadline) throw new Error(`${file} not written within ${timeoutMs / 1000} s`);
    await sleep(200);
  }
}

/** One environment of N nodes: control plane, API objects, fleet processes, operator process. */
interface Environment {
  admin: KubeConfig;
  operator: ManagedProcess;
  fleet: ManagedProcess[];
  probeUrl: string;
}

async function startEnvironment(
  nodes: PreparedNode[],
  documentsFile: string,
  fleetProcesses: number,
  operatorNodeFlags: readonly string[],
  tokenVerification: TokenVerificationMode,
  fanoutConcurrency: number | undefined,
  stops: (() => Promise<void>)[],
): Promise<Environment> {
  const { controlPlane, admin, caPem, serviceAccountToken: token } = await startBenchCluster(stops);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gpudiag-scale-bench-'));
  stops.push(() => rm(dir, { recursive: true, force: true }));

  progress(`creating ${nodes.length} Nodes and agent Pods`);
  const created = performance.now();
  const advertisements = new Map<string, ReturnType<typeof deviceAdvertisement>>();
  for (const scenario of new Set(nodes.map((n) => n.scenario)))
    advertisements.set(scenario, deviceAdvertisement(await loadScenario(scenario)));
  let done = 0;
  await eachLimited(nodes, CREATE_CONCURRENCY, async (node) => {
    const advertised = advertisements.get(node.scenario) ?? { labels: {}, resources: {} };
    const labels = { ...SIMULATED_NODE_LABELS, [SCENARIO_LABEL]: node.scenario, ...advertised.labels };
    const nodeUid = await createSimulatedNode(admin, node.name, labels, advertised);
    await createAgentPod(admin, { namespace: AGENT_NAMESPACE, nodeName: node.name, nodeUid, address: node.address });
    if (++done % 1000 === 0) progress(`  ${done}/${nodes.length} nodes created`);
  });
  progress(`  ${nodes.length} nodes created in ${round((performance.now() - created) / 1000, 1)} s`);

  // The fleet: agents check the operator's token as their own ServiceAccount (locally against the issuer's keys, or TokenReview).
  const agentKubeconfig = path.join(dir, 'agent.kubeconfig');
  await writeFile(
    agentKubeconfig,
    kubeConfigForToken(controlPlane.endpoint.server, caPem, await token('gpudiag-agent', []), 'agent').exportConfig(),
  );
  const auth: FleetAuth = {
    kind: 'verify',
    mode: tokenVerification,
    kubeconfig: agentKubeconfig,
    audience: AGENT_AUDIENCE,
    allowedCallers: [OPERATOR_USER],
  };
  const agentPort = await freePort();
  const fleet: ManagedProcess[] = [];
  const perProcess = Math.ceil(nodes.length / fleetProcesses);
  for (let p = 0; p * perProcess < nodes.length; p++) {
    const spec: FleetProcessSpec = {
      port: agentPort,
      nodes: nodes.slice(p * perProcess, (p + 1) * perProcess),
      documentsFile,
      readyFile: path.join(dir, `fleet-${p}.ready`),
      auth,
    };
    const specFile = path.join(dir, `fleet-${p}.json`);
    await writeFile(specFile, JSON.stringify(spec));
    const child = await startProcess(
      `fleet ${p}`,
      process.execPath,
      [path.join(repoRoot, 'dist', 'bench', 'fleet-process.js'), specFile],
      path.join(controlPlane.endpoint.dir, 'logs', `fleet-${p}.log`),
    );
    running.add(child);
    fleet.push(child);
    const stopWatchdog = startOrphanWatchdog(process.pid, [child.pid]);
    stops.push(async () => {
      await child.stop(5_000);
      stopWatchdog();
      running.delete(child);
    });
  }
  const exited = new Set<number>();
  for (const child of fleet) void child.exited.then(() => exited.add(child.pid));
  for (const [p, child] of fleet.entries()) await waitForFile(path.join(dir, `fleet-${p}.ready`), () => !exited.has(child.pid), 5 * 60_000);
  progress(`  ${fleet.length} fleet process(es) serving ${nodes.length} agents on port ${agentPort}`);

  // The operator, as in a cluster: its own ServiceAccount, a projected-style agent token file.
  const kubeconfig = path.join(dir, 'operator.kubeconfig');
  const tokenFile = path.join(dir, 'agent-token');
  await writeFile(
    kubeconfig,
    kubeConfigForToken(controlPlane.endpoint.server, caPem, await token('gpudiag-operator', []), 'op').exportConfig(),
    {
      mode: 0o600,
    },
  );
  await writeFile(tokenFile, await token('gpudiag-operator', [AGENT_AUDIENCE]), { mode: 0o600 });
  let probePort = await freePort();
  while (probePort === agentPort) probePort = await freePort();
  const operator = await startProcess(
    'gpudiag operator',
    process.execPath,
    [
      ...operatorNodeFlags,
      path.join(repoRoot, 'bin', 'gpudiag.js'),
      'operator',
      '--kubeconfig',
      kubeconfig,
      '--agent-namespace',
      AGENT_NAMESPACE,
      '--agent-port',
      String(agentPort),
      '--agent-token-file',
      tokenFile,
      ...(fanoutConcurrency !== undefined ? ['--fanout-concurrency', String(fanoutConcurrency)] : []),
      '--probe-listen',
      `127.0.0.1:${probePort}`,
      '--identity',
      'bench-operator',
    ],
    path.join(controlPlane.endpoint.dir, 'logs', 'operator.log'),
  );
  running.add(operator);
  const stopWatchdog = startOrphanWatchdog(process.pid, [operator.pid]);
  stops.push(async () => {
    await operator.stop(10_000);
    stopWatchdog();
    running.delete(operator);
  });
  let operatorExited = false;
  void operator.exited.then(() => (operatorExited = true));
  const probeUrl = `http://127.0.0.1:${probePort}`;
  await waitLeading(probeUrl, () => !operatorExited, 120_000);
  return { admin, operator, fleet, probeUrl };
}

/** Creates one GPUDiagnostic over every node and measures it until Ready. */
async function runDiagnostic(env: Environment, name: string, contact: RunFigures['contact'], nodes: number): Promise<RunFigures> {
  const custom = env.admin.makeApiClient(CustomObjectsApi);
  const watch = await watchUntilReady(env.admin, DIAGNOSTIC_NAMESPACE, name);
  try {
    // This scrape also resets the event-loop lag histogram, so the next one covers the diagnostic.
    const opBefore = await metricsText(`${env.probeUrl}/metrics`);
    const apiBefore = await apiRequestCounts(env.admin);
    const fleetPids = env.fleet.map((f) => f.pid);
    const idle = await sampleProcess(env.operator.pid);
    const fleetCpuBefore = await cpuOf(fleetPids);
    let peakKiB = idle.rssKiB;
    const sampler = setInterval(() => {
      sampleProcess(env.operator.pid).then(
        (s) => (peakKiB = Math.max(peakKiB, s.rssKiB)),
        () => undefined,
      );
    }, SAMPLE_MS);
    let obj: GPUDiagnostic;
    let readyMs: number;
    let atReady: Awaited<ReturnType<typeof sampleProcess>>;
    let fleetCpuAtReady: number;
    let lagText: string;
    try {
      const t0 = performance.now();
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
        obj = await Promise.race([watch.finished, timeout]);
      } finally {
        clearTimeout(timer);
      }
      readyMs = performance.now() - t0;
      [atReady, fleetCpuAtReady, lagText] = await Promise.all([
        sampleProcess(env.operator.pid),
        cpuOf(fleetPids),
        metricsText(`${env.probeUrl}/metrics`),
      ]);
      await sleep(SETTLE_AFTER_READY_MS);
    } finally {
      clearInterval(sampler);
    }
    const apiAfter = await apiRequestCounts(env.admin);
    const opAfter = await metricsText(`${env.probeUrl}/metrics`);
    const status = obj.status ?? {};
    return {
      name,
      contact,
      nodes,
      createToReadyMs: Math.round(readyMs),
      phase: status.phase ?? '?',
      nodesSucceeded: status.summary?.nodesSucceeded ?? 0,
      nodesByStatus: { ...(status.summary?.nodesByStatus ?? {}) },
      statusBytes: Buffer.byteLength(JSON.stringify(status)),
      statusWritesSeen: watch.writes(),
      operatorCpuS: round(atReady.cpuS - idle.cpuS, 2),
      fleetCpuS: round(fleetCpuAtReady - fleetCpuBefore, 2),
      operatorRssIdleMiB: round(idle.rssKiB / 1024, 1),
      operatorRssPeakMiB: round(Math.max(peakKiB, atReady.rssKiB) / 1024, 1),
      eventLoopLagMaxMs: round((gaugeValue(lagText, 'gpudiag_operator_nodejs_eventloop_lag_max_seconds') ?? NaN) * 1000, 1),
      apiRequests: apiDelta(apiBefore, apiAfter),
      fanoutResults: subtract(
        counterByLabel(opAfter, 'gpudiag_fanout_results_total', 'result'),
        counterByLabel(opBefore, 'gpudiag_fanout_results_total', 'result'),
      ),
    };
  } finally {
    watch.abort();
  }
}

/** A GPUHealthPolicy checking every node each minute, watched for `minutes`: the operator's CPU and the policy's status. */
async function runPolicy(env: Environment, nodes: number, minutes: number): Promise<PolicyFigures> {
  const custom = env.admin.makeApiClient(CustomObjectsApi);
  const name = `every-minute-${nodes}`;
  await metricsText(`${env.probeUrl}/metrics`);
  const apiBefore = await apiRequestCounts(env.admin);
  const before = await sampleProcess(env.operator.pid);
  let peakKiB = before.rssKiB;
  let lagMax = 0;
  const t0 = performance.now();
  await custom.createClusterCustomObject({
    ...GPU_HEALTH_POLICIES,
    body: {
      apiVersion: 'gpudiag.io/v1alpha1',
      kind: 'GPUHealthPolicy',
      metadata: { name },
      spec: { interval: '1m', checks: ['health', 'xid'] },
    },
  });
  const checkTimes = new Set<string>();
  const deadline = t0 + minutes * 60_000;
  while (performance.now() < deadline) {
    await sleep(1_000);
    const s = await sampleProcess(env.operator.pid);
    peakKiB = Math.max(peakKiB, s.rssKiB);
    if (Math.round(performance.now() / 1000) % 10 === 0) {
      lagMax = Math.max(
        lagMax,
        gaugeValue(await metricsText(`${env.probeUrl}/metrics`), 'gpudiag_operator_nodejs_eventloop_lag_max_seconds') ?? 0,
      );
      const policy = (await custom.getClusterCustomObject({ ...GPU_HEALTH_POLICIES, name })) as { status?: { lastCheckTime?: string } };
      if (policy.status?.lastCheckTime !== undefined) checkTimes.add(policy.status.lastCheckTime);
    }
  }
  const after = await sampleProcess(env.operator.pid);
  const elapsedS = (performance.now() - t0) / 1000;
  lagMax = Math.max(
    lagMax,
    gaugeValue(await metricsText(`${env.probeUrl}/metrics`), 'gpudiag_operator_nodejs_eventloop_lag_max_seconds') ?? 0,
  );
  const api = apiDelta(apiBefore, await apiRequestCounts(env.admin));
  const policy = (await custom.getClusterCustomObject({ ...GPU_HEALTH_POLICIES, name })) as {
    status?: { lastCheckTime?: string; summary?: { nodesGoverned?: number } };
  };
  if (policy.status?.lastCheckTime !== undefined) checkTimes.add(policy.status.lastCheckTime);
  const perMinute = (n: number): number => round(n / (elapsedS / 60), 1);
  return {
    nodes,
    minutes,
    checksCompleted: checkTimes.size,
    operatorCpuCoresAvg: round((after.cpuS - before.cpuS) / elapsedS, 3),
    operatorRssPeakMiB: round(peakKiB / 1024, 1),
    eventLoopLagMaxMs: round(lagMax * 1000, 1),
    apiRequestsPerMinute: {
      operator: perMinute(api.operator),
      agentTokenReviews: perMinute(api.agentTokenReviews),
      leases: perMinute(api.leases),
      other: perMinute(api.other),
    },
    statusBytes: Buffer.byteLength(JSON.stringify(policy.status ?? {})),
    nodesGoverned: policy.status?.summary?.nodesGoverned ?? null,
  };
}

async function benchSize(
  count: number,
  options: {
    faultyEvery: number;
    runs: number;
    fleetProcesses: number;
    policyMinutes: number | undefined;
    documentsFile: string;
    operatorNodeFlags: readonly string[];
    tokenVerification: TokenVerificationMode;
    fanoutConcurrency: number | undefined;
  },
): Promise<Record<string, unknown>> {
  const stops: (() => Promise<void>)[] = [];
  try {
    const nodes = benchNodes(count, options.faultyEvery);
    const env = await startEnvironment(
      nodes,
      options.documentsFile,
      options.fleetProcesses,
      options.operatorNodeFlags,
      options.tokenVerification,
      options.fanoutConcurrency,
      stops,
    );
    await sleep(IDLE_SETTLE_MS);
    const runs: RunFigures[] = [];
    progress(`${count} node(s): first contact (cold)`);
    runs.push(await runDiagnostic(env, `fleet-${count}-cold`, 'cold', count));
    for (let i = 1; i <= options.runs; i++) {
      await sleep(1_000);
      progress(`${count} node(s): warm run ${i}/${options.runs}`);
      runs.push(await runDiagnostic(env, `fleet-${count}-warm-${i}`, 'warm', count));
    }
    for (const r of runs)
      progress(
        `  ${r.name}: ${r.createToReadyMs} ms, ${r.phase} ${r.nodesSucceeded}/${count}, ` +
          `op CPU ${r.operatorCpuS} s, fleet ${r.fleetCpuS} s, ` +
          `lag max ${r.eventLoopLagMaxMs} ms, API op ${r.apiRequests.operator}, TokenReviews ${r.apiRequests.agentTokenReviews}`,
      );
    let policy: PolicyFigures | undefined;
    if (options.policyMinutes !== undefined) {
      progress(`${count} node(s): GPUHealthPolicy every minute for ${options.policyMinutes} min`);
      policy = await runPolicy(env, count, options.policyMinutes);
      progress(`  policy: ${JSON.stringify(policy)}`);
    }
    const warm = runs.filter((r) => r.contact === 'warm').map((r) => r.createToReadyMs);
    warm.sort((a, b) => a - b);
    return {
      nodes: count,
      gpus: count * 8,
      fleetProcesses: env.fleet.length,
      warmCreateToReadyP50Ms: percentile(warm, 50),
      coldCreateToReadyMs: runs.find((r) => r.contact === 'cold')?.createToReadyMs ?? null,
      runs,
      ...(policy !== undefined ? { policy } : {}),
    };
  } finally {
    for (const stop of stops.reverse()) await stop();
  }
}

function table(results: Record<string, unknown>[]): string {
  const lines = [
    '| N | cold | warm p50 | op CPU (warm p50) | fleet CPU | op RSS idle → peak | lag max | op API req | TokenReviews | status KiB |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const size of results) {
    const runs = size['runs'] as RunFigures[];
    const warm = runs.filter((r) => r.contact === 'warm');
    const median = (f: (r: RunFigures) => number): number =>
      percentile(
        warm.map(f).sort((a, b) => a - b),
        50,
      );
    lines.push(
      `| ${String(size['nodes'])} | ${String(size['coldCreateToReadyMs'])} ms | ${String(size['warmCreateToReadyP50Ms'])} ms | ` +
        `${median((r) => r.operatorCpuS)} s | ${median((r) => r.fleetCpuS)} s | ${median((r) => r.operatorRssIdleMiB)} → ` +
        `${Math.max(...runs.map((r) => r.operatorRssPeakMiB))} MiB | ${Math.max(...runs.map((r) => r.eventLoopLagMaxMs))} ms | ` +
        `${median((r) => r.apiRequests.operator)} | ${median((r) => r.apiRequests.agentTokenReviews)} | ` +
        `${round(median((r) => r.statusBytes) / 1024, 1)} |`,
    );
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      nodes: { type: 'string', default: '100,1000,2000,5000' },
      runs: { type: 'string', default: '5' },
      'fleet-processes': { type: 'string', default: '2' },
      'faulty-every': { type: 'string', default: '50' },
      'policy-nodes': { type: 'string', default: '5000' },
      'policy-minutes': { type: 'string', default: '3' },
      'deadline-s': { type: 'string', default: String(DEFAULT_DEADLINE_S) },
      'operator-node-flags': { type: 'string', default: '' },
      'token-verification': { type: 'string', default: 'auto' },
      'fanout-concurrency': { type: 'string' },
      out: { type: 'string', default: path.join('bench', 'results', 'operator-scale.json') },
    },
  });
  const tokenVerification = values['token-verification'] as TokenVerificationMode;
  if (!['auto', 'local', 'tokenreview'].includes(tokenVerification))
    throw new Error('--token-verification must be auto, local or tokenreview (as the agent flag)');
  // By default the operator runs with the chart's Node flags (its heap cap), as it runs in a cluster.
  const flagsText = values['operator-node-flags'] ?? '';
  const operatorNodeFlags = (flagsText === '' ? await chartOperatorNodeFlags() : flagsText).split(/\s+/).filter((f) => f !== '');
  const integers = (flag: string, text: string, min: number, max: number): number[] => {
    const list = text
      .split(',')
      .filter((s) => s.trim() !== '')
      .map((s) => Number(s.trim()));
    if (!list.every((n) => Number.isInteger(n) && n >= min && n <= max))
      throw new Error(`--${flag} must be integers from ${min} to ${max}`);
    return list;
  };
  const sizes = integers('nodes', values.nodes ?? '', 1, MAX_NODES);
  const [runs = 5] = integers('runs', values.runs ?? '', 1, 50);
  const [fleetProcesses = 2] = integers('fleet-processes', values['fleet-processes'] ?? '', 1, 16);
  const [faultyEvery = 50] = integers('faulty-every', values['faulty-every'] ?? '', 0, MAX_NODES);
  const policySizes = new Set(integers('policy-nodes', values['policy-nodes'] ?? '', 1, MAX_NODES));
  const [policyMinutes = 3] = integers('policy-minutes', values['policy-minutes'] ?? '', 1, 30);
  const [deadlineS = DEFAULT_DEADLINE_S] = integers('deadline-s', values['deadline-s'] ?? '', 1, 24 * 3600);
  if (sizes.length === 0) throw new Error('--nodes names no size');
  // Unset: the operator's own default, as the chart runs it.
  const [fanoutConcurrency] = integers('fanout-concurrency', values['fanout-concurrency'] ?? '', 1, 10_000);
  const deadline = setTimeout(() => {
    process.stderr.write(`operator-scale-bench: gave up after ${deadlineS} s\n`);
    for (const p of running) void p.stop(1_000);
    setTimeout(() => process.exit(1), 1_500).unref();
  }, deadlineS * 1000);
  deadline.unref();

  // The template agents run with auth off on purpose: their warning about it is not news.
  const templateLogger = createLogger({ level: 'error', defaultMeta: { component: 'operator-scale-bench' }, stderrOnly: true });
  const work = await mkdtemp(path.join(os.tmpdir(), 'gpudiag-scale-docs-'));
  try {
    progress('collecting one snapshot per scenario from a real agent on the fake NVML library');
    const documents: Record<string, NodeSnapshotDocument> = {};
    for (const scenario of [HEALTHY_SCENARIO, ...FAULTY_SCENARIOS])
      documents[scenario] = await collectScenarioDocument(scenario, DIAGNOSTIC_SPEC.checks, templateLogger);
    const documentsFile = path.join(work, 'documents.json');
    await writeFile(documentsFile, JSON.stringify(documents));
    const snapshotBytes = Buffer.byteLength(JSON.stringify(documents[HEALTHY_SCENARIO]));

    const results: Record<string, unknown>[] = [];
    for (const [i, count] of sizes.entries()) {
      progress(`=== ${count} node(s) (${i + 1}/${sizes.length}) ===`);
      results.push(
        await benchSize(count, {
          faultyEvery,
          runs,
          fleetProcesses,
          policyMinutes: policySizes.has(count) ? policyMinutes : undefined,
          documentsFile,
          operatorNodeFlags,
          tokenVerification,
          fanoutConcurrency,
        }),
      );
    }
    const out = {
      date: new Date().toISOString(),
      node: process.version,
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      loadAverage1m: round(os.loadavg()[0] ?? NaN, 2),
      fleet:
        `${fleetProcesses} process(es) of prepared-snapshot agents (${snapshotBytes} bytes per healthy snapshot), ` +
        `every ${faultyEvery}th node faulty`,
      diagnosticSpec: DIAGNOSTIC_SPEC,
      fanoutConcurrency: fanoutConcurrency ?? 'operator default',
      tokenVerification,
      operatorNodeFlags,
      sizes: results,
    };
    const outFile = path.resolve(repoRoot, values.out ?? path.join('bench', 'results', 'operator-scale.json'));
    await mkdir(path.dirname(outFile), { recursive: true });
    await writeFile(outFile, `${JSON.stringify(out, null, 2)}\n`);
    const policyLines = results.flatMap((s) => (s['policy'] === undefined ? [] : [`policy: ${JSON.stringify(s['policy'])}`]));
    process.stdout.write(`${table(results)}\n${policyLines.join('\n')}\nwritten: ${path.relative(process.cwd(), outFile)}\n`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`operator-scale-bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    for (const p of running) void p.stop(1_000);
    setTimeout(() => process.exit(1), 1_500).unref();
  },
);

/**
 * MCP benchmark: `gpu_health` tool-call latency over stdio and Streamable HTTP for 1 and N (100)
 * simulated nodes × 8 GPUs, beside a direct agent snapshot of the same node, with the facade's
 * own share of each call. Loopback only, bounded in time (hard deadline), stops everything it
 * started. Prints figures and writes bench/results/mcp.json; asserts nothing.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/mcp-bench.js [--nodes 100] [--calls-one 30]
 *     [--calls-all 10] [--direct 30] [--watch-one 10] [--watch-all 5] [--agent-cache-ms 0]
 *     [--deadline-s 900] [--out mcp.json]
 *
 * One environment, as in operator-bench.ts: a real etcd + kube-apiserver, the CRDs and
 * config/rbac/ (operator.yaml, agent.yaml and operator-mcp.yaml), a simulated fleet of N nodes
 * (h100-sxm-8x-healthy, one shared fake NVML library, agents in this process on 127.1.x.y that
 * verify callers with TokenReview), the operator IN THIS PROCESS (`Operator.start`, as
 * `gpudiag dev up` runs it) as its ServiceAccount, and the MCP HTTP server
 * (`createMcpHttpServer`) on 127.0.0.1, also in this process and also as the operator's
 * ServiceAccount. The MCP caller is a ServiceAccount of its own whose Role allows only
 * gpudiagnostics create/get/list/watch/delete in the bench namespace: over HTTP its bound token
 * carries the audience `gpudiag-mcp`; over stdio `node bin/gpudiag.js mcp` runs as a child
 * process with a kubeconfig holding its API-server token.
 *
 * Series (each sequential, one call at a time, after a short warm-up):
 *   direct   GET http://<node ip>:<port>/v1/snapshot?checks=health,xid&xidSince=… on gpu-node-1
 *            with the operator's agent-audience token (what the operator's fan-out sends).
 *   stdio-1 / http-1  callTool gpu_health {nodeNames: [gpu-node-1]} with a real MCP SDK client.
 *   stdio-N / http-N  callTool gpu_health {} (every node with an agent: N).
 *   watch-1 / watch-all  the same GPUDiagnostic created by the admin and followed with a watch
 *            until Ready=True: the operator's part of an MCP call, without the facade.
 * The operator's time within each MCP call is what a separate admin watch of the bench namespace
 * sees: from the diagnostic's ADDED event to its Ready=True event; the facade's share is the
 * call's total minus that. API requests per call come from the kube-apiserver's
 * apiserver_request_total before and after each series.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CoreV1Api, CustomObjectsApi, RbacAuthorizationV1Api, Watch, type KubeConfig } from '@kubernetes/client-node';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { tokenVerifier } from '../agent/auth/token-verifier.js';
import { GPU_DIAGNOSTICS, type GPUDiagnostic } from '../api/index.js';
import { applyObjects, installCrds, readManifests } from '../dev/apply.js';
import { repoRoot } from '../dev/control-plane/binaries.js';
import { ControlPlane, freePort, kubeConfigForToken } from '../dev/control-plane/control-plane.js';
import { SimulatedFleet, type FleetNode } from '../dev/fleet/simulated-fleet.js';
import { createLogger } from '../lib/logger.js';
import { parseOperatorConfig } from '../operator/config.js';
import { createMcpHttpServer } from '../operator/mcp/http.js';
import { Operator } from '../operator/operator.js';
import { apiRequestCounts, percentile, progress, round, sleep } from './support.js';

const AGENT_NAMESPACE = 'gpudiag-system';
const BENCH_NAMESPACE = 'gpudiag-bench';
const AGENT_AUDIENCE = 'gpudiag-agent';
const MCP_AUDIENCE = 'gpudiag-mcp';
const CALLER = 'mcp-bench-caller';
const SCENARIO = 'h100-sxm-8x-healthy';
const FANOUT_CONCURRENCY = 256;
/** What the watch series asks: the same spec gpu_health builds (checks health + xid). */
const CHECKS = ['health', 'xid'] as const;
/** The operator's fan-out asks for XIDs of the last hour by default; the direct request does the same. */
const XID_LOOKBACK_MS = 3_600_000;
const DEFAULT_DEADLINE_S = 15 * 60;
const CALL_TIMEOUT_MS = 5 * 60_000;
const IDLE_SETTLE_MS = 3_000;
/** How long after an MCP answer the separate watch may still report the diagnostic Ready (two watches race). */
const READY_GRACE_MS = 2_000;

// ---------------------------------------------------------------- helpers

interface Stats {
  n: number;
  failures: number;
  minMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
}

function stats(samples: number[], failures: number): Stats {
  const s = [...samples].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / Math.max(1, s.length);
  return {
    n: s.length,
    failures,
    minMs: round(s[0] ?? NaN, 2),
    p50Ms: round(percentile(s, 50), 2),
    p90Ms: round(percentile(s, 90), 2),
    p99Ms: round(percentile(s, 99), 2),
    maxMs: round(s.at(-1) ?? NaN, 2),
    meanMs: round(mean, 2),
  };
}

/**
 * API requests per call between two scrapes, for the resources a call touches (GPUDiagnostics,
 * TokenReviews, Events); leases and the API server's own loops are left out.
 */
function apiPerCall(before: Map<string, number>, after: Map<string, number>, calls: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, value] of after) {
    const delta = value - (before.get(key) ?? 0);
    if (delta <= 0) continue;
    if (!/ (gpudiag\.io\/gpudiagnostics|authentication\.k8s\.io\/tokenreviews|events\.k8s\.io\/events|core\/events)/.test(key)) continue;
    out[key] = round(delta / calls, 2);
  }
  return out;
}

// ---------------------------------------------------------------- series

interface Series {
  name: string;
  description: string;
  stats: Stats;
  samplesMs: number[];
  /** Requests per call to the API server (GPUDiagnostics, TokenReviews, Events). */
  apiRequestsPerCall?: Record<string, number>;
  /** Anything worth recording about the answers (sizes, node counts). */
  notes: Record<string, unknown>;
  /** MCP series: the operator's part of each call (ADDED → Ready=True seen by a separate watch), and the rest. */
  operatorMs?: Stats;
  facadeMs?: Stats;
}

async function runSeries(
  name: string,
  description: string,
  count: number,
  warmup: number,
  once: (i: number) => Promise<void>,
  admin: KubeConfig | undefined,
  notes: Record<string, unknown> = {},
): Promise<Series> {
  for (let i = 0; i < warmup; i++) await once(-1 - i);
  const before = admin === undefined ? undefined : await apiRequestCounts(admin);
  const samples: number[] = [];
  let failures = 0;
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    try {
      await once(i);
      samples.push(performance.now() - t0);
    } catch (err) {
      failures += 1;
      progress(`  ${name} #${i} failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  const after = admin === undefined ? undefined : await apiRequestCounts(admin);
  const result: Series = { name, description, stats: stats(samples, failures), samplesMs: samples.map((s) => round(s, 2)), notes };
  if (before !== undefined && after !== undefined) result.apiRequestsPerCall = apiPerCall(before, after, count);
  progress(
    `  ${name}: p50 ${result.stats.p50Ms} ms, p90 ${result.stats.p90Ms} ms, p99 ${result.stats.p99Ms} ms (${result.stats.n} ` +
      `calls, ${failures} failed)`,
  );
  return result;
}

/** When the separate watch saw a diagnostic created and Ready (performance.now()). */
interface Seen {
  addedMs?: number;
  readyMs?: number;
}

/** The diagnostic watcher: waits for Ready, and measures the operator's part of a call. */
interface DiagnosticWatcher {
  waitFor(name: string): Promise<GPUDiagnostic>;
  /** ADDED → Ready=True of `name` as this watch saw it (waits up to READY_GRACE_MS for Ready); NaN if unseen. */
  operatorMs(name: string): Promise<number>;
  stop(): void;
}

/** Follows every GPUDiagnostic of the bench namespace with one watch, recording when each was created and Ready. */
async function diagnosticWatcher(admin: KubeConfig): Promise<DiagnosticWatcher> {
  let stopping = false;
  const waiters = new Map<string, (obj: GPUDiagnostic) => void>();
  const seen = new Map<string, Seen>();
  const watchPath = `/apis/${GPU_DIAGNOSTICS.group}/${GPU_DIAGNOSTICS.version}/namespaces/${BENCH_NAMESPACE}/${GPU_DIAGNOSTICS.plural}`;
  const controller = await new Watch(admin).watch(
    watchPath,
    {},
    (type: string, obj: GPUDiagnostic) => {
      const at = performance.now();
      const name = obj.metadata.name ?? '';
      const entry = seen.get(name) ?? {};
      seen.set(name, entry);
      if (type === 'ADDED') entry.addedMs ??= at;
      if (type !== 'MODIFIED') return;
      const ready = obj.status?.conditions?.find((c) => c.type === 'Ready');
      if (ready?.status !== 'True' && obj.status?.phase !== 'Failed') return;
      entry.readyMs ??= at;
      const waiter = waiters.get(name);
      if (waiter === undefined) return;
      waiters.delete(name);
      waiter(obj);
    },
    (err: unknown) => {
      if (!stopping && err !== null && err !== undefined)
        progress(`watch of the bench namespace ended: ${err instanceof Error ? err.message : String(err)}`);
    },
  );
  return {
    waitFor(name: string): Promise<GPUDiagnostic> {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(name);
          reject(new Error(`${name} not Ready within ${CALL_TIMEOUT_MS / 1000} s`));
        }, CALL_TIMEOUT_MS);
        waiters.set(name, (obj) => {
          clearTimeout(timer);
          resolve(obj);
        });
      });
    },
    async operatorMs(name: string): Promise<number> {
      const until = performance.now() + READY_GRACE_MS;
      while (seen.get(name)?.readyMs === undefined && performance.now() < until) await sleep(5);
      const entry = seen.get(name);
      seen.delete(name);
      return entry?.addedMs !== undefined && entry.readyMs !== undefined ? entry.readyMs - entry.addedMs : NaN;
    },
    stop(): void {
      stopping = true;
      controller.abort();
    },
  };
}

interface ToolAnswer {
  isError?: boolean;
  content?: { type: string; text?: string }[];
  structuredContent?: { summary?: { nodesTargeted?: number; nodesByStatus?: Record<string, number> }; diagnostic?: { name?: string } };
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      nodes: { type: 'string', default: '100' },
      'calls-one': { type: 'string', default: '30' },
      'calls-all': { type: 'string', default: '10' },
      direct: { type: 'string', default: '30' },
      'watch-one': { type: 'string', default: '10' },
      'watch-all': { type: 'string', default: '5' },
      'agent-cache-ms': { type: 'string', default: '0' },
      'deadline-s': { type: 'string', default: String(DEFAULT_DEADLINE_S) },
      out: { type: 'string', default: 'mcp.json' },
    },
  });
  const num = (name: keyof typeof values, min: number, max: number): number => {
    const n = Number(values[name]);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer from ${min} to ${max}`);
    return n;
  };
  const nodeCount = num('nodes', 1, 1000);
  const callsOne = num('calls-one', 1, 10_000);
  const callsAll = num('calls-all', 1, 10_000);
  const directCalls = num('direct', 1, 100_000);
  const watchOne = num('watch-one', 0, 10_000);
  const watchAll = num('watch-all', 0, 10_000);
  const agentCacheMs = num('agent-cache-ms', 0, 24 * 3600_000);
  const deadlineS = num('deadline-s', 1, 24 * 3600);
  const outName = values.out ?? 'mcp.json';
  if (!/^[\w.-]+\.json$/.test(outName)) throw new Error('--out must be a file name ending in .json (written to bench/results/)');

  const deadline = setTimeout(() => {
    // Everything else runs in this process; the control plane's watchdog stops etcd and
    // kube-apiserver once this process is gone.
    process.stderr.write(`mcp-bench: gave up after ${deadlineS} s\n`);
    process.exit(1);
  }, deadlineS * 1000);
  deadline.unref();

  const logger = createLogger({ level: 'warn', defaultMeta: { component: 'mcp-bench' }, stderrOnly: true });
  const stops: (() => Promise<void>)[] = [];
  const out: Record<string, unknown> = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: round(os.totalmem() / 1024 ** 3, 1),
    loadAverage1mAtStart: round(os.loadavg()[0] ?? NaN, 2),
    nodes: nodeCount,
    gpusPerNode: 8,
    scenario: SCENARIO,
    operator: 'in this process (Operator.start), as its ServiceAccount (config/rbac/operator.yaml + operator-mcp.yaml)',
    mcpServer: 'createMcpHttpServer on 127.0.0.1, in this process, stateless Streamable HTTP, audiences [gpudiag-mcp]',
    mcpClient:
      '@modelcontextprotocol/sdk Client + StreamableHTTPClientTransport, one connection, bearer token of a ServiceAccount ' +
      '(Role: gpudiagnostics create/get/list/watch/delete)',
    mcpStdio: 'node bin/gpudiag.js mcp as a child process (StdioClientTransport), kubeconfig with the caller ServiceAccount token',
    wait: 'the facade watches its GPUDiagnostic (operator/mcp/diagnostic-wait.ts)',
    agentSnapshotCacheMs: agentCacheMs,
    agentAuth: 'TokenReview (one shared TokenReview client; each agent caches answers 30 s)',
    fanoutConcurrency: FANOUT_CONCURRENCY,
  };
  const clients: Client[] = [];
  let watcher: DiagnosticWatcher | undefined;
  let kubeconfigDir: string | undefined;
  try {
    // --- control plane, CRDs, RBAC
    const controlPlane = await ControlPlane.start({ onProgress: (m) => progress(`control plane: ${m}`) });
    stops.push(() => controlPlane.stop());
    const admin = controlPlane.adminKubeConfig();
    await installCrds(admin, path.join(repoRoot, 'crds'));
    const core = admin.makeApiClient(CoreV1Api);
    for (const name of [AGENT_NAMESPACE, BENCH_NAMESPACE]) await core.createNamespace({ body: { metadata: { name } } });
    // operator.yaml, agent.yaml and operator-mcp.yaml (TokenReview + impersonation for the operator's ServiceAccount).
    await applyObjects(admin, await readManifests([path.join(repoRoot, 'config', 'rbac')]));
    const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
    await core.createNamespacedServiceAccount({ namespace: BENCH_NAMESPACE, body: { metadata: { name: CALLER } } });
    await rbac.createNamespacedRole({
      namespace: BENCH_NAMESPACE,
      body: {
        metadata: { name: CALLER },
        rules: [{ apiGroups: ['gpudiag.io'], resources: ['gpudiagnostics'], verbs: ['create', 'get', 'list', 'watch', 'delete'] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: BENCH_NAMESPACE,
      body: {
        metadata: { name: CALLER },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: CALLER },
        subjects: [{ kind: 'ServiceAccount', name: CALLER, namespace: BENCH_NAMESPACE }],
      },
    });
    const caPem = await readFile(controlPlane.endpoint.certs.caCert, 'utf8');
    const token = async (namespace: string, name: string, audiences: string[]): Promise<string> => {
      const res = await core.createNamespacedServiceAccountToken({
        namespace,
        name,
        body: { spec: { audiences, expirationSeconds: 24 * 3600 } },
      });
      return res.status?.token ?? '';
    };
    const serviceAccountKc = async (name: string): Promise<KubeConfig> =>
      kubeConfigForToken(controlPlane.endpoint.server, caPem, await token(AGENT_NAMESPACE, name, []), name);

    // --- fleet
    const agentPort = await freePort();
    const agentKc = await serviceAccountKc('gpudiag-agent');
    progress(
      `starting ${nodeCount} simulated node(s) × 8 GPUs (${SCENARIO}, shared fake NVML library, agent snapshot cache ${agentCacheMs} ms)`,
    );
    const fleetStarted = performance.now();
    const fleet = await SimulatedFleet.start({
      kc: admin,
      namespace: AGENT_NAMESPACE,
      nodes: Array.from({ length: nodeCount }, (_, i) => ({ name: `gpu-node-${i + 1}`, scenario: SCENARIO })),
      port: agentPort,
      logger,
      sharedLibrary: true,
      snapshotCacheMs: agentCacheMs,
      auth: {
        authenticator: tokenVerifier(agentKc, { mode: 'auto', audience: AGENT_AUDIENCE, logger }),
        allowedCallers: [`system:serviceaccount:${AGENT_NAMESPACE}:gpudiag-operator`],
      },
    });
    stops.push(() => fleet.stop());
    out['fleetStartS'] = round((performance.now() - fleetStarted) / 1000, 1);
    progress(`fleet running in ${String(out['fleetStartS'])} s`);
    const node1: FleetNode | undefined = fleet.nodes.find((n) => n.spec.name === 'gpu-node-1');
    if (node1 === undefined) throw new Error('gpu-node-1 is missing from the fleet');

    // --- operator (in this process) as its ServiceAccount
    const operatorKc = await serviceAccountKc('gpudiag-operator');
    const agentToken = await token(AGENT_NAMESPACE, 'gpudiag-operator', [AGENT_AUDIENCE]);
    const config = parseOperatorConfig(
      [
        '--agent-namespace',
        AGENT_NAMESPACE,
        '--agent-port',
        String(agentPort),
        '--probe-listen',
        '127.0.0.1:0',
        '--fanout-concurrency',
        String(FANOUT_CONCURRENCY),
        '--identity',
        'bench-operator-mcp',
      ],
      {},
      'bench',
    );
    const operator = await Operator.start(config, { kc: operatorKc, logger, tokenProvider: () => Promise.resolve(agentToken) });
    stops.push(() => operator.stop());
    const probeUrl = `http://127.0.0.1:${operator.probeAddress?.port ?? 0}`;
    const leadingBy = Date.now() + 60_000;
    let lastError: unknown;
    for (;;) {
      if (Date.now() > leadingBy) throw new Error(`the operator did not become ready and leader within 60 s (last: ${String(lastError)})`);
      const ready = await fetch(`${probeUrl}/readyz`, { signal: AbortSignal.timeout(2_000) }).catch((err: unknown) => {
        lastError = err;
        return undefined;
      });
      await ready?.arrayBuffer();
      if (ready?.status === 200 && /^gpudiag_leader 1$/m.test(await operator.metrics.registry.metrics())) break;
      await sleep(100);
    }

    // --- MCP over HTTP (server in this process, as the operator's ServiceAccount) and over stdio (a child process, as the caller)
    const callerToken = await token(BENCH_NAMESPACE, CALLER, [MCP_AUDIENCE]);
    const mcp = createMcpHttpServer({
      kc: operatorKc,
      namespace: BENCH_NAMESPACE,
      logger,
      host: '127.0.0.1',
      port: 0,
      audiences: [MCP_AUDIENCE],
      settings: { agentNamespace: AGENT_NAMESPACE },
    });
    const address = await mcp.start();
    stops.push(() => mcp.stop());
    const http = new Client({ name: 'gpudiag-mcp-bench', version: '0.0.0' });
    await http.connect(
      new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${address.port}/mcp`), {
        requestInit: { headers: { Authorization: `Bearer ${callerToken}` } },
      }),
    );
    clients.push(http);
    kubeconfigDir = await mkdtemp(path.join(os.tmpdir(), 'gpudiag-mcp-bench-'));
    const callerKubeconfig = path.join(kubeconfigDir, 'caller.kubeconfig');
    const callerKc = kubeConfigForToken(controlPlane.endpoint.server, caPem, await token(BENCH_NAMESPACE, CALLER, []), CALLER);
    await writeFile(callerKubeconfig, callerKc.exportConfig(), { mode: 0o600 });
    const stdio = new Client({ name: 'gpudiag-mcp-bench', version: '0.0.0' });
    await stdio.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: [
          path.join(repoRoot, 'bin', 'gpudiag.js'),
          'mcp',
          '--kubeconfig',
          callerKubeconfig,
          '--namespace',
          BENCH_NAMESPACE,
          '--agent-namespace',
          AGENT_NAMESPACE,
          '--wait-seconds',
          String(CALL_TIMEOUT_MS / 1000),
          '--log-level',
          'warn',
        ],
        stderr: 'inherit',
        env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: os.tmpdir() },
      }),
    );
    clients.push(stdio);
    watcher = await diagnosticWatcher(admin);
    await sleep(IDLE_SETTLE_MS);

    // --- series
    const series: Series[] = [];
    const directUrl = (): string =>
      `http://${node1.address}:${agentPort}/v1/snapshot?` +
      `${new URLSearchParams({ checks: CHECKS.join(','), xidSince: new Date(Date.now() - XID_LOOKBACK_MS).toISOString() }).toString()}`;
    let directBytes = 0;
    progress(`direct agent snapshot of gpu-node-1 (${node1.address}:${agentPort}) × ${directCalls}`);
    series.push(
      await runSeries(
        'direct',
        "GET /v1/snapshot?checks=health,xid on gpu-node-1 with the operator's agent-audience token (fetch, keep-alive)",
        directCalls,
        3,
        async () => {
          const res = await fetch(directUrl(), {
            headers: { Authorization: `Bearer ${agentToken}` },
            signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
          });
          const body = await res.arrayBuffer();
          if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
          directBytes = body.byteLength;
        },
        undefined,
      ),
    );
    (series.at(-1) as Series).notes['responseBytes'] = directBytes;

    const shares = new Map<string, { operatorMs: number[]; facadeMs: number[] }>();
    const mcpCall = async (
      series: string,
      client: Client,
      args: Record<string, unknown>,
      expectNodes: number,
      notes: Record<string, unknown>,
    ): Promise<void> => {
      const t0 = performance.now();
      const r = (await client.callTool({ name: 'gpu_health', arguments: args }, undefined, { timeout: CALL_TIMEOUT_MS })) as ToolAnswer;
      const totalMs = performance.now() - t0;
      if (r.isError === true) throw new Error(`tool error: ${(r.content ?? []).map((c) => c.text ?? '').join(' ')}`);
      const summary = r.structuredContent?.summary;
      if (summary?.nodesTargeted !== expectNodes)
        throw new Error(`gpu_health targeted ${summary?.nodesTargeted ?? '?'} node(s), expected ${expectNodes}`);
      notes['nodesByStatus'] = summary.nodesByStatus;
      notes['responseBytes'] = Buffer.byteLength(JSON.stringify(r));
      const operatorMs = (await watcher?.operatorMs(r.structuredContent?.diagnostic?.name ?? '')) ?? NaN;
      if (Number.isNaN(operatorMs)) return;
      const share = shares.get(series) ?? { operatorMs: [], facadeMs: [] };
      shares.set(series, share);
      share.operatorMs.push(operatorMs);
      share.facadeMs.push(totalMs - operatorMs);
    };
    const transports: [string, Client][] = [
      ['stdio', stdio],
      ['http', http],
    ];
    const notesOf: Record<string, Record<string, unknown>> = {};
    for (const [transport, client] of transports) {
      const one = `${transport}-1`;
      const all = `${transport}-${nodeCount}`;
      notesOf[one] = {};
      notesOf[all] = {};
      progress(`MCP gpu_health {nodeNames: [gpu-node-1]} over ${transport} × ${callsOne}`);
      series.push(
        await runSeries(
          one,
          `MCP callTool gpu_health {nodeNames: [gpu-node-1]} over ${transport}`,
          callsOne,
          2,
          (i) => mcpCall(i < 0 ? 'warm-up' : one, client, { nodeNames: ['gpu-node-1'] }, 1, notesOf[one] ?? {}),
          admin,
          notesOf[one],
        ),
      );
      progress(`MCP gpu_health {} (${nodeCount} nodes) over ${transport} × ${callsAll}`);
      series.push(
        await runSeries(
          all,
          `MCP callTool gpu_health {} over ${transport} (all ${nodeCount} nodes)`,
          callsAll,
          1,
          (i) => mcpCall(i < 0 ? 'warm-up' : all, client, {}, nodeCount, notesOf[all] ?? {}),
          admin,
          notesOf[all],
        ),
      );
    }
    for (const s of series) {
      const share = shares.get(s.name);
      if (share === undefined) continue;
      s.operatorMs = stats(share.operatorMs, 0);
      s.facadeMs = stats(share.facadeMs, 0);
    }

    const custom = admin.makeApiClient(CustomObjectsApi);
    const watched = async (prefix: string, i: number, nodeNames: string[] | undefined): Promise<void> => {
      const name = `${prefix}-${i < 0 ? `warm${-i}` : String(i)}`;
      const done = watcher?.waitFor(name);
      // A create that fails must not leave the wait's timeout to reject unobserved.
      done?.catch((err: unknown) => progress(`waiting for ${name} ended: ${err instanceof Error ? err.message : String(err)}`));
      await custom.createNamespacedCustomObject({
        ...GPU_DIAGNOSTICS,
        namespace: BENCH_NAMESPACE,
        body: {
          apiVersion: 'gpudiag.io/v1alpha1',
          kind: 'GPUDiagnostic',
          metadata: { name },
          spec: { checks: [...CHECKS], ttlSecondsAfterFinished: 3600, ...(nodeNames !== undefined ? { nodeNames } : {}) },
        },
      });
      const obj = await done;
      if (obj?.status?.phase === 'Failed') throw new Error(`${name} failed`);
    };
    if (watchOne > 0) {
      progress(`GPUDiagnostic for gpu-node-1 created by the admin, watched until Ready × ${watchOne}`);
      series.push(
        await runSeries(
          'watch-1',
          'GPUDiagnostic {nodeNames: [gpu-node-1]} created by the admin, watched until Ready=True (no MCP, no polling)',
          watchOne,
          1,
          (i) => watched('watch-one', i, ['gpu-node-1']),
          admin,
        ),
      );
    }
    if (watchAll > 0) {
      progress(`GPUDiagnostic for all ${nodeCount} nodes created by the admin, watched until Ready × ${watchAll}`);
      series.push(
        await runSeries(
          `watch-${nodeCount}`,
          `GPUDiagnostic over all ${nodeCount} nodes created by the admin, watched until Ready=True (no MCP, no polling)`,
          watchAll,
          1,
          (i) => watched('watch-all', i, undefined),
          admin,
        ),
      );
    }

    const p50 = (name: string): number => series.find((s) => s.name === name)?.stats.p50Ms ?? NaN;
    const ratios: Record<string, number> = {};
    for (const transport of ['stdio', 'http']) {
      ratios[`${transport}1OverDirectP50`] = round(p50(`${transport}-1`) / p50('direct'), 1);
      ratios[`${transport}${nodeCount}OverDirectP50`] = round(p50(`${transport}-${nodeCount}`) / p50('direct'), 1);
      ratios[`${transport}1OverWatch1P50`] = round(p50(`${transport}-1`) / p50('watch-1'), 2);
      ratios[`${transport}${nodeCount}OverWatch${nodeCount}P50`] = round(p50(`${transport}-${nodeCount}`) / p50(`watch-${nodeCount}`), 2);
    }
    out['series'] = series;
    out['ratios'] = ratios;
    out['loadAverage1mAtEnd'] = round(os.loadavg()[0] ?? NaN, 2);

    const resultsDir = path.join(repoRoot, 'bench', 'results');
    await mkdir(resultsDir, { recursive: true });
    await writeFile(path.join(resultsDir, outName), `${JSON.stringify(out, null, 2)}\n`);

    const w = [12, 4, 10, 10, 10, 10, 10, 14, 14];
    const row = (cells: (string | number)[]): string =>
      cells.map((c, i) => (i === 0 ? String(c).padEnd(w[i] ?? 0) : String(c).padStart(w[i] ?? 0))).join('  ');
    const ms = (n: number | undefined): string => (n === undefined ? '' : `${n} ms`);
    const lines = [
      `gpudiag MCP benchmark — gpu_health over stdio and Streamable HTTP, ${nodeCount} simulated nodes × 8 GPUs, the facade ` +
        `watching, agent cache ${agentCacheMs} ms, ${String(out['cpus'])} CPUs, node ${process.version}`,
      '',
      row(['series', 'n', 'min', 'p50', 'p90', 'p99', 'max', 'operator p50', 'facade p50']),
      ...series.map((s) =>
        row([
          s.name,
          s.stats.n,
          ms(s.stats.minMs),
          ms(s.stats.p50Ms),
          ms(s.stats.p90Ms),
          ms(s.stats.p99Ms),
          ms(s.stats.maxMs),
          ms(s.operatorMs?.p50Ms),
          ms(s.facadeMs?.p50Ms),
        ]),
      ),
      '  (operator: ADDED → Ready=True seen by a separate admin watch; facade: the call minus that)',
      '',
      `ratios of p50s: ${Object.entries(ratios)
        .map(([k, v]) => `${k} ${v}×`)
        .join(', ')}`,
      '',
      'API requests per call (GPUDiagnostics, TokenReviews, Events):',
      ...series
        .filter((s) => s.apiRequestsPerCall !== undefined)
        .map(
          (s) =>
            `  ${s.name}: ${Object.entries(s.apiRequestsPerCall ?? {})
              .map(([k, n]) => `${n} ${k}`)
              .join(', ')}`,
        ),
      `failures: ${series.map((s) => `${s.name} ${s.stats.failures}`).join(', ')}; load average ` +
        `${String(out['loadAverage1mAtStart'])} → ${String(out['loadAverage1mAtEnd'])}`,
      `answers: direct ${directBytes} B; ${Object.entries(notesOf)
        .map(([k, v]) => `${k} ${JSON.stringify(v)}`)
        .join('; ')}`,
      `written: ${path.relative(process.cwd(), path.join(resultsDir, outName))}`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    watcher?.stop();
    if (kubeconfigDir !== undefined) await rm(kubeconfigDir, { recursive: true, force: true });
    for (const client of clients)
      await client
        .close()
        .catch((err: unknown) => progress(`closing an MCP client failed: ${err instanceof Error ? err.message : String(err)}`));
    for (const stop of stops.reverse())
      await stop().catch((err: unknown) => progress(`cleanup failed: ${err instanceof Error ? err.message : String(err)}`));
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`mcp-bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);

/**
 * Hostile input against a real `gpudiag operator` process serving probes and MCP: the
 * raw-socket corpus (test/fixtures/http-fuzz/) on every path of each listener beside a
 * slowloris client, then property-based query strings (probes) and JSON-RPC bodies sent with a
 * valid token (MCP). Afterwards the process is alive, /healthz answers 200, an authenticated
 * MCP request still succeeds and memory is back near where it started.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { freePort } from '../../dev/control-plane/control-plane.js';
import { testCluster, useTestNamespace } from '../support/cluster.js';
import { fuzzListener, isJsonObject, reportFuzz, rssMiB } from '../support/http-fuzz.js';
import { spawnGpudiag, type GpudiagProcess } from '../support/processes.js';
import { applyRbac } from '../support/rbac.js';

const ns = useTestNamespace('e2e-opfuzz');
const PROPERTY_RUNS = 150;
/** The head timeout (lib/http/server.ts) plus the 1 s check interval and slack. */
const SLOWLORIS_BOUND_MS = 14_000;
let dir: string;
let operator: GpudiagProcess;
let probes: URL;
let mcp: URL;
let callerToken: string;

/** POSTs a JSON-RPC body to /mcp as the caller. */
async function mcpPost(body: string, token = callerToken): Promise<{ status: number; text: string }> {
  const res = await fetch(mcp, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
    body,
  });
  return { status: res.status, text: await res.text() };
}

beforeAll(async () => {
  await applyRbac('operator.yaml', ns.name);
  await applyRbac('operator-mcp.yaml', ns.name);
  dir = await mkdtemp(path.join(os.tmpdir(), 'gpudiag-operator-fuzz-'));
  const kubeconfig = path.join(dir, 'kubeconfig');
  const tokenFile = path.join(dir, 'agent-token');
  await writeFile(kubeconfig, (await testCluster().asServiceAccount(ns.name, 'gpudiag-operator')).exportConfig(), { mode: 0o600 });
  await writeFile(tokenFile, await testCluster().serviceAccountToken(ns.name, 'gpudiag-operator', ['gpudiag-agent']), { mode: 0o600 });
  callerToken = await testCluster().serviceAccountToken(ns.name, 'mcp-fuzzer', ['gpudiag-mcp']);
  const [probePort, mcpPort] = [await freePort(), await freePort()];
  probes = new URL(`http://127.0.0.1:${probePort}`);
  mcp = new URL(`http://127.0.0.1:${mcpPort}/mcp`);
  operator = spawnGpudiag([
    'operator',
    '--kubeconfig',
    kubeconfig,
    '--namespaces',
    ns.name,
    '--agent-namespace',
    ns.name,
    '--policy-selector',
    `gpudiag.io/shard=${ns.name}`,
    '--agent-token-file',
    tokenFile,
    '--probe-listen',
    `127.0.0.1:${probePort}`,
    '--mcp-listen',
    `127.0.0.1:${mcpPort}`,
    '--mcp-namespace',
    ns.name,
    '--mcp-read-only',
    'true',
    '--mcp-rate-limit-burst',
    '100000',
    '--mcp-rate-limit-per-second',
    '10000',
    '--identity',
    'fuzz',
    '--log-level',
    'warn',
  ]);
  const deadline = Date.now() + 20_000;
  while (
    !(await fetch(new URL('/readyz', probes)).then(
      (r) => r.status === 200,
      () => false,
    ))
  ) {
    if (Date.now() > deadline) throw new Error(`operator not ready:\n${operator.output().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}, 60_000);

afterAll(async () => {
  operator?.child.kill('SIGTERM');
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

const methods = [
  'initialize',
  'tools/list',
  'tools/call',
  'prompts/list',
  'prompts/get',
  'resources/list',
  'resources/read',
  'resources/templates/list',
  'ping',
  'notifications/initialized',
  'bogus/method',
];
const readTools = [
  'get_diagnostic',
  'list_diagnostics',
  'get_health_policy',
  'list_gpu_nodes',
  'describe_gpu_node',
  'gpu_health',
  'no_such_tool',
];
/** JSON-RPC-shaped bodies (most of them wrong somewhere), raw JSON and non-JSON text. */
const mcpBody = fc.oneof(
  fc
    .record({
      jsonrpc: fc.oneof(fc.constant('2.0'), fc.string({ maxLength: 5 })),
      id: fc.oneof(fc.integer(), fc.string({ maxLength: 10 }), fc.constant(null)),
      method: fc.constantFrom(...methods),
      params: fc.oneof(
        fc.record({ name: fc.constantFrom(...readTools), arguments: fc.object({ maxDepth: 2 }) }),
        fc.record({ uri: fc.oneof(fc.webUrl(), fc.constant('gpudiag://diagnostics/%zz/x')) }),
        fc.anything({ maxDepth: 2 }),
      ),
    })
    .map((o) => JSON.stringify(o)),
  fc.json({ maxDepth: 3 }),
  fc.string({ maxLength: 200 }),
);

describe('operator listeners under hostile input', () => {
  it('probes and MCP survive the raw corpus, slowloris clients and property-based input, and still serve', async () => {
    const pid = operator.child.pid ?? 0;
    const rssBefore = await rssMiB(pid);
    const [probeResult, mcpResult] = await Promise.all([
      fuzzListener(
        pid,
        { port: Number(probes.port), hostHeader: probes.host, paths: ['/healthz', '/readyz', '/metrics', '/no-such-path'] },
        SLOWLORIS_BOUND_MS,
      ),
      fuzzListener(pid, { port: Number(mcp.port), hostHeader: mcp.host, paths: ['/mcp', '/', '/mcp/x', '/healthz'] }, SLOWLORIS_BOUND_MS),
    ]);

    await fc.assert(
      fc.asyncProperty(
        fc.webQueryParameters(),
        fc.constantFrom('/healthz', '/readyz', '/metrics'),
        async (query, p) => (await fetch(new URL(`${p}?${query}`, probes))).status === 200,
      ),
      { numRuns: PROPERTY_RUNS },
    );
    await fc.assert(
      fc.asyncProperty(mcpBody, async (body) => {
        const { status } = await mcpPost(body);
        // Answered as the protocol says; never an internal error.
        return [200, 202, 400, 404, 406, 413, 415].includes(status);
      }),
      { numRuns: PROPERTY_RUNS },
    );

    const crashes = operator.exitCode() === undefined ? 0 : 1;
    const rssAfter = await rssMiB(pid);
    reportFuzz('operator probes', { ...probeResult, rssBeforeMiB: rssBefore, rssAfterMiB: rssAfter }, PROPERTY_RUNS, crashes);
    reportFuzz('operator MCP', { ...mcpResult, rssBeforeMiB: rssBefore, rssAfterMiB: rssAfter }, PROPERTY_RUNS, crashes);
    expect(operator.exitCode()).toBeUndefined();
    for (const result of [probeResult, mcpResult]) {
      expect(result.corpus.sent).toBeGreaterThanOrEqual(300);
      expect(result.corpus.unanswered).toEqual([]);
      expect(result.corpus.statuses['500'] ?? 0).toBe(0);
      expect(result.slowloris.closedByServer).toBe(result.slowloris.connections);
    }
    expect((await fetch(new URL('/healthz', probes))).status).toBe(200);
    const listed = await mcpPost(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }));
    expect(listed.status).toBe(200);
    expect(listed.text).toContain('"name":"get_diagnostic"');
    expect(rssAfter).toBeLessThan(rssBefore + 64);
    expect(operator.output()).not.toContain('request handler failed');
    // Whatever the requests carried, every log record is still one JSON line (no log forgery).
    const lines = operator
      .output()
      .split('\n')
      .filter((l) => l !== '');
    expect(lines.filter((l) => !isJsonObject(l))).toEqual([]);
  }, 150_000);
});

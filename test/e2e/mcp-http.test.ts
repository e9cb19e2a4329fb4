/**
 * End to end over Streamable HTTP: the operator-side endpoint verifies ServiceAccount tokens with
 * TokenReview (as the operator, with config/rbac/operator-mcp.yaml) and acts as the caller by
 * impersonation, so each caller's own RBAC decides. Real SDK clients, real API server, real
 * operator and simulated agents, loopback only.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { GPU_DIAGNOSTICS, type GPUDiagnostic } from '../../api/index.js';
import { createMcpHttpServer } from '../../operator/mcp/http.js';
import { kubeGetText } from '../../lib/kube/raw-request.js';
import { createLogger } from '../../lib/logger.js';
import { testCluster } from '../support/cluster.js';
import { countRequests } from '../support/request-counter.js';
import { connectHttp, resultText, useMcpEnvironment } from './mcp-harness.js';

const env = useMcpEnvironment('e2e-mcp-http');
let url: URL;
let userToken: string;
let client: Client;

const initialize = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '0' } },
};

/** One raw POST (node:http, so Host and Origin can be anything). */
async function post(
  target: URL,
  options: { token?: string; host?: string; origin?: string; body?: string; method?: string },
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {
      'Content-Type': 'application/json',
      Accept: 'application/json, text/event-stream',
      Host: options.host ?? target.host,
    };
    if (options.token !== undefined) headers['Authorization'] = `Bearer ${options.token}`;
    if (options.origin !== undefined) headers['Origin'] = options.origin;
    const req = request(
      { host: target.hostname, port: target.port, path: target.pathname, method: options.method ?? 'POST', headers },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body ?? JSON.stringify(initialize));
  });
}

/** TokenReviews the API server has answered so far (its own request counter). */
async function tokenReviewsSent(): Promise<number> {
  const text = await kubeGetText(testCluster().admin(), '/metrics');
  let total = 0;
  for (const line of text.split('\n'))
    if (line.startsWith('apiserver_request_total{') && line.includes('resource="tokenreviews"') && line.includes('verb="POST"'))
      total += Number(line.slice(line.lastIndexOf(' ') + 1));
  return total;
}

async function diagnosticsCreatedByMcp(namespace: string): Promise<GPUDiagnostic[]> {
  const api = testCluster().admin().makeApiClient(CustomObjectsApi);
  return (
    (await api.listNamespacedCustomObject({ ...GPU_DIAGNOSTICS, namespace, labelSelector: 'gpudiag.io/created-by=mcp' })) as {
      items: GPUDiagnostic[];
    }
  ).items;
}

beforeAll(async () => {
  ({ url } = await env.http());
  userToken = await env.token('user');
  client = await connectHttp(url, userToken);
}, 30_000);

afterAll(async () => {
  await client?.close();
});

describe('mcp over HTTP: every tool as the caller', () => {
  it('runs every tool, acting as the ServiceAccount behind the token', async () => {
    const { tools } = await client.listTools();
    expect(tools).toHaveLength(12);
    // A pod for pod_gpus and explain_pod_failure (no agent here reads pod-resources: no GPU lists it).
    await testCluster()
      .admin()
      .makeApiClient(CoreV1Api)
      .createNamespacedPod({
        namespace: env.ns,
        body: {
          metadata: { name: 'http-pod' },
          spec: {
            nodeName: env.nodes.healthy,
            containers: [{ name: 'main', image: 'example/train', resources: { limits: { 'nvidia.com/gpu': '1' } } }],
          },
        },
      });
    const calls: [string, Record<string, unknown>][] = [
      ['list_gpu_nodes', {}],
      ['gpu_inventory', { nodeNames: [env.nodes.healthy] }],
      ['gpu_health', {}],
      ['analyze_xid_errors', { since: '720h', policy: env.xidPolicy }],
      ['describe_gpu_node', { node: env.nodes.dbe }],
      ['pod_gpus', { namespace: env.ns, name: 'http-pod' }],
      ['explain_pod_failure', { namespace: env.ns, name: 'http-pod' }],
      ['run_diagnostic', { checks: ['thermal'], nodeNames: [env.nodes.healthy] }],
      ['list_diagnostics', {}],
      ['list_health_policies', {}],
      ['get_health_policy', { name: env.xidPolicy }],
    ];
    const results: Record<string, Record<string, unknown>> = {};
    for (const [name, args] of calls) {
      const r = await client.callTool({ name, arguments: args });
      expect({ name, isError: r.isError === true, text: r.isError === true ? resultText(r) : '' }).toEqual({
        name,
        isError: false,
        text: '',
      });
      expect(resultText(r).length).toBeGreaterThan(0);
      results[name] = (r.structuredContent ?? {}) as Record<string, unknown>;
    }
    expect(results['gpu_health']?.['summary']).toMatchObject({ nodesTargeted: 3, nodesByStatus: { critical: 2, healthy: 1 } });
    expect((results['analyze_xid_errors']?.['events'] as { xid: number }[]).map((e) => e.xid)).toContain(79);
    expect(results['describe_gpu_node']?.['health']).toMatchObject({ status: 'critical' });
    expect(results['pod_gpus']).toMatchObject({
      pod: { namespace: env.ns, name: 'http-pod', node: env.nodes.healthy, gpusRequested: 1 },
      gpus: [],
      notes: [`the pod requests 1 GPU(s) but no GPU of node ${env.nodes.healthy} lists this pod`],
    });
    expect(results['explain_pod_failure']).toMatchObject({
      gpuHardware: 'unknown',
      evidence: [expect.stringContaining(`no GPU of node ${env.nodes.healthy} lists this pod`)],
    });
    const name = (results['run_diagnostic']?.['diagnostic'] as { name: string }).name;
    const got = await client.callTool({ name: 'get_diagnostic', arguments: { name } });
    expect(got.structuredContent).toMatchObject({ requestedBy: `system:serviceaccount:${env.ns}:mcp-user`, createdByMcp: true });
    const mine = (await diagnosticsCreatedByMcp(env.ns)).filter(
      (d) => d.metadata.annotations?.['gpudiag.io/requested-by'] === `system:serviceaccount:${env.ns}:mcp-user`,
    );
    expect(mine.length).toBeGreaterThanOrEqual(7);
  });

  it('serves prompts and resources', async () => {
    expect((await client.listPrompts()).prompts).toHaveLength(3);
    const catalog = await client.readResource({ uri: 'gpudiag://xid-catalog' });
    expect((catalog.contents[0] as { text: string }).text).toContain('ROBUST_CHANNEL_GPU_HAS_FALLEN_OFF_THE_BUS');
    const policy = await client.readResource({ uri: `gpudiag://policies/${env.xidPolicy}` });
    expect(JSON.parse((policy.contents[0] as { text: string }).text)).toMatchObject({
      kind: 'GPUHealthPolicy',
      spec: { xid: { lookback: '720h' } },
    });
  });

  it('reports progress, waiting with a watch made as the caller (impersonated), not by polling', async () => {
    const counter = await countRequests({
      user: `system:serviceaccount:${env.ns}:mcp-user`,
      namespace: env.ns,
      group: 'gpudiag.io',
      resource: 'gpudiagnostics',
      verbs: ['get', 'watch'],
    });
    try {
      // get_diagnostic GETs as the caller (a 404 counts too): it shows when flow control matches the new schemas.
      await counter.ready(() => client.callTool({ name: 'get_diagnostic', arguments: { name: 'no-such-diagnostic' } }), 'get');
      const before = await counter.counts();
      const progress: number[] = [];
      const r = await client.callTool({ name: 'gpu_inventory', arguments: {} }, undefined, {
        onprogress: (p) => progress.push(p.progress),
      });
      const after = await counter.counts();
      expect(r.isError).not.toBe(true);
      expect(progress.at(-1)).toBe(3);
      expect((after['watch'] ?? 0) - (before['watch'] ?? 0)).toBeGreaterThanOrEqual(1);
      expect((after['get'] ?? 0) - (before['get'] ?? 0)).toBeLessThanOrEqual(2);
    } finally {
      await counter.remove();
    }
  });

  it('serves 20 concurrent tool calls', async () => {
    const names = ['list_gpu_nodes', 'list_diagnostics', 'list_health_policies', 'gpu_health'];
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => {
        const name = names[i % names.length] ?? 'list_gpu_nodes';
        return client.callTool({ name, arguments: name === 'gpu_health' ? { nodeNames: [env.nodes.healthy] } : {} });
      }),
    );
    expect(results.filter((r) => r.isError === true).map(resultText)).toEqual([]);
    expect(results.every((r) => r.structuredContent !== undefined)).toBe(true);
  });
});

describe('mcp over HTTP: identity and authorisation', () => {
  it('a ServiceAccount without create rights gets a clear forbidden error', async () => {
    const viewer = await connectHttp(url, await env.token('viewer'));
    try {
      const r = await viewer.callTool({ name: 'run_diagnostic', arguments: {} });
      expect(r.isError).toBe(true);
      expect(resultText(r)).toBe(
        `forbidden: system:serviceaccount:${env.ns}:mcp-viewer cannot create gpudiagnostics in namespace ${env.ns}`,
      );
      expect((await viewer.callTool({ name: 'list_diagnostics', arguments: {} })).isError).not.toBe(true);
    } finally {
      await viewer.close();
    }
  });

  it('read-only mode lists only read tools and refuses run_diagnostic at call time', async () => {
    const ro = await env.http({ readOnly: true });
    const roClient = await connectHttp(ro.url, userToken);
    try {
      const { tools } = await roClient.listTools();
      expect(tools.map((t) => t.name).sort()).toEqual([
        'get_diagnostic',
        'get_health_policy',
        'list_diagnostics',
        'list_gpu_nodes',
        'list_health_policies',
      ]);
      const before = (await diagnosticsCreatedByMcp(env.ns)).length;
      const r = await roClient.callTool({ name: 'run_diagnostic', arguments: { nodeNames: [env.nodes.healthy] } });
      expect(r.isError).toBe(true);
      expect(resultText(r)).toMatch(/run_diagnostic disabled/);
      expect((await diagnosticsCreatedByMcp(env.ns)).length).toBe(before);
    } finally {
      await roClient.close();
    }
  });

  it('a client that drops the connection cancels the call and its GPUDiagnostic is deleted', async () => {
    const idle = await testCluster().createNamespace('e2e-mcp-idle');
    const dropping = await connectHttp(url, userToken);
    try {
      const pending = dropping.callTool({ name: 'gpu_health', arguments: { namespace: idle, waitSeconds: 120 } }, undefined, {
        timeout: 130_000,
      });
      // The call fails once the connection is dropped; what matters is what happens on the server.
      const outcome = pending.then(
        () => 'answered',
        (err: unknown) => (err instanceof Error ? 'failed' : 'rejected with a non-error'),
      );
      const deadline = Date.now() + 15_000;
      while ((await diagnosticsCreatedByMcp(idle)).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(await diagnosticsCreatedByMcp(idle)).toHaveLength(1);
      await dropping.close();
      const gone = Date.now() + 10_000;
      while ((await diagnosticsCreatedByMcp(idle)).length > 0 && Date.now() < gone) await new Promise((r) => setTimeout(r, 100));
      expect(await diagnosticsCreatedByMcp(idle)).toHaveLength(0);
      expect(await outcome).toBe('failed');
    } finally {
      await testCluster().deleteNamespace(idle);
    }
  });
});

describe('mcp over HTTP: the endpoint refuses bad requests', () => {
  it('no token → 401 with a Bearer challenge; an unknown token → 401', async () => {
    const none = await post(url, {});
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toMatch(/^Bearer/);
    expect((await post(url, { token: 'not-a-real-token' })).status).toBe(401);
    // A token for another audience (the API server's) is not accepted either.
    const apiServerToken = await testCluster().serviceAccountToken(env.ns, 'mcp-user');
    expect((await post(url, { token: apiServerToken })).status).toBe(401);
  });

  it('a Host or Origin outside the allow-list → 403 (DNS rebinding)', async () => {
    expect((await post(url, { token: userToken, host: `evil.example:${url.port}` })).status).toBe(403);
    expect((await post(url, { token: userToken, origin: 'https://evil.example' })).status).toBe(403);
    expect((await post(url, { token: userToken, host: `localhost:${url.port}` })).status).toBe(200);
  });

  it('a body over the limit → 413', async () => {
    const big = JSON.stringify({ ...initialize, params: { ...initialize.params, padding: 'x'.repeat(2 * 1024 * 1024) } });
    expect((await post(url, { token: userToken, body: big })).status).toBe(413);
  });

  it('GET (no server-sent stream in stateless mode) → 405', async () => {
    expect((await post(url, { token: userToken, method: 'GET', body: '' })).status).toBe(405);
  });

  it('more calls than the per-identity rate limit → 429 with Retry-After, other identities unaffected', async () => {
    const limited = await env.http({ rateLimit: { burst: 3, perSecond: 0.01 } });
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await post(limited.url, { token: userToken })).status);
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    const refused = await post(limited.url, { token: userToken });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect((await post(limited.url, { token: await env.token('viewer') })).status).toBe(200);
  });

  it('a misspelled argument is a tool error that names it, and creates nothing', async () => {
    const before = (await diagnosticsCreatedByMcp(env.ns)).length;
    const result = await client.callTool({ name: 'gpu_health', arguments: { nodez: [env.nodes.healthy] } });
    expect(result.isError).toBe(true);
    expect(resultText(result)).toContain('unknown argument "nodez"; this tool takes nodeNames, nodeSelector');
    expect(await diagnosticsCreatedByMcp(env.ns)).toHaveLength(before);
  });

  it('tokens not in the cache are rate-limited per client address before any TokenReview; a cached token is not', async () => {
    const limited = await env.http({ reviewRateLimit: { burst: 3, perSecond: 0.01 } });
    expect((await post(limited.url, { token: userToken })).status).toBe(200);
    const reviewsBefore = await tokenReviewsSent();
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await post(limited.url, { token: `sprayed-token-${i}` })).status);
    expect(statuses).toEqual([401, 401, 429, 429, 429, 429]);
    // The cached token was reviewed once, before; the refused ones never reached the API server.
    expect((await tokenReviewsSent()) - reviewsBefore).toBe(2);
    expect((await post(limited.url, { token: userToken })).status).toBe(200);
  });

  it('start() rejects when the port is taken', async () => {
    const second = createMcpHttpServer({
      kc: env.operatorKc,
      namespace: env.ns,
      logger: createLogger({ silent: true }),
      host: '127.0.0.1',
      port: Number(url.port),
    });
    await expect(second.start()).rejects.toThrow(/cannot listen/);
  });
});

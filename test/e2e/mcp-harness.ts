/**
 * Shared set-up of the MCP end-to-end tests: a namespace with a real operator (its own RBAC plus
 * config/rbac/operator-mcp.yaml), a simulated fleet of three nodes, least-privilege identities
 * (a full MCP user and a viewer, as certificate users and as ServiceAccounts), and real SDK
 * clients over stdio (`node bin/gpudiag.js mcp`) and Streamable HTTP.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll } from '@jest/globals';
import { CustomObjectsApi, RbacAuthorizationV1Api, type KubeConfig } from '@kubernetes/client-node';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { GPU_HEALTH_POLICIES } from '../../api/index.js';
import { repoRoot } from '../../dev/control-plane/binaries.js';
import { freePort } from '../../dev/control-plane/control-plane.js';
import { uniqueFleetNames } from '../../dev/fleet/simulated-fleet.js';
import { createLogger } from '../../lib/logger.js';
import { parseOperatorConfig } from '../../operator/config.js';
import { createMcpHttpServer, type McpHttpServer, type McpHttpServerOptions } from '../../operator/mcp/http.js';
import { Operator } from '../../operator/operator.js';
import { testCluster, useTestNamespace } from '../support/cluster.js';
import { startTestFleet, testOperatorArgs } from '../support/operator-env.js';
import { applyRbac } from '../support/rbac.js';

/** The audience of the tokens MCP HTTP clients present. */
export const MCP_AUDIENCE = 'gpudiag-mcp';

/** What a test file gets. */
export interface McpEnvironment {
  readonly ns: string;
  /** Node names by short name: healthy, lost (XID 79), dbe (double-bit ECC). */
  readonly nodes: Record<'healthy' | 'lost' | 'dbe', string>;
  /** Kubeconfig files of certificate users: `user` (gpudiag-mcp-user) and `viewer` (gpudiag-mcp-viewer). */
  readonly kubeconfigs: { user: string; viewer: string };
  readonly userNames: { user: string; viewer: string };
  /**
   * A GPUHealthPolicy (governing no node) whose XID lookback is 720h: the simulated kernel logs
   * date their XIDs a few seconds after boot, which the default 1h scoring lookback drops on a
   * machine that has been up longer.
   */
  readonly xidPolicy: string;
  /** The operator's own identity (TokenReview + impersonation for HTTP). */
  readonly operatorKc: KubeConfig;
  /** A bound token of a ServiceAccount bound to gpudiag-mcp-user (or -viewer), audience gpudiag-mcp. */
  token(kind: 'user' | 'viewer'): Promise<string>;
  /** Starts an MCP HTTP server on 127.0.0.1 for this namespace (stopped after the file). */
  http(options?: Partial<McpHttpServerOptions>): Promise<{ url: URL; server: McpHttpServer }>;
}

/** Stdio client of `node bin/gpudiag.js mcp`, with the child's stderr collected. */
export interface StdioSession {
  client: Client;
  transport: StdioClientTransport;
  stderr: () => string;
}

/** Spawns `node bin/gpudiag.js mcp` and connects an SDK client to it. */
export async function connectStdio(kubeconfig: string, args: string[] = []): Promise<StdioSession> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [path.join(repoRoot, 'bin', 'gpudiag.js'), 'mcp', '--kubeconfig', kubeconfig, ...args],
    stderr: 'pipe',
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: os.tmpdir() },
  });
  let stderr = '';
  transport.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString('utf8');
  });
  const client = new Client({ name: 'gpudiag-e2e', version: '0.0.0' });
  await client.connect(transport);
  return { client, transport, stderr: () => stderr };
}

/** Connects an SDK client over Streamable HTTP with a bearer token. */
export async function connectHttp(url: URL, token: string): Promise<Client> {
  const client = new Client({ name: 'gpudiag-e2e', version: '0.0.0' });
  await client.connect(new StreamableHTTPClientTransport(url, { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
  return client;
}

/** Binds this namespace's copy of ClusterRole `role` (named `<role>-<ns>`) to a user or ServiceAccount. */
export async function bindClusterRole(ns: string, role: string, subject: { kind: 'User' | 'ServiceAccount'; name: string }): Promise<void> {
  const rbac = testCluster().admin().makeApiClient(RbacAuthorizationV1Api);
  await rbac.createClusterRoleBinding({
    body: {
      metadata: { name: `${role}-${subject.name}-${ns}`.slice(0, 253) },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: `${role}-${ns}` },
      subjects: [
        subject.kind === 'User'
          ? { kind: 'User', name: subject.name, apiGroup: 'rbac.authorization.k8s.io' }
          : { kind: 'ServiceAccount', name: subject.name, namespace: ns },
      ],
    },
  });
}

/** A kubeconfig file in `dir` for a certificate user, whose context namespace is `ns` (the one the stdio server uses). */
export async function userKubeconfig(ns: string, user: string, dir: string): Promise<string> {
  const kc = await testCluster().as({ user, groups: ['gpudiag-e2e'] });
  // A kubeconfig in JSON is valid YAML.
  const exported: unknown = JSON.parse(kc.exportConfig());
  const withNs = exported as { contexts?: { context: { namespace?: string } }[] };
  for (const c of withNs.contexts ?? []) c.context.namespace = ns;
  const file = path.join(dir, `${user}.kubeconfig`);
  await writeFile(file, JSON.stringify(withNs), { mode: 0o600 });
  return file;
}

/**
 * A certificate user bound to this namespace's copy of gpudiag-mcp-user (or -viewer) from
 * config/rbac/operator-mcp.yaml (applied beforehand), and its kubeconfig file in `dir`.
 */
export async function mcpUserKubeconfig(ns: string, kind: 'user' | 'viewer', user: string, dir: string): Promise<string> {
  await bindClusterRole(ns, kind === 'user' ? 'gpudiag-mcp-user' : 'gpudiag-mcp-viewer', { kind: 'User', name: user });
  return userKubeconfig(ns, user, dir);
}

/** Registers beforeAll/afterAll that build the environment; read its fields inside tests. */
export function useMcpEnvironment(prefix: string): McpEnvironment {
  const namespace = useTestNamespace(prefix);
  const logger = createLogger({ silent: true });
  const cleanups: (() => Promise<void>)[] = [];
  let dir = '';
  const env = {
    ns: '',
    nodes: { healthy: '', lost: '', dbe: '' },
    kubeconfigs: { user: '', viewer: '' },
    userNames: { user: '', viewer: '' },
    xidPolicy: '',
    operatorKc: testCluster().admin(),
    async token(kind: 'user' | 'viewer'): Promise<string> {
      return testCluster().serviceAccountToken(env.ns, `mcp-${kind}`, [MCP_AUDIENCE]);
    },
    async http(options: Partial<McpHttpServerOptions> = {}): Promise<{ url: URL; server: McpHttpServer }> {
      const server = createMcpHttpServer({
        kc: env.operatorKc,
        namespace: env.ns,
        logger,
        host: '127.0.0.1',
        port: 0,
        audiences: [MCP_AUDIENCE],
        settings: { agentNamespace: env.ns, pollIntervalMs: 200 },
        ...options,
      });
      const address = await server.start();
      cleanups.push(() => server.stop());
      return { url: new URL(`http://127.0.0.1:${address.port}/mcp`), server };
    },
  };

  beforeAll(async () => {
    const cluster = testCluster();
    const ns = namespace.name;
    env.ns = ns;
    await applyRbac('operator.yaml', ns);
    await applyRbac('agent.yaml', ns);
    await applyRbac('operator-mcp.yaml', ns);
    const port = await freePort();
    const specs = uniqueFleetNames(ns, [
      { name: 'healthy', scenario: 'h100-sxm-8x-healthy' },
      { name: 'lost', scenario: 'gpu-lost-xid79' },
      { name: 'dbe', scenario: 'a100-dbe-remap-pending' },
    ]);
    env.nodes = { healthy: specs[0]?.name ?? '', lost: specs[1]?.name ?? '', dbe: specs[2]?.name ?? '' };
    const fleet = await startTestFleet(ns, specs, port, logger);
    cleanups.push(() => fleet.stop());
    const config = parseOperatorConfig(
      [...testOperatorArgs(ns, port), '--per-node-timeout-seconds', '5', '--policy-grace-seconds', '1'],
      {},
      `${prefix}-operator`,
    );
    env.operatorKc = await cluster.asServiceAccount(ns, 'gpudiag-operator');
    const operator = await Operator.start(config, {
      kc: env.operatorKc,
      logger,
      tokenProvider: () => cluster.serviceAccountToken(ns, 'gpudiag-operator', ['gpudiag-agent']),
    });
    cleanups.push(() => operator.stop());

    env.xidPolicy = `mcp-xid-${ns}`;
    await cluster
      .admin()
      .makeApiClient(CustomObjectsApi)
      .createClusterCustomObject({
        ...GPU_HEALTH_POLICIES,
        body: {
          apiVersion: 'gpudiag.io/v1alpha1',
          kind: 'GPUHealthPolicy',
          metadata: { name: env.xidPolicy },
          spec: { suspend: true, nodeSelector: { matchLabels: { 'gpudiag.io/pool': `none-${ns}` } }, xid: { lookback: '720h' } },
        },
      });

    // Identities: certificate users for stdio, ServiceAccounts for HTTP.
    env.userNames = { user: `${ns}-alice`, viewer: `${ns}-victor` };
    dir = await mkdtemp(path.join(os.tmpdir(), 'gpudiag-mcp-e2e-'));
    for (const kind of ['user', 'viewer'] as const) {
      env.kubeconfigs[kind] = await mcpUserKubeconfig(ns, kind, env.userNames[kind], dir);
      await cluster.serviceAccountToken(ns, `mcp-${kind}`);
      await bindClusterRole(ns, kind === 'user' ? 'gpudiag-mcp-user' : 'gpudiag-mcp-viewer', {
        kind: 'ServiceAccount',
        name: `mcp-${kind}`,
      });
    }
  }, 120_000);

  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  }, 60_000);

  return env;
}

/** The text of a tool result's first content item. */
export function resultText(result: unknown): string {
  const content = (result as { content?: { type: string; text?: string }[] }).content ?? [];
  return content.map((c) => c.text ?? '').join('\n');
}

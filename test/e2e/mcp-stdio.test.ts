/**
 * End to end over stdio: `node bin/gpudiag.js mcp --kubeconfig <file>` spawned by a real MCP SDK
 * client, acting as a certificate user with exactly config/rbac/operator-mcp.yaml's
 * gpudiag-mcp-user (or -viewer) role, against a real operator and simulated agents.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoreV1Api, CustomObjectsApi, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { GPU_DIAGNOSTICS, GPU_HEALTH_POLICIES, type GPUDiagnostic } from '../../api/index.js';
import { repoRoot } from '../../dev/control-plane/binaries.js';
import { testCluster, uniqueSuffix } from '../support/cluster.js';
import { countRequests } from '../support/request-counter.js';
import { bindClusterRole, connectStdio, resultText, userKubeconfig, useMcpEnvironment, type StdioSession } from './mcp-harness.js';

const env = useMcpEnvironment('e2e-mcp-stdio');
let session: StdioSession;

function args(): string[] {
  return ['--agent-namespace', env.ns, '--wait-seconds', '60'];
}

async function call(
  name: string,
  a: Record<string, unknown> = {},
): Promise<{ structured: Record<string, unknown>; text: string; isError: boolean }> {
  const result = await session.client.callTool({ name, arguments: a });
  return {
    structured: (result.structuredContent ?? {}) as Record<string, unknown>,
    text: resultText(result),
    isError: result.isError === true,
  };
}

async function diagnosticsCreatedByMcp(namespace: string): Promise<GPUDiagnostic[]> {
  const api = testCluster().admin().makeApiClient(CustomObjectsApi);
  const list = (await api.listNamespacedCustomObject({ ...GPU_DIAGNOSTICS, namespace, labelSelector: 'gpudiag.io/created-by=mcp' })) as {
    items: GPUDiagnostic[];
  };
  return list.items;
}

beforeAll(async () => {
  session = await connectStdio(env.kubeconfigs.user, args());
}, 30_000);

afterAll(async () => {
  await session?.client.close();
});

describe('mcp over stdio: tools', () => {
  it('lists every tool with schemas and honest annotations', async () => {
    const { tools } = await session.client.listTools();
    const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
    expect(Object.keys(byName).sort()).toEqual(
      [
        'analyze_xid_errors',
        'describe_gpu_node',
        'explain_pod_failure',
        'get_diagnostic',
        'get_health_policy',
        'gpu_health',
        'gpu_inventory',
        'list_diagnostics',
        'list_gpu_nodes',
        'list_health_policies',
        'pod_gpus',
        'run_diagnostic',
      ].sort(),
    );
    for (const t of tools) {
      expect(t.outputSchema).toBeDefined();
      expect(t.annotations?.destructiveHint).toBe(false);
    }
    expect(byName['list_gpu_nodes']?.annotations?.readOnlyHint).toBe(true);
    expect(byName['run_diagnostic']?.annotations?.readOnlyHint).toBe(false);
  });

  it('list_gpu_nodes: nodes with agents, GPU counts', async () => {
    const r = await call('list_gpu_nodes');
    expect(r.isError).toBe(false);
    const nodes = r.structured['nodes'] as { name: string; gpus: number; agent: string }[];
    for (const name of Object.values(env.nodes)) expect(nodes.find((n) => n.name === name)).toMatchObject({ gpus: 8, agent: 'ready' });
    expect(r.text).toContain('GPU node(s)');
  });

  it('gpu_health: creates a labelled, annotated GPUDiagnostic as the caller and reports worst first', async () => {
    const r = await call('gpu_health', { nodeNames: Object.values(env.nodes) });
    expect(r.isError).toBe(false);
    expect(r.structured['summary']).toMatchObject({ nodesTargeted: 3, nodesCompleted: 3, nodesByStatus: { healthy: 1, critical: 2 } });
    const nodes = r.structured['nodes'] as { name: string; status: string }[];
    expect(nodes.map((n) => n.status)).toEqual(['critical', 'critical', 'healthy']);
    const ref = r.structured['diagnostic'] as { name: string; namespace: string; finished: boolean };
    expect(ref).toMatchObject({ namespace: env.ns, finished: true });
    expect(r.text).toContain(ref.name);
    const created = (await diagnosticsCreatedByMcp(env.ns)).find((d) => d.metadata.name === ref.name);
    expect(created?.metadata.labels).toMatchObject({ 'gpudiag.io/created-by': 'mcp', 'gpudiag.io/mcp-tool': 'gpu-health' });
    expect(created?.metadata.annotations?.['gpudiag.io/requested-by']).toBe(env.userNames.user);
    expect(created?.spec.ttlSecondsAfterFinished).toBe(3600);
  });

  it('gpu_inventory: GPUs per node and models', async () => {
    const r = await call('gpu_inventory', { nodeNames: [env.nodes.healthy] });
    expect(r.isError).toBe(false);
    const nodes = r.structured['nodes'] as { name: string; gpuCount: number; gpus: { uuid?: string }[] }[];
    expect(nodes[0]).toMatchObject({ name: env.nodes.healthy, gpuCount: 8 });
    expect(nodes[0]?.gpus).toHaveLength(8);
    expect(Object.values(r.structured['models'] as Record<string, number>).reduce((a, b) => a + b, 0)).toBe(8);
  });

  it('analyze_xid_errors: catalog facts as data, kernel text only under untrusted', async () => {
    const r = await call('analyze_xid_errors', {
      nodes: [env.nodes.lost, env.nodes.healthy],
      since: '720h',
      minimumSeverity: 'critical',
      policy: env.xidPolicy,
    });
    expect(r.isError).toBe(false);
    const events = r.structured['events'] as { node: string; xid: number; severity: string; kernelMessage?: number }[];
    expect(events.find((e) => e.xid === 79)).toMatchObject({ node: env.nodes.lost, severity: 'critical' });
    expect(events.every((e) => e.severity === 'critical')).toBe(true);
    expect(JSON.stringify(events)).not.toContain('simulated fault');
    const untrusted = r.structured['untrusted'] as { note: string; kernelMessages: { message: string; process?: string }[] };
    expect(untrusted.note).toMatch(/never as instructions/);
    expect(untrusted.kernelMessages.some((m) => m.message.includes('simulated fault'))).toBe(true);
    expect(r.text).not.toContain('simulated fault');
    expect(r.text).toMatch(/untrusted/);
  });

  it('describe_gpu_node: node facts, health, XIDs and the pods requesting GPUs on it', async () => {
    const core = testCluster().admin().makeApiClient(CoreV1Api);
    await core.createNamespacedPod({
      namespace: env.ns,
      body: {
        metadata: { name: 'trainer' },
        spec: {
          nodeName: env.nodes.lost,
          containers: [{ name: 'train', image: 'example/train', resources: { limits: { 'nvidia.com/gpu': '2' } } }],
        },
      },
    });
    const r = await call('describe_gpu_node', { node: env.nodes.lost, xidSince: '720h', policy: env.xidPolicy });
    expect(r.isError).toBe(false);
    expect(r.structured['node']).toMatchObject({ name: env.nodes.lost, ready: true, gpuCapacity: 8 });
    expect(r.structured['health']).toMatchObject({ status: 'critical' });
    expect((r.structured['xidEvents'] as { xid: number }[]).map((e) => e.xid)).toContain(79);
    expect(r.structured['gpuPods']).toEqual([expect.objectContaining({ namespace: env.ns, name: 'trainer', gpus: 2 })]);
    expect(r.text).toContain('trainer');
  });

  it('run_diagnostic: chosen checks and node selection, with progress notifications', async () => {
    const progress: { progress: number; total?: number | undefined }[] = [];
    const result = await session.client.callTool(
      {
        name: 'run_diagnostic',
        arguments: {
          checks: ['inventory', 'ecc'],
          nodeSelector: { 'gpudiag.io/pool': 'training' },
          nodeNames: [env.nodes.dbe, env.nodes.healthy],
        },
      },
      undefined,
      { onprogress: (p) => progress.push(p) },
    );
    expect(result.isError).not.toBe(true);
    const structured = result.structuredContent as { summary: { nodesTargeted: number }; diagnostic: { name: string } };
    expect(structured.summary.nodesTargeted).toBe(2);
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)).toMatchObject({ progress: 2, total: 2 });
    const created = (await diagnosticsCreatedByMcp(env.ns)).find((d) => d.metadata.name === structured.diagnostic.name);
    expect(created?.spec.checks).toEqual(['inventory', 'ecc']);
  });

  it('get_diagnostic and list_diagnostics read what the tools created', async () => {
    const list = await call('list_diagnostics', { createdByMcp: true });
    expect(list.isError).toBe(false);
    const items = list.structured['diagnostics'] as { name: string; requestedBy?: string; createdByMcp: boolean }[];
    expect(items.length).toBeGreaterThanOrEqual(4);
    expect(items.every((d) => d.createdByMcp && d.requestedBy === env.userNames.user)).toBe(true);
    const first = items.find((d) => d.name.startsWith('mcp-gpu-health-'));
    const got = await call('get_diagnostic', { name: first?.name ?? '' });
    expect(got.isError).toBe(false);
    expect(got.structured).toMatchObject({ createdByMcp: true, requestedBy: env.userNames.user, summary: { nodesTargeted: 3 } });
    expect((got.structured['conditions'] as { type: string }[]).map((c) => c.type)).toContain('Healthy');
    const nodes = (await call('list_gpu_nodes')).structured['nodes'] as {
      name: string;
      lastHealth?: { status: string; diagnostic: string };
    }[];
    expect(nodes[0]).toMatchObject({ lastHealth: { status: 'critical' } });
    expect(nodes.find((n) => n.name === env.nodes.healthy)?.lastHealth).toMatchObject({
      status: 'healthy',
      diagnostic: expect.stringContaining(`${env.ns}/mcp-`),
    });
  });

  it('list_health_policies and get_health_policy', async () => {
    const name = `mcp-policy-${uniqueSuffix()}`;
    await testCluster()
      .admin()
      .makeApiClient(CustomObjectsApi)
      .createClusterCustomObject({
        ...GPU_HEALTH_POLICIES,
        body: {
          apiVersion: 'gpudiag.io/v1alpha1',
          kind: 'GPUHealthPolicy',
          metadata: { name },
          spec: { interval: '1h', suspend: true, nodeSelector: { matchLabels: { 'gpudiag.io/pool': `none-${env.ns}` } } },
        },
      });
    const list = await call('list_health_policies');
    expect(list.isError).toBe(false);
    expect((list.structured['policies'] as { name: string }[]).find((p) => p.name === name)).toMatchObject({
      interval: '1h',
      suspend: true,
    });
    const got = await call('get_health_policy', { name });
    expect(got.isError).toBe(false);
    expect(got.structured).toMatchObject({ name, spec: { interval: '1h', suspend: true }, resource: `gpudiag://policies/${name}` });
    const missing = await call('get_health_policy', { name: 'no-such-policy' });
    expect(missing).toMatchObject({ isError: true });
    expect(missing.text).toContain('not found: gpuhealthpolicies no-such-policy');
  });
});

describe('mcp over stdio: waiting for a diagnostic by watching it', () => {
  type Progress = { progress: number; total?: number | undefined };

  it('gpu_health watches its GPUDiagnostic: a watch, at most 2 GETs by the caller, progress on the way', async () => {
    const user = env.userNames.user;
    const counter = await countRequests({
      user,
      namespace: env.ns,
      group: 'gpudiag.io',
      resource: 'gpudiagnostics',
      verbs: ['get', 'watch'],
    });
    try {
      // A GET as the same user (a 404 counts too) shows when flow control matches the new schemas.
      const asUser = (await testCluster().as({ user, groups: ['gpudiag-e2e'] })).makeApiClient(CustomObjectsApi);
      await counter.ready(
        () =>
          asUser
            .getNamespacedCustomObject({ ...GPU_DIAGNOSTICS, namespace: env.ns, name: 'no-such-diagnostic' })
            .catch((err: unknown) => err),
        'get',
      );
      const before = await counter.counts();
      const progress: Progress[] = [];
      const result = await session.client.callTool({ name: 'gpu_health', arguments: { nodeNames: Object.values(env.nodes) } }, undefined, {
        onprogress: (p) => progress.push(p),
      });
      const after = await counter.counts();
      expect(result.isError).not.toBe(true);
      expect(result.structuredContent).toMatchObject({ summary: { nodesCompleted: 3 }, diagnostic: { finished: true } });
      const made = { watch: (after['watch'] ?? 0) - (before['watch'] ?? 0), get: (after['get'] ?? 0) - (before['get'] ?? 0) };
      expect(made.watch).toBeGreaterThanOrEqual(1);
      expect(made.get).toBeLessThanOrEqual(2);
      expect(progress.length).toBeGreaterThan(0);
      expect(progress.at(-1)).toMatchObject({ progress: 3, total: 3 });
    } finally {
      await counter.remove();
    }
  });

  it('a caller whose role lacks watch still gets its answers, by polling, logged once', async () => {
    // gpudiag-mcp-user as shipped, without watch on gpudiagnostics: RBAC written before the facade watched.
    const rbac = testCluster().admin().makeApiClient(RbacAuthorizationV1Api);
    const shipped = await rbac.readClusterRole({ name: `gpudiag-mcp-user-${env.ns}` });
    const rules = (shipped.rules ?? []).map((r) =>
      r.resources?.includes('gpudiagnostics') === true ? { ...r, verbs: r.verbs.filter((v) => v !== 'watch') } : r,
    );
    expect(rules.some((r) => r.resources?.includes('gpudiagnostics') === true && r.verbs.includes('get'))).toBe(true);
    await rbac.createClusterRole({ body: { metadata: { name: `gpudiag-mcp-nowatch-${env.ns}` }, rules } });
    const user = `${env.ns}-nowatch`;
    await bindClusterRole(env.ns, 'gpudiag-mcp-nowatch', { kind: 'User', name: user });
    const dir = await mkdtemp(path.join(os.tmpdir(), 'gpudiag-mcp-nowatch-'));
    const polling = await connectStdio(await userKubeconfig(env.ns, user, dir), args());
    try {
      for (const nodeNames of [[env.nodes.healthy], [env.nodes.dbe, env.nodes.healthy]]) {
        const progress: Progress[] = [];
        const r = await polling.client.callTool({ name: 'gpu_health', arguments: { nodeNames } }, undefined, {
          onprogress: (p) => progress.push(p),
        });
        expect({ isError: r.isError === true, text: r.isError === true ? resultText(r) : '' }).toEqual({ isError: false, text: '' });
        expect(r.structuredContent).toMatchObject({ summary: { nodesCompleted: nodeNames.length }, diagnostic: { finished: true } });
        expect(progress.at(-1)).toMatchObject({ progress: nodeNames.length, total: nodeNames.length });
      }
      expect(polling.stderr().match(/may not watch gpudiagnostics; waiting by polling/g)).toHaveLength(1);
    } finally {
      await polling.client.close();
      await rm(dir, { recursive: true, force: true });
      await rbac.deleteClusterRole({ name: `gpudiag-mcp-nowatch-${env.ns}` });
    }
  });
});

describe('mcp over stdio: prompts and resources', () => {
  it('serves the three prompts with validated arguments', async () => {
    const { prompts } = await session.client.listPrompts();
    expect(prompts.map((p) => p.name).sort()).toEqual(['explain_xid', 'fleet_health_report', 'gpu_triage']);
    const triage = await session.client.getPrompt({ name: 'gpu_triage', arguments: { node: env.nodes.lost } });
    expect(JSON.stringify(triage.messages)).toContain(`describe_gpu_node with node \\"${env.nodes.lost}\\"`);
    const xid = await session.client.getPrompt({ name: 'explain_xid', arguments: { xid: '79' } });
    expect(JSON.stringify(xid.messages)).toContain('GPU_HAS_FALLEN_OFF_THE_BUS');
    const fleet = await session.client.getPrompt({ name: 'fleet_health_report', arguments: {} });
    expect(JSON.stringify(fleet.messages)).toContain(env.ns);
    await expect(session.client.getPrompt({ name: 'gpu_triage', arguments: { node: 'Bad_Node' } })).rejects.toThrow(
      /node must be a node name/,
    );
  });

  it('serves the XID catalog, diagnostics and policies as resources', async () => {
    const catalog = await session.client.readResource({ uri: 'gpudiag://xid-catalog' });
    const entries = (JSON.parse((catalog.contents[0] as { text: string }).text) as { entries: { xid: number }[] }).entries;
    expect(entries.map((e) => e.xid)).toContain(79);
    const [diagnostic] = await diagnosticsCreatedByMcp(env.ns);
    const read = await session.client.readResource({ uri: `gpudiag://diagnostics/${env.ns}/${diagnostic?.metadata.name ?? ''}` });
    const obj = JSON.parse((read.contents[0] as { text: string }).text) as { kind: string; untrustedFields: string };
    expect(obj.kind).toBe('GPUDiagnostic');
    expect(obj.untrustedFields).toContain('kernel-log text');
    await expect(session.client.readResource({ uri: `gpudiag://diagnostics/${env.ns}/missing` })).rejects.toThrow(
      /not found: gpudiagnostics missing/,
    );
  });
});

describe('mcp over stdio: argument validation', () => {
  const cases: [string, string, Record<string, unknown>, RegExp][] = [
    ['node name with upper case', 'describe_gpu_node', { node: 'GPU-Node-1' }, /node must be a node name \(RFC 1123/],
    ['node name too long', 'describe_gpu_node', { node: 'a'.repeat(254) }, /node must be at most 253 characters/],
    ['missing node', 'describe_gpu_node', {}, /node must be a string/],
    ['node list with a bad entry', 'gpu_health', { nodeNames: ['ok-node', 'bad node'] }, /nodeNames\[\] must be a node name/],
    ['empty node list', 'gpu_inventory', { nodeNames: [] }, /nodeNames must name at least one node/],
    ['since neither time nor duration', 'analyze_xid_errors', { since: 'yesterday' }, /since must be an RFC 3339 time .* or a Go duration/],
    ['unknown severity', 'analyze_xid_errors', { minimumSeverity: 'fatal' }, /minimumSeverity must be one of info, warning, critical/],
    ['unknown check', 'run_diagnostic', { checks: ['health', 'gpu-burn'] }, /checks\[\] must be one of inventory/],
    ['repeated check', 'run_diagnostic', { checks: ['health', 'health'] }, /checks must not repeat a check/],
    ['bad label key', 'run_diagnostic', { nodeSelector: { 'bad key!': 'x' } }, /nodeSelector keys must be label keys/],
    ['timeout out of range', 'run_diagnostic', { timeoutSeconds: 99999 }, /timeoutSeconds must be at most 3600/],
    ['bad namespace', 'list_diagnostics', { namespace: 'Not_A_Namespace' }, /namespace must be a namespace name/],
    ['limit zero', 'list_gpu_nodes', { limit: 0 }, /limit must be at least 1/],
    ['wait too long', 'gpu_health', { waitSeconds: 3600 }, /waitSeconds must be at most 600/],
    ['bad diagnostic name', 'get_diagnostic', { name: '../etc' }, /name must be an object name/],
    ['boolean as string', 'list_diagnostics', { allNamespaces: 'yes' }, /allNamespaces must be true or false/],
  ];
  it.each(cases)('%s → a tool error naming the argument', async (_label, tool, a, message) => {
    const r = await call(tool, a);
    expect(r.isError).toBe(true);
    expect(r.text).toMatch(message);
  });
});

describe('mcp over stdio: identity, read-only mode, cancellation and exit', () => {
  it('a viewer without create rights gets a clear forbidden error, and can still read', async () => {
    const viewer = await connectStdio(env.kubeconfigs.viewer, args());
    try {
      const r = await viewer.client.callTool({ name: 'run_diagnostic', arguments: { nodeNames: [env.nodes.healthy] } });
      expect(r.isError).toBe(true);
      expect(resultText(r)).toBe(`forbidden: ${env.userNames.viewer} cannot create gpudiagnostics in namespace ${env.ns}`);
      const list = await viewer.client.callTool({ name: 'list_diagnostics', arguments: {} });
      expect(list.isError).not.toBe(true);
      const nodes = await viewer.client.callTool({ name: 'list_gpu_nodes', arguments: {} });
      expect(resultText(nodes)).toMatch(/agent state unknown: forbidden: .* cannot list pods/);
    } finally {
      await viewer.client.close();
    }
  });

  it('read-only mode lists only read tools and refuses run_diagnostic at call time', async () => {
    const ro = await connectStdio(env.kubeconfigs.user, [...args(), '--read-only']);
    try {
      const { tools } = await ro.client.listTools();
      expect(tools.map((t) => t.name).sort()).toEqual([
        'get_diagnostic',
        'get_health_policy',
        'list_diagnostics',
        'list_gpu_nodes',
        'list_health_policies',
      ]);
      expect(tools.every((t) => t.annotations?.readOnlyHint === true)).toBe(true);
      const before = (await diagnosticsCreatedByMcp(env.ns)).length;
      const r = await ro.client.callTool({ name: 'run_diagnostic', arguments: {} });
      expect(r.isError).toBe(true);
      expect(resultText(r)).toMatch(/run_diagnostic disabled/);
      expect((await diagnosticsCreatedByMcp(env.ns)).length).toBe(before);
    } finally {
      await ro.client.close();
    }
  });

  it('a cancelled call deletes its GPUDiagnostic', async () => {
    // No operator watches this namespace, so the diagnostic stays Pending until cancelled.
    const idle = await testCluster().createNamespace('e2e-mcp-idle');
    try {
      const controller = new AbortController();
      const pending = session.client.callTool({ name: 'run_diagnostic', arguments: { namespace: idle, waitSeconds: 120 } }, undefined, {
        signal: controller.signal,
        timeout: 130_000,
      });
      const deadline = Date.now() + 15_000;
      while ((await diagnosticsCreatedByMcp(idle)).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(await diagnosticsCreatedByMcp(idle)).toHaveLength(1);
      controller.abort('the user pressed stop');
      await expect(pending).rejects.toThrow();
      const gone = Date.now() + 10_000;
      while ((await diagnosticsCreatedByMcp(idle)).length > 0 && Date.now() < gone) await new Promise((r) => setTimeout(r, 100));
      expect(await diagnosticsCreatedByMcp(idle)).toHaveLength(0);
    } finally {
      await testCluster().deleteNamespace(idle);
    }
  });

  it.each([
    ['stdin EOF', (child: ReturnType<typeof spawn>) => child.stdin?.end()],
    ['SIGTERM', (child: ReturnType<typeof spawn>) => child.kill('SIGTERM')],
  ])('exits 0 by itself on %s within 5 s (no forced exit: no handle is left), logging only to stderr', async (_label, stop) => {
    const child = spawn(process.execPath, [path.join(repoRoot, 'bin', 'gpudiag.js'), 'mcp', '--kubeconfig', env.kubeconfigs.user], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const deadline = Date.now() + 10_000;
    while (!stderr.includes('serving MCP on stdio') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(stderr).toContain('serving MCP on stdio');
    const started = Date.now();
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    stop(child);
    expect(await exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(stdout).toBe('');
  });
});

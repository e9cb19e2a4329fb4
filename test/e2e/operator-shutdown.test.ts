/**
 * SIGTERM with work in flight, against a real `gpudiag operator` process: a diagnostic asking a
 * slow agent and an MCP call waiting for its own diagnostic. The MCP call answers with its
 * progress, the process exits 0 within --shutdown-grace-seconds having released the Lease, both
 * diagnostics are kept as they were (Running), and the next operator finishes them.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoordinationV1Api, CustomObjectsApi, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { GPU_DIAGNOSTICS, type GPUDiagnostic } from '../../api/index.js';
import { freePort } from '../../dev/control-plane/control-plane.js';
import { uniqueFleetNames, type SimulatedFleet } from '../../dev/fleet/simulated-fleet.js';
import { createLogger } from '../../lib/logger.js';
import { testCluster, useTestNamespace } from '../support/cluster.js';
import { createDiagnostic, readDiagnostic, waitFinished } from '../support/diagnostics.js';
import { slowDownAgent, startTestFleet, waitUntil } from '../support/operator-env.js';
import { spawnGpudiag, type GpudiagProcess } from '../support/processes.js';
import { applyRbac } from '../support/rbac.js';

const ns = useTestNamespace('e2e-shutdown');
const logger = createLogger({ silent: true });
const GRACE_SECONDS = 4;
let dir: string;
let fleet: SimulatedFleet;
let slowNode: string;
let agentPort: number;
let kubeconfig: string;
let tokenFile: string;
const children = new Set<ChildProcess>();

function startOperator(identity: string, mcpPort: number): GpudiagProcess {
  const operator = spawnGpudiag([
    'operator',
    '--kubeconfig',
    kubeconfig,
    '--namespaces',
    ns.name,
    '--agent-namespace',
    ns.name,
    '--agent-port',
    String(agentPort),
    '--policy-selector',
    `gpudiag.io/shard=${ns.name}`,
    '--agent-token-file',
    tokenFile,
    '--probe-listen',
    '127.0.0.1:0',
    '--mcp-listen',
    `127.0.0.1:${mcpPort}`,
    '--mcp-namespace',
    ns.name,
    '--lease-name',
    'shutdown-test',
    '--shutdown-grace-seconds',
    String(GRACE_SECONDS),
    '--identity',
    identity,
  ]);
  children.add(operator.child);
  return operator;
}

async function mcpDiagnostics(): Promise<GPUDiagnostic[]> {
  const api = testCluster().admin().makeApiClient(CustomObjectsApi);
  return (
    (await api.listNamespacedCustomObject({ ...GPU_DIAGNOSTICS, namespace: ns.name, labelSelector: 'gpudiag.io/created-by=mcp' })) as {
      items: GPUDiagnostic[];
    }
  ).items;
}

beforeAll(async () => {
  await applyRbac('operator.yaml', ns.name);
  await applyRbac('agent.yaml', ns.name);
  await applyRbac('operator-mcp.yaml', ns.name);
  // The MCP caller: a ServiceAccount with the gpudiag-mcp-user role.
  await testCluster().serviceAccountToken(ns.name, 'mcp-user');
  await testCluster()
    .admin()
    .makeApiClient(RbacAuthorizationV1Api)
    .createClusterRoleBinding({
      body: {
        metadata: { name: `gpudiag-mcp-user-shutdown-${ns.name}` },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: `gpudiag-mcp-user-${ns.name}` },
        subjects: [{ kind: 'ServiceAccount', name: 'mcp-user', namespace: ns.name }],
      },
    });
  dir = await mkdtemp(path.join(os.tmpdir(), 'gpudiag-shutdown-'));
  kubeconfig = path.join(dir, 'kubeconfig');
  tokenFile = path.join(dir, 'agent-token');
  await writeFile(kubeconfig, (await testCluster().asServiceAccount(ns.name, 'gpudiag-operator')).exportConfig(), { mode: 0o600 });
  await writeFile(tokenFile, await testCluster().serviceAccountToken(ns.name, 'gpudiag-operator', ['gpudiag-agent']), { mode: 0o600 });
  agentPort = await freePort();
  const specs = uniqueFleetNames(ns.name, [{ name: 'slow', scenario: 'h100-sxm-8x-healthy' }]);
  slowNode = specs[0]?.name ?? '';
  fleet = await startTestFleet(ns.name, specs, agentPort, logger);
  await slowDownAgent(fleet, slowNode);
}, 60_000);

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await fleet?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('operator shutdown with work in flight', () => {
  it(
    'SIGTERM during a running diagnostic and an MCP call: ' + 'exits 0 within the grace, keeps both, the next leader finishes them',
    async () => {
      const mcpPort = await freePort();
      const first = startOperator('shutdown-first', mcpPort);
      const token = await testCluster().serviceAccountToken(ns.name, 'mcp-user', ['gpudiag-mcp']);
      const client = new Client({ name: 'shutdown-test', version: '0' });
      await waitUntil('the MCP endpoint answers', 20_000, async () => {
        try {
          await client.connect(
            new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${mcpPort}/mcp`), {
              requestInit: { headers: { Authorization: `Bearer ${token}` } },
            }),
          );
          return true;
        } catch {
          return false;
        }
      });
      try {
        await createDiagnostic(ns.name, 'in-flight', { nodeNames: [slowNode] });
        const call = client.callTool({ name: 'gpu_health', arguments: { nodeNames: [slowNode], waitSeconds: 120 } }, undefined, {
          timeout: 60_000,
        });
        await waitUntil('both diagnostics are Running', 20_000, async () => {
          const direct = await readDiagnostic(ns.name, 'in-flight');
          const viaMcp = await mcpDiagnostics();
          return direct.status?.phase === 'Running' && viaMcp[0]?.status?.phase === 'Running';
        });

        const signalled = Date.now();
        first.child.kill('SIGTERM');
        const result = await call;
        expect(result.isError ?? false).toBe(false);
        expect((result.content as { text: string }[])[0]?.text).toMatch(/still Running; read it later with get_diagnostic/);
        expect(await first.exited).toBe(0);
        expect(Date.now() - signalled).toBeLessThan((GRACE_SECONDS + 4) * 1000);
        expect(first.output()).toContain('"message":"operator stopped"');
      } finally {
        await client.close();
      }

      // Released for the next replica; nothing deleted, nothing marked failed.
      const lease = await testCluster()
        .admin()
        .makeApiClient(CoordinationV1Api)
        .readNamespacedLease({ namespace: ns.name, name: 'shutdown-test' });
      expect(lease.spec?.holderIdentity ?? '').toBe('');
      const kept = [await readDiagnostic(ns.name, 'in-flight'), ...(await mcpDiagnostics())];
      expect(kept.map((d) => d.status?.phase)).toEqual(['Running', 'Running']);

      const next = startOperator('shutdown-next', await freePort());
      try {
        for (const d of kept) {
          const done = await waitFinished(ns.name, d.metadata.name ?? '', { timeoutMs: 40_000, pollMs: 250 });
          expect(done.status?.phase).toBe('Completed');
          expect(done.status?.summary?.nodesSucceeded).toBe(1);
        }
      } finally {
        next.child.kill('SIGTERM');
      }
      expect(await next.exited).toBe(0);
    },
    120_000,
  );
});

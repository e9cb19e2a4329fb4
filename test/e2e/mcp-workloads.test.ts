/**
 * End to end: "ask the assistant" about a pod. A real MCP SDK client spawns `node bin/gpudiag.js
 * mcp` as a certificate user with exactly config/rbac/operator-mcp.yaml's gpudiag-mcp-user, over
 * a real operator and a simulated node whose agent reads a stand-in kubelet pod-resources server:
 * pod trainer-0 holds GPU 3, pod bystander GPU 0. GPU 3 then falls off the bus, and bystander is
 * OOMKilled. pod_gpus and explain_pod_failure must tell the two apart.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { GPU_DIAGNOSTICS, type GPUDiagnostic } from '../../api/index.js';
import { createLogger } from '../../lib/logger.js';
import { testCluster, useTestNamespace } from '../support/cluster.js';
import { socketDir, startFakePodResourcesServer, type FakePodResourcesServer } from '../support/pod-resources-server.js';
import { applyRbac } from '../support/rbac.js';
import { startScenarioEnv, type ScenarioEnv } from '../support/operator-env.js';
import { connectStdio, mcpUserKubeconfig, resultText, type StdioSession } from './mcp-harness.js';

const ns = useTestNamespace('e2e-mcp-workloads');
const logger = createLogger({ silent: true });
const SCENARIO = 'h100-sxm-8x-healthy';

let env: ScenarioEnv | undefined;
let sockets: { dir: string; remove: () => Promise<void> } | undefined;
let server: FakePodResourcesServer | undefined;
let session: StdioSession | undefined;
let dir = '';
let nodeName = '';
let lostUuid = '';
let gpu0 = '';
const uids = new Map<string, string>();
let beforeFault: Awaited<ReturnType<typeof call>> | undefined;

function core(): CoreV1Api {
  return testCluster().admin().makeApiClient(CoreV1Api);
}

async function createPod(name: string, node: string | undefined, container: string): Promise<void> {
  const pod = await core().createNamespacedPod({
    namespace: ns.name,
    body: {
      metadata: { name },
      spec: {
        ...(node !== undefined ? { nodeName: node } : {}),
        restartPolicy: 'Never',
        containers: [{ name: container, image: 'example.com/train:1', resources: { limits: { 'nvidia.com/gpu': '1' } } }],
      },
    },
  });
  uids.set(name, pod.metadata?.uid ?? '');
}

/** What a kubelet would write when the container is killed for memory (there is no kubelet here). */
async function markOomKilled(name: string, container: string): Promise<void> {
  const pod = await core().readNamespacedPod({ namespace: ns.name, name });
  const now = new Date();
  pod.status = {
    ...pod.status,
    phase: 'Failed',
    startTime: pod.metadata?.creationTimestamp ?? now,
    containerStatuses: [
      {
        name: container,
        ready: false,
        restartCount: 0,
        image: 'example.com/train:1',
        imageID: '',
        state: { terminated: { exitCode: 137, reason: 'OOMKilled', startedAt: pod.metadata?.creationTimestamp ?? now, finishedAt: now } },
      },
    ],
  };
  await core().replaceNamespacedPodStatus({ namespace: ns.name, name, body: pod });
}

async function call(
  name: string,
  args: Record<string, unknown>,
): Promise<{ structured: Record<string, unknown>; text: string; isError: boolean }> {
  const result = await session?.client.callTool({ name, arguments: args });
  return {
    structured: (result?.structuredContent ?? {}) as Record<string, unknown>,
    text: resultText(result),
    isError: result?.isError === true,
  };
}

beforeAll(async () => {
  const parsed = JSON.parse(await readFile(new URL(`../../../agent/fake-nvml/scenarios/${SCENARIO}.json`, import.meta.url), 'utf8')) as {
    gpus: { uuid: string }[];
  };
  lostUuid = parsed.gpus[3]?.uuid ?? '';
  gpu0 = parsed.gpus[0]?.uuid ?? '';
  sockets = await socketDir();
  server = await startFakePodResourcesServer(sockets.dir, {
    list: () => ({
      message: {
        pod_resources: [
          {
            name: 'trainer-0',
            namespace: ns.name,
            containers: [{ name: 'pytorch', devices: [{ resource_name: 'nvidia.com/gpu', device_ids: [lostUuid] }] }],
          },
          {
            name: 'bystander',
            namespace: ns.name,
            containers: [{ name: 'main', devices: [{ resource_name: 'nvidia.com/gpu', device_ids: [gpu0] }] }],
          },
        ],
      },
    }),
  });
  env = await startScenarioEnv(ns.name, [SCENARIO], {
    label: 'gpudiag.io/e2e-mcp-workloads',
    identity: 'e2e-mcp-workloads-operator',
    logger,
    operatorArgs: ['--per-node-timeout-seconds', '10'],
    podResourcesSockets: { [SCENARIO]: server.socketPath },
  });
  nodeName = env.nodeNames.get(SCENARIO) ?? '';
  await applyRbac('operator-mcp.yaml', ns.name);
  dir = await mkdtemp(path.join(os.tmpdir(), 'gpudiag-mcp-workloads-'));
  const kubeconfig = await mcpUserKubeconfig(ns.name, 'user', `${ns.name}-alice`, dir);
  session = await connectStdio(kubeconfig, ['--agent-namespace', ns.name, '--wait-seconds', '60']);

  await createPod('trainer-0', nodeName, 'pytorch');
  await createPod('bystander', nodeName, 'main');
  await createPod('unscheduled', undefined, 'main');
  // While GPU 3 is healthy: the agent also learns its UUID, which a lost GPU no longer tells NVML.
  beforeFault = await call('pod_gpus', { namespace: ns.name, name: 'trainer-0' });
  await env.fleet.node(nodeName).controller?.inject({ kind: 'fall-off-bus', gpu: 3 });
  // Past the agent's snapshot cache (1 s), so the next diagnostic sees the lost GPU.
  await new Promise((r) => setTimeout(r, 1_500));
  await markOomKilled('bystander', 'main');
}, 120_000);

afterAll(async () => {
  await session?.client.close();
  await env?.stop();
  await server?.close();
  await sockets?.remove();
  if (dir !== '') await rm(dir, { recursive: true, force: true });
});

describe('mcp: the GPUs of a pod', () => {
  it('pod_gpus while GPU 3 is healthy: the pod is on it, with no XID in its lifetime', () => {
    expect(beforeFault?.isError).toBe(false);
    expect(beforeFault?.structured['gpus']).toEqual([
      expect.objectContaining({ index: 3, uuid: lostUuid, status: 'healthy', containers: ['pytorch'] }),
    ]);
    expect(beforeFault?.structured['xidEvents']).toEqual([]);
  });

  it("pod_gpus: the pod's GPU 3 is critical (GpuLost), found by UID; the diagnostic covers the pod's lifetime", async () => {
    const r = await call('pod_gpus', { namespace: ns.name, name: 'trainer-0', diagnosticNamespace: ns.name });
    expect(r.isError).toBe(false);
    expect(r.structured['pod']).toMatchObject({
      namespace: ns.name,
      name: 'trainer-0',
      uid: uids.get('trainer-0'),
      node: nodeName,
      phase: 'Pending',
      gpusRequested: 1,
      startTime: expect.any(String),
    });
    const gpus = r.structured['gpus'] as {
      index: number;
      uuid?: string;
      status: string;
      findings: { code: string }[];
      containers: string[];
    }[];
    expect(gpus).toHaveLength(1);
    expect(gpus[0]).toMatchObject({ index: 3, uuid: lostUuid, status: 'critical', containers: ['pytorch'] });
    expect(gpus[0]?.findings.map((f) => f.code)).toContain('GpuLost');
    expect(r.structured['notes']).toEqual([]);
    expect(r.text).toContain(`GPU 3 (${lostUuid}): critical`);
    const ref = r.structured['diagnostic'] as { namespace: string; name: string; finished: boolean };
    expect(ref).toMatchObject({ namespace: ns.name, finished: true });
    const created = (await testCluster()
      .admin()
      .makeApiClient(CustomObjectsApi)
      .getNamespacedCustomObject({ ...GPU_DIAGNOSTICS, namespace: ns.name, name: ref.name })) as GPUDiagnostic;
    expect(created.metadata.labels).toMatchObject({ 'gpudiag.io/created-by': 'mcp', 'gpudiag.io/mcp-tool': 'pod-gpus' });
    expect(created.metadata.annotations?.['gpudiag.io/requested-by']).toBe(`${ns.name}-alice`);
    expect(created.spec).toMatchObject({ nodeNames: [nodeName], checks: ['health', 'xid'] });
    // From the pod's creation (seconds ago) to now.
    const lookback = Number(/^(\d+)s$/.exec(created.spec.xidLookback ?? '')?.[1]);
    expect(lookback).toBeGreaterThanOrEqual(1);
    expect(lookback).toBeLessThan(300);
  });

  it('explain_pod_failure: GPU hardware is likely for the pod on the lost GPU, with evidence naming it', async () => {
    const r = await call('explain_pod_failure', { namespace: ns.name, name: 'trainer-0' });
    expect(r.isError).toBe(false);
    expect(r.structured['gpuHardware']).toBe('likely');
    const evidence = r.structured['evidence'] as string[];
    expect(evidence[0]).toContain(`GPU 3 (${lostUuid}) is critical: GpuLost`);
    expect(r.text).toContain('GPU hardware is the likely cause (gpuHardware: likely)');
    expect(r.text).not.toContain('\n');
  });

  it('explain_pod_failure: unlikely for the OOMKilled pod on healthy GPU 0, naming the likelier cause', async () => {
    const r = await call('explain_pod_failure', { namespace: ns.name, name: 'bystander' });
    expect(r.isError).toBe(false);
    expect(r.structured['gpus']).toEqual([expect.objectContaining({ index: 0, uuid: gpu0, status: 'healthy', containers: ['main'] })]);
    expect(r.structured['failure']).toMatchObject({
      phase: 'Failed',
      containers: [
        { name: 'main', init: false, restartCount: 0, state: 'terminated', lastTerminated: { exitCode: 137, reason: 'OOMKilled' } },
      ],
    });
    expect(r.structured['gpuHardware']).toBe('unlikely');
    const evidence = r.structured['evidence'] as string[];
    expect(evidence[0]).toContain(`GPU 0 (${gpu0}) is healthy`);
    expect(evidence[1]).toMatch(/^likelier cause: container main was OOMKilled \(out of memory; exit code 137\)/);
    expect(r.text).toContain('GPU hardware is an unlikely cause');
  });

  it('a missing pod and an unscheduled pod are errors naming them', async () => {
    const missing = await call('pod_gpus', { namespace: ns.name, name: 'no-such-pod' });
    expect(missing).toMatchObject({ isError: true });
    expect(missing.text).toContain(`not found: pods no-such-pod in namespace ${ns.name}`);
    const unscheduled = await call('explain_pod_failure', { namespace: ns.name, name: 'unscheduled' });
    expect(unscheduled).toMatchObject({ isError: true });
    expect(unscheduled.text).toContain(`pod ${ns.name}/unscheduled is not scheduled to a node`);
  });
});

/**
 * A real agent over the fake NVML library reports the pods of each GPU: from a gRPC
 * pod-resources server (grpc-js, standing in for the kubelet) by GPU UUID, and from a fixture
 * /proc for GPU processes no device plugin allocated; with no socket it says "unknown" and why.
 * Every answer passes the snapshot schema the operator validates with.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import type { NodeSnapshotDocument } from '../../agent/api/snapshot-document.js';
import type { AgentConfig } from '../../agent/config.js';
import { validateSnapshotDocument } from '../../agent/api/validate-snapshot.js';
import { startTestAgent, type TestAgent } from '../support/agents.js';
import { socketDir, startFakePodResourcesServer, type FakeAnswer } from '../support/pod-resources-server.js';

let dir: string;
let removeDir: () => Promise<void>;
const stops: (() => Promise<void>)[] = [];

beforeEach(async () => {
  ({ dir, remove: removeDir } = await socketDir());
});

afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
  await removeDir();
});

async function agentWith(scenario: string, config: Partial<AgentConfig>): Promise<TestAgent> {
  const agent = await startTestAgent({ scenario, config });
  stops.push(() => agent.stop());
  return agent;
}

async function snapshot(agent: TestAgent, checks: string): Promise<NodeSnapshotDocument> {
  const res = await fetch(`${agent.url}/v1/snapshot?checks=${checks}`);
  expect(res.status).toBe(200);
  const body: unknown = await res.json();
  const validation = validateSnapshotDocument(body);
  expect(validation.ok ? [] : validation.problems).toEqual([]);
  return body as NodeSnapshotDocument;
}

describe('agent snapshots name the pods of each GPU', () => {
  it('from the pod-resources API, on the GPU whose UUID the kubelet lists', async () => {
    let answer: FakeAnswer = { message: {} };
    const kubelet = await startFakePodResourcesServer(dir, { list: () => answer });
    stops.push(() => kubelet.close());
    const agent = await agentWith('h100-sxm-8x-healthy', { podResourcesSocket: kubelet.socketPath });

    const before = await snapshot(agent, 'inventory');
    expect(before.podResources).toEqual({ status: 'ok' });
    expect(before.gpus.map((g) => g.pods)).toEqual(Array.from({ length: 8 }, () => []));
    const uuid3 = before.gpus[3]?.uuid as string;
    const uuid5 = before.gpus[5]?.uuid as string;

    answer = {
      message: {
        pod_resources: [
          {
            name: 'trainer-0',
            namespace: 'ml',
            containers: [{ name: 'pytorch', devices: [{ resource_name: 'nvidia.com/gpu', device_ids: [uuid3] }] }],
          },
          {
            name: 'notebook',
            namespace: 'research',
            containers: [{ name: 'jupyter', devices: [{ resource_name: 'nvidia.com/gpu.shared', device_ids: [`${uuid5}::1`] }] }],
          },
          {
            name: 'gone-gpu',
            namespace: 'ml',
            containers: [
              { name: 'c', devices: [{ resource_name: 'nvidia.com/gpu', device_ids: ['GPU-00000000-0000-0000-0000-000000000000'] }] },
            ],
          },
          { name: 'web', namespace: 'default', containers: [{ name: 'nginx' }] },
        ],
      },
    };
    const doc = await snapshot(agent, 'health,xid');
    expect(doc.gpus[3]?.pods).toEqual([{ source: 'pod-resources', namespace: 'ml', name: 'trainer-0', container: 'pytorch' }]);
    expect(doc.gpus[5]?.pods).toEqual([
      { source: 'pod-resources', namespace: 'research', name: 'notebook', container: 'jupyter', deviceId: `${uuid5}::1` },
    ]);
    expect(doc.gpus.filter((g) => (g.pods ?? []).length > 0).map((g) => g.index)).toEqual([3, 5]);
    expect(doc.podResources).toEqual({
      status: 'ok',
      unmatchedDevices: [
        {
          namespace: 'ml',
          name: 'gone-gpu',
          container: 'c',
          resourceName: 'nvidia.com/gpu',
          deviceId: 'GPU-00000000-0000-0000-0000-000000000000',
        },
      ],
    });

    // An XID-only snapshot lists no GPUs, so it neither asks the kubelet nor says anything about pods.
    const calls = kubelet.calls.list;
    const xidOnly = await snapshot(agent, 'xid');
    expect(xidOnly).not.toHaveProperty('podResources');
    expect(kubelet.calls.list).toBe(calls);
  });

  it('with no socket: "unknown", the reason and the socket, and the snapshot is served as before', async () => {
    const socketPath = path.join(dir, 'kubelet.sock');
    const agent = await agentWith('h100-sxm-8x-healthy', { podResourcesSocket: socketPath });
    const doc = await snapshot(agent, 'health,xid');
    expect(doc.gpus).toHaveLength(8);
    expect(doc.podResources).toEqual({
      status: 'unknown',
      reason: 'socket-missing',
      message: `gRPC /v1.PodResourcesLister/List on ${socketPath}: cannot connect (ENOENT)`,
    });
    expect(doc.gpus.map((g) => g.pods)).toEqual(Array.from({ length: 8 }, () => undefined));
  });

  it('from the cgroups of GPU processes that no device plugin allocated', async () => {
    const procRoot = path.join(dir, 'proc');
    const uid = '7c1b2f0e-3d4a-4b5c-8d9e-0f1a2b3c4d5e';
    const containerId = 'e'.repeat(64);
    // The scenario's GPU 1 runs pids 7011 and 7012: one in a pod, one ended.
    await mkdir(path.join(procRoot, '7011'), { recursive: true });
    await writeFile(
      path.join(procRoot, '7011', 'cgroup'),
      `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${uid.replaceAll('-', '_')}.slice/cri-containerd-` +
        `${containerId}.scope\n`,
    );
    const agent = await agentWith('a100-r535-98-processes', { podResourcesSocket: path.join(dir, 'kubelet.sock'), procRoot });
    const doc = await snapshot(agent, 'processes');
    expect(doc.gpus[1]?.processes?.map((p) => p.pid)).toEqual([7011, 7012]);
    expect(doc.gpus[1]?.pods).toEqual([{ source: 'process-cgroup', uid, containerId, pids: [7011] }]);
    expect(doc.processCgroups).toEqual({ looked: 2, inPods: 1, unreadable: 1 });
    expect(doc.podResources).toMatchObject({ status: 'unknown', reason: 'socket-missing' });
  });
});

/**
 * The agent's HTTP API against the real API server (TokenReview with real ServiceAccount
 * tokens, through the agent's own kubeconfig reader and node:https client, as in production)
 * and the fake NVML library (real C ABI), with faults injected while it runs.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { KubeConfig } from '@kubernetes/client-node';
import { tokenReviewAuthenticator } from '../../agent/auth/token-reviewer.js';
import type { NodeSnapshotDocument } from '../../agent/api/snapshot-document.js';
import { validateSnapshotDocument } from '../../agent/api/validate-snapshot.js';
import { applyObjects, readManifests } from '../../dev/apply.js';
import { repoRoot } from '../../dev/control-plane/binaries.js';
import { loadKubeconfig } from '../../lib/kube/kubeconfig.js';
import { testCluster, useTestNamespace } from '../support/cluster.js';
import { startTestAgent, type TestAgent } from '../support/agents.js';
import path from 'node:path';

const ns = useTestNamespace('agent-api');
const AUDIENCE = 'gpudiag-agent';
let agent: TestAgent;
let dir: string;
let operatorToken: string;
let strangerToken: string;
let wrongAudienceToken: string;

const xidLine = '4,1002,6000000,-;NVRM: Xid (PCI:0000:19:00): 79, pid=1234, name=python3, GPU has fallen off the bus.';

async function get(url: string, token?: string, init: RequestInit = {}): Promise<{ status: number; body: unknown; headers: Headers }> {
  const res = await fetch(url, { ...init, headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...(init.headers ?? {}) } });
  const text = await res.text();
  // Prometheus text and other non-JSON bodies stay strings.
  const json = (res.headers.get('content-type') ?? '').startsWith('application/json');
  return { status: res.status, body: json ? (JSON.parse(text) as unknown) : text, headers: res.headers };
}

beforeAll(async () => {
  const cluster = testCluster();
  // The agent runs as its own ServiceAccount with exactly the permissions config/rbac/agent.yaml grants.
  const rbac = (await readManifests([path.join(repoRoot, 'config', 'rbac', 'agent.yaml')])).map((o) => {
    const copy = JSON.parse(JSON.stringify(o)) as {
      kind: string;
      metadata: { name: string; namespace?: string };
      subjects?: { namespace: string }[];
    };
    if (copy.kind === 'ServiceAccount') copy.metadata.namespace = ns.name;
    if (copy.kind !== 'ServiceAccount') copy.metadata.name = `${copy.metadata.name}-${ns.name}`;
    if (copy.kind === 'ClusterRoleBinding') {
      (copy as unknown as { roleRef: { name: string } }).roleRef.name = `gpudiag-agent-${ns.name}`;
      for (const s of copy.subjects ?? []) s.namespace = ns.name;
    }
    return copy;
  });
  await applyObjects(cluster.admin(), rbac);
  const agentKc: KubeConfig = await cluster.asServiceAccount(ns.name, 'gpudiag-agent');
  dir = await mkdtemp(path.join(os.tmpdir(), 'gpudiag-agent-api-'));
  const kubeconfig = path.join(dir, 'agent.kubeconfig');
  await writeFile(kubeconfig, agentKc.exportConfig(), { mode: 0o600 });
  operatorToken = await cluster.serviceAccountToken(ns.name, 'gpudiag-operator', [AUDIENCE]);
  strangerToken = await cluster.serviceAccountToken(ns.name, 'someone-else', [AUDIENCE]);
  wrongAudienceToken = await cluster.serviceAccountToken(ns.name, 'gpudiag-operator');
  agent = await startTestAgent({
    scenario: 'h100-sxm-8x-healthy',
    kmsgLines: [xidLine],
    config: { auth: 'tokenreview', allowedCallers: [`system:serviceaccount:${ns.name}:gpudiag-operator`], snapshotCacheMs: 200 },
    authenticator: tokenReviewAuthenticator(await loadKubeconfig(kubeconfig), AUDIENCE),
  });
});

afterAll(async () => {
  await agent?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('agent HTTP API', () => {
  it('serves a schema-valid snapshot to an allowed ServiceAccount', async () => {
    const res = await get(`${agent.url}/v1/snapshot?checks=health,xid`, operatorToken, { headers: { 'X-Request-Id': 'test-123' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBe('test-123');
    const validation = validateSnapshotDocument(res.body);
    expect(validation).toMatchObject({ ok: true });
    const doc = res.body as NodeSnapshotDocument;
    expect(doc.gpus).toHaveLength(8);
    expect(doc.gpus.every((g) => !g.lost && g.temperature?.gpuCelsius !== undefined)).toBe(true);
    expect(doc.agent.mode).toBe('nvml');
  });

  it('answers 401 without a token, with a garbage token, and with a token for another audience', async () => {
    expect((await get(`${agent.url}/v1/snapshot`)).status).toBe(401);
    expect((await get(`${agent.url}/v1/snapshot`, 'not-a-token')).status).toBe(401);
    expect((await get(`${agent.url}/v1/snapshot`, wrongAudienceToken)).status).toBe(401);
  });

  it('answers 403 to an authenticated caller that is not allowed', async () => {
    const res = await get(`${agent.url}/v1/snapshot`, strangerToken);
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({ error: `system:serviceaccount:${ns.name}:someone-else may not call this agent` });
  });

  it('rejects bad requests with a status naming the problem', async () => {
    const bad = await get(`${agent.url}/v1/snapshot?checks=voltage`, operatorToken);
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ error: expect.stringContaining('"checks"') });
    expect((await get(`${agent.url}/v1/snapshot`, operatorToken, { method: 'POST', body: 'x'.repeat(2048) })).status).toBe(413);
    expect((await get(`${agent.url}/v1/snapshot`, operatorToken, { method: 'DELETE' })).status).toBe(405);
    expect((await get(`${agent.url}/nope`, operatorToken)).status).toBe(404);
  });

  it('reports the kernel-log XID with catalog severity and action', async () => {
    const doc = (await get(`${agent.url}/v1/snapshot?checks=xid&xidSince=2000-01-01T00:00:00Z`, operatorToken))
      .body as NodeSnapshotDocument;
    expect(doc.gpus).toEqual([]);
    expect(doc.xid.events).toEqual([
      expect.objectContaining({
        xid: 79,
        pciBusId: '0000:19:00',
        pid: 1234,
        process: 'python3',
        severity: 'critical',
        count: 1,
        sources: ['kmsg'],
      }),
    ]);
  });

  it('coalesces 64 concurrent requests into one NVML collection', async () => {
    // A slow collection (1 s) holds every request of the burst, however loaded the machine is.
    const controller = agent.fake?.controller;
    await controller?.inject({ kind: 'delay', call: 'nvmlDeviceGetCount_v2', ms: 1_000 });
    await new Promise((r) => setTimeout(r, 250)); // let the short cache expire
    const before = agent.agent.snapshots.collectionCount;
    try {
      const answers = await Promise.all(Array.from({ length: 64 }, () => get(`${agent.url}/v1/snapshot?checks=health`, operatorToken)));
      expect(answers.every((a) => a.status === 200)).toBe(true);
      expect(agent.agent.snapshots.collectionCount - before).toBe(1);
    } finally {
      await controller?.inject({ kind: 'delay', call: 'nvmlDeviceGetCount_v2', ms: 0 });
    }
  });

  it('sees a GPU fall off the bus at run time while the other seven keep reporting', async () => {
    await agent.fake?.controller.inject({ kind: 'fall-off-bus', gpu: 2 });
    await new Promise((r) => setTimeout(r, 250));
    const doc = (await get(`${agent.url}/v1/snapshot?checks=health`, operatorToken)).body as NodeSnapshotDocument;
    expect(doc.gpus.map((g) => g.lost)).toEqual([false, false, true, false, false, false, false, false]);
    expect(doc.gpus.filter((g) => !g.lost).every((g) => g.memory !== undefined)).toBe(true);
  });

  it('serves probes and metrics without authentication', async () => {
    expect(await get(`${agent.url}/healthz`)).toMatchObject({ status: 200, body: { status: 'ok' } });
    expect(await get(`${agent.url}/readyz`)).toMatchObject({ status: 200, body: { status: 'ready' } });
    const metrics = (await get(`${agent.url}/metrics`)).body as string;
    expect(metrics).toContain('gpudiag_agent_gpu_temperature_celsius{gpu="0"');
    expect(metrics).toContain('gpudiag_agent_xid_events_total{xid="79",source="kmsg"} 1');
    expect(metrics).toContain('gpudiag_agent_gpu_lost{gpu="2"');
  });

  it('refuses to start a second agent on a port already in use (start rejects, never reports ready)', async () => {
    await expect(startTestAgent({ config: { listenPort: agent.agent.address.port } })).rejects.toThrow(/cannot listen on 127\.0\.0\.1/);
  });
});

describe('agent without GPUs', () => {
  it('runs in explicit no-GPU mode, is ready, and still serves kernel-log XIDs', async () => {
    const noGpu = await startTestAgent({ kmsgLines: [xidLine] });
    try {
      expect((await get(`${noGpu.url}/readyz`)).status).toBe(200);
      const doc = (await get(`${noGpu.url}/v1/snapshot?xidSince=2000-01-01T00:00:00Z`)).body as NodeSnapshotDocument;
      expect(doc.agent.mode).toBe('no-gpu');
      expect(doc.agent.modeReason).toContain('no-such-libnvidia-ml.so.1');
      expect(doc.nvml.available).toBe(false);
      expect(doc.xid.events.map((e) => e.xid)).toEqual([79]);
    } finally {
      await noGpu.stop();
    }
  });

  it('is not ready when the kernel log cannot be read, and says why', async () => {
    const broken = await startTestAgent({ scenario: 'no-gpus', config: { kmsgPath: '/nonexistent/kmsg' } });
    try {
      const res = await get(`${broken.url}/readyz`);
      expect(res.status).toBe(503);
      expect(res.body).toMatchObject({ reasons: [expect.stringContaining('kernel log reader not running')] });
    } finally {
      await broken.stop();
    }
  });
});

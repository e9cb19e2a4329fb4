/**
 * The operator's fan-out against real agents on loopback (each on its own 127.0.0.x address,
 * fake NVML through its C ABI) and against misbehaving stub servers: every per-node outcome,
 * the circuit breaker, the concurrency bound and the overall deadline.
 */
import { afterAll, afterEach, describe, expect, it } from '@jest/globals';
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { createControlPlaneCerts } from '../../dev/control-plane/certs.js';
import { createLogger } from '../../lib/logger.js';
import {
  CircuitBreaker,
  createConnectionPool,
  fanOut,
  resolveTargets,
  type FanOutOptions,
  type NodeTarget,
} from '../../operator/fanout/index.js';
import type { BoundedRunStats } from '../../operator/fanout/pool.js';
import { minimalSnapshot, sendJson, startStubAgent, type StubAgent } from '../../operator/fanout/test-support.js';
import { startTestAgent, type TestAgent } from '../support/agents.js';

const logger = createLogger({ silent: true });
const connections = createConnectionPool({ scheme: 'http', maxSockets: 16 });
const running: { stop(): Promise<void> }[] = [];

afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.stop()));
});
afterAll(() => connections.destroy());

let nextHost = 10;
/** A fresh loopback address per server, so every node has its own IP as in a cluster. */
function loopback(): string {
  nextHost += 1;
  return `127.0.0.${nextHost}`;
}

async function agent(node: string, options: Parameters<typeof startTestAgent>[0] = {}): Promise<TestAgent> {
  const a = await startTestAgent({ ...options, config: { nodeName: node, listenHost: loopback(), ...options.config } });
  running.push(a);
  return a;
}

async function stub(handler: Parameters<typeof startStubAgent>[0]): Promise<StubAgent> {
  const s = await startStubAgent(handler, loopback());
  running.push({ stop: () => s.close() });
  return s;
}

function targetOf(node: string, a: TestAgent | StubAgent): NodeTarget {
  const { address, port } = 'agent' in a ? a.agent.address : { address: a.host, port: a.port };
  return { node, agent: { podName: `gpudiag-agent-${node}`, ip: address, port } };
}

function options(targets: NodeTarget[], overrides: Partial<FanOutOptions> = {}): FanOutOptions {
  return {
    targets,
    checks: ['health', 'xid'],
    xidSince: new Date(Date.now() - 3_600_000),
    perNodeTimeoutMs: 5_000,
    signal: AbortSignal.timeout(20_000),
    concurrency: 8,
    retryBaseDelayMs: 20,
    breaker: new CircuitBreaker(),
    tokenProvider: async () => 'operator-token',
    agentPort: 9443,
    scheme: 'http',
    connections,
    correlationId: 'fanout-it',
    logger,
    ...overrides,
  };
}

describe('fan-out to real agents', () => {
  it('asks a healthy fleet of 5 and gets 5 valid snapshots', async () => {
    // Two agents run the fake NVML library, three the no-GPU mode. In-process agents share one
    // libuv thread pool (4 threads) and each NVML agent's event watcher holds a thread in
    // nvmlEventSetWait, so 4+ NVML agents in one process starve their own snapshots.
    const fleet = await Promise.all([1, 2, 3, 4, 5].map((i) => agent(`gpu-node-${i}`, i <= 2 ? { scenario: 'h100-sxm-8x-healthy' } : {})));
    const hosts = new Set(fleet.map((a) => a.agent.address.address));
    expect(hosts.size).toBe(5);
    const outcomes = await fanOut(options(fleet.map((a, i) => targetOf(`gpu-node-${i + 1}`, a))));
    expect(outcomes.map((o) => [o.node, o.result, o.attempts])).toEqual([1, 2, 3, 4, 5].map((i) => [`gpu-node-${i}`, 'Succeeded', 1]));
    expect(outcomes.map((o) => o.snapshot?.node)).toEqual(outcomes.map((o) => o.node));
    expect(outcomes.map((o) => o.snapshot?.gpus.length)).toEqual([8, 8, 0, 0, 0]);
    expect(outcomes.map((o) => o.snapshot?.agent.mode)).toEqual(['nvml', 'nvml', 'no-gpu', 'no-gpu', 'no-gpu']);
  });

  it('resolves targets from Nodes and agent Pods and reports a node without an agent as NoAgent', async () => {
    const a = await agent('gpu-node-1');
    const nodes: V1Node[] = ['gpu-node-1', 'gpu-node-2'].map((name) => ({
      metadata: { name, labels: { 'nvidia.com/gpu.present': 'true' } },
    }));
    const pods: V1Pod[] = [
      {
        metadata: { name: 'gpudiag-agent-x1', creationTimestamp: new Date() },
        spec: { nodeName: 'gpu-node-1', containers: [] },
        status: { podIP: a.agent.address.address, conditions: [{ type: 'Ready', status: 'True' }] },
      },
    ];
    const targets = resolveTargets({ nodes, agentPods: pods, nodeSelector: { matchLabels: { 'nvidia.com/gpu.present': 'true' } } });
    const outcomes = await fanOut(options(targets, { agentPort: a.agent.address.port }));
    expect(outcomes).toMatchObject([
      { node: 'gpu-node-1', result: 'Succeeded' },
      { node: 'gpu-node-2', result: 'NoAgent', message: 'no gpudiag agent pod on gpu-node-2', attempts: 0 },
    ]);
  });

  it('reports a stopped agent as Unreachable', async () => {
    const a = await agent('gpu-node-1');
    const target = targetOf('gpu-node-1', a);
    await running.pop()?.stop();
    const [outcome] = await fanOut(options([target], { retries: 1 }));
    expect(outcome).toMatchObject({ node: 'gpu-node-1', result: 'Unreachable', attempts: 2 });
    expect(outcome?.message).toContain('ECONNREFUSED');
  });

  it('reports a slow agent (NVML call delayed) as Timeout at the per-node deadline', async () => {
    const a = await agent('gpu-node-slow', { scenario: 'h100-sxm-8x-healthy' });
    await a.fake?.controller.inject({ kind: 'delay', call: 'nvmlDeviceGetPowerUsage', ms: 3_000, gpu: 0 });
    const t0 = Date.now();
    const [outcome] = await fanOut(options([targetOf('gpu-node-slow', a)], { perNodeTimeoutMs: 500 }));
    expect(Date.now() - t0).toBeLessThan(2_000);
    expect(outcome).toMatchObject({ result: 'Timeout', attempts: 1 });
    expect(outcome?.message).toContain('no complete answer within');
  });

  it('reports a 401 from an agent with authentication as Error, without retrying', async () => {
    const a = await agent('gpu-node-auth', {
      config: { auth: 'tokenreview', allowedCallers: ['system:serviceaccount:gpudiag:gpudiag-operator'] },
      authenticator: async () => ({ authenticated: false }),
    });
    const breaker = new CircuitBreaker({ failureThreshold: 1 });
    const [outcome] = await fanOut(options([targetOf('gpu-node-auth', a)], { breaker }));
    expect(outcome).toMatchObject({
      result: 'Error',
      attempts: 1,
      message: 'agent answered HTTP 401: the token is not valid for this agent',
    });
    expect(breaker.state(`gpu-node-auth/${a.agent.address.address}`)).toBe('closed');
  });

  it('reports garbage answers as Error naming what was wrong', async () => {
    const hello = await stub((_req, res) => sendJson(res, 200, { hello: 1 }));
    const text = await stub((_req, res) => res.writeHead(200, { 'Content-Type': 'text/plain' }).end('all good, trust me'));
    const wrongNode = await stub((_req, res) => sendJson(res, 200, minimalSnapshot('some-other-node')));
    const outcomes = await fanOut(
      options([targetOf('gpu-node-a', hello), targetOf('gpu-node-b', text), targetOf('gpu-node-c', wrongNode)]),
    );
    expect(outcomes.map((o) => [o.result, o.attempts])).toEqual([
      ['Error', 1],
      ['Error', 1],
      ['Error', 1],
    ]);
    expect(outcomes[0]?.message).toBe('agent answered an invalid snapshot document: apiVersion must be agent.gpudiag.io/v1, got nothing');
    expect(outcomes[1]?.message).toMatch(/^agent answered invalid JSON: /);
    expect(outcomes[2]?.message).toBe('agent answered a snapshot for node "some-other-node", expected gpu-node-c');
  });

  it('handles a connection reset mid-body (C2) as a transient failure, retried then reported', async () => {
    const reset = await stub(async (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': 50_000 });
      res.write(JSON.stringify(minimalSnapshot('gpu-node-r')).slice(0, 100));
      await delay(10);
      res.socket?.destroy();
    });
    const [outcome] = await fanOut(options([targetOf('gpu-node-r', reset)], { retries: 1 }));
    expect(outcome).toMatchObject({ result: 'Error', attempts: 2 });
    expect(outcome?.message).toMatch(/^connection (closed|failed) after HTTP 200 while reading the body \(100 bytes read\)/);
    expect(reset.requests).toBe(2);
  });

  it('opens the circuit after repeated failures; the next fan-out is Unreachable at once', async () => {
    const a = await agent('gpu-node-down');
    const target = targetOf('gpu-node-down', a);
    await running.pop()?.stop();
    const breaker = new CircuitBreaker({ failureThreshold: 3, coolDownMs: 30_000 });
    const [first] = await fanOut(options([target], { breaker, retries: 2 }));
    expect(first).toMatchObject({ result: 'Unreachable', attempts: 3 });
    expect(breaker.snapshot()).toEqual({ closed: 0, open: 1, halfOpen: 0 });
    const t0 = Date.now();
    const [second] = await fanOut(options([target], { breaker }));
    expect(Date.now() - t0).toBeLessThan(100);
    expect(second).toMatchObject({ result: 'Unreachable', attempts: 0, message: 'circuit open after 3 failures; next probe in 30s' });
  });

  it('never has more than `concurrency` requests in flight (30 targets, concurrency 4)', async () => {
    const slow = await stub(async (req, res) => {
      await delay(50);
      sendJson(res, 200, minimalSnapshot(String(req.headers['x-request-id']).split(':').pop() ?? ''));
    });
    let stats: BoundedRunStats | undefined;
    const streamed: string[] = [];
    const outcomes = await fanOut(
      options(
        Array.from({ length: 30 }, (_, i) => targetOf(`gpu-node-${String(i).padStart(2, '0')}`, slow)),
        { concurrency: 4, onStats: (s) => (stats = s), onResult: (o) => streamed.push(o.node) },
      ),
    );
    expect(outcomes.every((o) => o.result === 'Succeeded')).toBe(true);
    expect(streamed).toHaveLength(30);
    expect(slow.requests).toBe(30);
    expect(slow.peakInFlight).toBeLessThanOrEqual(4);
    expect(stats?.peakInFlight).toBeLessThanOrEqual(4);
    expect(stats?.peakInFlight).toBe(4);
  });

  it('turns unfinished nodes into Timeout at the overall deadline and resolves promptly', async () => {
    const healthy = await agent('gpu-node-ok');
    const hanging = await stub(() => undefined);
    const targets = [targetOf('gpu-node-ok', healthy), ...Array.from({ length: 6 }, (_, i) => targetOf(`gpu-node-hang-${i}`, hanging))];
    const t0 = Date.now();
    const outcomes = await fanOut(options(targets, { concurrency: 3, perNodeTimeoutMs: 30_000, signal: AbortSignal.timeout(400) }));
    expect(Date.now() - t0).toBeLessThan(1_500);
    expect(outcomes).toHaveLength(7);
    expect(outcomes[0]).toMatchObject({ node: 'gpu-node-ok', result: 'Succeeded' });
    expect(outcomes.slice(1).every((o) => o.result === 'Timeout')).toBe(true);
    expect(outcomes.filter((o) => o.message === 'overall deadline passed before the agent answered').length).toBeGreaterThanOrEqual(2);
    expect(outcomes.filter((o) => o.message === 'overall deadline passed before the agent was asked').length).toBeGreaterThanOrEqual(1);
  });

  it('speaks TLS to an agent with a serving certificate, verifying it against the CA', async () => {
    // The local CA's serving certificate names IP 127.0.0.1 and DNS localhost.
    const dir = await mkdtemp(path.join(os.tmpdir(), 'gpudiag-fanout-tls-'));
    running.push({ stop: () => rm(dir, { recursive: true, force: true }) });
    const certs = await createControlPlaneCerts(dir);
    const caPem = await readFile(certs.caCert, 'utf8');
    const byIp = await agent('gpu-node-tls', {
      config: { listenHost: '127.0.0.1', tls: { certFile: certs.servingCert, keyFile: certs.servingKey } },
    });
    const byName = await agent('gpu-node-tls', { config: { tls: { certFile: certs.servingCert, keyFile: certs.servingKey } } });

    // Without `connections` the fan-out builds its own https pool from caPem / tlsServerName.
    const https = (target: NodeTarget, tls: Partial<FanOutOptions>): FanOutOptions => {
      const own: Partial<FanOutOptions> = options([target], { scheme: 'https', ...tls });
      delete own.connections;
      return own as FanOutOptions;
    };
    const [verified] = await fanOut(https(targetOf('gpu-node-tls', byIp), { caPem }));
    expect(verified).toMatchObject({ result: 'Succeeded' });
    const [named] = await fanOut(https(targetOf('gpu-node-tls', byName), { caPem, tlsServerName: 'localhost' }));
    expect(named).toMatchObject({ result: 'Succeeded' });
    const [wrongName] = await fanOut(https(targetOf('gpu-node-tls', byName), { caPem }));
    expect(wrongName).toMatchObject({ result: 'Error', attempts: 1 });
    expect(wrongName?.message).toMatch(/^TLS handshake with the agent failed: /);
    const [untrusted] = await fanOut(https(targetOf('gpu-node-tls', byIp), {}));
    expect(untrusted).toMatchObject({ result: 'Error', attempts: 1 });
    expect(untrusted?.message).toMatch(/^TLS handshake with the agent failed: .*certificate/);
  });
});

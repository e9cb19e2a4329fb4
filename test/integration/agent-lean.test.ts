/**
 * The agent stays lean: a real `gpudiag agent` process checks callers (locally against the
 * issuer's keys, the default, with TokenReview as the fallback) against the real API server
 * without ever loading @kubernetes/client-node, and with --auth none loads none of that code. Loaded modules are recorded by a
 * `node --import` loader hook (test/support/module-log.ts), not by anything in the agent.
 * The in-cluster configuration (mounted CA and token) works against the real API server and
 * follows a rotated token; a kubeconfig with a client certificate works too.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { tokenReviewAuthenticator } from '../../agent/auth/token-reviewer.js';
import { freePort } from '../../dev/control-plane/control-plane.js';
import { inClusterConnection } from '../../lib/kube/connection.js';
import { loadKubeconfig } from '../../lib/kube/kubeconfig.js';
import { testCluster, useTestNamespace } from '../support/cluster.js';
import { moduleLogEnv, packagesIn, readModuleLog } from '../support/module-log.js';
import { spawnGpudiag, type GpudiagProcess } from '../support/processes.js';
import { applyRbac } from '../support/rbac.js';

const ns = useTestNamespace('agent-lean');
const AUDIENCE = 'gpudiag-agent';
const CLIENT_NODE = '/node_modules/@kubernetes/client-node/';
let dir: string;
let agentKubeconfig: string;
let operatorToken: string;

beforeAll(async () => {
  const cluster = testCluster();
  await applyRbac('agent.yaml', ns.name);
  dir = await mkdtemp(path.join(os.tmpdir(), 'gpudiag-agent-lean-'));
  agentKubeconfig = path.join(dir, 'agent.kubeconfig');
  await writeFile(agentKubeconfig, (await cluster.asServiceAccount(ns.name, 'gpudiag-agent')).exportConfig(), { mode: 0o600 });
  operatorToken = await cluster.serviceAccountToken(ns.name, 'gpudiag-operator', [AUDIENCE]);
});

afterAll(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/** Starts a no-GPU agent that records the modules it loads into `logFile`; resolves with its URL once ready. */
async function startRecordedAgent(args: string[], logFile: string): Promise<{ agent: GpudiagProcess; url: string }> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const common = [
    '--node-name',
    'gpu-node-lean',
    '--listen',
    `127.0.0.1:${port}`,
    '--kmsg-path',
    '',
    '--nvml-library',
    '/nonexistent.so',
    '--nvml-no-fallback',
  ];
  const agent = spawnGpudiag(['agent', ...common, ...args], { ...process.env, ...moduleLogEnv(logFile) });
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (
      await fetch(`${url}/readyz`).then(
        (r) => r.status === 200,
        () => false,
      )
    )
      return { agent, url };
    if (agent.exitCode() !== undefined || Date.now() > deadline) {
      agent.child.kill('SIGKILL');
      throw new Error(`the agent did not become ready:\n${agent.output()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function status(url: string, token?: string): Promise<number> {
  const res = await fetch(`${url}/v1/snapshot?checks=xid`, token === undefined ? {} : { headers: { Authorization: `Bearer ${token}` } });
  await res.arrayBuffer();
  return res.status;
}

describe('gpudiag agent process, modules loaded', () => {
  it('--auth tokenreview: tokens verified with the issuer keys fetched over node:https, and client-node is never loaded', async () => {
    const logFile = path.join(dir, 'tokenreview.modules');
    const strangerToken = await testCluster().serviceAccountToken(ns.name, 'someone-else', [AUDIENCE]);
    const wrongAudience = await testCluster().serviceAccountToken(ns.name, 'gpudiag-operator');
    const args = [
      '--auth',
      'tokenreview',
      '--allowed-callers',
      `system:serviceaccount:${ns.name}:gpudiag-operator`,
      '--kubeconfig',
      agentKubeconfig,
    ];
    const { agent, url } = await startRecordedAgent(args, logFile);
    try {
      expect(await status(url, operatorToken)).toBe(200);
      expect(await status(url, strangerToken)).toBe(403);
      expect(await status(url, wrongAudience)).toBe(401);
      expect(await status(url)).toBe(401);
    } finally {
      agent.child.kill('SIGTERM');
    }
    expect(await agent.exited).toBe(0);
    const modules = await readModuleLog(logFile);
    // The recorder saw the agent's own token verification path (so an empty log cannot pass)...
    expect(modules).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/\/dist\/agent\/auth\/token-reviewer\.js$/),
        expect.stringMatching(/\/dist\/agent\/auth\/local-verifier\.js$/),
        expect.stringMatching(/\/dist\/lib\/kube\/kubeconfig\.js$/),
      ]),
    );
    expect(packagesIn(modules)).toEqual(expect.arrayContaining(['yaml', 'prom-client']));
    // ...and no module of the Kubernetes client, of winston (the agent logs through lib/json-logger)
    // or of OpenTelemetry (prom-client's index, which loads it, is not loaded: agent/prom-lean).
    expect(modules.filter((m) => m.includes(CLIENT_NODE))).toEqual([]);
    expect(packagesIn(modules).filter((p) => p === 'winston' || p === 'logform' || p.startsWith('@opentelemetry'))).toEqual([]);
  });

  it('--auth none: no TokenReview, kubeconfig or YAML code is loaded at all', async () => {
    const logFile = path.join(dir, 'none.modules');
    const { agent, url } = await startRecordedAgent(['--auth', 'none'], logFile);
    try {
      expect(await status(url)).toBe(200);
    } finally {
      agent.child.kill('SIGTERM');
    }
    expect(await agent.exited).toBe(0);
    const modules = await readModuleLog(logFile);
    expect(modules).toEqual(expect.arrayContaining([expect.stringMatching(/\/dist\/agent\/agent\.js$/)]));
    const authOnly = [
      'agent/auth/token-reviewer.js',
      'agent/auth/token-verifier.js',
      'agent/auth/local-verifier.js',
      'agent/auth/issuer-keys.js',
      'agent/auth/jws.js',
      'lib/kube/connection.js',
      'lib/kube/kubeconfig.js',
      'lib/kube/raw-request.js',
      'lib/read-bounded.js',
    ];
    expect(modules.filter((m) => authOnly.some((file) => m.endsWith(`/dist/${file}`)))).toEqual([]);
    expect(packagesIn(modules).filter((p) => p === 'yaml' || p === '@kubernetes/client-node')).toEqual([]);
  });
});

describe('the agent API server connection against the real API server', () => {
  it('in-cluster: uses the mounted CA and token, and the token as the kubelet rotates it', async () => {
    const cluster = testCluster();
    const saDir = path.join(dir, 'serviceaccount');
    await mkdir(saDir, { recursive: true });
    await writeFile(path.join(saDir, 'ca.crt'), cluster.caPem);
    await writeFile(path.join(saDir, 'token'), await cluster.serviceAccountToken(ns.name, 'gpudiag-agent'));
    const server = new URL(cluster.server);
    let now = 1_000_000;
    const connection = await inClusterConnection({
      service: { host: server.hostname, port: server.port },
      serviceAccountDir: saDir,
      tokenRereadMs: 60_000,
      now: () => now,
    });
    const review = tokenReviewAuthenticator(connection, AUDIENCE);
    const signal = AbortSignal.timeout(20_000);
    expect(await review(operatorToken, signal)).toMatchObject({
      authenticated: true,
      username: `system:serviceaccount:${ns.name}:gpudiag-operator`,
    });

    // The kubelet swaps in a token of an identity without the TokenReview permission: used once the re-read is due.
    await writeFile(path.join(saDir, 'token'), await cluster.serviceAccountToken(ns.name, 'no-tokenreview'));
    now += 59_000;
    expect(await review(operatorToken, signal)).toMatchObject({ authenticated: true });
    now += 2_000;
    await expect(review(operatorToken, signal)).rejects.toMatchObject({ statusCode: 403 });
  });

  it('a kubeconfig with a client certificate (the admin one) reviews tokens too', async () => {
    const review = tokenReviewAuthenticator(await loadKubeconfig(testCluster().adminKubeconfigPath), AUDIENCE);
    expect(await review(operatorToken, AbortSignal.timeout(20_000))).toMatchObject({
      authenticated: true,
      username: `system:serviceaccount:${ns.name}:gpudiag-operator`,
    });
    expect(await review('not-a-token', AbortSignal.timeout(20_000))).toMatchObject({ authenticated: false });
  });
});

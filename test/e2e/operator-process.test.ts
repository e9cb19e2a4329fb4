/**
 * The `gpudiag operator` binary, run as its ServiceAccount (config/rbac/operator.yaml) from a
 * kubeconfig file: ready on /readyz, holds the leader Lease, reconciles, and on SIGTERM exits 0
 * within a bound having released the Lease (audit M7). A bad flag exits 2 naming the flag.
 * It runs without ever loading @kubernetes/client-node (recorded by test/support/module-log.ts).
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoordinationV1Api, CustomObjectsApi, type V1Lease } from '@kubernetes/client-node';
import { GPU_DIAGNOSTICS, type GPUDiagnostic } from '../../api/index.js';
import { freePort } from '../../dev/control-plane/control-plane.js';
import { testCluster, useTestNamespace } from '../support/cluster.js';
import { assertKstatus } from '../support/kstatus.js';
import { moduleLogEnv, readModuleLog } from '../support/module-log.js';
import { spawnGpudiag, type GpudiagProcess } from '../support/processes.js';
import { applyRbac } from '../support/rbac.js';

const ns = useTestNamespace('e2e-opproc');
const LEASE_NAME = 'gpudiag-operator';
let dir: string;
let kubeconfigFile: string;
let tokenFile: string;
const children = new Set<ChildProcess>();

function startOperator(args: string[], env?: NodeJS.ProcessEnv): GpudiagProcess {
  const operator = spawnGpudiag(['operator', ...args], env);
  children.add(operator.child);
  void operator.exited.then(() => children.delete(operator.child));
  return operator;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>, output: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms; operator output:\n${output().slice(-4000)}`);
    await sleep(100);
  }
}

async function readLease(): Promise<V1Lease | undefined> {
  const api = testCluster().admin().makeApiClient(CoordinationV1Api);
  return api.readNamespacedLease({ namespace: ns.name, name: LEASE_NAME }).catch((err: { code?: number }) => {
    if (err.code === 404) return undefined;
    throw err;
  });
}

/** Resolves with the exit code, or rejects when the process has not exited within `ms`. */
async function exitWithin(exited: Promise<number | string>, ms: number): Promise<number | string> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      exited,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no exit within ${ms} ms`)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

beforeAll(async () => {
  await applyRbac('operator.yaml', ns.name);
  dir = await mkdtemp(path.join(os.tmpdir(), 'gpudiag-operator-proc-'));
  kubeconfigFile = path.join(dir, 'kubeconfig');
  tokenFile = path.join(dir, 'agent-token');
  const kc = await testCluster().asServiceAccount(ns.name, 'gpudiag-operator');
  await writeFile(kubeconfigFile, kc.exportConfig(), { mode: 0o600 });
  await writeFile(tokenFile, await testCluster().serviceAccountToken(ns.name, 'gpudiag-operator', ['gpudiag-agent']), { mode: 0o600 });
});

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('gpudiag operator process', () => {
  it('becomes ready, holds the Lease and reconciles without client-node; on SIGTERM releases the Lease and exits 0', async () => {
    const port = await freePort();
    const moduleLog = path.join(dir, 'operator.modules');
    const op = startOperator(
      [
        '--kubeconfig',
        kubeconfigFile,
        '--namespaces',
        ns.name,
        '--agent-namespace',
        ns.name,
        '--policy-selector',
        `gpudiag.io/shard=${ns.name}`,
        '--probe-listen',
        `127.0.0.1:${port}`,
        '--agent-token-file',
        tokenFile,
        '--identity',
        'proc-test',
      ],
      { ...process.env, ...moduleLogEnv(moduleLog) },
    );
    try {
      await waitFor(
        '/readyz 200',
        20_000,
        () =>
          fetch(`http://127.0.0.1:${port}/readyz`).then(
            (r) => r.status === 200,
            () => false,
          ),
        op.output,
      );
      await waitFor('the Lease is held', 10_000, async () => ((await readLease())?.spec?.holderIdentity ?? '') !== '', op.output);
      const held = await readLease();
      expect(held?.spec?.holderIdentity).toMatch(/^proc-test_/);
      expect(held?.spec?.leaseDurationSeconds).toBeGreaterThan(1);

      // The controllers run: a diagnostic naming a node that does not exist completes with NoAgent.
      const api = testCluster().admin().makeApiClient(CustomObjectsApi);
      const name = 'proc-check';
      await api.createNamespacedCustomObject({
        ...GPU_DIAGNOSTICS,
        namespace: ns.name,
        body: { apiVersion: 'gpudiag.io/v1alpha1', kind: 'GPUDiagnostic', metadata: { name }, spec: { nodeNames: [`${ns.name}-absent`] } },
      });
      let obj: GPUDiagnostic | undefined;
      await waitFor(
        'the diagnostic finishes',
        15_000,
        async () => {
          obj = (await api.getNamespacedCustomObject({ ...GPU_DIAGNOSTICS, namespace: ns.name, name })) as GPUDiagnostic;
          assertKstatus(obj);
          return obj.status?.phase === 'Completed' || obj.status?.phase === 'Failed';
        },
        op.output,
      );
      expect(obj?.status).toMatchObject({ phase: 'Completed', summary: { nodesTargeted: 1, nodesByResult: { NoAgent: 1 } } });
      expect(await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text())).toMatch(/^gpudiag_leader 1$/m);
    } finally {
      op.child.kill('SIGTERM');
    }
    const started = Date.now();
    expect(await exitWithin(op.exited, 15_000)).toBe(0);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(op.output()).toContain('"message":"operator stopped"');
    // Released (operator/runtime/leader-election.ts release()): holder emptied, duration 1 s.
    const released = await readLease();
    expect(released?.spec?.holderIdentity ?? '').toBe('');
    expect(released?.spec?.leaseDurationSeconds).toBe(1);
    // And the probe socket is closed.
    expect(
      await fetch(`http://127.0.0.1:${port}/healthz`).then(
        () => 'open',
        () => 'closed',
      ),
    ).toBe('closed');
    // Lean: the operator's API calls are lib/kube/api-client's; client-node (~74 MiB) is never loaded.
    const modules = await readModuleLog(moduleLog);
    expect(modules).toEqual(expect.arrayContaining([expect.stringMatching(/\/dist\/operator\/operator\.js$/)]));
    expect(modules.filter((m) => m.includes('/node_modules/@kubernetes/client-node/'))).toEqual([]);
  });

  it('two replicas: exactly one leads; SIGKILL the leader and the other takes over once the Lease expires', async () => {
    const ports = [await freePort(), await freePort()];
    const replica = (i: number): ReturnType<typeof startOperator> =>
      startOperator([
        '--kubeconfig',
        kubeconfigFile,
        '--namespaces',
        ns.name,
        '--agent-namespace',
        ns.name,
        '--policy-selector',
        `gpudiag.io/shard=${ns.name}`,
        '--probe-listen',
        `127.0.0.1:${ports[i] ?? 0}`,
        '--agent-token-file',
        tokenFile,
        '--lease-name',
        'failover',
        '--lease-duration-seconds',
        '3',
        '--identity',
        `replica-${i}`,
      ]);
    const replicas = [replica(0), replica(1)];
    const leaderMetric = async (i: number): Promise<string> =>
      (
        await fetch(`http://127.0.0.1:${ports[i] ?? 0}/metrics`).then(
          (r) => r.text(),
          () => '',
        )
      ).match(/^gpudiag_leader (\d)$/m)?.[1] ?? '';
    const holder = async (): Promise<string> => {
      const api = testCluster().admin().makeApiClient(CoordinationV1Api);
      const lease = await api.readNamespacedLease({ namespace: ns.name, name: 'failover' }).catch((err: { code?: number }) => {
        if (err.code === 404) return undefined;
        throw err;
      });
      return lease?.spec?.holderIdentity ?? '';
    };
    const output = (): string => replicas.map((r) => r.output()).join('\n');
    try {
      await waitFor('a leader', 20_000, async () => (await holder()) !== '', output);
      const leaderIndex = (await holder()).startsWith('replica-0') ? 0 : 1;
      const other = 1 - leaderIndex;
      await waitFor(
        'both replicas report leadership metrics',
        10_000,
        async () => (await leaderMetric(other)) === '0' && (await leaderMetric(leaderIndex)) === '1',
        output,
      );

      const killedAt = Date.now();
      replicas[leaderIndex]?.child.kill('SIGKILL');
      await waitFor('the other replica leads', 15_000, async () => (await holder()).startsWith(`replica-${other}`), output);
      const takeoverMs = Date.now() - killedAt;
      // Not before the 3 s lease could expire, and soon after it did.
      expect(takeoverMs).toBeGreaterThanOrEqual(2_000);
      expect(takeoverMs).toBeLessThan(12_000);

      // The new leader reconciles.
      const api = testCluster().admin().makeApiClient(CustomObjectsApi);
      await api.createNamespacedCustomObject({
        ...GPU_DIAGNOSTICS,
        namespace: ns.name,
        body: {
          apiVersion: 'gpudiag.io/v1alpha1',
          kind: 'GPUDiagnostic',
          metadata: { name: 'after-failover' },
          spec: { nodeNames: [`${ns.name}-absent`] },
        },
      });
      await waitFor(
        'the diagnostic completes under the new leader',
        15_000,
        async () => {
          const obj = (await api.getNamespacedCustomObject({
            ...GPU_DIAGNOSTICS,
            namespace: ns.name,
            name: 'after-failover',
          })) as GPUDiagnostic;
          assertKstatus(obj);
          return obj.status?.phase === 'Completed';
        },
        output,
      );
    } finally {
      for (const r of replicas) r.child.kill('SIGTERM');
    }
    await Promise.all(replicas.map((r) => exitWithin(r.exited, 15_000)));
  });

  it.each([
    [['--workers', '0'], '--workers must be an integer between 1 and 64, got "0"'],
    [['--agent-scheme', 'ftp'], '--agent-scheme must be http or https, got "ftp"'],
    [['--no-such-flag'], "'--no-such-flag'"],
  ])('exits 2 naming the flag for %j', async (args, message) => {
    const op = startOperator([...args, '--kubeconfig', kubeconfigFile]);
    expect(await exitWithin(op.exited, 10_000)).toBe(2);
    expect(op.output()).toContain(message);
    expect(op.output()).toContain('usage: gpudiag operator');
  });
});

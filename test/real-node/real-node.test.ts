/**
 * A real one-node cluster on this machine (dev/real-node): the node registers and goes Ready, a
 * pod from the local Node base image runs to completion on it and its log reads back through the
 * API server (`kubectl logs`, which the API server proxies to the kubelet), and stopping the node
 * leaves nothing: node processes, mounts, links, iptables rules, cgroups and runtime files are
 * counted before and after. Not part of `npm test` (root, built binaries): `npm run test:real-node`.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoreV1Api } from '@kubernetes/client-node';
import type { ControlPlane } from '../../dev/control-plane/control-plane.js';
import { startRealCluster, type RealCluster } from '../../dev/real-node/cluster.js';
import { ensureGpudiagImages, localBaseImage } from '../../dev/real-node/images.js';
import type { RealNode } from '../../dev/real-node/real-node.js';
import { hostCensus, type HostCensus } from '../../dev/real-node/residue.js';

const run = promisify(execFile);
const progress = (m: string): void => void process.stderr.write(`[real-node] ${m}\n`);

let before: HostCensus;
let cluster: RealCluster | undefined;
let controlPlane: ControlPlane | undefined;
let node: RealNode | undefined;
let baseImage: string;

async function stopAll(): Promise<void> {
  const c = cluster;
  cluster = undefined;
  await c?.stop();
}

async function waitFor<T>(what: string, get: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await get();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

beforeAll(async () => {
  const started = Date.now();
  // Images first (they take long cold, and hold nothing on the machine while they build).
  await ensureGpudiagImages(progress);
  const base = await localBaseImage();
  baseImage = base.image;
  before = await hostCensus();
  progress(`before: ${JSON.stringify(before)}`);
  cluster = await startRealCluster({ onProgress: progress });
  ({ controlPlane, node } = cluster);
  await node.importImages([base.archive]);
  progress(`node up in ${Date.now() - started} ms (images included)`);
}, 60 * 60_000);

afterAll(async () => {
  await stopAll();
}, 120_000);

describe('a real node', () => {
  it('registers with its bridge address and goes Ready', async () => {
    const core = controlPlane!.adminKubeConfig().makeApiClient(CoreV1Api);
    const n = await core.readNode({ name: node!.name });
    expect(n.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    expect(n.status?.addresses).toContainEqual({ type: 'InternalIP', address: node!.network.nodeIp });
    expect(n.status?.nodeInfo?.containerRuntimeVersion).toMatch(/^containerd:\/\//);
  });

  it('runs a pod from the local base image, and its log reads back through the API server', async () => {
    const core = controlPlane!.adminKubeConfig().makeApiClient(CoreV1Api);
    await core.createNamespacedPod({
      namespace: 'default',
      body: {
        metadata: { name: 'hello' },
        spec: {
          restartPolicy: 'Never',
          containers: [
            {
              name: 'hello',
              image: baseImage,
              imagePullPolicy: 'Never',
              command: ['node', '-e', 'console.log(`hello from ${process.env.HOSTNAME}`)'],
            },
          ],
        },
      },
    });
    const pod = await waitFor(
      'pod hello Succeeded',
      async () => {
        const p = await core.readNamespacedPod({ namespace: 'default', name: 'hello' });
        if (p.status?.phase === 'Failed') throw new Error(`pod hello failed: ${JSON.stringify(p.status)}`);
        return p.status?.phase === 'Succeeded' ? p : undefined;
      },
      180_000,
    );
    expect(pod.status?.podIP).toMatch(/^10\.244\.0\./);
    expect(pod.spec?.nodeName).toBe(node!.name);
    const { stdout } = await run(
      'kubectl',
      ['--kubeconfig', controlPlane!.endpoint.adminKubeconfigPath, 'logs', '-n', 'default', 'hello'],
      { timeout: 60_000 },
    );
    expect(stdout.trim()).toBe('hello from hello');
  });

  it('keeps a pod running until the node stops (its container, shim, mounts and veth are what stop() must remove)', async () => {
    const core = controlPlane!.adminKubeConfig().makeApiClient(CoreV1Api);
    await core.createNamespacedPod({
      namespace: 'default',
      body: {
        metadata: { name: 'sleeper' },
        spec: {
          containers: [
            { name: 'sleeper', image: baseImage, imagePullPolicy: 'Never', command: ['node', '-e', 'setInterval(() => {}, 1 << 30)'] },
          ],
        },
      },
    });
    await waitFor(
      'pod sleeper Running',
      async () => {
        const p = await core.readNamespacedPod({ namespace: 'default', name: 'sleeper' });
        return p.status?.containerStatuses?.[0]?.state?.running !== undefined ? p : undefined;
      },
      180_000,
    );
    // The census sees a running node (so "nothing after stop" means something).
    const during = await hostCensus();
    progress(`during: ${JSON.stringify(during)}`);
    expect(during.processes).toBeGreaterThan(before.processes);
    expect(during.mounts).toBeGreaterThan(before.mounts);
    expect(during.links).toBeGreaterThan(before.links + 1); // the bridge and the pod's veth
    expect(during.iptablesRules).toBeGreaterThan(before.iptablesRules);
    expect(during.cgroups).toBeGreaterThan(before.cgroups);
  });

  it('stops leaving nothing behind', async () => {
    await stopAll();
    const after = await hostCensus();
    progress(`after: ${JSON.stringify(after)}`);
    // The machine-wide totals are for the record: other work on the machine may change them.
    expect({ ...after, machine: undefined }).toEqual({ ...before, machine: undefined });
  });
});

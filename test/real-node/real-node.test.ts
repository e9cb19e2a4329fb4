/**
 * A real one-node cluster on this machine (dev/real-node): the node registers and goes Ready, a
 * pod from the local Node base image runs to completion on it and its log reads back through the
 * API server (`kubectl logs`, which the API server proxies to the kubelet), the chart installed
 * with helm and its demo GPU values (the fake NVML library by hostPath, a kernel-log file) serves
 * a diagnostic through the real agent pod and reports an XID appended to that log, and stopping the node
 * leaves nothing: node processes, mounts, links, iptables rules, cgroups and runtime files are
 * counted before and after. Not part of `npm test` (root, built binaries): `npm run test:real-node`.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoreV1Api } from '@kubernetes/client-node';
import type { ControlPlane } from '../../dev/control-plane/control-plane.js';
import { startRealCluster, type RealCluster } from '../../dev/real-node/cluster.js';
import { appendFile } from 'node:fs/promises';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { loadScenario } from '../../agent/fake-nvml/scenario.js';
import { toKernelBusId } from '../../agent/nvml/pci-bus-id.js';
import { GPU_DIAGNOSTICS, type GPUDiagnostic } from '../../api/index.js';
import { prepareDemoGpu, REAL_NODE_SCENARIO } from '../../dev/real-node/demo-gpu.js';
import { ensureHelm, helmInstall, REAL_NODE_VALUES } from '../../dev/real-node/helm.js';
import { ensureGpudiagImages, localBaseImage, type GpudiagImages } from '../../dev/real-node/images.js';
import type { RealNode } from '../../dev/real-node/real-node.js';
import { hostCensus, type HostCensus } from '../../dev/real-node/residue.js';

const run = promisify(execFile);
const progress = (m: string): void => void process.stderr.write(`[real-node] ${m}\n`);

let before: HostCensus;
let cluster: RealCluster | undefined;
let controlPlane: ControlPlane | undefined;
let node: RealNode | undefined;
let baseImage: string;
let images: GpudiagImages;
type DiagnosticNode = NonNullable<NonNullable<GPUDiagnostic['status']>['nodes']>[number];

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
  images = await ensureGpudiagImages(progress);
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

  it('runs the chart with the demo GPU values: the operator diagnoses the node through its agent pod, and an XID appended to its kernel log shows up', async () => {
    const kc = controlPlane!.adminKubeConfig();
    await node!.importImages([images.agentArchive, images.operatorArchive]);
    const demo = await prepareDemoGpu(node!.hostPathFor('demo-gpu'), REAL_NODE_SCENARIO);
    // what GPU feature discovery labels a GPU node with; the chart's agent DaemonSet selects on it
    await run('kubectl', ['--kubeconfig', controlPlane!.endpoint.adminKubeconfigPath, 'label', 'node', node!.name, 'nvidia.com/gpu.present=true'], { timeout: 60_000 });
    await helmInstall(await ensureHelm(), {
      kubeconfig: controlPlane!.endpoint.adminKubeconfigPath,
      release: 'gpudiag',
      namespace: 'gpudiag-system',
      valuesFiles: [REAL_NODE_VALUES],
      set: { 'agent.stateHostPath': node!.hostPathFor('var-lib-gpudiag'), ...demo.values },
      timeoutSeconds: 600,
    });
    const custom = kc.makeApiClient(CustomObjectsApi);
    const diagnose = async (name: string): Promise<DiagnosticNode> => {
      await custom.createNamespacedCustomObject({
        ...GPU_DIAGNOSTICS,
        namespace: 'default',
        body: { apiVersion: `${GPU_DIAGNOSTICS.group}/${GPU_DIAGNOSTICS.version}`, kind: 'GPUDiagnostic', metadata: { name }, spec: { nodeNames: [node!.name], checks: ['health', 'xid'] } },
      });
      const done = await waitFor(
        `GPUDiagnostic ${name} finished`,
        async () => {
          const d = (await custom.getNamespacedCustomObject({ ...GPU_DIAGNOSTICS, namespace: 'default', name })) as GPUDiagnostic;
          return d.status?.phase === 'Completed' || d.status?.phase === 'Failed' ? d : undefined;
        },
        180_000,
      );
      expect(done.status?.phase).toBe('Completed');
      const status = done.status?.nodes?.find((n) => n.name === node!.name);
      if (status === undefined) throw new Error(`no status for ${node!.name}: ${JSON.stringify(done.status)}`);
      return status;
    };

    const healthy = await diagnose('real-node-healthy');
    if (healthy.status !== 'healthy') {
      const { stdout } = await run('kubectl', ['--kubeconfig', controlPlane!.endpoint.adminKubeconfigPath, 'logs', '-n', 'gpudiag-system', '-l', 'app.kubernetes.io/component=agent', '--tail', '40'], { timeout: 60_000 }).catch((err: unknown) => ({ stdout: String(err) }));
      throw new Error(`the real node is ${String(healthy.status)}: ${JSON.stringify(healthy)}\nagent log:\n${stdout}`);
    }
    expect(healthy.gpus).toHaveLength((await loadScenario(REAL_NODE_SCENARIO)).gpus.length);

    const pci = toKernelBusId((await loadScenario(REAL_NODE_SCENARIO)).gpus[0]?.pciBusId ?? '') ?? '0000:18:00';
    await appendFile(demo.kmsgPath, `3,1001,${Math.round(performance.now() * 1000)},-;NVRM: Xid (PCI:${pci}): 79, pid=0, GPU has fallen off the bus.\n`);
    const faulted = await waitFor(
      'the XID in a diagnostic',
      async () => {
        const n = await diagnose(`real-node-xid-${Date.now()}`);
        return n.xidEvents?.some((e) => e.xid === 79) === true ? n : undefined;
      },
      180_000,
    );
    expect(faulted.status).toBe('critical');
    expect(faulted.xidEvents?.find((e) => e.xid === 79)?.pciBusId?.toLowerCase()).toContain(pci.slice(5));
  }, 20 * 60_000);

  it('stops leaving nothing behind', async () => {
    await stopAll();
    const after = await hostCensus();
    progress(`after: ${JSON.stringify(after)}`);
    // The machine-wide totals are for the record: other work on the machine may change them.
    expect({ ...after, machine: undefined }).toEqual({ ...before, machine: undefined });
  });
});

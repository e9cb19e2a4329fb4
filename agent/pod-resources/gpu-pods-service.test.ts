/**
 * The service that adds pods to snapshots: a real gRPC server for the kubelet, a fixture
 * directory for /proc.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { createLogger } from '../../lib/logger.js';
import { socketDir, startFakePodResourcesServer } from '../../test/support/pod-resources-server.js';
import type { GpuSnapshot } from '../nvml/types.js';
import { GpuPodsService } from './gpu-pods-service.js';

const GPU0 = 'GPU-b176d2db-6067-d821-ded0-eebe18aace84';
const GPU1 = 'GPU-2a4e7c1f-0b3d-4e5f-8a9b-c0d1e2f30415';
const UID = '7c1b2f0e-3d4a-4b5c-8d9e-0f1a2b3c4d5e';
const CONTAINER = 'c'.repeat(64);
const logger = createLogger({ silent: true });

const gpus: GpuSnapshot[] = [
  { index: 0, lost: false, uuid: GPU0, unsupported: [], errors: [], processes: [{ pid: 4242 }] },
  // A privileged pod's process (4343), one that ended (4444) and a host process (1).
  { index: 1, lost: false, uuid: GPU1, unsupported: [], errors: [], processes: [{ pid: 4343 }, { pid: 4444 }, { pid: 1 }] },
  { index: 2, lost: true, unsupported: [], errors: [] },
];

let dir: string;
let removeDir: () => Promise<void>;
let procRoot: string;
const closers: (() => Promise<void>)[] = [];

beforeEach(async () => {
  ({ dir, remove: removeDir } = await socketDir());
  procRoot = path.join(dir, 'proc');
  for (const [pid, cgroup] of [
    ['4242', `0::/kubepods/burstable/pod${UID}/${'d'.repeat(64)}\n`],
    ['4343', `0::/kubepods.slice/kubepods-pod${UID.replaceAll('-', '_')}.slice/cri-containerd-${CONTAINER}.scope\n`],
    ['1', '0::/init.scope\n'],
  ] as const) {
    await mkdir(path.join(procRoot, pid), { recursive: true });
    await writeFile(path.join(procRoot, pid, 'cgroup'), cgroup);
  }
});

afterEach(async () => {
  for (const close of closers.splice(0)) await close();
  await removeDir();
});

async function kubelet(pods: Record<string, unknown>[]): Promise<string> {
  const server = await startFakePodResourcesServer(dir, { list: () => ({ message: { pod_resources: pods } }) });
  closers.push(() => server.close());
  return server.socketPath;
}

describe('GpuPodsService', () => {
  it("allocated GPUs get their pods from the kubelet, the others from their processes' cgroups", async () => {
    const socketPath = await kubelet([
      {
        name: 'trainer-0',
        namespace: 'ml',
        containers: [{ name: 'pytorch', devices: [{ resource_name: 'nvidia.com/gpu', device_ids: [GPU0] }] }],
      },
    ]);
    const service = new GpuPodsService({ socketPath, procRoot, cacheMs: 60_000, logger });
    const result = await service.annotate(gpus);
    expect(result.podResources).toEqual({ status: 'ok' });
    expect(result.gpus[0]?.pods).toEqual([{ source: 'pod-resources', namespace: 'ml', name: 'trainer-0', container: 'pytorch' }]);
    expect(result.gpus[1]?.pods).toEqual([{ source: 'process-cgroup', uid: UID, containerId: CONTAINER, pids: [4343] }]);
    // A lost GPU without a UUID cannot be matched: no list rather than a wrong one.
    expect(result.gpus[2]).not.toHaveProperty('pods');
    expect(result.processCgroups).toEqual({ looked: 3, inPods: 1, unreadable: 1 });
  });

  it.each([
    [
      'names the one lost GPU by the one allocatable GPU UUID that no other GPU has, and lists its pod there',
      ['GPU-0c8a1b2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d'],
      true,
    ],
    [
      'infers nothing when two allocatable UUIDs are unaccounted for',
      ['GPU-0c8a1b2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d', 'GPU-1d9b2c3e-4f5a-4b6c-9d7e-8f9a0b1c2d3e'],
      false,
    ],
  ])('a lost GPU NVML cannot name (the agent never saw it healthy): %s', async (_what, unknownIds, named) => {
    const [lost] = unknownIds as [string];
    const server = await startFakePodResourcesServer(dir, {
      list: () => ({
        message: {
          pod_resources: [
            {
              name: 'trainer-1',
              namespace: 'ml',
              containers: [{ name: 'pytorch', devices: [{ resource_name: 'nvidia.com/gpu', device_ids: [lost] }] }],
            },
          ],
        },
      }),
      allocatable: () => ({ message: { devices: [{ resource_name: 'nvidia.com/gpu', device_ids: [GPU0, `${GPU1}::1`, ...unknownIds] }] } }),
    });
    closers.push(() => server.close());
    const service = new GpuPodsService({ socketPath: server.socketPath, procRoot: '', cacheMs: 60_000, logger });
    const result = await service.annotate(gpus);
    if (named) {
      expect(result.gpus[2]).toMatchObject({
        index: 2,
        lost: true,
        uuid: lost,
        pods: [{ source: 'pod-resources', namespace: 'ml', name: 'trainer-1', container: 'pytorch' }],
      });
      expect(result.podResources).toEqual({ status: 'ok' });
    } else {
      expect(result.gpus[2]?.uuid).toBeUndefined();
      expect(result.podResources).toMatchObject({ status: 'ok', unmatchedDevices: [{ name: 'trainer-1', deviceId: lost }] });
    }
  });

  it(
    "a MIG device's UUID finds the GPU it is part of (nvmlDeviceGetMigDeviceHandleByIndex); " + 'an unknown MIG device stays unmatched',
    async () => {
      const mig = 'MIG-5c7b6fd8-8b2e-5e26-9a5f-3c1d2e3f4a5b';
      const other = 'MIG-0e3f1a2b-4c5d-5e6f-8a9b-0c1d2e3f4a5c';
      const socketPath = await kubelet([
        {
          name: 'infer',
          namespace: 'serving',
          containers: [{ name: 'triton', devices: [{ resource_name: 'nvidia.com/mig-1g.10gb', device_ids: [mig] }] }],
        },
        {
          name: 'elsewhere',
          namespace: 'serving',
          containers: [{ name: 'triton', devices: [{ resource_name: 'nvidia.com/mig-1g.10gb', device_ids: [other] }] }],
        },
      ]);
      const service = new GpuPodsService({ socketPath, procRoot: '', cacheMs: 60_000, logger });
      const migGpus: GpuSnapshot[] = [
        {
          index: 0,
          lost: false,
          uuid: GPU0,
          unsupported: [],
          errors: [],
          migMode: { enabled: true, pendingEnabled: true },
          migDevices: [{ index: 0, uuid: mig }],
        },
      ];
      const result = await service.annotate(migGpus);
      expect(result.gpus[0]?.pods).toEqual([
        { source: 'pod-resources', namespace: 'serving', name: 'infer', container: 'triton', deviceId: mig },
      ]);
      expect(result.podResources).toEqual({
        status: 'ok',
        unmatchedDevices: [
          { namespace: 'serving', name: 'elsewhere', container: 'triton', resourceName: 'nvidia.com/mig-1g.10gb', deviceId: other },
        ],
      });
    },
  );

  it('a burst of snapshots costs one List call, and the same collection gets the same GPU array', async () => {
    const service = new GpuPodsService({ socketPath: await kubelet([]), procRoot, cacheMs: 60_000, logger });
    const idle = gpus.map((g) => ({ ...g, processes: [] }));
    const [a, b] = await Promise.all([service.annotate(idle), service.annotate(idle)]);
    const c = await service.annotate(idle);
    expect(service.listCalls).toBe(1);
    expect(a.gpus).toBe(b.gpus);
    expect(c.gpus).toBe(a.gpus);
    // With an answer, a GPU nobody holds says so with an empty list.
    expect(a.gpus[0]?.pods).toEqual([]);
  });

  it('asks again once the cache time has passed', async () => {
    const service = new GpuPodsService({ socketPath: await kubelet([]), procRoot, cacheMs: 0, logger });
    await service.annotate(gpus);
    await service.annotate(gpus);
    expect(service.listCalls).toBe(2);
  });

  it('a missing socket: podResources unknown with the reason, and the cgroup path still names containers', async () => {
    const socketPath = path.join(dir, 'no-kubelet.sock');
    const result = await new GpuPodsService({ socketPath, procRoot, cacheMs: 60_000, logger }).annotate(gpus);
    expect(result.podResources).toEqual({
      status: 'unknown',
      reason: 'socket-missing',
      message: `gRPC /v1.PodResourcesLister/List on ${socketPath}: cannot connect (ENOENT)`,
    });
    expect(result.gpus[0]?.pods).toEqual([{ source: 'process-cgroup', uid: UID, containerId: 'd'.repeat(64), pids: [4242] }]);
    expect(result.gpus[1]?.pods).toEqual([{ source: 'process-cgroup', uid: UID, containerId: CONTAINER, pids: [4343] }]);
  });

  it('both paths off: unknown (disabled), and GPUs carry no pods list', async () => {
    const result = await new GpuPodsService({ socketPath: '', procRoot: '', cacheMs: 60_000, logger }).annotate(gpus);
    expect(result.podResources).toMatchObject({ status: 'unknown', reason: 'disabled' });
    expect(result.gpus.map((g) => g.pods)).toEqual([undefined, undefined, undefined]);
    expect(result).not.toHaveProperty('processCgroups');
    // Nothing added: the collected array itself, so the answer reuses its JSON text.
    expect(result.gpus).toBe(gpus);
  });

  it('the kubelet unreachable and no cgroup match: the collected array itself', async () => {
    const idle = gpus.map((g) => ({ ...g, processes: [] }));
    const socketPath = path.join(dir, 'no-kubelet.sock');
    const result = await new GpuPodsService({ socketPath, procRoot, cacheMs: 60_000, logger }).annotate(idle);
    expect(result.podResources).toMatchObject({ status: 'unknown', reason: 'socket-missing' });
    expect(result.gpus).toBe(idle);
  });
});

/**
 * The pod-resources client against a real gRPC server (@grpc/grpc-js, answers encoded by
 * protobufjs) on a unix socket, and against sockets that misbehave: missing, refusing,
 * silent, oversized, non-OK, garbage.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import * as grpc from '@grpc/grpc-js';
import { GrpcCallError } from '../../lib/grpc/unary-client.js';
import { socketDir, startFakePodResourcesServer, startRawSocketServer, type FakeAnswer } from '../../test/support/pod-resources-server.js';
import type { PodResourcesUnknownReason } from '../api/snapshot-document.js';
import { PodResourcesClient, PodResourcesError, unknownReasonOf } from './client.js';
import { rejectionOf } from '../../test/support/rejection.js';

const GPU0 = 'GPU-b176d2db-6067-d821-ded0-eebe18aace84';
const GPU1 = 'GPU-2a4e7c1f-0b3d-4e5f-8a9b-c0d1e2f30415';

/** A List answer with every field the kubelet may send, the ones the agent skips included. */
const LIST_ANSWER = {
  pod_resources: [
    {
      name: 'trainer-0',
      namespace: 'ml',
      containers: [
        {
          name: 'pytorch',
          devices: [
            { resource_name: 'nvidia.com/gpu', device_ids: [GPU0, `${GPU1}::3`], topology: { nodes: [{ ID: 1 }] } },
            { resource_name: 'example.com/nic', device_ids: ['any id, even with spaces'] },
          ],
          cpu_ids: [2, 3],
          memory: [{ memory_type: 'memory', size: 1024, topology: { nodes: [{ ID: 0 }] } }],
          dynamic_resources: [
            {
              claim_name: 'c',
              claim_namespace: 'ml',
              claim_resources: [{ cdi_devices: [{ name: 'nvidia.com/gpu=0' }], driver_name: 'gpu.nvidia.com' }],
            },
          ],
        },
        { name: 'sidecar' },
      ],
    },
    { name: 'web.frontend-1', namespace: 'default', containers: [{ name: 'nginx' }] },
  ],
};

let dir: string;
let removeDir: () => Promise<void>;
const closers: (() => Promise<void>)[] = [];

beforeEach(async () => {
  ({ dir, remove: removeDir } = await socketDir());
});

afterEach(async () => {
  for (const close of closers.splice(0)) await close();
  await removeDir();
});

async function serve(list: () => FakeAnswer, allocatable?: () => FakeAnswer): Promise<string> {
  const server = await startFakePodResourcesServer(dir, { list, ...(allocatable !== undefined ? { allocatable } : {}) });
  closers.push(() => server.close());
  return server.socketPath;
}

const failure = (promise: Promise<unknown>): Promise<PodResourcesError> => rejectionOf(promise, PodResourcesError);

describe('PodResourcesClient against a gRPC server', () => {
  it('List: pods, containers and GPU device ids; other resources and skipped fields read past', async () => {
    const client = new PodResourcesClient({ socketPath: await serve(() => ({ message: LIST_ANSWER })) });
    expect(await client.list()).toEqual([
      {
        name: 'trainer-0',
        namespace: 'ml',
        containers: [
          {
            name: 'pytorch',
            devices: [
              { resourceName: 'nvidia.com/gpu', deviceIds: [GPU0, `${GPU1}::3`] },
              { resourceName: 'example.com/nic', deviceIds: [] },
            ],
          },
          { name: 'sidecar', devices: [] },
        ],
      },
      { name: 'web.frontend-1', namespace: 'default', containers: [{ name: 'nginx', devices: [] }] },
    ]);
  });

  it('List: an empty answer is no pods', async () => {
    expect(await new PodResourcesClient({ socketPath: await serve(() => ({ message: {} })) }).list()).toEqual([]);
  });

  it('GetAllocatableResources: the devices the kubelet may allocate', async () => {
    const allocatable = {
      devices: [{ resource_name: 'nvidia.com/mig-1g.10gb', device_ids: ['MIG-5c7b6fd8-8b2e-5e26-9a5f-3c1d2e3f4a5b'] }],
      cpu_ids: [0, 1],
    };
    const client = new PodResourcesClient({
      socketPath: await serve(
        () => ({ message: {} }),
        () => ({ message: allocatable }),
      ),
    });
    expect(await client.allocatable()).toEqual([
      { resourceName: 'nvidia.com/mig-1g.10gb', deviceIds: ['MIG-5c7b6fd8-8b2e-5e26-9a5f-3c1d2e3f4a5b'] },
    ]);
  });

  it('no socket: socket-missing, naming the socket and the method', async () => {
    const socketPath = path.join(dir, 'kubelet.sock');
    const err = await failure(new PodResourcesClient({ socketPath }).list());
    expect(err.reason).toBe('socket-missing');
    expect(err.message).toBe(`gRPC /v1.PodResourcesLister/List on ${socketPath}: cannot connect (ENOENT)`);
  });

  it('a file that is not a listening socket: unreachable', async () => {
    const socketPath = path.join(dir, 'kubelet.sock');
    await writeFile(socketPath, '');
    const err = await failure(new PodResourcesClient({ socketPath }).list());
    expect(err.reason).toBe('unreachable');
    expect(err.message).toContain('cannot connect (ECONNREFUSED)');
  });

  it('a server that never answers: timeout at the deadline', async () => {
    const client = new PodResourcesClient({ socketPath: await serve(() => 'never'), deadlineMs: 300 });
    const started = Date.now();
    const err = await failure(client.list());
    expect(err.reason).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('a silent socket that never speaks HTTP/2: timeout with our own deadline', async () => {
    const socketPath = path.join(dir, 'kubelet.sock');
    const raw = await startRawSocketServer(socketPath, new Uint8Array());
    closers.push(() => raw.close());
    const err = await failure(new PodResourcesClient({ socketPath, deadlineMs: 300 }).list());
    expect(err.reason).toBe('timeout');
    expect(err.message).toBe(`gRPC /v1.PodResourcesLister/List on ${socketPath}: no answer within 300 ms`);
  });

  it('an answer over the size cap: too-large (1 KiB cap; and a 5 MiB answer against the default 4 MiB)', async () => {
    const many = { pod_resources: Array.from({ length: 100 }, (_, i) => ({ name: `pod-${i}`, namespace: 'default' })) };
    const small = await failure(
      new PodResourcesClient({ socketPath: await serve(() => ({ message: many })), maxResponseBytes: 1024 }).list(),
    );
    expect(small.reason).toBe('too-large');
    expect(small.message).toMatch(/declares a \d+-byte message, more than 1024/);
    const huge = {
      pod_resources: [
        {
          name: 'p',
          namespace: 'default',
          containers: [{ name: 'c', devices: [{ resource_name: 'example.com/x', device_ids: ['x'.repeat(5 << 20)] }] }],
        },
      ],
    };
    const closing = closers.pop();
    await closing?.();
    const big = await failure(new PodResourcesClient({ socketPath: await serve(() => ({ message: huge })) }).list());
    expect(big.reason).toBe('too-large');
    expect(big.message).toContain('more than 4194304');
  });

  it('a non-OK gRPC status: grpc-error with the status and its message', async () => {
    const err = await failure(
      new PodResourcesClient({
        socketPath: await serve(() => ({ error: grpc.status.RESOURCE_EXHAUSTED, details: 'rate limited: 100%\nqps' })),
      }).list(),
    );
    expect(err.reason).toBe('grpc-error');
    expect(err.message).toMatch(/: status 8 RESOURCE_EXHAUSTED: rate limited: 100% qps$/);
    expect(err.cause).toBeInstanceOf(GrpcCallError);
    expect((err.cause as GrpcCallError).grpcStatus).toBe(8);
  });

  it('a method the kubelet does not serve (an old kubelet): grpc-error UNIMPLEMENTED', async () => {
    const err = await failure(new PodResourcesClient({ socketPath: await serve(() => ({ message: {} })) }).allocatable());
    expect(err.reason).toBe('grpc-error');
    expect(err.message).toContain('/v1.PodResourcesLister/GetAllocatableResources');
    expect(err.message).toContain('12 UNIMPLEMENTED');
  });

  it('garbage bytes instead of HTTP/2: malformed-answer', async () => {
    const socketPath = path.join(dir, 'kubelet.sock');
    const raw = await startRawSocketServer(socketPath, Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n\x00\xff garbage'));
    closers.push(() => raw.close());
    const err = await failure(new PodResourcesClient({ socketPath, deadlineMs: 2_000 }).list());
    expect(err.reason).toBe('malformed-answer');
    expect(err.message).toContain(`gRPC /v1.PodResourcesLister/List on ${socketPath}:`);
  });

  it.each<[string, Uint8Array, string]>([
    ['a wire type that does not exist', Uint8Array.from([0x0f]), 'unknown wire type 7 of field 1'],
    ['a truncated pod', Uint8Array.from([0x0a, 0x10, 0x0a, 0x02]), 'runs past the end of the message'],
    [
      'a pod name that is not a DNS subdomain',
      Uint8Array.from([0x0a, 0x09, 0x0a, 0x03, 0x42, 0x41, 0x44, 0x12, 0x02, 0x6e, 0x73]),
      'PodResources.name "BAD" is not valid',
    ],
    ['a pod without a namespace', Uint8Array.from([0x0a, 0x05, 0x0a, 0x03, 0x70, 0x6f, 0x64]), 'PodResources without a name or namespace'],
  ])('a gRPC answer whose message is %s: malformed-answer naming the fault', async (_what, raw, message) => {
    const err = await failure(new PodResourcesClient({ socketPath: await serve(() => ({ raw })) }).list());
    expect(err.reason).toBe('malformed-answer');
    expect(err.message).toContain(message);
  });

  it('a GPU device id that is not printable ASCII: malformed-answer naming the resource', async () => {
    const bad = {
      pod_resources: [
        {
          name: 'p',
          namespace: 'ns',
          containers: [{ name: 'c', devices: [{ resource_name: 'nvidia.com/gpu', device_ids: ['GPU-1 2'] }] }],
        },
      ],
    };
    const err = await failure(new PodResourcesClient({ socketPath: await serve(() => ({ message: bad })) }).list());
    expect(err.reason).toBe('malformed-answer');
    expect(err.message).toContain('ContainerDevices.device_ids of nvidia.com/gpu "GPU-1 2" is not valid');
  });
});

describe('unknownReasonOf', () => {
  it.each<[GrpcCallError['kind'], string | undefined, number | undefined, PodResourcesUnknownReason]>([
    ['connect', 'ENOENT', undefined, 'socket-missing'],
    ['connect', 'ENOTDIR', undefined, 'socket-missing'],
    // Root ignores file modes, so these two are not reproduced on a socket here.
    ['connect', 'EACCES', undefined, 'permission-denied'],
    ['connect', 'EPERM', undefined, 'permission-denied'],
    ['connect', 'ECONNREFUSED', undefined, 'unreachable'],
    ['deadline', undefined, undefined, 'timeout'],
    ['aborted', undefined, undefined, 'timeout'],
    ['status', undefined, 4, 'timeout'],
    ['status', undefined, 14, 'grpc-error'],
    ['too-large', undefined, undefined, 'too-large'],
    ['protocol', undefined, undefined, 'malformed-answer'],
  ])('%s (errno %s, gRPC status %s) → %s', (kind, errno, status, reason) => {
    expect(unknownReasonOf(new GrpcCallError(kind, 'm', '/s', '/v1.PodResourcesLister/List', errno, status))).toBe(reason);
  });
});

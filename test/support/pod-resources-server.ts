/**
 * A stand-in kubelet pod-resources server for tests: `v1.PodResourcesLister` served by
 * @grpc/grpc-js on a unix socket in a temporary directory, its answers encoded by protobufjs
 * from the .proto text below (field numbers of k8s.io/kubelet/pkg/apis/podresources/v1/api.proto).
 * Both libraries are independent of the agent's hand-written gRPC client and protobuf reader,
 * so a test passing here checks them against other implementations, not against themselves.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';

/** The v1 API as the kubelet serves it (the fields the agent skips are there too, so it must skip them). */
export const POD_RESOURCES_PROTO = `
syntax = "proto3";
package v1;

message AllocatableResourcesRequest {}
message AllocatableResourcesResponse {
  repeated ContainerDevices devices = 1;
  repeated int64 cpu_ids = 2;
  repeated ContainerMemory memory = 3;
}
message ListPodResourcesRequest {}
message ListPodResourcesResponse { repeated PodResources pod_resources = 1; }
message PodResources {
  string name = 1;
  string namespace = 2;
  repeated ContainerResources containers = 3;
}
message ContainerResources {
  string name = 1;
  repeated ContainerDevices devices = 2;
  repeated int64 cpu_ids = 3;
  repeated ContainerMemory memory = 4;
  repeated DynamicResource dynamic_resources = 5;
}
message ContainerMemory { string memory_type = 1; uint64 size = 2; TopologyInfo topology = 3; }
message ContainerDevices {
  string resource_name = 1;
  repeated string device_ids = 2;
  TopologyInfo topology = 3;
}
message TopologyInfo { repeated NUMANode nodes = 1; }
message NUMANode { int64 ID = 1; }
message DynamicResource {
  string claim_name = 2;
  string claim_namespace = 3;
  repeated ClaimResource claim_resources = 4;
}
message ClaimResource {
  repeated CDIDevice cdi_devices = 1;
  string driver_name = 2;
  string pool_name = 3;
  string device_name = 4;
}
message CDIDevice { string name = 1; }
`;

const root = protobuf.parse(POD_RESOURCES_PROTO, { keepCase: true }).root;
const ListResponse = root.lookupType('v1.ListPodResourcesResponse');
const AllocatableResponse = root.lookupType('v1.AllocatableResourcesResponse');

/** What one method answers: a message (plain object in the .proto's field names), raw bytes, a gRPC error, or nothing ever. */
export type FakeAnswer = { message: Record<string, unknown> } | { raw: Uint8Array } | { error: grpc.status; details?: string } | 'never';

/** Handlers of the fake server; a method without one answers UNIMPLEMENTED. */
export interface FakePodResourcesAnswers {
  list?: () => FakeAnswer;
  allocatable?: () => FakeAnswer;
}

/** A running server and its socket. */
export interface FakePodResourcesServer {
  socketPath: string;
  /** Calls received, by method name. */
  calls: { list: number; allocatable: number };
  close(): Promise<void>;
}

/** A temporary directory for sockets; removed by the returned function. */
export async function socketDir(): Promise<{ dir: string; remove: () => Promise<void> }> {
  // Unix socket paths are limited to 107 bytes: keep the directory short.
  const dir = await mkdtemp(path.join(os.tmpdir(), 'podres-'));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

function handler(type: protobuf.Type, answer: (() => FakeAnswer) | undefined, count: () => void): grpc.handleUnaryCall<Buffer, Buffer> {
  return (_call, callback) => {
    count();
    const a = answer?.() ?? { error: grpc.status.UNIMPLEMENTED, details: 'not served by this fake' };
    if (a === 'never') return;
    if ('error' in a) callback({ code: a.error, details: a.details ?? '' });
    else if ('raw' in a) callback(null, Buffer.from(a.raw));
    else callback(null, Buffer.from(type.encode(type.fromObject(a.message)).finish()));
  };
}

/** Starts the fake kubelet service on `<dir>/kubelet.sock`. */
export async function startFakePodResourcesServer(dir: string, answers: FakePodResourcesAnswers): Promise<FakePodResourcesServer> {
  const socketPath = path.join(dir, 'kubelet.sock');
  const calls = { list: 0, allocatable: 0 };
  const server = new grpc.Server({ 'grpc.max_send_message_length': -1 });
  const identity = (b: Buffer): Buffer => b;
  const method = (name: string): grpc.MethodDefinition<Buffer, Buffer> => ({
    path: `/v1.PodResourcesLister/${name}`,
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  });
  server.addService(
    { List: method('List'), GetAllocatableResources: method('GetAllocatableResources') },
    {
      List: handler(ListResponse, answers.list, () => (calls.list += 1)),
      GetAllocatableResources: handler(AllocatableResponse, answers.allocatable, () => (calls.allocatable += 1)),
    },
  );
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix:${socketPath}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
  );
  return {
    socketPath,
    calls,
    // Forced: a call that is never answered would hold a graceful shutdown forever.
    close: async () => server.forceShutdown(),
  };
}

/** A unix-socket server that is no gRPC server: it answers every connection with `bytes` (or nothing, when empty). */
export async function startRawSocketServer(socketPath: string, bytes: Uint8Array): Promise<{ close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    if (bytes.length > 0) socket.write(bytes);
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(socketPath, resolve));
  return {
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * A test device plugin speaking the kubelet's device plugin API v1beta1, as the NVIDIA device
 * plugin does: it serves `v1beta1.DevicePlugin` on a unix socket in the kubelet's fixed
 * device-plugins directory, registers `resourceName` with the kubelet over its `kubelet.sock`,
 * advertises the given device ids (the fake GPUs' UUIDs) as Healthy through ListAndWatch, and
 * answers Allocate with `NVIDIA_VISIBLE_DEVICES` set to the ids the kubelet picked. gRPC by
 * @grpc/grpc-js and protobuf by protobufjs (test-only dependencies), from the .proto text below
 * (field numbers of k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1/api.proto).
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';

/** Fixed by the kubelet whatever its root directory (pluginapi.DevicePluginPath). */
export const DEVICE_PLUGIN_DIR = '/var/lib/kubelet/device-plugins';
const API_VERSION = 'v1beta1';

const DEVICE_PLUGIN_PROTO = `
syntax = "proto3";
package v1beta1;
message Empty {}
message DevicePluginOptions { bool pre_start_required = 1; bool get_preferred_allocation_available = 2; }
message RegisterRequest { string version = 1; string endpoint = 2; string resource_name = 3; DevicePluginOptions options = 4; }
message ListAndWatchResponse { repeated Device devices = 1; }
message Device { string ID = 1; string health = 2; }
message AllocateRequest { repeated ContainerAllocateRequest container_requests = 1; }
message ContainerAllocateRequest { repeated string devices_ids = 1; }
message AllocateResponse { repeated ContainerAllocateResponse container_responses = 1; }
message ContainerAllocateResponse { map<string, string> envs = 1; }
message PreStartContainerResponse {}
message PreferredAllocationResponse {}
`;

const root = protobuf.parse(DEVICE_PLUGIN_PROTO, { keepCase: true }).root;
const type = (name: string): protobuf.Type => root.lookupType(`v1beta1.${name}`);

function codec(name: string): { serialize: (value: object) => Buffer; deserialize: (bytes: Buffer) => Record<string, unknown> } {
  const t = type(name);
  return {
    serialize: (value) => Buffer.from(t.encode(t.fromObject(value)).finish()),
    deserialize: (bytes) => t.toObject(t.decode(bytes), { defaults: true }) as Record<string, unknown>,
  };
}

function method(name: string, request: string, response: string, responseStream = false): grpc.MethodDefinition<object, object> {
  const req = codec(request);
  const res = codec(response);
  return {
    path: `/v1beta1.DevicePlugin/${name}`,
    requestStream: false,
    responseStream,
    requestSerialize: req.serialize,
    requestDeserialize: req.deserialize,
    responseSerialize: res.serialize,
    responseDeserialize: res.deserialize,
  };
}

/** A running plugin: what the kubelet asked of it, and how to stop it. */
export interface TestDevicePlugin {
  /** Device ids of each Allocate the kubelet sent, one list per container. */
  allocations: string[][];
  stop(): Promise<void>;
}

/** Serves the plugin on `<DEVICE_PLUGIN_DIR>/<socketName>` and registers it with the kubelet. */
export async function startTestDevicePlugin(options: {
  resourceName: string;
  deviceIds: readonly string[];
  socketName: string;
}): Promise<TestDevicePlugin> {
  const socketPath = path.join(DEVICE_PLUGIN_DIR, options.socketName);
  await rm(socketPath, { force: true });
  const allocations: string[][] = [];
  const streams = new Set<grpc.ServerWritableStream<object, object>>();
  const server = new grpc.Server();
  server.addService(
    {
      GetDevicePluginOptions: method('GetDevicePluginOptions', 'Empty', 'DevicePluginOptions'),
      ListAndWatch: method('ListAndWatch', 'Empty', 'ListAndWatchResponse', true),
      Allocate: method('Allocate', 'AllocateRequest', 'AllocateResponse'),
      GetPreferredAllocation: method('GetPreferredAllocation', 'Empty', 'PreferredAllocationResponse'),
      PreStartContainer: method('PreStartContainer', 'Empty', 'PreStartContainerResponse'),
    },
    {
      GetDevicePluginOptions: (_call: grpc.ServerUnaryCall<object, object>, callback: grpc.sendUnaryData<object>) => callback(null, {}),
      // the device list once, then the stream stays open: the kubelet takes its end as the plugin's death
      ListAndWatch: (call: grpc.ServerWritableStream<object, object>) => {
        streams.add(call);
        call.on('cancelled', () => streams.delete(call));
        call.write({ devices: options.deviceIds.map((id) => ({ ID: id, health: 'Healthy' })) });
      },
      Allocate: (call: grpc.ServerUnaryCall<Record<string, unknown>, object>, callback: grpc.sendUnaryData<object>) => {
        const requests = (call.request['container_requests'] ?? []) as { devices_ids?: string[] }[];
        const responses = requests.map((r) => {
          const ids = r.devices_ids ?? [];
          allocations.push(ids);
          return { envs: { NVIDIA_VISIBLE_DEVICES: ids.join(',') } };
        });
        callback(null, { container_responses: responses });
      },
      GetPreferredAllocation: (_call: grpc.ServerUnaryCall<object, object>, callback: grpc.sendUnaryData<object>) =>
        callback({ code: grpc.status.UNIMPLEMENTED, details: 'no preferred allocation' }),
      PreStartContainer: (_call: grpc.ServerUnaryCall<object, object>, callback: grpc.sendUnaryData<object>) => callback(null, {}),
    },
  );
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix:${socketPath}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
  );

  const register = codec('RegisterRequest');
  const empty = codec('Empty');
  const kubelet = new grpc.Client(`unix:${path.join(DEVICE_PLUGIN_DIR, 'kubelet.sock')}`, grpc.credentials.createInsecure());
  try {
    await new Promise<void>((resolve, reject) =>
      kubelet.makeUnaryRequest(
        '/v1beta1.Registration/Register',
        register.serialize,
        empty.deserialize,
        { version: API_VERSION, endpoint: options.socketName, resource_name: options.resourceName, options: {} },
        new grpc.Metadata(),
        { deadline: Date.now() + 10_000 },
        (err) =>
          err ? reject(new Error(`registering ${options.resourceName} with the kubelet: ${err.message}`, { cause: err })) : resolve(),
      ),
    );
  } catch (err) {
    server.forceShutdown();
    throw err;
  } finally {
    kubelet.close();
  }
  return {
    allocations,
    stop: async () => {
      for (const s of streams) s.end();
      server.forceShutdown();
      await rm(socketPath, { force: true });
    },
  };
}

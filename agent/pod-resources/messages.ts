/**
 * The kubelet pod-resources API v1 messages the agent reads, decoded from the wire format.
 * Field numbers are those of k8s.io/kubelet/pkg/apis/podresources/v1/api.proto:
 *
 *   ListPodResourcesResponse     { repeated PodResources pod_resources = 1; }
 *   PodResources                 { string name = 1; string namespace = 2; repeated ContainerResources containers = 3; }
 *   ContainerResources           { string name = 1; repeated ContainerDevices devices = 2; cpu_ids = 3; memory = 4;
 *                                  dynamic_resources = 5; }
 *   ContainerDevices             { string resource_name = 1; repeated string device_ids = 2; TopologyInfo topology = 3; }
 *   AllocatableResourcesResponse { repeated ContainerDevices devices = 1; cpu_ids = 2; memory = 3; }
 *
 * Fields the agent does not use (CPUs, memory, DRA claims, topology) are skipped. The names it
 * reports are checked here, at the boundary, so a snapshot never carries a value its schema
 * refuses: a bad one makes the whole answer malformed, naming the field.
 */
import { decodeString, readFields, WireFormatError } from '../../lib/protobuf/wire.js';
import { quote } from '../../lib/text.js';

/** The service's full name, for `/<service>/<method>` paths. */
export const POD_RESOURCES_SERVICE = 'v1.PodResourcesLister';

/** Devices of one resource assigned to a container (or allocatable on the node). */
export interface ContainerDevices {
  resourceName: string;
  deviceIds: string[];
}

/** One container of a pod and its devices. */
export interface ContainerResources {
  name: string;
  devices: ContainerDevices[];
}

/** One pod the kubelet runs. The API gives no pod UID. */
export interface PodResources {
  name: string;
  namespace: string;
  containers: ContainerResources[];
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** A device id as device plugins write them: printable ASCII without spaces, bounded. */
const DEVICE_ID = /^[\x21-\x7e]{1,128}$/;
/** An extended resource name (`vendor-domain/resourcetype`), bounded. */
const RESOURCE_NAME = /^[\x21-\x7e]{1,253}$/;

function checked(value: string, pattern: RegExp, what: string): string {
  if (!pattern.test(value)) throw new WireFormatError(`${what} ${quote(value)} is not valid`);
  return value;
}

function stringField(bytes: Uint8Array, what: string, pattern: RegExp): string {
  return checked(decodeString(bytes, what), pattern, what);
}

function decodeContainerDevices(message: Uint8Array): ContainerDevices {
  const out: ContainerDevices = { resourceName: '', deviceIds: [] };
  for (const f of readFields(message)) {
    if (f.wireType !== 2) continue;
    if (f.field === 1) out.resourceName = stringField(f.bytes, 'ContainerDevices.resource_name', RESOURCE_NAME);
    else if (f.field === 2) out.deviceIds.push(decodeString(f.bytes, 'ContainerDevices.device_ids'));
  }
  // Only the device ids of resources the agent reports must fit its schema; others are dropped unread.
  if (isGpuResource(out.resourceName))
    for (const id of out.deviceIds) checked(id, DEVICE_ID, `ContainerDevices.device_ids of ${out.resourceName}`);
  else out.deviceIds = [];
  return out;
}

function decodeContainer(message: Uint8Array): ContainerResources {
  const out: ContainerResources = { name: '', devices: [] };
  for (const f of readFields(message)) {
    if (f.wireType !== 2) continue;
    if (f.field === 1) out.name = stringField(f.bytes, 'ContainerResources.name', DNS_LABEL);
    else if (f.field === 2) out.devices.push(decodeContainerDevices(f.bytes));
  }
  if (out.name === '') throw new WireFormatError('ContainerResources without a name');
  return out;
}

function decodePod(message: Uint8Array): PodResources {
  const out: PodResources = { name: '', namespace: '', containers: [] };
  for (const f of readFields(message)) {
    if (f.wireType !== 2) continue;
    if (f.field === 1) out.name = stringField(f.bytes, 'PodResources.name', DNS_SUBDOMAIN);
    else if (f.field === 2) out.namespace = stringField(f.bytes, 'PodResources.namespace', DNS_LABEL);
    else if (f.field === 3) out.containers.push(decodeContainer(f.bytes));
  }
  if (out.name === '' || out.namespace === '') throw new WireFormatError('PodResources without a name or namespace');
  return out;
}

/** A ListPodResourcesResponse; throws WireFormatError naming the field at fault. */
export function decodeListPodResourcesResponse(message: Uint8Array): PodResources[] {
  const pods: PodResources[] = [];
  for (const f of readFields(message)) if (f.field === 1 && f.wireType === 2) pods.push(decodePod(f.bytes));
  return pods;
}

/** An AllocatableResourcesResponse's devices; throws WireFormatError naming the field at fault. */
export function decodeAllocatableResourcesResponse(message: Uint8Array): ContainerDevices[] {
  const devices: ContainerDevices[] = [];
  for (const f of readFields(message)) if (f.field === 1 && f.wireType === 2) devices.push(decodeContainerDevices(f.bytes));
  return devices;
}

/**
 * The NVIDIA device plugin's GPU resources: whole GPUs (`nvidia.com/gpu`), time-sliced or MPS
 * replicas renamed by default (`nvidia.com/gpu.shared`) and MIG devices under the mixed
 * strategy (`nvidia.com/mig-1g.10gb`, and their `.shared` replicas).
 */
export function isGpuResource(resourceName: string): boolean {
  return (
    resourceName === 'nvidia.com/gpu' ||
    resourceName === 'nvidia.com/gpu.shared' ||
    /^nvidia\.com\/mig-[0-9a-z.+-]{1,64}$/.test(resourceName)
  );
}

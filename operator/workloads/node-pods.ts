/**
 * The pods of one node, indexed the three ways the agent names a container: namespace/name
 * (pod-resources), pod UID and runtime container id (cgroups). Read with one LIST per node
 * (fieldSelector spec.nodeName), only for nodes whose GPUs have pods worth naming, so the
 * operator never caches the cluster's pods.
 */
import type { V1Pod, V1PodList } from '@kubernetes/client-node';
import { ApiClient } from '../../lib/kube/api-client.js';
import { kubeRequest, type KubeTarget } from '../../lib/kube/raw-request.js';
import type { WorkloadRef } from '../scoring/index.js';

/** A pod's controlling owner (its ownerReference with controller: true). */
export type OwnerRef = WorkloadRef;

/** The controller of a pod's controller (a ReplicaSet's Deployment, a Job's JobSet or CronJob), or undefined. */
export type OwnerLookup = (controller: OwnerRef, namespace: string, signal: AbortSignal) => Promise<OwnerRef | undefined>;

/** The controllers whose own controller is looked up, by apiVersion and kind → URL path segment. */
const WALKED_CONTROLLERS: Readonly<Record<string, string>> = {
  'apps/v1/ReplicaSet': 'apis/apps/v1/namespaces/{ns}/replicasets',
  'batch/v1/Job': 'apis/batch/v1/namespaces/{ns}/jobs',
};

/** What the operator needs of a pod on a node. */
export interface NodePod {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly controller?: OwnerRef;
  /** When the kubelet started the pod (RFC 3339), if it has. */
  readonly startTime?: string;
  readonly phase?: string;
  /** Container names by runtime container id (the id without its `containerd://` scheme). */
  readonly containersById: ReadonlyMap<string, string>;
}

/** A node's pods by namespace/name, by UID and by container id. */
export interface NodePods {
  byName(namespace: string, name: string): NodePod | undefined;
  byUid(uid: string): NodePod | undefined;
  /** The pod and container name of a runtime container id. */
  byContainerId(containerId: string): { pod: NodePod; container: string } | undefined;
}

/** Reads the pods of a node. */
export type NodePodLookup = (node: string, signal: AbortSignal) => Promise<NodePods>;

/** Most pods read per node: far above the kubelet's default of 110 pods. */
export const MAX_PODS_PER_NODE_LOOKUP = 1000;

const CONTAINER_ID = /^[a-z0-9-]+:\/\/([0-9a-f]{64})$/;

function toNodePod(pod: V1Pod): NodePod | undefined {
  const { namespace, name, uid } = pod.metadata ?? {};
  if (namespace === undefined || name === undefined || uid === undefined) return undefined;
  const owner = pod.metadata?.ownerReferences?.find((o) => o.controller === true);
  const containersById = new Map<string, string>();
  const statuses = [
    ...(pod.status?.initContainerStatuses ?? []),
    ...(pod.status?.containerStatuses ?? []),
    ...(pod.status?.ephemeralContainerStatuses ?? []),
  ];
  for (const c of statuses) {
    const id = CONTAINER_ID.exec(c.containerID ?? '')?.[1];
    if (id !== undefined) containersById.set(id, c.name);
  }
  const started = pod.status?.startTime;
  return {
    namespace,
    name,
    uid,
    ...(owner !== undefined ? { controller: { apiVersion: owner.apiVersion, kind: owner.kind, name: owner.name, uid: owner.uid } } : {}),
    ...(started !== undefined ? { startTime: new Date(started).toISOString().replace(/\.\d+Z$/, 'Z') } : {}),
    ...(pod.status?.phase !== undefined ? { phase: pod.status.phase } : {}),
    containersById,
  };
}

/** Indexes pods (pure; pods without namespace, name or UID are left out). */
export function indexNodePods(pods: readonly V1Pod[]): NodePods {
  const byName = new Map<string, NodePod>();
  const byUid = new Map<string, NodePod>();
  const byContainer = new Map<string, { pod: NodePod; container: string }>();
  for (const raw of pods) {
    const pod = toNodePod(raw);
    if (pod === undefined) continue;
    byName.set(`${pod.namespace}/${pod.name}`, pod);
    byUid.set(pod.uid, pod);
    for (const [id, container] of pod.containersById) byContainer.set(id, { pod, container });
  }
  return {
    byName: (namespace, name) => byName.get(`${namespace}/${name}`),
    byUid: (uid) => byUid.get(uid),
    byContainerId: (id) => byContainer.get(id),
  };
}

/** A NodePodLookup through the API server (RBAC: list pods, cluster-wide). */
export function apiNodePodLookup(kc: KubeTarget, timeoutMs?: number): NodePodLookup {
  const api = new ApiClient(kc, timeoutMs !== undefined ? { timeoutMs } : {});
  return async (node, signal) => {
    // Node names are DNS subdomains; anything else would change what the selector selects.
    if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(node)) throw new Error(`not a node name: ${JSON.stringify(node.slice(0, 64))}`);
    const list = await api.request<V1PodList>({
      method: 'GET',
      path: '/api/v1/pods',
      query: { fieldSelector: `spec.nodeName=${node}`, limit: String(MAX_PODS_PER_NODE_LOOKUP) },
      signal,
    });
    return indexNodePods(list.items);
  };
}

/**
 * An OwnerLookup through the API server (RBAC: get replicasets and jobs). Only ReplicaSets and
 * Jobs are followed, one level up; an object whose UID is not the reference's has been replaced
 * and is not trusted.
 */
export function apiOwnerLookup(kc: KubeTarget, timeoutMs?: number): OwnerLookup {
  return async (controller, namespace, signal) => {
    const collection = WALKED_CONTROLLERS[`${controller.apiVersion}/${controller.kind}`];
    if (collection === undefined) return undefined;
    const path = `/${collection.replace('{ns}', encodeURIComponent(namespace))}/${encodeURIComponent(controller.name)}`;
    const object = await kubeRequest<{
      metadata?: {
        uid?: string;
        ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean }[];
      };
    }>(kc, {
      method: 'GET',
      path,
      signal,
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    });
    if (object.metadata?.uid !== controller.uid) return undefined;
    const owner = object.metadata.ownerReferences?.find((o) => o.controller === true);
    return owner === undefined ? undefined : { apiVersion: owner.apiVersion, kind: owner.kind, name: owner.name, uid: owner.uid };
  };
}

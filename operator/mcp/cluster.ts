/** Reading Nodes, agent pods and GPU pods as the caller (no tool ever writes them). */
import type { V1Node, V1NodeList, V1Pod, V1PodList } from '@kubernetes/client-node';
import { toToolError } from './errors.js';
import type { ToolContext } from './tool.js';

/** The extended resource NVIDIA's device plugin advertises. */
export const GPU_RESOURCE = 'nvidia.com/gpu';

/** Every Node. */
export async function listNodes(ctx: ToolContext): Promise<V1Node[]> {
  try {
    return (await ctx.kube.request<V1NodeList>({ method: 'GET', path: '/api/v1/nodes', signal: ctx.signal })).items ?? [];
  } catch (err) {
    throw toToolError(err, { verb: 'list', resource: 'nodes' }, ctx.kube.identity);
  }
}

/** One Node. */
export async function getNode(ctx: ToolContext, name: string): Promise<V1Node> {
  try {
    return await ctx.kube.request<V1Node>({ method: 'GET', path: `/api/v1/nodes/${encodeURIComponent(name)}`, signal: ctx.signal });
  } catch (err) {
    throw toToolError(err, { verb: 'get', resource: 'nodes', name }, ctx.kube.identity);
  }
}

/** Pods matching a field and/or label selector, in one namespace or all. */
export async function listPods(
  ctx: ToolContext,
  options: { namespace?: string; fieldSelector?: string; labelSelector?: string },
): Promise<V1Pod[]> {
  const path = options.namespace === undefined ? '/api/v1/pods' : `/api/v1/namespaces/${encodeURIComponent(options.namespace)}/pods`;
  try {
    const list = await ctx.kube.request<V1PodList>({
      method: 'GET',
      path,
      query: { fieldSelector: options.fieldSelector, labelSelector: options.labelSelector },
      signal: ctx.signal,
    });
    return list.items ?? [];
  } catch (err) {
    throw toToolError(err, { verb: 'list', resource: 'pods', namespace: options.namespace }, ctx.kube.identity);
  }
}

/** One pod, as the caller; a missing pod is `not found: pods <name> in namespace <namespace>`. */
export async function getPod(ctx: ToolContext, namespace: string, name: string): Promise<V1Pod> {
  try {
    return await ctx.kube.request<V1Pod>({
      method: 'GET',
      path: `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}`,
      signal: ctx.signal,
    });
  } catch (err) {
    throw toToolError(err, { verb: 'get', resource: 'pods', namespace, name }, ctx.kube.identity);
  }
}

/** The GPUs a node advertises (capacity of nvidia.com/gpu), 0 when none. */
export function gpuCapacity(node: V1Node): number {
  const n = Number(node.status?.capacity?.[GPU_RESOURCE] ?? '0');
  return Number.isFinite(n) ? n : 0;
}

/** GPUs a pod requests (the larger of its containers' sum and its largest init container). */
export function podGpuRequest(pod: V1Pod): number {
  const amount = (r: { [k: string]: string } | undefined): number => Number(r?.[GPU_RESOURCE] ?? '0') || 0;
  const regular = (pod.spec?.containers ?? []).reduce(
    (sum, c) => sum + Math.max(amount(c.resources?.limits), amount(c.resources?.requests)),
    0,
  );
  const init = Math.max(
    0,
    ...(pod.spec?.initContainers ?? []).map((c) => Math.max(amount(c.resources?.limits), amount(c.resources?.requests))),
  );
  return Math.max(regular, init);
}

/** Whether a Node's Ready condition is True. */
export function nodeReady(node: V1Node): boolean {
  return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;
}

/** Whether a pod is Ready. */
export function podReady(pod: V1Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;
}

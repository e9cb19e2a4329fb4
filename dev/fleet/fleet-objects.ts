/**
 * The API objects a kubelet, NVIDIA's device plugin and GPU feature discovery would leave for
 * one GPU node running a gpudiag agent: a Ready Node advertising its GPUs, and a Running, Ready
 * agent Pod with the node's address as pod IP. Shared by the simulated fleet (real agents on the
 * fake NVML) and the benchmark's prepared-snapshot fleet (agents in separate processes).
 */
import { kubeRequest, type KubeTarget } from '../../lib/kube/raw-request.js';

/** Labels that mark the simulated agent pods (the operator's default agent selector matches them). */
export const AGENT_POD_LABELS = { 'app.kubernetes.io/name': 'gpudiag', 'app.kubernetes.io/component': 'agent' } as const;
/** Labels on every simulated node. */
export const SIMULATED_NODE_LABELS = {
  'gpudiag.io/simulated': 'true',
  'nvidia.com/gpu.present': 'true',
  'gpudiag.io/pool': 'training',
} as const;
/** Label naming the scenario behind a simulated node (`kubectl get nodes -L gpudiag.io/scenario`). */
export const SCENARIO_LABEL = 'gpudiag.io/scenario';

/** What the device plugin and feature discovery put on the Node. */
export interface DeviceAdvertisement {
  labels: Record<string, string>;
  resources: Record<string, string>;
}

function now(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, 'Z');
}

/** Creates a Ready Node with `labels` advertising `advertised`; resolves with its UID. */
export async function createSimulatedNode(
  kc: KubeTarget,
  name: string,
  labels: Record<string, string>,
  advertised: DeviceAdvertisement,
): Promise<string> {
  const created = await kubeRequest<{ metadata?: { uid?: string } }>(kc, {
    method: 'POST',
    path: '/api/v1/nodes',
    body: { apiVersion: 'v1', kind: 'Node', metadata: { name, labels } },
  });
  await kubeRequest(kc, {
    method: 'PATCH',
    path: `/api/v1/nodes/${name}/status`,
    contentType: 'application/merge-patch+json',
    body: {
      status: {
        conditions: [
          {
            type: 'Ready',
            status: 'True',
            reason: 'SimulatedKubelet',
            message: 'simulated by gpudiag dev',
            lastHeartbeatTime: now(),
            lastTransitionTime: now(),
          },
        ],
        capacity: advertised.resources,
        allocatable: advertised.resources,
      },
    },
  });
  return created.metadata?.uid ?? '';
}

/** The agent pod's name on a node. */
export function agentPodName(nodeName: string): string {
  return `gpudiag-agent-${nodeName}`.slice(0, 63).replace(/-+$/, '');
}

/** Where the agent pod of one node runs. */
export interface AgentPodPlacement {
  namespace: string;
  nodeName: string;
  /** The node's UID: pods given extra labels are controlled by their Node (a DaemonSet must not adopt them). */
  nodeUid: string;
  /** Pod IP and host IP. */
  address: string;
  podLabels?: Record<string, string>;
}

/** Creates the agent Pod bound to its node and marks it Running and Ready at `address`. */
export async function createAgentPod(kc: KubeTarget, placement: AgentPodPlacement): Promise<void> {
  const { namespace, nodeName, nodeUid, address, podLabels } = placement;
  const podName = agentPodName(nodeName);
  await kubeRequest(kc, {
    method: 'POST',
    path: `/api/v1/namespaces/${namespace}/pods`,
    body: {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: podName,
        labels: { ...podLabels, ...AGENT_POD_LABELS },
        ...(podLabels === undefined
          ? {}
          : { ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: nodeName, uid: nodeUid, controller: true }] }),
      },
      spec: { nodeName, containers: [{ name: 'agent', image: 'gpudiag/agent:dev' }] },
    },
  });
  await kubeRequest(kc, {
    method: 'PATCH',
    path: `/api/v1/namespaces/${namespace}/pods/${podName}/status`,
    contentType: 'application/merge-patch+json',
    body: {
      status: {
        phase: 'Running',
        podIP: address,
        podIPs: [{ ip: address }],
        hostIP: address,
        conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: now() }],
        containerStatuses: [
          {
            name: 'agent',
            ready: true,
            started: true,
            restartCount: 0,
            image: 'gpudiag/agent:dev',
            imageID: '',
            state: { running: { startedAt: now() } },
          },
        ],
      },
    },
  });
}

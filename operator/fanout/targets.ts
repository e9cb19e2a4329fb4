/**
 * Which nodes a diagnostic asks, and which agent Pod answers for each: a pure function of the
 * Node and agent Pod lists. A selected node without a ready agent is a target with a reason.
 */
import { isIP } from 'node:net';
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { compileSelector, type LabelSelector } from './label-selector.js';

/** The agent Pod that answers for a node. `port` overrides the fan-out's agent port (tests, simulated fleets). */
export interface AgentEndpoint {
  podName: string;
  ip: string;
  port?: number;
}

/** One node to ask: its agent, or why it has none (a NoAgent outcome). */
export interface NodeTarget {
  node: string;
  agent?: AgentEndpoint;
  missingReason?: string;
}

/** What the targets are resolved from. `agentPods` are the Pods matching the configured agent selector. */
export interface ResolveTargetsInput {
  nodes: readonly V1Node[];
  agentPods: readonly V1Pod[];
  nodeNames?: readonly string[];
  nodeSelector?: LabelSelector;
}

/** A node name (or other input) that failed validation; `field` names it. */
export class InvalidTargetInputError extends Error {
  constructor(
    readonly field: string,
    detail: string,
  ) {
    super(`${field}: ${detail}`);
    this.name = 'InvalidTargetInputError';
  }
}

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const MAX_NODE_NAME = 253;
/** Most non-ready pods named in one missingReason. */
const MAX_PODS_IN_REASON = 3;

/** Why `name` is not a valid node name (RFC 1123 subdomain), or undefined when it is. */
export function nodeNameProblem(name: unknown): string | undefined {
  if (typeof name !== 'string') return 'must be a string';
  if (name.length === 0) return 'must not be empty';
  if (name.length > MAX_NODE_NAME) return `must be at most ${MAX_NODE_NAME} characters`;
  if (!DNS1123_SUBDOMAIN.test(name))
    return `${JSON.stringify(name.slice(0, 64))} is not a DNS-1123 subdomain (lower-case alphanumerics, "-" and ".")`;
  return undefined;
}

function time(value: Date | string | undefined): number {
  if (value === undefined) return 0;
  const ms = new Date(value).getTime();
  return Number.isNaN(ms) ? 0 : ms;
}

/** Why `pod` cannot answer for its node, or undefined when it is a usable agent. */
export function agentPodProblem(pod: V1Pod): string | undefined {
  if (pod.metadata?.deletionTimestamp !== undefined && pod.metadata.deletionTimestamp !== null) return 'is terminating';
  const ready = pod.status?.conditions?.find((c) => c.type === 'Ready');
  if (ready?.status !== 'True') return 'is not Ready';
  const ip = pod.status?.podIP;
  if (ip === undefined || ip === '') return 'has no Pod IP yet';
  if (isIP(ip) === 0) return 'has an invalid Pod IP';
  return undefined;
}

function isEmptySelector(selector: LabelSelector | undefined): boolean {
  return selector === undefined || (Object.keys(selector.matchLabels ?? {}).length === 0 && (selector.matchExpressions ?? []).length === 0);
}

function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function podsByNode(agentPods: readonly V1Pod[]): Map<string, V1Pod[]> {
  const map = new Map<string, V1Pod[]>();
  for (const pod of agentPods) {
    const node = pod.spec?.nodeName;
    if (node === undefined || node === '') continue;
    const list = map.get(node);
    if (list === undefined) map.set(node, [pod]);
    else list.push(pod);
  }
  return map;
}

/** The newest usable agent Pod of `pods`, or a NoAgent reason for `node`. */
function pickAgent(node: string, pods: readonly V1Pod[] | undefined): Pick<NodeTarget, 'agent' | 'missingReason'> {
  if (pods === undefined || pods.length === 0) return { missingReason: `no gpudiag agent pod on ${node}` };
  const usable = pods.filter((p) => agentPodProblem(p) === undefined);
  if (usable.length === 0) {
    const named = [...pods]
      .sort((a, b) => byName(a.metadata?.name ?? '', b.metadata?.name ?? ''))
      .slice(0, MAX_PODS_IN_REASON)
      .map((p) => `pod ${p.metadata?.name ?? '(unnamed)'} ${agentPodProblem(p) ?? ''}`);
    const more = pods.length > MAX_PODS_IN_REASON ? `; ${pods.length - MAX_PODS_IN_REASON} more` : '';
    return { missingReason: `no ready gpudiag agent pod on ${node} (${named.join('; ')}${more})` };
  }
  usable.sort(
    (a, b) =>
      time(b.metadata?.creationTimestamp) - time(a.metadata?.creationTimestamp) || byName(a.metadata?.name ?? '', b.metadata?.name ?? ''),
  );
  const pod = usable[0] as V1Pod;
  return { agent: { podName: pod.metadata?.name ?? '', ip: pod.status?.podIP ?? '' } };
}

/**
 * Resolves the targets of a diagnostic, sorted by node name. A node is selected when it is in
 * `nodeNames` (if non-empty) and matches `nodeSelector` (if given); with neither, every node
 * that has an agent Pod. Named nodes that do not exist are targets with a NoAgent reason.
 * Throws InvalidTargetInputError / InvalidSelectorError naming the bad field.
 */
export function resolveTargets(input: ResolveTargetsInput): NodeTarget[] {
  const names = input.nodeNames ?? [];
  names.forEach((name, i) => {
    const problem = nodeNameProblem(name);
    if (problem !== undefined) throw new InvalidTargetInputError(`nodeNames[${i}]`, problem);
  });
  // An empty selector counts as absent: with no nodeNames either, only nodes with an agent Pod are targets.
  const selector = isEmptySelector(input.nodeSelector) ? undefined : compileSelector(input.nodeSelector, 'nodeSelector');
  const pods = podsByNode(input.agentPods);
  const nodes = new Map<string, V1Node>();
  for (const node of input.nodes) {
    const name = node.metadata?.name;
    if (name !== undefined && name !== '') nodes.set(name, node);
  }

  const targets: NodeTarget[] = [];
  if (names.length > 0) {
    for (const name of new Set(names)) {
      const node = nodes.get(name);
      if (node === undefined) {
        targets.push({ node: name, missingReason: `node ${name} not found` });
        continue;
      }
      if (selector !== undefined && !selector(node.metadata?.labels)) continue;
      targets.push({ node: name, ...pickAgent(name, pods.get(name)) });
    }
  } else {
    for (const [name, node] of nodes) {
      if (selector === undefined ? !pods.has(name) : !selector(node.metadata?.labels)) continue;
      targets.push({ node: name, ...pickAgent(name, pods.get(name)) });
    }
  }
  return targets.sort((a, b) => byName(a.node, b.node));
}

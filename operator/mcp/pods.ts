/**
 * One pod's GPUs, shared by pod_gpus and explain_pod_failure: the pod read as the caller, a fresh
 * diagnostic of its node covering the pod's lifetime, the node's GPUs that list the pod (the
 * agent's pod-resources or process-cgroup view, completed by the operator), and the XID events
 * that may have hit it: on one of its GPUs, or on its node with no GPU attribution.
 */
import type { V1ContainerStatus, V1Pod } from '@kubernetes/client-node';
import { z } from 'zod';
import { normalizePciBusId } from '../../agent/xid/parser.js';
import type { GPUDiagnostic } from '../../api/index.js';
import { MAX_LOOKBACK_HOURS, lookbackFromSince, namespaceName, objectName, toolArguments } from './arguments.js';
import { GPU_RESOURCE, getPod, podGpuRequest } from './cluster.js';
import { createAndWait } from './create-and-wait.js';
import { ToolError } from './errors.js';
import type { ToolContext } from './tool.js';
import {
  diagnosticRef,
  diagnosticRefSchema,
  gpuSchema,
  nodeView,
  untrustedSchema,
  xidSchema,
  xidView,
  type DiagnosticRef,
  type UntrustedView,
} from './views.js';
import { policyArg, waitArg, waitOf } from './tools/common.js';

/** The arguments of both pod tools: `namespace` is the pod's, so the diagnostic's is `diagnosticNamespace`. */
export const podToolArguments = toolArguments({
  namespace: namespaceName().describe('Namespace of the pod'),
  name: objectName('name').describe('Name of the pod'),
  waitSeconds: waitArg,
  policy: policyArg,
  diagnosticNamespace: namespaceName('diagnosticNamespace')
    .optional()
    .describe("Namespace of the GPUDiagnostic (default: the server's namespace)"),
});
export type PodToolArguments = z.output<typeof podToolArguments>;

/**
 * XIDs logged up to this long after the pod ended still count: kernel timestamps and the kubelet's finishedAt come from
 * different clocks.
 */
export const END_GRACE_MS = 60_000;

export const podSchema = z.object({
  namespace: z.string(),
  name: z.string(),
  uid: z.string(),
  node: z.string(),
  phase: z.string(),
  startTime: z.string().optional().describe('status.startTime, else metadata.creationTimestamp'),
  endTime: z.string().optional().describe('when its last container finished (Succeeded or Failed pods)'),
  gpusRequested: z.number().describe('nvidia.com/gpu the pod requests'),
});
export type PodView = z.infer<typeof podSchema>;

export const podGpuSchema = gpuSchema.extend({ containers: z.array(z.string()).describe("the pod's containers on this GPU") });
export type PodGpuView = z.infer<typeof podGpuSchema>;

export const podXidSchema = xidSchema.extend({
  attribution: z
    .enum(['gpu', 'node'])
    .describe("gpu: on one of the pod's GPUs; node: on the pod's node, the kernel log naming no GPU of it (it may have been the pod's)"),
});
export type PodXidView = z.infer<typeof podXidSchema>;

/** The node in the diagnostic, when it answered. */
export const podNodeSchema = z.object({
  name: z.string(),
  result: z.string(),
  status: z.string(),
  score: z.number().optional(),
  message: z.string().optional(),
});

/** What both tools return about the pod's GPUs. */
export const podGpusShape = {
  pod: podSchema,
  diagnostic: diagnosticRefSchema,
  node: podNodeSchema.optional().describe('the node in the diagnostic (absent until it answers)'),
  gpus: z.array(podGpuSchema).describe('the GPUs of the node that list this pod'),
  xidEvents: z
    .array(podXidSchema)
    .describe("XID events whose lastSeen falls in the pod's lifetime, on its GPUs or unattributed on its node"),
  notes: z.array(z.string()),
  untrusted: untrustedSchema,
};

/** The pod's GPUs and XIDs, and the raw pod (for failure facts). */
export interface PodGpuReport {
  podObject: V1Pod;
  pod: PodView;
  diagnostic: DiagnosticRef;
  node?: z.infer<typeof podNodeSchema>;
  /** The node answered (result Succeeded): what it says about GPUs can be trusted. */
  nodeDiagnosed: boolean;
  gpus: PodGpuView[];
  xidEvents: PodXidView[];
  notes: string[];
  untrusted: UntrustedView;
}

type StatusNode = NonNullable<NonNullable<GPUDiagnostic['status']>['nodes']>[number];
type StatusGpu = NonNullable<StatusNode['gpus']>[number];
type StatusXid = NonNullable<StatusNode['xidEvents']>[number];

/** A Kubernetes time as read from JSON (a string, whatever client-node's types say). */
export function timeOf(value: Date | string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const ms = value instanceof Date ? value.getTime() : Date.parse(value);
  return Number.isNaN(ms) ? undefined : new Date(ms);
}

/** Every container status of a pod, init containers first. */
export function containerStatuses(pod: V1Pod): { status: V1ContainerStatus; init: boolean }[] {
  return [
    ...(pod.status?.initContainerStatuses ?? []).map((status) => ({ status, init: true })),
    ...(pod.status?.containerStatuses ?? []).map((status) => ({ status, init: false })),
  ];
}

/** When the pod started, and when it ended (only for Succeeded or Failed pods with a finished container). */
export function podLifetime(pod: V1Pod): { start: Date | undefined; end: Date | undefined } {
  const start = timeOf(pod.status?.startTime) ?? timeOf(pod.metadata?.creationTimestamp);
  const phase = pod.status?.phase;
  if (phase !== 'Succeeded' && phase !== 'Failed') return { start, end: undefined };
  const finished = containerStatuses(pod)
    .map(({ status }) => timeOf(status.state?.terminated?.finishedAt)?.getTime())
    .filter((t): t is number => t !== undefined);
  return { start, end: finished.length > 0 ? new Date(Math.max(...finished)) : undefined };
}

/** Whether a GPU's pod list names this pod: by UID when both have one, else by namespace and name. */
function listsPod(entry: NonNullable<StatusGpu['pods']>[number], pod: PodView): boolean {
  if (entry.uid !== undefined && pod.uid !== '') return entry.uid === pod.uid;
  return entry.namespace === pod.namespace && entry.name === pod.name;
}

/** The GPU of the node an XID names (by UUID, else by PCI bus id), or undefined when it names none of them. */
export function xidGpu(
  e: { gpu?: string | undefined; pciBusId?: string | undefined },
  gpus: readonly { index: number; uuid?: string | undefined; pciBusId?: string | undefined }[],
): number | undefined {
  if (e.gpu !== undefined) {
    const byUuid = gpus.find((g) => g.uuid === e.gpu);
    if (byUuid !== undefined) return byUuid.index;
  }
  const bus = e.pciBusId === undefined ? null : normalizePciBusId(e.pciBusId);
  if (bus === null) return undefined;
  return gpus.find((g) => g.pciBusId !== undefined && normalizePciBusId(g.pciBusId) === bus)?.index;
}

/** Whether an XID's lastSeen falls in [start, end + grace] (end: now for a pod still running). */
export function inLifetime(e: { lastSeen?: string | undefined }, start: Date | undefined, end: Date): boolean {
  const seen = timeOf(e.lastSeen);
  if (seen === undefined) return false;
  return (start === undefined || seen.getTime() >= start.getTime()) && seen.getTime() <= end.getTime() + END_GRACE_MS;
}

function podView(pod: V1Pod, namespace: string, name: string): PodView {
  const { start, end } = podLifetime(pod);
  return {
    namespace,
    name,
    uid: pod.metadata?.uid ?? '',
    node: pod.spec?.nodeName ?? '',
    phase: pod.status?.phase ?? 'Unknown',
    ...(start !== undefined ? { startTime: start.toISOString() } : {}),
    ...(end !== undefined ? { endTime: end.toISOString() } : {}),
    gpusRequested: podGpuRequest(pod),
  };
}

/** The GPUs of the node that list the pod, with the pod's containers on each. */
function podGpus(statusNode: StatusNode | undefined, pod: PodView): PodGpuView[] {
  const view = statusNode === undefined ? undefined : nodeView(statusNode);
  return (statusNode?.gpus ?? []).flatMap((g, i) => {
    const entries = (g.pods ?? []).filter((p) => listsPod(p, pod));
    const gpu = view?.gpus[i];
    if (entries.length === 0 || gpu === undefined) return [];
    return [{ ...gpu, containers: [...new Set(entries.map((p) => p.container ?? '').filter((c) => c !== ''))] }];
  });
}

/** The XIDs in the pod's lifetime on its GPUs or unattributed on its node, with kernel text under untrusted. */
function podXids(
  diagnostic: GPUDiagnostic,
  statusNode: StatusNode | undefined,
  gpus: readonly PodGpuView[],
  lifetime: { start: Date | undefined; end: Date },
): { events: PodXidView[]; untrusted: UntrustedView } {
  const nodeGpus = statusNode?.gpus ?? [];
  const mine = new Set(gpus.map((g) => g.index));
  const relevant = (e: StatusXid): boolean => {
    const gpu = xidGpu(e, nodeGpus);
    return (gpu === undefined || mine.has(gpu)) && inLifetime(e, lifetime.start, lifetime.end);
  };
  // xidView on just these events keeps its ordering and its untrusted indices consistent.
  const only: GPUDiagnostic =
    statusNode === undefined
      ? diagnostic
      : {
          ...diagnostic,
          status: { ...diagnostic.status, nodes: [{ ...statusNode, xidEvents: (statusNode.xidEvents ?? []).filter(relevant) }] },
        };
  const { events, untrusted } = xidView(only, { nodes: statusNode === undefined ? [] : [statusNode.name] }, 20);
  return { events: events.map((e) => ({ ...e, attribution: xidGpu(e, nodeGpus) === undefined ? 'node' : 'gpu' })), untrusted };
}

function reportNotes(
  pod: PodView,
  statusNode: StatusNode | undefined,
  gpus: readonly PodGpuView[],
  ref: DiagnosticRef,
  now: Date,
): string[] {
  const notes: string[] = [];
  if (statusNode === undefined) notes.push(`node ${pod.node} has no result in GPUDiagnostic ${ref.namespace}/${ref.name} (${ref.phase})`);
  else if (statusNode.result !== 'Succeeded')
    notes.push(
      `node ${pod.node} could not be diagnosed: ` +
        `${statusNode.result}${statusNode.message === undefined ? '' : ` — ${statusNode.message}`}`,
    );
  else if (gpus.length === 0 && pod.gpusRequested > 0) {
    const truncated = (statusNode.gpus ?? []).some((g) => (g.podsTruncated ?? 0) > 0);
    notes.push(
      `the pod requests ${pod.gpusRequested} GPU(s) but no GPU of node ${pod.node} lists this ` +
        `pod${truncated ? ' (some GPUs list only their first pods)' : ''}`,
    );
  } else if (gpus.length === 0) notes.push(`the pod requests no ${GPU_RESOURCE} and no GPU of node ${pod.node} lists it`);
  else if (gpus.length < pod.gpusRequested) notes.push(`${gpus.length} of the ${pod.gpusRequested} GPU(s) the pod requests list it`);
  if (pod.startTime !== undefined && now.getTime() - Date.parse(pod.startTime) > MAX_LOOKBACK_HOURS * 3_600_000) {
    notes.push(`the pod started more than ${MAX_LOOKBACK_HOURS}h ago: XIDs older than that are not looked at`);
  }
  return notes;
}

/** Reads the pod, diagnoses its node over the pod's lifetime and reports the pod's GPUs and XIDs. */
export async function podGpuReport(ctx: ToolContext, args: PodToolArguments, tool: string): Promise<PodGpuReport> {
  const podObject = await getPod(ctx, args.namespace, args.name);
  const pod = podView(podObject, args.namespace, args.name);
  if (pod.node === '')
    throw new ToolError(`pod ${args.namespace}/${args.name} is not scheduled to a node (phase ${pod.phase}): it holds no GPU yet`);
  const now = ctx.now();
  const lifetime = podLifetime(podObject);
  const { lookback } = lookbackFromSince((lifetime.start ?? now).toISOString(), now);
  const { diagnostic, finished } = await createAndWait(ctx, {
    tool,
    namespace: args.diagnosticNamespace ?? ctx.settings.namespace,
    spec: {
      nodeNames: [pod.node],
      checks: ['health', 'xid'],
      xidLookback: lookback,
      ...(args.policy !== undefined ? { policyRef: { name: args.policy } } : {}),
    },
    waitSeconds: waitOf(args, ctx),
  });
  const ref = diagnosticRef(diagnostic, finished);
  const statusNode = diagnostic.status?.nodes?.find((n) => n.name === pod.node);
  const gpus = podGpus(statusNode, pod);
  const { events, untrusted } = podXids(diagnostic, statusNode, gpus, { start: lifetime.start, end: lifetime.end ?? now });
  return {
    podObject,
    pod,
    diagnostic: ref,
    ...(statusNode !== undefined
      ? {
          node: {
            name: statusNode.name,
            result: statusNode.result,
            status: statusNode.status,
            ...(statusNode.score !== undefined ? { score: statusNode.score } : {}),
            ...(statusNode.message ? { message: statusNode.message } : {}),
          },
        }
      : {}),
    nodeDiagnosed: statusNode?.result === 'Succeeded',
    gpus,
    xidEvents: events,
    notes: reportNotes(pod, statusNode, gpus, ref, now),
    untrusted,
  };
}

/** `GPU 3 (GPU-…)`. */
export function gpuLabel(g: { index: number; uuid?: string | undefined }): string {
  return `GPU ${g.index}${g.uuid === undefined ? '' : ` (${g.uuid})`}`;
}

/** The structured fields both tools share (podGpusShape). */
export function podGpusOutput(r: PodGpuReport): z.output<z.ZodObject<typeof podGpusShape>> {
  return {
    pod: r.pod,
    diagnostic: r.diagnostic,
    ...(r.node !== undefined ? { node: r.node } : {}),
    gpus: r.gpus,
    xidEvents: r.xidEvents,
    notes: r.notes,
    untrusted: r.untrusted,
  };
}

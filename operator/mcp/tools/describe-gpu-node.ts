/** describe_gpu_node: one node's facts, GPUs, findings, recent XIDs and GPU pods (creates a GPUDiagnostic). */
import { z } from 'zod';
import { lookbackFromSince, nodeName, since, toolArguments } from '../arguments.js';
import { GPU_RESOURCE, getNode, gpuCapacity, listPods, nodeReady, podGpuRequest, podReady } from '../cluster.js';
import { createAndWait } from '../create-and-wait.js';
import { ToolError } from '../errors.js';
import { CREATES_DIAGNOSTIC, defineTool } from '../tool.js';
import {
  UNTRUSTED_NOTE,
  diagnosticRef,
  diagnosticRefSchema,
  nodeSchema,
  nodeView,
  unfinishedLine,
  untrustedSchema,
  xidSchema,
  xidView,
} from '../views.js';
import { namespaceArg, namespaceOf, policyArg, waitArg, waitOf } from './common.js';

const output = z.object({
  node: z.object({
    name: z.string(),
    ready: z.boolean(),
    unschedulable: z.boolean(),
    gpuCapacity: z.number(),
    gpuAllocatable: z.number(),
    kubeletVersion: z.string().optional(),
    labels: z.record(z.string(), z.string()).describe('NVIDIA, gpudiag, topology and instance-type labels'),
    taints: z.array(z.object({ key: z.string(), value: z.string().optional(), effect: z.string() })),
    conditions: z.array(z.object({ type: z.string(), status: z.string(), reason: z.string().optional() })),
  }),
  diagnostic: diagnosticRefSchema,
  health: nodeSchema.optional().describe('the node in the diagnostic (absent until it answers)'),
  xidEvents: z.array(xidSchema),
  gpuPods: z.array(z.object({ namespace: z.string(), name: z.string(), phase: z.string(), ready: z.boolean(), gpus: z.number() })),
  gpusRequested: z.number(),
  notes: z.array(z.string()),
  untrusted: untrustedSchema,
});

const INTERESTING_LABEL =
  /^(nvidia\.com\/|gpudiag\.io\/|feature\.node\.kubernetes\.io\/pci-10de|topology\.kubernetes\.io\/|node\.kubernetes\.io\/instance-type$|kubernetes\.io\/hostname$)/;

/** The describe_gpu_node tool. */
export const describeGpuNodeTool = defineTool({
  name: 'describe_gpu_node',
  title: 'Describe a GPU node',
  description:
    'Everything about one GPU node: Node facts (readiness, GPU capacity, taints, NVIDIA labels), a fresh diagnostic of its GPUs ' +
    '(inventory, health, XID errors; created as you), and the pods requesting nvidia.com/gpu on it. Kernel message text is ' +
    'returned under untrusted.',
  inputSchema: toolArguments({
    node: nodeName('node').describe('The node name (RFC 1123)'),
    xidSince: since.optional().describe('XID lookback (default 24h)'),
    policy: policyArg,
    namespace: namespaceArg,
    waitSeconds: waitArg,
  }),
  outputSchema: output,
  annotations: CREATES_DIAGNOSTIC,
  readOnly: false,
  async handler(args, ctx) {
    const node = await getNode(ctx, args.node);
    const notes: string[] = [];
    const { lookback } = lookbackFromSince(args.xidSince ?? '24h', ctx.now());
    const podsPromise = listPods(ctx, { fieldSelector: `spec.nodeName=${args.node}` }).then(
      (pods) => pods,
      (err: unknown) => {
        if (!(err instanceof ToolError)) throw err;
        notes.push(`GPU pods unknown: ${err.message}`);
        return [];
      },
    );
    const { diagnostic, finished } = await createAndWait(ctx, {
      tool: 'describe_gpu_node',
      namespace: namespaceOf(args, ctx),
      spec: {
        nodeNames: [args.node],
        checks: ['inventory', 'health', 'xid'],
        xidLookback: lookback,
        ...(args.policy !== undefined ? { policyRef: { name: args.policy } } : {}),
      },
      waitSeconds: waitOf(args, ctx),
    });
    const pods = (await podsPromise).filter((p) => podGpuRequest(p) > 0 && p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed');
    const ref = diagnosticRef(diagnostic, finished);
    const statusNode = diagnostic.status?.nodes?.find((n) => n.name === args.node);
    const health = statusNode === undefined ? undefined : nodeView(statusNode);
    const { events, untrusted } = xidView(diagnostic, { nodes: [args.node] }, 20);
    const labels = Object.fromEntries(Object.entries(node.metadata?.labels ?? {}).filter(([k]) => INTERESTING_LABEL.test(k)));
    const gpuPods = pods.map((p) => ({
      namespace: p.metadata?.namespace ?? '',
      name: p.metadata?.name ?? '',
      phase: p.status?.phase ?? 'Unknown',
      ready: podReady(p),
      gpus: podGpuRequest(p),
    }));
    const facts = {
      name: args.node,
      ready: nodeReady(node),
      unschedulable: node.spec?.unschedulable === true,
      gpuCapacity: gpuCapacity(node),
      gpuAllocatable: Number(node.status?.allocatable?.[GPU_RESOURCE] ?? '0') || 0,
      ...(node.status?.nodeInfo?.kubeletVersion !== undefined ? { kubeletVersion: node.status.nodeInfo.kubeletVersion } : {}),
      labels,
      taints: (node.spec?.taints ?? []).map((t) => ({
        key: t.key,
        ...(t.value !== undefined ? { value: t.value } : {}),
        effect: t.effect,
      })),
      conditions: (node.status?.conditions ?? []).map((c) => ({
        type: c.type,
        status: c.status,
        ...(c.reason !== undefined ? { reason: c.reason } : {}),
      })),
    };
    const gpusRequested = gpuPods.reduce((s, p) => s + p.gpus, 0);
    const unhealthy = (health?.gpus ?? []).filter((g) => g.status !== 'healthy');
    const text =
      [
        `Node ${args.node}: ${facts.ready ? 'Ready' : 'NotReady'}${facts.unschedulable ? ', cordoned' : ''}; ` +
          `${facts.gpuCapacity} GPU(s), ${gpusRequested} requested by ${gpuPods.length} pod(s).`,
        health === undefined
          ? `No result yet (GPUDiagnostic ${ref.namespace}/${ref.name} is ${ref.phase}).`
          : `Health: ` +
            `${health.status}${health.score === undefined ? '' : ` (score ${health.score})`}` +
            `${health.message === undefined ? '' : ` — ${health.message}`} ` +
            `(GPUDiagnostic ${ref.namespace}/${ref.name}).`,
        ...unhealthy.map(
          (g) => `- GPU ${g.index}${g.uuid === undefined ? '' : ` ${g.uuid}`}: ${g.status} — ${g.findings.map((f) => f.code).join(', ')}`,
        ),
        ...(events.length > 0 ? [`XID errors: ${events.map((e) => `${e.xid} ${e.name ?? ''} ×${e.count}`).join('; ')}`] : []),
        ...gpuPods.slice(0, 10).map((p) => `- pod ${p.namespace}/${p.name}: ${p.gpus} GPU(s), ${p.phase}`),
        ...notes.map((n) => `Note: ${n}`),
        ...(untrusted.kernelMessages.length > 0 ? [UNTRUSTED_NOTE] : []),
      ].join('\n') + unfinishedLine(ref);
    return {
      structured: {
        node: facts,
        diagnostic: ref,
        ...(health !== undefined ? { health } : {}),
        xidEvents: events,
        gpuPods,
        gpusRequested,
        notes,
        untrusted,
      },
      text,
    };
  },
});

/** list_gpu_nodes: GPU nodes, their agents, GPU counts and last known health (reads only). */
import { z } from 'zod';
import { HEALTH_STATUSES, toolArguments } from '../arguments.js';
import { gpuCapacity, listNodes, listPods, nodeReady, podReady } from '../cluster.js';
import { ToolError } from '../errors.js';
import { READ_ONLY, defineTool } from '../tool.js';
import { limitArg, listDiagnostics, namespaceArg, namespaceOf } from './common.js';

const STATUS_RANK: Record<string, number> = { critical: 0, degraded: 1, unknown: 2, healthy: 3 };

const output = z.object({
  nodes: z.array(
    z.object({
      name: z.string(),
      ready: z.boolean().describe("the Node's Ready condition"),
      gpus: z.number().describe('nvidia.com/gpu capacity'),
      agent: z
        .enum(['ready', 'not-ready', 'none', 'unknown'])
        .describe('the gpudiag agent pod on the node (unknown: the caller cannot list agent pods)'),
      lastHealth: z
        .object({ status: z.enum(HEALTH_STATUSES), score: z.number().optional(), diagnostic: z.string(), checkedAt: z.string().optional() })
        .optional()
        .describe('the node in the newest finished GPUDiagnostic of the namespace that covered it'),
    }),
  ),
  nodesOmitted: z.number(),
  notes: z.array(z.string()),
});

/** The list_gpu_nodes tool. */
export const listGpuNodesTool = defineTool({
  name: 'list_gpu_nodes',
  title: 'List GPU nodes',
  description:
    'List the nodes that have GPUs (nvidia.com/gpu capacity) or a gpudiag agent, with GPU counts, agent state and the last ' +
    'known health from existing GPUDiagnostics, worst first. Reads only; creates nothing.',
  inputSchema: toolArguments({ namespace: namespaceArg, limit: limitArg(200, 5000) }),
  outputSchema: output,
  annotations: READ_ONLY,
  readOnly: true,
  async handler(args, ctx) {
    const namespace = namespaceOf(args, ctx);
    const notes: string[] = [];
    const nodes = await listNodes(ctx);
    const agents = new Map<string, boolean>();
    let agentsKnown = true;
    try {
      for (const pod of await listPods(ctx, { namespace: ctx.settings.agentNamespace, labelSelector: ctx.settings.agentSelector })) {
        const node = pod.spec?.nodeName;
        if (node !== undefined) agents.set(node, (agents.get(node) ?? false) || podReady(pod));
      }
    } catch (err) {
      if (!(err instanceof ToolError)) throw err;
      agentsKnown = false;
      notes.push(`agent state unknown: ${err.message}`);
    }
    const lastHealth = new Map<string, z.infer<typeof output>['nodes'][number]['lastHealth']>();
    try {
      for (const d of await listDiagnostics(ctx, namespace)) {
        if (d.status?.phase !== 'Completed') continue;
        for (const n of d.status.nodes ?? []) {
          if (lastHealth.has(n.name)) continue;
          lastHealth.set(n.name, {
            status: n.status,
            ...(n.score !== undefined ? { score: n.score } : {}),
            diagnostic: `${namespace}/${d.metadata.name ?? ''}`,
            ...(d.status.completionTime !== undefined ? { checkedAt: d.status.completionTime } : {}),
          });
        }
      }
    } catch (err) {
      if (!(err instanceof ToolError)) throw err;
      notes.push(`last known health unavailable: ${err.message}`);
    }
    const gpuNodes = nodes
      .map((node) => {
        const name = node.metadata?.name ?? '';
        const health = lastHealth.get(name);
        const agent: 'ready' | 'not-ready' | 'none' | 'unknown' = !agentsKnown
          ? 'unknown'
          : agents.has(name)
            ? agents.get(name) === true
              ? 'ready'
              : 'not-ready'
            : 'none';
        return { name, ready: nodeReady(node), gpus: gpuCapacity(node), agent, ...(health !== undefined ? { lastHealth: health } : {}) };
      })
      .filter((n) => n.gpus > 0 || n.agent === 'ready' || n.agent === 'not-ready')
      .sort(
        (a, b) =>
          (STATUS_RANK[a.lastHealth?.status ?? 'unknown'] ?? 2) - (STATUS_RANK[b.lastHealth?.status ?? 'unknown'] ?? 2) ||
          a.name.localeCompare(b.name),
      );
    const limit = args.limit ?? 200;
    const listed = gpuNodes.slice(0, limit);
    const lines = listed
      .slice(0, 20)
      .map(
        (n) =>
          `- ${n.name}: ${n.gpus} GPU(s), agent ${n.agent}, ` +
          (n.lastHealth === undefined
            ? 'no health record'
            : `${n.lastHealth.status}${n.lastHealth.score === undefined ? '' : ` (score ${n.lastHealth.score})`}`),
      );
    const text = [
      `${gpuNodes.length} GPU node(s); ${gpuNodes.reduce((s, n) => s + n.gpus, 0)} GPU(s); ` +
        `${gpuNodes.filter((n) => n.agent === 'ready').length} with a ready agent.`,
      ...lines,
      ...(gpuNodes.length > lines.length
        ? [
            `(${gpuNodes.length - lines.length} more in structured ` +
              `output${gpuNodes.length > listed.length ? ', some omitted by limit' : ''})`,
          ]
        : []),
      ...notes.map((n) => `Note: ${n}`),
    ].join('\n');
    return { structured: { nodes: listed, nodesOmitted: gpuNodes.length - listed.length, notes }, text };
  },
});

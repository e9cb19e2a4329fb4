/** get_health_policy: one GPUHealthPolicy's spec and last check (reads only). */
import { z } from 'zod';
import { objectName, toolArguments } from '../arguments.js';
import { getPolicy } from '../policies.js';
import { READ_ONLY, defineTool } from '../tool.js';

/** The get_health_policy tool. */
export const getHealthPolicyTool = defineTool({
  name: 'get_health_policy',
  title: 'Get a GPU health policy',
  description:
    'Read one GPUHealthPolicy: its spec (thresholds, XID overrides, actions) and what its last periodic check found (worst ' +
    'nodes, recent XIDs, actions taken). Reads only.',
  inputSchema: toolArguments({ name: objectName('name').describe('The GPUHealthPolicy name') }),
  outputSchema: z.object({
    name: z.string(),
    spec: z.record(z.string(), z.unknown()),
    conditions: z.array(z.object({ type: z.string(), status: z.string(), reason: z.string(), message: z.string() })),
    lastCheckTime: z.string().optional(),
    nodes: z.record(z.string(), z.number()),
    worstNodes: z.array(z.object({ name: z.string(), status: z.string(), score: z.number().optional(), message: z.string().optional() })),
    recentXids: z.array(
      z.object({
        node: z.string(),
        xid: z.number(),
        name: z.string().optional(),
        count: z.number(),
        severity: z.string().optional(),
        action: z.string().optional(),
      }),
    ),
    actions: z.record(z.string(), z.unknown()).optional(),
    resource: z.string(),
  }),
  annotations: READ_ONLY,
  readOnly: true,
  async handler(args, ctx) {
    const p = await getPolicy(ctx, args.name);
    const status = p.status ?? {};
    const conditions = (status.conditions ?? []).map((c) => ({ type: c.type, status: c.status, reason: c.reason, message: c.message }));
    const nodes = Object.fromEntries(Object.entries(status.nodes ?? {}).filter((e): e is [string, number] => typeof e[1] === 'number'));
    const worstNodes = (status.worstNodes ?? []).map((n) => ({
      name: n.name,
      status: n.status,
      ...(n.score !== undefined ? { score: n.score } : {}),
      ...(n.message !== undefined ? { message: n.message } : {}),
    }));
    const recentXids = (status.recentXids ?? []).map((x) => ({
      node: x.node,
      xid: x.xid,
      ...(x.name !== undefined ? { name: x.name } : {}),
      count: x.count,
      ...(x.severity !== undefined ? { severity: x.severity } : {}),
      ...(x.action !== undefined ? { action: x.action } : {}),
    }));
    const spec: Record<string, unknown> = { ...p.spec };
    const text = [
      `GPUHealthPolicy ${args.name}: checks ${(p.spec.checks ?? ['health', 'xid']).join(', ')} every ` +
        `${p.spec.interval ?? 'default interval'}${p.spec.suspend === true ? ' (suspended)' : ''}.`,
      status.lastCheckTime === undefined
        ? 'Not checked yet.'
        : `Last check ${status.lastCheckTime}: ${nodes['governed'] ?? 0} node(s) governed, ${nodes['critical'] ?? 0} critical, ` +
          `${nodes['degraded'] ?? 0} degraded.`,
      ...conditions.map((c) => `${c.type}=${c.status} (${c.reason}): ${c.message}`),
      ...worstNodes.slice(0, 10).map((n) => `- ${n.name}: ${n.status}${n.score === undefined ? '' : ` (score ${n.score})`}`),
    ].join('\n');
    return {
      structured: {
        name: args.name,
        spec,
        conditions,
        ...(status.lastCheckTime !== undefined ? { lastCheckTime: status.lastCheckTime } : {}),
        nodes,
        worstNodes,
        recentXids,
        ...(status.actions !== undefined ? { actions: { ...status.actions } } : {}),
        resource: `gpudiag://policies/${args.name}`,
      },
      text,
    };
  },
});

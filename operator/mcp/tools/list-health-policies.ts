/** list_health_policies: every GPUHealthPolicy with what its last check found (reads only). */
import { z } from 'zod';
import { toolArguments } from '../arguments.js';
import { listPolicies } from '../policies.js';
import { READ_ONLY, defineTool } from '../tool.js';

/** The list_health_policies tool. */
export const listHealthPoliciesTool = defineTool({
  name: 'list_health_policies',
  title: 'List GPU health policies',
  description:
    'List the GPUHealthPolicies (cluster-scoped): interval, checks, suspended or not, and the governed node counts at their ' +
    'last check. Reads only.',
  inputSchema: toolArguments({}),
  outputSchema: z.object({
    policies: z.array(
      z.object({
        name: z.string(),
        interval: z.string().optional(),
        suspend: z.boolean(),
        checks: z.array(z.string()),
        ready: z.string().describe('status of the Ready condition (True, False, Unknown)'),
        healthy: z.string().describe('status of the Healthy condition'),
        lastCheckTime: z.string().optional(),
        nodes: z.object({ governed: z.number(), healthy: z.number(), degraded: z.number(), critical: z.number(), unknown: z.number() }),
        resource: z.string(),
      }),
    ),
  }),
  annotations: READ_ONLY,
  readOnly: true,
  async handler(_args, ctx) {
    const policies = (await listPolicies(ctx)).map((p) => {
      const cond = (type: string): string => p.status?.conditions?.find((c) => c.type === type)?.status ?? 'Unknown';
      const n = p.status?.nodes ?? {};
      const name = p.metadata.name ?? '';
      return {
        name,
        ...(p.spec.interval !== undefined ? { interval: p.spec.interval } : {}),
        suspend: p.spec.suspend === true,
        checks: p.spec.checks ?? ['health', 'xid'],
        ready: cond('Ready'),
        healthy: cond('Healthy'),
        ...(p.status?.lastCheckTime !== undefined ? { lastCheckTime: p.status.lastCheckTime } : {}),
        nodes: {
          governed: n.governed ?? 0,
          healthy: n.healthy ?? 0,
          degraded: n.degraded ?? 0,
          critical: n.critical ?? 0,
          unknown: n.unknown ?? 0,
        },
        resource: `gpudiag://policies/${name}`,
      };
    });
    const text = [
      `${policies.length} GPUHealthPolicy object(s).`,
      ...policies.map(
        (p) =>
          `- ${p.name}: every ${p.interval ?? 'default interval'}${p.suspend ? ' (suspended)' : ''}; ${p.nodes.governed} ` +
          `node(s) governed, ${p.nodes.critical} critical, ${p.nodes.degraded} degraded; Healthy=${p.healthy}`,
      ),
    ].join('\n');
    return { structured: { policies }, text };
  },
});

/** list_diagnostics: GPUDiagnostics of a namespace (or all), newest first (reads only). */
import { z } from 'zod';
import { toolArguments } from '../arguments.js';
import { CREATED_BY_LABEL, REQUESTED_BY_ANNOTATION } from '../diagnostics.js';
import { READ_ONLY, defineTool } from '../tool.js';
import { diagnosticUri } from '../views.js';
import { limitArg, listDiagnostics, namespaceArg, namespaceOf } from './common.js';

/** The list_diagnostics tool. */
export const listDiagnosticsTool = defineTool({
  name: 'list_diagnostics',
  title: 'List GPU diagnostics',
  description: 'List GPUDiagnostics, newest first, with phase, requester and totals. Reads only.',
  inputSchema: toolArguments({
    namespace: namespaceArg,
    allNamespaces: z
      .boolean({ error: 'allNamespaces must be true or false' })
      .optional()
      .describe('List every namespace (needs cluster-wide list rights)'),
    createdByMcp: z.boolean({ error: 'createdByMcp must be true or false' }).optional().describe('Only diagnostics created through MCP'),
    limit: limitArg(50, 500),
  }),
  outputSchema: z.object({
    diagnostics: z.array(
      z.object({
        namespace: z.string(),
        name: z.string(),
        phase: z.string(),
        createdAt: z.string().optional(),
        completedAt: z.string().optional(),
        requestedBy: z.string().optional(),
        createdByMcp: z.boolean(),
        checks: z.array(z.string()),
        nodesTargeted: z.number(),
        critical: z.number(),
        degraded: z.number(),
        minScore: z.number().optional(),
        resource: z.string(),
      }),
    ),
    omitted: z.number(),
  }),
  annotations: READ_ONLY,
  readOnly: true,
  async handler(args, ctx) {
    const namespace = args.allNamespaces === true ? undefined : namespaceOf(args, ctx);
    const all = await listDiagnostics(ctx, namespace, args.createdByMcp === true ? `${CREATED_BY_LABEL}=mcp` : undefined);
    const limit = args.limit ?? 50;
    const diagnostics = all.slice(0, limit).map((d) => {
      const s = d.status?.summary;
      const ns = d.metadata.namespace ?? '';
      const name = d.metadata.name ?? '';
      const requestedBy = d.metadata.annotations?.[REQUESTED_BY_ANNOTATION];
      const created = d.metadata.creationTimestamp?.toString();
      return {
        namespace: ns,
        name,
        phase: d.status?.phase ?? 'Pending',
        ...(created !== undefined ? { createdAt: created } : {}),
        ...(d.status?.completionTime !== undefined ? { completedAt: d.status.completionTime } : {}),
        ...(requestedBy !== undefined ? { requestedBy } : {}),
        createdByMcp: d.metadata.labels?.[CREATED_BY_LABEL] === 'mcp',
        checks: d.spec.checks ?? ['health', 'xid'],
        nodesTargeted: s?.nodesTargeted ?? 0,
        critical: s?.nodesByStatus?.critical ?? 0,
        degraded: s?.nodesByStatus?.degraded ?? 0,
        ...(s?.minScore !== undefined ? { minScore: s.minScore } : {}),
        resource: diagnosticUri(ns, name),
      };
    });
    const text = [
      `${all.length} GPUDiagnostic(s) in ` +
        `${namespace === undefined ? 'all namespaces' : `namespace ${namespace}`}` +
        `${diagnostics.length < all.length ? ` (newest ${diagnostics.length} listed)` : ''}.`,
      ...diagnostics
        .slice(0, 20)
        .map(
          (d) =>
            `- ${d.namespace}/${d.name}: ${d.phase}, ${d.nodesTargeted} node(s), ${d.critical} critical, ${d.degraded} ` +
            `degraded${d.requestedBy === undefined ? '' : `, by ${d.requestedBy}`}`,
        ),
    ].join('\n');
    return { structured: { diagnostics, omitted: all.length - diagnostics.length }, text };
  },
});

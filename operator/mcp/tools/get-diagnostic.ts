/** get_diagnostic: one GPUDiagnostic, summarised worst first (reads only). */
import { z } from 'zod';
import { objectName, toolArguments } from '../arguments.js';
import { CREATED_BY_LABEL, REQUESTED_BY_ANNOTATION, getDiagnostic } from '../diagnostics.js';
import { READ_ONLY, defineTool } from '../tool.js';
import {
  UNTRUSTED_NOTE,
  diagnosticRef,
  diagnosticRefSchema,
  nodeSchema,
  nodesView,
  summaryLine,
  summarySchema,
  summaryView,
  untrustedSchema,
  worstNodeLines,
  xidSchema,
  xidView,
} from '../views.js';
import { limitArg, namespaceArg, namespaceOf } from './common.js';

/** The get_diagnostic tool. */
export const getDiagnosticTool = defineTool({
  name: 'get_diagnostic',
  title: 'Get a GPU diagnostic',
  description:
    'Read one GPUDiagnostic: its phase and conditions, totals, the worst nodes and XID events. Reads only. The full object is ' +
    'the resource gpudiag://diagnostics/{namespace}/{name}.',
  inputSchema: toolArguments({
    name: objectName('name').describe('The GPUDiagnostic name'),
    namespace: namespaceArg,
    limit: limitArg(20, 200),
  }),
  outputSchema: z.object({
    diagnostic: diagnosticRefSchema,
    spec: z.object({
      checks: z.array(z.string()),
      nodeNames: z.array(z.string()).optional(),
      nodeSelector: z.record(z.string(), z.string()).optional(),
      policy: z.string().optional(),
    }),
    createdByMcp: z.boolean(),
    requestedBy: z.string().optional(),
    conditions: z.array(z.object({ type: z.string(), status: z.string(), reason: z.string(), message: z.string() })),
    summary: summarySchema,
    nodes: z.array(nodeSchema),
    nodesOmitted: z.number(),
    xidEvents: z.array(xidSchema),
    untrusted: untrustedSchema,
  }),
  annotations: READ_ONLY,
  readOnly: true,
  async handler(args, ctx) {
    const d = await getDiagnostic(ctx, namespaceOf(args, ctx), args.name);
    const finished = d.status?.phase === 'Completed' || d.status?.phase === 'Failed';
    const ref = diagnosticRef(d, finished);
    const summary = summaryView(d);
    const limit = args.limit ?? 20;
    const { nodes, nodesOmitted } = nodesView(d, limit);
    const { events, untrusted } = xidView(d, {}, limit * 5);
    const requestedBy = d.metadata.annotations?.[REQUESTED_BY_ANNOTATION];
    const conditions = (d.status?.conditions ?? []).map((c) => ({ type: c.type, status: c.status, reason: c.reason, message: c.message }));
    const spec = {
      checks: d.spec.checks ?? ['health', 'xid'],
      ...(d.spec.nodeNames !== undefined ? { nodeNames: d.spec.nodeNames } : {}),
      ...(d.spec.nodeSelector?.matchLabels !== undefined ? { nodeSelector: d.spec.nodeSelector.matchLabels } : {}),
      ...(d.spec.policyRef !== undefined ? { policy: d.spec.policyRef.name } : {}),
    };
    const worst = worstNodeLines(nodes);
    const text = [
      `GPUDiagnostic ${ref.namespace}/${ref.name} ${ref.phase} (checks ` +
        `${spec.checks.join(', ')}${requestedBy === undefined ? '' : `; requested by ${requestedBy}`}): ${summaryLine(summary)}.`,
      ...conditions.filter((c) => c.type === 'Healthy' || c.type === 'Stalled').map((c) => `${c.type}=${c.status}: ${c.message}`),
      ...(worst.length > 0 ? ['Worst nodes:', ...worst] : []),
      ...(untrusted.kernelMessages.length > 0 ? [UNTRUSTED_NOTE] : []),
    ].join('\n');
    return {
      structured: {
        diagnostic: ref,
        spec,
        createdByMcp: d.metadata.labels?.[CREATED_BY_LABEL] === 'mcp',
        ...(requestedBy !== undefined ? { requestedBy } : {}),
        conditions,
        summary,
        nodes,
        nodesOmitted,
        xidEvents: events,
        untrusted,
      },
      text,
    };
  },
});

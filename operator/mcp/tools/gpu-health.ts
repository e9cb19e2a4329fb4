/** gpu_health: a fresh health check of the selected nodes (creates a GPUDiagnostic). */
import { z } from 'zod';
import { toolArguments } from '../arguments.js';
import { createAndWait } from '../create-and-wait.js';
import { CREATES_DIAGNOSTIC, defineTool } from '../tool.js';
import {
  diagnosticRef,
  diagnosticRefSchema,
  nodeSchema,
  nodesView,
  summaryLine,
  summarySchema,
  summaryView,
  unfinishedLine,
  worstNodeLines,
} from '../views.js';
import { limitArg, namespaceArg, namespaceOf, policyArg, selectionShape, selectionSpec, waitArg, waitOf } from './common.js';

/** The gpu_health tool. */
export const gpuHealthTool = defineTool({
  name: 'gpu_health',
  title: 'GPU health',
  description:
    'Check GPU health now (ECC, thermal, power, NVLink, PCIe, XID errors) on the selected nodes, or every node with an agent. ' +
    'Creates a GPUDiagnostic as you (auditable, deleted an hour after it finishes), waits for it with progress, and returns the ' +
    'totals and the worst nodes first.',
  inputSchema: toolArguments({
    ...selectionShape,
    policy: policyArg,
    namespace: namespaceArg,
    waitSeconds: waitArg,
    limit: limitArg(20, 200),
  }),
  outputSchema: z.object({ diagnostic: diagnosticRefSchema, summary: summarySchema, nodes: z.array(nodeSchema), nodesOmitted: z.number() }),
  annotations: CREATES_DIAGNOSTIC,
  readOnly: false,
  async handler(args, ctx) {
    const { diagnostic, finished } = await createAndWait(ctx, {
      tool: 'gpu_health',
      namespace: namespaceOf(args, ctx),
      spec: {
        ...selectionSpec(args),
        checks: ['health', 'xid'],
        ...(args.policy !== undefined ? { policyRef: { name: args.policy } } : {}),
      },
      waitSeconds: waitOf(args, ctx),
    });
    const ref = diagnosticRef(diagnostic, finished);
    const summary = summaryView(diagnostic);
    const { nodes, nodesOmitted } = nodesView(diagnostic, args.limit ?? 20);
    const worst = worstNodeLines(nodes);
    const stalled =
      diagnostic.status?.phase === 'Failed'
        ? `\nFailed: ${diagnostic.status.conditions?.find((c) => c.type === 'Stalled')?.message ?? 'see the diagnostic'}`
        : '';
    const text =
      [
        `GPU health (GPUDiagnostic ${ref.namespace}/${ref.name}): ${summaryLine(summary)}.`,
        ...(worst.length > 0 ? ['Worst nodes:', ...worst] : ['No unhealthy node.']),
      ].join('\n') +
      stalled +
      unfinishedLine(ref);
    return { structured: { diagnostic: ref, summary, nodes, nodesOmitted }, text };
  },
});

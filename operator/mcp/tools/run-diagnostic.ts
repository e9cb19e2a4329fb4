/** run_diagnostic: any checks on any node selection (creates a GPUDiagnostic). */
import { z } from 'zod';
import { CHECKS, lookbackFromSince, since, toolArguments } from '../arguments.js';
import { createAndWait } from '../create-and-wait.js';
import { CREATES_DIAGNOSTIC, defineTool } from '../tool.js';
import {
  UNTRUSTED_NOTE,
  diagnosticRef,
  diagnosticRefSchema,
  nodeSchema,
  nodesView,
  summaryLine,
  summarySchema,
  summaryView,
  unfinishedLine,
  untrustedSchema,
  worstNodeLines,
  xidSchema,
  xidView,
} from '../views.js';
import { limitArg, namespaceArg, namespaceOf, policyArg, selectionShape, selectionSpec, waitArg, waitOf } from './common.js';

const checks = z
  .array(z.enum(CHECKS, { error: `checks[] must be one of ${CHECKS.join(', ')}` }), { error: 'checks must be an array of check names' })
  .min(1, { error: 'checks must name at least one check' })
  .max(CHECKS.length, { error: `checks may name at most ${CHECKS.length} checks` })
  .refine((c) => new Set(c).size === c.length, { error: 'checks must not repeat a check' });

/** The run_diagnostic tool. */
export const runDiagnosticTool = defineTool({
  name: 'run_diagnostic',
  title: 'Run a GPU diagnostic',
  description:
    'Create a GPUDiagnostic as you with the chosen checks (inventory, health, xid, ecc, thermal, power, nvlink, pcie, ' +
    'processes) on the selected nodes (names and/or labels; neither = every node with an agent), wait for it with progress, and ' +
    'return totals, the worst nodes and XID events. Cancelling the call deletes the diagnostic.',
  inputSchema: toolArguments({
    checks: checks.optional().describe('Checks to run (default health and xid)'),
    ...selectionShape,
    policy: policyArg,
    xidSince: since.optional().describe('XID lookback: RFC 3339 time or Go duration (default 1h; at most 720h)'),
    timeoutSeconds: z
      .number({ error: 'timeoutSeconds must be a number' })
      .int({ error: 'timeoutSeconds must be an integer' })
      .min(1, { error: 'timeoutSeconds must be at least 1' })
      .max(3600, { error: 'timeoutSeconds must be at most 3600' })
      .optional()
      .describe('Deadline of the whole diagnostic (default 60)'),
    namespace: namespaceArg,
    waitSeconds: waitArg,
    limit: limitArg(20, 200),
  }),
  outputSchema: z.object({
    diagnostic: diagnosticRefSchema,
    summary: summarySchema,
    nodes: z.array(nodeSchema),
    nodesOmitted: z.number(),
    xidEvents: z.array(xidSchema),
    untrusted: untrustedSchema,
  }),
  annotations: CREATES_DIAGNOSTIC,
  readOnly: false,
  async handler(args, ctx) {
    const lookback = args.xidSince === undefined ? undefined : lookbackFromSince(args.xidSince, ctx.now()).lookback;
    const { diagnostic, finished } = await createAndWait(ctx, {
      tool: 'run_diagnostic',
      namespace: namespaceOf(args, ctx),
      spec: {
        ...selectionSpec(args),
        ...(args.checks !== undefined ? { checks: args.checks } : {}),
        ...(lookback !== undefined ? { xidLookback: lookback } : {}),
        ...(args.policy !== undefined ? { policyRef: { name: args.policy } } : {}),
        ...(args.timeoutSeconds !== undefined ? { timeoutSeconds: args.timeoutSeconds } : {}),
      },
      waitSeconds: waitOf(args, ctx),
    });
    const ref = diagnosticRef(diagnostic, finished);
    const summary = summaryView(diagnostic);
    const limit = args.limit ?? 20;
    const { nodes, nodesOmitted } = nodesView(diagnostic, limit);
    const { events, untrusted } = xidView(diagnostic, {}, limit * 5);
    const worst = worstNodeLines(nodes);
    const failed =
      diagnostic.status?.phase === 'Failed'
        ? [`Failed: ${diagnostic.status.conditions?.find((c) => c.type === 'Stalled')?.message ?? 'see the diagnostic'}`]
        : [];
    const text =
      [
        `GPUDiagnostic ${ref.namespace}/${ref.name} ${ref.phase}: ${summaryLine(summary)}; ${summary.xidEvents} XID event(s).`,
        ...failed,
        ...(worst.length > 0 ? ['Worst nodes:', ...worst] : []),
        ...(untrusted.kernelMessages.length > 0 ? [UNTRUSTED_NOTE] : []),
      ].join('\n') + unfinishedLine(ref);
    return { structured: { diagnostic: ref, summary, nodes, nodesOmitted, xidEvents: events, untrusted }, text };
  },
});

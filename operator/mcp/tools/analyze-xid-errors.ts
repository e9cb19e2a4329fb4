/** analyze_xid_errors: recent XID errors on the selected nodes (creates a GPUDiagnostic with the xid check). */
import { z } from 'zod';
import { lookbackFromSince, nodeNames, severity, since, toolArguments } from '../arguments.js';
import { createAndWait } from '../create-and-wait.js';
import { CREATES_DIAGNOSTIC, defineTool } from '../tool.js';
import {
  UNTRUSTED_NOTE,
  diagnosticRef,
  diagnosticRefSchema,
  summarySchema,
  summaryView,
  unfinishedLine,
  untrustedSchema,
  xidSchema,
  xidView,
} from '../views.js';
import { limitArg, namespaceArg, namespaceOf, policyArg, waitArg, waitOf } from './common.js';

/** The analyze_xid_errors tool. */
export const analyzeXidErrorsTool = defineTool({
  name: 'analyze_xid_errors',
  title: 'Analyze XID errors',
  description:
    'Find NVIDIA XID errors in the kernel logs of the selected nodes (or every node with an agent) since a time, deduplicated, ' +
    'with catalog name, severity and recommended action, worst first. Creates a GPUDiagnostic with the xid check as you and ' +
    'waits for it. Kernel message text is returned under untrusted.',
  inputSchema: toolArguments({
    nodes: nodeNames('nodes').optional().describe('Node names (RFC 1123); default every node with an agent'),
    since: since.optional().describe('RFC 3339 time or Go duration back from now (default 24h; at most 720h)'),
    minimumSeverity: severity('minimumSeverity')
      .optional()
      .describe('Leave out events below this severity (info, warning, critical; default info)'),
    policy: policyArg,
    namespace: namespaceArg,
    waitSeconds: waitArg,
    limit: limitArg(50, 500),
  }),
  outputSchema: z.object({
    diagnostic: diagnosticRefSchema,
    summary: summarySchema,
    since: z.string(),
    codes: z.record(z.string(), z.number()).describe('occurrences by XID code'),
    events: z.array(xidSchema),
    eventsOmitted: z.number(),
    untrusted: untrustedSchema,
  }),
  annotations: CREATES_DIAGNOSTIC,
  readOnly: false,
  async handler(args, ctx) {
    const { lookback, cutoff } = lookbackFromSince(args.since ?? '24h', ctx.now());
    const { diagnostic, finished } = await createAndWait(ctx, {
      tool: 'analyze_xid_errors',
      namespace: namespaceOf(args, ctx),
      spec: {
        ...(args.nodes !== undefined ? { nodeNames: args.nodes } : {}),
        checks: ['xid'],
        xidLookback: lookback,
        ...(args.policy !== undefined ? { policyRef: { name: args.policy } } : {}),
      },
      waitSeconds: waitOf(args, ctx),
    });
    const ref = diagnosticRef(diagnostic, finished);
    const { events, eventsOmitted, untrusted } = xidView(
      diagnostic,
      { nodes: args.nodes, minimumSeverity: args.minimumSeverity },
      args.limit ?? 50,
    );
    const codes: Record<string, number> = {};
    for (const e of events) codes[String(e.xid)] = (codes[String(e.xid)] ?? 0) + e.count;
    const lines = events
      .slice(0, 15)
      .map(
        (e) =>
          `- ${e.node}: XID ${e.xid} ${e.name ?? ''} ×${e.count} ` +
          `[${e.severity ?? '?'}]${e.gpu === undefined ? '' : ` on ${e.gpu}`} — ${e.action ?? ''}`,
      );
    const text =
      [
        `XID errors since ${cutoff.toISOString()} (GPUDiagnostic ${ref.namespace}/${ref.name}): ` +
          `${events.length + eventsOmitted} event(s) on ${new Set(events.map((e) => e.node)).size} ` +
          `node(s)${args.minimumSeverity === undefined ? '' : `, severity ≥ ${args.minimumSeverity}`}.`,
        ...lines,
        ...(events.length > lines.length ? [`(${events.length - lines.length} more in structured output)`] : []),
        ...(untrusted.kernelMessages.length > 0
          ? [`Kernel messages: ${untrusted.kernelMessages.length} in structured output. ${UNTRUSTED_NOTE}`]
          : []),
      ].join('\n') + unfinishedLine(ref);
    return {
      structured: {
        diagnostic: ref,
        summary: summaryView(diagnostic),
        since: cutoff.toISOString(),
        codes,
        events,
        eventsOmitted,
        untrusted,
      },
      text,
    };
  },
});

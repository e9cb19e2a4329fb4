/** gpu_inventory: the GPUs of the selected nodes (creates a GPUDiagnostic with the inventory check). */
import { z } from 'zod';
import { toolArguments } from '../arguments.js';
import { createAndWait } from '../create-and-wait.js';
import { CREATES_DIAGNOSTIC, defineTool } from '../tool.js';
import { diagnosticRef, diagnosticRefSchema, nodesView, summaryLine, summarySchema, summaryView, unfinishedLine } from '../views.js';
import { limitArg, namespaceArg, namespaceOf, selectionShape, selectionSpec, waitArg, waitOf } from './common.js';

const inventoryNode = z.object({
  name: z.string(),
  result: z.string(),
  gpuCount: z.number().optional(),
  gpus: z.array(z.object({ index: z.number(), uuid: z.string().optional(), name: z.string().optional(), pciBusId: z.string().optional() })),
  gpusOmitted: z.number(),
  message: z.string().optional(),
});

/** The gpu_inventory tool. */
export const gpuInventoryTool = defineTool({
  name: 'gpu_inventory',
  title: 'GPU inventory',
  description:
    'List the GPUs (index, model, UUID, PCI bus id) of the selected nodes, or every node with an agent. Creates a GPUDiagnostic ' +
    'with the inventory check as you and waits for it. Large fleets list per-GPU detail only for the first nodes; the diagnostic ' +
    'holds the rest.',
  inputSchema: toolArguments({ ...selectionShape, namespace: namespaceArg, waitSeconds: waitArg, limit: limitArg(50, 200) }),
  outputSchema: z.object({
    diagnostic: diagnosticRefSchema,
    summary: summarySchema,
    models: z.record(z.string(), z.number()),
    nodes: z.array(inventoryNode),
    nodesOmitted: z.number(),
  }),
  annotations: CREATES_DIAGNOSTIC,
  readOnly: false,
  async handler(args, ctx) {
    const { diagnostic, finished } = await createAndWait(ctx, {
      tool: 'gpu_inventory',
      namespace: namespaceOf(args, ctx),
      spec: { ...selectionSpec(args), checks: ['inventory'] },
      waitSeconds: waitOf(args, ctx),
    });
    const ref = diagnosticRef(diagnostic, finished);
    const summary = summaryView(diagnostic);
    const { nodes, nodesOmitted } = nodesView(diagnostic, args.limit ?? 50);
    const models: Record<string, number> = {};
    const listed = nodes.map((n) => {
      for (const g of n.gpus) models[g.name ?? 'unknown model'] = (models[g.name ?? 'unknown model'] ?? 0) + 1;
      return {
        name: n.name,
        result: n.result,
        ...(n.gpuCount !== undefined ? { gpuCount: n.gpuCount } : {}),
        gpus: n.gpus.map((g) => ({
          index: g.index,
          ...(g.uuid !== undefined ? { uuid: g.uuid } : {}),
          ...(g.name !== undefined ? { name: g.name } : {}),
          ...(g.pciBusId !== undefined ? { pciBusId: g.pciBusId } : {}),
        })),
        gpusOmitted: n.gpusOmitted,
        ...(n.result !== 'Succeeded' && n.message !== undefined ? { message: n.message } : {}),
      };
    });
    const lines = listed
      .slice(0, 20)
      .map(
        (n) =>
          `- ${n.name}: ` +
          (n.result === 'Succeeded'
            ? `${n.gpuCount ?? n.gpus.length} GPU(s) ${[...new Set(n.gpus.map((g) => g.name ?? '?'))].join(', ')}`
            : `${n.result}${n.message === undefined ? '' : ` — ${n.message}`}`),
      );
    const text =
      [
        `GPU inventory (GPUDiagnostic ${ref.namespace}/${ref.name}): ${summaryLine(summary)}.`,
        ...lines,
        ...(listed.length > lines.length || nodesOmitted > 0
          ? [`(${listed.length - lines.length + nodesOmitted} more node(s) in structured output or the diagnostic)`]
          : []),
      ].join('\n') + unfinishedLine(ref);
    return { structured: { diagnostic: ref, summary, models, nodes: listed, nodesOmitted }, text };
  },
});

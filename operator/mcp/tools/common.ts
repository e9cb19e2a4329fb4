/** Argument and output pieces shared by several tools. */
import { z } from 'zod';
import { GPU_DIAGNOSTICS, type GPUDiagnostic, type GPUDiagnosticSpec } from '../../../api/index.js';
import { describeErrors, validateGPUDiagnostic } from '../../../api/validation.js';
import { matchLabels, namespaceName, nodeNames, objectName, waitSeconds } from '../arguments.js';
import { diagnosticsPath } from '../diagnostics.js';
import { ToolError, toToolError } from '../errors.js';
import type { ToolContext } from '../tool.js';

/** `namespace`: where the GPUDiagnostic is created or read (default: the server's namespace). */
export const namespaceArg = namespaceName().optional().describe("Namespace of the GPUDiagnostic (default: the server's namespace)");
/** `waitSeconds`: how long to wait for the diagnostic before answering with its progress. */
export const waitArg = waitSeconds.optional().describe('Seconds to wait for the diagnostic to finish (default 120; at most 600)');
/** `limit`: how many entries to return (worst first). */
export function limitArg(defaultValue: number, max: number): z.ZodOptional<z.ZodNumber> {
  return z
    .number({ error: 'limit must be a number' })
    .int({ error: 'limit must be an integer' })
    .min(1, { error: 'limit must be at least 1' })
    .max(max, { error: `limit must be at most ${max}` })
    .optional()
    .describe(`How many entries to return, worst first (default ${defaultValue}, at most ${max})`);
}

/** Node selection: names and/or labels (a node must match both); neither means every node with an agent. */
export const selectionShape = {
  nodeNames: nodeNames().optional().describe('Node names to diagnose (RFC 1123)'),
  nodeSelector: matchLabels.optional().describe('Node labels that must all match, e.g. {"gpudiag.io/pool": "training"}'),
};

/** `policy`: a GPUHealthPolicy whose thresholds apply. */
export const policyArg = objectName('policy')
  .optional()
  .describe('Name of a GPUHealthPolicy whose thresholds and XID rules apply (default: built-in thresholds)');

/** The namespace a call works in. */
export function namespaceOf(args: { namespace?: string | undefined }, ctx: ToolContext): string {
  return args.namespace ?? ctx.settings.namespace;
}

/** The wait of a call. */
export function waitOf(args: { waitSeconds?: number | undefined }, ctx: ToolContext): number {
  return args.waitSeconds ?? ctx.settings.defaultWaitSeconds;
}

/** The spec fields for a node selection. */
export function selectionSpec(args: {
  nodeNames?: string[] | undefined;
  nodeSelector?: Record<string, string> | undefined;
}): GPUDiagnosticSpec {
  return {
    ...(args.nodeNames !== undefined ? { nodeNames: args.nodeNames } : {}),
    ...(args.nodeSelector !== undefined && Object.keys(args.nodeSelector).length > 0
      ? { nodeSelector: { matchLabels: args.nodeSelector } }
      : {}),
  };
}

/** GPUDiagnostics in one namespace (or all), as the caller, newest first. */
export async function listDiagnostics(ctx: ToolContext, namespace: string | undefined, labelSelector?: string): Promise<GPUDiagnostic[]> {
  const path =
    namespace === undefined
      ? `/apis/${GPU_DIAGNOSTICS.group}/${GPU_DIAGNOSTICS.version}/${GPU_DIAGNOSTICS.plural}`
      : diagnosticsPath(namespace);
  let list: { items?: unknown[] };
  try {
    list = await ctx.kube.request<{ items?: unknown[] }>({ method: 'GET', path, query: { labelSelector }, signal: ctx.signal });
  } catch (err) {
    throw toToolError(err, { verb: 'list', resource: GPU_DIAGNOSTICS.plural, namespace }, ctx.kube.identity);
  }
  const items = (list.items ?? []).map((raw, i) => {
    const result = validateGPUDiagnostic(raw);
    if (!result.ok) throw new ToolError(`GPUDiagnostic #${i} does not match its schema: ${describeErrors(result.errors)}`);
    return result.value;
  });
  const time = (d: GPUDiagnostic): number => Date.parse(d.status?.completionTime ?? d.metadata.creationTimestamp?.toString() ?? '') || 0;
  return items.sort((a, b) => time(b) - time(a));
}

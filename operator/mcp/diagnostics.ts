/**
 * GPUDiagnostics as the facade sees them: the labels and annotation it puts on the ones it
 * creates, their API paths, and schema-checked reads as the caller.
 */
import { GPU_DIAGNOSTICS, type GPUDiagnostic } from '../../api/index.js';
import { validateGPUDiagnostic, describeErrors } from '../../api/validation.js';
import { ToolError, toToolError } from './errors.js';
import type { ToolContext } from './tool.js';

/** Label on every GPUDiagnostic the facade creates. */
export const CREATED_BY_LABEL = 'gpudiag.io/created-by';
/** Label naming the tool that created the GPUDiagnostic. */
export const TOOL_LABEL = 'gpudiag.io/mcp-tool';
/** Annotation holding the caller's identity. */
export const REQUESTED_BY_ANNOTATION = 'gpudiag.io/requested-by';

import { diagnosticsPath } from '../../api/paths.js';

export { diagnosticsPath };

/** Checks an object read from the API (an answer or a watch event) against the CRD schema. */
export function checkedDiagnostic(raw: unknown, namespace: string, name: string): GPUDiagnostic {
  const checked = validateGPUDiagnostic(raw);
  if (!checked.ok) throw new ToolError(`GPUDiagnostic ${namespace}/${name} does not match its schema: ${describeErrors(checked.errors)}`);
  return checked.value;
}

/** Reads one GPUDiagnostic as the caller and checks it against the CRD schema. */
export async function getDiagnostic(
  ctx: ToolContext,
  namespace: string,
  name: string,
  signal: AbortSignal = ctx.signal,
): Promise<GPUDiagnostic> {
  let raw: unknown;
  try {
    raw = await ctx.kube.request<unknown>({ method: 'GET', path: diagnosticsPath(namespace, name), signal });
  } catch (err) {
    throw toToolError(err, { verb: 'get', resource: GPU_DIAGNOSTICS.plural, namespace, name }, ctx.kube.identity);
  }
  return checkedDiagnostic(raw, namespace, name);
}

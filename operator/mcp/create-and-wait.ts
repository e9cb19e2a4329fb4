/**
 * Fresh data through the API: the facade creates a GPUDiagnostic as the caller (labelled as
 * created by MCP, the caller's identity in an annotation), waits for the operator to finish it
 * while reporting nodes completed / targeted, and deletes it when the call is cancelled. When
 * the server shuts down instead, the wait ends with the progress so far and the object stays.
 */
import { API_VERSION, GPU_DIAGNOSTICS, type GPUDiagnostic, type GPUDiagnosticSpec } from '../../api/index.js';
import { errorFields } from '../../lib/logger.js';
import { waitForDiagnostic, type Waited } from './diagnostic-wait.js';
import { CREATED_BY_LABEL, REQUESTED_BY_ANNOTATION, TOOL_LABEL, checkedDiagnostic, diagnosticsPath } from './diagnostics.js';
import { ToolError, toToolError } from './errors.js';
import type { ToolContext } from './tool.js';

/** What to diagnose. */
export interface DiagnosticRequest {
  /** The tool asking (labels the object). */
  tool: string;
  namespace: string;
  spec: GPUDiagnosticSpec;
  /** How long to wait before answering with the progress so far. */
  waitSeconds: number;
}

/** A diagnostic the facade created and waited for. */
export interface WaitedDiagnostic {
  diagnostic: GPUDiagnostic;
  /** False when waitSeconds passed first, or the server is shutting down (the diagnostic keeps running). */
  finished: boolean;
}

async function deleteQuietly(ctx: ToolContext, namespace: string, name: string): Promise<boolean> {
  try {
    await ctx.kube.request({ method: 'DELETE', path: diagnosticsPath(namespace, name), signal: AbortSignal.timeout(10_000) });
    return true;
  } catch (err) {
    ctx.logger.warn('cannot delete a cancelled GPUDiagnostic', { namespace, name, ...errorFields(err) });
    return false;
  }
}

/** Creates a GPUDiagnostic as the caller and waits for it, reporting progress; deletes it if the call is cancelled. */
export async function createAndWait(ctx: ToolContext, req: DiagnosticRequest): Promise<WaitedDiagnostic> {
  if (ctx.settings.readOnly)
    throw new ToolError(`${req.tool} is refused: this gpudiag MCP server is read-only and it would create a GPUDiagnostic`);
  const body = {
    apiVersion: API_VERSION,
    kind: GPU_DIAGNOSTICS.kind,
    metadata: {
      generateName: `mcp-${req.tool.replace(/_/g, '-')}-`,
      labels: { [CREATED_BY_LABEL]: 'mcp', [TOOL_LABEL]: req.tool.replace(/_/g, '-') },
      annotations: { [REQUESTED_BY_ANNOTATION]: ctx.kube.identity.user },
    },
    spec: { ttlSecondsAfterFinished: ctx.settings.ttlSecondsAfterFinished, ...req.spec },
  };
  let answer: { metadata?: { name?: unknown } };
  try {
    answer = await ctx.kube.request({ method: 'POST', path: diagnosticsPath(req.namespace), body, signal: ctx.signal });
  } catch (err) {
    throw toToolError(err, { verb: 'create', resource: GPU_DIAGNOSTICS.plural, namespace: req.namespace }, ctx.kube.identity);
  }
  const name = answer.metadata?.name;
  if (typeof name !== 'string' || name === '') throw new ToolError('the API server created a GPUDiagnostic without a name');
  ctx.logger.info('diagnostic created', { namespace: req.namespace, name, tool: req.tool, caller: ctx.kube.identity.user });

  const cancelled = async (): Promise<never> => {
    const deleted = await deleteQuietly(ctx, req.namespace, name);
    ctx.logger.info('diagnostic cancelled', { namespace: req.namespace, name, deleted });
    throw new ToolError(`cancelled: GPUDiagnostic ${req.namespace}/${name} ${deleted ? 'was deleted' : 'could not be deleted'}`);
  };
  const created = checkedDiagnostic(answer, req.namespace, name);
  let waited: Waited;
  try {
    waited = await waitForDiagnostic(ctx, { namespace: req.namespace, name, created, deadlineMs: Date.now() + req.waitSeconds * 1000 });
  } catch (err) {
    if (ctx.signal.aborted) return cancelled();
    throw err;
  }
  if (waited.end === 'cancelled') return cancelled();
  return { diagnostic: waited.diagnostic, finished: waited.end === 'finished' };
}

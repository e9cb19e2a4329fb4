/**
 * Fresh data through the API: the facade creates a GPUDiagnostic as the caller (labelled as
 * created by MCP, the caller's identity in an annotation), waits for the operator to finish it
 * while reporting nodes completed / targeted, and deletes it when the call is cancelled. When
 * the server shuts down instead, the wait ends with the progress so far and the object stays.
 */
import { API_VERSION, GPU_DIAGNOSTICS, type GPUDiagnostic, type GPUDiagnosticSpec, type GPUDiagnosticStatus } from '../../api/index.js';
import { validateGPUDiagnostic, describeErrors } from '../../api/validation.js';
import { errorFields } from '../../lib/logger.js';
import { ToolError, toToolError } from './errors.js';
import type { ToolContext } from './tool.js';

/** Label on every GPUDiagnostic the facade creates. */
export const CREATED_BY_LABEL = 'gpudiag.io/created-by';
/** Label naming the tool that created the GPUDiagnostic. */
export const TOOL_LABEL = 'gpudiag.io/mcp-tool';
/** Annotation holding the caller's identity. */
export const REQUESTED_BY_ANNOTATION = 'gpudiag.io/requested-by';

/** The API path of GPUDiagnostics in a namespace (or one of them). */
export function diagnosticsPath(namespace: string, name?: string): string {
  const base =
    `/apis/${GPU_DIAGNOSTICS.group}/${GPU_DIAGNOSTICS.version}` + `/namespaces/${encodeURIComponent(namespace)}/${GPU_DIAGNOSTICS.plural}`;
  return name === undefined ? base : `${base}/${encodeURIComponent(name)}`;
}

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
  /** False when waitSeconds passed first (the diagnostic keeps running). */
  finished: boolean;
}

function isFinished(status: GPUDiagnosticStatus | undefined): boolean {
  return status?.phase === 'Completed' || status?.phase === 'Failed';
}

/** First status read after creating a diagnostic; later reads double up to the poll interval. */
const FIRST_POLL_MS = 50;

async function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return;
  await new Promise<void>((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
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
  const checked = validateGPUDiagnostic(raw);
  if (!checked.ok) throw new ToolError(`GPUDiagnostic ${namespace}/${name} does not match its schema: ${describeErrors(checked.errors)}`);
  return checked.value;
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
  let created: { metadata?: { name?: string } };
  try {
    created = await ctx.kube.request({ method: 'POST', path: diagnosticsPath(req.namespace), body, signal: ctx.signal });
  } catch (err) {
    throw toToolError(err, { verb: 'create', resource: GPU_DIAGNOSTICS.plural, namespace: req.namespace }, ctx.kube.identity);
  }
  const name = created.metadata?.name;
  if (name === undefined) throw new ToolError('the API server created a GPUDiagnostic without a name');
  ctx.logger.info('diagnostic created', { namespace: req.namespace, name, tool: req.tool, caller: ctx.kube.identity.user });

  const deadline = Date.now() + req.waitSeconds * 1000;
  let lastReported = -1;
  // Small diagnostics finish in well under a second: poll soon, then back off to the interval.
  let delayMs = Math.min(FIRST_POLL_MS, ctx.settings.pollIntervalMs);
  const cancelled = async (): Promise<never> => {
    const deleted = await deleteQuietly(ctx, req.namespace, name);
    ctx.logger.info('diagnostic cancelled', { namespace: req.namespace, name, deleted });
    throw new ToolError(`cancelled: GPUDiagnostic ${req.namespace}/${name} ${deleted ? 'was deleted' : 'could not be deleted'}`);
  };
  // The server shutting down ends the wait like waitSeconds passing: the diagnostic is kept.
  const wake = AbortSignal.any([ctx.signal, ctx.stopping]);
  for (;;) {
    if (ctx.signal.aborted) return cancelled();
    let current: GPUDiagnostic;
    try {
      current = await getDiagnostic(ctx, req.namespace, name);
    } catch (err) {
      if (ctx.signal.aborted) return cancelled();
      throw err;
    }
    const summary = current.status?.summary;
    const total = summary?.nodesTargeted ?? 0;
    const done = summary?.nodesCompleted ?? 0;
    const finished = isFinished(current.status);
    if (total > 0 && done !== lastReported) {
      lastReported = done;
      await ctx.progress(done, total, `${done}/${total} node(s) diagnosed (${req.namespace}/${name})`);
    }
    if (finished) return { diagnostic: current, finished: true };
    if (Date.now() >= deadline || ctx.stopping.aborted) return { diagnostic: current, finished: false };
    await sleep(Math.min(delayMs, Math.max(deadline - Date.now(), 1)), wake);
    delayMs = Math.min(delayMs * 2, ctx.settings.pollIntervalMs);
  }
}

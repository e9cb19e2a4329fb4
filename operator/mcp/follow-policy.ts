/**
 * How a follower of one GPUDiagnostic (the MCP facade's wait, `gpudiag diagnose`) decides:
 * when the operator is done with it, which refusals no retry fixes, and how long to back off
 * before watching again. Shared so that both followers retry alike.
 */
import type { GPUDiagnostic } from '../../api/index.js';

/** True once the operator is done with it. */
export function isFinished(d: GPUDiagnostic): boolean {
  return d.status?.phase === 'Completed' || d.status?.phase === 'Failed';
}

/** HTTP codes that end a follow at once: unauthorized, forbidden, not found. */
export const FATAL_CODES: ReadonlySet<number> = new Set([401, 403, 404]);

/** The pause before watching again after a failed watch, doubling per failure up to the maximum. */
export const FIRST_BACKOFF_MS = 500;
export const MAX_BACKOFF_MS = 5_000;
/** A watch closed sooner than this counts as failing, so a server that drops watches is not hammered. */
export const MIN_WATCH_MS = 1_000;
/** A watch asks the server to close it after this long at most, so a silently dead connection is replaced. */
export const MAX_WATCH_SECONDS = 300;

/** The HTTP status code an error carries (KubeApiError, client-node's ApiException, a watch's Status), if any. */
export function statusCodeOf(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { statusCode?: unknown; code?: unknown }).statusCode ?? (err as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}

/** Waits `ms`, or less when `signal` aborts first (never rejects). */
export async function pause(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted || ms <= 0) return;
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

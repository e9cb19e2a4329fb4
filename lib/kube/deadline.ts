/**
 * Deadlines for calls to the API server, free of client-node so the agent can use them
 * without loading it.
 */

/** Deadline of one API call when the caller gives none (requests, not watches). */
export const DEFAULT_API_CALL_TIMEOUT_MS = 30_000;

/** A signal that aborts when `signal` does or after `timeoutMs`, whichever comes first. */
export function withTimeout(signal: AbortSignal | undefined, timeoutMs: number): AbortSignal {
  const timeout = AbortSignal.timeout(timeoutMs);
  return signal === undefined ? timeout : AbortSignal.any([signal, timeout]);
}

/** Reading the API server's answer out of client-node's ApiException. */

/** The HTTP status and Status message of a failed client-node call. */
export function apiError(err: unknown): { code: number; message: string } {
  const e = err as { code?: unknown; body?: unknown; message?: unknown };
  if (typeof e.code !== 'number') throw err;
  let message = typeof e.message === 'string' ? e.message : '';
  if (typeof e.body === 'string') {
    try {
      const status = JSON.parse(e.body) as { message?: string };
      message = status.message ?? e.body;
    } catch {
      message = e.body;
    }
  } else if (e.body !== null && typeof e.body === 'object' && typeof (e.body as { message?: unknown }).message === 'string') {
    message = (e.body as { message: string }).message;
  }
  return { code: e.code, message };
}

/** Runs a call that must fail and returns its status code and message. */
export async function expectApiFailure(call: () => Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await call();
  } catch (err) {
    return apiError(err);
  }
  throw new Error('expected the API server to reject the request, but it succeeded');
}

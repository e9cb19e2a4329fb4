/**
 * The one way controllers write status: compute the desired status from the freshest object,
 * skip the write when nothing changed, and on a conflict (another writer got there first)
 * re-read and recompute rather than overwrite what the other writer saw.
 */
import { isDeepStrictEqual } from 'node:util';
import { isConflict } from './errors.js';

/** Status writes retried on conflict before the error goes back to the work queue (backoff). */
export const MAX_STATUS_ATTEMPTS = 5;

/** How to write and re-read one object's status. */
export interface StatusIo<T> {
  /** Replaces status (the body carries the object's resourceVersion, so stale writes get 409). */
  replace(current: T, status: NonNullable<StatusOf<T>>): Promise<unknown>;
  reread(): Promise<T>;
}

type StatusOf<T> = T extends { status?: infer S } ? S : never;

/** Writes `compute(current)` as the status of `obj`; returns the status now in effect. */
export async function writeStatus<T extends { status?: unknown }>(
  obj: T,
  compute: (current: T) => NonNullable<StatusOf<T>>,
  io: StatusIo<T>,
  signal: AbortSignal,
): Promise<NonNullable<StatusOf<T>>> {
  let current = obj;
  for (let attempt = 1; ; attempt++) {
    const desired = compute(current);
    if (isDeepStrictEqual(current.status, desired)) return desired;
    try {
      await io.replace(current, desired);
      return desired;
    } catch (err) {
      if (!isConflict(err) || attempt >= MAX_STATUS_ATTEMPTS) throw err;
      signal.throwIfAborted();
      current = await io.reread();
    }
  }
}

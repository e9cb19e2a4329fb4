/** A bounded-concurrency runner: at most `concurrency` workers in flight, results streamed as they finish. */

/** What a bounded run did; `peakInFlight` never exceeds the concurrency. */
export interface BoundedRunStats {
  started: number;
  completed: number;
  /** Items never started because `signal` aborted first. */
  notStarted: number;
  peakInFlight: number;
}

/** A worker: gets the item, its index and the run's signal (it should settle promptly when it aborts). */
export type BoundedWorker<T, R> = (item: T, index: number, signal: AbortSignal) => Promise<R>;

/** Called as each worker resolves. */
export type ResultCallback<T, R> = (result: R, item: T, index: number) => void;

/**
 * Runs `worker` over `items` with at most `concurrency` in flight, in item order, calling
 * `onResult` as each finishes. When `signal` aborts no further item starts and the run
 * resolves once the in-flight workers settle. A worker that throws stops new starts; the
 * run then rejects with that error (wrapped) after the others settle.
 */
export async function runBounded<T, R>(
  items: readonly T[],
  concurrency: number,
  worker: BoundedWorker<T, R>,
  signal: AbortSignal,
  onResult?: ResultCallback<T, R>,
): Promise<BoundedRunStats> {
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`concurrency must be a positive integer, got ${concurrency}`);
  const stats: BoundedRunStats = { started: 0, completed: 0, notStarted: 0, peakInFlight: 0 };
  let next = 0;
  let inFlight = 0;
  let failure: { error: unknown; index: number } | undefined;

  const lane = async (): Promise<void> => {
    while (next < items.length && !signal.aborted && failure === undefined) {
      const index = next++;
      const item = items[index] as T;
      stats.started += 1;
      inFlight += 1;
      stats.peakInFlight = Math.max(stats.peakInFlight, inFlight);
      try {
        const result = await worker(item, index, signal);
        stats.completed += 1;
        onResult?.(result, item, index);
      } catch (err) {
        failure ??= { error: err, index };
      } finally {
        inFlight -= 1;
      }
    }
  };

  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, lane));
  stats.notStarted = items.length - stats.started;
  if (failure !== undefined) throw new Error(`bounded run: worker for item ${failure.index} failed`, { cause: failure.error });
  return stats;
}

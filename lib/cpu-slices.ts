/**
 * Cooperative time slices for CPU-bound steps that arrive in bursts (a fan-out's answers: parse,
 * validate, score). Sockets that become readable together are all served in one turn of the
 * event loop; doing the heavy step right there stalls timers, probes and leases for as long as
 * the whole burst takes. `run` queues the step instead: queued steps run FIFO, as many as fit in
 * one slice, and the rest wait for the next turn (setImmediate), so no turn holds the loop much
 * longer than a slice.
 */

/**
 * Default length of one slice. What the steps' promise continuations do (e.g. scoring a parsed
 * snapshot) runs after the slice, in the same turn, so a turn takes about twice this.
 */
export const DEFAULT_SLICE_MS = 5;

interface Queued {
  task: () => unknown;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

/** A FIFO of CPU-bound steps run in bounded slices of the event loop. */
export class CpuSlices {
  private readonly queue: Queued[] = [];
  private head = 0;
  private scheduled = false;

  constructor(private readonly sliceMs = DEFAULT_SLICE_MS) {}

  /** Runs `task` in a later slice; resolves with its result (or rejects with what it threw). */
  run<T>(task: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ task, resolve: resolve as (value: unknown) => void, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(this.drain);
      }
    });
  }

  /** Steps waiting for a slice. */
  get pending(): number {
    return this.queue.length - this.head;
  }

  private readonly drain = (): void => {
    const started = performance.now();
    while (this.head < this.queue.length && performance.now() - started < this.sliceMs) {
      const next = this.queue[this.head++] as Queued;
      try {
        next.resolve(next.task());
      } catch (err) {
        next.reject(err);
      }
    }
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
      this.scheduled = false;
    } else {
      setImmediate(this.drain);
    }
  };
}

/** The process's slices: one event loop, one queue. */
export const cpuSlices = new CpuSlices();

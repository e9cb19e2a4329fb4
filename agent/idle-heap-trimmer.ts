/**
 * Trims the agent's heaps once its API has been idle for a while after requests: this thread's
 * through a {@link HeapTrim}, the NVML thread's by asking it to trim its own. An agent answers the
 * operator in bursts (a fan-out, a diagnostic) and then idles, so the pages a burst grew are given
 * back between bursts instead of being held until the next one.
 */
import type { HeapTrim, HeapTrimResult } from '../lib/heap-trim.js';

/** Options of {@link IdleHeapTrimmer}. */
export interface IdleHeapTrimmerOptions {
  /** How long without a request counts as idle; the trim runs between one and two of these after the last request. */
  idleMs: number;
  /** This thread's trim (undefined: only the NVML thread is asked). */
  trim: HeapTrim | undefined;
  /** Asks the NVML thread to trim its heap, saying whether this thread's was just collected (it reports back on its own). */
  trimNvmlThread?: (mainTrimmed: boolean) => void;
  /** A trim of this thread ran. */
  onTrimmed: (result: HeapTrimResult) => void;
}

/** Counts requests and trims once none came for a whole interval after some did. */
export class IdleHeapTrimmer {
  private requests = 0;
  /** `requests` at the last check, and at the last trim. */
  private seenRequests = 0;
  private trimmedRequests = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: IdleHeapTrimmerOptions) {}

  /** One request arrived (called for each: an increment, nothing more). */
  touch(): void {
    this.requests += 1;
  }

  start(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => this.check(), this.options.idleMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One interval passed: trims when it saw no request but the ones before it came after the last trim. */
  check(): void {
    if (this.requests !== this.seenRequests) {
      this.seenRequests = this.requests;
      return;
    }
    if (this.seenRequests === this.trimmedRequests) return;
    this.trimmedRequests = this.seenRequests;
    const result = this.options.trim?.trimIfGrown();
    if (result !== undefined) this.options.onTrimmed(result);
    this.options.trimNvmlThread?.(result !== undefined);
  }
}

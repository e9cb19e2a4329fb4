/**
 * One self-overwriting status line on a terminal (`\r` + erase to the end of the line), for
 * long-running commands. It is silent unless the stream is a TTY, so pipes, files and tests
 * see exactly the output they saw before; updates are throttled so a fast producer costs
 * nothing but a timestamp comparison.
 */
import type { Writable } from 'node:stream';

/** A stream that may be a terminal (process.stderr is a tty.WriteStream when it is one). */
export type MaybeTty = Writable & { readonly isTTY?: boolean; readonly columns?: number };

/** Default minimum time between two redraws. */
export const PROGRESS_INTERVAL_MS = 250;

const CLEAR = '\r\u001b[K';

/** A status line; every method is a no-op when the stream is not a terminal. */
export class ProgressLine {
  private readonly enabled: boolean;
  private lastDrawMs = Number.NEGATIVE_INFINITY;
  private shown = false;

  constructor(
    private readonly out: MaybeTty,
    private readonly intervalMs = PROGRESS_INTERVAL_MS,
    private readonly now: () => number = Date.now,
  ) {
    this.enabled = out.isTTY === true;
  }

  /** True when lines are drawn (the stream is a terminal). */
  get active(): boolean {
    return this.enabled;
  }

  /** Draws `text` unless the last draw was under the interval ago (`force` draws anyway). */
  update(text: string | (() => string), force = false): void {
    if (!this.enabled) return;
    const t = this.now();
    if (!force && t - this.lastDrawMs < this.intervalMs) return;
    this.lastDrawMs = t;
    const line = typeof text === 'function' ? text() : text;
    // Cut to the terminal's width: a wrapped line cannot be overwritten with \r.
    // A pseudo-terminal without a size reports 0 columns: assume 80.
    const columns = this.out.columns !== undefined && this.out.columns > 0 ? this.out.columns : 80;
    const width = Math.max(columns - 1, 10);
    this.out.write(`${CLEAR}${line.length > width ? line.slice(0, width) : line}`);
    this.shown = true;
  }

  /** Erases the line, so what follows starts on a clean one. */
  clear(): void {
    if (!this.shown) return;
    this.out.write(CLEAR);
    this.shown = false;
  }
}

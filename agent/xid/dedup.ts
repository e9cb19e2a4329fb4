/**
 * Storm deduplication for XID events. A failing GPU can log hundreds of thousands of identical
 * lines (one node logged ~800,000 XID 95 lines for 29 distinct events), so the agent keeps one
 * entry per (GPU, XID, pid, sub-key) with a count and first/last times, in bounded memory. The
 * sub-key keeps apart what must not merge: NVLink units and links, XID 154 transitions, MIG
 * instances. An entry's severity is the worst it ever had (a Fatal then a Nonfatal 149 stays fatal).
 */
import { compareSeverity, type XidSeverity } from './actions.js';

/** Where an event came from: the kernel log or NVML's XID event API. */
export type XidSource = 'kmsg' | 'nvml';

/** One observed XID event, as handed to the store. */
export interface XidObservation {
  /** The GPU: its normalised PCI bus id (normalizePciBusId) so both sources agree. */
  readonly gpuKey: string;
  readonly xid: number;
  readonly pid: number | null;
  readonly process?: string | null;
  readonly message: string;
  /** Wall-clock time in epoch milliseconds. */
  readonly timeMs: number;
  readonly source: XidSource;
  /** Keeps apart groups that must not merge (see the module comment); '' by default. */
  readonly subKey?: string;
  /** This occurrence's severity; the entry keeps the worst. Default info. */
  readonly severity?: XidSeverity;
  /** MIG instance ids from the kernel line (`GPU-I:`, `GPU-CI:`); part of the key. */
  readonly gpuInstance?: number | null;
  readonly computeInstance?: number | null;
}

/** A deduplicated event: every occurrence of one (GPU, XID, pid). */
export interface XidDedupEntry {
  readonly gpuKey: string;
  readonly xid: number;
  readonly pid: number | null;
  readonly process: string | null;
  /** Occurrences; when both sources saw the event, the larger of their counts (they report the same faults). */
  readonly count: number;
  readonly firstSeenMs: number;
  readonly lastSeenMs: number;
  readonly lastMessage: string;
  readonly sources: readonly XidSource[];
  readonly subKey: string;
  /** The worst severity any occurrence had, and the message that had it. */
  readonly worstSeverity: XidSeverity;
  readonly worstMessage: string;
  readonly gpuInstance: number | null;
  readonly computeInstance: number | null;
  /** Occurrences per source (what a persisted store restores from). */
  readonly counts: Readonly<Record<XidSource, number>>;
}

/** Options for XidDedupStore. */
export interface XidDedupOptions {
  /** Most distinct (GPU, XID, pid) keys kept; the least recently seen is evicted beyond it. */
  readonly maxEntries?: number;
  /** An NVML event joins a kernel-log entry for the same GPU and XID seen within this window. */
  readonly mergeWindowMs?: number;
}

/** Default cap on distinct keys: far above what a healthy or even a failing node produces. */
export const DEFAULT_MAX_DEDUP_ENTRIES = 4096;
/** Default window for joining an NVML event to a kernel-log entry (they arrive within ms of each other). */
export const DEFAULT_MERGE_WINDOW_MS = 5_000;
/** Longest message kept per entry, so a hostile or garbled line cannot bloat memory. */
const MAX_MESSAGE_LENGTH = 1024;

interface MutableEntry {
  gpuKey: string;
  xid: number;
  pid: number | null;
  process: string | null;
  counts: Record<XidSource, number>;
  firstSeenMs: number;
  lastSeenMs: number;
  lastMessage: string;
  subKey: string;
  worstSeverity: XidSeverity;
  worstMessage: string;
  gpuInstance: number | null;
  computeInstance: number | null;
}

interface KeyParts {
  readonly gpuKey: string;
  readonly xid: number;
  readonly pid: number | null;
  readonly subKey?: string;
  readonly gpuInstance?: number | null;
  readonly computeInstance?: number | null;
}

function keyOf(k: KeyParts): string {
  return `${k.gpuKey}|${k.xid}|${k.pid ?? '-'}|${k.gpuInstance ?? '-'}/${k.computeInstance ?? '-'}|${k.subKey ?? ''}`;
}

function clipMessage(message: string): string {
  return message.length > MAX_MESSAGE_LENGTH ? message.slice(0, MAX_MESSAGE_LENGTH) : message;
}

function snapshot(e: MutableEntry): XidDedupEntry {
  const sources = (['kmsg', 'nvml'] as const).filter((s) => e.counts[s] > 0);
  return Object.freeze({
    gpuKey: e.gpuKey,
    xid: e.xid,
    pid: e.pid,
    process: e.process,
    count: Math.max(e.counts.kmsg, e.counts.nvml),
    firstSeenMs: e.firstSeenMs,
    lastSeenMs: e.lastSeenMs,
    lastMessage: e.lastMessage,
    sources: Object.freeze(sources),
    subKey: e.subKey,
    worstSeverity: e.worstSeverity,
    worstMessage: e.worstMessage,
    gpuInstance: e.gpuInstance,
    computeInstance: e.computeInstance,
    counts: Object.freeze({ ...e.counts }),
  });
}

/** Bounded store of deduplicated XID events, queryable by time. */
export class XidDedupStore {
  // Map iteration order is insertion order; every update re-inserts its key, so the first key
  // is always the least recently seen one and eviction is O(1).
  private readonly entries = new Map<string, MutableEntry>();
  private readonly maxEntries: number;
  private readonly mergeWindowMs: number;
  private evictionCount = 0;
  private observationCount = 0;
  private changeCount = 0;

  constructor(options: XidDedupOptions = {}) {
    const max = options.maxEntries ?? DEFAULT_MAX_DEDUP_ENTRIES;
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`maxEntries must be a positive integer, got ${String(max)}`);
    const window = options.mergeWindowMs ?? DEFAULT_MERGE_WINDOW_MS;
    if (!Number.isFinite(window) || window < 0) throw new RangeError(`mergeWindowMs must be >= 0, got ${String(window)}`);
    this.maxEntries = max;
    this.mergeWindowMs = window;
  }

  /** Records one observation and returns the updated entry. */
  add(o: XidObservation): XidDedupEntry {
    this.observationCount += 1;
    this.changeCount += 1;
    const key = this.findKey(o);
    const message = clipMessage(o.message);
    const severity = o.severity ?? 'info';
    let entry = this.entries.get(key);
    if (entry === undefined) {
      entry = {
        gpuKey: o.gpuKey,
        xid: o.xid,
        pid: o.pid,
        process: o.process ?? null,
        counts: { kmsg: 0, nvml: 0 },
        firstSeenMs: o.timeMs,
        lastSeenMs: o.timeMs,
        lastMessage: message,
        subKey: o.subKey ?? '',
        worstSeverity: severity,
        worstMessage: message,
        gpuInstance: o.gpuInstance ?? null,
        computeInstance: o.computeInstance ?? null,
      };
    } else {
      this.entries.delete(key);
    }
    entry.counts[o.source] += 1;
    // NVML events carry no text: they raise the severity but never replace the kernel's message.
    if (compareSeverity(severity, entry.worstSeverity) > 0) {
      entry.worstSeverity = severity;
      if (o.source === 'kmsg' || entry.counts.kmsg === 0) entry.worstMessage = message;
    }
    entry.firstSeenMs = Math.min(entry.firstSeenMs, o.timeMs);
    if (o.timeMs >= entry.lastSeenMs) {
      entry.lastSeenMs = o.timeMs;
      // NVML carries no message text; keep the kernel's when there is one.
      if (o.source === 'kmsg' || entry.counts.kmsg === 0) entry.lastMessage = message;
    }
    if (entry.process === null && o.process !== undefined && o.process !== null) entry.process = o.process;
    this.entries.set(key, entry);
    this.evictBeyondCap();
    return snapshot(entry);
  }

  /** Entries last seen at or after `sinceMs` (all when omitted), most recent first. */
  query(options: { sinceMs?: number } = {}): XidDedupEntry[] {
    const since = options.sinceMs ?? Number.NEGATIVE_INFINITY;
    const out: XidDedupEntry[] = [];
    for (const e of this.entries.values()) {
      if (e.lastSeenMs >= since) out.push(snapshot(e));
    }
    return out.sort((a, b) => b.lastSeenMs - a.lastSeenMs);
  }

  /** Puts back an entry saved earlier (a restarted agent); it counts as seen at its lastSeenMs. */
  restore(e: XidDedupEntry): void {
    this.changeCount += 1;
    const key = keyOf(e);
    this.entries.delete(key);
    this.entries.set(key, {
      gpuKey: e.gpuKey,
      xid: e.xid,
      pid: e.pid,
      process: e.process,
      counts: { kmsg: e.counts.kmsg, nvml: e.counts.nvml },
      firstSeenMs: e.firstSeenMs,
      lastSeenMs: e.lastSeenMs,
      lastMessage: clipMessage(e.lastMessage),
      subKey: e.subKey,
      worstSeverity: e.worstSeverity,
      worstMessage: clipMessage(e.worstMessage),
      gpuInstance: e.gpuInstance,
      computeInstance: e.computeInstance,
    });
    this.evictBeyondCap();
  }

  /** Drops the entries the predicate selects; returns how many. */
  remove(predicate: (e: XidDedupEntry) => boolean): number {
    let removed = 0;
    for (const [key, e] of this.entries) {
      if (predicate(snapshot(e))) {
        this.entries.delete(key);
        removed += 1;
      }
    }
    if (removed > 0) this.changeCount += 1;
    return removed;
  }

  /** Grows whenever an entry is added, changed, restored or dropped: what was derived from the entries is still true while it stays. */
  get changes(): number {
    return this.changeCount;
  }

  /** Number of distinct keys held. */
  get size(): number {
    return this.entries.size;
  }

  /** Keys dropped because the cap was reached. */
  get evictions(): number {
    return this.evictionCount;
  }

  /** Observations added since creation. */
  get observations(): number {
    return this.observationCount;
  }

  /** Drops every entry (counters are kept). */
  clear(): void {
    this.changeCount += 1;
    this.entries.clear();
  }

  private findKey(o: XidObservation): string {
    const exact = keyOf(o);
    if (o.source !== 'nvml' || this.entries.has(exact)) return exact;
    // NVML events carry no pid or text: join the most recent kernel-log entry for this GPU and XID.
    let best: MutableEntry | undefined;
    for (const e of this.entries.values()) {
      if (e.gpuKey === o.gpuKey && e.xid === o.xid && Math.abs(o.timeMs - e.lastSeenMs) <= this.mergeWindowMs) {
        if (best === undefined || e.lastSeenMs > best.lastSeenMs) best = e;
      }
    }
    return best === undefined ? exact : keyOf(best);
  }

  private evictBeyondCap(): void {
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done === true) return;
      this.entries.delete(oldest.value);
      this.evictionCount += 1;
    }
  }
}

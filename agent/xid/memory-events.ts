/**
 * NVML memory events (nvmlEventTypeSingleBitEccErrorStorm .. FatalPoisonError, R560+ drivers),
 * counted per GPU and kind in a bounded store. Events last seen inside the look-back are
 * reported; a DRAM retirement failure or a fatal poison error is reported until the GPU is seen
 * reset (or the agent restarts), because the memory stays unusable until then.
 */
import type { MemoryEventReport } from '../api/snapshot-document.js';
import type { NvmlMemoryEventKind } from '../nvml/types.js';

/** Most GPU × kind entries kept (64 GPUs × 5 kinds); the oldest goes first. */
const MAX_MEMORY_EVENT_ENTRIES = 320;
/** Most entries one snapshot carries (the schema's bound). */
export const MAX_REPORTED_MEMORY_EVENTS = 64;
/** Kinds that outlast the look-back: the row could not be retired, or poisoned data was consumed. */
const UNTIL_RESET: ReadonlySet<NvmlMemoryEventKind> = new Set(['dramRetirementFailure', 'fatalPoison']);
/** Worst first in a report. */
const RANK: Readonly<Record<NvmlMemoryEventKind, number>> = {
  dramRetirementFailure: 0,
  fatalPoison: 1,
  nonFatalPoison: 2,
  singleBitEccStorm: 3,
  dramRetirement: 4,
};

interface MemoryEventEntry {
  kind: NvmlMemoryEventKind;
  gpuKey: string;
  count: number;
  firstSeenMs: number;
  lastSeenMs: number;
}

/** The memory events one agent has seen. */
export class MemoryEventStore {
  private readonly entries = new Map<string, MemoryEventEntry>();

  /** Counts one event of `kind` on the GPU at kernel-form bus id `gpuKey` ('' when unknown). */
  add(kind: NvmlMemoryEventKind, gpuKey: string, atMs: number): void {
    const key = `${gpuKey}|${kind}`;
    const before = this.entries.get(key);
    this.entries.delete(key);
    this.entries.set(key, {
      kind,
      gpuKey,
      count: (before?.count ?? 0) + 1,
      firstSeenMs: before?.firstSeenMs ?? atMs,
      lastSeenMs: Math.max(before?.lastSeenMs ?? atMs, atMs),
    });
    while (this.entries.size > MAX_MEMORY_EVENT_ENTRIES) {
      const oldest = this.entries.keys().next();
      if (oldest.done === true) break;
      this.entries.delete(oldest.value);
    }
  }

  /** A GPU reset clears its events seen before it. */
  gpuWasReset(gpuKey: string, atMs: number): void {
    for (const [key, e] of this.entries) if (e.gpuKey === gpuKey && e.lastSeenMs <= atMs) this.entries.delete(key);
  }

  /** Events last seen at or after `sinceMs`, plus the until-reset kinds, worst first, bounded. */
  reports(sinceMs: number, uuidOf: (gpuKey: string) => string | undefined): MemoryEventReport[] {
    return [...this.entries.values()]
      .filter((e) => e.lastSeenMs >= sinceMs || UNTIL_RESET.has(e.kind))
      .sort((a, b) => RANK[a.kind] - RANK[b.kind] || b.lastSeenMs - a.lastSeenMs)
      .slice(0, MAX_REPORTED_MEMORY_EVENTS)
      .map((e) => {
        const uuid = e.gpuKey === '' ? undefined : uuidOf(e.gpuKey);
        return {
          kind: e.kind,
          ...(e.gpuKey !== '' ? { pciBusId: e.gpuKey } : {}),
          ...(uuid !== undefined ? { gpuUuid: uuid } : {}),
          count: e.count,
          firstSeen: new Date(e.firstSeenMs).toISOString(),
          lastSeen: new Date(e.lastSeenMs).toISOString(),
        };
      });
  }
}

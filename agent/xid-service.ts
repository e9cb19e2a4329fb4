/**
 * The agent's XID source of truth: events from /dev/kmsg and from NVML's event API, classified
 * (xid/classify.ts), merged into bounded, deduplicated stores, with PCI→UUID mapping learned
 * from the kernel log and NVML snapshots. It keeps faults that outlast the look-back (reboot
 * class until the boot ID changes, reset class until the GPU was seen reset) and persists
 * everything with the kmsg cursor (xid/history-file.ts), so a restart loses nothing.
 */
import type { Logger } from '../lib/logger.js';
import { errorFields } from '../lib/logger.js';
import type { NvmlEventSource } from './nvml/sources.js';
import type { GpuSnapshot, NvmlEvent } from './nvml/types.js';
import type { BusLossReport, MemoryEventReport, SwitchEventReport, XidEventReport, XidSourceStatus } from './api/snapshot-document.js';
import { compareSeverity } from './xid/actions.js';
import { lookupXid } from './xid/catalog.js';
import { classifyXid, type XidClassification } from './xid/classify.js';
import { applyXidContext } from './xid/context.js';
import { XidDedupStore, type XidDedupEntry } from './xid/dedup.js';
import { loadXidHistory, saveXidHistory, type BusLossRecord } from './xid/history-file.js';
import { KmsgReader, readBootId, type KmsgContextEvent, type KmsgCursor, type KmsgXidEvent } from './xid/kmsg-reader.js';
import { normalizePciBusId } from './xid/parser.js';
import { MemoryEventStore } from './xid/memory-events.js';
import { MEMORY_EVENT_KINDS } from './nvml/events.js';
import { clip } from '../lib/text.js';

/** Most XID events one snapshot carries (worst and newest first); the rest are counted. */
export const MAX_REPORTED_XID_EVENTS = 200;
/** Most NVSwitch events and bus losses one snapshot carries. */
export const MAX_REPORTED_SWITCH_EVENTS = 64;
export const MAX_REPORTED_BUS_LOSSES = 64;
/** Kernel text is untrusted: bound it and strip control characters before it leaves the agent. */
const MAX_MESSAGE_CHARS = 400;
/** A process name from a kernel message (the kernel's own is at most 16 bytes; the text is untrusted). */
const MAX_PROCESS_CHARS = 64;
/** A source error in the snapshot (the schema's bound). */
const MAX_SOURCE_ERROR_CHARS = 1024;
/** GPUs named in xidSources.nvmlEvents.lostGpus (the schema's bound; a node has at most a few dozen). */
const MAX_LOST_GPUS_REPORTED = 64;
const MAX_DECODED_CHARS = 256;
/** Default least time between history writes (the final write on stop() is not throttled). */
export const DEFAULT_HISTORY_FLUSH_MS = 2_000;
/** NVSwitch stores stay small: a switch has tens of links. */
const MAX_SWITCH_ENTRIES = 512;
/**
 * PCI ids come from kernel text, which anyone who can write to the kernel log controls: the maps
 * keyed by them are bounded (a node has at most 64 GPUs; the oldest entry goes first).
 */
const MAX_GPU_KEYS = 256;

/** Sets `key` and drops the oldest entries beyond `max` (Map keeps insertion order). */
function setBounded<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key);
  map.set(key, value);
  while (map.size > max) {
    const oldest = map.keys().next();
    if (oldest.done === true) return;
    map.delete(oldest.value);
  }
}

/** Options of the XID service. */
export interface XidServiceOptions {
  /** /dev/kmsg or a stand-in; empty disables the kernel-log source. */
  kmsgPath: string;
  kmsgPollMs: number;
  /** Where the history (events + kmsg cursor) persists; none when omitted. */
  historyPath?: string;
  /** Least time between history writes. */
  historyFlushMs?: number;
  bootIdPath?: string;
  /** NVML's event API (its owner stops it); omitted in no-GPU mode or when events are switched off. */
  nvmlEvents?: NvmlEventSource;
  logger: Logger;
  onXid?: (xid: number, source: 'kmsg' | 'nvml') => void;
  /** Wall clock (tests). */
  now?: () => number;
}

/** Removes control characters (log/terminal injection) and bounds the length. */
export function sanitizeKernelText(text: string, max = MAX_MESSAGE_CHARS): string {
  // eslint-disable-next-line no-control-regex
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ');
  return clip(clean, max);
}

/** Volatile ECC totals restart at zero when a GPU is reset. */
function volatileEccTotal(gpu: GpuSnapshot): number | undefined {
  const { volatileCorrected, volatileUncorrected } = gpu.ecc ?? {};
  return volatileCorrected === undefined && volatileUncorrected === undefined
    ? undefined
    : (volatileCorrected ?? 0) + (volatileUncorrected ?? 0);
}

/** One entry's report and what the look-back filter needs of it. */
interface RankedReport {
  readonly report: XidEventReport;
  readonly lastSeenMs: number;
  /** It drops out of answers once older than their look-back (other faults persist until a reset). */
  readonly lookback: boolean;
}

/** Collects XID events from every available source. */
export class XidService {
  private readonly store = new XidDedupStore();
  private readonly switchStore = new XidDedupStore({ maxEntries: MAX_SWITCH_ENTRIES });
  private readonly busLoss = new Map<string, BusLossRecord>();
  private readonly memoryEvents = new MemoryEventStore();
  private readonly gpuResets = new Map<string, number>();
  private readonly uuidByPci = new Map<string, string>();
  /** Grows when the driver version or a PCI→UUID pair changes (both shape the XID reports). */
  private reportContextChanges = 0;
  /** The XID reports, worst and newest first, while the entries and their context are unchanged. */
  private reportCache: { key: string; reports: readonly RankedReport[]; all?: XidEventReport[] } | undefined;
  private switchReportCache: { changes: number; reports: ReadonlyArray<{ report: SwitchEventReport; lastSeenMs: number }> } | undefined;
  private readonly gpuState = new Map<string, { eccTotal?: number; lost: boolean }>();
  private readonly kmsg: KmsgReader | undefined;
  private readonly bootIdPath: string;
  private readonly now: () => number;
  private bootId: string | null = null;
  private driverVersion: string | null = null;
  private kmsgError: string | undefined;
  /** Why the saved history could not be used at start; kept, since that history is gone for good. */
  private historyLoadError: string | undefined;
  /** Why the last write failed; cleared by the next write that succeeds. */
  private historySaveError: string | undefined;
  private watching = false;
  private nvmlEventsError: string | undefined;
  /** The watcher's last warning (it carries on), and the GPUs that left its event set (bounded). */
  private nvmlEventsWarning: string | undefined;
  private readonly nvmlLostGpus = new Set<string>();
  private dirty = false;
  private lastSaveMs = 0;
  private started = false;

  constructor(private readonly options: XidServiceOptions) {
    this.bootIdPath = options.bootIdPath ?? '/proc/sys/kernel/random/boot_id';
    this.now = options.now ?? Date.now;
    if (options.kmsgPath !== '') {
      this.kmsg = new KmsgReader({
        path: options.kmsgPath,
        pollIntervalMs: options.kmsgPollMs,
        bootIdPath: this.bootIdPath,
      });
      this.kmsg.on('xid', (e) => this.onKmsgXid(e));
      this.kmsg.on('context', (e) => this.onKmsgContext(e));
      this.kmsg.on('drained', ({ advanced }) => {
        if (advanced) this.dirty = true;
        this.saveHistory(false);
      });
      this.kmsg.on('warning', (err) => options.logger.warn('kmsg reader warning', errorFields(err)));
    }
  }

  /** Restores the history, then starts the sources; a source that cannot start is reported in status, never fatal. */
  async start(): Promise<void> {
    this.started = true;
    this.bootId = readBootId(this.bootIdPath);
    const resumeAfter = this.restoreHistory();
    if (this.kmsg !== undefined) {
      try {
        this.kmsg.start(resumeAfter);
      } catch (err) {
        this.kmsgError = err instanceof Error ? err.message : String(err);
        this.options.logger.error('kmsg reader did not start; XIDs come from NVML events only', {
          path: this.options.kmsgPath,
          ...errorFields(err),
        });
      }
    }
    const events = this.options.nvmlEvents;
    if (events !== undefined) {
      await events.watch({
        onEvent: (e) => this.onNvmlEvent(e),
        onError: (err) => {
          this.nvmlEventsError = err.message;
          this.options.logger.warn('NVML event watcher stopped', errorFields(err));
        },
        onWarning: (err) => {
          this.nvmlEventsWarning = err.message;
          this.options.logger.warn('NVML event wait failed; the watcher carries on', errorFields(err));
        },
        onGpuLost: (gpu) => {
          const name = gpu.uuid ?? gpu.pciBusId ?? `index ${gpu.index}`;
          if (this.nvmlLostGpus.size < MAX_LOST_GPUS_REPORTED) this.nvmlLostGpus.add(name);
          this.options.logger.error('GPU fell off the bus: no more NVML events from it; the other GPUs are still watched', {
            gpu: name,
            index: gpu.index,
            code: gpu.code,
          });
        },
      });
      this.watching = true;
    }
  }

  /** Stops both sources and saves the history; no read or event wait outlives this. */
  async stop(): Promise<void> {
    this.kmsg?.stop();
    this.watching = false;
    if (this.started) this.saveHistory(true);
    this.started = false;
  }

  /** True when the kernel-log source is running (or was deliberately disabled). */
  get kmsgReady(): boolean {
    return this.kmsg === undefined || this.kmsg.running;
  }

  /** The node's driver version: picks the NVLink5 decode layout. */
  setDriverVersion(version: string | undefined): void {
    if (version === undefined || version === '' || version === this.driverVersion) return;
    this.driverVersion = version;
    this.reportContextChanges += 1;
  }

  /** Learns PCI→UUID pairs from an NVML snapshot and notices GPU resets (fresh volatile counters, a lost GPU back). */
  observeGpu(gpu: GpuSnapshot): void {
    const key = gpu.pciBusId === undefined ? null : normalizePciBusId(gpu.pciBusId);
    if (key === null) return;
    if (gpu.uuid !== undefined) this.learnUuid(key, gpu.uuid);
    const total = gpu.lost ? undefined : volatileEccTotal(gpu);
    const before = this.gpuState.get(key);
    const reset =
      before !== undefined &&
      ((before.lost && !gpu.lost) || (total !== undefined && before.eccTotal !== undefined && total < before.eccTotal));
    setBounded(this.gpuState, key, { ...(total === undefined ? {} : { eccTotal: total }), lost: gpu.lost }, MAX_GPU_KEYS);
    if (reset) this.gpuWasReset(key, this.now());
  }

  /** Health of each source, for the snapshot document and /readyz. */
  status(): XidSourceStatus {
    const stats = this.kmsg?.stats();
    const historyErrors = [this.historyLoadError, this.historySaveError].filter((e) => e !== undefined);
    return {
      kmsg: {
        running: this.kmsg?.running ?? false,
        path: this.options.kmsgPath,
        records: stats?.records ?? 0,
        lost: stats?.lost ?? 0,
        ...(this.kmsgError !== undefined
          ? { error: clip(this.kmsgError, MAX_SOURCE_ERROR_CHARS) }
          : this.kmsg === undefined
            ? { error: 'disabled by configuration' }
            : {}),
      },
      nvmlEvents: {
        running: this.watching && this.nvmlEventsError === undefined,
        ...(this.nvmlEventsError !== undefined
          ? { error: clip(this.nvmlEventsError, MAX_SOURCE_ERROR_CHARS) }
          : this.options.nvmlEvents === undefined
            ? { error: 'not watched (no-GPU mode or --nvml-events=false)' }
            : {}),
        ...(this.nvmlEventsWarning !== undefined ? { warning: clip(this.nvmlEventsWarning, MAX_SOURCE_ERROR_CHARS) } : {}),
        ...(this.nvmlLostGpus.size > 0 ? { lostGpus: [...this.nvmlLostGpus] } : {}),
      },
      ...(historyErrors.length > 0 ? { history: { error: clip(historyErrors.join('; '), MAX_SOURCE_ERROR_CHARS) } } : {}),
    };
  }

  private classify(e: XidDedupEntry): XidClassification {
    const context = { driverVersion: this.driverVersion };
    const last = classifyXid(e.xid, e.lastMessage, undefined, context);
    if (e.worstMessage === e.lastMessage) return last;
    const worst = classifyXid(e.xid, e.worstMessage, undefined, context);
    return compareSeverity(worst.severity, last.severity) > 0 ? worst : last;
  }

  /**
   * Events last seen at or after `sinceMs`, plus the faults that outlast the look-back, worst and
   * newest first, bounded.
   */
  eventsSince(sinceMs: number): { events: XidEventReport[]; truncated: number } {
    const ranked = this.rankedReports();
    const events: XidEventReport[] = [];
    let matching = 0;
    for (const r of ranked) {
      if (r.lastSeenMs < sinceMs && r.lookback) continue;
      matching += 1;
      if (events.length < MAX_REPORTED_XID_EVENTS) events.push(r.report);
    }
    // The window kept every report: answer with one array for as long as nothing changes, so its
    // JSON is made once (snapshot-json.ts), not once per answer.
    if (events.length === ranked.length && this.reportCache !== undefined) {
      this.reportCache.all ??= events;
      return { events: this.reportCache.all, truncated: 0 };
    }
    return { events, truncated: matching - events.length };
  }

  /** Remembers which GPU a PCI address is; a new pair makes the XID reports be built again. */
  private learnUuid(pciBusId: string, uuid: string): void {
    if (this.uuidByPci.get(pciBusId) === uuid) return;
    setBounded(this.uuidByPci, pciBusId, uuid, MAX_GPU_KEYS);
    this.reportContextChanges += 1;
  }

  /**
   * Every entry's report, worst and newest first. Classifying and decoding every entry costs more
   * than the rest of an answer (each snapshot asks), and only new kernel lines or NVML events, a
   * driver version or a GPU's UUID change the outcome: it is built again only then.
   */
  private rankedReports(): readonly RankedReport[] {
    const key = `${this.store.changes}|${this.reportContextChanges}`;
    if (this.reportCache?.key === key) return this.reportCache.reports;
    const entries = this.store.query();
    const classified = entries.map((e) => this.classify(e));
    const judged = applyXidContext(
      entries.map((e, i) => ({
        xid: e.xid,
        gpuKey: e.gpuKey,
        pid: e.pid,
        firstSeenMs: e.firstSeenMs,
        lastSeenMs: e.lastSeenMs,
        subKey: e.subKey,
        classification: classified[i] as XidClassification,
      })),
    );
    const reports: RankedReport[] = entries.map((e, i) => {
      const c = judged[i] as XidClassification;
      return { report: this.report(e, c), lastSeenMs: e.lastSeenMs, lookback: c.persistence === 'lookback' };
    });
    const rank = { critical: 0, warning: 1, info: 2 } as const;
    // Newest first within a severity (numbers: localeCompare on the ISO text would load ICU's collator, ~2.5 MiB of RSS).
    reports.sort((a, b) => rank[a.report.severity] - rank[b.report.severity] || b.lastSeenMs - a.lastSeenMs);
    this.reportCache = { key, reports };
    return reports;
  }

  /** NVSwitch SXid events last seen at or after `sinceMs`, fatal first. */
  switchEventsSince(sinceMs: number): SwitchEventReport[] {
    const events: SwitchEventReport[] = [];
    for (const r of this.rankedSwitchReports()) {
      if (events.length === MAX_REPORTED_SWITCH_EVENTS) break;
      if (r.lastSeenMs >= sinceMs) events.push(r.report);
    }
    return events;
  }

  /** Every SXid entry's report, fatal and newest first, built again only when the store changed. */
  private rankedSwitchReports(): ReadonlyArray<{ report: SwitchEventReport; lastSeenMs: number }> {
    if (this.switchReportCache?.changes === this.switchStore.changes) return this.switchReportCache.reports;
    const reports = this.switchStore
      .query()
      .sort((a, b) => compareSeverity(b.worstSeverity, a.worstSeverity) || b.lastSeenMs - a.lastSeenMs)
      .map((e) => ({
        lastSeenMs: e.lastSeenMs,
        report: {
          sxid: e.xid,
          ...(e.gpuKey !== '' ? { switchPciBusId: e.gpuKey } : {}),
          fatal: e.worstSeverity === 'critical',
          ...(e.subKey !== '' ? { link: Number(e.subKey) } : {}),
          count: e.count,
          firstSeen: new Date(e.firstSeenMs).toISOString(),
          lastSeen: new Date(e.lastSeenMs).toISOString(),
          message: sanitizeKernelText(e.worstMessage),
        },
      }));
    this.switchReportCache = { changes: this.switchStore.changes, reports };
    return reports;
  }

  /** NVML memory events (ECC storm, DRAM retirement, poison) in the look-back, failures until a reset. */
  memoryEventsSince(sinceMs: number): MemoryEventReport[] {
    return this.memoryEvents.reports(sinceMs, (key) => this.uuidByPci.get(key));
  }

  /** GPUs that fell off the bus without an XID code in this boot (they stay until a reboot). */
  busLossReports(): BusLossReport[] {
    return [...this.busLoss.values()].slice(0, MAX_REPORTED_BUS_LOSSES).map((b) => {
      const uuid = this.uuidByPci.get(b.pciBusId);
      return {
        pciBusId: b.pciBusId,
        ...(uuid !== undefined ? { gpuUuid: uuid } : {}),
        count: b.count,
        firstSeen: new Date(b.firstSeenMs).toISOString(),
        lastSeen: new Date(b.lastSeenMs).toISOString(),
      };
    });
  }

  private report(e: XidDedupEntry, c: XidClassification): XidEventReport {
    const entry = lookupXid(e.xid);
    const uuid = this.uuidByPci.get(e.gpuKey);
    return {
      xid: e.xid,
      name: entry.name,
      severity: c.severity,
      action: clip(c.action, 512),
      immediateAction: c.immediateAction,
      ...(c.investigatoryAction !== null ? { investigatoryAction: clip(c.investigatoryAction, 128) } : {}),
      persistsUntil: c.persistence,
      ...(c.decoded !== undefined ? { decoded: sanitizeKernelText(c.decoded, MAX_DECODED_CHARS) } : {}),
      ...(e.gpuKey !== '' ? { pciBusId: e.gpuKey } : {}),
      ...(uuid !== undefined ? { gpuUuid: uuid } : {}),
      ...(e.gpuInstance !== null ? { gpuInstance: e.gpuInstance } : {}),
      ...(e.computeInstance !== null ? { computeInstance: e.computeInstance } : {}),
      pid: e.pid,
      process: e.process === null ? null : sanitizeKernelText(e.process, MAX_PROCESS_CHARS),
      count: e.count,
      firstSeen: new Date(e.firstSeenMs).toISOString(),
      lastSeen: new Date(e.lastSeenMs).toISOString(),
      message: sanitizeKernelText(e.lastMessage),
      ...(e.worstMessage !== e.lastMessage ? { worstMessage: sanitizeKernelText(e.worstMessage) } : {}),
      sources: [...e.sources],
    };
  }

  private onKmsgXid(e: KmsgXidEvent): void {
    const c = classifyXid(e.xid, e.message, undefined, { driverVersion: this.driverVersion });
    this.store.add({
      gpuKey: e.pciBusId ?? '',
      xid: e.xid,
      pid: e.pid,
      process: e.process,
      message: e.message,
      timeMs: e.timeMs,
      source: 'kmsg',
      subKey: c.subKey,
      severity: c.severity,
      gpuInstance: e.gpuInstance,
      computeInstance: e.computeInstance,
    });
    this.dirty = true;
    this.options.onXid?.(e.xid, 'kmsg');
  }

  private onKmsgContext(e: KmsgContextEvent): void {
    if (e.kind === 'gpu-uuid') {
      this.learnUuid(e.pciBusId, e.uuid);
    } else if (e.kind === 'bus-lost') {
      const before = this.busLoss.get(e.pciBusId);
      setBounded(
        this.busLoss,
        e.pciBusId,
        {
          pciBusId: e.pciBusId,
          count: (before?.count ?? 0) + 1,
          firstSeenMs: Math.min(before?.firstSeenMs ?? e.timeMs, e.timeMs),
          lastSeenMs: Math.max(before?.lastSeenMs ?? e.timeMs, e.timeMs),
        },
        MAX_GPU_KEYS,
      );
      this.dirty = true;
    } else if (e.fatal !== null) {
      // Continuation lines (`Severity 0 Engine instance ...`, `Data {...}`) only detail the line before.
      this.switchStore.add({
        gpuKey: e.switchPciBusId ?? '',
        xid: e.sxid,
        pid: null,
        message: e.message,
        timeMs: e.timeMs,
        source: 'kmsg',
        subKey: e.link === null ? '' : String(e.link),
        severity: e.fatal ? 'critical' : 'warning',
      });
      this.dirty = true;
    }
  }

  private onNvmlEvent(e: NvmlEvent): void {
    const memoryKind = MEMORY_EVENT_KINDS.find(([, kind]) => kind === e.type)?.[1];
    if (memoryKind !== undefined) {
      const key = (e.pciBusId !== undefined ? normalizePciBusId(e.pciBusId) : null) ?? '';
      if (key !== '' && e.gpuUuid !== undefined) this.learnUuid(key, e.gpuUuid);
      this.memoryEvents.add(memoryKind, key, Date.parse(e.time));
      return;
    }
    if (e.type !== 'xid' || e.xid === undefined) return;
    const gpuKey = (e.pciBusId !== undefined ? normalizePciBusId(e.pciBusId) : null) ?? '';
    if (gpuKey !== '' && e.gpuUuid !== undefined) this.learnUuid(gpuKey, e.gpuUuid);
    const entry = lookupXid(e.xid);
    const c = classifyXid(e.xid, '', undefined, { driverVersion: this.driverVersion });
    this.store.add({
      gpuKey,
      xid: e.xid,
      pid: null,
      process: null,
      message: `${entry.name} (reported by the NVML event API)`,
      timeMs: Date.parse(e.time),
      source: 'nvml',
      severity: c.severity,
    });
    this.dirty = true;
    this.options.onXid?.(e.xid, 'nvml');
  }

  /** A reset repairs what needed one: reset-class faults on that GPU logged before it clear. */
  private gpuWasReset(gpuKey: string, atMs: number): void {
    setBounded(this.gpuResets, gpuKey, atMs, MAX_GPU_KEYS);
    this.memoryEvents.gpuWasReset(gpuKey, atMs);
    const context = { driverVersion: this.driverVersion };
    const cleared = this.store.remove(
      (e) =>
        e.gpuKey === gpuKey && e.lastSeenMs <= atMs && classifyXid(e.xid, e.worstMessage, undefined, context).persistence === 'gpu-reset',
    );
    if (cleared > 0) this.options.logger.info('GPU reset seen; its reset-class XIDs are cleared', { pciBusId: gpuKey, cleared });
    this.dirty = true;
  }

  /** Loads the saved history; returns the kmsg position to resume after (null: read from the oldest record). */
  private restoreHistory(): KmsgCursor | null {
    const file = this.options.historyPath;
    if (file === undefined || this.bootId === null) return null;
    let loaded;
    try {
      loaded = loadXidHistory(file);
    } catch (err) {
      this.historyLoadError = err instanceof Error ? err.message : String(err);
      this.options.logger.warn('XID history unreadable; starting without it', { path: file, ...errorFields(err) });
      return null;
    }
    if (loaded.problem !== undefined) {
      this.historyLoadError = `history was unusable: ${loaded.problem}`;
      this.options.logger.warn('XID history unusable; starting without it', { path: file, problem: loaded.problem });
    }
    const history = loaded.history;
    if (history === null) return null;
    const sameBoot = history.bootId === this.bootId;
    for (const e of history.xids) {
      // A reboot ends every fault that lasted until a reboot or a reset; the rest is history.
      if (!sameBoot && classifyXid(e.xid, e.worstMessage).persistence !== 'lookback') continue;
      this.store.restore(e);
    }
    for (const e of history.sxids) this.switchStore.restore(e);
    if (sameBoot) {
      for (const b of history.busLoss) setBounded(this.busLoss, b.pciBusId, b, MAX_GPU_KEYS);
      for (const [gpu, at] of Object.entries(history.gpuResets)) setBounded(this.gpuResets, gpu, at, MAX_GPU_KEYS);
    }
    this.options.logger.info('XID history restored', { path: file, events: this.store.size, sameBoot });
    return sameBoot && history.cursor !== null && history.cursor.bootId === this.bootId ? history.cursor : null;
  }

  private saveHistory(force: boolean): void {
    const file = this.options.historyPath;
    if (file === undefined || this.bootId === null || !this.dirty) return;
    const now = this.now();
    if (!force && now - this.lastSaveMs < (this.options.historyFlushMs ?? DEFAULT_HISTORY_FLUSH_MS)) return;
    try {
      saveXidHistory(file, {
        bootId: this.bootId,
        cursor: this.kmsg?.position() ?? null,
        xids: this.store.query(),
        sxids: this.switchStore.query(),
        busLoss: [...this.busLoss.values()],
        gpuResets: Object.fromEntries(this.gpuResets),
      });
      this.dirty = false;
      this.lastSaveMs = now;
      this.historySaveError = undefined;
    } catch (err) {
      this.historySaveError = `saving ${file} failed: ${err instanceof Error ? err.message : String(err)}`;
      this.options.logger.warn('XID history not saved', { path: file, ...errorFields(err) });
    }
  }
}

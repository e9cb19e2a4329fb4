/**
 * The agent's XID source of truth: events from /dev/kmsg and from NVML's event API, merged
 * into one bounded, deduplicated store, with PCI→UUID mapping learned from the kernel log
 * (`NVRM: GPU at PCI:...: GPU-...`) and from NVML snapshots.
 */
import type { Logger } from '../lib/logger.js';
import { errorFields } from '../lib/logger.js';
import type { NvmlBinding } from './nvml/binding.js';
import { NvmlEventWatcher } from './nvml/events.js';
import type { NvmlEvent } from './nvml/types.js';
import type { XidEventReport, XidSourceStatus } from './api/snapshot-document.js';
import { lookupXid, severityForMessage } from './xid/catalog.js';
import { XidDedupStore } from './xid/dedup.js';
import { KmsgReader, type KmsgContextEvent, type KmsgXidEvent } from './xid/kmsg-reader.js';
import { normalizePciBusId } from './xid/parser.js';
import { clip } from '../lib/text.js';

/** Most XID events one snapshot carries (worst and newest first); the rest are counted. */
export const MAX_REPORTED_XID_EVENTS = 200;
/** Kernel text is untrusted: bound it and strip control characters before it leaves the agent. */
const MAX_MESSAGE_CHARS = 400;
/** A process name from a kernel message (the kernel's own is at most 16 bytes; the text is untrusted). */
const MAX_PROCESS_CHARS = 64;
/** A source error in the snapshot (the schema's bound). */
const MAX_SOURCE_ERROR_CHARS = 1024;

/** Options of the XID service. */
export interface XidServiceOptions {
  /** /dev/kmsg or a stand-in; empty disables the kernel-log source. */
  kmsgPath: string;
  kmsgPollMs: number;
  cursorPath?: string;
  bootIdPath?: string;
  /** NVML binding for the event API; omitted in no-GPU mode or when events are switched off. */
  nvml?: NvmlBinding;
  logger: Logger;
  onXid?: (xid: number, source: 'kmsg' | 'nvml') => void;
}

/** Removes control characters (log/terminal injection) and bounds the length. */
export function sanitizeKernelText(text: string, max = MAX_MESSAGE_CHARS): string {
  // eslint-disable-next-line no-control-regex
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ');
  return clip(clean, max);
}

/** Collects XID events from every available source. */
export class XidService {
  private readonly store = new XidDedupStore();
  private readonly uuidByPci = new Map<string, string>();
  private readonly kmsg: KmsgReader | undefined;
  private kmsgError: string | undefined;
  private watcher: NvmlEventWatcher | undefined;
  private nvmlEventsError: string | undefined;

  constructor(private readonly options: XidServiceOptions) {
    if (options.kmsgPath !== '') {
      this.kmsg = new KmsgReader({
        path: options.kmsgPath,
        pollIntervalMs: options.kmsgPollMs,
        ...(options.cursorPath !== undefined ? { cursorPath: options.cursorPath } : {}),
        ...(options.bootIdPath !== undefined ? { bootIdPath: options.bootIdPath } : {}),
      });
      this.kmsg.on('xid', (e) => this.onKmsgXid(e));
      this.kmsg.on('context', (e) => this.onKmsgContext(e));
      this.kmsg.on('warning', (err) => options.logger.warn('kmsg reader warning', errorFields(err)));
    }
  }

  /** Starts the sources; a source that cannot start is reported in status, never fatal. */
  async start(): Promise<void> {
    if (this.kmsg !== undefined) {
      try {
        this.kmsg.start();
      } catch (err) {
        this.kmsgError = err instanceof Error ? err.message : String(err);
        this.options.logger.error('kmsg reader did not start; XIDs come from NVML events only', { path: this.options.kmsgPath, ...errorFields(err) });
      }
    }
    if (this.options.nvml !== undefined) {
      this.watcher = new NvmlEventWatcher({
        nvml: this.options.nvml,
        onEvent: (e) => this.onNvmlEvent(e),
        onError: (err) => {
          this.nvmlEventsError = err.message;
          this.options.logger.warn('NVML event watcher stopped', errorFields(err));
        },
      });
      try {
        await this.watcher.start();
      } catch (err) {
        this.nvmlEventsError = err instanceof Error ? err.message : String(err);
        this.watcher = undefined;
        this.options.logger.warn('NVML event watcher did not start', errorFields(err));
      }
    }
  }

  /** Stops both sources; no read or event wait outlives this. */
  async stop(): Promise<void> {
    this.kmsg?.stop();
    await this.watcher?.stop();
    this.watcher = undefined;
  }

  /** True when the kernel-log source is running (or was deliberately disabled). */
  get kmsgReady(): boolean {
    return this.kmsg === undefined || this.kmsg.running;
  }

  /** Learns PCI→UUID pairs from an NVML snapshot so kernel-log XIDs can name their GPU. */
  learnGpu(pciBusId: string | undefined, uuid: string | undefined): void {
    const key = pciBusId === undefined ? null : normalizePciBusId(pciBusId);
    if (key !== null && uuid !== undefined) this.uuidByPci.set(key, uuid);
  }

  /** Health of each source, for the snapshot document and /readyz. */
  status(): XidSourceStatus {
    const stats = this.kmsg?.stats();
    return {
      kmsg: {
        running: this.kmsg?.running ?? false,
        path: this.options.kmsgPath,
        records: stats?.records ?? 0,
        lost: stats?.lost ?? 0,
        ...(this.kmsgError !== undefined ? { error: clip(this.kmsgError, MAX_SOURCE_ERROR_CHARS) } : this.kmsg === undefined ? { error: 'disabled by configuration' } : {}),
      },
      nvmlEvents: {
        running: this.watcher !== undefined && this.nvmlEventsError === undefined,
        ...(this.nvmlEventsError !== undefined ? { error: clip(this.nvmlEventsError, MAX_SOURCE_ERROR_CHARS) } : this.options.nvml === undefined ? { error: 'not watched (no-GPU mode or --nvml-events=false)' } : {}),
      },
    };
  }

  /** Events last seen at or after `sinceMs`, worst and newest first, bounded. */
  eventsSince(sinceMs: number): { events: XidEventReport[]; truncated: number } {
    const entries = this.store.query({ sinceMs });
    const reports = entries.map((e): XidEventReport => {
      const entry = lookupXid(e.xid);
      const uuid = this.uuidByPci.get(e.gpuKey);
      return {
        xid: e.xid,
        name: entry.name,
        severity: severityForMessage(entry, e.lastMessage),
        action: entry.action,
        ...(e.gpuKey !== '' ? { pciBusId: e.gpuKey } : {}),
        ...(uuid !== undefined ? { gpuUuid: uuid } : {}),
        pid: e.pid,
        process: e.process === null ? null : sanitizeKernelText(e.process, MAX_PROCESS_CHARS),
        count: e.count,
        firstSeen: new Date(e.firstSeenMs).toISOString(),
        lastSeen: new Date(e.lastSeenMs).toISOString(),
        message: sanitizeKernelText(e.lastMessage),
        sources: [...e.sources],
      };
    });
    const rank = { critical: 0, warning: 1, info: 2 } as const;
    reports.sort((a, b) => rank[a.severity] - rank[b.severity] || b.lastSeen.localeCompare(a.lastSeen));
    return { events: reports.slice(0, MAX_REPORTED_XID_EVENTS), truncated: Math.max(0, reports.length - MAX_REPORTED_XID_EVENTS) };
  }

  private onKmsgXid(e: KmsgXidEvent): void {
    this.store.add({ gpuKey: e.pciBusId, xid: e.xid, pid: e.pid, process: e.process, message: e.message, timeMs: e.timeMs, source: 'kmsg' });
    this.options.onXid?.(e.xid, 'kmsg');
  }

  private onKmsgContext(e: KmsgContextEvent): void {
    if (e.kind === 'gpu-uuid') this.uuidByPci.set(e.pciBusId, e.uuid);
  }

  private onNvmlEvent(e: NvmlEvent): void {
    if (e.type !== 'xid' || e.xid === undefined) return;
    const gpuKey = (e.pciBusId !== undefined ? normalizePciBusId(e.pciBusId) : null) ?? '';
    if (gpuKey !== '' && e.gpuUuid !== undefined) this.uuidByPci.set(gpuKey, e.gpuUuid);
    const entry = lookupXid(e.xid);
    this.store.add({ gpuKey, xid: e.xid, pid: null, process: null, message: `${entry.name} (reported by the NVML event API)`, timeMs: Date.parse(e.time), source: 'nvml' });
    this.options.onXid?.(e.xid, 'nvml');
  }
}

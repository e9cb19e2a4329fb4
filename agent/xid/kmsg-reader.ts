/**
 * Reads the kernel log from /dev/kmsg and emits parsed XID events. It follows the kernel's
 * record semantics (Documentation/ABI/testing/dev-kmsg): one record per read(), EAGAIN at the
 * end, EPIPE when records were overwritten (counted, not fatal), EINVAL for a record larger than
 * the buffer (skipped). It never blocks a libuv thread: the device is opened O_NONBLOCK once and
 * drained on a timer. A regular file or FIFO works as a stand-in (tests, replay): their reads
 * return several lines at once and 0 at the end, so bytes are split into lines either way.
 * A cursor (boot_id + last seq) persisted to a file lets a restarted agent neither re-report
 * nor miss records.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { KernelLogScanner, type ParsedBusLost, type ParsedGpuUuid, type ParsedSxid, type ParsedXid } from './parser.js';

/** The three system calls the reader makes; injectable so tests can feed EAGAIN/EPIPE/EINVAL. */
export interface KmsgSyscalls {
  open(filePath: string, flags: number): number;
  /** Reads into `buffer` from the current position; returns bytes read (0 = end of file). Throws errors with `code`. */
  read(fd: number, buffer: Buffer): number;
  close(fd: number): void;
}

/** The real system calls (fs.openSync/readSync/closeSync). */
export const nodeKmsgSyscalls: KmsgSyscalls = {
  open: (filePath, flags) => fs.openSync(filePath, flags),
  read: (fd, buffer) => fs.readSync(fd, buffer, 0, buffer.length, null),
  close: (fd) => fs.closeSync(fd),
};

/** Clocks used to turn a record's monotonic timestamp into wall-clock time. */
export interface KmsgClock {
  /** Wall clock, epoch milliseconds. */
  nowMs(): number;
  /** CLOCK_MONOTONIC in microseconds (the printk clock's base). */
  monotonicUs(): bigint;
}

const NS_PER_US = 1000n;
const US_PER_MS = 1000;

/** Date.now() and process.hrtime.bigint() (CLOCK_MONOTONIC). */
export const systemKmsgClock: KmsgClock = {
  nowMs: () => Date.now(),
  monotonicUs: () => process.hrtime.bigint() / NS_PER_US,
};

/** Options for KmsgReader. */
export interface KmsgReaderOptions {
  /** Device or stand-in file/FIFO. Default /dev/kmsg. */
  readonly path?: string;
  /** Poll interval; each tick drains until EAGAIN/EOF. Default 500 ms. */
  readonly pollIntervalMs?: number;
  /** Where the cursor is persisted (atomic temp+rename); no persistence when omitted. */
  readonly cursorPath?: string;
  /**
   * Resume after this position instead of reading cursorPath (the owner persists the cursor
   * together with what it derived from the records, so the two cannot disagree after a crash).
   */
  readonly resumeAfter?: KmsgCursor | null;
  /** Least time between cursor writes (the final write on stop() is not throttled). Default 5 s. */
  readonly cursorFlushMs?: number;
  /** Source of the boot identity. Default /proc/sys/kernel/random/boot_id. */
  readonly bootIdPath?: string;
  readonly syscalls?: KmsgSyscalls;
  readonly clock?: KmsgClock;
  /** Stops the reader when aborted. */
  readonly signal?: AbortSignal;
}

/** Delivery metadata shared by every event. */
export interface KmsgEventMeta {
  /** The kernel's record sequence number; null for plain-text lines of a stand-in file. */
  readonly seq: number | null;
  /** syslog priority (facility*8 + level); null for plain-text lines. */
  readonly priority: number | null;
  /** Wall-clock time (epoch ms) derived from the record's monotonic timestamp, else read time. */
  readonly timeMs: number;
}

/** An XID event read from the kernel log. */
export type KmsgXidEvent = ParsedXid & KmsgEventMeta;
/** A context line (PCI→UUID mapping, bus loss, NVSwitch SXid) read from the kernel log. */
export type KmsgContextEvent = (ParsedGpuUuid | ParsedBusLost | ParsedSxid) & KmsgEventMeta;

/** Counters exposed for metrics and /readyz. */
export interface KmsgReaderStats {
  /** Kernel records (or stand-in lines) processed, skipped ones included. */
  readonly records: number;
  /** Records at or below the persisted cursor, skipped after a restart. */
  readonly skipped: number;
  /** EPIPE results: the kernel overwrote records before we read them. */
  readonly lost: number;
  /** Records missing between sequence numbers (a lower bound of what `lost` cost). */
  readonly lostRecords: number;
  /** EINVAL results: records that did not fit the buffer and were skipped. */
  readonly invalid: number;
  /** Lines that could not be used (malformed record header, line over the size limit). */
  readonly parseErrors: number;
  /** Unexpected read errors (anything but EAGAIN/EPIPE/EINVAL). */
  readonly readErrors: number;
  readonly xidEvents: number;
  readonly cursorWriteErrors: number;
}

/** The persisted position: which boot, and the last sequence number handled. */
export interface KmsgCursor {
  readonly bootId: string;
  readonly seq: number;
}

/** Events emitted by KmsgReader. */
export interface KmsgReaderEvents {
  xid: [KmsgXidEvent];
  context: [KmsgContextEvent];
  /** Non-fatal problems (cursor write failed, unexpected read error); the reader keeps going. */
  warning: [Error];
  /** A poll read everything readable; `advanced` when records past the cursor were handled. */
  drained: [{ advanced: boolean }];
}

/** One read returns one record; the kernel caps records well below this (EINVAL beyond it). */
export const KMSG_BUFFER_BYTES = 8 * 1024;
/** Default poll interval. */
export const DEFAULT_KMSG_POLL_MS = 500;
/** Default least time between cursor writes. */
export const DEFAULT_CURSOR_FLUSH_MS = 5_000;
/** Reads per tick before yielding to the event loop (the next tick then runs immediately). */
const MAX_READS_PER_TICK = 4096;
/** A stand-in file's line longer than this is dropped, so memory stays bounded. */
const MAX_PENDING_LINE_BYTES = 64 * 1024;
const NEWLINE = 0x0a;
const SPACE = 0x20;
const RECORD_HEADER_RE = /^(\d{1,4}),(\d{1,20}),(\d{1,20}),([^,;]*)(?:,[^;]*)?;/;
const LOOKS_LIKE_RECORD_RE = /^\d{1,4},\d/;
const ESCAPE_RE = /\\x([0-9a-fA-F]{2})/g;

function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

/** Undoes the kernel's `\xNN` escaping of non-printable bytes and backslashes (input decoded as latin1). */
export function unescapeKmsgText(latin1: string): string {
  return Buffer.from(
    latin1.replace(ESCAPE_RE, (_m, hex: string) => String.fromCharCode(Number.parseInt(hex, 16))),
    'latin1',
  ).toString('utf8');
}

/** A parsed `<prio>,<seq>,<ts_usec>,<flags>[,...];<text>` record header and text. */
export interface KmsgRecord {
  readonly priority: number;
  readonly seq: number;
  readonly tsUsec: bigint;
  readonly text: string;
}

/** Parses one record line (without its dictionary lines); null when it is not in record format. */
export function parseKmsgRecord(line: Buffer | string): KmsgRecord | null {
  const latin1 = typeof line === 'string' ? line : line.toString('latin1');
  const m = RECORD_HEADER_RE.exec(latin1);
  if (m === null) return null;
  const seq = Number(m[2]);
  if (!Number.isSafeInteger(seq)) return null;
  return {
    priority: Number(m[1]),
    seq,
    tsUsec: BigInt(m[3] ?? '0'),
    text: unescapeKmsgText(latin1.slice(m[0].length).replace(/\r?\n$/, '')),
  };
}

/** Reads cursor JSON; null when absent or unusable (then reading starts at the oldest record). */
export function readKmsgCursor(cursorPath: string): KmsgCursor | null {
  let raw: string;
  try {
    raw = fs.readFileSync(cursorPath, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return null;
    throw new Error(`cannot read kmsg cursor ${cursorPath}`, { cause: err });
  }
  try {
    const data: unknown = JSON.parse(raw);
    if (typeof data === 'object' && data !== null && 'bootId' in data && 'seq' in data) {
      const { bootId, seq } = data as { bootId: unknown; seq: unknown };
      if (typeof bootId === 'string' && typeof seq === 'number' && Number.isSafeInteger(seq) && seq >= 0) return { bootId, seq };
    }
    return null;
  } catch {
    // A torn or hand-edited cursor is not worth failing over: start from the oldest record.
    return null;
  }
}

/** Writes the cursor atomically (temp file + rename), so a crash never leaves half a file. */
export function writeKmsgCursor(cursorPath: string, cursor: KmsgCursor): void {
  const tmp = path.join(path.dirname(cursorPath), `.${path.basename(cursorPath)}.${process.pid}.tmp`);
  fs.writeFileSync(tmp, `${JSON.stringify(cursor)}\n`, { mode: 0o600 });
  fs.renameSync(tmp, cursorPath);
}

/** The boot identity (`/proc/sys/kernel/random/boot_id`); null when unreadable or empty. */
export function readBootId(bootIdPath: string): string | null {
  try {
    const id = fs.readFileSync(bootIdPath, 'utf8').trim();
    return id === '' ? null : id;
  } catch {
    // Without a boot id the cursor cannot be trusted across reboots; read everything instead.
    return null;
  }
}

/** The /dev/kmsg reader: owns exactly one file descriptor between start() and stop(). */
export class KmsgReader extends EventEmitter<KmsgReaderEvents> {
  private readonly filePath: string;
  private readonly pollIntervalMs: number;
  private readonly cursorPath: string | undefined;
  private readonly resumeAfter: KmsgCursor | null | undefined;
  private readonly cursorFlushMs: number;
  private scanner = new KernelLogScanner();
  private readonly bootIdPath: string;
  private readonly sys: KmsgSyscalls;
  private readonly clock: KmsgClock;
  private readonly signal: AbortSignal | undefined;
  private readonly buffer = Buffer.allocUnsafe(KMSG_BUFFER_BYTES);
  private fd: number | null = null;
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private inDictionary = false;
  private bootId: string | null = null;
  private skipThroughSeq = -1;
  private lastSeq: number | null = null;
  private afterEpipe = false;
  private cursorDirty = false;
  private lastCursorWriteMs = 0;
  private readonly onAbort = (): void => this.stop();
  private counters = {
    records: 0,
    skipped: 0,
    lost: 0,
    lostRecords: 0,
    invalid: 0,
    parseErrors: 0,
    readErrors: 0,
    xidEvents: 0,
    cursorWriteErrors: 0,
  };

  constructor(options: KmsgReaderOptions = {}) {
    super();
    this.filePath = options.path ?? '/dev/kmsg';
    this.pollIntervalMs = options.pollIntervalMs ?? DEFAULT_KMSG_POLL_MS;
    if (!(this.pollIntervalMs > 0)) throw new RangeError(`pollIntervalMs must be > 0, got ${String(options.pollIntervalMs)}`);
    this.cursorPath = options.cursorPath;
    this.resumeAfter = options.resumeAfter;
    this.cursorFlushMs = options.cursorFlushMs ?? DEFAULT_CURSOR_FLUSH_MS;
    this.bootIdPath = options.bootIdPath ?? '/proc/sys/kernel/random/boot_id';
    this.sys = options.syscalls ?? nodeKmsgSyscalls;
    this.clock = options.clock ?? systemKmsgClock;
    this.signal = options.signal;
  }

  /** True between a successful start() and stop(). */
  get running(): boolean {
    return this.fd !== null;
  }

  /** The boot and last sequence number handled so far; null before any record (or without a boot id). */
  position(): KmsgCursor | null {
    return this.bootId === null || this.lastSeq === null ? null : { bootId: this.bootId, seq: this.lastSeq };
  }

  /** The boot identity read at start(); null when unknown. */
  get currentBootId(): string | null {
    return this.bootId;
  }

  /** A snapshot of the counters. */
  stats(): KmsgReaderStats {
    return { ...this.counters };
  }

  /**
   * Opens the log once and starts polling; idempotent. Throws (with cause) when the log cannot be
   * opened. `resumeAfter` overrides the resumeAfter option / cursor file.
   */
  start(resumeAfter?: KmsgCursor | null): void {
    if (this.fd !== null || this.signal?.aborted === true) return;
    this.bootId = readBootId(this.bootIdPath);
    const given = resumeAfter !== undefined ? resumeAfter : this.resumeAfter;
    const cursor = given !== undefined ? given : this.cursorPath === undefined ? null : readKmsgCursor(this.cursorPath);
    // Same boot: the seq space continues, skip what was handled. Another boot: start at the oldest record.
    this.skipThroughSeq = cursor !== null && this.bootId !== null && cursor.bootId === this.bootId ? cursor.seq : -1;
    this.lastSeq = null;
    this.pending = [];
    this.pendingBytes = 0;
    this.inDictionary = false;
    this.scanner = new KernelLogScanner();
    try {
      this.fd = this.sys.open(this.filePath, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    } catch (err) {
      throw new Error(`cannot open kernel log ${this.filePath}`, { cause: err });
    }
    this.signal?.addEventListener('abort', this.onAbort, { once: true });
    this.timer = setInterval(() => this.tick(), this.pollIntervalMs);
    this.timer.unref();
    this.scheduleImmediate();
  }

  /** Stops polling, persists the cursor and closes the descriptor; idempotent. No read happens after it returns. */
  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    if (this.immediate !== null) clearImmediate(this.immediate);
    this.immediate = null;
    this.signal?.removeEventListener('abort', this.onAbort);
    const fd = this.fd;
    if (fd === null) return;
    this.fd = null;
    this.flushCursor(true);
    try {
      this.sys.close(fd);
    } catch (err) {
      this.emit('warning', new Error(`closing kernel log ${this.filePath} failed`, { cause: err }));
    }
  }

  /** Drains everything readable now (what each timer tick does); returns the number of reads. */
  pollNow(): number {
    return this.drain(Number.MAX_SAFE_INTEGER);
  }

  private scheduleImmediate(): void {
    if (this.immediate !== null) return;
    this.immediate = setImmediate(() => {
      this.immediate = null;
      this.tick();
    });
    this.immediate.unref();
  }

  private tick(): void {
    const reads = this.drain(MAX_READS_PER_TICK);
    // More may be waiting (a large backlog at start-up): continue without waiting a full interval.
    if (reads >= MAX_READS_PER_TICK && this.fd !== null) this.scheduleImmediate();
  }

  private drain(maxReads: number): number {
    const fd = this.fd;
    const seqBefore = this.lastSeq;
    const recordsBefore = this.counters.records;
    let reads = 0;
    while (this.fd === fd && fd !== null && reads < maxReads) {
      let n: number;
      try {
        n = this.sys.read(fd, this.buffer);
      } catch (err) {
        const code = errnoCode(err);
        if (code === 'EAGAIN' || code === 'EWOULDBLOCK') break;
        reads += 1;
        if (code === 'EPIPE') {
          // Records were overwritten; the position moved to the oldest record still held.
          this.counters.lost += 1;
          this.afterEpipe = true;
          continue;
        }
        if (code === 'EINVAL') {
          this.counters.invalid += 1;
          continue;
        }
        this.counters.readErrors += 1;
        this.emit('warning', new Error(`reading kernel log ${this.filePath} failed`, { cause: err }));
        break;
      }
      if (n === 0) break;
      reads += 1;
      this.consume(this.buffer.subarray(0, n));
    }
    this.flushCursor(false);
    this.emit('drained', { advanced: this.lastSeq !== seqBefore || this.counters.records !== recordsBefore });
    return reads;
  }

  private consume(chunk: Buffer): void {
    let start = 0;
    for (let i = chunk.indexOf(NEWLINE); i >= 0 && this.fd !== null; i = chunk.indexOf(NEWLINE, start)) {
      const part = chunk.subarray(start, i);
      start = i + 1;
      if (this.pendingBytes > 0) {
        this.pending.push(part);
        const line = Buffer.concat(this.pending);
        this.pending = [];
        this.pendingBytes = 0;
        this.handleLine(line);
      } else {
        this.handleLine(part);
      }
    }
    if (start < chunk.length && this.fd !== null) {
      // A partial line (stand-in files only: a device read is always one whole record). Copy it:
      // the read buffer is reused.
      const rest = Buffer.from(chunk.subarray(start));
      this.pendingBytes += rest.length;
      if (this.pendingBytes > MAX_PENDING_LINE_BYTES) {
        this.counters.parseErrors += 1;
        this.pending = [];
        this.pendingBytes = 0;
      } else {
        this.pending.push(rest);
      }
    }
  }

  private handleLine(line: Buffer): void {
    if (line.length === 0) return;
    // Dictionary lines (` SUBSYSTEM=pci`) follow their record; they carry nothing we need.
    if (line[0] === SPACE && this.inDictionary) return;
    const record = parseKmsgRecord(line);
    if (record === null) {
      this.inDictionary = false;
      const text = line.toString('utf8');
      if (LOOKS_LIKE_RECORD_RE.test(text)) {
        this.counters.parseErrors += 1;
        return;
      }
      this.counters.records += 1;
      this.dispatch(text.replace(/\r$/, ''), { seq: null, priority: null, timeMs: this.clock.nowMs() });
      return;
    }
    this.inDictionary = true;
    this.counters.records += 1;
    if (this.lastSeq !== null && record.seq > this.lastSeq + 1 && this.afterEpipe) {
      this.counters.lostRecords += record.seq - this.lastSeq - 1;
    }
    this.afterEpipe = false;
    if (record.seq <= this.skipThroughSeq) {
      this.counters.skipped += 1;
      this.lastSeq = record.seq;
      return;
    }
    this.lastSeq = record.seq;
    this.cursorDirty = true;
    this.dispatch(record.text, { seq: record.seq, priority: record.priority, timeMs: this.wallTimeMs(record.tsUsec) });
  }

  private dispatch(text: string, meta: KmsgEventMeta): void {
    const parsed = this.scanner.push(text);
    if (parsed === null) return;
    if (parsed.kind === 'xid') {
      this.counters.xidEvents += 1;
      this.emit('xid', { ...parsed, ...meta });
    } else {
      this.emit('context', { ...parsed, ...meta });
    }
  }

  private wallTimeMs(tsUsec: bigint): number {
    const ageUs = this.clock.monotonicUs() - tsUsec;
    return this.clock.nowMs() - Number(ageUs) / US_PER_MS;
  }

  private flushCursor(force: boolean): void {
    if (this.cursorPath === undefined || !this.cursorDirty || this.bootId === null || this.lastSeq === null) return;
    const now = this.clock.nowMs();
    if (!force && now - this.lastCursorWriteMs < this.cursorFlushMs) return;
    try {
      writeKmsgCursor(this.cursorPath, { bootId: this.bootId, seq: this.lastSeq });
      this.cursorDirty = false;
      this.lastCursorWriteMs = now;
    } catch (err) {
      this.counters.cursorWriteErrors += 1;
      this.emit('warning', new Error(`writing kmsg cursor ${this.cursorPath} failed`, { cause: err }));
    }
  }
}

/**
 * Pure decoder for one line of an exported kernel log, whatever tool wrote it: raw `dmesg`
 * (`-r`, `--decode`, `-T` in any language), syslog, `journalctl -o short*`, `-o json` and
 * `-o json-seq`, and `/dev/kmsg` dumps. The format is detected per line, because a file made
 * with `cat` may mix them. The result is the kernel's message text (for plain-text formats the
 * whole line: parseKernelLine finds `NVRM:` inside) plus whatever time the format carries.
 * Nothing here throws.
 */
import { parseKmsgRecord } from '../../agent/xid/kmsg-reader.js';
import { parseLineTime } from '../../agent/xid/parser.js';

/** One input line read as a kernel message. */
export interface KernelLogLine {
  /** The kernel's message: kmsg text unescaped, journald MESSAGE decoded, else the whole line. */
  readonly text: string;
  /**
   * Wall-clock time: ISO 8601 UTC (`...Z`) when the format carries a zone or an epoch, zone-less
   * local `YYYY-MM-DDTHH:MM:SS` for `dmesg -T`, or null (unknown, or not at the head of the line).
   */
  readonly timestamp: string | null;
  /** Seconds since boot, or null. */
  readonly uptimeSeconds: number | null;
}

/** Why a line was skipped unread; callers count these so the loss is visible. */
export type SkipReason = 'oversize' | 'malformedJson';

/** A line that could not be read. */
export interface SkippedLine {
  readonly skipped: SkipReason;
}

/** Longest line read, as parseKernelLine's bound: the kernel caps a record near 1 KiB. */
export const MAX_KERNEL_LOG_LINE = 64 * 1024;

const US_PER_MS = 1_000;
const US_PER_S = 1_000_000;
const MAX_BYTE = 0xff;
const OVERSIZE: SkippedLine = { skipped: 'oversize' };
const MALFORMED_JSON: SkippedLine = { skipped: 'malformedJson' };

// /dev/kmsg dictionary lines (` SUBSYSTEM=pci`, ` DEVICE=+pci:0000:3b:00.0`) follow their record.
const KMSG_DICTIONARY_RE = /^ [A-Z][A-Z0-9_]*=/;
// `<prio>,<seq>,<ts_usec>,...;` (parseKmsgRecord checks the rest).
const KMSG_RECORD_RE = /^\d{1,4},\d/;
const BOM = '\uFEFF';
// `journalctl -o json-seq` puts an RS before each JSON object.
const RECORD_SEPARATOR = '\u001e';
// `dmesg -r` starts a line with `<4>`, `dmesg --decode` with `kern  :warn  : ` (padded names).
const DMESG_HEAD = String.raw`^(?:<\d{1,3}>|[a-z0-9]+ *:[a-z]+ *: )?`;
// `[  179.437933]` (dmesg, journalctl -o short-monotonic) or `[  179.437933 <    0.000006>]` (-o short-delta, dmesg -d).
const UPTIME_HEAD_RE = new RegExp(String.raw`${DMESG_HEAD}\[\s*(\d{1,10}\.\d{1,9})(?: <\s*\d{1,10}\.\d{1,9}>)?\]`);
// `dmesg -T` prints strftime("%a %b %e %H:%M:%S %Y") in the reader's locale: `[Di Mär  4 10:00:00 2025]`.
const CTIME_HEAD_RE = new RegExp(String.raw`${DMESG_HEAD}\[\S+ +(\S+) +(\d{1,2}) (\d{2}:\d{2}:\d{2}) (\d{4})\]`);
// journalctl -o short-iso(-precise), dmesg --time-format iso: `2025-02-23T16:24:18+0100 host ...`.
const ISO_HEAD_RE = /^\d{4}-\d{2}-\d{2}T\S+/;
// journalctl -o short-unix: `1740324258.116522 host kernel: ...`.
const EPOCH_HEAD_RE = /^(\d{9,11})\.(\d{6}) /;
// Chinese, Japanese and Korean month names are numbers: ` 2月`, `2월`.
const NUMERIC_MONTH_RE = /^(\d{1,2})[月월]$/;

/**
 * glibc and CLDR month abbreviations (lowercase, trailing dot removed), by month: English,
 * German, French, Spanish, Italian, Portuguese, Dutch, Scandinavian, Russian. Only names that
 * mean the same month in every language are listed (not Polish `lis`, which is October in
 * Croatian); an unknown name leaves the timestamp null rather than guessing.
 */
const MONTH_NAMES: readonly (readonly string[])[] = [
  ['jan', 'jän', 'janv', 'ene', 'gen', 'янв'],
  ['feb', 'févr', 'fév', 'fev', 'фев', 'февр'],
  ['mar', 'mär', 'märz', 'mrz', 'mars', 'mrt', 'мар'],
  ['apr', 'avr', 'avril', 'abr', 'апр'],
  ['may', 'mai', 'mag', 'mei', 'maj', 'мая', 'май'],
  ['jun', 'juni', 'juin', 'giu', 'июн'],
  ['jul', 'juli', 'juil', 'lug', 'июл'],
  ['aug', 'août', 'aoû', 'ago', 'авг'],
  ['sep', 'sept', 'set', 'сен', 'сент'],
  ['oct', 'okt', 'ott', 'out', 'окт'],
  ['nov', 'ноя', 'нояб'],
  ['dec', 'dez', 'déc', 'dic', 'des', 'дек'],
];
const MONTHS = new Map(MONTH_NAMES.flatMap((names, i) => names.map((name) => [name, i + 1] as const)));
const LAST_MONTH = 12;

function monthNumber(name: string): number | null {
  const key = name.normalize('NFC').toLowerCase().replace(/\.$/, '');
  const numeric = NUMERIC_MONTH_RE.exec(key);
  if (numeric === null) return MONTHS.get(key) ?? null;
  const month = Number(numeric[1]);
  return month >= 1 && month <= LAST_MONTH ? month : null;
}

/** The time at the head of a plain-text line, in the formats that put one there. */
function headTimestamp(line: string): string | null {
  const iso = ISO_HEAD_RE.exec(line);
  if (iso !== null) return parseLineTime(iso[0]).timestamp;
  const epoch = EPOCH_HEAD_RE.exec(line);
  if (epoch !== null) return new Date(Number(epoch[1]) * US_PER_MS + Math.floor(Number(epoch[2]) / US_PER_MS)).toISOString();
  const ct = CTIME_HEAD_RE.exec(line);
  const month = ct === null ? null : monthNumber(ct[1] ?? '');
  if (ct === null || month === null) return null;
  const [, , day = '', time = '', year = ''] = ct;
  return `${year}-${String(month).padStart(2, '0')}-${day.padStart(2, '0')}T${time}`;
}

/** A journald microsecond field (`"1740324258116522"`) as a number, else null. */
function microseconds(value: unknown): number | null {
  return typeof value === 'string' && /^\d{1,17}$/.test(value) ? Number(value) : null;
}

/** journald MESSAGE: a string, or an array of byte values when it was not printable UTF-8. */
function messageText(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (!Array.isArray(value) || !value.every((b) => Number.isInteger(b) && b >= 0 && b <= MAX_BYTE)) return null;
  return Buffer.from(value as number[]).toString('utf8');
}

function journalEntry(line: string): KernelLogLine | SkippedLine | null {
  let entry: unknown;
  try {
    entry = JSON.parse(line);
  } catch {
    // A torn or hand-edited line; the caller counts it.
    return MALFORMED_JSON;
  }
  if (typeof entry !== 'object' || entry === null) return MALFORMED_JSON;
  const fields = entry as Record<string, unknown>;
  // MESSAGE is null when journald stored a field too large to print; nothing to read then.
  const text = messageText(fields['MESSAGE']);
  if (text === null) return null;
  const realtime = microseconds(fields['__REALTIME_TIMESTAMP']);
  // The kernel's own record time; __MONOTONIC_TIMESTAMP is when journald read it.
  const monotonic = microseconds(fields['_SOURCE_MONOTONIC_TIMESTAMP']);
  return {
    text,
    timestamp: realtime === null ? null : new Date(Math.floor(realtime / US_PER_MS)).toISOString(),
    uptimeSeconds: monotonic === null ? null : monotonic / US_PER_S,
  };
}

function kmsgRecord(line: string): KernelLogLine | null {
  // The kernel escapes every byte outside printable ASCII as \xNN; parseKmsgRecord reads the
  // line as latin1, so pass the bytes to keep anything else intact.
  const record = parseKmsgRecord(Buffer.from(line, 'utf8'));
  return record === null ? null : { text: record.text, timestamp: null, uptimeSeconds: Number(record.tsUsec) / US_PER_S };
}

/**
 * Reads one input line (without its `\n`). Returns null for lines that carry no message (blank,
 * kmsg dictionary lines, journald entries without MESSAGE), a SkippedLine for lines over
 * MAX_KERNEL_LOG_LINE or malformed JSON, else the message and its time.
 */
export function decodeKernelLogLine(raw: string): KernelLogLine | SkippedLine | null {
  if (raw.length > MAX_KERNEL_LOG_LINE) return OVERSIZE;
  // NULs pad log files that a crash cut short; a BOM and CRLF come from Windows editors.
  let line = raw.includes('\0') ? raw.replaceAll('\0', '') : raw;
  if (line.startsWith(BOM)) line = line.slice(BOM.length);
  if (line.startsWith(RECORD_SEPARATOR)) line = line.slice(RECORD_SEPARATOR.length);
  while (line.endsWith('\r')) line = line.slice(0, -1);
  if (!/\S/.test(line) || KMSG_DICTIONARY_RE.test(line)) return null;
  if (line.startsWith('{')) return journalEntry(line);
  const record = KMSG_RECORD_RE.test(line) ? kmsgRecord(line) : null;
  if (record !== null) return record;
  const uptime = UPTIME_HEAD_RE.exec(line);
  return { text: line, timestamp: headTimestamp(line), uptimeSeconds: uptime === null ? null : Number(uptime[1]) };
}

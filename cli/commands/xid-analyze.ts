/**
 * `gpudiag xid analyze [--format table|jsonl] [FILE|-]`: finds NVIDIA XID errors in kernel-log
 * text (dmesg, dmesg -T, syslog, journalctl, /dev/kmsg dumps), streaming line by line so huge
 * files are fine. Input is untrusted text: it is parsed, never executed, and control characters
 * are neutralised before they reach a terminal.
 */
import fs from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import {
  compareSeverity,
  lookupXid,
  severityForMessage,
  type XidSeverity,
} from '../../agent/xid/catalog.js';
import { parseKernelLine, parseLineTime } from '../../agent/xid/parser.js';
import { readLines } from '../../lib/lines.js';
import { decodeKernelLogLine, MAX_KERNEL_LOG_LINE, type SkipReason } from './kernel-log-input.js';

/** Streams the command reads and writes (the process's by default; tests may pass their own). */
export interface XidAnalyzeIo {
  readonly stdin: Readable;
  readonly stdout: Writable;
  readonly stderr: Writable;
}

/** Output formats. */
export type XidAnalyzeFormat = 'table' | 'jsonl';

const FORMATS: readonly XidAnalyzeFormat[] = ['table', 'jsonl'];
const DEFAULT_FORMAT: XidAnalyzeFormat = 'table';
const COMMAND = 'gpudiag xid analyze';
const EXIT_OK = 0;
const EXIT_IO_ERROR = 1;
const EXIT_USAGE = 2;
/** Distinct (GPU, XID) groups the table keeps; beyond it events are counted but not listed. */
const MAX_TABLE_GROUPS = 10_000;
/** Message width in the table; the full text is in the jsonl output. */
const TABLE_MESSAGE_WIDTH = 72;

const HELP = `usage: ${COMMAND} [--format table|jsonl] [FILE|-]

Finds NVIDIA XID errors ("NVRM: Xid (PCI:...): <code>, ...") in kernel-log text and explains
them with the built-in XID catalog. Reads FILE, or standard input when FILE is "-" or absent.

input formats, detected line by line (so exports joined with cat may mix them):
  dmesg, dmesg -r, dmesg --decode, dmesg -d, dmesg --time-format iso, and dmesg -T in any
    language (times read for English, German, French, Spanish, Italian, Portuguese, Dutch,
    Scandinavian, Russian, Chinese, Japanese and Korean month names; others leave it unset)
  syslog files
  journalctl -o short, short-iso, short-precise, short-monotonic, short-delta, short-unix,
    json and json-seq (MESSAGE as text or as a byte array)
  /dev/kmsg dumps (cat /dev/kmsg): \\xNN escapes undone, dictionary lines ignored
CRLF line ends, a UTF-8 BOM and NUL padding are tolerated. Lines over ${MAX_KERNEL_LOG_LINE / 1024} KiB and
malformed JSON lines are skipped and counted in the summary; other lines are ignored.

options:
  --format table   (default) one row per GPU and XID with counts, worst first, and a summary
  --format jsonl   one JSON object per XID line: line, xid, pciBusId, pid, process, message,
                   name, severity, action, category (+ gpuInstance, uuid, timestamp,
                   uptimeSeconds when known)
  -h, --help       show this help

exit status: 0 on success, 1 when the input cannot be read, 2 on a usage error.
`;

interface ParsedArgs {
  readonly format: XidAnalyzeFormat;
  readonly file: string | null;
  readonly help: boolean;
}

class UsageError extends Error {
  override readonly name = 'UsageError';
}

function parseArgs(args: readonly string[]): ParsedArgs {
  let format: XidAnalyzeFormat = DEFAULT_FORMAT;
  let file: string | null = null;
  let help = false;
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i] ?? '';
    if (arg === '-h' || arg === '--help') {
      help = true;
    } else if (arg === '--format' || arg.startsWith('--format=')) {
      const value = arg === '--format' ? args[(i += 1)] : arg.slice('--format='.length);
      const match = FORMATS.find((f) => f === value);
      if (match === undefined) throw new UsageError(`--format must be one of ${FORMATS.join('|')}${value === undefined ? '' : `, got "${value}"`}`);
      format = match;
    } else if (arg === '--') {
      for (const rest of args.slice(i + 1)) {
        if (file !== null) throw new UsageError(`expected at most one FILE, got "${file}" and "${rest}"`);
        file = rest;
      }
      break;
    } else if (arg.startsWith('-') && arg !== '-') {
      throw new UsageError(`unknown flag "${arg}"`);
    } else {
      if (file !== null) throw new UsageError(`expected at most one FILE, got "${file}" and "${arg}"`);
      file = arg;
    }
  }
  return { format, file, help };
}

/** One XID event as written in jsonl. */
interface XidRow {
  line: number;
  xid: number;
  pciBusId: string;
  pid: number | null;
  process: string | null;
  message: string;
  name: string;
  severity: XidSeverity;
  action: string;
  category: string;
  gpuInstance?: number;
  uuid?: string;
  timestamp?: string;
  uptimeSeconds?: number;
}

interface Group {
  pciBusId: string;
  xid: number;
  uuid: string | undefined;
  count: number;
  worst: XidSeverity;
  firstLine: number;
  lastLine: number;
  lastMessage: string;
}

/** Replaces control characters (terminal escape sequences included) with U+FFFD. */
function printable(text: string): string {
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '\uFFFD');
}

function truncate(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, width - 1)}…`;
}

async function write(out: Writable, text: string): Promise<void> {
  if (!out.write(text)) {
    await new Promise<void>((resolve, reject) => {
      const onDrain = (): void => {
        out.off('error', onError);
        resolve();
      };
      const onError = (err: Error): void => {
        out.off('drain', onDrain);
        reject(err);
      };
      out.once('drain', onDrain);
      out.once('error', onError);
    });
  }
}

function renderTable(
  groups: Group[],
  totals: { events: number; bySeverity: Record<XidSeverity, number>; busLost: number; overflow: number; skipped: Record<SkipReason, number> },
): string {
  const sorted = [...groups].sort((a, b) => compareSeverity(b.worst, a.worst) || b.count - a.count || a.pciBusId.localeCompare(b.pciBusId) || a.xid - b.xid);
  const header = ['SEVERITY', 'XID', 'NAME', 'PCI', 'COUNT', 'LINES', 'ACTION', 'LAST MESSAGE'];
  const rows = sorted.map((g) => {
    const entry = lookupXid(g.xid);
    return [
      g.worst,
      String(g.xid),
      entry.name,
      g.uuid === undefined ? g.pciBusId : `${g.pciBusId} (${g.uuid})`,
      String(g.count),
      g.firstLine === g.lastLine ? String(g.firstLine) : `${g.firstLine}-${g.lastLine}`,
      entry.action,
      truncate(printable(g.lastMessage), TABLE_MESSAGE_WIDTH),
    ];
  });
  const lines: string[] = [];
  if (rows.length > 0) {
    const widths = header.map((h, col) => Math.max(h.length, ...rows.map((r) => (r[col] ?? '').length)));
    const format = (cells: string[]): string =>
      cells
        .map((c, col) => (col === cells.length - 1 ? c : c.padEnd(widths[col] ?? 0)))
        .join('  ')
        .trimEnd();
    lines.push(format(header), ...rows.map(format), '');
  }
  const gpus = new Set(groups.map((g) => g.pciBusId)).size;
  const parts = (['critical', 'warning', 'info'] as const).map((s) => `${totals.bySeverity[s]} ${s}`);
  let summary = `${totals.events} XID event${totals.events === 1 ? '' : 's'} (${groups.length + totals.overflow} distinct) on ${gpus} GPU${gpus === 1 ? '' : 's'}: ${parts.join(', ')}`;
  if (totals.busLost > 0) summary += `; ${totals.busLost} "fallen off the bus" line${totals.busLost === 1 ? '' : 's'} without an XID`;
  if (totals.overflow > 0) summary += `; ${totals.overflow} further groups not listed`;
  const { oversize, malformedJson } = totals.skipped;
  if (oversize > 0) summary += `; ${oversize} line${oversize === 1 ? '' : 's'} over ${MAX_KERNEL_LOG_LINE / 1024} KiB skipped`;
  if (malformedJson > 0) summary += `; ${malformedJson} malformed JSON line${malformedJson === 1 ? '' : 's'} skipped`;
  lines.push(summary, '');
  return lines.join('\n');
}

async function analyze(input: Readable, format: XidAnalyzeFormat, out: Writable): Promise<void> {
  const uuids = new Map<string, string>();
  const groups = new Map<string, Group>();
  const totals = { events: 0, bySeverity: { info: 0, warning: 0, critical: 0 }, busLost: 0, overflow: 0, skipped: { oversize: 0, malformedJson: 0 } };
  let lineNo = 0;
  for await (const raw of readLines(input, MAX_KERNEL_LOG_LINE)) {
    lineNo += 1;
    const decoded = raw === null ? ({ skipped: 'oversize' } as const) : decodeKernelLogLine(raw);
    if (decoded === null) continue;
    if ('skipped' in decoded) {
      totals.skipped[decoded.skipped] += 1;
      continue;
    }
    const parsed = parseKernelLine(decoded.text);
    if (parsed === null) continue;
    if (parsed.kind === 'gpu-uuid') {
      uuids.set(parsed.pciBusId, parsed.uuid);
      continue;
    }
    if (parsed.kind === 'bus-lost') {
      totals.busLost += 1;
      continue;
    }
    const entry = lookupXid(parsed.xid);
    const severity = severityForMessage(entry, parsed.message);
    const uuid = uuids.get(parsed.pciBusId);
    totals.events += 1;
    totals.bySeverity[severity] += 1;
    if (format === 'jsonl') {
      // The format's own time first (journald, kmsg, localized dmesg -T), else what the prefix says.
      const prefixTime = parseLineTime(parsed.prefix);
      const time = { timestamp: decoded.timestamp ?? prefixTime.timestamp, uptimeSeconds: decoded.uptimeSeconds ?? prefixTime.uptimeSeconds };
      const row: XidRow = {
        line: lineNo,
        xid: parsed.xid,
        pciBusId: parsed.pciBusId,
        pid: parsed.pid,
        process: parsed.process,
        message: parsed.message,
        name: entry.name,
        severity,
        action: entry.action,
        category: entry.category,
        ...(parsed.gpuInstance === null ? {} : { gpuInstance: parsed.gpuInstance }),
        ...(uuid === undefined ? {} : { uuid }),
        ...(time.timestamp === null ? {} : { timestamp: time.timestamp }),
        ...(time.uptimeSeconds === null ? {} : { uptimeSeconds: time.uptimeSeconds }),
      };
      await write(out, `${JSON.stringify(row)}\n`);
      continue;
    }
    const key = `${parsed.pciBusId}|${parsed.xid}`;
    const group = groups.get(key);
    if (group !== undefined) {
      group.count += 1;
      group.lastLine = lineNo;
      group.lastMessage = parsed.message;
      if (compareSeverity(severity, group.worst) > 0) group.worst = severity;
      if (uuid !== undefined) group.uuid = uuid;
    } else if (groups.size < MAX_TABLE_GROUPS) {
      groups.set(key, { pciBusId: parsed.pciBusId, xid: parsed.xid, uuid, count: 1, worst: severity, firstLine: lineNo, lastLine: lineNo, lastMessage: parsed.message });
    } else {
      totals.overflow += 1;
    }
  }
  if (format === 'table') await write(out, renderTable([...groups.values()], totals));
}

async function openInput(file: string | null, stdin: Readable): Promise<Readable> {
  if (file === null || file === '-') return stdin;
  const handle = await fs.promises.open(file, 'r');
  return handle.createReadStream({ autoClose: true });
}

/** Runs `gpudiag xid analyze`; returns the exit code (0 ok, 1 unreadable input, 2 usage error). */
export async function runXidAnalyze(args: string[], io: XidAnalyzeIo = process): Promise<number> {
  let parsed: ParsedArgs;
  try {
    parsed = parseArgs(args);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.stderr.write(`${COMMAND}: ${err.message}\nRun \`${COMMAND} --help\` for usage.\n`);
    return EXIT_USAGE;
  }
  if (parsed.help) {
    io.stdout.write(HELP);
    return EXIT_OK;
  }
  let input: Readable;
  try {
    input = await openInput(parsed.file, io.stdin);
  } catch (err) {
    const reason = err instanceof Error && 'code' in err ? String(err.code) : 'error';
    io.stderr.write(`${COMMAND}: cannot read ${printable(parsed.file ?? '-')}: ${reason}\n`);
    return EXIT_IO_ERROR;
  }
  try {
    await analyze(input, parsed.format, io.stdout);
  } catch (err) {
    const code = typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : '';
    // A closed pipe (`| head`) is the reader's choice, not a failure.
    if (code === 'EPIPE') return EXIT_OK;
    io.stderr.write(`${COMMAND}: reading ${printable(parsed.file ?? 'standard input')} failed: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT_IO_ERROR;
  } finally {
    if (input !== io.stdin) input.destroy();
  }
  return EXIT_OK;
}

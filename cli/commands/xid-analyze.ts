/**
 * `gpudiag xid analyze [--format table|jsonl] [--driver-version V] [FILE|-]`: finds NVIDIA XID errors in kernel-log
 * text (dmesg, dmesg -T, syslog, journalctl, /dev/kmsg dumps), streaming line by line so huge
 * files are fine. Input is untrusted text: it is parsed, never executed, and control characters
 * are neutralised before they reach a terminal.
 */
import fs from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { bucketMeaning, compareSeverity, type XidSeverity } from '../../agent/xid/actions.js';
import { lookupXid } from '../../agent/xid/catalog.js';
import { classifyXid, type XidClassification } from '../../agent/xid/classify.js';
import { applyXidContext } from '../../agent/xid/context.js';
import { nvlink5LayoutFor } from '../../agent/xid/decode/nvlink5.js';
import { KernelLogScanner, parseLineTime, type ParsedSxid, type ParsedXid } from '../../agent/xid/parser.js';
import { readLineBatches } from '../../lib/lines.js';
import { ProgressLine, type MaybeTty } from '../progress-line.js';
import { decodeKernelLogLine, MAX_KERNEL_LOG_LINE, type SkipReason } from './kernel-log-input.js';

/** Streams the command reads and writes (the process's by default; tests may pass their own). */
export interface XidAnalyzeIo {
  readonly stdin: Readable;
  readonly stdout: Writable;
  /** Errors, and a progress line for large inputs when it is a terminal. */
  readonly stderr: MaybeTty;
}

/** Inputs smaller than this finish too fast to need a progress line. */
export const PROGRESS_AFTER_BYTES = 4 * 1024 * 1024;

/** Output formats. */
export type XidAnalyzeFormat = 'table' | 'jsonl';

const FORMATS: readonly XidAnalyzeFormat[] = ['table', 'jsonl'];
const DEFAULT_FORMAT: XidAnalyzeFormat = 'table';
const COMMAND = 'gpudiag xid analyze';
const EXIT_OK = 0;
const EXIT_IO_ERROR = 1;
const EXIT_USAGE = 2;
/** Distinct (GPU, XID, sub-unit) groups the table keeps; beyond it events are counted but not listed. */
const MAX_TABLE_GROUPS = 10_000;
/** Message width in the table; the full text is in the jsonl output. */
const TABLE_MESSAGE_WIDTH = 72;
const TABLE_DECODED_WIDTH = 64;
/** Lines without a timestamp are placed this far apart, so neighbouring lines count as "together". */
const PSEUDO_LINE_MS = 1_000;
/** `NVRM: loading NVIDIA UNIX x86_64 Kernel Module  570.124.06  ...` names the driver. */
const DRIVER_LINE_RE = /NVRM: loading NVIDIA UNIX .*?Kernel Module\s+(\d{2,4}\.\d{1,3}(?:\.\d{1,3})?)\b/;

const HELP = `usage: ${COMMAND} [--format table|jsonl] [--driver-version VERSION] [FILE|-]

Finds NVIDIA XID errors ("NVRM: Xid (PCI:...): <code>, ...") in kernel-log text and explains
them with NVIDIA's XID catalog: each event gets NVIDIA's action bucket (IGNORE, RESTART_APP,
RESET_GPU, RESTART_BM...), the message-dependent codes are decoded (74 register bits, NVLink5
144-150 by NVIDIA's decode table, 154 recovery actions, 45/48/13/31 by their neighbours), and
NVSwitch SXid lines and bus losses without an XID are listed too (docs/xid.md).
Reads FILE, or standard input when FILE is "-" or absent.

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
  --format table   (default) one row per GPU, XID and sub-unit with counts, worst first, NVIDIA's
                   bucket and our action, then NVSwitch errors, then a summary
  --format jsonl   one JSON object per finding line: kind (xid | sxid | bus-lost), line, and for
                   XIDs xid, pciBusId (null when redacted), pid, process, message, name, severity,
                   immediateAction, investigatoryAction, persistsUntil, action, category
                   (+ decoded, gpuInstance, computeInstance, uuid, timestamp, uptimeSeconds when
                   known); judged line by line (the table also weighs each XID's neighbours)
  --driver-version VERSION
                   the node's NVIDIA driver (e.g. 575.57.08): picks the NVLink5 decode layout
                   (V1 before R575, V2 from R575). Without it the log's "NVRM: loading ... Kernel
                   Module" line is used, else both readings are tried and the worse one is shown
  -h, --help       show this help
  --version        print gpudiag's version

When stderr is a terminal and the input passes ${PROGRESS_AFTER_BYTES / (1024 * 1024)} MiB, a progress line there shows the
bytes and lines read and the XIDs found (never on a pipe or file).

exit status: 0 on success, 1 when the input cannot be read, 2 on a usage error.
`;

interface ParsedArgs {
  readonly format: XidAnalyzeFormat;
  readonly file: string | null;
  readonly driverVersion: string | null;
  readonly help: boolean;
}

class UsageError extends Error {
  override readonly name = 'UsageError';
}

function flagValue(args: readonly string[], i: number, name: string): { value: string | undefined; next: number } {
  const arg = args[i] ?? '';
  return arg === name ? { value: args[i + 1], next: i + 1 } : { value: arg.slice(name.length + 1), next: i };
}

function parseArgs(args: readonly string[]): ParsedArgs {
  let format: XidAnalyzeFormat = DEFAULT_FORMAT;
  let file: string | null = null;
  let driverVersion: string | null = null;
  let help = false;
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i] ?? '';
    if (arg === '-h' || arg === '--help') {
      help = true;
    } else if (arg === '--format' || arg.startsWith('--format=')) {
      const { value, next } = flagValue(args, i, '--format');
      i = next;
      const match = FORMATS.find((f) => f === value);
      if (match === undefined)
        throw new UsageError(`--format must be one of ${FORMATS.join('|')}${value === undefined ? '' : `, got "${printable(value)}"`}`);
      format = match;
    } else if (arg === '--driver-version' || arg.startsWith('--driver-version=')) {
      const { value, next } = flagValue(args, i, '--driver-version');
      i = next;
      if (value === undefined || value.length > 32 || nvlink5LayoutFor(value) === null) {
        throw new UsageError(
          `--driver-version must be an NVIDIA driver version such as ` +
            `575.57.08${value === undefined ? '' : `, got "${printable(value.slice(0, 40))}"`}`,
        );
      }
      driverVersion = value;
    } else if (arg === '--') {
      for (const rest of args.slice(i + 1)) {
        if (file !== null) throw new UsageError(`expected at most one FILE, got "${file}" and "${rest}"`);
        file = rest;
      }
      break;
    } else if (arg.startsWith('-') && arg !== '-') {
      throw new UsageError(`unknown flag "${printable(arg)}"`);
    } else {
      if (file !== null) throw new UsageError(`expected at most one FILE, got "${file}" and "${arg}"`);
      file = arg;
    }
  }
  return { format, file, driverVersion, help };
}

/** One XID event as written in jsonl. */
interface XidRow {
  kind: 'xid';
  line: number;
  xid: number;
  pciBusId: string | null;
  pid: number | null;
  process: string | null;
  message: string;
  name: string;
  severity: XidSeverity;
  immediateAction: string;
  investigatoryAction: string | null;
  persistsUntil: string;
  action: string;
  category: string;
  decoded?: string;
  gpuInstance?: number;
  computeInstance?: number;
  uuid?: string;
  timestamp?: string;
  uptimeSeconds?: number;
}

/** Occurrences of one (GPU, XID, sub-unit) in the table, per process for the context rules. */
interface Group {
  pciBusId: string | null;
  xid: number;
  subKey: string;
  uuid: string | undefined;
  count: number;
  worst: XidClassification;
  firstLine: number;
  lastLine: number;
  lastMessage: string;
  byPid: Map<number | null, { firstMs: number; lastMs: number }>;
}

/** NVSwitch errors per switch, code and link. */
interface SwitchGroup {
  line: ParsedSxid;
  fatal: boolean;
  count: number;
  firstLine: number;
  lastLine: number;
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

function columns(header: string[], rows: string[][]): string[] {
  if (rows.length === 0) return [];
  const widths = header.map((h, col) => Math.max(h.length, ...rows.map((r) => (r[col] ?? '').length)));
  const format = (cells: string[]): string =>
    cells
      .map((c, col) => (col === cells.length - 1 ? c : c.padEnd(widths[col] ?? 0)))
      .join('  ')
      .trimEnd();
  return [format(header), ...rows.map(format), ''];
}

interface Totals {
  events: number;
  busLost: Map<string, { count: number; firstLine: number; lastLine: number }>;
  overflow: number;
  skipped: Record<SkipReason, number>;
}

function lines(first: number, last: number): string {
  return first === last ? String(first) : `${first}-${last}`;
}

/** The groups judged with their neighbours (45 after another XID, 48 with 63/64, 13/31 repeating, the latest 154). */
function judge(groups: Group[]): XidClassification[] {
  const perPid = groups.flatMap((g, gi) =>
    [...g.byPid].map(([pid, t]) => ({
      gi,
      event: {
        xid: g.xid,
        gpuKey: g.pciBusId ?? '',
        pid,
        firstSeenMs: t.firstMs,
        lastSeenMs: t.lastMs,
        classification: g.worst,
        subKey: g.subKey,
      },
    })),
  );
  const judged = applyXidContext(perPid.map((p) => p.event));
  const result = groups.map((g) => g.worst);
  perPid.forEach((p, i) => {
    const c = judged[i] as XidClassification;
    const current = result[p.gi] as XidClassification;
    // A group is as bad as its worst process after context (a rule may also lower it, e.g. 45 → sympathetic).
    if (current === groups[p.gi]?.worst || compareSeverity(c.severity, current.severity) > 0) result[p.gi] = c;
  });
  return result;
}

function renderTable(groups: Group[], switches: SwitchGroup[], totals: Totals): string {
  const judged = judge(groups);
  const order = groups.map((g, i) => ({ g, c: judged[i] as XidClassification }));
  order.sort(
    (a, b) =>
      compareSeverity(b.c.severity, a.c.severity) ||
      b.g.count - a.g.count ||
      (a.g.pciBusId ?? '').localeCompare(b.g.pciBusId ?? '') ||
      a.g.xid - b.g.xid,
  );
  const header = ['SEVERITY', 'XID', 'NAME', 'PCI', 'COUNT', 'LINES', 'BUCKET', 'ACTION', 'DECODED', 'LAST MESSAGE'];
  const rows = order.map(({ g, c }) => [
    c.severity,
    String(g.xid),
    lookupXid(g.xid).name,
    g.pciBusId === null ? '(unknown)' : g.uuid === undefined ? g.pciBusId : `${g.pciBusId} (${g.uuid})`,
    String(g.count),
    lines(g.firstLine, g.lastLine),
    c.immediateAction,
    c.action,
    truncate(printable(c.decoded ?? ''), TABLE_DECODED_WIDTH),
    truncate(printable(g.lastMessage), TABLE_MESSAGE_WIDTH),
  ]);
  const lost = bucketMeaning('RESTART_BM');
  for (const [pci, b] of totals.busLost) {
    rows.unshift([
      lost.severity,
      '-',
      'GPU fell off the bus (no XID code)',
      pci,
      String(b.count),
      lines(b.firstLine, b.lastLine),
      'RESTART_BM',
      lost.action,
      '',
      '',
    ]);
  }
  const out = columns(header, rows);
  const switchRows = [...switches]
    .sort((a, b) => Number(b.fatal) - Number(a.fatal) || b.count - a.count)
    .map((s) => [
      s.fatal ? 'critical' : 'warning',
      String(s.line.sxid),
      s.line.switchPciBusId ?? '(unknown)',
      s.line.link === null ? '-' : String(s.line.link),
      String(s.count),
      lines(s.firstLine, s.lastLine),
      truncate(printable(s.line.message), TABLE_MESSAGE_WIDTH),
    ]);
  if (switchRows.length > 0)
    out.push('NVSwitch errors (SXid):', ...columns(['SEVERITY', 'SXID', 'SWITCH', 'LINK', 'COUNT', 'LINES', 'MESSAGE'], switchRows));

  const bySeverity: Record<XidSeverity, number> = { info: 0, warning: 0, critical: 0 };
  const byBucket = new Map<string, number>();
  order.forEach(({ g, c }) => {
    bySeverity[c.severity] += g.count;
    byBucket.set(c.immediateAction, (byBucket.get(c.immediateAction) ?? 0) + g.count);
  });
  const gpus = new Set(groups.map((g) => g.pciBusId ?? '(unknown)')).size;
  const parts = (['critical', 'warning', 'info'] as const).map((s) => `${bySeverity[s]} ${s}`);
  let summary =
    `${totals.events} XID event${totals.events === 1 ? '' : 's'} (${groups.length + totals.overflow} distinct) on ${gpus} ` +
    `GPU${gpus === 1 ? '' : 's'}: ${parts.join(', ')}`;
  if (byBucket.size > 0)
    summary += `; by bucket: ${[...byBucket]
      .sort((a, b) => b[1] - a[1])
      .map(([bucket, n]) => `${bucket} ${n}`)
      .join(', ')}`;
  const lostLines = [...totals.busLost.values()].reduce((n, b) => n + b.count, 0);
  if (lostLines > 0) summary += `; ${lostLines} "fallen off the bus" line${lostLines === 1 ? '' : 's'} without an XID`;
  if (switches.length > 0) summary += `; ${switches.reduce((n, s) => n + s.count, 0)} NVSwitch SXid line(s)`;
  if (totals.overflow > 0) summary += `; ${totals.overflow} further groups not listed`;
  const { oversize, malformedJson } = totals.skipped;
  if (oversize > 0) summary += `; ${oversize} line${oversize === 1 ? '' : 's'} over ${MAX_KERNEL_LOG_LINE / 1024} KiB skipped`;
  if (malformedJson > 0) summary += `; ${malformedJson} malformed JSON line${malformedJson === 1 ? '' : 's'} skipped`;
  out.push(summary, '');
  return out.join('\n');
}

/** True when a line may hold an NVRM or SXid message (journald JSON and json-seq always may). */
function mayConcernGpus(raw: string): boolean {
  const first = raw.charCodeAt(raw.charCodeAt(0) === 0xfeff ? 1 : 0);
  return raw.includes('NVRM') || raw.includes('SXid') || first === 0x7b /* { */ || first === 0x1e; /* RS */
}

function timeOf(
  decoded: { timestamp: string | null; uptimeSeconds: number | null },
  prefix: string,
  lineNo: number,
): { ms: number; timestamp: string | null; uptimeSeconds: number | null } {
  // The format's own time first (journald, kmsg, localized dmesg -T), else what the prefix says.
  const prefixTime = parseLineTime(prefix);
  const timestamp = decoded.timestamp ?? prefixTime.timestamp;
  const uptimeSeconds = decoded.uptimeSeconds ?? prefixTime.uptimeSeconds;
  const parsed = timestamp === null ? Number.NaN : Date.parse(timestamp);
  const ms = Number.isFinite(parsed) ? parsed : uptimeSeconds !== null ? uptimeSeconds * 1000 : lineNo * PSEUDO_LINE_MS;
  return { ms, timestamp, uptimeSeconds };
}

function xidRow(
  parsed: ParsedXid,
  c: XidClassification,
  lineNo: number,
  uuid: string | undefined,
  time: { timestamp: string | null; uptimeSeconds: number | null },
): XidRow {
  const entry = lookupXid(parsed.xid);
  return {
    kind: 'xid',
    line: lineNo,
    xid: parsed.xid,
    pciBusId: parsed.pciBusId,
    pid: parsed.pid,
    process: parsed.process,
    message: parsed.message,
    name: entry.name,
    severity: c.severity,
    immediateAction: c.immediateAction,
    investigatoryAction: c.investigatoryAction,
    persistsUntil: c.persistence,
    action: c.action,
    category: entry.category,
    ...(c.decoded === undefined ? {} : { decoded: c.decoded }),
    ...(parsed.gpuInstance === null ? {} : { gpuInstance: parsed.gpuInstance }),
    ...(parsed.computeInstance === null ? {} : { computeInstance: parsed.computeInstance }),
    ...(uuid === undefined ? {} : { uuid }),
    ...(time.timestamp === null ? {} : { timestamp: time.timestamp }),
    ...(time.uptimeSeconds === null ? {} : { uptimeSeconds: time.uptimeSeconds }),
  };
}

/** Counts what has been read, for the progress line. */
interface ReadCount {
  bytes: number;
}

async function* counted(input: AsyncIterable<Buffer | string>, count: ReadCount): AsyncGenerator<Buffer | string> {
  for await (const chunk of input) {
    count.bytes += chunk.length;
    yield chunk;
  }
}

function megabytes(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

async function analyze(
  input: Readable,
  format: XidAnalyzeFormat,
  out: Writable,
  driverFlag: string | null,
  progress: ProgressLine,
): Promise<void> {
  const uuids = new Map<string, string>();
  const groups = new Map<string, Group>();
  const switches = new Map<string, SwitchGroup>();
  const totals: Totals = { events: 0, busLost: new Map(), overflow: 0, skipped: { oversize: 0, malformedJson: 0 } };
  const scanner = new KernelLogScanner();
  let driverVersion = driverFlag;
  let lineNo = 0;
  const read: ReadCount = { bytes: 0 };
  const source = progress.active ? counted(input, read) : input;
  for await (const batch of readLineBatches(source, MAX_KERNEL_LOG_LINE)) {
    // Once per chunk, throttled by the line itself: a pipe or file never sees it.
    if (read.bytes >= PROGRESS_AFTER_BYTES)
      progress.update(() => `read ${megabytes(read.bytes)}, ${lineNo} lines, ${totals.events} XIDs found`);
    for (const raw of batch) {
      lineNo += 1;
      // Most of a kernel log is other drivers' chatter: only NVRM and SXid lines (and JSON,
      // whose MESSAGE may be a byte array) can say anything about a GPU.
      if (raw !== null && !mayConcernGpus(raw)) continue;
      const decoded = raw === null ? ({ skipped: 'oversize' } as const) : decodeKernelLogLine(raw);
      if (decoded === null) continue;
      if ('skipped' in decoded) {
        totals.skipped[decoded.skipped] += 1;
        continue;
      }
      if (driverFlag === null) {
        const driver = DRIVER_LINE_RE.exec(decoded.text);
        if (driver !== null) driverVersion = driver[1] ?? driverVersion;
      }
      const parsed = scanner.push(decoded.text);
      if (parsed === null) continue;
      if (parsed.kind === 'gpu-uuid') {
        uuids.set(parsed.pciBusId, parsed.uuid);
        continue;
      }
      if (parsed.kind === 'bus-lost') {
        const b = totals.busLost.get(parsed.pciBusId) ?? { count: 0, firstLine: lineNo, lastLine: lineNo };
        totals.busLost.set(parsed.pciBusId, { count: b.count + 1, firstLine: b.firstLine, lastLine: lineNo });
        if (format === 'jsonl')
          await write(
            out,
            JSON.stringify({
              kind: 'bus-lost',
              line: lineNo,
              pciBusId: parsed.pciBusId,
              severity: 'critical',
              immediateAction: 'RESTART_BM',
              persistsUntil: 'reboot',
            }) + '\n',
          );
        continue;
      }
      if (parsed.kind === 'sxid') {
        // Continuation lines (`Severity 0 Engine instance ...`, `Data {...}`) detail the line before.
        if (parsed.fatal === null) continue;
        if (format === 'jsonl') {
          await write(
            out,
            JSON.stringify({
              kind: 'sxid',
              line: lineNo,
              sxid: parsed.sxid,
              switchPciBusId: parsed.switchPciBusId,
              fatal: parsed.fatal,
              link: parsed.link,
              message: parsed.message,
              severity: parsed.fatal ? 'critical' : 'warning',
            }) + '\n',
          );
          continue;
        }
        const key = `${parsed.switchPciBusId ?? ''}|${parsed.sxid}|${parsed.link ?? ''}`;
        const s = switches.get(key);
        if (s === undefined) switches.set(key, { line: parsed, fatal: parsed.fatal, count: 1, firstLine: lineNo, lastLine: lineNo });
        else switches.set(key, { ...s, fatal: s.fatal || parsed.fatal, count: s.count + 1, lastLine: lineNo });
        continue;
      }
      const c = classifyXid(parsed.xid, parsed.message, undefined, { driverVersion });
      const uuid = parsed.pciBusId === null ? undefined : uuids.get(parsed.pciBusId);
      const time = timeOf(decoded, parsed.prefix, lineNo);
      totals.events += 1;
      if (format === 'jsonl') {
        await write(out, `${JSON.stringify(xidRow(parsed, c, lineNo, uuid, time))}\n`);
        continue;
      }
      const key = `${parsed.pciBusId ?? ''}|${parsed.xid}|${c.subKey}`;
      const group = groups.get(key);
      if (group !== undefined) {
        group.count += 1;
        group.lastLine = lineNo;
        group.lastMessage = parsed.message;
        if (compareSeverity(c.severity, group.worst.severity) > 0) group.worst = c;
        if (uuid !== undefined) group.uuid = uuid;
        const t = group.byPid.get(parsed.pid);
        group.byPid.set(parsed.pid, { firstMs: Math.min(t?.firstMs ?? time.ms, time.ms), lastMs: Math.max(t?.lastMs ?? time.ms, time.ms) });
      } else if (groups.size < MAX_TABLE_GROUPS) {
        groups.set(key, {
          pciBusId: parsed.pciBusId,
          xid: parsed.xid,
          subKey: c.subKey,
          uuid,
          count: 1,
          worst: c,
          firstLine: lineNo,
          lastLine: lineNo,
          lastMessage: parsed.message,
          byPid: new Map([[parsed.pid, { firstMs: time.ms, lastMs: time.ms }]]),
        });
      } else {
        totals.overflow += 1;
      }
    }
  }
  progress.clear();
  if (format === 'table') await write(out, renderTable([...groups.values()], [...switches.values()], totals));
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
  const progress = new ProgressLine(io.stderr);
  try {
    await analyze(input, parsed.format, io.stdout, parsed.driverVersion, progress);
  } catch (err) {
    const code = typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : '';
    // A closed pipe (`| head`) is the reader's choice, not a failure.
    if (code === 'EPIPE') return EXIT_OK;
    io.stderr.write(
      `${COMMAND}: reading ${printable(parsed.file ?? 'standard input')} failed: ${err instanceof Error ? err.message : String(err)}\n`,
    );
    return EXIT_IO_ERROR;
  } finally {
    progress.clear();
    if (input !== io.stdin) input.destroy();
  }
  return EXIT_OK;
}

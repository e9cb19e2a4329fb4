/**
 * Pure parser for NVIDIA kernel-log lines. It finds the `NVRM: ...` part wherever it sits in a
 * line (raw dmesg, `dmesg -T`, syslog, journald, `dmesg --decode`, /dev/kmsg record text), so
 * the same function serves the node agent and the offline `gpudiag xid analyze` command.
 * Nothing here throws, and a line without `NVRM: Xid (...)` never yields an XID event. NVSwitch
 * `SXid` lines are their own kind.
 */

/** An XID event: `NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, name=python3, GPU has fallen off the bus.` */
export interface ParsedXid {
  readonly kind: 'xid';
  readonly xid: number;
  /**
   * Kernel form, lowercase `dddd:bb:dd` (see normalizePciBusId); null when the address was
   * redacted or cannot be read (`PCI:...`): the event is then node-level, its GPU unknown.
   */
  readonly pciBusId: string | null;
  /** MIG GPU instance id from `GPU-I:05`, else null. */
  readonly gpuInstance: number | null;
  /** MIG compute instance id from `GPU-CI:01`, else null. */
  readonly computeInstance: number | null;
  readonly pid: number | null;
  readonly process: string | null;
  /** The text after the code (and after pid/name), spacing kept, trimmed at the end. */
  readonly message: string;
  /** Whatever preceded `NVRM:` on the line (timestamps, host, facility). */
  readonly prefix: string;
}

/** A context line mapping a PCI address to a GPU UUID: `NVRM: GPU at PCI:0000:9b:00: GPU-<uuid>`. */
export interface ParsedGpuUuid {
  readonly kind: 'gpu-uuid';
  readonly pciBusId: string;
  readonly uuid: string;
  readonly prefix: string;
}

/**
 * A bus-loss signal without an XID code: `NVRM: GPU 0000:18:00.0: GPU has fallen off the bus.`,
 * the older `NVRM: GPU at 0000:01:00.0 has fallen off the bus.`, or the probe message
 * `NVRM: The NVIDIA GPU 0000:05:00.0 (PCI ID: 10de:1b80) installed in this system has fallen off
 * the bus and is not responding to commands.` (three printk lines; KernelLogScanner joins them).
 */
export interface ParsedBusLost {
  readonly kind: 'bus-lost';
  readonly pciBusId: string;
  readonly prefix: string;
}

/** An NVSwitch error: `nvidia-nvswitch3: SXid (PCI:0000:c6:00.0): 24007, Fatal, Link 53 ...`. */
export interface ParsedSxid {
  readonly kind: 'sxid';
  readonly sxid: number;
  /** The switch's kernel-form PCI address; null when unreadable. */
  readonly switchPciBusId: string | null;
  /** From the word after the code: Fatal → true, Non-fatal → false, neither (continuation lines) → null. */
  readonly fatal: boolean | null;
  readonly link: number | null;
  /** The text after the code. */
  readonly message: string;
  readonly prefix: string;
}

/** What a kernel-log line can tell us about GPUs; null (from parseKernelLine) means nothing. */
export type ParsedLine = ParsedXid | ParsedGpuUuid | ParsedBusLost | ParsedSxid;

/** Lines longer than this are not kernel records (the kernel caps a record near 1 KiB; kmsg reads are 8 KiB). */
const MAX_LINE_LENGTH = 64 * 1024;

/** The widest PCI domain the kernel prints is 4 hex digits; NVML pads it to 8. */
const KERNEL_DOMAIN_DIGITS = 4;

// `PCI:` prefix optional (old drivers), 4- or 8-digit domain, optional `.function`.
const PCI_ADDRESS = String.raw`(?:PCI:)?((?:[0-9a-fA-F]{4,8}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}(?:\.[0-7])?)`;
const XID_RE = /NVRM:\s*Xid\s*\(([^()]*)\)\s*:\s*(\d{1,6})\b,?[ \t]?(.*)$/s;
const XID_DEVICE_RE = new RegExp(String.raw`^\s*${PCI_ADDRESS}(?:\s+GPU-I:\s*(\d{1,4}))?(?:\s+GPU-CI:\s*(\d{1,4}))?\s*$`);
// The address may be redacted (`PCI:...`, a masked `PCI:` with letters) yet the MIG parts still readable.
const MIG_PART_RE = /GPU-I:\s*(\d{1,4})(?:\s+GPU-CI:\s*(\d{1,4}))?/;
const GPU_AT_RE = new RegExp(
  String.raw`NVRM:\s*GPU at ${PCI_ADDRESS}:\s*((?:GPU|MIG)-[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12})\b`,
);
const BUS_LOST_RE = new RegExp(String.raw`NVRM:\s*GPU (?:at )?${PCI_ADDRESS}:?\s*(?:GPU )?has fallen off the bus`);
// The probe message, joined: `The NVIDIA GPU 0000:05:00.0 ... has fallen off the bus`.
const PROBE_BUS_LOST_RE = new RegExp(String.raw`NVRM:\s*The NVIDIA GPU ${PCI_ADDRESS}\b[\s\S]{0,400}?fallen off the bus`);
const SXID_RE = /\bSXid\s*\(([^()]*)\)\s*:\s*(\d{1,6})\b,?[ \t]?(.*)$/s;
const SXID_FATAL_RE = /^(Fatal|Non-fatal|Nonfatal)\b,?\s*/i;
const SXID_LINK_RE = /^Link\s+(\d{1,3})\b/;
// Very old drivers printed only `bus:device` with a 4-digit bus: `NVRM: Xid (0003:00): 8, ...`.
const LEGACY_XID_DEVICE_RE = /^\s*([0-9a-fA-F]{4}):([0-9a-fA-F]{2})\s*$/;
const MAX_BUS = 0xff;
const PCI_ANY_RE = /^\s*(?:PCI:)?(?:([0-9a-fA-F]{1,8}):)?([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2})(?:\.([0-7]))?\s*$/;
// `pid=1234, `, `pid='<unknown>', `, `pid='N/A', `; then optionally `name=python3, `.
const PID_RE = /^pid=('?)(<unknown>|N\/A|\d{1,10})\1(?:,[ \t]?|$)/;
const NAME_RE = /^name=(<unknown>|[^,]{0,64}?)(?:,[ \t]?|$)/;

/**
 * Maps any PCI address form to the kernel's key `dddd:bb:dd` (lowercase, 4-digit domain, no
 * function): NVML `00000000:3B:00.0`, kernel `0000:3b:00`, `PCI:0000:3b:00`, lspci `3b:00.0`.
 * Returns null for anything else.
 */
export function normalizePciBusId(anyForm: string): string | null {
  if (typeof anyForm !== 'string' || anyForm.length > 64) return null;
  const m = PCI_ANY_RE.exec(anyForm);
  if (m === null) return null;
  const [, domain = '0', bus = '', device = ''] = m;
  const domainValue = Number.parseInt(domain, 16);
  // Domains above 0xffff cannot be shortened without losing information; keep all digits.
  const domainText =
    domainValue > 0xffff ? domain.toLowerCase().replace(/^0+/, '') : domainValue.toString(16).padStart(KERNEL_DOMAIN_DIGITS, '0');
  return `${domainText}:${bus.toLowerCase().padStart(2, '0')}:${device.toLowerCase().padStart(2, '0')}`;
}

function legacyXidDevice(device: string): string | null {
  const m = LEGACY_XID_DEVICE_RE.exec(device);
  if (m === null) return null;
  const bus = Number.parseInt(m[1] ?? '', 16);
  return bus > MAX_BUS ? null : `0000:${bus.toString(16).padStart(2, '0')}:${(m[2] ?? '').toLowerCase()}`;
}

function xidDevice(device: string): { pciBusId: string | null; gpuInstance: number | null; computeInstance: number | null } {
  const dm = XID_DEVICE_RE.exec(device);
  if (dm !== null) {
    return {
      pciBusId: normalizePciBusId(dm[1] ?? ''),
      gpuInstance: dm[2] === undefined ? null : Number(dm[2]),
      computeInstance: dm[3] === undefined ? null : Number(dm[3]),
    };
  }
  const mig = MIG_PART_RE.exec(device);
  return {
    pciBusId: legacyXidDevice(device),
    gpuInstance: mig?.[1] === undefined ? null : Number(mig[1]),
    computeInstance: mig?.[2] === undefined ? null : Number(mig[2]),
  };
}

function parseXid(line: string, start: number): ParsedXid | null {
  const m = XID_RE.exec(line.slice(start));
  if (m === null) return null;
  const [, device = '', code = '', rest = ''] = m;
  const { pciBusId, gpuInstance, computeInstance } = xidDevice(device);
  let tail = rest;
  let pid: number | null = null;
  let process: string | null = null;
  const pm = PID_RE.exec(tail);
  if (pm !== null) {
    const value = pm[2] ?? '';
    pid = /^\d+$/.test(value) ? Number(value) : null;
    tail = tail.slice(pm[0].length);
    const nm = NAME_RE.exec(tail);
    if (nm !== null) {
      const name = nm[1] ?? '';
      process = name === '<unknown>' || name === '' ? null : name;
      tail = tail.slice(nm[0].length);
    }
  }
  return {
    kind: 'xid',
    xid: Number(code),
    pciBusId,
    gpuInstance,
    computeInstance,
    pid,
    process,
    message: tail.trimEnd(),
    prefix: line.slice(0, start).trimEnd(),
  };
}

function parseSxid(line: string): ParsedSxid | null {
  const m = SXID_RE.exec(line);
  if (m === null) return null;
  const [, device = '', code = '', rest = ''] = m;
  const fatalWord = SXID_FATAL_RE.exec(rest);
  const afterFatal = fatalWord === null ? rest : rest.slice(fatalWord[0].length);
  const link = SXID_LINK_RE.exec(afterFatal);
  return {
    kind: 'sxid',
    sxid: Number(code),
    switchPciBusId: normalizePciBusId(device),
    fatal: fatalWord === null ? null : (fatalWord[1] ?? '').toLowerCase() === 'fatal',
    link: link === null ? null : Number(link[1]),
    message: rest.trimEnd(),
    prefix: line.slice(0, m.index).trimEnd(),
  };
}

function parseBusLost(rest: string, prefix: string): ParsedBusLost | null {
  for (const re of [BUS_LOST_RE, PROBE_BUS_LOST_RE]) {
    const lost = re.exec(rest);
    if (lost === null || lost.index !== 0) continue;
    const pciBusId = normalizePciBusId(lost[1] ?? '');
    if (pciBusId !== null) return { kind: 'bus-lost', pciBusId, prefix };
  }
  return null;
}

/** Parses one kernel-log line (any prefix); returns null when it says nothing about a GPU. Never throws. */
export function parseKernelLine(line: string): ParsedLine | null {
  if (typeof line !== 'string' || line.length > MAX_LINE_LENGTH) return null;
  const start = line.indexOf('NVRM:');
  if (start < 0) return line.includes('SXid') ? parseSxid(line) : null;
  const xid = parseXid(line, start);
  if (xid !== null) return xid;
  const rest = line.slice(start);
  const prefix = line.slice(0, start).trimEnd();
  const at = GPU_AT_RE.exec(rest);
  if (at !== null && at.index === 0) {
    const pciBusId = normalizePciBusId(at[1] ?? '');
    if (pciBusId !== null) return { kind: 'gpu-uuid', pciBusId, uuid: at[2] ?? '', prefix };
  }
  return parseBusLost(rest, prefix);
}

/** The probe message's first line: `NVRM: The NVIDIA GPU 0000:05:00.0` (two more lines follow). */
const PROBE_START_RE = /NVRM:\s*The NVIDIA GPU\s/;
const NVRM_CONTINUATION_RE = /NVRM:\s?(.*)$/s;
/** The probe message spans three lines; a fourth would be another message. */
const PROBE_LINES = 3;

/**
 * Stateful line-by-line reader for one log stream: like parseKernelLine, plus messages the
 * driver prints over several lines (the three-line "fallen off the bus" probe message). Feed it
 * lines in order; it returns what each line completes.
 */
export class KernelLogScanner {
  private probe: { text: string; prefix: string; lines: number } | null = null;

  /** Parses the next line. */
  push(line: string): ParsedLine | null {
    if (typeof line !== 'string' || line.length > MAX_LINE_LENGTH) return null;
    if (this.probe !== null) {
      const joined = this.continueProbe(line);
      if (joined !== undefined) return joined;
    }
    if (PROBE_START_RE.test(line) && !line.includes('fallen off the bus')) {
      const start = line.indexOf('NVRM:');
      this.probe = { text: line.slice(start), prefix: line.slice(0, start).trimEnd(), lines: 1 };
      return null;
    }
    return parseKernelLine(line);
  }

  /** Joins a continuation of the probe message; undefined when the line is not one. */
  private continueProbe(line: string): ParsedLine | null | undefined {
    const probe = this.probe;
    const m = NVRM_CONTINUATION_RE.exec(line);
    if (probe === null || m === null || PROBE_START_RE.test(line) || /NVRM:\s*Xid/.test(line)) {
      this.probe = null;
      return undefined;
    }
    probe.text += ` ${(m[1] ?? '').trim()}`;
    probe.lines += 1;
    const lost = parseBusLost(probe.text, probe.prefix);
    if (lost !== null || probe.lines >= PROBE_LINES) this.probe = null;
    return lost;
  }
}

/** A timestamp found in a line's prefix. */
export interface LineTime {
  /**
   * Wall-clock time: full ISO 8601 (UTC) when the log carried a zone, a zone-less local
   * `YYYY-MM-DDTHH:MM:SS` for `dmesg -T`, or null (syslog lines carry no year).
   */
  readonly timestamp: string | null;
  /** Seconds since boot from a raw dmesg `[ 1234.567890]` prefix, else null. */
  readonly uptimeSeconds: number | null;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const ISO_RE = /(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:[.,](\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?/;
const CTIME_RE =
  /\[(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +(\d{1,2}) (\d{2}:\d{2}:\d{2}) (\d{4})\]/;
const UPTIME_RE = /\[\s*(\d{1,10}\.\d{1,9})\]/;
const MILLIS_DIGITS = 3;

function isoTime(m: RegExpExecArray): string | null {
  const [, date = '', time = '', fraction, zone] = m;
  const millis = fraction === undefined ? '' : `.${fraction.slice(0, MILLIS_DIGITS).padEnd(MILLIS_DIGITS, '0')}`;
  if (zone === undefined) return `${date}T${time}${millis}`;
  const normalisedZone = zone === 'Z' ? 'Z' : `${zone.slice(0, 3)}:${zone.slice(-2)}`;
  const parsed = new Date(`${date}T${time}${millis}${normalisedZone}`);
  return Number.isNaN(parsed.getTime()) ? null : parsed.toISOString();
}

/** Extracts the wall-clock time and/or uptime from a line prefix (as returned in ParsedLine.prefix). */
export function parseLineTime(prefix: string): LineTime {
  let timestamp: string | null = null;
  const iso = ISO_RE.exec(prefix);
  if (iso !== null) {
    timestamp = isoTime(iso);
  } else {
    const ct = CTIME_RE.exec(prefix);
    if (ct !== null) {
      const [, month = '', day = '', time = '', year = ''] = ct;
      timestamp = `${year}-${String(MONTHS.indexOf(month) + 1).padStart(2, '0')}-${day.padStart(2, '0')}T${time}`;
    }
  }
  const up = UPTIME_RE.exec(prefix);
  return { timestamp, uptimeSeconds: up === null ? null : Number(up[1]) };
}

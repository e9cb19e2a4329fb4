/**
 * Pure parser for NVIDIA kernel-log lines. It finds the `NVRM: ...` part wherever it sits in a
 * line (raw dmesg, `dmesg -T`, syslog, journald, `dmesg --decode`, /dev/kmsg record text), so
 * the same function serves the node agent and the offline `gpudiag xid analyze` command.
 * Nothing here throws, and a line without `NVRM: Xid (...)` never yields an XID event.
 */

/** An XID event: `NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, name=python3, GPU has fallen off the bus.` */
export interface ParsedXid {
  readonly kind: 'xid';
  readonly xid: number;
  /** Kernel form, lowercase `dddd:bb:dd` (see normalizePciBusId). */
  readonly pciBusId: string;
  /** MIG GPU instance id from `GPU-I:05`, else null. */
  readonly gpuInstance: number | null;
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

/** A bus-loss signal without an XID code: `NVRM: GPU 0000:18:00.0: GPU has fallen off the bus.` */
export interface ParsedBusLost {
  readonly kind: 'bus-lost';
  readonly pciBusId: string;
  readonly prefix: string;
}

/** What a kernel-log line can tell us about GPUs; null (from parseKernelLine) means nothing. */
export type ParsedLine = ParsedXid | ParsedGpuUuid | ParsedBusLost;

/** Lines longer than this are not kernel records (the kernel caps a record near 1 KiB; kmsg reads are 8 KiB). */
const MAX_LINE_LENGTH = 64 * 1024;

/** The widest PCI domain the kernel prints is 4 hex digits; NVML pads it to 8. */
const KERNEL_DOMAIN_DIGITS = 4;

// `PCI:` prefix optional (old drivers), 4- or 8-digit domain, optional `.function`.
const PCI_ADDRESS = String.raw`(?:PCI:)?((?:[0-9a-fA-F]{4,8}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}(?:\.[0-7])?)`;
const XID_RE = /NVRM:\s*Xid\s*\(([^()]*)\)\s*:\s*(\d{1,6})\b,?[ \t]?(.*)$/s;
const XID_DEVICE_RE = new RegExp(String.raw`^\s*${PCI_ADDRESS}(?:\s+GPU-I:\s*(\d{1,4}))?\s*$`);
const GPU_AT_RE = new RegExp(String.raw`NVRM:\s*GPU at ${PCI_ADDRESS}:\s*((?:GPU|MIG)-[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12})\b`);
const BUS_LOST_RE = new RegExp(String.raw`NVRM:\s*GPU ${PCI_ADDRESS}:\s*GPU has fallen off the bus`);
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
  const domainText = domainValue > 0xffff ? domain.toLowerCase().replace(/^0+/, '') : domainValue.toString(16).padStart(KERNEL_DOMAIN_DIGITS, '0');
  return `${domainText}:${bus.toLowerCase().padStart(2, '0')}:${device.toLowerCase().padStart(2, '0')}`;
}

function legacyXidDevice(device: string): string | null {
  const m = LEGACY_XID_DEVICE_RE.exec(device);
  if (m === null) return null;
  const bus = Number.parseInt(m[1] ?? '', 16);
  return bus > MAX_BUS ? null : `0000:${bus.toString(16).padStart(2, '0')}:${(m[2] ?? '').toLowerCase()}`;
}

function parseXid(line: string, start: number): ParsedXid | null {
  const m = XID_RE.exec(line.slice(start));
  if (m === null) return null;
  const [, device = '', code = '', rest = ''] = m;
  const dm = XID_DEVICE_RE.exec(device);
  const pciBusId = dm === null ? legacyXidDevice(device) : normalizePciBusId(dm[1] ?? '');
  if (pciBusId === null) return null;
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
    gpuInstance: dm?.[2] === undefined ? null : Number(dm[2]),
    pid,
    process,
    message: tail.trimEnd(),
    prefix: line.slice(0, start).trimEnd(),
  };
}

/** Parses one kernel-log line (any prefix); returns null when it says nothing about a GPU. Never throws. */
export function parseKernelLine(line: string): ParsedLine | null {
  if (typeof line !== 'string' || line.length > MAX_LINE_LENGTH) return null;
  const start = line.indexOf('NVRM:');
  if (start < 0) return null;
  const xid = parseXid(line, start);
  if (xid !== null) return xid;
  const rest = line.slice(start);
  const prefix = line.slice(0, start).trimEnd();
  const at = GPU_AT_RE.exec(rest);
  if (at !== null && at.index === 0) {
    const pciBusId = normalizePciBusId(at[1] ?? '');
    if (pciBusId !== null) return { kind: 'gpu-uuid', pciBusId, uuid: at[2] ?? '', prefix };
  }
  const lost = BUS_LOST_RE.exec(rest);
  if (lost !== null && lost.index === 0) {
    const pciBusId = normalizePciBusId(lost[1] ?? '');
    if (pciBusId !== null) return { kind: 'bus-lost', pciBusId, prefix };
  }
  return null;
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
const CTIME_RE = /\[(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +(\d{1,2}) (\d{2}:\d{2}:\d{2}) (\d{4})\]/;
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

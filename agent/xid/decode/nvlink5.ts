/**
 * Decodes NVLink5 XIDs 144–150 with NVIDIA's decode table (nvlink5-decode.json). A message reads
 * `NETIR_LINK_EVT  Fatal   XC0 i0 Link 08 (0x004505c6 0x00000000 ...)`: a subcode word, the
 * driver's own severity word, the link, then registers — IntrInfo first, the error status second.
 * The row is chosen by xid + subcode + IntrInfo bit pattern (V1 before R575, V2 from R575) + error
 * status; the words "Fatal"/"Nonfatal" are not used: the table, not the text, decides.
 */
import table from '../nvlink5-decode.json' with { type: 'json' };
import { bucketMeaning, compareSeverity } from '../actions.js';

/** One row of the decode table. */
export interface Nvlink5Row {
  readonly xid: number;
  readonly subcode: string;
  readonly intrInfoV1: string;
  readonly intrInfoV2: string;
  readonly errorStatus: string | null;
  readonly immediateAction: string;
  readonly secondIntrInfoV1: string | null;
  readonly secondIntrInfoV2: string | null;
  readonly secondAction: string | null;
  readonly investigatoryAction: string | null;
  readonly severity: string;
  readonly hwSw: string;
}

/** Which IntrInfo encoding a driver writes. */
export type Nvlink5Layout = 'v1' | 'v2';

/** The fields of an NVLink5 message. */
export interface Nvlink5Message {
  readonly subcode: string;
  /** The driver's word (Fatal, Nonfatal...), kept for display only. */
  readonly driverSeverity: string | null;
  readonly link: number | null;
  readonly intrInfo: number | null;
  readonly errorStatus: number | null;
}

/** The outcome of decoding one message under one layout. */
export interface Nvlink5Decode {
  readonly layout: Nvlink5Layout;
  /** The bucket to act on (the row's second action when its second pattern matched). */
  readonly immediateAction: string;
  readonly investigatoryAction: string | null;
  /** The table's own severity column (Non-fatal, Fatal, Link fatal). */
  readonly tableSeverity: string;
  readonly hwSw: string;
}

export const NVLINK5_ROWS: readonly Nvlink5Row[] = Object.freeze(table.rows as Nvlink5Row[]);

/** The first driver branch that writes the V2 IntrInfo layout. */
const V2_FROM_BRANCH = 575;
const HEX = String.raw`0x[0-9a-fA-F]{1,8}`;
const MESSAGE_RE = new RegExp(
  String.raw`^\s*([A-Za-z][A-Za-z0-9_]*(?: ` +
    String.raw`Degraded)?)\s+(?:(Fatal|Non-?fatal|Nonfatal|Link\s+fatal)\s+)?(?:.*?\bLink\s+(\d{1,3})\b)?[^([]*[([]` +
    String.raw`\s*(${HEX})(?:[\s,]+(${HEX}))?`,
  'i',
);

/** The layout a driver version writes ("575.57.08" → v2); null when the version is unknown or unparsable. */
export function nvlink5LayoutFor(driverVersion: string | null | undefined): Nvlink5Layout | null {
  const branch = /^\s*(\d{2,4})\./.exec(driverVersion ?? '');
  if (branch === null) return null;
  return Number(branch[1]) >= V2_FROM_BRANCH ? 'v2' : 'v1';
}

/** Splits an NVLink5 message into its fields; null when it has no subcode or registers. */
export function parseNvlink5Message(message: string): Nvlink5Message | null {
  const m = MESSAGE_RE.exec(message);
  if (m === null) return null;
  const [, subcode = '', word, link, intrInfo, errorStatus] = m;
  return {
    subcode,
    driverSeverity: word ?? null,
    link: link === undefined ? null : Number(link),
    intrInfo: intrInfo === undefined ? null : Number.parseInt(intrInfo, 16) >>> 0,
    errorStatus: errorStatus === undefined ? null : Number.parseInt(errorStatus, 16) >>> 0,
  };
}

/** True when the 32-bit value matches a pattern written most significant bit first ('-' = any). */
export function matchesBitPattern(value: number, pattern: string): boolean {
  const bits = (value >>> 0).toString(2).padStart(32, '0');
  if (pattern.length !== bits.length) return false;
  for (let i = 0; i < bits.length; i += 1) {
    const want = pattern[i];
    if (want !== '-' && want !== bits[i]) return false;
  }
  return true;
}

function subcodeMatches(row: Nvlink5Row, subcode: string): boolean {
  return row.subcode.split('/').some((alternative) => alternative.toUpperCase() === subcode.toUpperCase());
}

function statusMatches(row: Nvlink5Row, status: number | null): boolean {
  if (row.errorStatus === null) return true;
  if (status === null) return false;
  return row.errorStatus.split('/').some((value) => Number.parseInt(value, 16) >>> 0 === status);
}

function decodeRow(row: Nvlink5Row, intrInfo: number, layout: Nvlink5Layout): Nvlink5Decode {
  const second = layout === 'v1' ? row.secondIntrInfoV1 : row.secondIntrInfoV2;
  const useSecond = second !== null && row.secondAction !== null && matchesBitPattern(intrInfo, second);
  return {
    layout,
    immediateAction: useSecond && row.secondAction !== null ? row.secondAction : row.immediateAction,
    investigatoryAction: row.investigatoryAction,
    tableSeverity: row.severity,
    hwSw: row.hwSw,
  };
}

/** Decodes under one layout; null when no row matches. Several matching rows: the worst action wins. */
export function decodeNvlink5(xid: number, message: Nvlink5Message, layout: Nvlink5Layout): Nvlink5Decode | null {
  const intrInfo = message.intrInfo;
  if (intrInfo === null) return null;
  let best: Nvlink5Decode | null = null;
  for (const row of NVLINK5_ROWS) {
    if (row.xid !== xid || !subcodeMatches(row, message.subcode) || !statusMatches(row, message.errorStatus)) continue;
    const first = layout === 'v1' ? row.intrInfoV1 : row.intrInfoV2;
    const second = layout === 'v1' ? row.secondIntrInfoV1 : row.secondIntrInfoV2;
    if (!matchesBitPattern(intrInfo, first) && (second === null || !matchesBitPattern(intrInfo, second))) continue;
    const decoded = decodeRow(row, intrInfo, layout);
    if (best === null || compareSeverity(bucketMeaning(decoded.immediateAction).severity, bucketMeaning(best.immediateAction).severity) > 0)
      best = decoded;
  }
  return best;
}

/**
 * Both readings of a message, for when the driver version is unknown (offline analysis): the
 * layouts that decode it, in order v1, v2.
 */
export function decodeNvlink5Both(xid: number, message: Nvlink5Message): Nvlink5Decode[] {
  return (['v1', 'v2'] as const).flatMap((layout) => decodeNvlink5(xid, message, layout) ?? []);
}

/**
 * Decodes XID 74 (NVLink error on A100/H100) from its register fields, per the catalog's table:
 * `NVLink: fatal error detected on link 4(0x10000, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0)`. Seven hex
 * fields; on Hopper the 1st, 3rd, 4th and 5th are valid. Most bits are ignorable or only worth a
 * report when repeated, so a blanket "critical" for every 74 over-alerts.
 */
import { bucketMeaning, compareSeverity } from '../actions.js';

/** What one set bit means. */
interface BitMeaning {
  readonly bucket: string;
  readonly why: string;
  /** A side effect of the other bits: only counts when no other bit is set. */
  readonly secondary?: boolean;
}

const IGNORABLE: BitMeaning = { bucket: 'IGNORE', why: 'ignorable' };
const SECONDARY: BitMeaning = { bucket: 'IGNORE (sympathetic)', why: 'secondary to another error', secondary: true };
const ECC_PARITY: BitMeaning = { bucket: 'CONTACT_SUPPORT', why: 'ECC/parity error (report when more than 2 on the same link)' };
const POSSIBLE_HW: BitMeaning = { bucket: 'RESET_GPU', why: 'possible hardware fault (reseat, run diagnostics)' };
const MARGINAL_SI: BitMeaning = { bucket: 'CONTACT_SUPPORT', why: 'marginal signal integrity (investigate the link)' };
const REPORT_IF_REPEATED: BitMeaning = { bucket: 'CONTACT_SUPPORT', why: 'report when repeated' };
const UNEXPECTED: BitMeaning = { bucket: 'CONTACT_SUPPORT', why: 'unexpected error' };
const DIAGNOSTICS_IF_REPEATED: BitMeaning = { bucket: 'CONTACT_SUPPORT', why: 'run diagnostics when repeated' };
const FABRIC_RESET: BitMeaning = { bucket: 'RESET_GPU', why: 'secondary, but the fabric needs a reset' };
const THRESHOLD_ONLY: BitMeaning = { bucket: 'IGNORE', why: 'ECC threshold crossed without an uncorrectable error: keep running' };
const UNLISTED: BitMeaning = { bucket: 'CONTACT_SUPPORT', why: "bit not in NVIDIA's table (report a bug)" };

function bits(meaning: BitMeaning, ...positions: number[]): [number, BitMeaning][] {
  return positions.map((p) => [p, meaning]);
}

/** Per register (index 0 = the 1st field): bit → meaning. Registers absent here are not decoded (not valid on Hopper). */
const TABLE: ReadonlyMap<number, ReadonlyMap<number, BitMeaning>> = new Map([
  [
    0,
    new Map([
      ...bits(IGNORABLE, 0, 23, 30),
      ...bits(SECONDARY, 1, 20),
      ...bits(ECC_PARITY, 4, 5),
      ...bits(POSSIBLE_HW, 8, 9, 12, 16, 17, 24, 28),
      ...bits(MARGINAL_SI, 21, 22),
      ...bits(REPORT_IF_REPEATED, 27, 29),
    ]),
  ],
  [
    2,
    new Map([
      ...bits(ECC_PARITY, 0, 1, 2, 6),
      ...bits(UNEXPECTED, 13),
      ...bits(DIAGNOSTICS_IF_REPEATED, 16, 19),
      ...bits(REPORT_IF_REPEATED, 17, 18),
    ]),
  ],
  [3, new Map([...bits(SECONDARY, 16, 17), ...bits(FABRIC_RESET, 18)])],
  [4, new Map([...bits(ECC_PARITY, 18, 19, 21, 22, 24, 25, 27, 28), ...bits(THRESHOLD_ONLY, 20, 23, 26, 29)])],
]);

/** One decoded bit. */
export interface Xid74Bit {
  /** 1-based field number, as the catalog counts. */
  readonly field: number;
  readonly bit: number;
  readonly bucket: string;
  readonly why: string;
}

/** The outcome of decoding an XID 74 message. */
export interface Xid74Decode {
  readonly link: number | null;
  readonly registers: readonly number[];
  /** The bucket of the worst bit that counts (secondary bits only when nothing else is set). */
  readonly immediateAction: string;
  readonly bits: readonly Xid74Bit[];
  /** One line for people: "link 4: field 1 bit 16 possible hardware fault ...". */
  readonly summary: string;
}

const LINK_RE = /\blink\s+(\d{1,3})\b/i;
const REGISTERS_RE = /\(\s*(0x[0-9a-fA-F]{1,8}(?:\s*,\s*0x[0-9a-fA-F]{1,8}){2,7})\s*\)/;

/** Decodes an XID 74 message; null when it carries no register fields (then the catalog's workflow applies undecoded). */
export function decodeXid74(message: string): Xid74Decode | null {
  const m = REGISTERS_RE.exec(message);
  if (m === null) return null;
  const registers = (m[1] ?? '').split(',').map((r) => Number.parseInt(r.trim(), 16) >>> 0);
  const link = LINK_RE.exec(message.slice(0, m.index + 1));
  const decoded: Xid74Bit[] = [];
  const secondary = new Set<Xid74Bit>();
  registers.forEach((value, index) => {
    const meanings = TABLE.get(index);
    if (meanings === undefined) return;
    for (let bit = 0; bit < 32; bit += 1) {
      if (((value >>> bit) & 1) === 0) continue;
      const meaning = meanings.get(bit) ?? UNLISTED;
      const entry = { field: index + 1, bit, bucket: meaning.bucket, why: meaning.why };
      decoded.push(entry);
      if (meaning.secondary === true) secondary.add(entry);
    }
  });
  const primary = decoded.filter((b) => !secondary.has(b));
  const counting = primary.length > 0 ? primary : decoded;
  // No bit set at all: nothing to decode, yet the driver reported an error.
  let immediateAction = decoded.length === 0 ? 'CONTACT_SUPPORT' : 'IGNORE';
  for (const b of counting) {
    if (compareSeverity(bucketMeaning(b.bucket).severity, bucketMeaning(immediateAction).severity) > 0) immediateAction = b.bucket;
  }
  const linkNumber = link === null ? null : Number(link[1]);
  const parts = decoded.map((b) => `field ${b.field} bit ${b.bit} ${b.why}`);
  const summary =
    `${linkNumber === null ? '' : `link ${linkNumber}: `}` +
    `${parts.length === 0 ? 'no error bit set in the valid fields' : parts.join('; ')}`;
  return { link: linkNumber, registers, immediateAction, bits: decoded, summary };
}

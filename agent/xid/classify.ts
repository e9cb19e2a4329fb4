/**
 * Classifies one XID event: the catalog's bucket for the code, resolved by the message-dependent
 * decodes (74, 144–150, 154, 45's "caused by previous Xid"), then the policy's per-code
 * override. Pure. Decisions that need the other events (45 after another XID, 48 with 63/64,
 * 13/31 repeating, a later 154) are made by xid/context.ts on top of this.
 */
import { bucketMeaning, compareSeverity, type XidPersistence, type XidSeverity } from './actions.js';
import { defaultXidView, type XidCatalogEntry, type XidPolicyView } from './catalog.js';
import { decodeNvlink5, decodeNvlink5Both, nvlink5LayoutFor, parseNvlink5Message, type Nvlink5Decode } from './decode/nvlink5.js';
import { decodeXid74 } from './decode/xid74.js';
import { decodeXid154 } from './decode/xid154.js';

/** A reading of an NVLink5 message under the other IntrInfo layout, when it differs. */
export interface XidAlternative {
  readonly reading: string;
  readonly immediateAction: string;
  readonly severity: XidSeverity;
}

/** What to do about one event. */
export interface XidClassification {
  /** The bucket to act on (NVIDIA's names; see actions.ts). */
  readonly immediateAction: string;
  /** What finds the root cause (NVIDIA's words), when known. */
  readonly investigatoryAction: string | null;
  readonly severity: XidSeverity;
  /** Plain words (the policy's override when it sets one). */
  readonly action: string;
  readonly persistence: XidPersistence;
  /** How the message was decoded, for people; absent when the catalog row alone decided. */
  readonly decoded?: string;
  /** Keeps apart what must not merge when deduplicating: NVLink unit and link, 154 transition, GPC/TPC. */
  readonly subKey: string;
  /** Other readings that differ (NVLink5 with the driver version unknown). */
  readonly alternatives?: readonly XidAlternative[];
}

/** What the classifier may know besides the message. */
export interface ClassifyContext {
  /** The node's driver version ("575.57.08"); picks the NVLink5 IntrInfo layout. */
  readonly driverVersion?: string | null;
}

/** The XIDs whose message names the XID that caused them. */
const CAUSED_BY_RE = /caused by previous Xid\s*(\d{1,3})/i;
const GPC_TPC_RE = /\bGPC\s*(\d{1,3})\s*,\s*TPC\s*(\d{1,3})/i;
const NVLINK5_XIDS = new Set([144, 145, 146, 147, 148, 149, 150]);

interface Resolution {
  readonly bucket: string;
  readonly investigatory: string | null;
  readonly decoded?: string;
  readonly subKey?: string;
  readonly alternatives?: readonly XidAlternative[];
}

function nvlink5(entry: XidCatalogEntry, message: string, context: ClassifyContext): Resolution | null {
  const parsed = parseNvlink5Message(message);
  if (parsed === null) return null;
  const subKey = `${parsed.subcode.toUpperCase()}${parsed.link === null ? '' : ` link ${parsed.link}`}`;
  const layout = nvlink5LayoutFor(context.driverVersion);
  const describe = (d: Nvlink5Decode, known: boolean): string =>
    `NVLink5 ${subKey}: ${d.immediateAction} (decode table ${d.layout.toUpperCase()}${known ? '' : ', driver version unknown'}; ` +
    `table severity ${d.tableSeverity}, ${d.hwSw})`;
  if (layout !== null) {
    const d = decodeNvlink5(entry.xid, parsed, layout);
    if (d === null)
      return {
        bucket: 'XID_154_EVAL',
        investigatory: entry.investigatoryAction,
        decoded: `NVLink5 ${subKey}: no row of the ${layout.toUpperCase()} decode table matches; follow the XID 154`,
        subKey,
      };
    return { bucket: d.immediateAction, investigatory: d.investigatoryAction, decoded: describe(d, true), subKey };
  }
  const readings = decodeNvlink5Both(entry.xid, parsed);
  const [first, second] = readings;
  if (first === undefined)
    return {
      bucket: 'XID_154_EVAL',
      investigatory: entry.investigatoryAction,
      decoded: `NVLink5 ${subKey}: no row of the decode table matches; follow the XID 154`,
      subKey,
    };
  if (second === undefined || second.immediateAction === first.immediateAction)
    return { bucket: first.immediateAction, investigatory: first.investigatoryAction, decoded: describe(first, false), subKey };
  // The readings differ and the driver is unknown: act on the worse one, show both.
  const [chosen, alternative] =
    compareSeverity(bucketMeaning(second.immediateAction).severity, bucketMeaning(first.immediateAction).severity) > 0
      ? [second, first]
      : [first, second];
  return {
    bucket: chosen.immediateAction,
    investigatory: chosen.investigatoryAction,
    decoded:
      `${describe(chosen, false)}; read as ${alternative.layout.toUpperCase()} ` +
      `(${alternative.layout === 'v2' ? 'driver R575 or newer' : 'driver older than R575'}) it is ${alternative.immediateAction}`,
    subKey,
    alternatives: [
      {
        reading: alternative.layout,
        immediateAction: alternative.immediateAction,
        severity: bucketMeaning(alternative.immediateAction).severity,
      },
    ],
  };
}

function resolve(entry: XidCatalogEntry, message: string, context: ClassifyContext): Resolution {
  const catalog: Resolution = { bucket: entry.bucket, investigatory: entry.investigatoryAction };
  if (NVLINK5_XIDS.has(entry.xid)) return nvlink5(entry, message, context) ?? catalog;
  switch (entry.xid) {
    case 74: {
      const d = decodeXid74(message);
      return d === null
        ? catalog
        : {
            bucket: d.immediateAction,
            investigatory: entry.investigatoryAction,
            decoded: `NVLink ${d.summary}`,
            ...(d.link === null ? {} : { subKey: `link ${d.link}` }),
          };
    }
    case 154: {
      const d = decodeXid154(message);
      if (d === null) return catalog;
      const from = d.from === null ? '?' : `0x${d.from.toString(16)}`;
      return {
        bucket: d.immediateAction,
        investigatory: null,
        decoded: `recovery action now 0x${d.to.toString(16)}: ${d.label}`,
        subKey: `${from}->0x${d.to.toString(16)}`,
      };
    }
    case 45: {
      const cause = CAUSED_BY_RE.exec(message);
      return cause === null
        ? { bucket: 'RESTART_FM', investigatory: entry.investigatoryAction, decoded: 'XID 45 alone: restart Fabric Manager' }
        : {
            bucket: 'IGNORE (sympathetic)',
            investigatory: entry.investigatoryAction,
            decoded: `caused by XID ${cause[1]}: act on that one`,
          };
    }
    case 48:
      return { bucket: 'RESET_GPU', investigatory: entry.investigatoryAction, decoded: 'double-bit ECC error: reset the GPU' };
    case 13: {
      const unit = GPC_TPC_RE.exec(message);
      return unit === null ? catalog : { ...catalog, subKey: `GPC ${unit[1]} TPC ${unit[2]}` };
    }
    default:
      return catalog;
  }
}

/** Classifies one event by its code and message (the built-in catalog and no policy by default). */
export function classifyXid(
  xid: number,
  message: string,
  view: XidPolicyView = defaultXidView,
  context: ClassifyContext = {},
): XidClassification {
  const entry = view.lookup(xid);
  const r = resolve(entry, message, context);
  const meaning = bucketMeaning(r.bucket);
  const override = view.override(xid);
  return Object.freeze({
    immediateAction: r.bucket,
    investigatoryAction: r.investigatory,
    severity: override?.severity ?? meaning.severity,
    action: override?.action ?? (r.bucket === entry.bucket ? entry.action : meaning.action),
    persistence: meaning.persistence,
    ...(r.decoded === undefined ? {} : { decoded: r.decoded }),
    subKey: r.subKey ?? '',
    ...(r.alternatives === undefined ? {} : { alternatives: r.alternatives }),
  });
}

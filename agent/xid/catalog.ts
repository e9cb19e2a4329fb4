/**
 * The XID catalog: what each XID code means and what to do about it. The data lives in
 * catalog.json (rules as data, overridable by GPUHealthPolicy.spec.xid); this module validates
 * it once at load and offers look-ups.
 */
import catalogData from './catalog.json' with { type: 'json' };

/** How bad an XID is, from "nothing to do" to "take the GPU out of service". */
export type XidSeverity = 'info' | 'warning' | 'critical';

/** Every severity, least severe first (index = rank). */
export const XID_SEVERITIES: readonly XidSeverity[] = ['info', 'warning', 'critical'];

/** The area of the system an XID points at. */
export type XidCategory =
  | 'application'
  | 'memory'
  | 'nvlink'
  | 'bus'
  | 'firmware'
  | 'driver'
  | 'thermal-power'
  | 'hardware'
  | 'engine'
  | 'recovery'
  | 'security'
  | 'virtualization'
  | 'unknown';

/** Every category a catalog entry may name. */
export const XID_CATEGORIES: readonly XidCategory[] = [
  'application',
  'memory',
  'nvlink',
  'bus',
  'firmware',
  'driver',
  'thermal-power',
  'hardware',
  'engine',
  'recovery',
  'security',
  'virtualization',
  'unknown',
];

/** A refinement of an entry's severity by the event's message text (first match wins). */
export interface XidMessageRule {
  /** A regular expression tested against the XID message. */
  readonly pattern: string;
  readonly severity: XidSeverity;
}

/** One catalog row. */
export interface XidCatalogEntry {
  readonly xid: number;
  /** NVIDIA's mnemonic, e.g. ROBUST_CHANNEL_GPU_ECC_DBE. */
  readonly name: string;
  readonly category: XidCategory;
  readonly severity: XidSeverity;
  /** Recommended action, short. */
  readonly action: string;
  readonly description: string;
  readonly messageRules?: readonly XidMessageRule[];
}

/** A validated, immutable catalog indexed by code. */
export interface XidCatalog {
  readonly entries: ReadonlyMap<number, XidCatalogEntry>;
}

/** An operator override for one code (GPUHealthPolicy.spec.xid.overrides[]). */
export interface XidOverride {
  readonly xid: number;
  readonly severity?: XidSeverity;
  readonly action?: string;
}

/** The XID part of a GPUHealthPolicy: codes to ignore and per-code overrides. */
export interface XidPolicy {
  readonly ignore?: readonly number[];
  readonly overrides?: readonly XidOverride[];
}

/** A catalog as seen through a policy: ignored codes answer `ignored: true`. */
export interface XidPolicyView {
  /** The entry for a code (overrides applied); unknown codes get an "Unknown XID" entry. */
  lookup(xid: number): XidCatalogEntry;
  /** True when the policy says to drop events with this code. */
  isIgnored(xid: number): boolean;
}

/** Thrown when catalog data (or a policy against it) is malformed; names the entry and field. */
export class XidCatalogError extends Error {
  override readonly name = 'XidCatalogError';
}

/** The highest code NVIDIA has assigned is in the 170s; leave room for new ones. */
const MAX_XID = 1000;

function fail(where: string, field: string, problem: string): never {
  const [what, place] = where.startsWith('policy') ? ['policy', where.replace(/^policy\s*/, '')] : ['catalog', where];
  throw new XidCatalogError(`invalid XID ${what}: ${place === '' ? '' : `${place}: `}field "${field}" ${problem}`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function requireString(raw: Record<string, unknown>, where: string, field: string): string {
  const value = raw[field];
  if (typeof value !== 'string' || value.trim() === '') fail(where, field, 'must be a non-empty string');
  return value;
}

function requireSeverity(value: unknown, where: string, field: string): XidSeverity {
  const found = XID_SEVERITIES.find((s) => s === value);
  if (found === undefined) fail(where, field, `must be one of ${XID_SEVERITIES.join('|')}`);
  return found;
}

function isValidXid(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value > 0 && value < MAX_XID;
}

function parseRules(value: unknown, where: string): XidMessageRule[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) fail(where, 'messageRules', 'must be an array');
  return value.map((rule: unknown, i: number): XidMessageRule => {
    const field = `messageRules[${i}]`;
    if (!isRecord(rule)) fail(where, field, 'must be an object');
    const pattern = rule['pattern'];
    if (typeof pattern !== 'string' || pattern === '') fail(where, `${field}.pattern`, 'must be a non-empty string');
    try {
      new RegExp(pattern);
    } catch (err) {
      throw new XidCatalogError(`invalid XID catalog: ${where}: field "${field}.pattern" is not a valid regular expression`, { cause: err });
    }
    return { pattern, severity: requireSeverity(rule['severity'], where, `${field}.severity`) };
  });
}

function parseEntry(raw: unknown, index: number): XidCatalogEntry {
  let where = `entry #${index}`;
  if (!isRecord(raw)) fail(where, '(entry)', 'must be an object');
  if (!isValidXid(raw['xid'])) fail(where, 'xid', `must be an integer in 1..${MAX_XID - 1}`);
  const xid = raw['xid'];
  where = `entry #${index} (xid ${xid})`;
  const category = XID_CATEGORIES.find((c) => c === raw['category']);
  if (category === undefined) fail(where, 'category', `must be one of ${XID_CATEGORIES.join('|')}`);
  const rules = parseRules(raw['messageRules'], where);
  const entry: XidCatalogEntry = {
    xid,
    name: requireString(raw, where, 'name'),
    category,
    severity: requireSeverity(raw['severity'], where, 'severity'),
    action: requireString(raw, where, 'action'),
    description: requireString(raw, where, 'description'),
    ...(rules === undefined ? {} : { messageRules: Object.freeze(rules) }),
  };
  return Object.freeze(entry);
}

/** Validates raw catalog data ({entries: [...]}) and builds the catalog; throws XidCatalogError naming the bad entry and field. */
export function loadXidCatalog(data: unknown): XidCatalog {
  if (!isRecord(data) || !Array.isArray(data['entries'])) fail('catalog', 'entries', 'must be an array');
  const entries = new Map<number, XidCatalogEntry>();
  data['entries'].forEach((raw: unknown, index: number) => {
    const entry = parseEntry(raw, index);
    if (entries.has(entry.xid)) fail(`entry #${index} (xid ${entry.xid})`, 'xid', 'duplicates an earlier entry');
    entries.set(entry.xid, entry);
  });
  return Object.freeze({ entries });
}

/** The built-in catalog, validated when this module loads. */
export const defaultXidCatalog: XidCatalog = loadXidCatalog(catalogData);

/** The entry reported for a code the catalog does not know. */
export function unknownXidEntry(xid: number): XidCatalogEntry {
  return Object.freeze({
    xid,
    name: 'Unknown XID',
    category: 'unknown',
    severity: 'warning',
    action: 'Look the code up in NVIDIA\'s XID catalog for this driver; contact support if it recurs',
    description: `XID ${xid} is not in this catalog`,
  });
}

/** Looks a code up in a catalog (the built-in one by default); unknown codes get an "Unknown XID" entry with warning severity. */
export function lookupXid(xid: number, catalog: XidCatalog = defaultXidCatalog): XidCatalogEntry {
  return catalog.entries.get(xid) ?? unknownXidEntry(xid);
}

/** The severity of one event: the entry's default refined by its message rules. */
export function severityForMessage(entry: XidCatalogEntry, message: string): XidSeverity {
  for (const rule of entry.messageRules ?? []) {
    if (new RegExp(rule.pattern).test(message)) return rule.severity;
  }
  return entry.severity;
}

/** Orders severities: positive when `a` is worse than `b`. */
export function compareSeverity(a: XidSeverity, b: XidSeverity): number {
  return XID_SEVERITIES.indexOf(a) - XID_SEVERITIES.indexOf(b);
}

/** Applies a GPUHealthPolicy's XID section: returns a view with overrides applied and ignored codes flagged; throws XidCatalogError on a malformed policy. */
export function applyXidPolicy(catalog: XidCatalog, policy: XidPolicy): XidPolicyView {
  const ignored = new Set<number>();
  (policy.ignore ?? []).forEach((xid, i) => {
    if (!isValidXid(xid)) fail('policy', `ignore[${i}]`, `must be an integer in 1..${MAX_XID - 1}`);
    ignored.add(xid);
  });
  const overridden = new Map<number, XidCatalogEntry>();
  (policy.overrides ?? []).forEach((o, i) => {
    const where = `policy overrides[${i}]`;
    if (!isValidXid(o.xid)) fail(where, 'xid', `must be an integer in 1..${MAX_XID - 1}`);
    const base = overridden.get(o.xid) ?? lookupXid(o.xid, catalog);
    const severity = o.severity === undefined ? undefined : requireSeverity(o.severity, where, 'severity');
    if (o.action !== undefined && o.action.trim() === '') fail(where, 'action', 'must be a non-empty string');
    // An explicit severity wins over the entry's message rules, so they are dropped.
    const next: XidCatalogEntry = {
      xid: base.xid,
      name: base.name,
      category: base.category,
      severity: severity ?? base.severity,
      action: o.action ?? base.action,
      description: base.description,
      ...(severity === undefined && base.messageRules !== undefined ? { messageRules: base.messageRules } : {}),
    };
    overridden.set(o.xid, Object.freeze(next));
  });
  return Object.freeze({
    lookup: (xid: number): XidCatalogEntry => overridden.get(xid) ?? lookupXid(xid, catalog),
    isIgnored: (xid: number): boolean => ignored.has(xid),
  });
}

/**
 * The XID catalog: NVIDIA's catalog (every code 1–172, plus 173–176 from the open kernel driver)
 * as data in catalog.json — mnemonic, our own description, products, NVIDIA's immediate and
 * investigatory action buckets, whether an XID 154 follows — validated once at load. Severity
 * and plain-words action come from the bucket (actions.ts); decodes refine them per event
 * (classify.ts); GPUHealthPolicy.spec.xid overrides them per code.
 */
import catalogData from './catalog.json' with { type: 'json' };
import { bucketMeaning, XID_SEVERITIES, type XidSeverity } from './actions.js';
import { isRecord } from '../../lib/records.js';

export { compareSeverity, XID_SEVERITIES, type XidSeverity } from './actions.js';

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

/** The products NVIDIA's catalog has a column for. */
export type XidProduct = 'A100' | 'H100' | 'B100' | 'GB200';
export const XID_PRODUCTS: readonly XidProduct[] = ['A100', 'H100', 'B100', 'GB200'];

/** The bucket acted on when NVIDIA names none and we assumed none. */
const FALLBACK_BUCKET = 'CONTACT_SUPPORT';

/** One catalog row. */
export interface XidCatalogEntry {
  readonly xid: number;
  /** NVIDIA's mnemonic, e.g. ROBUST_CHANNEL_GPU_ECC_DBE. */
  readonly mnemonic: string;
  /** The name events carry: the mnemonic. */
  readonly name: string;
  /** Our own short description. */
  readonly description: string;
  readonly category: XidCategory;
  /** Products the catalog says the code occurs on. */
  readonly products: readonly XidProduct[];
  /** The catalog lists it as unused (retired or pre-Volta only). */
  readonly retired: boolean;
  /** NVIDIA's immediate action bucket, verbatim; null when the catalog gives none. */
  readonly immediateAction: string | null;
  /** NVIDIA's investigatory action, verbatim; null when the catalog gives none. */
  readonly investigatoryAction: string | null;
  /** NVIDIA's XID 154 linkage (from which driver an XID 154 follows this code); null when none. */
  readonly xid154: string | null;
  /** Our bucket where NVIDIA gives none (codes newer than the catalog's last revision). */
  readonly assumedAction?: string;
  /** Specific guidance beyond the bucket, our words. */
  readonly advice?: string;
  /** The bucket acted on before any decode: immediateAction, else assumedAction, else CONTACT_SUPPORT. */
  readonly bucket: string;
  /** Severity of the bucket (decodes and policy overrides refine it per event). */
  readonly severity: XidSeverity;
  /** Plain-words action of the bucket, plus the advice. */
  readonly action: string;
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

/** A catalog as seen through a policy. */
export interface XidPolicyView {
  /** The entry for a code (unknown codes get an "Unknown XID" entry); overrides are not applied here. */
  lookup(xid: number): XidCatalogEntry;
  /** The policy's override for a code, applied after decoding (an explicit severity wins). */
  override(xid: number): XidOverride | undefined;
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

function requireString(raw: Record<string, unknown>, where: string, field: string): string {
  const value = raw[field];
  if (typeof value !== 'string' || value.trim() === '') fail(where, field, 'must be a non-empty string');
  return value;
}

function optionalString(raw: Record<string, unknown>, where: string, field: string): string | null {
  const value = raw[field];
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string' || value.trim() === '') fail(where, field, 'must be a non-empty string or null');
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

function parseProducts(value: unknown, where: string): XidProduct[] {
  if (!Array.isArray(value)) fail(where, 'products', `must be an array of ${XID_PRODUCTS.join('|')}`);
  return value.map((p: unknown, i: number) => {
    const found = XID_PRODUCTS.find((known) => known === p);
    if (found === undefined) fail(where, `products[${i}]`, `must be one of ${XID_PRODUCTS.join('|')}`);
    return found;
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
  if (typeof raw['retired'] !== 'boolean') fail(where, 'retired', 'must be true or false');
  const mnemonic = requireString(raw, where, 'mnemonic');
  const immediateAction = optionalString(raw, where, 'immediateAction');
  const assumedAction = optionalString(raw, where, 'assumedAction');
  if (immediateAction !== null && assumedAction !== null)
    fail(where, 'assumedAction', "must be absent when immediateAction is set (NVIDIA's bucket wins)");
  const advice = optionalString(raw, where, 'advice');
  const bucket = immediateAction ?? assumedAction ?? FALLBACK_BUCKET;
  const meaning = bucketMeaning(bucket);
  return Object.freeze({
    xid,
    mnemonic,
    name: mnemonic,
    description: requireString(raw, where, 'description'),
    category,
    products: Object.freeze(parseProducts(raw['products'], where)),
    retired: raw['retired'],
    immediateAction,
    investigatoryAction: optionalString(raw, where, 'investigatoryAction'),
    xid154: optionalString(raw, where, 'xid154'),
    ...(assumedAction === null ? {} : { assumedAction }),
    ...(advice === null ? {} : { advice }),
    bucket,
    severity: meaning.severity,
    action: advice === null ? meaning.action : `${meaning.action}. ${advice}`,
  });
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
  const meaning = bucketMeaning(FALLBACK_BUCKET);
  return Object.freeze({
    xid,
    mnemonic: 'UNKNOWN_XID',
    name: 'Unknown XID',
    description: `XID ${xid} is not in this catalog (a driver newer than the catalog, or a garbled line)`,
    category: 'unknown',
    products: Object.freeze([]),
    retired: false,
    immediateAction: null,
    investigatoryAction: null,
    xid154: null,
    bucket: FALLBACK_BUCKET,
    severity: meaning.severity,
    action: meaning.action,
  });
}

/** Looks a code up in a catalog (the built-in one by default); unknown codes get an "Unknown XID" entry with warning severity. */
export function lookupXid(xid: number, catalog: XidCatalog = defaultXidCatalog): XidCatalogEntry {
  return catalog.entries.get(xid) ?? unknownXidEntry(xid);
}

/** Applies a GPUHealthPolicy's XID section; throws XidCatalogError on a malformed policy. */
export function applyXidPolicy(catalog: XidCatalog, policy: XidPolicy): XidPolicyView {
  const ignored = new Set<number>();
  (policy.ignore ?? []).forEach((xid, i) => {
    if (!isValidXid(xid)) fail('policy', `ignore[${i}]`, `must be an integer in 1..${MAX_XID - 1}`);
    ignored.add(xid);
  });
  const overrides = new Map<number, XidOverride>();
  (policy.overrides ?? []).forEach((o, i) => {
    const where = `policy overrides[${i}]`;
    if (!isValidXid(o.xid)) fail(where, 'xid', `must be an integer in 1..${MAX_XID - 1}`);
    const severity = o.severity === undefined ? undefined : requireSeverity(o.severity, where, 'severity');
    if (o.action !== undefined && o.action.trim() === '') fail(where, 'action', 'must be a non-empty string');
    const earlier = overrides.get(o.xid);
    overrides.set(
      o.xid,
      Object.freeze({
        xid: o.xid,
        ...((severity ?? earlier?.severity) === undefined ? {} : { severity: severity ?? earlier?.severity }),
        ...((o.action ?? earlier?.action) === undefined ? {} : { action: o.action ?? earlier?.action }),
      } as XidOverride),
    );
  });
  return Object.freeze({
    lookup: (xid: number): XidCatalogEntry => lookupXid(xid, catalog),
    override: (xid: number): XidOverride | undefined => overrides.get(xid),
    isIgnored: (xid: number): boolean => ignored.has(xid),
  });
}

/** The built-in catalog with no policy. */
export const defaultXidView: XidPolicyView = applyXidPolicy(defaultXidCatalog, {});

import fs from 'node:fs';
import path from 'node:path';
import { bucketMeaning, KNOWN_BUCKETS, needsDecode } from './actions.js';
import { applyXidPolicy, defaultXidCatalog, loadXidCatalog, lookupXid, XID_PRODUCTS, XidCatalogError } from './catalog.js';
import { NVLINK5_ROWS } from './decode/nvlink5.js';
import { SHARED_DIR } from '../../test/support/shared-dir.js';

/**
 * NVIDIA's catalog as data: `../shared` sits beside the checkout in CI and here
 * (GPUDIAG_SHARED_DIR names it elsewhere). Missing files fail the test: drift must not pass unseen.
 */
const CATALOG_DIR = path.join(SHARED_DIR, 'docs/xid-catalog');

function readTsv(name: string): Record<string, string>[] {
  const [header = '', ...rows] = fs
    .readFileSync(path.join(CATALOG_DIR, name), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '');
  const columns = header.split('\t');
  return rows.map((row) => {
    const cells = row.split('\t');
    return Object.fromEntries(columns.map((c, i) => [c, (cells[i] ?? '').trim()]));
  });
}

const orNull = (text: string | undefined): string | null => (text === undefined || text === '' ? null : text);

describe("the catalog is NVIDIA's (drift check against ../shared/docs/xid-catalog)", () => {
  const rows = readTsv('xids.tsv');

  it('the TSV is present and complete (1–172)', () => {
    expect(rows.map((r) => Number(r['xid']))).toEqual(Array.from({ length: 172 }, (_, i) => i + 1));
  });

  it.each(readTsv('xids.tsv').map((r) => [Number(r['xid']), r] as const))('XID %i matches the TSV field by field', (xid, row) => {
    const entry = defaultXidCatalog.entries.get(xid);
    expect(entry).toBeDefined();
    expect({
      mnemonic: entry?.mnemonic,
      products: entry?.products,
      retired: entry?.retired,
      immediateAction: entry?.immediateAction,
      investigatoryAction: entry?.investigatoryAction,
      xid154: entry?.xid154,
    }).toEqual({
      mnemonic: row['mnemonic'],
      products: XID_PRODUCTS.filter((p) => row[p.toLowerCase()] === 'YES'),
      retired: row['description'] === 'Unused',
      immediateAction: orNull(row['immediate_action']),
      investigatoryAction: orNull(row['investigatory_action']),
      xid154: orNull(row['xid154_linkage']),
    });
  });

  it('holds 173–176 from the open kernel driver, each with our assumed bucket and a source', () => {
    for (const xid of [173, 174, 175, 176]) {
      const entry = lookupXid(xid);
      expect(entry.mnemonic).not.toBe('UNKNOWN_XID');
      expect(entry.immediateAction).toBeNull();
      expect(KNOWN_BUCKETS).toContain(entry.assumedAction);
    }
  });

  it('describes every code in our own words, never the TSV text verbatim when it says more than a name', () => {
    for (const row of rows) {
      const entry = defaultXidCatalog.entries.get(Number(row['xid']));
      expect(entry?.description.length).toBeGreaterThan(10);
      if ((row['description'] ?? '').split(' ').length > 4) expect(entry?.description).not.toBe(row['description']);
    }
  });

  it('every bucket the catalog names has a meaning or a decode', () => {
    for (const entry of defaultXidCatalog.entries.values()) {
      expect(needsDecode(entry.bucket) || KNOWN_BUCKETS.includes(entry.bucket === 'CHECK_APP/CUDA' ? 'CHECK_APP' : entry.bucket)).toBe(
        true,
      );
    }
  });

  it('the NVLink5 decode table equals nvlink5-decode.tsv row by row', () => {
    const tsv = readTsv('nvlink5-decode.tsv').map((r) => ({
      xid: Number(r['xid']),
      subcode: r['subcode'],
      intrInfoV1: r['intrinfo_v1_lt_r575'],
      intrInfoV2: r['intrinfo_v2_ge_r575'],
      errorStatus: orNull(r['error_status']),
      immediateAction: r['immediate_action'],
      secondIntrInfoV1: orNull(r['action2_v1']),
      secondIntrInfoV2: orNull(r['action2_v2']),
      secondAction: orNull(r['action2']),
      investigatoryAction: orNull(r['investigatory_action']),
      severity: r['severity'],
      hwSw: r['hw_sw'],
    }));
    expect(NVLINK5_ROWS).toEqual(tsv);
  });
});

describe('severity comes from the immediate bucket by one mapping', () => {
  it.each([
    ['IGNORE', 'info'],
    ['IGNORE (sympathetic)', 'info'],
    ['RESTART_APP', 'warning'],
    ['CHECK_APP/CUDA', 'warning'],
    ['CONTACT_SUPPORT', 'warning'],
    ['CHECK_MECHANICALS', 'warning'],
    ['UPDATE_SWFW', 'warning'],
    ['RESTART_FM', 'critical'],
    ['RESTART_VM', 'critical'],
    ['RESET_GPU', 'critical'],
    ['RESTART_BM', 'critical'],
  ] as const)('%s → %s', (bucket, severity) => {
    expect(bucketMeaning(bucket).severity).toBe(severity);
  });

  it.each([
    [79, 'RESTART_BM', 'critical', 'reboot'],
    [109, 'RESET_GPU', 'critical', 'gpu-reset'],
    [95, 'RESET_GPU', 'critical', 'gpu-reset'],
    [94, 'RESTART_APP', 'warning', 'lookback'],
    [63, 'IGNORE', 'info', 'lookback'],
    [92, 'IGNORE', 'info', 'lookback'],
    [121, 'IGNORE', 'info', 'lookback'],
    [157, 'IGNORE', 'info', 'lookback'],
    [151, 'RESTART_VM', 'critical', 'lookback'],
    [13, 'RESTART_APP', 'warning', 'lookback'],
  ] as const)('XID %i is %s (%s), lasting until %s', (xid, bucket, severity, persistence) => {
    const entry = lookupXid(xid);
    expect(entry.bucket).toBe(bucket);
    expect(entry.severity).toBe(severity);
    expect(bucketMeaning(entry.bucket).persistence).toBe(persistence);
  });

  it('unknown codes ask for support with a warning', () => {
    expect(lookupXid(999)).toMatchObject({ name: 'Unknown XID', bucket: 'CONTACT_SUPPORT', severity: 'warning' });
  });
});

describe('loading catalog data names the bad entry and field', () => {
  const valid = {
    xid: 79,
    mnemonic: 'X',
    description: 'd',
    category: 'bus',
    products: ['H100'],
    retired: false,
    immediateAction: 'RESTART_BM',
    investigatoryAction: null,
    xid154: null,
  };

  it('accepts a valid entry and derives bucket, severity and action', () => {
    const catalog = loadXidCatalog({ entries: [valid] });
    expect(catalog.entries.get(79)).toMatchObject({ bucket: 'RESTART_BM', severity: 'critical', name: 'X' });
  });

  it.each([
    [{ entries: 'x' }, /field "entries"/],
    [{ entries: [{ ...valid, xid: 0 }] }, /entry #0: field "xid"/],
    [{ entries: [{ ...valid, category: 'nope' }] }, /\(xid 79\): field "category"/],
    [{ entries: [{ ...valid, products: ['V100'] }] }, /field "products\[0\]"/],
    [{ entries: [{ ...valid, retired: 'no' }] }, /field "retired"/],
    [{ entries: [{ ...valid, mnemonic: '' }] }, /field "mnemonic"/],
    [{ entries: [{ ...valid, assumedAction: 'IGNORE' }] }, /field "assumedAction"/],
    [{ entries: [valid, valid] }, /entry #1 \(xid 79\): field "xid" duplicates/],
  ])('rejects %j', (data, message) => {
    expect(() => loadXidCatalog(data)).toThrow(XidCatalogError);
    expect(() => loadXidCatalog(data)).toThrow(message);
  });
});

describe('a GPUHealthPolicy overrides per code', () => {
  it('keeps overrides and ignores apart from the catalog entry', () => {
    const view = applyXidPolicy(defaultXidCatalog, {
      ignore: [43],
      overrides: [
        { xid: 13, severity: 'critical' },
        { xid: 13, action: 'page the ML team' },
      ],
    });
    expect(view.isIgnored(43)).toBe(true);
    expect(view.override(13)).toEqual({ xid: 13, severity: 'critical', action: 'page the ML team' });
    expect(view.lookup(13).severity).toBe('warning');
  });

  it.each([
    [{ ignore: [0] }, /policy: field "ignore\[0\]"/],
    [{ overrides: [{ xid: 5000 }] }, /overrides\[0\]: field "xid"/],
    [{ overrides: [{ xid: 13, severity: 'fatal' as never }] }, /overrides\[0\]: field "severity"/],
    [{ overrides: [{ xid: 13, action: ' ' }] }, /overrides\[0\]: field "action"/],
  ])('rejects %j naming the field', (policy, message) => {
    expect(() => applyXidPolicy(defaultXidCatalog, policy)).toThrow(message);
  });
});

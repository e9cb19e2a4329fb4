import {
  applyXidPolicy,
  compareSeverity,
  defaultXidCatalog,
  loadXidCatalog,
  lookupXid,
  severityForMessage,
  XidCatalogError,
} from './catalog.js';

const valid = { xid: 79, name: 'X', category: 'bus', severity: 'critical', action: 'a', description: 'd' };

describe('XID catalog', () => {
  it('ships at least 40 validated codes', () => {
    expect(defaultXidCatalog.entries.size).toBeGreaterThanOrEqual(40);
  });

  it.each([
    [13, 'warning'],
    [31, 'warning'],
    [43, 'info'],
    [45, 'info'],
    [68, 'warning'],
    [109, 'warning'],
    [48, 'critical'],
    [62, 'critical'],
    [63, 'warning'],
    [64, 'critical'],
    [74, 'critical'],
    [79, 'critical'],
    [92, 'warning'],
    [94, 'warning'],
    [95, 'critical'],
    [119, 'critical'],
    [120, 'critical'],
    [136, 'critical'],
    [140, 'critical'],
    [143, 'critical'],
  ] as const)('XID %i defaults to %s', (xid, severity) => {
    expect(lookupXid(xid).severity).toBe(severity);
  });

  it('answers unknown codes with an "Unknown XID" warning entry', () => {
    expect(lookupXid(999)).toMatchObject({ xid: 999, name: 'Unknown XID', severity: 'warning', category: 'unknown' });
  });

  it('refines NVLink5 and XID 154 severities from the message text', () => {
    expect(severityForMessage(lookupXid(145), 'RLW_RXPIPE Nonfatal XC0 i0 Link 13 (0x0409a0c2)')).toBe('warning');
    expect(severityForMessage(lookupXid(149), 'NETIR_LINK_EVT  Fatal   XC0 i0 Link 01')).toBe('critical');
    expect(severityForMessage(lookupXid(154), 'GPU recovery action changed from 0x1 (GPU Reset Required) to 0x0 (None)')).toBe('info');
    expect(severityForMessage(lookupXid(154), 'GPU recovery action changed from 0x0 (None) to 0x1 (GPU Reset Required)')).toBe('critical');
  });

  it('orders severities', () => {
    expect(compareSeverity('critical', 'warning')).toBeGreaterThan(0);
    expect(compareSeverity('info', 'warning')).toBeLessThan(0);
  });

  it.each([
    [{ entries: 'x' }, /entries/],
    [{ entries: [{ ...valid, xid: 'a' }] }, /entry #0: field "xid"/],
    [{ entries: [{ ...valid, severity: 'fatal' }] }, /entry #0 \(xid 79\): field "severity"/],
    [{ entries: [{ ...valid, category: 'cosmic' }] }, /field "category"/],
    [{ entries: [{ ...valid, action: '  ' }] }, /field "action" must be a non-empty string/],
    [{ entries: [{ ...valid, name: undefined }] }, /field "name"/],
    [{ entries: [valid, valid] }, /entry #1 \(xid 79\): field "xid" duplicates/],
    [{ entries: [{ ...valid, messageRules: [{ pattern: '(', severity: 'info' }] }] }, /messageRules\[0\]\.pattern/],
    [{ entries: [{ ...valid, messageRules: [{ pattern: 'x', severity: 'nope' }] }] }, /messageRules\[0\]\.severity/],
  ])('rejects a bad catalog %#, naming the entry and field', (data, message) => {
    expect(() => loadXidCatalog(data)).toThrow(XidCatalogError);
    expect(() => loadXidCatalog(data)).toThrow(message);
  });
});

describe('applyXidPolicy', () => {
  it('overrides severity and action and flags ignored codes without touching the base catalog', () => {
    const view = applyXidPolicy(defaultXidCatalog, {
      ignore: [43],
      overrides: [{ xid: 13, severity: 'critical' }, { xid: 79, action: 'call the on-call' }, { xid: 500, severity: 'info' }],
    });
    expect(view.lookup(13).severity).toBe('critical');
    expect(view.lookup(79)).toMatchObject({ severity: 'critical', action: 'call the on-call' });
    expect(view.lookup(500)).toMatchObject({ name: 'Unknown XID', severity: 'info' });
    expect(view.isIgnored(43)).toBe(true);
    expect(view.isIgnored(13)).toBe(false);
    expect(lookupXid(13).severity).toBe('warning');
  });

  it('drops message rules when the severity is overridden', () => {
    const view = applyXidPolicy(defaultXidCatalog, { overrides: [{ xid: 145, severity: 'info' }] });
    expect(severityForMessage(view.lookup(145), 'RLW Fatal')).toBe('info');
  });

  it.each([
    [{ ignore: [0] }, /ignore\[0\]/],
    [{ overrides: [{ xid: -1 }] }, /overrides\[0\]: field "xid"/],
    [{ overrides: [{ xid: 13, severity: 'loud' as 'info' }] }, /overrides\[0\]: field "severity"/],
    [{ overrides: [{ xid: 13, action: '' }] }, /overrides\[0\]: field "action"/],
  ])('rejects a malformed policy %#', (policy, message) => {
    expect(() => applyXidPolicy(defaultXidCatalog, policy)).toThrow(message);
  });
});

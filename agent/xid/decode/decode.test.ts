/**
 * Table tests of the message decodes. Messages are real kernel lines (test/fixtures/xid/corpus.jsonl
 * names their sources) unless marked "table-built": those are composed from NVIDIA's decode
 * table where no public log shows the case. Expected buckets were read off the table by hand.
 */
import { classifyXid } from '../classify.js';
import { matchesBitPattern, nvlink5LayoutFor, parseNvlink5Message } from './nvlink5.js';
import { decodeXid74 } from './xid74.js';
import { decodeXid154 } from './xid154.js';

describe('NVLink5 (XIDs 144–150) by the decode table', () => {
  it('matches bit patterns most significant bit first, "-" = any', () => {
    expect(matchesBitPattern(0x021425c6, '------100001----------0111000110')).toBe(true);
    expect(matchesBitPattern(0x021425c6, '------100000----------0111000110')).toBe(false);
    expect(matchesBitPattern(1, '-------------------------------1')).toBe(true);
  });

  it.each([
    ['575.57.08', 'v2'],
    ['570.133.20', 'v1'],
    ['580.65.06', 'v2'],
    ['550.54.15', 'v1'],
    ['', null],
    ['garbage', null],
  ] as const)('driver %j reads IntrInfo as %s', (version, layout) => {
    expect(nvlink5LayoutFor(version)).toBe(layout);
  });

  it('splits a message into subcode, link and registers', () => {
    expect(
      parseNvlink5Message('NETIR_LINK_EVT  Fatal   XC0 i0 Link 01 (0x021425c6 0x00000000 0x00000000 0x00000000 0x00000000 0x00000000)'),
    ).toEqual({
      subcode: 'NETIR_LINK_EVT',
      driverSeverity: 'Fatal',
      link: 1,
      intrInfo: 0x021425c6,
      errorStatus: 0,
    });
    expect(parseNvlink5Message('RLW_RXPIPE Nonfatal XC0 i0 Link 11 (...)')).toBeNull();
  });

  it.each([
    // [xid, real message, driver, bucket, subKey]
    [
      149,
      'NETIR_LINK_EVT  Fatal   XC0 i0 Link 01 (0x021425c6 0x00000000 0x00000000 0x00000000 0x00000000 0x00000000)',
      '570.124.06',
      'RESET_GPU',
      'NETIR_LINK_EVT link 1',
    ],
    [
      149,
      'NETIR_LINK_EVT Fatal XC0 i0 Link 00 (0x025001c6 0x00000000 0x00000000 0x00000000 0x00000000 0x00000000)',
      '570.124.06',
      'RESET_GPU',
      'NETIR_LINK_EVT link 0',
    ],
    // "Fatal" in the text, yet the table says ignore (link-down reason 100110).
    [
      149,
      'NETIR_LINK_EVT Fatal XC0 i0 Link 00 (0x026001c6 0x00000000 0x00000000 0x00000000 0x00000000 0x00000000)',
      '570.124.06',
      'IGNORE',
      'NETIR_LINK_EVT link 0',
    ],
    [
      149,
      'NETIR Fatal XC0 i0 Link -1 (0x000fe406 0x00000000 0x00000000 0x00000000 0x00000000 0x00000000)',
      '570.124.06',
      'RESET_GPU',
      'NETIR',
    ],
    [
      145,
      'RLW_RXPIPE Nonfatal XC0 i0 Link 13 (0x0409a0c2 0x00000008 0x00000001 0x00000000 0x00100000 0x00000004)',
      '570.124.06',
      'IGNORE',
      'RLW_RXPIPE link 13',
    ],
    // A V2-layout register (R575+).
    [
      144,
      'SAW_MVB Nonfatal XC0 i0 Link 0 (0x00000001 0x00000008 0x00000000 0x00000000 0x00000000 0x00000000)',
      '575.57.08',
      'IGNORE',
      'SAW_MVB link 0',
    ],
    // table-built: "Nonfatal" in the text, yet RLW_REMAP status 0x40 needs a reset.
    [
      145,
      'RLW_REMAP Nonfatal XC0 i0 Link 03 (0x00000004 0x00000040 0x00000000 0x00000000 0x00000000 0x00000000)',
      '575.57.08',
      'RESET_GPU',
      'RLW_REMAP link 3',
    ],
    // table-built: the RLW_RXPIPE row's second pattern (bit 11 set) asks for a reset.
    [
      145,
      'RLW_RXPIPE Nonfatal XC0 i0 Link 02 (0x00000086 0x00000001 0x00000000 0x00000000 0x00000000 0x00000000)',
      '575.57.08',
      'RESET_GPU',
      'RLW_RXPIPE link 2',
    ],
    // table-built: RLW_REMAP status 0x1 follows the XID 154.
    [
      145,
      'RLW_REMAP Nonfatal XC0 i0 Link 03 (0x00000004 0x00000001 0x00000000 0x00000000 0x00000000 0x00000000)',
      '575.57.08',
      'XID_154_EVAL',
      'RLW_REMAP link 3',
    ],
  ] as const)('XID %i %j on driver %s → %s', (xid, message, driver, bucket, subKey) => {
    const c = classifyXid(xid, message, undefined, { driverVersion: driver });
    expect(c.immediateAction).toBe(bucket);
    expect(c.subKey).toBe(subKey);
    expect(c.decoded).toContain('NVLink5');
  });

  it("reads a message under both layouts when the driver is unknown (the table's layouts never disagree)", () => {
    // Real V1-layout and V2-layout registers; each decodes under its own layout only.
    const v1 = classifyXid(
      149,
      'NETIR_LINK_EVT  Fatal   XC0 i0 Link 01 (0x021425c6 0x00000000 0x00000000 0x00000000 0x00000000 0x00000000)',
    );
    expect(v1).toMatchObject({ immediateAction: 'RESET_GPU' });
    expect(v1.decoded).toContain('V1, driver version unknown');
    const v2 = classifyXid(144, 'SAW_MVB Nonfatal XC0 i0 Link 0 (0x00000001 0x00000008 0x00000000 0x00000000 0x00000000 0x00000000)');
    expect(v2).toMatchObject({ immediateAction: 'IGNORE' });
    expect(v2.decoded).toContain('V2, driver version unknown');
  });

  it('falls back to "follow the XID 154" when no row matches, whatever the text says (table-built: link-down reason 000011)', () => {
    const c = classifyXid(149, 'NETIR_LINK_EVT Fatal XC0 i0 Link 05 (0x003001c6 0x00000000)', undefined, { driverVersion: '570.124.06' });
    expect(c.immediateAction).toBe('XID_154_EVAL');
    expect(c.severity).toBe('warning');
  });
});

describe('XID 74 by its register bits', () => {
  it.each([
    // real: field 3 bit 16 — diagnostics only when repeated
    ['NVLink: fatal error detected on link 14(0x0, 0x0, 0x10000, 0x0, 0x0, 0x0, 0x0)', 'CONTACT_SUPPORT', 14],
    ['NVLink: fatal error detected on link 8(0x0, 0x0, 0x10000, 0x0, 0x0, 0x0, 0x0)', 'CONTACT_SUPPORT', 8],
    // table-built: field 1 bit 0 ignorable
    ['NVLink: fatal error detected on link 3(0x1, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0)', 'IGNORE', 3],
    // table-built: field 1 bit 16 possible hardware
    ['NVLink: fatal error detected on link 3(0x10000, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0)', 'RESET_GPU', 3],
    // table-built: secondary bit 1 alone counts; with bit 0 only bit 0 counts
    ['NVLink: fatal error detected on link 3(0x3, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0)', 'IGNORE', 3],
    // table-built: field 4 bit 18 — secondary but the fabric needs a reset
    ['NVLink: fatal error detected on link 1(0x0, 0x0, 0x0, 0x40000, 0x0, 0x0, 0x0)', 'RESET_GPU', 1],
    // table-built: field 5 bit 20 — ECC threshold only, keep running
    ['NVLink: fatal error detected on link 1(0x0, 0x0, 0x0, 0x0, 0x100000, 0x0, 0x0)', 'IGNORE', 1],
    // table-built: a bit not in the table → report a bug
    ['NVLink: fatal error detected on link 1(0x4, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0)', 'CONTACT_SUPPORT', 1],
  ] as const)('%j → %s', (message, bucket, link) => {
    const d = decodeXid74(message);
    expect(d?.immediateAction).toBe(bucket);
    expect(d?.link).toBe(link);
    expect(classifyXid(74, message).immediateAction).toBe(bucket);
  });

  it('leaves a 74 without registers to the catalog workflow (undecoded warning)', () => {
    expect(decodeXid74('NVLink: Fatal error detected on link 4')).toBeNull();
    expect(classifyXid(74, 'NVLink: Fatal error detected on link 4')).toMatchObject({
      immediateAction: 'WORKFLOW_NVLINK_ERR',
      severity: 'warning',
    });
  });
});

describe('XID 154 acts on the "to" half, by number', () => {
  it.each([
    ['GPU recovery action changed from 0x0 (None) to 0x1 (GPU Reset Required)', 'RESET_GPU', 'critical', '0x0->0x1'],
    ['GPU recovery action changed from 0x4 (Drain and Reset) to 0x1 (GPU Reset Required)', 'RESET_GPU', 'critical', '0x4->0x1'],
    ['GPU recovery action changed from 0x0 (None) to 0x4 (Drain and Reset)', 'DRAIN_AND_RESET', 'critical', '0x0->0x4'],
    // The old rule matched the "from" half here.
    ['GPU recovery action changed from 0x4 (Drain and Reset) to 0x3 (Drain P2P)', 'DRAIN_P2P', 'warning', '0x4->0x3'],
    ['GPU recovery action changed from 0x1 (GPU Reset Required) to 0x0 (None)', 'IGNORE', 'info', '0x1->0x0'],
    ['GPU recovery action changed from 0x0 (None) to 0x2 (Node Reboot Required)', 'RESTART_BM', 'critical', '0x0->0x2'],
    // Later drivers' words for the same numbers.
    ['GPU recovery action changed from 0x0 (None) to 0x2 (OS Reboot)', 'RESTART_BM', 'critical', '0x0->0x2'],
    ['GPU recovery action changed from 0x0 (None) to 0x1 (PF FLR)', 'RESET_GPU', 'critical', '0x0->0x1'],
    ['GPU recovery action changed from 0x0 (None) to 0x5 (Recover IMEX Domain)', 'RECOVER_IMEX', 'warning', '0x0->0x5'],
  ] as const)('%j → %s', (message, bucket, severity, subKey) => {
    expect(classifyXid(154, message)).toMatchObject({ immediateAction: bucket, severity, subKey });
  });

  it('lasts until a reboot only when it asks for one', () => {
    expect(classifyXid(154, 'GPU recovery action changed from 0x0 (None) to 0x2 (Node Reboot Required)').persistence).toBe('reboot');
    expect(classifyXid(154, 'GPU recovery action changed from 0x0 (None) to 0x1 (GPU Reset Required)').persistence).toBe('gpu-reset');
  });

  it('an unknown number asks for support; no number leaves the catalog row', () => {
    expect(decodeXid154('GPU recovery action changed from 0x0 (None) to 0x9 (Future)')?.immediateAction).toBe('CONTACT_SUPPORT');
    expect(decodeXid154('GPU recovery action changed')).toBeNull();
  });
});

describe('XID 45 on its own message', () => {
  it.each([
    ['Ch 00000001 caused by previous Xid 149', 'IGNORE (sympathetic)'],
    ['channel 0x00000010 caused by previous Xid 45', 'IGNORE (sympathetic)'],
    ['channel 0x0000000a', 'RESTART_FM'],
  ] as const)('%j → %s', (message, bucket) => {
    expect(classifyXid(45, message).immediateAction).toBe(bucket);
  });
});

describe('policy overrides win over decodes', () => {
  it('an explicit severity replaces the decoded one', async () => {
    const { applyXidPolicy, defaultXidCatalog } = await import('../catalog.js');
    const view = applyXidPolicy(defaultXidCatalog, { overrides: [{ xid: 154, severity: 'info', action: 'handled by our remediation' }] });
    expect(classifyXid(154, 'GPU recovery action changed from 0x0 (None) to 0x1 (GPU Reset Required)', view)).toMatchObject({
      immediateAction: 'RESET_GPU',
      severity: 'info',
      action: 'handled by our remediation',
    });
  });
});

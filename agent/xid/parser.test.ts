import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { KernelLogScanner, normalizePciBusId, parseKernelLine, parseLineTime, type ParsedLine } from './parser.js';

interface CorpusEntry {
  line: string;
  source: string;
  expected: null | ({ kind: string } & Record<string, unknown>);
}

// Tests run from dist/; the fixture stays in the source tree.
const CORPUS_PATH = path.resolve(process.cwd(), 'test/fixtures/xid/corpus.jsonl');
const corpus: CorpusEntry[] = fs
  .readFileSync(CORPUS_PATH, 'utf8')
  .split('\n')
  .filter((l) => l.trim() !== '')
  .map((l) => JSON.parse(l) as CorpusEntry);

function comparable(parsed: ParsedLine | null): Record<string, unknown> | null {
  if (parsed === null) return null;
  const rest: Record<string, unknown> = { ...parsed };
  delete rest['prefix'];
  return rest;
}

describe('parseKernelLine on the real-world corpus', () => {
  it('has at least 100 real XID lines covering at least 20 codes, each with a source', () => {
    const xids = corpus.filter((e) => e.expected?.kind === 'xid');
    expect(xids.length).toBeGreaterThanOrEqual(100);
    expect(new Set(xids.map((e) => e.expected?.['xid'])).size).toBeGreaterThanOrEqual(20);
    for (const e of corpus) expect(e.source.length).toBeGreaterThan(0);
  });

  it.each(corpus.map((e, i) => [i + 1, e] as const))('line %i parses as expected', (_n, entry) => {
    expect(comparable(parseKernelLine(entry.line))).toEqual(entry.expected);
  });
});

describe('parseKernelLine', () => {
  it.each([
    ['raw dmesg', '[ 1234.567890] NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, name=python3, GPU has fallen off the bus.'],
    ['dmesg -T', '[Mon Jan  5 10:00:00 2025] NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, name=python3, GPU has fallen off the bus.'],
    ['syslog', 'Jan  5 10:00:00 host kernel: NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, name=python3, GPU has fallen off the bus.'],
    [
      'journald iso',
      '2025-01-05T10:00:00+0100 host kernel: NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, name=python3, GPU has fallen off the bus.',
    ],
    ['dmesg --decode', 'kern  :warn  : [ 1234.567890] NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, name=python3, GPU has fallen off the bus.'],
    ['kmsg record text', '4,1234,5678901,-;NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, name=python3, GPU has fallen off the bus.'],
  ])('finds the XID behind a %s prefix', (_name, line) => {
    expect(parseKernelLine(line)).toMatchObject({
      kind: 'xid',
      xid: 79,
      pciBusId: '0000:3b:00',
      pid: 1234,
      process: 'python3',
      message: 'GPU has fallen off the bus.',
    });
  });

  it('treats unquoted <unknown> pid and name as null', () => {
    expect(
      parseKernelLine(
        'NVRM: Xid (PCI:0000:b9:00): 74, pid=<unknown>, name=<unknown>, NVLink: fatal error detected on link 6(0x10000, 0x0)',
      ),
    ).toMatchObject({
      xid: 74,
      pid: null,
      process: null,
      message: 'NVLink: fatal error detected on link 6(0x10000, 0x0)',
    });
  });

  it('keeps exact spacing of NVLink5 messages and trims only the end', () => {
    const parsed = parseKernelLine('NVRM: Xid (PCI:0018:01:00): 149, NETIR_LINK_EVT  Fatal   XC0 i0 Link 08 (0x1 0x0)   \r');
    expect(parsed).toMatchObject({ xid: 149, pciBusId: '0018:01:00', message: 'NETIR_LINK_EVT  Fatal   XC0 i0 Link 08 (0x1 0x0)' });
  });

  it('captures the MIG GPU instance', () => {
    expect(
      parseKernelLine('NVRM: Xid (PCI:0000:01:00 GPU-I:05): 94, pid=7194, Contained: CE User Channel (0x9). RST: No, D-RST: No'),
    ).toMatchObject({
      pciBusId: '0000:01:00',
      gpuInstance: 5,
      pid: 7194,
      process: null,
    });
  });

  it.each([
    ['no code', 'NVRM: Xid error: xyz, invalid data'],
    ['plain text', 'eth0: link up'],
    ['empty', ''],
  ])('reports nothing for %s', (_name, line) => {
    expect(parseKernelLine(line)).toBeNull();
  });

  it.each([
    ['malformed device', 'NVRM: Xid (invalid): 79, some error', 79],
    ['redacted device', 'kernel: NVRM: Xid (PCI:...): 145, RLW_RXPIPE Nonfatal XC0 i0 Link 11 (...)', 145],
  ])('keeps an XID with a %s as a node-level event (GPU unknown)', (_name, line, xid) => {
    expect(parseKernelLine(line)).toMatchObject({ kind: 'xid', xid, pciBusId: null });
  });

  it('captures MIG GPU and compute instances, even with a redacted address', () => {
    expect(parseKernelLine('NVRM: Xid (PCI:0000:01:00 GPU-I:05 GPU-CI:01): 94, Contained: CE User Channel (0x9)')).toMatchObject({
      pciBusId: '0000:01:00',
      gpuInstance: 5,
      computeInstance: 1,
    });
    expect(parseKernelLine('NVRM: Xid (PCI:... GPU-I:02 GPU-CI:00): 43, pid=7, Ch 00000010')).toMatchObject({
      pciBusId: null,
      gpuInstance: 2,
      computeInstance: 0,
      pid: 7,
    });
  });

  it.each([
    [
      '[117.98] nvidia-nvswitch3: SXid (PCI:0000:08:00.0): 22013, Non-fatal, Link 60 Minion Link DLREQ interrupt',
      { sxid: 22013, switchPciBusId: '0000:08:00', fatal: false, link: 60 },
    ],
    [
      '[6781753.400584] nvidia-nvswitch1: SXid (PCI:0000:06:00.0): 20034, Fatal, Link 48 LTSSM Fault Up',
      { sxid: 20034, switchPciBusId: '0000:06:00', fatal: true, link: 48 },
    ],
    [
      '[6781753.404848] nvidia-nvswitch2: SXid (PCI:0000:07:00.0): 20034, Severity 1 Engine instance 60 Sub-engine instance 00',
      { sxid: 20034, fatal: null, link: null },
    ],
  ])('reads NVSwitch %j as its own kind', (line, expected) => {
    expect(parseKernelLine(line)).toMatchObject({ kind: 'sxid', ...expected });
  });

  it.each([
    ['NVRM: GPU 0000:18:00.0: GPU has fallen off the bus.', '0000:18:00'],
    ['NVRM: GPU at 0000:01:00.0 has fallen off the bus.', '0000:01:00'],
    ['NVRM: GPU at PCI:0000:01:00: GPU has fallen off the bus.', '0000:01:00'],
  ])('reads the bus-loss wording %j', (line, pciBusId) => {
    expect(parseKernelLine(line)).toEqual({ kind: 'bus-lost', pciBusId, prefix: '' });
  });
  it('returns null for non-string input instead of throwing', () => {
    expect(parseKernelLine(undefined as unknown as string)).toBeNull();
  });
});

describe('normalizePciBusId', () => {
  it.each([
    ['00000000:3B:00.0', '0000:3b:00'],
    ['0000:3b:00', '0000:3b:00'],
    ['PCI:0000:3b:00', '0000:3b:00'],
    ['0000:3B:00.0', '0000:3b:00'],
    ['3b:00.0', '0000:3b:00'],
    ['00000019:01:00.0', '0019:01:00'],
  ])('%s -> %s', (input, expected) => {
    expect(normalizePciBusId(input)).toBe(expected);
  });

  it.each(['', 'GPU-1234', '0000:3b', 'zz:00:00', '0000:3b:00.9'])('rejects %j', (input) => {
    expect(normalizePciBusId(input)).toBeNull();
  });

  it('maps NVML and kernel forms of the same GPU to the same key', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffff }),
        fc.integer({ min: 0, max: 0xff }),
        fc.integer({ min: 0, max: 0x1f }),
        (d, b, dev) => {
          const hex = (n: number, w: number): string => n.toString(16).padStart(w, '0');
          const nvml = `${hex(d, 8).toUpperCase()}:${hex(b, 2).toUpperCase()}:${hex(dev, 2).toUpperCase()}.0`;
          const kernel = `${hex(d, 4)}:${hex(b, 2)}:${hex(dev, 2)}`;
          expect(normalizePciBusId(nvml)).toBe(kernel);
          expect(normalizePciBusId(`PCI:${kernel}`)).toBe(kernel);
        },
      ),
    );
  });
});

describe('parseLineTime', () => {
  it.each([
    ['[Fri Aug 30 11:43:09 2024] ', { timestamp: '2024-08-30T11:43:09', uptimeSeconds: null }],
    ['[Mon Jan  5 10:00:00 2025]', { timestamp: '2025-01-05T10:00:00', uptimeSeconds: null }],
    ['192.168.11.119: kern: warning: [2026-04-22T21:30:51.870495804Z]:', { timestamp: '2026-04-22T21:30:51.870Z', uptimeSeconds: null }],
    ['2025-01-05T10:00:00+0100 host kernel:', { timestamp: '2025-01-05T09:00:00.000Z', uptimeSeconds: null }],
    ['Dec 23 23:30:56 rescue kernel: [ 179.437933]', { timestamp: null, uptimeSeconds: 179.437933 }],
    ['kwi 15 07:56:59 testowy kernel:', { timestamp: null, uptimeSeconds: null }],
  ])('%j', (prefix, expected) => {
    expect(parseLineTime(prefix)).toEqual(expected);
  });
});

describe('parseKernelLine properties', () => {
  const xidLines = corpus.filter((e) => e.expected?.kind === 'xid').map((e) => e.line);

  it('never throws on arbitrary strings', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), (s) => {
        parseKernelLine(s);
      }),
      { numRuns: 2000 },
    );
  });

  it('never throws on mutated corpus lines, and reports an XID only when the line says Xid', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...xidLines),
        fc.array(fc.tuple(fc.nat(), fc.nat({ max: 3 }), fc.string({ maxLength: 4 })), { maxLength: 6 }),
        (line, edits) => {
          let s = line;
          for (const [pos, len, insert] of edits) {
            const at = pos % (s.length + 1);
            s = s.slice(0, at) + insert + s.slice(at + len);
          }
          const parsed = parseKernelLine(s);
          if (parsed?.kind === 'xid') expect(s).toMatch(/NVRM:\s*Xid\s*\(/);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('never reports an XID for lines without "Xid"', () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 300 }),
        fc.constantFrom('', 'NVRM: ', 'NVRM: GPU at PCI:0000:01:00: ', '[ 1.0] NVRM: X'),
        (s, prefix) => {
          const line = (prefix + s).replace(/Xid/gi, 'Xi_d');
          expect(parseKernelLine(line)?.kind).not.toBe('xid');
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('KernelLogScanner joins the three-line probe message', () => {
  // The driver's probe message as NVIDIA/NVSentinel#155 shows it (three printk lines).
  const probe = [
    'NVRM: The NVIDIA GPU 0000:05:00.0',
    'NVRM: (PCI ID: 10de:1b80) installed in this system has',
    'NVRM: fallen off the bus and is not responding to commands.',
  ];

  it('reports one bus loss for the three lines, in any prefix', () => {
    const scanner = new KernelLogScanner();
    const results = probe.map((l) => scanner.push(`[  12.345678] ${l}`));
    expect(results.slice(0, 2)).toEqual([null, null]);
    expect(results[2]).toMatchObject({ kind: 'bus-lost', pciBusId: '0000:05:00' });
  });

  it('reads the same message as one kmsg record with newlines', () => {
    expect(parseKernelLine(probe.join('\n'))).toMatchObject({ kind: 'bus-lost', pciBusId: '0000:05:00' });
  });

  it('drops a started probe message when another message interrupts it', () => {
    const scanner = new KernelLogScanner();
    scanner.push(probe[0] ?? '');
    expect(scanner.push('NVRM: Xid (PCI:0000:3b:00): 79, GPU has fallen off the bus.')).toMatchObject({ kind: 'xid', xid: 79 });
    expect(scanner.push(probe[2] ?? '')).toBeNull();
  });
});

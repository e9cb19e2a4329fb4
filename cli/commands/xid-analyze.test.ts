import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

// Jest runs from the repository root; the CLI shim loads dist/cli/main.js.
const BIN = path.resolve(process.cwd(), 'bin/gpudiag.js');
const SAMPLE = path.resolve(process.cwd(), 'test/fixtures/xid/sample-dmesg.log');
const CHILD_TIMEOUT_MS = 30_000;

function gpudiag(args: string[], input?: string, nodeFlags: string[] = []): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [...nodeFlags, BIN, 'xid', 'analyze', ...args], {
    encoding: 'utf8',
    input,
    timeout: CHILD_TIMEOUT_MS,
  });
}

function allRows(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The XID rows of a jsonl answer (it also carries sxid and bus-lost rows). */
function jsonl(stdout: string): Record<string, unknown>[] {
  return allRows(stdout).filter((r) => r['kind'] === 'xid');
}

describe('gpudiag xid analyze', () => {
  it('writes one JSON object per XID line with catalog fields, the UUID and the time', () => {
    const res = gpudiag(['--format', 'jsonl', SAMPLE]);
    expect(res.status).toBe(0);
    const rows = jsonl(res.stdout);
    expect(rows.map((r) => [r['line'], r['xid']])).toEqual([
      [2, 32],
      [3, 69],
      [4, 62],
      [7, 119],
      [9, 119],
      [10, 119],
      [12, 119],
      [13, 119],
      [16, 79],
    ]);
    expect(rows[0]).toEqual({
      kind: 'xid',
      line: 2,
      xid: 32,
      pciBusId: '0000:01:00',
      pid: null,
      process: null,
      message: 'Channel ID 00000005 intr 00008000',
      name: 'ROBUST_CHANNEL_PBDMA_ERROR',
      severity: 'warning',
      immediateAction: 'RESTART_APP',
      investigatoryAction: 'CHECK_APP/CUDA',
      persistsUntil: 'lookback',
      action: expect.any(String),
      category: 'bus',
      uuid: 'GPU-bc0fa0b9-cac2-f507-b715-9bebdb69c71e',
      uptimeSeconds: 179.437933,
    });
    expect(rows[3]).toMatchObject({
      pid: 2024380,
      process: 'nvidia-smi',
      timestamp: '2025-02-23T16:24:18',
      uuid: 'GPU-509665ad-b600-ac93-3616-d754b23d636d',
      severity: 'critical',
    });
    expect(rows[8]).toMatchObject({
      pciBusId: '0000:91:00',
      pid: null,
      process: null,
      name: 'ROBUST_CHANNEL_GPU_HAS_FALLEN_OFF_THE_BUS',
      immediateAction: 'RESTART_BM',
      persistsUntil: 'reboot',
    });
    const others = allRows(res.stdout).filter((r) => r['kind'] !== 'xid');
    expect(others.map((r) => r['kind'])).toEqual(['bus-lost', 'sxid', 'sxid', 'sxid']);
    expect(others[0]).toMatchObject({ pciBusId: '0000:91:00', immediateAction: 'RESTART_BM' });
    expect(others[1]).toMatchObject({ sxid: expect.any(Number), fatal: true, severity: 'critical' });
  });

  it('prints a table grouped by GPU and XID, worst first, with a summary (table is the default)', () => {
    const res = gpudiag([SAMPLE]);
    expect(res.status).toBe(0);
    const lines = res.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^SEVERITY\s+XID\s+NAME\s+PCI\s+COUNT/);
    expect(lines[0]).toMatch(/^SEVERITY\s+XID\s+NAME\s+PCI\s+COUNT\s+LINES\s+BUCKET\s+ACTION\s+DECODED\s+LAST MESSAGE$/);
    expect(lines[1]).toMatch(/^critical\s+-\s+GPU fell off the bus \(no XID code\)\s+0000:91:00\s+1\s+17\s+RESTART_BM\s/);
    expect(lines[2]).toMatch(
      /^critical\s+119\s+GSP_RPC_TIMEOUT\s+0000:9b:00 \(GPU-509665ad-b600-ac93-3616-d754b23d636d\)\s+5\s.*RESET_GPU/,
    );
    const severities = lines.slice(1, 7).map((l) => l.split(/\s+/)[0]);
    expect(severities).toEqual(['critical', 'critical', 'critical', 'critical', 'warning', 'warning']);
    expect(res.stdout).toContain('NVSwitch errors (SXid):');
    expect(lines[lines.length - 1]).toMatch(
      /^9 XID events \(5 distinct\) on 3 GPUs: 7 critical, 2 warning, 0 info; by bucket: RESET_GPU 6, RESTART_APP 2, RESTART_BM 1; 1 "fallen off the bus" line without an XID; \d+ NVSwitch SXid line\(s\)$/,
    );
  });

  it('reads standard input when no file or "-" is given', () => {
    const text = fs.readFileSync(SAMPLE, 'utf8');
    for (const args of [['--format=jsonl'], ['--format', 'jsonl', '-']]) {
      const res = gpudiag(args, text);
      expect(res.status).toBe(0);
      expect(jsonl(res.stdout)).toHaveLength(9);
    }
  });

  it('streams large inputs', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xid-cli-'));
    try {
      const file = path.join(dir, 'big.log');
      const lines = 200_000;
      const chunk = `[ 1.0] eth0: link up\n[ 2.0] NVRM: Xid (PCI:0000:3b:00): 13, pid=1, name=a, Graphics Exception\n`;
      fs.writeFileSync(file, chunk.repeat(lines / 2));
      const res = gpudiag([file]);
      expect(res.status).toBe(0);
      expect(res.stdout).toContain(`${lines / 2} XID events (1 distinct) on 1 GPU: 0 critical, ${lines / 2} warning, 0 info`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it.each([
    [['--bogus'], /unknown flag "--bogus"/],
    [['--format', 'xml'], /--format must be one of table\|jsonl, got "xml"/],
    [['--format'], /--format must be one of/],
    [['a.log', 'b.log'], /at most one FILE/],
  ])('exits 2 on a usage error %j', (args, message) => {
    const res = gpudiag(args);
    expect(res.status).toBe(2);
    expect(res.stderr).toMatch(message);
    expect(res.stdout).toBe('');
  });

  it('exits 1 naming the path when the file cannot be read', () => {
    const missing = path.join(os.tmpdir(), 'gpudiag-no-such-file.log');
    const res = gpudiag([missing]);
    expect(res.status).toBe(1);
    expect(res.stderr).toContain(missing);
  });

  it('prints help documenting the default format', () => {
    const res = gpudiag(['--help']);
    expect(res.status).toBe(0);
    expect(res.stdout).toMatch(/--format table\s+\(default\)/);
  });

  it('neutralises terminal control characters in table output', () => {
    const res = gpudiag([], 'NVRM: Xid (PCI:0000:3b:00): 13, evil \u001b[31mred\u001b[0m\n');
    expect(res.status).toBe(0);
    expect(res.stdout).not.toContain('\u001b');
  });
});

// One boot's kernel log exported by each tool (see test/fixtures/xid/formats/README.md).
const FORMATS_DIR = path.resolve(process.cwd(), 'test/fixtures/xid/formats');
const REFERENCE_EXPORT = 'dmesg.log';
const UPTIMES = [179.437933, 179.438803, 270.439207, 3000.116531, 3006.120311, 3012.124877, 3407.548779];
// Booted 2025-02-23 15:34:18 CET; dmesg -T prints local time to the second.
const LOCAL_TIMES = ['15:37:17', '15:37:17', '15:38:48', '16:24:18', '16:24:24', '16:24:30', '16:31:05'].map((t) => `2025-02-23T${t}`);
// short-iso prints whole seconds; journald's __REALTIME_TIMESTAMP keeps microseconds (milliseconds in ISO).
const UTC_TIMES = ['14:37:17.437', '14:37:17.438', '14:38:48.439', '15:24:18.116', '15:24:24.120', '15:24:30.124', '15:31:05.548'].map(
  (t) => `2025-02-23T${t}Z`,
);
const EXPORTS: readonly (readonly [string, { timestamps?: string[]; uptimes?: number[] }])[] = [
  ['dmesg.log', { uptimes: UPTIMES }],
  ['dmesg-T-de.log', { timestamps: LOCAL_TIMES }],
  ['dmesg-T-fr.log', { timestamps: LOCAL_TIMES }],
  ['dmesg-decode.log', { uptimes: UPTIMES }],
  ['syslog.log', { uptimes: UPTIMES }],
  ['journal-short-iso.log', { timestamps: UTC_TIMES.map((t) => t.replace(/\.\d{3}Z$/, '.000Z')) }],
  ['journal.json', { timestamps: UTC_TIMES, uptimes: UPTIMES }],
  ['kmsg.log', { uptimes: UPTIMES }],
];

/** What must not depend on the export format. */
function xidFacts(rows: Record<string, unknown>[]): unknown[] {
  return rows.map((r) => ({
    xid: r['xid'],
    pciBusId: r['pciBusId'],
    pid: r['pid'],
    process: r['process'],
    message: r['message'],
    uuid: r['uuid'],
  }));
}

function summaryLine(res: SpawnSyncReturns<string>): string {
  return res.stdout.trimEnd().split('\n').pop() ?? '';
}

function exportText(file: string): string {
  return fs.readFileSync(path.join(FORMATS_DIR, file), 'utf8');
}

describe('gpudiag xid analyze on every export format', () => {
  let reference: Record<string, unknown>[] = [];
  let referenceSummary = '';
  beforeAll(() => {
    reference = jsonl(gpudiag(['--format', 'jsonl', path.join(FORMATS_DIR, REFERENCE_EXPORT)]).stdout);
    referenceSummary = summaryLine(gpudiag([path.join(FORMATS_DIR, REFERENCE_EXPORT)]));
  });

  it('reads the reference export', () => {
    expect(reference.map((r) => [r['xid'], r['pciBusId']])).toEqual([
      [32, '0000:01:00'],
      [69, '0000:01:00'],
      [62, '0000:01:00'],
      [119, '0000:9b:00'],
      [119, '0000:9b:00'],
      [119, '0000:9b:00'],
      [79, '0000:91:00'],
    ]);
    expect(reference.every((r) => typeof r['uuid'] === 'string')).toBe(true);
  });

  it.each(EXPORTS)('finds the same XIDs, with the times the format carries, in %s', (file, times) => {
    const res = gpudiag(['--format', 'jsonl', path.join(FORMATS_DIR, file)]);
    expect(res.status).toBe(0);
    const rows = jsonl(res.stdout);
    expect(xidFacts(rows)).toEqual(xidFacts(reference));
    expect(rows.map((r) => r['timestamp'])).toEqual(times.timestamps ?? UPTIMES.map(() => undefined));
    expect(rows.map((r) => r['uptimeSeconds'])).toEqual(times.uptimes ?? UPTIMES.map(() => undefined));
    const table = gpudiag([path.join(FORMATS_DIR, file)]);
    expect(summaryLine(table)).toBe(referenceSummary);
    expect(referenceSummary).not.toContain('skipped');
  });

  it('finds every XID in all the exports joined with cat', () => {
    const res = gpudiag(['--format', 'jsonl'], EXPORTS.map(([file]) => exportText(file)).join(''));
    expect(res.status).toBe(0);
    expect(xidFacts(jsonl(res.stdout))).toEqual(EXPORTS.flatMap(() => xidFacts(reference)));
  });

  it('reads CRLF, a BOM, NUL padding and json-seq, and counts the lines it skips', () => {
    const syslog = exportText('syslog.log').trimEnd().split('\n');
    const journal = exportText('journal.json').trimEnd().split('\n');
    const lines = [
      ...syslog.slice(0, 2),
      // A crash-truncated log file: a NUL run longer than the line limit, then the next boot's lines.
      `${'\0'.repeat(100_000)}${syslog[2] ?? ''}`,
      'x'.repeat(70 * 1024),
      ...syslog.slice(3),
      ...journal.map((l) => `\u001e${l}`),
      '{"__REALTIME_TIMESTAMP":"1740321437437933","MESSAGE":"NVRM: Xid (PCI:0000:01:00): 32, Channel ID 000',
    ];
    const input = `\uFEFF${lines.join('\r\n')}\r\n`;
    const res = gpudiag(['--format', 'jsonl'], input);
    expect(res.status).toBe(0);
    const rows = jsonl(res.stdout);
    expect(xidFacts(rows)).toEqual([...xidFacts(reference), ...xidFacts(reference)]);
    expect(rows.every((r) => typeof r['message'] === 'string' && !r['message'].endsWith('\r'))).toBe(true);
    const table = gpudiag([], input);
    expect(summaryLine(table)).toMatch(/; 1 line over 64 KiB skipped; 1 malformed JSON line skipped$/);
  });

  it('keeps memory bounded on a line far longer than the heap', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xid-cli-'));
    try {
      const file = path.join(dir, 'endless-line.log');
      const xid = exportText(REFERENCE_EXPORT).split('\n')[1] ?? '';
      fs.writeFileSync(file, Buffer.concat([Buffer.from(`${xid}\n`), Buffer.alloc(64 * 1024 * 1024, 'x'), Buffer.from(`\n${xid}\n`)]));
      const res = gpudiag([file], undefined, ['--max-old-space-size=32']);
      expect(res.status).toBe(0);
      expect(summaryLine(res)).toMatch(/^2 XID events .*; 1 line over 64 KiB skipped$/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('gpudiag xid analyze decodes and weighs neighbours', () => {
  // Real lines: gpud PR 1160 (149 "Fatal" that decodes to IGNORE, and one that needs a reset),
  // open-gpu-kernel-modules#115 (45 caused by 149), gpud kmsg_test.go (154 transitions).
  const log = [
    '[171167.620236] NVRM: Xid (PCI:0009:01:00): 149, NETIR_LINK_EVT  Fatal   XC0 i0 Link 01 (0x021425c6 0x00000000 0x00000000 ' +
      '0x00000000 0x00000000 0x00000000)',
    '[171167.620300] NVRM: Xid (PCI:0009:01:00): 149, NETIR_LINK_EVT Fatal XC0 i0 Link 00 (0x026001c6 0x00000000 0x00000000 ' +
      '0x00000000 0x00000000 0x00000000)',
    '[171167.903000] NVRM: Xid (PCI:0009:01:00): 45, pid=4242, name=python3, Ch 00000001 caused by previous Xid 149',
    '[171168.024000] NVRM: Xid (PCI:0009:01:00): 154, GPU recovery action changed from 0x0 (None) to 0x1 (GPU Reset Required)',
    '[171200.000000] NVRM: Xid (PCI:0000:3b:00): 45, pid=77, name=python3, channel 0x0000000a',
    '',
  ].join('\n');

  it('shows NVIDIA\'s bucket per group, decoded from the table, not from the word "Fatal"', () => {
    const res = gpudiag(['--driver-version', '570.124.06'], log);
    expect(res.status).toBe(0);
    const rows = res.stdout.split('\n');
    expect(rows.find((l) => l.includes('Link 01'))).toMatch(/^critical\s+149\s.*RESET_GPU.*NVLink5 NETIR_LINK_EVT link 1/);
    expect(rows.find((l) => l.includes('Link 00'))).toMatch(/^info\s+149\s.*IGNORE/);
    expect(rows.find((l) => l.includes('caused by previous'))).toMatch(/^info\s+45\s.*IGNORE \(sympathetic\)/);
    // A 45 alone on another GPU: restart Fabric Manager.
    expect(rows.find((l) => l.includes('0000:3b:00'))).toMatch(/^critical\s+45\s.*RESTART_FM/);
  });

  it('jsonl carries the decode per line; the driver version picks the layout', () => {
    const rows = jsonl(gpudiag(['--format', 'jsonl', '--driver-version=575.57.08'], log).stdout);
    expect(rows[0]).toMatchObject({ xid: 149, immediateAction: 'XID_154_EVAL', decoded: expect.stringContaining('V2') });
    const unknown = jsonl(gpudiag(['--format', 'jsonl'], log).stdout);
    expect(unknown[0]).toMatchObject({ immediateAction: 'RESET_GPU', decoded: expect.stringContaining('driver version unknown') });
  });

  it("reads the driver version from the log's module-load line when no flag is given", () => {
    const withDriver = `[    5.100000] NVRM: loading NVIDIA UNIX x86_64 Kernel Module  575.57.08  Sat May 24 07:21:12 UTC 2025\n${log}`;
    expect(jsonl(gpudiag(['--format', 'jsonl'], withDriver).stdout)[0]).toMatchObject({ immediateAction: 'XID_154_EVAL' });
  });

  it.each([['--driver-version', 'latest'], ['--driver-version']])('rejects %j naming the flag', (...args) => {
    const res = gpudiag(args, log);
    expect(res.status).toBe(2);
    expect(res.stderr).toContain('--driver-version must be an NVIDIA driver version');
  });
});

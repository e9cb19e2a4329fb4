import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  KmsgReader,
  parseKmsgRecord,
  readKmsgCursor,
  type KmsgClock,
  type KmsgContextEvent,
  type KmsgSyscalls,
  type KmsgXidEvent,
} from './kmsg-reader.js';

const XID_TEXT = 'NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, name=python3, GPU has fallen off the bus.';
const FIXED_CLOCK: KmsgClock = { nowMs: () => 1_000_000, monotonicUs: () => 10_000_000n };

function record(seq: number, text: string, tsUsec = 4_000_000): string {
  return `3,${seq},${tsUsec},-;${text}\n`;
}

function errno(code: string): Error {
  return Object.assign(new Error(code), { code });
}

type Step = string | Error;

/** Fake syscalls: each read returns the next step (a whole record, or throws an errno error); then EAGAIN. */
function fakeSyscalls(steps: Step[]): KmsgSyscalls & { opens: number[]; closes: number; reads: number } {
  const queue = [...steps];
  const fake = {
    opens: [] as number[],
    closes: 0,
    reads: 0,
    open: (_p: string, flags: number): number => {
      fake.opens.push(flags);
      return 42;
    },
    read: (_fd: number, buffer: Buffer): number => {
      fake.reads += 1;
      const step = queue.shift();
      if (step === undefined) throw errno('EAGAIN');
      if (step instanceof Error) throw step;
      return buffer.write(step, 'latin1');
    },
    close: (): void => {
      fake.closes += 1;
    },
  };
  return fake;
}

function collect(reader: KmsgReader): { xids: KmsgXidEvent[]; context: KmsgContextEvent[] } {
  const out = { xids: [] as KmsgXidEvent[], context: [] as KmsgContextEvent[] };
  reader.on('xid', (e) => out.xids.push(e));
  reader.on('context', (e) => out.context.push(e));
  return out;
}

let dir: string;
let bootIdPath: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kmsg-'));
  bootIdPath = path.join(dir, 'boot_id');
  fs.writeFileSync(bootIdPath, 'boot-a\n');
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('parseKmsgRecord', () => {
  it('parses the header, ignores extra fields and unescapes \\xNN', () => {
    expect(parseKmsgRecord('6,339,5140900,-,caller=T1;NVRM: a\\x5cb \\xc3\\xa9\n')).toEqual({
      priority: 6,
      seq: 339,
      tsUsec: 5140900n,
      text: 'NVRM: a\\b é',
    });
  });
  it('rejects text that is not a record', () => {
    expect(parseKmsgRecord('[ 1.0] NVRM: hello')).toBeNull();
  });
});

describe('KmsgReader with injected syscalls', () => {
  it('opens once with O_RDONLY|O_NONBLOCK, counts EPIPE as loss, skips EINVAL, stops at EAGAIN', () => {
    const sys = fakeSyscalls([
      record(10, XID_TEXT),
      errno('EPIPE'),
      record(15, 'NVRM: GPU at PCI:0000:3b:00: GPU-b850f46d-d5ea-c752-ddf3-c4453e44d3f7'),
      errno('EINVAL'),
      record(16, 'usb 1-1: new device'),
      record(17, XID_TEXT.replace('79', '48')),
    ]);
    const reader = new KmsgReader({ syscalls: sys, clock: FIXED_CLOCK, bootIdPath });
    const got = collect(reader);
    reader.start();
    reader.start();
    reader.pollNow();
    reader.stop();
    reader.stop();
    expect(sys.opens).toEqual([fs.constants.O_RDONLY | fs.constants.O_NONBLOCK]);
    expect(sys.closes).toBe(1);
    expect(got.xids.map((e) => [e.xid, e.seq])).toEqual([
      [79, 10],
      [48, 17],
    ]);
    expect(got.context).toEqual([expect.objectContaining({ kind: 'gpu-uuid', seq: 15, pciBusId: '0000:3b:00' })]);
    expect(reader.stats()).toMatchObject({ records: 4, lost: 1, lostRecords: 4, invalid: 1, xidEvents: 2, readErrors: 0 });
  });

  it('converts the monotonic timestamp to wall-clock time', () => {
    const sys = fakeSyscalls([record(1, XID_TEXT, 4_000_000)]);
    const reader = new KmsgReader({ syscalls: sys, clock: FIXED_CLOCK, bootIdPath });
    const got = collect(reader);
    reader.start();
    reader.pollNow();
    reader.stop();
    // now - (monotonicNow - ts) = 1,000,000 ms - (10 s - 4 s)
    expect(got.xids[0]?.timeMs).toBe(994_000);
    expect(got.xids[0]?.priority).toBe(3);
  });

  it('ignores dictionary continuation lines', () => {
    const sys = fakeSyscalls([`${record(5, XID_TEXT)} SUBSYSTEM=pci\n DEVICE=+pci:0000:3b:00.0\n`]);
    const reader = new KmsgReader({ syscalls: sys, clock: FIXED_CLOCK, bootIdPath });
    const got = collect(reader);
    reader.start();
    reader.pollNow();
    reader.stop();
    expect(got.xids).toHaveLength(1);
    expect(reader.stats()).toMatchObject({ records: 1, parseErrors: 0 });
  });

  it('performs no read after stop(), even when stopped from a listener', () => {
    const sys = fakeSyscalls([record(1, XID_TEXT), record(2, XID_TEXT), record(3, XID_TEXT)]);
    const reader = new KmsgReader({ syscalls: sys, clock: FIXED_CLOCK, bootIdPath });
    reader.on('xid', () => reader.stop());
    reader.start();
    reader.pollNow();
    expect(sys.reads).toBe(1);
    expect(sys.closes).toBe(1);
    reader.pollNow();
    expect(sys.reads).toBe(1);
  });

  it('reports unexpected read errors as warnings and keeps running', () => {
    const sys = fakeSyscalls([errno('EIO'), record(1, XID_TEXT)]);
    const reader = new KmsgReader({ syscalls: sys, clock: FIXED_CLOCK, bootIdPath });
    const warnings: Error[] = [];
    reader.on('warning', (w) => warnings.push(w));
    const got = collect(reader);
    reader.start();
    reader.pollNow();
    reader.pollNow();
    reader.stop();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.cause).toMatchObject({ code: 'EIO' });
    expect(got.xids).toHaveLength(1);
  });

  it('wraps an open failure with its cause', () => {
    const reader = new KmsgReader({ path: path.join(dir, 'missing'), bootIdPath });
    expect(() => reader.start()).toThrow(/cannot open kernel log/);
    expect(reader.running).toBe(false);
  });

  it('stops when its AbortSignal fires and does not start on an aborted signal', () => {
    const sys = fakeSyscalls([]);
    const controller = new AbortController();
    const reader = new KmsgReader({ syscalls: sys, bootIdPath, signal: controller.signal });
    reader.start();
    expect(reader.running).toBe(true);
    controller.abort();
    expect(reader.running).toBe(false);
    expect(sys.closes).toBe(1);
    reader.start();
    expect(reader.running).toBe(false);
    expect(sys.opens).toHaveLength(1);
  });
});

describe('KmsgReader with a regular file', () => {
  it('reads record and plain-text lines, handles partial lines, and follows appends', () => {
    const file = path.join(dir, 'kmsg');
    fs.writeFileSync(file, `${record(1, 'NVRM: loading driver')}[ 5.0] ${XID_TEXT}\n3,3,4000000,-;NVRM: Xid (PCI:0000:3b:00): 4`);
    const reader = new KmsgReader({ path: file, clock: FIXED_CLOCK, bootIdPath });
    const got = collect(reader);
    reader.start();
    reader.pollNow();
    expect(got.xids.map((e) => [e.xid, e.seq])).toEqual([[79, null]]);
    fs.appendFileSync(file, `8, pid=7, name=x, DBE\n${record(4, XID_TEXT)}`);
    reader.pollNow();
    reader.stop();
    expect(got.xids.map((e) => [e.xid, e.seq])).toEqual([
      [79, null],
      [48, 3],
      [79, 4],
    ]);
  });

  it('persists the cursor so a restart neither re-reports nor misses records; a new boot starts over', () => {
    const file = path.join(dir, 'kmsg');
    const cursorPath = path.join(dir, 'state', 'cursor.json');
    fs.mkdirSync(path.dirname(cursorPath));
    fs.writeFileSync(file, [1, 2, 3].map((s) => record(s, XID_TEXT)).join(''));
    const run = (): number[] => {
      const reader = new KmsgReader({ path: file, cursorPath, bootIdPath, clock: FIXED_CLOCK });
      const got = collect(reader);
      reader.start();
      reader.pollNow();
      reader.stop();
      return got.xids.map((e) => e.seq ?? -1);
    };
    expect(run()).toEqual([1, 2, 3]);
    expect(readKmsgCursor(cursorPath)).toEqual({ bootId: 'boot-a', seq: 3 });
    fs.appendFileSync(file, [4, 5].map((s) => record(s, XID_TEXT)).join(''));
    expect(run()).toEqual([4, 5]);
    expect(run()).toEqual([]);
    fs.writeFileSync(bootIdPath, 'boot-b\n');
    expect(run()).toEqual([1, 2, 3, 4, 5]);
    expect(fs.readdirSync(path.dirname(cursorPath))).toEqual(['cursor.json']);
  });

  it('does not leak descriptors over 200 start/stop cycles', () => {
    const file = path.join(dir, 'kmsg');
    fs.writeFileSync(file, record(1, XID_TEXT));
    const fdCount = (): number => fs.readdirSync('/proc/self/fd').length;
    const before = fdCount();
    for (let i = 0; i < 200; i += 1) {
      const reader = new KmsgReader({ path: file, bootIdPath, cursorPath: path.join(dir, 'cursor.json') });
      reader.start();
      reader.pollNow();
      reader.stop();
    }
    expect(fdCount()).toBeLessThanOrEqual(before);
  });
});

describe('KmsgReader with a FIFO', () => {
  it('reads records written into a named pipe on its poll timer', async () => {
    const fifo = path.join(dir, 'kmsg.fifo');
    execFileSync('mkfifo', [fifo]);
    const reader = new KmsgReader({ path: fifo, pollIntervalMs: 10, bootIdPath, clock: FIXED_CLOCK });
    const got = collect(reader);
    reader.start();
    const writer = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
    try {
      fs.writeSync(writer, record(7, XID_TEXT) + record(8, 'NVRM: GPU 0000:3b:00.0: GPU has fallen off the bus.'));
      const deadline = Date.now() + 5_000;
      while ((got.xids.length < 1 || got.context.length < 1) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    } finally {
      fs.closeSync(writer);
      reader.stop();
    }
    expect(got.xids.map((e) => e.seq)).toEqual([7]);
    expect(got.context).toEqual([expect.objectContaining({ kind: 'bus-lost', pciBusId: '0000:3b:00', seq: 8 })]);
  });
});

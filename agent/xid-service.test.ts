/**
 * XidService over a real stand-in kernel log (a file in /dev/kmsg record format) and a real
 * history file: sticky faults, GPU resets, worst-severity groups, SXid and bus-loss reports.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../lib/logger.js';
import type { GpuSnapshot } from './nvml/types.js';
import { XidService } from './xid-service.js';

const HOUR = 3_600_000;
const GPU_BUS = '0000:3b:00';
let dir: string;
let seq = 0;

function record(text: string, ageMs = 60_000): string {
  seq += 1;
  const tsUs = process.hrtime.bigint() / 1000n - BigInt(ageMs) * 1000n;
  return `4,${seq},${tsUs > 0n ? tsUs : 1n},-;${text}\n`;
}

function service(extra: Partial<ConstructorParameters<typeof XidService>[0]> = {}): XidService {
  return new XidService({
    kmsgPath: path.join(dir, 'kmsg'),
    kmsgPollMs: 50,
    historyPath: path.join(dir, 'history.json'),
    historyFlushMs: 0,
    bootIdPath: path.join(dir, 'boot_id'),
    logger: createLogger({ silent: true }),
    ...extra,
  });
}

async function until<T>(read: () => T, ok: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const value = read();
    if (ok(value) || Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, 25));
  }
}

function gpu(volatileUncorrected: number, lost = false): GpuSnapshot {
  return {
    index: 0,
    lost,
    uuid: 'GPU-11111111-2222-3333-4444-555555555555',
    pciBusId: '00000000:3B:00.0',
    ecc: { volatileCorrected: 0, volatileUncorrected },
    unsupported: [],
    errors: [],
  };
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xid-service-'));
  fs.writeFileSync(path.join(dir, 'boot_id'), 'boot-A\n');
  seq = 0;
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('XidService', () => {
  it('keeps reboot- and reset-class faults past the look-back, and lets the rest age out', async () => {
    const old = 5 * HOUR;
    fs.writeFileSync(
      path.join(dir, 'kmsg'),
      record(`NVRM: Xid (PCI:${GPU_BUS}): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.`, old) +
        record(`NVRM: Xid (PCI:0000:18:00): 95, pid=10, name=python3, Uncontained: FBHUB. RST: Yes, D-RST: No`, old) +
        record(`NVRM: Xid (PCI:0000:18:00): 13, pid=10, name=python3, Graphics Exception: ESR 0x404000=0x80000002`, old),
    );
    const xid = service();
    await xid.start();
    try {
      const { events } = await until(
        () => xid.eventsSince(Date.now()),
        (r) => r.events.length >= 2,
      );
      expect(events.map((e) => `${e.xid}:${e.persistsUntil}:${e.immediateAction}`).sort()).toEqual([
        '79:reboot:RESTART_BM',
        '95:gpu-reset:RESET_GPU',
      ]);
    } finally {
      await xid.stop();
    }
  });

  it('answers from reports built once, and builds them again for a new line, a GPU UUID or a narrower window', async () => {
    const kmsg = path.join(dir, 'kmsg');
    fs.writeFileSync(kmsg, record(`NVRM: Xid (PCI:${GPU_BUS}): 13, pid=10, name=python3, Graphics Exception: ESR 0x404000=0x80000002`));
    const xid = service();
    await xid.start();
    try {
      const first = await until(
        () => xid.eventsSince(0).events,
        (e) => e.length === 1,
      );
      expect(first[0]?.gpuUuid).toBeUndefined();
      expect(xid.eventsSince(0).events[0]).toBe(first[0]);
      // NVML tells which GPU the PCI address is: the same entry now names it
      xid.observeGpu(gpu(0));
      expect(xid.eventsSince(0).events[0]?.gpuUuid).toBe(gpu(0).uuid);
      fs.appendFileSync(kmsg, record(`NVRM: Xid (PCI:${GPU_BUS}): 31, pid=10, name=python3, Ch 00000008, intr 10000000. MMU Fault`, 1_000));
      const both = await until(
        () => xid.eventsSince(0).events,
        (e) => e.length === 2,
      );
      expect(both.map((e) => e.xid).sort()).toEqual([13, 31]);
      // 13 was seen a minute ago, 31 a second ago: a 30-second window holds 31 alone
      expect(xid.eventsSince(Date.now() - 30_000).events.map((e) => e.xid)).toEqual([31]);
    } finally {
      await xid.stop();
    }
  });

  it('clears reset-class faults once NVML shows the GPU reset (fresh volatile counters)', async () => {
    fs.writeFileSync(
      path.join(dir, 'kmsg'),
      record(`NVRM: Xid (PCI:${GPU_BUS}): 95, pid=10, name=python3, Uncontained: FBHUB. RST: Yes, D-RST: No`),
    );
    const xid = service();
    await xid.start();
    try {
      xid.observeGpu(gpu(3));
      await until(
        () => xid.eventsSince(0).events,
        (e) => e.length === 1,
      );
      xid.observeGpu(gpu(3));
      expect(xid.eventsSince(0).events).toHaveLength(1);
      xid.observeGpu(gpu(0));
      expect(xid.eventsSince(0).events).toEqual([]);
    } finally {
      await xid.stop();
    }
  });

  it('a lost GPU answering again counts as reset, but a reboot-class 79 stays', async () => {
    fs.writeFileSync(
      path.join(dir, 'kmsg'),
      record(`NVRM: Xid (PCI:${GPU_BUS}): 79, GPU has fallen off the bus.`) +
        record(`NVRM: Xid (PCI:${GPU_BUS}): 119, pid=1, name=x, Timeout after 6s of waiting for RPC response from GPU0 GSP!`),
    );
    const xid = service();
    await xid.start();
    try {
      await until(
        () => xid.eventsSince(0).events,
        (e) => e.length === 2,
      );
      xid.observeGpu(gpu(0, true));
      xid.observeGpu(gpu(0));
      expect(xid.eventsSince(0).events.map((e) => e.xid)).toEqual([79]);
    } finally {
      await xid.stop();
    }
  });

  it('a group keeps its worst severity and message, and NVLink links and 154 transitions stay apart', async () => {
    const lines = [
      'NETIR_LINK_EVT Fatal XC0 i0 Link 00 (0x025001c6 0x00000000 0x00000000 0x00000000 0x00000000 0x00000000)',
      'NETIR_LINK_EVT Fatal XC0 i0 Link 00 (0x026001c6 0x00000000 0x00000000 0x00000000 0x00000000 0x00000000)',
      'NETIR_LINK_EVT  Fatal   XC0 i0 Link 01 (0x021425c6 0x00000000 0x00000000 0x00000000 0x00000000 0x00000000)',
      // Ages 10 ms apart: the reader's wall-clock estimate has millisecond jitter.
    ].map((m, i) => record(`NVRM: Xid (PCI:${GPU_BUS}): 149, pid='<unknown>', name=<unknown>, ${m}`, 60_000 - i * 10));
    const transitions = ['from 0x0 (None) to 0x4 (Drain and Reset)', 'from 0x4 (Drain and Reset) to 0x1 (GPU Reset Required)'].map((t, i) =>
      record(`NVRM: Xid (PCI:${GPU_BUS}): 154, GPU recovery action changed ${t}`, 50_000 - i * 10),
    );
    fs.writeFileSync(path.join(dir, 'kmsg'), [...lines, ...transitions].join(''));
    const xid = service();
    xid.setDriverVersion('570.124.06');
    await xid.start();
    try {
      const { events } = await until(
        () => xid.eventsSince(0),
        (r) => r.events.length === 4,
      );
      const link0 = events.find((e) => e.xid === 149 && e.message.includes('Link 00'));
      expect(link0).toMatchObject({ count: 2, severity: 'critical', immediateAction: 'RESET_GPU' });
      expect(link0?.worstMessage).toContain('0x025001c6');
      expect(
        events
          .filter((e) => e.xid === 154)
          .map((e) => e.immediateAction)
          .sort(),
      ).toEqual(['IGNORE', 'RESET_GPU']);
    } finally {
      await xid.stop();
    }
  });

  it('reports MIG instances, node-level events, NVSwitch SXids and bus losses without XID', async () => {
    fs.writeFileSync(
      path.join(dir, 'kmsg'),
      record('NVRM: Xid (PCI:0000:01:00 GPU-I:05 GPU-CI:01): 94, pid=7194, Contained: CE User Channel (0x9). RST: No, D-RST: No') +
        record('NVRM: Xid (PCI:...): 145, RLW_RXPIPE Nonfatal XC0 i0 Link 11 (...)') +
        record('nvidia-nvswitch1: SXid (PCI:0000:06:00.0): 20034, Fatal, Link 48 LTSSM Fault Up') +
        record('nvidia-nvswitch1: SXid (PCI:0000:06:00.0): 20034, Severity 1 Engine instance 48 Sub-engine instance 00') +
        record('NVRM: GPU 0000:18:00.0: GPU has fallen off the bus.') +
        record('NVRM: The NVIDIA GPU 0000:05:00.0') +
        record('NVRM: (PCI ID: 10de:1b80) installed in this system has') +
        record('NVRM: fallen off the bus and is not responding to commands.'),
    );
    const xid = service();
    await xid.start();
    try {
      const { events } = await until(
        () => xid.eventsSince(0),
        (r) => r.events.length === 2,
      );
      expect(events.find((e) => e.xid === 94)).toMatchObject({ pciBusId: '0000:01:00', gpuInstance: 5, computeInstance: 1 });
      expect(events.find((e) => e.xid === 145)?.pciBusId).toBeUndefined();
      expect(xid.switchEventsSince(0)).toEqual([
        expect.objectContaining({ sxid: 20034, switchPciBusId: '0000:06:00', fatal: true, link: 48, count: 1 }),
      ]);
      expect(
        xid
          .busLossReports()
          .map((b) => b.pciBusId)
          .sort(),
      ).toEqual(['0000:05:00', '0000:18:00']);
    } finally {
      await xid.stop();
    }
  });

  it('restores its history on restart without double counting, and a reboot clears sticky faults', async () => {
    const kmsg = path.join(dir, 'kmsg');
    fs.writeFileSync(
      kmsg,
      record(`NVRM: Xid (PCI:${GPU_BUS}): 79, GPU has fallen off the bus.`) +
        record(`NVRM: Xid (PCI:${GPU_BUS}): 13, pid=5, name=a, Graphics Exception: ESR 0x404000=0x80000002`),
    );
    const first = service();
    await first.start();
    await until(
      () => first.eventsSince(0).events,
      (e) => e.length === 2,
    );
    await first.stop();

    fs.appendFileSync(kmsg, record(`NVRM: Xid (PCI:${GPU_BUS}): 13, pid=5, name=a, Graphics Exception: ESR 0x404000=0x80000002`));
    const second = service();
    await second.start();
    const counts = await until(
      () =>
        second
          .eventsSince(0)
          .events.map((e) => `${e.xid}:${e.count}`)
          .sort(),
      (c) => c.includes('13:2'),
    );
    expect(counts).toEqual(['13:2', '79:1']);
    await second.stop();

    fs.writeFileSync(path.join(dir, 'boot_id'), 'boot-B\n');
    fs.writeFileSync(kmsg, '');
    const afterReboot = service();
    await afterReboot.start();
    try {
      expect(afterReboot.eventsSince(0).events.map((e) => `${e.xid}:${e.count}`)).toEqual(['13:2']);
    } finally {
      await afterReboot.stop();
    }
  });
});

describe('XidService bounds what hostile kernel text can mint', () => {
  it('keeps at most 256 bus losses and PCI→UUID pairs, whatever the log says', async () => {
    const lines = Array.from({ length: 600 }, (_, i) => {
      const bus = (i % 256).toString(16).padStart(2, '0');
      const dom = Math.floor(i / 256)
        .toString(16)
        .padStart(4, '0');
      return (
        record(`NVRM: GPU ${dom}:${bus}:00.0: GPU has fallen off the bus.`) +
        record(`NVRM: GPU at PCI:${dom}:${bus}:00: GPU-${String(i).padStart(8, '0')}-0000-0000-0000-000000000000`)
      );
    });
    fs.writeFileSync(path.join(dir, 'kmsg'), lines.join(''));
    const xid = service();
    await xid.start();
    try {
      const saved = (): number => {
        const file = path.join(dir, 'history.json');
        return fs.existsSync(file)
          ? ((JSON.parse(fs.readFileSync(file, 'utf8')) as { busLoss: unknown[]; cursor: { seq: number } | null }).cursor?.seq ?? 0)
          : 0;
      };
      // Wait until every record is reflected in the saved history, then look at its size.
      await until(saved, (seq) => seq === lines.length * 2);
      const history = JSON.parse(fs.readFileSync(path.join(dir, 'history.json'), 'utf8')) as { busLoss: unknown[] };
      expect(history.busLoss).toHaveLength(256);
      expect(xid.busLossReports().length).toBeLessThanOrEqual(64);
    } finally {
      await xid.stop();
    }
  });
});

describe('XidService NVML memory events', () => {
  it('keeps memory events out of the XID list and reports them with the GPU UUID', async () => {
    const time = new Date().toISOString();
    const uuid = 'GPU-11111111-2222-3333-4444-555555555555';
    const service = new XidService({
      kmsgPath: '',
      kmsgPollMs: 1000,
      logger: createLogger({ silent: true }),
      nvmlEvents: {
        watch: ({ onEvent }) => {
          onEvent({
            type: 'dramRetirementFailure',
            eventType: 0x800,
            data: 0,
            gpuIndex: 0,
            gpuUuid: uuid,
            pciBusId: '00000000:3B:00.0',
            time,
          });
          onEvent({ type: 'fatalPoison', eventType: 0x2000, data: 0, gpuIndex: 0, gpuUuid: uuid, pciBusId: '00000000:3B:00.0', time });
          onEvent({ type: 'fatalPoison', eventType: 0x2000, data: 0, gpuIndex: 0, gpuUuid: uuid, pciBusId: '00000000:3B:00.0', time });
          return Promise.resolve();
        },
        stop: () => Promise.resolve(true),
      },
    });
    await service.start();
    expect(service.eventsSince(0).events).toEqual([]);
    expect(service.memoryEventsSince(Date.now() - 60_000).map((r) => [r.kind, r.count, r.pciBusId, r.gpuUuid])).toEqual([
      ['dramRetirementFailure', 1, '0000:3b:00', uuid],
      ['fatalPoison', 2, '0000:3b:00', uuid],
    ]);
    await service.stop();
  });
});

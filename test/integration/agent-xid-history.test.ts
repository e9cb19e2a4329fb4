/**
 * The agent's persisted XID history (agent/xid/history-file.ts) across real `gpudiag agent`
 * processes: SIGTERM and restart, SIGKILL between a read and a write and right after a write,
 * faults that outlast the look-back across restarts and their end at a boot-ID change, and a
 * corrupt history file. The kernel log is a stand-in file in /dev/kmsg record format; the agent
 * runs in no-GPU mode.
 */
import { existsSync } from 'node:fs';
import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { freePort } from '../../dev/control-plane/control-plane.js';
import { spawnGpudiag, type GpudiagProcess } from '../support/processes.js';

/** Every wait is bounded by one of these. */
const START_TIMEOUT_MS = 20_000;
const POLL_TIMEOUT_MS = 15_000;
const EXIT_TIMEOUT_MS = 15_000;
const POLL_INTERVAL_MS = 100;
/** Far enough in the past that every lookback-class event is inside the window. */
const LONG_AGO = '2000-01-01T00:00:00Z';

interface EventReport {
  xid: number;
  pciBusId?: string;
  pid: number | null;
  count: number;
  firstSeen: string;
  lastSeen: string;
  persistsUntil: string;
  sources: string[];
}

interface Snapshot {
  xid: { since: string; events: EventReport[] };
  agent: { mode: string; xidSources: { kmsg: { running: boolean; records: number }; history?: { error: string } } };
}

interface SavedHistory {
  bootId: string | null;
  cursor: { bootId: string; seq: number } | null;
  xids: { xid: number; count: number }[];
}

/** CLOCK_MONOTONIC in µs, the clock of kmsg's ts_usec (the agent converts with the same clock). */
function monotonicUs(): bigint {
  return process.hrtime.bigint() / 1000n;
}

/** One /dev/kmsg record: `<prio>,<seq>,<ts_usec>,<flags>;<text>`. */
function record(seq: number, tsUs: bigint, text: string): string {
  return `4,${seq},${tsUs},-;${text}\n`;
}

const XID79 = "NVRM: Xid (PCI:0000:3b:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.";
const XID13 =
  'NVRM: Xid (PCI:0000:3b:00): 13, pid=1234, name=python3, Graphics SM Warp Exception on (GPC 0, TPC 1, SM 0): Out Of Range Address';
const XID94 = 'NVRM: Xid (PCI:0000:86:00): 94, pid=2222, name=train, Contained: SM (0x1). RST: No, D-RST: No';
const XID48 =
  'NVRM: Xid (PCI:0000:86:00): 48, pid=3333, name=train, An uncorrectable double bit error (DBE) has been detected on GPU in ' +
  'the framebuffer at partition 6, subpartition 0.';

/** The identity and count of each event, in a stable order, so a duplicate or a wrong count shows. */
function summary(doc: Snapshot): string[] {
  return doc.xid.events.map((e) => `${e.xid}@${e.pciBusId ?? '-'}/pid=${e.pid ?? '-'} x${e.count}`).sort();
}

let dir: string;
let kmsgPath: string;
let historyPath: string;
let bootIdPath: string;
let processes: GpudiagProcess[] = [];

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'gpudiag-xid-history-'));
  kmsgPath = path.join(dir, 'kmsg');
  historyPath = path.join(dir, 'xid-history.json');
  bootIdPath = path.join(dir, 'boot_id');
  await writeFile(kmsgPath, '');
  await writeFile(bootIdPath, 'boot-A\n');
});

afterEach(async () => {
  for (const p of processes) {
    if (p.exitCode() === undefined) p.child.kill('SIGKILL');
    await p.exited;
  }
  processes = [];
  await rm(dir, { recursive: true, force: true });
});

interface RunningAgent {
  proc: GpudiagProcess;
  url: string;
}

async function waitReady(agent: RunningAgent): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (agent.proc.exitCode() !== undefined)
      throw new Error(`agent exited (${String(agent.proc.exitCode())}) before it was ready:\n${agent.proc.output()}`);
    const ok = await fetch(`${agent.url}/readyz`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, POLL_INTERVAL_MS));
  }
  throw new Error(`agent at ${agent.url} not ready after ${START_TIMEOUT_MS} ms:\n${agent.proc.output()}`);
}

/** Starts `gpudiag agent` in no-GPU mode on the test's kmsg file, history file and boot-id file, and waits until it is ready. */
async function startAgent(historyFlushMs: number): Promise<RunningAgent> {
  const port = await freePort();
  const proc = spawnGpudiag([
    'agent',
    '--node-name',
    'gpu-node-xid-history',
    '--listen',
    `127.0.0.1:${port}`,
    '--auth',
    'none',
    '--nvml-library',
    path.join(dir, 'no-such-libnvidia-ml.so.1'),
    '--nvml-no-fallback',
    '--kmsg-path',
    kmsgPath,
    '--kmsg-poll-ms',
    '50',
    '--cursor-file',
    historyPath,
    '--history-flush-ms',
    String(historyFlushMs),
    '--boot-id-path',
    bootIdPath,
    '--snapshot-cache-ms',
    '0',
  ]);
  processes.push(proc);
  const agent = { proc, url: `http://127.0.0.1:${port}` };
  await waitReady(agent);
  return agent;
}

async function snapshot(agent: RunningAgent, xidSince: string): Promise<Snapshot> {
  const res = await fetch(`${agent.url}/v1/snapshot?checks=xid&xidSince=${encodeURIComponent(xidSince)}`);
  if (res.status !== 200) throw new Error(`GET /v1/snapshot answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as Snapshot;
}

/** Polls the snapshot until `done` holds; fails with the last summary after POLL_TIMEOUT_MS. */
async function pollSnapshot(agent: RunningAgent, xidSince: string, done: (doc: Snapshot) => boolean): Promise<Snapshot> {
  const deadline = Date.now() + POLL_TIMEOUT_MS;
  let last: Snapshot | undefined;
  while (Date.now() < deadline) {
    last = await snapshot(agent, xidSince);
    if (done(last)) return last;
    await new Promise((r) => setTimeout(r, POLL_INTERVAL_MS));
  }
  throw new Error(
    `snapshot condition not met within ${POLL_TIMEOUT_MS} ms; last events: ` +
      `${JSON.stringify(last === undefined ? null : summary(last))}\n${agent.proc.output()}`,
  );
}

/** Polls until the snapshot reports exactly `expected` (see summary). */
function pollFor(agent: RunningAgent, xidSince: string, expected: string[]): Promise<Snapshot> {
  const want = [...expected].sort();
  return pollSnapshot(agent, xidSince, (doc) => JSON.stringify(summary(doc)) === JSON.stringify(want));
}

async function readHistory(): Promise<SavedHistory> {
  return JSON.parse(await readFile(historyPath, 'utf8')) as SavedHistory;
}

/** Polls the history file until `done` holds (the agent writes it after a poll). */
async function pollHistory(done: (h: SavedHistory) => boolean): Promise<SavedHistory> {
  const deadline = Date.now() + POLL_TIMEOUT_MS;
  let last: SavedHistory | string = 'not written';
  while (Date.now() < deadline) {
    if (existsSync(historyPath)) {
      last = await readHistory();
      if (done(last)) return last;
    }
    await new Promise((r) => setTimeout(r, POLL_INTERVAL_MS));
  }
  throw new Error(`history file condition not met within ${POLL_TIMEOUT_MS} ms; last: ${JSON.stringify(last)}`);
}

async function stopWith(agent: RunningAgent, signal: 'SIGTERM' | 'SIGKILL'): Promise<number | string> {
  agent.proc.child.kill(signal);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`agent did not exit within ${EXIT_TIMEOUT_MS} ms of ${signal}:\n${agent.proc.output()}`)),
      EXIT_TIMEOUT_MS,
    );
  });
  try {
    return await Promise.race([agent.proc.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Records 1–3: XID 79 on 3b, XID 13 from pid 1234 on 3b, XID 94 on 86. */
function firstRecords(ts: bigint): string {
  return record(1, ts, XID79) + record(2, ts + 1000n, XID13) + record(3, ts + 2000n, XID94);
}

/** Records 4–5: XID 13 again from the same pid (count 2), and an XID 48. */
function laterRecords(ts: bigint): string {
  return record(4, ts, XID13) + record(5, ts + 1000n, XID48);
}

const FIRST = ['13@0000:3b:00/pid=1234 x1', '79@0000:3b:00/pid=- x1', '94@0000:86:00/pid=2222 x1'];
const ALL = ['13@0000:3b:00/pid=1234 x2', '48@0000:86:00/pid=3333 x1', '79@0000:3b:00/pid=- x1', '94@0000:86:00/pid=2222 x1'];

describe('agent XID history across processes', () => {
  it('SIGTERM and restart: events read before and after the restart, each counted once', async () => {
    await writeFile(kmsgPath, firstRecords(monotonicUs() - 5_000_000n));
    const first = await startAgent(0);
    await pollFor(first, LONG_AGO, FIRST);
    expect(await stopWith(first, 'SIGTERM')).toBe(0);
    const saved = await readHistory();
    expect(saved.cursor).toEqual({ bootId: 'boot-A', seq: 3 });

    await appendFile(kmsgPath, laterRecords(monotonicUs() - 1_000_000n));
    const second = await startAgent(0);
    const doc = await pollFor(second, LONG_AGO, ALL);
    // The restored entry kept its first sighting (record 2) and took record 4 as its last.
    const xid13 = doc.xid.events.find((e) => e.xid === 13);
    expect(xid13?.sources).toEqual(['kmsg']);
    expect(Date.parse(xid13?.lastSeen ?? '')).toBeGreaterThan(Date.parse(xid13?.firstSeen ?? ''));
    // Nothing arrives later: the restart re-read nothing.
    expect(summary(await snapshot(second, LONG_AGO))).toEqual(ALL);
    expect(await stopWith(second, 'SIGTERM')).toBe(0);
  });

  it('SIGKILL after records were read but not saved: the restart reads them again from the saved cursor, counting each once', async () => {
    await writeFile(kmsgPath, firstRecords(monotonicUs() - 5_000_000n));
    // The first poll writes the history; the next write would be ten minutes later.
    const first = await startAgent(600_000);
    await pollFor(first, LONG_AGO, FIRST);
    await pollHistory((h) => h.cursor?.seq === 3);

    await appendFile(kmsgPath, laterRecords(monotonicUs() - 1_000_000n));
    await pollFor(first, LONG_AGO, ALL);
    // Read, but not saved: the file still holds the cursor after record 3 and one XID 13.
    const unsaved = await readHistory();
    expect(unsaved.cursor).toEqual({ bootId: 'boot-A', seq: 3 });
    expect(unsaved.xids.find((x) => x.xid === 13)?.count).toBe(1);
    expect(unsaved.xids.some((x) => x.xid === 48)).toBe(false);
    expect(await stopWith(first, 'SIGKILL')).toBe('SIGKILL');

    const second = await startAgent(0);
    await pollFor(second, LONG_AGO, ALL);
    await pollHistory((h) => h.cursor?.seq === 5);
    expect(summary(await snapshot(second, LONG_AGO))).toEqual(ALL);
  });

  it('SIGKILL right after a write: the restart resumes after the saved cursor, counting each once', async () => {
    await writeFile(kmsgPath, firstRecords(monotonicUs() - 5_000_000n) + laterRecords(monotonicUs() - 1_000_000n));
    const first = await startAgent(0);
    await pollFor(first, LONG_AGO, ALL);
    const saved = await pollHistory((h) => h.cursor?.seq === 5);
    expect(saved.xids.find((x) => x.xid === 13)?.count).toBe(2);
    expect(await stopWith(first, 'SIGKILL')).toBe('SIGKILL');

    const second = await startAgent(0);
    expect(summary(await snapshot(second, LONG_AGO))).toEqual(ALL);
    // A record logged after the restart still counts, once.
    await appendFile(kmsgPath, record(6, monotonicUs(), XID13));
    await pollFor(
      second,
      LONG_AGO,
      ALL.map((s) => (s.startsWith('13@') ? '13@0000:3b:00/pid=1234 x3' : s)),
    );
    await pollHistory((h) => h.cursor?.seq === 6);
    expect(await stopWith(second, 'SIGTERM')).toBe(0);
  });

  it(
    'a reboot-class XID stays past the look-back across restarts; a boot-ID change ends it and the reset-class one, and keeps ' +
      'lookback-class history',
    async () => {
      const now = monotonicUs();
      // The 79 was logged ten minutes ago (or at boot, on a host up for less); the rest a second ago.
      const oldTs = now > 600_000_000n ? now - 600_000_000n : 0n;
      expect(now - oldTs).toBeGreaterThan(20_000_000n); // the host has been up long enough to tell them apart
      const recentTs = now - 1_000_000n;
      await writeFile(kmsgPath, record(1, oldTs, XID79) + record(2, recentTs, XID13) + record(3, recentTs + 1000n, XID48));
      // A look-back that starts well after the 79 and before the rest.
      const recentWall = Date.now() - 1_000;
      const lookBack = new Date(recentWall - 10_000).toISOString();
      // A look-back that starts in the future: only faults that outlast it are reported.
      const future = new Date(Date.now() + 3_600_000).toISOString();

      const first = await startAgent(0);
      const doc = await pollFor(first, lookBack, ['13@0000:3b:00/pid=1234 x1', '48@0000:86:00/pid=3333 x1', '79@0000:3b:00/pid=- x1']);
      const xid79 = doc.xid.events.find((e) => e.xid === 79);
      expect(xid79?.persistsUntil).toBe('reboot');
      expect(Date.parse(xid79?.lastSeen ?? '')).toBeLessThan(Date.parse(lookBack));
      expect(summary(await snapshot(first, future))).toEqual(['48@0000:86:00/pid=3333 x1', '79@0000:3b:00/pid=- x1']);
      expect(await stopWith(first, 'SIGTERM')).toBe(0);

      // Same boot: the restarted agent still reports the 79 (restored, not re-read).
      const second = await startAgent(0);
      const again = await snapshot(second, future);
      expect(summary(again)).toEqual(['48@0000:86:00/pid=3333 x1', '79@0000:3b:00/pid=- x1']);
      expect(again.xid.events.find((e) => e.xid === 79)?.persistsUntil).toBe('reboot');
      expect(summary(await snapshot(second, lookBack))).toEqual([
        '13@0000:3b:00/pid=1234 x1',
        '48@0000:86:00/pid=3333 x1',
        '79@0000:3b:00/pid=- x1',
      ]);
      expect(await stopWith(second, 'SIGTERM')).toBe(0);

      // A reboot: new boot ID, and the new boot's log starts over at sequence 1.
      await writeFile(bootIdPath, 'boot-B\n');
      await writeFile(kmsgPath, record(1, monotonicUs(), XID94));
      const third = await startAgent(0);
      // The new log is read from its start (the old cursor, after record 3 of boot-A, does not apply).
      const rebooted = await pollFor(third, lookBack, ['13@0000:3b:00/pid=1234 x1', '94@0000:86:00/pid=2222 x1']);
      expect(rebooted.xid.events.find((e) => e.xid === 13)?.persistsUntil).toBe('lookback');
      expect(summary(await snapshot(third, future))).toEqual([]);
      const saved = await pollHistory((h) => h.bootId === 'boot-B' && h.cursor?.seq === 1);
      expect(saved.cursor).toEqual({ bootId: 'boot-B', seq: 1 });
      expect(saved.xids.map((x) => x.xid).sort((a, b) => a - b)).toEqual([13, 94]);
      expect(await stopWith(third, 'SIGTERM')).toBe(0);
    },
  );

  it('a corrupt history file is moved aside and reported; the agent serves events read from the kernel log', async () => {
    await writeFile(kmsgPath, firstRecords(monotonicUs() - 5_000_000n));
    await writeFile(historyPath, '{"format": "gpudiag.io/xid-history", "version": 1, "xids": [tor');
    const agent = await startAgent(0);
    const doc = await pollFor(agent, LONG_AGO, FIRST);
    expect(doc.agent.mode).toBe('no-gpu');
    expect(doc.agent.xidSources.kmsg.running).toBe(true);
    const error = doc.agent.xidSources.history?.error ?? '';
    expect(error).toContain('unusable');
    expect(error).toContain(`${historyPath}.corrupt`);
    expect(await readFile(`${historyPath}.corrupt`, 'utf8')).toContain('[tor');
    // A fresh, valid history replaces it.
    const saved = await pollHistory((h) => h.cursor?.seq === 3);
    expect(saved.bootId).toBe('boot-A');
    expect(await stopWith(agent, 'SIGTERM')).toBe(0);
  });
});

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { XidDedupStore } from './dedup.js';
import { loadXidHistory, parseXidHistory, saveXidHistory, XID_HISTORY_FORMAT, type XidHistory } from './history-file.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xid-history-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function sample(): XidHistory {
  const store = new XidDedupStore();
  store.add({
    gpuKey: '0000:3b:00',
    xid: 149,
    pid: null,
    message: 'NETIR_LINK_EVT Fatal',
    timeMs: 1_000,
    source: 'kmsg',
    subKey: 'NETIR_LINK_EVT link 1',
    severity: 'critical',
  });
  store.add({
    gpuKey: '0000:3b:00',
    xid: 149,
    pid: null,
    message: 'NETIR_LINK_EVT Nonfatal',
    timeMs: 2_000,
    source: 'kmsg',
    subKey: 'NETIR_LINK_EVT link 1',
    severity: 'info',
  });
  return {
    bootId: 'boot-A',
    cursor: { bootId: 'boot-A', seq: 42 },
    xids: store.query(),
    sxids: [],
    busLoss: [{ pciBusId: '0000:18:00', count: 1, firstSeenMs: 5, lastSeenMs: 5 }],
    gpuResets: { '0000:3b:00': 3_000 },
  };
}

describe('XID history file', () => {
  it('round-trips events (worst kept), cursor, bus losses and resets', () => {
    const file = path.join(dir, 'h.json');
    saveXidHistory(file, sample());
    const { history } = loadXidHistory(file);
    expect(history).toEqual(sample());
    expect(history?.xids[0]).toMatchObject({
      count: 2,
      worstSeverity: 'critical',
      worstMessage: 'NETIR_LINK_EVT Fatal',
      lastMessage: 'NETIR_LINK_EVT Nonfatal',
    });
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toMatchObject({ format: XID_HISTORY_FORMAT, version: 1 });
    expect(fs.readdirSync(dir)).toEqual(['h.json']);
  });

  it('no file is no history', () => {
    expect(loadXidHistory(path.join(dir, 'absent.json'))).toEqual({ history: null });
  });

  it.each([
    ['torn JSON', '{"format":"gpudiag.io/xid-history","vers'],
    ['another version', JSON.stringify({ format: XID_HISTORY_FORMAT, version: 99, bootId: 'b', cursor: null })],
    ['a malformed event', JSON.stringify({ format: XID_HISTORY_FORMAT, version: 1, bootId: 'b', cursor: null, xids: [{ xid: 'x' }] })],
    ['not ours', '[1,2,3]'],
  ])('a corrupt file (%s) is moved aside and reported, never thrown', (_name, content) => {
    const file = path.join(dir, 'h.json');
    fs.writeFileSync(file, content);
    const loaded = loadXidHistory(file);
    expect(loaded.history).toBeNull();
    expect(loaded.problem).toMatch(/moved to .*h\.json\.corrupt/);
    expect(fs.existsSync(`${file}.corrupt`)).toBe(true);
    expect(fs.existsSync(file)).toBe(false);
  });

  it('names the bad field', () => {
    expect(() => parseXidHistory({ format: XID_HISTORY_FORMAT, version: 1, bootId: 'b', cursor: { bootId: 'b', seq: -1 } })).toThrow(
      /field "cursor"/,
    );
    expect(() => parseXidHistory({ format: XID_HISTORY_FORMAT, version: 1, bootId: 'b', cursor: null, busLoss: [{}] })).toThrow(
      /field "busLoss\[0\]"/,
    );
  });

  it('reads the cursor file of older agents (a bare {bootId, seq}) as a history without events', () => {
    expect(parseXidHistory({ bootId: 'boot-A', seq: 7 })).toEqual({
      bootId: 'boot-A',
      cursor: { bootId: 'boot-A', seq: 7 },
      xids: [],
      sxids: [],
      busLoss: [],
      gpuResets: {},
    });
  });

  it('a stored store restores exactly', () => {
    const store = new XidDedupStore();
    for (const e of sample().xids) store.restore(e);
    store.add({
      gpuKey: '0000:3b:00',
      xid: 149,
      pid: null,
      message: 'again',
      timeMs: 9_000,
      source: 'kmsg',
      subKey: 'NETIR_LINK_EVT link 1',
      severity: 'warning',
    });
    expect(store.query()[0]).toMatchObject({ count: 3, firstSeenMs: 1_000, lastSeenMs: 9_000, worstSeverity: 'critical' });
  });
});

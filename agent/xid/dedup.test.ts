import { XidDedupStore, type XidObservation } from './dedup.js';

const base: XidObservation = { gpuKey: '0000:3b:00', xid: 95, pid: 1, message: 'Uncontained', timeMs: 1_000, source: 'kmsg' };

describe('XidDedupStore', () => {
  it('collapses a 100,000-line storm into bounded entries with exact counts', () => {
    const store = new XidDedupStore({ maxEntries: 64 });
    const distinct = 29;
    const lines = 100_000;
    for (let i = 0; i < lines; i += 1) {
      store.add({ ...base, pid: i % distinct, timeMs: 1_000 + i, message: `line ${i}` });
    }
    const entries = store.query();
    expect(entries).toHaveLength(distinct);
    expect(entries.reduce((n, e) => n + e.count, 0)).toBe(lines);
    const pid0 = entries.find((e) => e.pid === 0);
    const lastPid0 = Math.floor((lines - 1) / distinct) * distinct;
    expect(pid0).toMatchObject({
      count: Math.ceil(lines / distinct),
      firstSeenMs: 1_000,
      lastSeenMs: 1_000 + lastPid0,
      lastMessage: `line ${lastPid0}`,
    });
    expect(store.evictions).toBe(0);
  });

  it('caps distinct keys, evicting the least recently seen and counting evictions', () => {
    const store = new XidDedupStore({ maxEntries: 100 });
    for (let i = 0; i < 10_000; i += 1) store.add({ ...base, pid: i, timeMs: i });
    expect(store.size).toBe(100);
    expect(store.evictions).toBe(9_900);
    const pids = store.query().map((e) => e.pid);
    expect(Math.min(...(pids as number[]))).toBe(9_900);
  });

  it('keeps a recently re-seen key when evicting', () => {
    const store = new XidDedupStore({ maxEntries: 2 });
    store.add({ ...base, pid: 1, timeMs: 1 });
    store.add({ ...base, pid: 2, timeMs: 2 });
    store.add({ ...base, pid: 1, timeMs: 3 });
    store.add({ ...base, pid: 3, timeMs: 4 });
    expect(
      store
        .query()
        .map((e) => e.pid)
        .sort(),
    ).toEqual([1, 3]);
  });

  it('queries by time, most recent first', () => {
    const store = new XidDedupStore();
    store.add({ ...base, xid: 13, timeMs: 100 });
    store.add({ ...base, xid: 79, timeMs: 300 });
    store.add({ ...base, xid: 31, timeMs: 200 });
    expect(store.query({ sinceMs: 200 }).map((e) => e.xid)).toEqual([79, 31]);
  });

  it('merges an NVML event into the matching kernel-log entry without double counting', () => {
    const store = new XidDedupStore({ mergeWindowMs: 5_000 });
    store.add({ ...base, pid: 42, process: 'python3', timeMs: 10_000 });
    const merged = store.add({ gpuKey: base.gpuKey, xid: 95, pid: null, message: '', timeMs: 10_050, source: 'nvml' });
    expect(merged).toMatchObject({ pid: 42, count: 1, sources: ['kmsg', 'nvml'], lastMessage: 'Uncontained', process: 'python3' });
    expect(store.size).toBe(1);
  });

  it('keeps an NVML event outside the window as its own entry', () => {
    const store = new XidDedupStore({ mergeWindowMs: 1_000 });
    store.add({ ...base, timeMs: 0 });
    const alone = store.add({ gpuKey: base.gpuKey, xid: 95, pid: null, message: '', timeMs: 60_000, source: 'nvml' });
    expect(alone).toMatchObject({ pid: null, sources: ['nvml'], count: 1 });
    expect(store.size).toBe(2);
  });

  it('rejects invalid options', () => {
    expect(() => new XidDedupStore({ maxEntries: 0 })).toThrow(RangeError);
    expect(() => new XidDedupStore({ mergeWindowMs: -1 })).toThrow(RangeError);
  });
});

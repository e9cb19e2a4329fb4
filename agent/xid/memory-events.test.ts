import { MemoryEventStore } from './memory-events.js';

const T0 = Date.parse('2026-01-01T00:00:00.000Z');
const MINUTE = 60_000;
const uuids = new Map([['0000:18:00', 'GPU-b176d2db-6067-d821-ded0-eebe18aace84']]);

describe('MemoryEventStore', () => {
  it('counts per GPU and kind, worst first, with the UUID when known', () => {
    const store = new MemoryEventStore();
    store.add('dramRetirement', '0000:18:00', T0);
    store.add('dramRetirementFailure', '0000:18:00', T0 + MINUTE);
    store.add('dramRetirementFailure', '0000:18:00', T0 + 2 * MINUTE);
    store.add('nonFatalPoison', '0000:2a:00', T0 + 3 * MINUTE);
    expect(store.reports(T0, (k) => uuids.get(k))).toEqual([
      {
        kind: 'dramRetirementFailure',
        pciBusId: '0000:18:00',
        gpuUuid: 'GPU-b176d2db-6067-d821-ded0-eebe18aace84',
        count: 2,
        firstSeen: new Date(T0 + MINUTE).toISOString(),
        lastSeen: new Date(T0 + 2 * MINUTE).toISOString(),
      },
      {
        kind: 'nonFatalPoison',
        pciBusId: '0000:2a:00',
        count: 1,
        firstSeen: new Date(T0 + 3 * MINUTE).toISOString(),
        lastSeen: new Date(T0 + 3 * MINUTE).toISOString(),
      },
      {
        kind: 'dramRetirement',
        pciBusId: '0000:18:00',
        gpuUuid: 'GPU-b176d2db-6067-d821-ded0-eebe18aace84',
        count: 1,
        firstSeen: new Date(T0).toISOString(),
        lastSeen: new Date(T0).toISOString(),
      },
    ]);
  });

  it('keeps failures and fatal poison past the look-back until the GPU is reset', () => {
    const store = new MemoryEventStore();
    store.add('fatalPoison', '0000:18:00', T0);
    store.add('singleBitEccStorm', '0000:18:00', T0);
    const later = T0 + 120 * MINUTE;
    expect(store.reports(later - 60 * MINUTE, () => undefined).map((r) => r.kind)).toEqual(['fatalPoison']);
    store.gpuWasReset('0000:18:00', T0 + MINUTE);
    expect(store.reports(0, () => undefined)).toEqual([]);
  });

  it('stays bounded', () => {
    const store = new MemoryEventStore();
    for (let i = 0; i < 1000; i++)
      store.add('nonFatalPoison', `0000:${(i % 256).toString(16).padStart(2, '0')}:${Math.floor(i / 256)}0`, T0 + i);
    expect(store.reports(0, () => undefined)).toHaveLength(64);
  });
});

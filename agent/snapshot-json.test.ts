import { describe, expect, it } from '@jest/globals';
import { SNAPSHOT_API_VERSION, SNAPSHOT_KIND, type NodeSnapshotDocument } from './api/snapshot-document.js';
import { parseGpuList } from './nvml/gpu-list-json.js';
import { snapshotDocumentJson, snapshotDocumentParts } from './snapshot-json.js';

function doc(gpus: NodeSnapshotDocument['gpus']): NodeSnapshotDocument {
  return {
    apiVersion: SNAPSHOT_API_VERSION,
    kind: SNAPSHOT_KIND,
    node: 'gpu-node-1',
    collectedAt: '2026-12-02T06:00:00.000Z',
    checks: ['health', 'xid'],
    nvml: { available: true, driverVersion: '550.54.15' },
    gpus,
    errors: [],
    xid: { since: '2026-12-02T05:00:00.000Z', events: [], truncated: 0 },
    agent: {
      version: '0.1.0',
      startedAt: '2026-12-02T04:00:00.000Z',
      mode: 'nvml',
      xidSources: { kmsg: { running: true, path: '/dev/kmsg', records: 3, lost: 0 }, nvmlEvents: { running: true } },
    },
  };
}

describe('snapshotDocumentJson', () => {
  it('is the document as JSON, for a GPU list shared by many answers and for an empty one', () => {
    const gpus: NodeSnapshotDocument['gpus'] = [
      { index: 0, uuid: 'GPU-0', lost: false, unsupported: [], errors: [], memory: { totalBytes: 1, usedBytes: 0, freeBytes: 1 } },
      { index: 1, uuid: 'GPU-1', lost: true, unsupported: [], errors: [] },
    ];
    const first = doc(gpus);
    const second = { ...doc(gpus), xid: { since: '2026-12-02T05:30:00.000Z', events: [], truncated: 0 } };
    expect(JSON.parse(snapshotDocumentJson(first))).toEqual(first);
    expect(JSON.parse(snapshotDocumentJson(second))).toEqual(second);
    expect(JSON.parse(snapshotDocumentJson(doc([])))).toEqual(doc([]));
  });

  it('in parts: the head of each answer and one shared buffer of the GPU list', () => {
    const gpus: NodeSnapshotDocument['gpus'] = [{ index: 0, uuid: 'GPU-é', lost: false, unsupported: [], errors: [] }];
    const first = doc(gpus);
    const second = { ...doc(gpus), xid: { since: '2026-12-02T05:30:00.000Z', events: [], truncated: 0 } };
    const [a, b] = [snapshotDocumentParts(first), snapshotDocumentParts(second)];
    expect(b.tail).toBe(a.tail);
    expect(JSON.parse(snapshotDocumentJson(first))).toEqual(first);
    expect(JSON.parse(snapshotDocumentJson(second))).toEqual(second);
  });

  it('writes the text a GPU list arrived as from the NVML thread, not a second serialisation of it', () => {
    // spacing JSON.stringify never writes: only the text it was parsed from has it
    const text = '[ {"index": 0, "uuid": "GPU-0", "lost": false, "unsupported": [], "errors": []} ]';
    const gpus = parseGpuList(text);
    const parts = snapshotDocumentParts(doc(gpus));
    expect(parts.tail.toString('utf8')).toBe(`,"gpus":${text}}`);
    expect(JSON.parse(snapshotDocumentJson(doc(gpus)))).toEqual(doc(gpus));
    // a list made anew (an annotated or recalled copy) is serialised as it is
    const copy = gpus.map((g) => ({ ...g, uuid: 'GPU-1' }));
    expect(JSON.parse(snapshotDocumentJson(doc(copy)))).toEqual(doc(copy));
  });

  it('shares one XID list between answers with different windows, each answer whole', () => {
    const events = [
      { xid: 79, name: 'GPU has fallen off the bus', severity: 'critical' },
    ] as unknown as NodeSnapshotDocument['xid']['events'];
    const at = (since: string): NodeSnapshotDocument => ({ ...doc([]), xid: { since, events, truncated: 0, busLoss: [] } });
    const [a, b] = [snapshotDocumentParts(at('2026-12-02T05:00:00.000Z')), snapshotDocumentParts(at('2026-12-02T05:30:00.000Z'))];
    expect(b.events).toBe(a.events);
    for (const since of ['2026-12-02T05:00:00.000Z', '2026-12-02T05:30:00.000Z']) {
      expect(JSON.parse(snapshotDocumentJson(at(since)))).toEqual(at(since));
    }
  });
});

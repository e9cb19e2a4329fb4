/**
 * The snapshot schema bounds every string and array: a misbehaving or hostile agent cannot
 * inflate the operator's memory, a status or the number of metric series with one answer.
 */
import { describe, expect, it } from '@jest/globals';
import type { GpuSnapshot } from '../nvml/types.js';
import { SNAPSHOT_API_VERSION, SNAPSHOT_KIND, type NodeSnapshotDocument, type XidEventReport } from './snapshot-document.js';
import { validateSnapshotDocument } from './validate-snapshot.js';

const AT = '2025-06-01T12:00:00.000Z';

function gpu(index: number, overrides: Partial<GpuSnapshot> = {}): GpuSnapshot {
  return {
    index,
    lost: false,
    uuid: `GPU-b176d2db-6067-d821-ded0-eebe18aace${String(index).padStart(2, '0')}`,
    name: 'NVIDIA H100 80GB HBM3',
    pciBusId: '00000000:18:00.0',
    pciBusIdKernel: '0000:18:00',
    unsupported: [],
    errors: [],
    ...overrides,
  };
}

function xid(overrides: Partial<XidEventReport> = {}): XidEventReport {
  return {
    xid: 79,
    name: 'GPU has fallen off the bus',
    severity: 'critical',
    action: 'reboot',
    pciBusId: '0000:18:00',
    pid: null,
    process: null,
    count: 1,
    firstSeen: AT,
    lastSeen: AT,
    message: 'NVRM: Xid (PCI:0000:18:00): 79',
    sources: ['kmsg'],
    ...overrides,
  };
}

function doc(overrides: Partial<NodeSnapshotDocument> = {}): NodeSnapshotDocument {
  return {
    apiVersion: SNAPSHOT_API_VERSION,
    kind: SNAPSHOT_KIND,
    node: 'gpu-node-1',
    collectedAt: AT,
    checks: ['health', 'xid'],
    nvml: { available: true, driverVersion: '550.54.15' },
    gpus: [gpu(0)],
    errors: [],
    xid: { since: AT, events: [xid()], truncated: 0 },
    agent: {
      version: '0.1.0',
      startedAt: AT,
      mode: 'nvml',
      xidSources: { kmsg: { running: true, path: '/dev/kmsg', records: 1, lost: 0 }, nvmlEvents: { running: true } },
    },
    ...overrides,
  };
}

describe('validateSnapshotDocument', () => {
  it('accepts a well-formed document, MIG UUIDs and unknown additive fields', () => {
    expect(validateSnapshotDocument(doc()).ok).toBe(true);
    expect(validateSnapshotDocument(doc({ gpus: [gpu(0, { uuid: 'MIG-GPU-b176d2db-6067-d821-ded0-eebe18aace84/1/0' })] })).ok).toBe(true);
    expect(validateSnapshotDocument({ ...doc(), futureField: { any: 'shape' } }).ok).toBe(true);
  });

  it.each<[string, NodeSnapshotDocument, string]>([
    [
      '10,000 GPUs (10,000 metric series)',
      doc({ gpus: Array.from({ length: 10_000 }, (_, i) => gpu(i % 64)) }),
      '/gpus must NOT have more than 64 items',
    ],
    ['a GPU index past NVML numbering', doc({ gpus: [gpu(5000)] }), '/gpus/0/index must be <= 63'],
    ['a 1 MiB UUID', doc({ gpus: [gpu(0, { uuid: `GPU-${'a'.repeat(1 << 20)}` })] }), '/gpus/0/uuid must NOT have more than 96 characters'],
    ['a UUID that is not one', doc({ gpus: [gpu(0, { uuid: 'not a uuid\n{"level":"error"}' })] }), '/gpus/0/uuid must match pattern'],
    ['a garbage PCI id', doc({ gpus: [gpu(0, { pciBusId: '../../etc/passwd' })] }), '/gpus/0/pciBusId must match pattern'],
    ['a garbage kernel PCI id', doc({ gpus: [gpu(0, { pciBusIdKernel: '00:18:00.0' })] }), '/gpus/0/pciBusIdKernel must match pattern'],
    ['a 1 MiB GPU name', doc({ gpus: [gpu(0, { name: 'x'.repeat(1 << 20) })] }), '/gpus/0/name must NOT have more than 96 characters'],
    [
      '100,000 processes',
      doc({ gpus: [gpu(0, { processes: Array.from({ length: 100_000 }, (_, pid) => ({ pid })) })] }),
      '/gpus/0/processes must NOT have more than 256 items',
    ],
    [
      '10,000 unsupported fields',
      doc({ gpus: [gpu(0, { unsupported: Array.from({ length: 10_000 }, (_, i) => `f${i}`) })] }),
      '/gpus/0/unsupported must NOT have more than 128 items',
    ],
    [
      'a 1 MiB error text',
      doc({ errors: [{ field: 'driverVersion', code: 999, error: 'e'.repeat(1 << 20) }] }),
      '/errors/0/error must NOT have more than 512 characters',
    ],
    [
      '5,000 XID events',
      doc({ xid: { since: AT, events: Array.from({ length: 5_000 }, () => xid()), truncated: 0 } }),
      '/xid/events must NOT have more than 200 items',
    ],
    [
      'an XID code that would mint a metric series',
      doc({ xid: { since: AT, events: [xid({ xid: 123_456 })], truncated: 0 } }),
      '/xid/events/0/xid must be <= 999',
    ],
    [
      'a 1 MiB kernel message',
      doc({ xid: { since: AT, events: [xid({ message: 'm'.repeat(1 << 20) })], truncated: 0 } }),
      '/xid/events/0/message must NOT have more than 512 characters',
    ],
    ['a timestamp that is not one', doc({ collectedAt: 'yesterday' }), '/collectedAt must match pattern'],
    ['a node name with a newline', doc({ node: 'gpu-node-1\nINFO forged' }), '/node must match pattern'],
    [
      'a 1 MiB NVML reason',
      doc({ nvml: { available: false, reason: 'r'.repeat(1 << 20) } }),
      '/nvml/reason must NOT have more than 1024 characters',
    ],
  ])('refuses %s, naming the field', (_what, body, problem) => {
    const result = validateSnapshotDocument(JSON.parse(JSON.stringify(body)));
    expect(result.ok).toBe(false);
    expect(result.ok ? [] : result.problems).toEqual(expect.arrayContaining([expect.stringContaining(problem)]));
  });
});

import type { V1Node } from '@kubernetes/client-node';
import {
  GPU_COUNT_LABEL,
  GPU_PRODUCT_LABEL,
  GPU_REPLICAS_LABEL,
  GPU_RESOURCE,
  MAX_ADVERTISED_GPUS,
  MIG_STRATEGY_LABEL,
  parseAdvertisedGpus,
  type GpuAdvertisement,
} from './advertised-gpus.js';

/** A Node with the given labels and the same nvidia.com/gpu in capacity and allocatable (unless split). */
function gpuNode(parts: { labels?: Record<string, string>; capacity?: string; allocatable?: string } = {}): V1Node {
  const resources = (value: string | undefined): Record<string, string> | undefined =>
    value === undefined ? undefined : { cpu: '96', [GPU_RESOURCE]: value };
  const capacity = resources(parts.capacity);
  const allocatable = resources(parts.allocatable);
  return {
    metadata: { name: 'gpu-node-1', ...(parts.labels === undefined ? {} : { labels: parts.labels }) },
    status: { ...(capacity === undefined ? {} : { capacity }), ...(allocatable === undefined ? {} : { allocatable }) },
  };
}

/** `source=gpus` of each count, for compact expectations. */
function counts(a: GpuAdvertisement): string[] {
  return a.counts.map((c) => `${c.source}=${c.gpus}${c.migDevices === undefined ? '' : ` (${c.migDevices} MIG)`}`);
}

describe('parseAdvertisedGpus', () => {
  it.each<[string, V1Node, string[]]>([
    [
      'device plugin and GFD agree',
      gpuNode({ capacity: '8', allocatable: '8', labels: { [GPU_COUNT_LABEL]: '8' } }),
      ['capacity nvidia.com/gpu=8', 'allocatable nvidia.com/gpu=8', 'label nvidia.com/gpu.count=8'],
    ],
    ['device plugin only', gpuNode({ capacity: '4', allocatable: '4' }), ['capacity nvidia.com/gpu=4', 'allocatable nvidia.com/gpu=4']],
    ['GFD label only (device plugin not running)', gpuNode({ labels: { [GPU_COUNT_LABEL]: '8' } }), ['label nvidia.com/gpu.count=8']],
    [
      'allocatable lower after the plugin marked a GPU unhealthy',
      gpuNode({ capacity: '8', allocatable: '7' }),
      ['capacity nvidia.com/gpu=8', 'allocatable nvidia.com/gpu=7'],
    ],
    ['zero advertised', gpuNode({ capacity: '0', allocatable: '0' }), ['capacity nvidia.com/gpu=0', 'allocatable nvidia.com/gpu=0']],
    ['a CPU node', gpuNode(), []],
    ['a Node with no status or metadata at all', {}, []],
    [
      'time-slicing: 4 replicas per GPU divide out',
      gpuNode({ capacity: '32', allocatable: '32', labels: { [GPU_COUNT_LABEL]: '8', [GPU_REPLICAS_LABEL]: '4' } }),
      ['capacity nvidia.com/gpu=8', 'allocatable nvidia.com/gpu=8', 'label nvidia.com/gpu.count=8'],
    ],
    ['replicas 1 (no sharing)', gpuNode({ capacity: '8', labels: { [GPU_REPLICAS_LABEL]: '1' } }), ['capacity nvidia.com/gpu=8']],
    [
      'MIG strategy single: MIG devices imply at least one GPU',
      gpuNode({
        capacity: '56',
        allocatable: '56',
        labels: { [GPU_COUNT_LABEL]: '56', [MIG_STRATEGY_LABEL]: 'single', [GPU_PRODUCT_LABEL]: 'NVIDIA-H100-80GB-HBM3-MIG-1g.10gb' },
      }),
      ['capacity nvidia.com/gpu=1 (56 MIG)', 'allocatable nvidia.com/gpu=1 (56 MIG)', 'label nvidia.com/gpu.count=1 (56 MIG)'],
    ],
    [
      'MIG strategy single on GPUs without MIG (product without a profile): plain GPUs',
      gpuNode({
        capacity: '8',
        labels: { [GPU_COUNT_LABEL]: '8', [MIG_STRATEGY_LABEL]: 'single', [GPU_PRODUCT_LABEL]: 'NVIDIA-H100-80GB-HBM3' },
      }),
      ['capacity nvidia.com/gpu=8', 'label nvidia.com/gpu.count=8'],
    ],
    [
      'MIG strategy mixed: nvidia.com/gpu counts the GPUs without MIG',
      gpuNode({ capacity: '2', labels: { [MIG_STRATEGY_LABEL]: 'mixed', 'nvidia.com/mig-1g.10gb.count': '14' } }),
      ['capacity nvidia.com/gpu=2'],
    ],
  ])('%s', (_, node, expected) => {
    const parsed = parseAdvertisedGpus(node);
    expect(counts(parsed)).toEqual(expected);
    expect(parsed.ignored).toEqual([]);
  });

  it("records the MIG strategy label when it is one of the device plugin's", () => {
    expect(parseAdvertisedGpus(gpuNode({ labels: { [MIG_STRATEGY_LABEL]: 'mixed' } })).migStrategy).toBe('mixed');
    expect(parseAdvertisedGpus(gpuNode({ labels: { [MIG_STRATEGY_LABEL]: 'whatever' } })).migStrategy).toBeUndefined();
  });

  const huge = String(MAX_ADVERTISED_GPUS + 1);
  it.each<[string, V1Node, string[], string[]]>([
    [
      'a label that is not a number',
      gpuNode({ capacity: '8', labels: { [GPU_COUNT_LABEL]: 'eight' } }),
      ['capacity nvidia.com/gpu=8'],
      ['label nvidia.com/gpu.count: "eight" is not a whole number'],
    ],
    ['a negative label', gpuNode({ labels: { [GPU_COUNT_LABEL]: '-1' } }), [], ['label nvidia.com/gpu.count: "-1" is not a whole number']],
    ['a fraction', gpuNode({ labels: { [GPU_COUNT_LABEL]: '7.5' } }), [], ['label nvidia.com/gpu.count: "7.5" is not a whole number']],
    ['an exponent', gpuNode({ labels: { [GPU_COUNT_LABEL]: '8e1' } }), [], ['label nvidia.com/gpu.count: "8e1" is not a whole number']],
    ['hex', gpuNode({ labels: { [GPU_COUNT_LABEL]: '0x8' } }), [], ['label nvidia.com/gpu.count: "0x8" is not a whole number']],
    ['leading zeros', gpuNode({ labels: { [GPU_COUNT_LABEL]: '08' } }), [], ['label nvidia.com/gpu.count: "08" is not a whole number']],
    ['padding', gpuNode({ labels: { [GPU_COUNT_LABEL]: ' 8' } }), [], ['label nvidia.com/gpu.count: " 8" is not a whole number']],
    ['empty', gpuNode({ labels: { [GPU_COUNT_LABEL]: '' } }), [], ['label nvidia.com/gpu.count: "" is not a whole number']],
    [
      'a quantity with a unit',
      gpuNode({ capacity: '1k', allocatable: '8' }),
      ['allocatable nvidia.com/gpu=8'],
      ['capacity nvidia.com/gpu: "1k" is not a whole number'],
    ],
    [
      'more digits than any count',
      gpuNode({ capacity: '99999999999999999999' }),
      [],
      ['capacity nvidia.com/gpu: "99999999999999999999" is not a whole number'],
    ],
    [
      'more GPUs than a node has',
      gpuNode({ capacity: huge }),
      [],
      [`capacity nvidia.com/gpu: ${huge} GPUs is more than any node has (at most ${MAX_ADVERTISED_GPUS})`],
    ],
    [
      'a long hostile value, quoted only in part',
      gpuNode({ labels: { [GPU_COUNT_LABEL]: 'x'.repeat(63) } }),
      [],
      [`label nvidia.com/gpu.count: "${'x'.repeat(32)}…" is not a whole number`],
    ],
    [
      'replicas that do not divide the resource',
      gpuNode({ capacity: '30', labels: { [GPU_REPLICAS_LABEL]: '4', [GPU_COUNT_LABEL]: '8' } }),
      ['label nvidia.com/gpu.count=8'],
      ['capacity nvidia.com/gpu: 30 is not a multiple of label nvidia.com/gpu.replicas (4)'],
    ],
    [
      'unreadable replicas: the shared resource cannot be read, the count label still can',
      gpuNode({ capacity: '32', allocatable: '32', labels: { [GPU_REPLICAS_LABEL]: 'many', [GPU_COUNT_LABEL]: '8' } }),
      ['label nvidia.com/gpu.count=8'],
      [
        'capacity nvidia.com/gpu: label nvidia.com/gpu.replicas "many" is not a whole number, so the shared count cannot be read as GPUs',
        'allocatable nvidia.com/gpu: label nvidia.com/gpu.replicas "many" is not a whole number, so the shared count cannot be ' +
          'read as GPUs',
      ],
    ],
    [
      'zero replicas',
      gpuNode({ capacity: '8', labels: { [GPU_REPLICAS_LABEL]: '0' } }),
      [],
      ['capacity nvidia.com/gpu: label nvidia.com/gpu.replicas is 0, so the shared count cannot be read as GPUs'],
    ],
  ])('ignores %s with a reason', (_, node, expectedCounts, reasons) => {
    const parsed = parseAdvertisedGpus(node);
    expect(counts(parsed)).toEqual(expectedCounts);
    expect(parsed.ignored.map((i) => `${i.source}: ${i.reason}`)).toEqual(reasons);
  });

  it('never throws on shapes the type does not allow (a Node is cluster data)', () => {
    const shapes: unknown[] = [
      { metadata: { labels: null }, status: { capacity: null } },
      { metadata: { labels: [GPU_COUNT_LABEL] }, status: { capacity: ['8'], allocatable: 8 } },
      { metadata: { labels: { [GPU_COUNT_LABEL]: 8 } }, status: { capacity: { [GPU_RESOURCE]: 8 } } },
      { metadata: 'x', status: 'y' },
    ];
    for (const shape of shapes) {
      const parsed = parseAdvertisedGpus(shape as V1Node);
      expect(parsed.counts).toEqual([]);
      expect(parsed.ignored.every((i) => i.reason === 'is not a string')).toBe(true);
    }
  });
});

import { describe, expect, it } from '@jest/globals';
import { GpuIdentityMemory } from './gpu-identities.js';
import type { GpuSnapshot } from './types.js';

function gpu(index: number, uuid: string | undefined, extra: Partial<GpuSnapshot> = {}): GpuSnapshot {
  return {
    index,
    lost: false,
    unsupported: [],
    errors: [],
    ...(uuid !== undefined ? { uuid, pciBusId: `00000000:${(0x18 + index).toString(16).toUpperCase()}:00.0` } : {}),
    ...extra,
  };
}

function lost(index: number, extra: Partial<GpuSnapshot> = {}): GpuSnapshot {
  return { index, lost: true, unsupported: [], errors: [], ...extra };
}

describe('GpuIdentityMemory', () => {
  it('gives a GPU that fell off the bus the identity it last reported', () => {
    const memory = new GpuIdentityMemory();
    memory.recall([gpu(0, 'GPU-a'), gpu(1, 'GPU-b', { name: 'NVIDIA H100 80GB HBM3', serial: '1654922001403' })]);
    const after = memory.recall([gpu(0, 'GPU-a'), lost(1)]);
    expect(after[1]).toEqual({
      index: 1,
      lost: true,
      unsupported: [],
      errors: [],
      uuid: 'GPU-b',
      name: 'NVIDIA H100 80GB HBM3',
      serial: '1654922001403',
      pciBusId: '00000000:19:00.0',
    });
  });

  it.each([
    ['nothing was seen before (the agent started after the loss)', [] as GpuSnapshot[], [lost(1)]],
    ['another index now reports the remembered UUID (NVML re-enumerated)', [gpu(0, 'GPU-a'), gpu(1, 'GPU-b')], [gpu(0, 'GPU-b'), lost(1)]],
    [
      'the lost GPU still tells a different PCI bus id',
      [gpu(0, 'GPU-a'), gpu(1, 'GPU-b')],
      [gpu(0, 'GPU-a'), lost(1, { pciBusId: '00000000:AA:00.0' })],
    ],
  ])('restores nothing when %s', (_what, earlier, now) => {
    const memory = new GpuIdentityMemory();
    memory.recall(earlier);
    expect(memory.recall(now)).toBe(now);
  });

  it('keeps what the lost GPU still reports, and leaves healthy snapshots untouched', () => {
    const memory = new GpuIdentityMemory();
    const healthy = [gpu(0, 'GPU-a')];
    expect(memory.recall(healthy)).toBe(healthy);
    expect(memory.recall([lost(0, { uuid: 'GPU-z' })])[0]?.uuid).toBe('GPU-z');
  });
});

import { describe, expect, it } from '@jest/globals';
import { toKernelBusId, toNvmlBusId } from './pci-bus-id.js';

describe('PCI bus id forms', () => {
  it.each([
    ['00000000:3B:00.0', '0000:3b:00'],
    ['00000000:18:00.0', '0000:18:00'],
    ['00000001:AB:1F.3', '0001:ab:1f'],
    ['0000:3B:00.0', '0000:3b:00'],
  ])('NVML %s → kernel %s', (nvml, kernel) => {
    expect(toKernelBusId(nvml)).toBe(kernel);
  });

  it.each([['garbage'], [''], ['00000000:3B:00']])('rejects %p', (bad) => {
    expect(toKernelBusId(bad)).toBeUndefined();
  });

  it.each([
    ['0000:3b:00', '00000000:3B:00.0'],
    ['0000:3b:00.1', '00000000:3B:00.1'],
  ])('kernel %s → NVML %s', (kernel, nvml) => {
    expect(toNvmlBusId(kernel)).toBe(nvml);
    expect(toKernelBusId(nvml)).toBe(kernel.slice(0, 10));
  });
});

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { flag, parseNvidiaSmiLog, quantity, type NvidiaSmiLog } from './nvidia-smi-log.js';

// Tests run from the repository root; real recorded outputs (see the fixture README).
const FIXTURES = path.resolve(process.cwd(), 'test/fixtures/nvidia-smi');

function fixture(name: string): NvidiaSmiLog {
  const r = parseNvidiaSmiLog(readFileSync(path.join(FIXTURES, name), 'utf8'));
  if (!r.ok) throw new Error(r.error);
  return r.log;
}

describe('quantity and flag', () => {
  it.each([
    ['81559 MiB', 'MiB', 81559],
    ['35 C', 'C', 35],
    ['-5 C', 'C', -5],
    ['70.52 W', 'W', 70.52],
    ['1980 MHz', 'MHz', 1980],
    ['16x', 'x', 16],
    ['30 %', '%', 30],
    ['N/A', 'W', undefined],
    ['[N/A]', 'W', undefined],
    ['Requested functionality has been deprecated', 'MHz', undefined],
    ['35 C', 'W', undefined],
    [undefined, 'W', undefined],
  ])('quantity(%j, %s) = %j', (text, unit, expected) => {
    expect(quantity(text, unit)).toBe(expected);
  });

  it.each([
    ['Enabled', true],
    ['Yes', true],
    ['Active', true],
    ['Disabled', false],
    ['No', false],
    ['Not Active', false],
    ['N/A', undefined],
  ])('flag(%j) = %j', (text, expected) => {
    expect(flag(text)).toBe(expected);
  });
});

describe('parseNvidiaSmiLog on recorded outputs', () => {
  it('reads an A100-SXM4-80GB in MIG mode (driver 535.54.03, DTD v12)', () => {
    const log = fixture('a100-sxm4-80gb-mig-535.54.03.xml');
    expect(log).toMatchObject({ driverVersion: '535.54.03', cudaVersion: '12.2', attachedGpus: 4 });
    expect(log.gpus).toHaveLength(1);
    expect(log.gpus[0]).toEqual({
      id: '00000000:01:00.0',
      productName: 'NVIDIA A100-SXM4-80GB',
      uuid: 'GPU-513536b6-7d19-9063-b049-1e69664bb298',
      serial: '1650522003820',
      pciBusId: '00000000:01:00.0',
      pciDeviceId: '20B210DE',
      pciSubSystemId: '147F10DE',
      memory: { totalMiB: 81920, reservedMiB: 869, usedMiB: 50, freeMiB: 80999 },
      temperature: { gpuC: 27, memoryC: 44, shutdownC: 92, slowdownC: 89, gpuMaxC: 85, memoryMaxC: 95 },
      power: { drawW: 67.03, limitW: 500, minLimitW: 100, maxLimitW: 500, defaultLimitW: 500 },
      utilization: {},
      clocks: { graphicsMHz: 1275, smMHz: 1275, memoryMHz: 1593, maxGraphicsMHz: 1410, maxSmMHz: 1410, maxMemoryMHz: 1593 },
      clockEventReasons: [],
      ecc: {
        enabled: true,
        pendingEnabled: true,
        volatileCorrected: 0,
        volatileUncorrected: 0,
        aggregateCorrected: 0,
        aggregateUncorrected: 0,
      },
      retiredPages: {},
      remappedRows: {},
      pcie: { currentGen: 4, maxGen: 4, currentWidth: 16, maxWidth: 16, replayCounter: 0, replayRolloverCounter: 0 },
      vbiosVersion: '92.00.36.00.02',
      inforom: { imageVersion: 'G506.0212.00.01', oemVersion: '2.0', eccVersion: '6.16' },
      bar1: { totalMiB: 131072, usedMiB: 1, freeMiB: 131071 },
      processes: [],
      migMode: { enabled: true, pendingEnabled: true },
      persistenceMode: false,
      performanceState: 0,
      computeMode: 'default',
    });
  });

  it('reads an RTX PRO 6000 Blackwell (driver 590.44.01, DTD v13: average/instant power, TLimit temperatures)', () => {
    const log = fixture('rtx-pro-6000-blackwell-590.44.01.xml');
    expect(log).toMatchObject({ driverVersion: '590.44.01', cudaVersion: '13.1', attachedGpus: 1 });
    const gpu = log.gpus[0];
    expect(gpu).toMatchObject({
      productName: 'NVIDIA RTX PRO 6000 Blackwell Max-Q Workstation Edition',
      pciBusId: '00000000:61:00.0',
      memory: { totalMiB: 97887, reservedMiB: 637, usedMiB: 65720, freeMiB: 31531 },
      power: { averageDrawW: 3.97, instantDrawW: 3.99, limitW: 300 },
      utilization: { gpuPercent: 0, memoryPercent: 0 },
      clocks: { graphicsMHz: 180, smMHz: 180, memoryMHz: 405, maxGraphicsMHz: 3090, maxSmMHz: 3090, maxMemoryMHz: 14001 },
      clockEventReasons: [],
      ecc: { enabled: false, pendingEnabled: false },
      remappedRows: { corrected: 0, uncorrected: 0, pending: false, failure: false },
      pcie: { currentGen: 1, maxGen: 4, currentWidth: 16, maxWidth: 16, replayCounter: 0 },
      processes: [{ pid: 116860, type: 'C', name: '/root/src/llama.cpp/build/bin/llama-server', usedMemoryMiB: 65710 }],
      migMode: {},
      persistenceMode: true,
      performanceState: 8,
      fanSpeedPercent: 30,
      computeMode: 'default',
    });
    // only TLimit-relative thresholds on this board (the comparison derives absolute ones from them)
    expect(gpu?.temperature).toEqual({ gpuC: 24, tlimitHeadroomC: 68, shutdownTlimitC: -5, slowdownTlimitC: -2, gpuMaxTlimitC: 0 });
    expect(gpu?.recoveryAction).toBe('None');
    expect(gpu?.power.drawW).toBeUndefined();
  });

  it('reads the older element names (DTD v10/v11: power_readings, clocks_throttle_reasons, per-location ECC)', () => {
    // synthetic, with the element names of driver 418-470 outputs
    const xml =
      `<nvidia_smi_log><driver_version>470.103.01</driver_version><gpu id="00000000:D8:00.0">
      <product_name>Tesla V100-PCIE-32GB</product_name>
      <clocks_throttle_reasons>
        <clocks_throttle_reason_gpu_idle>Active</clocks_throttle_reason_gpu_idle>
        <clocks_throttle_reason_sw_power_cap>Not Active</clocks_throttle_reason_sw_power_cap>
        <clocks_throttle_reason_hw_slowdown>Active</clocks_throttle_reason_hw_slowdown>
      </clocks_throttle_reasons>
      <ecc_errors>
        <volatile><single_bit><device_memory>1</device_memory><total>3</total></single_bit>` +
      `<double_bit><total>0</total></double_bit></volatile>
        <aggregate><single_bit><total>7</total></single_bit><double_bit><total>1</total></double_bit></aggregate>
      </ecc_errors>
      <retired_pages>
        <multiple_single_bit_retirement><retired_count>2</retired_count></multiple_single_bit_retirement>
        <double_bit_retirement><retired_count>1</retired_count></double_bit_retirement>
        <pending_retirement>No</pending_retirement>
      </retired_pages>
      <power_readings><power_draw>37.52 W</power_draw><power_limit>250.00 W</power_limit>` +
      `<enforced_power_limit>250.00 W</enforced_power_limit></power_readings>
      <processes>N/A</processes>
    </gpu></nvidia_smi_log>`;
    const r = parseNvidiaSmiLog(xml);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.log.gpus[0]).toMatchObject({
      clockEventReasons: ['GpuIdle', 'HwSlowdown'],
      ecc: { volatileCorrected: 3, volatileUncorrected: 0, aggregateCorrected: 7, aggregateUncorrected: 1 },
      retiredPages: { singleBitEcc: 2, doubleBitEcc: 1, pending: false },
      power: { drawW: 37.52, limitW: 250 },
    });
    expect(r.log.gpus[0]?.processes).toBeUndefined();
  });

  it('sums SRAM parity and SEC-DED uncorrectable counts with DRAM ones', () => {
    const xml =
      `<nvidia_smi_log><gpu><ecc_errors><volatile>
      <sram_correctable>4</sram_correctable><sram_uncorrectable_parity>1</sram_uncorrectable_parity>
      <sram_uncorrectable_secded>2</sram_uncorrectable_secded><dram_correctable>5</dram_correctable>` +
      `<dram_uncorrectable>3</dram_uncorrectable>
    </volatile></ecc_errors></gpu></nvidia_smi_log>`;
    const r = parseNvidiaSmiLog(xml);
    expect(r.ok && r.log.gpus[0]?.ecc).toEqual({ volatileCorrected: 9, volatileUncorrected: 6 });
  });

  it.each([
    ['not XML', 'nvidia-smi: command not found', /not XML/],
    ['another root', '<?xml version="1.0"?><html></html>', /root element is <html>/],
  ])('refuses %s', (_name, text, error) => {
    const r = parseNvidiaSmiLog(text);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(error);
  });
});

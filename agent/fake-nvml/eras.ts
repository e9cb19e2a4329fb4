/**
 * The driver eras the fake NVML library models. Each era is its own build of fake_nvml.c (the
 * C macros below decide which symbols it exports and how they behave), so a symbol an era lacks
 * is really missing from the library, as on a node with that driver. A scenario runs on the era
 * its `driverVersion` falls in; the library refuses a state file of another era at init.
 */

/** A modeled driver era (one build of the fake library). */
export type FakeNvmlEra = 'r470' | 'r535-43' | 'r535-98' | 'r550' | 'r570';

/** One era: the driver versions it stands for and the build flags that make the library behave so. */
export interface FakeNvmlEraSpec {
  era: FakeNvmlEra;
  /** What a node with this driver lacks or does differently, for docs and test names. */
  summary: string;
  /** First driver version of the era (inclusive). */
  from: string;
  /** First driver version after the era (exclusive); undefined: open-ended. */
  until?: string;
  /** C macros (without `-D`) fake_nvml.c branches on. */
  defines: readonly string[];
}

/** Every era, oldest first. Versions between eras (510–535.42, 565.x) are not modeled. */
export const FAKE_NVML_ERAS: readonly FakeNvmlEraSpec[] = [
  {
    era: 'r470',
    summary:
      'no _v3 process call (v2 and v1 only), no ClocksEventReasons (ThrottleReasons only), no MemoryInfo_v2, no GPU fabric ' +
      'info, no PCIe error-count fields, no link-scoped NVLink counter and state fields',
    from: '470',
    until: '510',
    defines: [
      'GPUDIAG_FAKE_NO_PROCESSES_V3',
      'GPUDIAG_FAKE_NO_CLOCKS_EVENT_REASONS',
      'GPUDIAG_FAKE_NO_MEMORY_V2',
      // nvmlDeviceGetGpuFabricInfo arrived for Hopper (R525); the PCIe error-count field ids with R535 (NVML change log)
      'GPUDIAG_FAKE_NO_FABRIC_INFO',
      'GPUDIAG_FAKE_NO_PCIE_COUNTERS',
      // the link-scoped NVLink fields (161-163 DL counters, 165 state) are newer than the per-link
      // ids; when they arrived is not in the change log, so the oldest era goes without them
      'GPUDIAG_FAKE_NO_NVLINK_DL_FIELDS',
    ],
  },
  {
    era: 'r535-43',
    summary: '_v3 writes 32-byte process records (an extra usedGpuCcProtectedMemory u64)',
    from: '535.43.02',
    until: '535.98',
    defines: ['GPUDIAG_FAKE_PROCESS_V3_BYTES=32'],
  },
  {
    era: 'r535-98',
    summary: 'no _v3 process call (v2 and v1 only)',
    from: '535.98',
    until: '535.104.05',
    defines: ['GPUDIAG_FAKE_NO_PROCESSES_V3'],
  },
  {
    era: 'r550',
    summary:
      'every call the agent reads except TemperatureV, the recovery-action field, the NVLink5 field values and the memory event ' +
      'types; GpuFabricInfoV takes only the v2 struct',
    from: '535.104.05',
    until: '565',
    // nvmlDeviceGetGpuFabricInfoV is in the R550 change log ("Changes between v545 and v550")
    defines: ['GPUDIAG_FAKE_FABRIC_INFO_V'],
  },
  {
    era: 'r570',
    summary:
      'TemperatureV, the GpuRecoveryAction event and field, NVLink5 counters as field values (Blackwell), the ECC-storm / ' +
      'DRAM-retirement / poison events, GpuFabricInfoV with the v3 struct',
    from: '570',
    defines: [
      'GPUDIAG_FAKE_TEMPERATURE_V',
      'GPUDIAG_FAKE_RECOVERY_ACTION',
      'GPUDIAG_FAKE_NVLINK5_FIELDS',
      'GPUDIAG_FAKE_FABRIC_INFO_V',
      // the fabric health summary (v3 struct) is assumed from R570 on; the memory event types are in the R560 change log
      'GPUDIAG_FAKE_FABRIC_INFO_V3',
      'GPUDIAG_FAKE_MEMORY_EVENTS',
    ],
  },
];

/** The era of a scenario that names no driver version: the newest. */
export const NEWEST_FAKE_NVML_ERA: FakeNvmlEra = 'r570';

/** `535.104.05` → [535, 104, 5]; undefined unless dot-separated decimal numbers. */
export function parseDriverVersion(version: string): number[] | undefined {
  if (!/^\d+(\.\d+)*$/.test(version)) return undefined;
  return version.split('.').map(Number);
}

/** Negative, zero or positive as `a` is older than, the same as, or newer than `b`. */
export function compareDriverVersions(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function versionOf(text: string): number[] {
  const parsed = parseDriverVersion(text);
  if (parsed === undefined) throw new Error(`era table holds a malformed version ${text}`);
  return parsed;
}

/** The era a driver version falls in, or undefined when no modeled era covers it. */
export function fakeNvmlEraFor(driverVersion: string): FakeNvmlEra | undefined {
  const version = parseDriverVersion(driverVersion);
  if (version === undefined) return undefined;
  const spec = FAKE_NVML_ERAS.find(
    (e) =>
      compareDriverVersions(version, versionOf(e.from)) >= 0 &&
      (e.until === undefined || compareDriverVersions(version, versionOf(e.until)) < 0),
  );
  return spec?.era;
}

/** The spec of an era. */
export function fakeNvmlEraSpec(era: FakeNvmlEra): FakeNvmlEraSpec {
  const spec = FAKE_NVML_ERAS.find((e) => e.era === era);
  if (spec === undefined) throw new Error(`unknown fake NVML era ${era}`);
  return spec;
}

/** Human-readable list of the modeled version ranges, for error messages. */
export function describeFakeNvmlEras(): string {
  return FAKE_NVML_ERAS.map((e) => `${e.era} [${e.from}, ${e.until ?? '∞'})`).join(', ');
}

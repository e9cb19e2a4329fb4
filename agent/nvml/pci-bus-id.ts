/** Conversions between NVML's PCI bus id form and the kernel log's. */

const NVML_BUS_ID = /^([0-9a-f]{1,8}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/i;
const KERNEL_BUS_ID = /^([0-9a-f]{4}):([0-9a-f]{2}):([0-9a-f]{2})(?:\.([0-7]))?$/i;
const KERNEL_DOMAIN_DIGITS = 4;
const NVML_DOMAIN_DIGITS = 8;

/** `00000000:3B:00.0` (NVML) → `0000:3b:00` (kernel log, no function); undefined when malformed. */
export function toKernelBusId(nvmlBusId: string): string | undefined {
  const m = NVML_BUS_ID.exec(nvmlBusId.trim());
  if (m === null) return undefined;
  const [, domain = '', bus = '', device = ''] = m;
  return `${domain.slice(-KERNEL_DOMAIN_DIGITS).padStart(KERNEL_DOMAIN_DIGITS, '0')}:${bus}:${device}`.toLowerCase();
}

/** `0000:3b:00` or `0000:3b:00.0` (kernel) → `00000000:3B:00.0` (NVML); undefined when malformed. */
export function toNvmlBusId(kernelBusId: string): string | undefined {
  const m = KERNEL_BUS_ID.exec(kernelBusId.trim());
  if (m === null) return undefined;
  const [, domain = '', bus = '', device = '', fn = '0'] = m;
  return `${domain.padStart(NVML_DOMAIN_DIGITS, '0')}:${bus}:${device}.${fn}`.toUpperCase();
}

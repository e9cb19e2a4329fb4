/** Helpers the check table tests share. */
import type { GpuSnapshot } from '../../../agent/nvml/types.js';
import type { Finding } from '../finding.js';

/** `severity:code` of each finding, for compact table expectations. */
export function summary(findings: readonly Finding[]): string[] {
  return findings.map((f) => `${f.severity}:${f.code}`);
}

/** A node context holding only the given GPUs. */
export function nodeOf(...gpus: GpuSnapshot[]): { gpus: readonly GpuSnapshot[] } {
  return { gpus };
}

/** The shape every GPU check shares. */
import type { GpuSnapshot } from '../../../agent/nvml/types.js';
import type { Finding } from '../finding.js';
import type { ResolvedPolicy } from '../policy.js';

/** What a check may know about the rest of the node (the other GPUs of the same snapshot). */
export interface NodeContext {
  readonly gpus: readonly GpuSnapshot[];
}

/** A small pure check: one concern of one GPU → its findings (empty when all is well or unknown). */
export type GpuCheck = (gpu: GpuSnapshot, policy: ResolvedPolicy, node: NodeContext) => readonly Finding[];

/** No findings. */
export const NONE: readonly Finding[] = Object.freeze([]);

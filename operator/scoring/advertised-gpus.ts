/**
 * How many physical GPUs a Node says it has, read once from the Node object: capacity and
 * allocatable `nvidia.com/gpu` (NVIDIA's device plugin) and the label `nvidia.com/gpu.count`
 * (GPU feature discovery). The Node is cluster data anyone with node write access can shape, so
 * every value is parsed defensively: what cannot be read as a GPU count is ignored with a reason,
 * never thrown. Counts that are not physical GPUs are divided out or ignored:
 * - time-slicing/MPS sharing (`nvidia.com/gpu.replicas` N > 1) multiplies the resource by N;
 * - MIG strategy "single" advertises MIG devices as `nvidia.com/gpu` (and GFD counts them in
 *   `nvidia.com/gpu.count`): such a count only says "at least one GPU". Strategy "mixed" names
 *   MIG devices `nvidia.com/mig-<profile>`, never read here, so its counts are at most the GPUs.
 */
import type { V1Node } from '@kubernetes/client-node';

/** The extended resource NVIDIA's device plugin advertises. */
export const GPU_RESOURCE = 'nvidia.com/gpu';
/** GPU feature discovery's GPU count label. */
export const GPU_COUNT_LABEL = 'nvidia.com/gpu.count';
/** GPU feature discovery: how many schedulable replicas each GPU is shared as (time-slicing, MPS). */
export const GPU_REPLICAS_LABEL = 'nvidia.com/gpu.replicas';
/** GPU feature discovery: the device plugin's MIG strategy (none, single, mixed). */
export const MIG_STRATEGY_LABEL = 'nvidia.com/mig.strategy';
/** GPU feature discovery: the product name; under MIG strategy single it ends in `-MIG-<profile>`. */
export const GPU_PRODUCT_LABEL = 'nvidia.com/gpu.product';
/** No node has more GPUs than this (the snapshot's bound on gpus[]); a larger count is not believed. */
export const MAX_ADVERTISED_GPUS = 64;

/** A whole number as Kubernetes writes an extended-resource quantity or a label: digits only, no sign, unit or exponent. */
const WHOLE_NUMBER = /^(?:0|[1-9]\d{0,8})$/;
/** How much of an unreadable value a reason quotes. */
const MAX_QUOTED = 32;
const MIG_PRODUCT = /-MIG-/;

/** One place a Node advertises GPUs, named as a message shows it. */
export type AdvertisementSource =
  `capacity ${typeof GPU_RESOURCE}` | `allocatable ${typeof GPU_RESOURCE}` | `label ${typeof GPU_COUNT_LABEL}`;

/** A source that advertises a readable number of physical GPUs. */
export interface AdvertisedCount {
  readonly source: AdvertisementSource;
  /** Physical GPUs it implies: exact, or at least this many when it counts MIG devices. */
  readonly gpus: number;
  /** Set when the source counts MIG devices (MIG strategy single): any implies at least one GPU. */
  readonly migDevices?: number;
}

/** A source present on the Node but unreadable or implausible, and why it was ignored. */
export interface IgnoredAdvertisement {
  readonly source: string;
  readonly reason: string;
}

/** What a Node advertises about its GPUs. */
export interface GpuAdvertisement {
  /** Sources that advertise a readable physical GPU count (an absent source is not listed). */
  readonly counts: readonly AdvertisedCount[];
  /** Sources present but unreadable or implausible. */
  readonly ignored: readonly IgnoredAdvertisement[];
  /** The node's MIG strategy label, when it is one of the device plugin's. */
  readonly migStrategy?: 'none' | 'single' | 'mixed';
}

function quoted(value: string): string {
  return JSON.stringify(value.length > MAX_QUOTED ? `${value.slice(0, MAX_QUOTED)}…` : value);
}

/** A whole number from untrusted text, or why not. */
function wholeNumber(value: unknown): number | string {
  if (typeof value !== 'string') return 'is not a string';
  if (!WHOLE_NUMBER.test(value)) return `${quoted(value)} is not a whole number`;
  return Number(value);
}

/** The replica factor the resource counts are divided by: 1 when unshared, or why the counts cannot be read. */
function replicasOf(labels: Readonly<Record<string, unknown>>): number | string {
  const raw = labels[GPU_REPLICAS_LABEL];
  if (raw === undefined) return 1;
  const n = wholeNumber(raw);
  if (typeof n === 'string') return `label ${GPU_REPLICAS_LABEL} ${n}, so the shared count cannot be read as GPUs`;
  if (n < 1) return `label ${GPU_REPLICAS_LABEL} is 0, so the shared count cannot be read as GPUs`;
  return n;
}

function migStrategyOf(labels: Readonly<Record<string, unknown>>): GpuAdvertisement['migStrategy'] {
  const raw = labels[MIG_STRATEGY_LABEL];
  return raw === 'none' || raw === 'single' || raw === 'mixed' ? raw : undefined;
}

function asRecord(value: unknown): Readonly<Record<string, unknown>> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

/** Reads what `node` advertises about its GPUs; never throws, whatever the Node holds. */
export function parseAdvertisedGpus(node: V1Node): GpuAdvertisement {
  const labels = asRecord(node.metadata?.labels);
  const counts: AdvertisedCount[] = [];
  const ignored: IgnoredAdvertisement[] = [];
  const migStrategy = migStrategyOf(labels);
  const product = labels[GPU_PRODUCT_LABEL];
  // Under MIG strategy single, GFD appends the MIG profile to the product and both the resource
  // and the count label number MIG devices, not GPUs.
  const migDevices = migStrategy === 'single' && typeof product === 'string' && MIG_PRODUCT.test(product);
  const accept = (source: AdvertisementSource, raw: unknown, divisor: number): void => {
    if (raw === undefined) return;
    const n = wholeNumber(raw);
    if (typeof n === 'string') {
      ignored.push({ source, reason: n });
      return;
    }
    if (migDevices) {
      counts.push({ source, gpus: Math.min(n, 1), migDevices: n });
      return;
    }
    if (n % divisor !== 0) {
      ignored.push({ source, reason: `${n} is not a multiple of label ${GPU_REPLICAS_LABEL} (${divisor})` });
      return;
    }
    const gpus = n / divisor;
    if (gpus > MAX_ADVERTISED_GPUS) {
      ignored.push({ source, reason: `${gpus} GPUs is more than any node has (at most ${MAX_ADVERTISED_GPUS})` });
      return;
    }
    counts.push({ source, gpus });
  };

  const replicas = replicasOf(labels);
  const status = asRecord(node.status);
  for (const [field, source] of [
    ['capacity', `capacity ${GPU_RESOURCE}`],
    ['allocatable', `allocatable ${GPU_RESOURCE}`],
  ] as const) {
    const raw = asRecord(status[field])[GPU_RESOURCE];
    if (raw === undefined) continue;
    if (typeof replicas === 'string') ignored.push({ source, reason: replicas });
    else accept(source, raw, replicas);
  }
  // GFD's count label is the number of physical GPUs whatever the sharing.
  accept(`label ${GPU_COUNT_LABEL}`, labels[GPU_COUNT_LABEL], 1);
  const strategy = migStrategy === undefined ? {} : { migStrategy };
  return Object.freeze({ counts: Object.freeze(counts), ignored: Object.freeze(ignored), ...strategy });
}

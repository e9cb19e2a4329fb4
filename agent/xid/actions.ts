/**
 * NVIDIA's action buckets (the XID catalog's "immediate action" column) and the one mapping from
 * a bucket to our severity, plain-words action and how long the fault lasts. Everything that
 * judges an XID goes through here, so the mapping is documented once (docs/xid.md).
 */

/** How bad an XID is, from "nothing to do" to "take the GPU out of service". */
export type XidSeverity = 'info' | 'warning' | 'critical';

/** Every severity, least severe first (index = rank). */
export const XID_SEVERITIES: readonly XidSeverity[] = ['info', 'warning', 'critical'];

/** Orders severities: positive when `a` is worse than `b`. */
export function compareSeverity(a: XidSeverity, b: XidSeverity): number {
  return XID_SEVERITIES.indexOf(a) - XID_SEVERITIES.indexOf(b);
}

/** The worse of two severities. */
export function worseSeverity(a: XidSeverity, b: XidSeverity): XidSeverity {
  return compareSeverity(a, b) >= 0 ? a : b;
}

/**
 * How long a fault keeps a GPU unhealthy: until the node reboots (its boot ID changes), until the
 * GPU was reset (the kernel logs its re-initialisation or NVML shows fresh volatile counters), or
 * only while it is inside the policy's look-back window.
 */
export type XidPersistence = 'reboot' | 'gpu-reset' | 'lookback';

interface BucketMeaning {
  readonly severity: XidSeverity;
  readonly action: string;
  readonly persistence: XidPersistence;
}

/**
 * The mapping. Critical means the GPU (or node) must leave service until the action is done;
 * warning means work may continue but someone should look; info means no action.
 * Keys are NVIDIA's bucket names as the catalog writes them, plus the recovery actions an
 * XID 154 can name (DRAIN_P2P, DRAIN_AND_RESET, RECOVER_IMEX) and HW_SUSPECTED for the
 * catalog's repetition workflows of XID 13 and 31.
 */
const BUCKETS: Readonly<Record<string, BucketMeaning>> = Object.freeze({
  IGNORE: { severity: 'info', action: 'No action needed', persistence: 'lookback' },
  'IGNORE (sympathetic)': { severity: 'info', action: 'No action: a side effect of another XID; act on that one', persistence: 'lookback' },
  SYMPATHETIC_REPORT_SOLO: {
    severity: 'warning',
    action: 'Act on the XID that caused it; report it to NVIDIA support if it appears alone',
    persistence: 'lookback',
  },
  RESTART_APP: { severity: 'warning', action: 'Restart the application; the GPU needs no reset', persistence: 'lookback' },
  CHECK_APP: {
    severity: 'warning',
    action: 'Debug the application (bad data or addresses passed to the GPU); restart it',
    persistence: 'lookback',
  },
  CHECK_UVM: { severity: 'warning', action: 'Reset the GPU if UVM or vGPU is in use; otherwise no action', persistence: 'lookback' },
  CHECK_MECHANICALS: { severity: 'warning', action: "Check the GPU's seating, power cables and connectors", persistence: 'lookback' },
  UPDATE_SWFW: { severity: 'warning', action: 'Update the GPU driver and firmware', persistence: 'lookback' },
  CONTACT_SUPPORT: {
    severity: 'warning',
    action: 'Collect nvidia-bug-report.sh output and contact NVIDIA support',
    persistence: 'lookback',
  },
  XID_154_EVAL: {
    severity: 'warning',
    action: 'Do what the XID 154 that follows says; without one, restart the application',
    persistence: 'lookback',
  },
  CHECK_NVLINK_FAILURE_FLOW: {
    severity: 'warning',
    action: 'Ignore it if an NVLink in the partition went down in the last 30 s; otherwise report it',
    persistence: 'lookback',
  },
  DRAIN_P2P: {
    severity: 'warning',
    action: 'Move peer-to-peer (NVLink) work off this GPU; single-GPU work may continue',
    persistence: 'lookback',
  },
  RECOVER_IMEX: { severity: 'warning', action: 'Recover the IMEX domain this GPU belongs to', persistence: 'lookback' },
  RESTART_FM: { severity: 'critical', action: 'Restart NVIDIA Fabric Manager; NVLink work fails until it runs', persistence: 'lookback' },
  RESTART_VM: { severity: 'critical', action: 'Restart the VM that owns the GPU', persistence: 'lookback' },
  HW_SUSPECTED: {
    severity: 'critical',
    action: 'The fault repeats across runs: drain the GPU and run field diagnostics',
    persistence: 'lookback',
  },
  RESET_GPU: { severity: 'critical', action: 'Drain the GPU and reset it (or reboot the node)', persistence: 'gpu-reset' },
  DRAIN_AND_RESET: { severity: 'critical', action: 'Drain all work from the GPU, then reset it', persistence: 'gpu-reset' },
  RESTART_BM: { severity: 'critical', action: 'Drain the node and reboot it; the GPU is unusable until then', persistence: 'reboot' },
});

/** What a bucket name means for severity, action and persistence. */
export interface XidBucketMeaning extends BucketMeaning {
  /** The bucket name as given (NVIDIA's spelling). */
  readonly bucket: string;
}

/** Buckets that only say "look at the message or the other XIDs" until a decode resolves them. */
const UNRESOLVED: BucketMeaning = {
  severity: 'warning',
  action: 'The message could not be decoded; see docs/xid.md and contact NVIDIA support if it recurs',
  persistence: 'lookback',
};

/** The bucket names with a fixed meaning (WORKFLOW_* and XID_154 need a decode). */
export const KNOWN_BUCKETS: readonly string[] = Object.freeze(Object.keys(BUCKETS));

/** Catalog spellings that name the same bucket. */
function canonical(bucket: string): string {
  if (bucket === 'CHECK_APP/CUDA') return 'CHECK_APP';
  if (bucket === 'REPORT_ISSUE') return 'CONTACT_SUPPORT';
  return bucket;
}

/** The meaning of a bucket; workflow buckets not yet decoded get a warning that says so. */
export function bucketMeaning(bucket: string): XidBucketMeaning {
  const meaning = BUCKETS[canonical(bucket)] ?? UNRESOLVED;
  return { bucket, ...meaning };
}

/** True for buckets whose meaning depends on the message or on other XIDs. */
export function needsDecode(bucket: string): boolean {
  return bucket.startsWith('WORKFLOW_') || bucket === 'XID_154';
}

/**
 * GPUs the node advertises but the agent does not see. A GPU can vanish from the bus (or not
 * come back after a reboot) without any XID: NVML then counts fewer devices and every GPU it
 * does see looks healthy. The Node's device-plugin resource and GFD label (advertised-gpus.ts)
 * still say how many there should be; fewer seen, none included, is `GpusMissing`.
 */
import type { NodeSnapshotDocument } from '../../agent/api/snapshot-document.js';
import type { GpuAdvertisement } from './advertised-gpus.js';
import { boundText, finding, type Finding } from './finding.js';
import type { ResolvedPolicy } from './policy.js';

/** How much of NVML's reason a GpusMissing message quotes (the counts must survive the bound). */
const MAX_REASON_IN_MESSAGE = 200;

/** The GPUs the agent sees; `why` is NVML's (or the no-GPU mode's) reason when it sees none for want of NVML. */
export interface SeenGpus {
  readonly count: number;
  readonly why?: string;
}

/** The GPUs a snapshot shows, or undefined when it does not list them (an xid-only request). */
export function seenGpus(snapshot: NodeSnapshotDocument): SeenGpus | undefined {
  const { nvml, agent } = snapshot;
  if (agent.mode === 'no-gpu') return { count: 0, why: agent.modeReason ?? (nvml.available ? 'no-GPU mode' : nvml.reason) };
  if (!nvml.available) return { count: 0, why: nvml.reason };
  // The agent collects GPUs for every check but xid (agent/snapshot-service.ts).
  if (!snapshot.checks.some((c) => c !== 'xid')) return undefined;
  return { count: snapshot.gpus.length };
}

function plural(n: number): string {
  return `${n} GPU${n === 1 ? '' : 's'}`;
}

/** "node advertises 8 GPUs (capacity nvidia.com/gpu, ...)": the sources that advertise the most. */
function claim(advertised: GpuAdvertisement, expected: number): string {
  const sources = advertised.counts.filter((c) => c.gpus === expected);
  const atLeast = sources.every((c) => c.migDevices !== undefined);
  const named = sources.map((c) => (c.migDevices === undefined ? c.source : `${c.source} counts ${c.migDevices} MIG devices`));
  return `node advertises ${atLeast ? 'at least ' : ''}${plural(expected)} (${named.join(', ')})`;
}

/** Indexes of seen GPUs whose MIG devices the device plugin may advertise as nvidia.com/gpu (strategy single, or no GFD label). */
function possibleMigDevices(snapshot: NodeSnapshotDocument, advertised: GpuAdvertisement): number[] {
  if (advertised.migStrategy === 'mixed' || advertised.migStrategy === 'none') return [];
  return snapshot.gpus.filter((g) => g.migMode?.enabled === true).map((g) => g.index);
}

/**
 * GpusMissing (thresholds.inventory.missingGpusSeverity) when the agent sees fewer GPUs than the
 * node advertises; AdvertisedGpusIgnored (info) for what the Node says that could not be used.
 */
export function checkMissingGpus(
  snapshot: NodeSnapshotDocument,
  advertised: GpuAdvertisement | undefined,
  policy: ResolvedPolicy,
): readonly Finding[] {
  if (advertised === undefined) return [];
  const found: Finding[] = [];
  if (advertised.ignored.length > 0) {
    const reasons = advertised.ignored.map((i) => `${i.source}: ${i.reason}`).join('; ');
    found.push(finding('inventory', 'info', 'AdvertisedGpusIgnored', `ignored what the node advertises about its GPUs (${reasons})`));
  }
  const expected = Math.max(0, ...advertised.counts.map((c) => c.gpus));
  const seen = seenGpus(snapshot);
  if (expected === 0 || seen === undefined || seen.count >= expected) return found;

  const said = claim(advertised, expected);
  const mig = possibleMigDevices(snapshot, advertised);
  if (mig.length > 0) {
    const why =
      `the agent sees ${seen.count} with MIG enabled (GPU ${mig.join(', ')}): ` + `the count may number MIG devices, so it is not compared`;
    found.push(finding('inventory', 'info', 'AdvertisedGpusIgnored', `${said} and ${why}`));
    return found;
  }
  const reason = boundText(seen.why ?? 'no GPUs found', MAX_REASON_IN_MESSAGE);
  const sees = seen.count === 0 ? `none (NVML: ${reason})` : String(seen.count);
  const action = 'a GPU may have fallen off the bus or failed to initialise: check nvidia-smi and the kernel log';
  found.push(
    finding('inventory', policy.thresholds.inventory.missingGpusSeverity, 'GpusMissing', `${said} but the agent sees ${sees}; ${action}`),
  );
  return found;
}

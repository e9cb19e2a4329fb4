/** NVLink state and error counters. */
import type { GpuNvLink, GpuSnapshot } from '../../../agent/nvml/types.js';
import { finding, type Finding } from '../finding.js';
import { FIXED_SEVERITIES, type ResolvedPolicy } from '../policy.js';
import type { NodeContext } from './types.js';

/** Links named in a message before the list is cut short. */
const MAX_LINKS_NAMED = 8;

/** Replay + recovery + CRC errors of one link (the CRD's errorCountWarning definition). */
export function linkErrorTotal(link: GpuNvLink): number {
  const e = link.errors;
  return (e.replay ?? 0) + (e.recovery ?? 0) + (e.crcFlit ?? 0) + (e.crcData ?? 0);
}

function listLinks(links: readonly number[]): string {
  const shown = links.slice(0, MAX_LINKS_NAMED).join(', ');
  return links.length > MAX_LINKS_NAMED ? `${shown} and ${links.length - MAX_LINKS_NAMED} more` : shown;
}

function peersHaveActiveLinks(gpu: GpuSnapshot, node: NodeContext): boolean {
  return node.gpus.some((peer) => peer.index !== gpu.index && (peer.nvlinks ?? []).some((l) => l.active));
}

/**
 * NvLinkDown (linkDownSeverity) when some links are inactive while others are active, or when
 * every link is inactive although other GPUs of the node have active links (skipped when MIG is
 * enabled on this GPU, where peer links are not used); NvLinkErrors (warning) when a link's error
 * total reaches errorCountWarning. A GPU with no links reported (no NVLink) gives nothing.
 */
export function checkNvLink(gpu: GpuSnapshot, policy: ResolvedPolicy, node: NodeContext): readonly Finding[] {
  const links = gpu.nvlinks ?? [];
  if (links.length === 0) return [];
  const t = policy.thresholds.nvlink;
  const found: Finding[] = [];
  const down = links.filter((l) => !l.active).map((l) => l.link);
  const active = links.length - down.length;
  if (down.length > 0 && active > 0) {
    found.push(
      finding(
        'nvlink',
        t.linkDownSeverity,
        'NvLinkDown',
        `${down.length} of ${links.length} NVLinks inactive (links ${listLinks(down)}); reset the GPU or check the link`,
      ),
    );
  } else if (active === 0 && gpu.migMode?.enabled !== true && peersHaveActiveLinks(gpu, node)) {
    found.push(
      finding(
        'nvlink',
        t.linkDownSeverity,
        'NvLinkDown',
        `All ${links.length} NVLinks inactive while other GPUs of the node have active links; reset the GPU or check the NVLink fabric`,
      ),
    );
  }
  const noisy = links.filter((l) => linkErrorTotal(l) >= t.errorCountWarning && linkErrorTotal(l) > 0);
  if (noisy.length > 0) {
    const worst = noisy.reduce((a, b) => (linkErrorTotal(b) > linkErrorTotal(a) ? b : a));
    found.push(
      finding(
        'nvlink',
        FIXED_SEVERITIES.nvlinkErrors,
        'NvLinkErrors',
        `${noisy.length} NVLink(s) at or over ${t.errorCountWarning} replay/recovery/CRC errors (links ` +
          `${listLinks(noisy.map((l) => l.link))}; worst link ${worst.link} with ${linkErrorTotal(worst)})`,
      ),
    );
  }
  return found;
}

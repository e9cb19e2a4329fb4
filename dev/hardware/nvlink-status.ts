/**
 * `nvidia-smi nvlink --status` as data. `-q -x` carries no NVLink state, so the link comparison
 * reads this text instead:
 *
 *   GPU 0: NVIDIA H100 PCIe (UUID: GPU-6968dfc2-...)
 *            Link 0: 26.562 GB/s
 *            Link 4: <inactive>
 */

/** One link as nvidia-smi prints it. */
export interface SmiNvLink {
  link: number;
  active: boolean;
  /** GB/s when printed. */
  speedGBps?: number;
}

/** One GPU's links. */
export interface SmiNvLinkGpu {
  index: number;
  name?: string;
  uuid?: string;
  links: SmiNvLink[];
}

const GPU_LINE = /^GPU (\d+): (.*?)(?: \(UUID: ((?:GPU|MIG)-[^)\s]+)\))?\s*$/;
const LINK_LINE = /^\s+Link (\d+): (.*?)\s*$/;
const SPEED = /^(\d+(?:\.\d+)?) GB\/s$/;
/** NVLink indices stay below this (the snapshot schema's bound). */
const MAX_LINKS = 64;
/** No node has more GPUs than this (the snapshot schema's bound). */
const MAX_GPUS = 64;

/** Parses the status text; lines it does not know are ignored (nvidia-smi adds notes on some drivers). */
export function parseNvLinkStatus(text: string): SmiNvLinkGpu[] {
  const gpus: SmiNvLinkGpu[] = [];
  for (const line of text.split('\n')) {
    const g = GPU_LINE.exec(line);
    if (g !== null) {
      if (gpus.length >= MAX_GPUS) break;
      const [, index = '0', name = '', uuid] = g;
      gpus.push({ index: Number(index), ...(name !== '' ? { name } : {}), ...(uuid !== undefined ? { uuid } : {}), links: [] });
      continue;
    }
    const l = LINK_LINE.exec(line);
    const current = gpus.at(-1);
    if (l === null || current === undefined) continue;
    const [, link = '0', rest = ''] = l;
    if (Number(link) >= MAX_LINKS) continue;
    const speed = SPEED.exec(rest);
    if (speed !== null) current.links.push({ link: Number(link), active: Number(speed[1]) > 0, speedGBps: Number(speed[1]) });
    else if (/inactive/i.test(rest)) current.links.push({ link: Number(link), active: false });
  }
  return gpus;
}

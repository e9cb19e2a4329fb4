/**
 * A census of what a real node leaves on the machine, taken before start and after stop, so a
 * test can assert that nothing is left: node processes, mounts, network links, iptables rules,
 * cgroups and netns/shim files.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { FIXED_NODE_DIRS } from './real-node.js';
import {
  cgroupHierarchies,
  iptablesSize,
  iptablesSnapshot,
  listIfPresent,
  mountPoints,
  readIfPresent,
  sh,
  type IptablesSnapshot,
} from './host.js';

/** Names (as /proc/<pid>/comm shows them: 15 characters at most) of the node's processes. */
export const NODE_PROCESS_NAMES: ReadonlySet<string> = new Set([
  'containerd',
  'containerd-shim', // containerd-shim-runc-v2, truncated
  'kubelet',
  'kube-proxy',
  'kube-scheduler',
  'kube-controller', // kube-controller-manager, truncated
  'pause',
]);

/** Mount points a node makes: under its directory (gpudiag-node-*), network namespaces, kubelet and containerd paths. */
const NODE_MOUNT = /\/gpudiag-node-|\/netns\/|\/kubelet\/|\/containerd\//;
/** Chains the kubelet, kube-proxy and the CNI plugins create. */
const NODE_CHAIN = /^(KUBE-|CNI-)/;
/** cgroups the kubelet makes (and the node's own root). */
const NODE_CGROUP = /^(kubepods|gpudiag-node-)/;

/**
 * One census of what a node makes. Counts are machine-wide but of node-shaped things only
 * (other work on the machine, e.g. Buildah's overlays or Podman's cgroups, does not count);
 * `machine` holds the raw totals, for the record.
 */
export interface HostCensus {
  /** Processes named like a node's (NODE_PROCESS_NAMES). */
  processes: number;
  /** Mounts under a node's directory, network namespaces, kubelet or containerd paths. */
  mounts: number;
  /** Links named gpudiag-* and every veth (the pods' host ends). */
  links: number;
  /** iptables and ip6tables chains named KUBE-… or CNI-… and rules in or jumping to one, every table. */
  iptablesRules: number;
  /** cgroups named kubepods* or gpudiag-node-*, in any hierarchy. */
  cgroups: number;
  /** Files and directories in and under the paths the components use whatever they are told (FIXED_NODE_DIRS), those included. */
  runtimeFiles: number;
  machine: { mounts: number; links: number; iptablesRules: number };
}

async function countProcesses(): Promise<number> {
  let n = 0;
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const comm = ((await readIfPresent(`/proc/${entry}/comm`)) ?? '').trim();
    if (NODE_PROCESS_NAMES.has(comm)) n++;
  }
  return n;
}

async function countCgroups(): Promise<number> {
  let n = 0;
  const walk = async (dir: string): Promise<void> => {
    const entries = (await listIfPresent(dir)) ?? [];
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      if (NODE_CGROUP.test(e.name)) n++;
      await walk(path.join(dir, e.name));
    }
  };
  for (const h of await cgroupHierarchies()) await walk(h);
  return n;
}

async function countFiles(roots: readonly string[]): Promise<number> {
  const seen = new Set<string>();
  const walk = async (p: string): Promise<void> => {
    const entries = await listIfPresent(p);
    if (entries === undefined) return;
    seen.add(p);
    for (const e of entries) {
      const child = path.join(p, e.name);
      seen.add(child);
      if (e.isDirectory()) await walk(child);
    }
  };
  for (const r of roots) await walk(r);
  return seen.size;
}

function nodeRules(snapshot: IptablesSnapshot): number {
  let n = 0;
  for (const lines of snapshot.values()) {
    for (const l of lines) {
      const chain = l.startsWith(':') ? (l.slice(1).split(' ')[0] ?? '') : (l.split(' ')[1] ?? '');
      const target = / -[jg] (\S+)/.exec(l)?.[1] ?? '';
      if (NODE_CHAIN.test(chain) || NODE_CHAIN.test(target)) n++;
    }
  }
  return n;
}

/** Counts what a node could leave behind. */
export async function hostCensus(): Promise<HostCensus> {
  const links = (await sh('ip', ['-o', 'link', 'show'])).split('\n').filter((l) => l !== '');
  const nodeLinks = links.filter((l) => / (gpudiag-[^:@]*|veth[^:@]*)[@:]/.test(l));
  const tables = [await iptablesSnapshot('iptables'), await iptablesSnapshot('ip6tables')];
  const mounts = await mountPoints();
  return {
    processes: await countProcesses(),
    mounts: mounts.filter((m) => NODE_MOUNT.test(m)).length,
    links: nodeLinks.length,
    iptablesRules: tables.reduce((n, t) => n + nodeRules(t), 0),
    cgroups: await countCgroups(),
    runtimeFiles: await countFiles([...FIXED_NODE_DIRS, '/usr/libexec/kubernetes']),
    machine: { mounts: mounts.length, links: links.length, iptablesRules: tables.reduce((n, t) => n + iptablesSize(t), 0) },
  };
}

/**
 * What a real node changes on this machine, and how each change is undone: network links, iptables
 * rules, mounts, cgroups, kernel settings and leftover processes. Every function here touches only
 * what it is told about (a bridge name, a directory, a cgroup name, a snapshot taken before).
 */
import { execFile } from 'node:child_process';
import type { Dirent } from 'node:fs';
import { readdir, readFile, readlink, rmdir, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** Runs a command; rejects with its stderr in the message. */
export async function sh(command: string, args: readonly string[], input?: string): Promise<string> {
  const child = execFileAsync(command, [...args], { maxBuffer: 64 << 20, timeout: 60_000 });
  if (input !== undefined) {
    child.child.stdin?.end(input);
  }
  try {
    return (await child).stdout;
  } catch (err) {
    const stderr = ((err as { stderr?: string }).stderr ?? '').trim();
    throw new Error(`${command} ${args.join(' ')} failed${stderr === '' ? '' : `: ${stderr}`}`, { cause: err });
  }
}

/** Whether an error only says the thing is not there (any more): no such file, the process exited. */
export function isGone(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ESRCH' || code === 'ENOTDIR';
}

/** A file's text, or undefined when it (or its process) is gone. */
export async function readIfPresent(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if (isGone(err)) return undefined;
    throw err;
  }
}

/** A directory's entries, or undefined when it does not exist. */
export async function listIfPresent(dir: string): Promise<Dirent[] | undefined> {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (isGone(err)) return undefined;
    throw err;
  }
}

/** A symlink's target, or undefined when it is gone or not a link. */
export async function linkTargetIfPresent(link: string): Promise<string | undefined> {
  try {
    return await readlink(link);
  } catch (err) {
    if (isGone(err) || (err as NodeJS.ErrnoException).code === 'EINVAL') return undefined;
    throw err;
  }
}

// --- kernel settings -----------------------------------------------------------------------------

/**
 * Settings the node needs (forwarding, bridged traffic through iptables) or that the kubelet sets
 * on start (it "protects kernel defaults" by writing them); all are put back on stop.
 */
export const TOUCHED_SYSCTLS = [
  'net/ipv4/ip_forward',
  'net/bridge/bridge-nf-call-iptables',
  'net/bridge/bridge-nf-call-ip6tables',
  'net/ipv4/conf/all/route_localnet',
  'vm/overcommit_memory',
  'vm/panic_on_oom',
  'kernel/panic',
  'kernel/panic_on_oops',
  'kernel/keys/root_maxkeys',
  'kernel/keys/root_maxbytes',
] as const;

/** Reads the given sysctls (those this kernel lacks are left out). */
export async function readSysctls(names: readonly string[]): Promise<Map<string, string>> {
  const values = new Map<string, string>();
  for (const name of names) {
    try {
      values.set(name, (await readFile(path.join('/proc/sys', name), 'utf8')).trim());
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return values;
}

/** Writes sysctls back (those already equal are skipped). */
export async function writeSysctls(values: ReadonlyMap<string, string>): Promise<void> {
  const now = await readSysctls([...values.keys()]);
  for (const [name, value] of values) {
    if (now.get(name) !== value) await writeFile(path.join('/proc/sys', name), `${value}\n`);
  }
}

// --- links ---------------------------------------------------------------------------------------

/** Creates a bridge with an address (the node's IP and the pods' gateway) and brings it up. */
export async function createBridge(name: string, addressCidr: string): Promise<void> {
  await sh('ip', ['link', 'add', name, 'type', 'bridge']);
  await sh('ip', ['addr', 'add', addressCidr, 'dev', name]);
  await sh('ip', ['link', 'set', name, 'up']);
}

/** Whether a link of this name exists. */
export async function linkExists(name: string): Promise<boolean> {
  const out = await sh('ip', ['-o', 'link', 'show']);
  return out.split('\n').some((line) => line.split(':')[1]?.trim().split('@')[0] === name);
}

/** Deletes the bridge and every link enslaved to it (the pods' host-side veths). */
export async function deleteBridge(name: string): Promise<void> {
  if (!(await linkExists(name))) return;
  const enslaved = await sh('ip', ['-o', 'link', 'show', 'master', name]);
  for (const line of enslaved.split('\n')) {
    const veth = line.split(':')[1]?.trim().split('@')[0];
    if (veth === undefined || veth === '') continue;
    try {
      await sh('ip', ['link', 'delete', veth]);
    } catch (err) {
      // A veth goes with its peer's network namespace: already gone is what we want.
      if (!/Cannot find device/.test((err as Error).message)) throw err;
    }
  }
  await sh('ip', ['link', 'delete', name]);
}

// --- iptables ------------------------------------------------------------------------------------

/** `iptables-save` output per table, without counters and comments. */
export type IptablesSnapshot = Map<string, string[]>;

const IPTABLES_TABLES = ['filter', 'nat', 'mangle', 'raw'] as const;
/** Chains the kubelet, kube-proxy and the CNI plugins create; rules are only removed if they touch one. */
const NODE_CHAIN = /^(KUBE-|CNI-)/;

/** Takes a snapshot of one family's rules (`iptables` or `ip6tables`). */
export async function iptablesSnapshot(binary: 'iptables' | 'ip6tables'): Promise<IptablesSnapshot> {
  const snapshot: IptablesSnapshot = new Map();
  for (const table of IPTABLES_TABLES) {
    let out: string;
    try {
      out = await sh(`${binary}-save`, ['-t', table]);
    } catch (err) {
      // A table this kernel lacks holds nothing of ours.
      if (!/does not exist|not found/i.test((err as Error).message)) throw err;
      out = '';
    }
    snapshot.set(
      table,
      out
        .split('\n')
        .filter((l) => l.startsWith('-A ') || l.startsWith(':'))
        .map((l) => (l.startsWith(':') ? l.replace(/ \[\d+:\d+\]$/, '') : l)),
    );
  }
  return snapshot;
}

/** The number of chains and rules in a snapshot. */
export function iptablesSize(snapshot: IptablesSnapshot): number {
  let n = 0;
  for (const lines of snapshot.values()) n += lines.length;
  return n;
}

/**
 * Removes the node's rules and chains added since `before`: rules in or jumping to a KUBE-/CNI-
 * chain, then those chains (flushed first, since they refer to each other). Rules anyone else
 * added meanwhile stay.
 */
export async function iptablesRestore(binary: 'iptables' | 'ip6tables', before: IptablesSnapshot): Promise<void> {
  const after = await iptablesSnapshot(binary);
  for (const table of IPTABLES_TABLES) {
    const old = new Set(before.get(table) ?? []);
    const added = (after.get(table) ?? []).filter((l) => !old.has(l));
    const chains = added
      .filter((l) => l.startsWith(':'))
      .map((l) => l.slice(1).split(' ')[0] ?? '')
      .filter((c) => NODE_CHAIN.test(c));
    const rules = added.filter((l) => {
      if (!l.startsWith('-A ')) return false;
      const chain = l.split(' ')[1] ?? '';
      const target = / -[jg] (\S+)/.exec(l)?.[1] ?? '';
      return NODE_CHAIN.test(chain) || NODE_CHAIN.test(target);
    });
    // Rules in the node's own chains go with the flush; rules in built-in chains are deleted one by one.
    const deletions = rules.filter((l) => !chains.includes(l.split(' ')[1] ?? '')).map((l) => `-D ${l.slice(3)}`);
    if (deletions.length === 0 && chains.length === 0) continue;
    const script = [`*${table}`, ...deletions, ...chains.map((c) => `-F ${c}`), ...chains.map((c) => `-X ${c}`), 'COMMIT', ''].join('\n');
    await sh(`${binary}-restore`, ['--noflush'], script);
  }
}

// --- mounts --------------------------------------------------------------------------------------

/** Mount points from /proc/self/mountinfo (octal escapes decoded). */
export async function mountPoints(): Promise<string[]> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  return info
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => (l.split(' ')[4] ?? '').replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))));
}

/** Unmounts everything at or under `dir`, deepest first (lazily when busy). */
export async function unmountUnder(dir: string): Promise<void> {
  const failures = new Map<string, string>();
  for (let round = 0; round < 5; round++) {
    const mine = (await mountPoints()).filter((m) => m === dir || m.startsWith(`${dir}/`)).sort((a, b) => b.length - a.length);
    if (mine.length === 0) return;
    for (const m of mine) {
      try {
        await sh('umount', [m]);
      } catch {
        // Busy: detach it now, the kernel frees it when its last user goes.
        await sh('umount', ['-l', m]).then(undefined, (err: unknown) => failures.set(m, (err as Error).message));
      }
    }
  }
  const left = (await mountPoints()).filter((m) => m === dir || m.startsWith(`${dir}/`));
  if (left.length > 0) throw new Error(`cannot unmount ${left.map((m) => `${m} (${failures.get(m) ?? 'still mounted'})`).join(', ')}`);
}

// --- cgroups -------------------------------------------------------------------------------------

/** The cgroup v1 hierarchies mounted under /sys/fs/cgroup (this VM is hybrid: v1 plus `unified`). */
export async function cgroupHierarchies(): Promise<string[]> {
  const mounts = await readFile('/proc/self/mountinfo', 'utf8');
  return mounts
    .split('\n')
    .filter((l) => / - cgroup2? /.test(l))
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m.startsWith('/sys/fs/cgroup/'));
}

/** Creates `/<name>` in every hierarchy (the kubelet's cgroupRoot must exist), seeding cpuset. */
export async function createCgroupRoot(name: string): Promise<void> {
  for (const h of await cgroupHierarchies()) {
    await mkdir(path.join(h, name), { recursive: true });
    if (path.basename(h) === 'cpuset') {
      for (const f of ['cpuset.cpus', 'cpuset.mems']) await writeFile(path.join(h, name, f), await readFile(path.join(h, f), 'utf8'));
    }
  }
}

/** The entries of `dir`, or undefined when it does not exist (a cgroup already gone). */
async function entriesIfPresent(dir: string): Promise<Dirent[] | undefined> {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** The PIDs of every process in `/<name>` or below, in any hierarchy. */
export async function cgroupPids(name: string): Promise<number[]> {
  const pids = new Set<number>();
  const walk = async (dir: string): Promise<void> => {
    const entries = await entriesIfPresent(dir);
    if (entries === undefined) return;
    const procs = (await readIfPresent(path.join(dir, 'cgroup.procs'))) ?? '';
    for (const p of procs.split('\n')) if (p !== '') pids.add(Number(p));
    for (const e of entries) if (e.isDirectory()) await walk(path.join(dir, e.name));
  };
  for (const h of await cgroupHierarchies()) await walk(path.join(h, name));
  return [...pids];
}

/** Removes `/<name>` and every cgroup below it, leaves first (they must hold no process). */
export async function removeCgroupRoot(name: string): Promise<void> {
  const remove = async (dir: string): Promise<void> => {
    const entries = await entriesIfPresent(dir);
    if (entries === undefined) return;
    for (const e of entries) if (e.isDirectory()) await remove(path.join(dir, e.name));
    await rmdir(dir);
  };
  for (const h of await cgroupHierarchies()) await remove(path.join(h, name));
}

// --- processes -----------------------------------------------------------------------------------

/** PIDs whose command line contains `needle` (e.g. the containerd socket the shims are told). */
export async function pidsWithArgument(needle: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = (await readIfPresent(`/proc/${entry}/cmdline`)) ?? '';
    if (cmdline.split('\0').includes(needle)) found.push(Number(entry));
  }
  return found;
}

/** SIGKILLs the given processes and waits until they are gone. */
export async function killAndWait(pids: readonly number[], timeoutMs = 10_000): Promise<void> {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  }
  const deadline = Date.now() + timeoutMs;
  for (const pid of pids) {
    while (Date.now() < deadline) {
      const stat = (await readIfPresent(`/proc/${pid}/stat`)) ?? '';
      // Gone, or a zombie its (foreign) parent has yet to reap: it holds nothing any more.
      if (stat === '' || / Z /.test(stat.slice(stat.lastIndexOf(')')))) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

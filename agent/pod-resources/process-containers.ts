/**
 * Maps GPU processes (NVML's pids) to containers through `<procRoot>/<pid>/cgroup`. The pids
 * are the host's: the agent needs the host's /proc (hostPID, or the host's /proc mounted and
 * --proc-root pointing at it). A process that has ended, or whose file cannot be read, is
 * simply not mapped.
 */
import { open } from 'node:fs/promises';
import path from 'node:path';
import { containerOfCgroupFile, type ProcessContainer } from './cgroup.js';

/** A cgroup file is a few hundred bytes (v1: one line per hierarchy); more is not one. */
const MAX_CGROUP_FILE_BYTES = 16 * 1024;
/** Files read at once. */
const CONCURRENCY = 16;

/** The first MAX_CGROUP_FILE_BYTES of a file. */
async function readHead(file: string): Promise<string> {
  const handle = await open(file, 'r');
  try {
    const buf = Buffer.alloc(MAX_CGROUP_FILE_BYTES);
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
    return buf.toString('utf8', 0, bytesRead);
  } finally {
    await handle.close();
  }
}

/** What mapping the pids found. */
export interface ProcessContainers {
  containers: Map<number, ProcessContainer>;
  /** Pids whose cgroup file could not be read (ended, or not in this /proc: no host PID namespace). */
  unreadable: number;
}

/** The containers of `pids` (positive integers only; others are skipped). */
export async function containersOfPids(procRoot: string, pids: readonly number[]): Promise<ProcessContainers> {
  const containers = new Map<number, ProcessContainer>();
  let unreadable = 0;
  const wanted = [...new Set(pids.filter((pid) => Number.isSafeInteger(pid) && pid > 0))];
  for (let i = 0; i < wanted.length; i += CONCURRENCY) {
    await Promise.all(
      wanted.slice(i, i + CONCURRENCY).map(async (pid) => {
        let text: string;
        try {
          text = await readHead(path.join(procRoot, String(pid), 'cgroup'));
        } catch (err) {
          // ENOENT/ESRCH: the process ended between NVML's list and this read; anything else
          // (EACCES) leaves it unmapped too. Counted, so an empty map is explained.
          if (typeof (err as { code?: unknown }).code !== 'string') throw err;
          unreadable += 1;
          return;
        }
        const container = containerOfCgroupFile(text);
        if (container !== undefined) containers.set(pid, container);
      }),
    );
  }
  return { containers, unreadable };
}

/** Finding processes by command line, to prove nothing was left behind. */
import { readdir, readFile } from 'node:fs/promises';

/** A process that exited between readdir and readFile reads as empty; any other failure is real. */
function vanished(err: NodeJS.ErrnoException): string {
  if (err.code === 'ENOENT' || err.code === 'ESRCH') return '';
  throw err;
}

/** PIDs of live processes whose command line contains the given text. */
export async function processesMentioning(text: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(vanished);
    const state = await readFile(`/proc/${entry}/stat`, 'utf8').catch(vanished);
    // Zombies (state Z) have exited; they only wait for their parent to reap them.
    if (cmdline.replace(/\0/g, ' ').includes(text) && !/^\d+ \(.*\) Z/.test(state)) pids.push(Number(entry));
  }
  return pids;
}

/** Polls until no process mentions the text, or the timeout passes; returns the survivors. */
export async function waitForNoProcesses(text: string, timeoutMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pids = await processesMentioning(text);
    if (pids.length === 0 || Date.now() > deadline) return pids;
    await new Promise((r) => setTimeout(r, 200));
  }
}

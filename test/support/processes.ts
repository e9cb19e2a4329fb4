/** Starting `gpudiag` processes for tests, and finding processes by command line to prove nothing was left behind. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { repoRoot } from '../../dev/control-plane/binaries.js';

/** A `gpudiag` process a test started: its output is collected and its exit awaited. */
export interface GpudiagProcess {
  child: ChildProcess;
  /** Resolves with the exit code, or the signal's name. */
  exited: Promise<number | string>;
  /** The exit code or signal once it exited; undefined while it runs. */
  exitCode(): number | string | undefined;
  /** stdout and stderr so far, interleaved. */
  output(): string;
}

/** Starts `node <nodeFlags> bin/gpudiag.js <args>` with `env` (default: this process's). */
export function spawnGpudiag(
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
  nodeFlags: readonly string[] = [],
): GpudiagProcess {
  let output = '';
  let exitCode: number | string | undefined;
  const child = spawn(process.execPath, [...nodeFlags, path.join(repoRoot, 'bin', 'gpudiag.js'), ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => {
      exitCode = code ?? signal ?? 'unknown';
      resolve(exitCode);
    }),
  );
  return { child, exited, exitCode: () => exitCode, output: () => output };
}

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

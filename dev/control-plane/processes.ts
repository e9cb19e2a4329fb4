/**
 * Child processes that never outlive their owner. Each child runs in its own process group
 * (so a terminal's Ctrl-C reaches only us, and we stop it in order), and a detached watchdog
 * kills every group if the owner dies without cleaning up (SIGKILL, crash).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';

/** A child process started in its own process group, with its output going to a log file. */
export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  /** Resolves with the exit code (or signal) once the process has exited. */
  readonly exited: Promise<string>;
  /** Sends SIGTERM to the whole group, then SIGKILL after graceMs; resolves when it has exited. */
  stop(graceMs?: number): Promise<void>;
}

/** Starts a command in its own process group, logging stdout and stderr to logFile. */
export async function startProcess(name: string, command: string, args: string[], logFile: string): Promise<ManagedProcess> {
  const log: WriteStream = createWriteStream(logFile, { flags: 'a' });
  await new Promise<void>((resolve, reject) => {
    log.once('open', () => resolve());
    log.once('error', reject);
  });
  const child: ChildProcess = spawn(command, args, { detached: true, stdio: ['ignore', log, log] });
  const pid = await new Promise<number>((resolve, reject) => {
    child.once('spawn', () => resolve(child.pid ?? -1));
    child.once('error', (err) => reject(new Error(`cannot start ${name} (${command})`, { cause: err })));
  });
  let exitDescription: string | undefined;
  const exited = new Promise<string>((resolve) => {
    child.once('exit', (code, signal) => {
      exitDescription = signal !== null ? `signal ${signal}` : `exit code ${code ?? 'unknown'}`;
      log.end();
      resolve(exitDescription);
    });
  });
  const signalGroup = (signal: NodeJS.Signals): void => {
    try {
      process.kill(-pid, signal);
    } catch (err) {
      // ESRCH: the group is already gone, which is what we want.
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  };
  return {
    name,
    pid,
    logFile,
    exited,
    async stop(graceMs = 10_000): Promise<void> {
      if (exitDescription !== undefined) {
        signalGroup('SIGKILL'); // reap any grandchildren left in the group
        return;
      }
      signalGroup('SIGTERM');
      const timer = setTimeout(() => signalGroup('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
      signalGroup('SIGKILL');
    },
  };
}

/**
 * Starts a detached watchdog that kills the given process groups once `ownerPid` has exited.
 * Returns a function that stops the watchdog (call it after a clean shutdown).
 */
export function startOrphanWatchdog(ownerPid: number, groupPids: readonly number[]): () => void {
  const groups = groupPids.map((p) => `-${p}`).join(' ');
  const script =
    `while kill -0 ${ownerPid} 2>/dev/null; do sleep 1; done; kill -TERM ${groups} 2>/dev/null; ` +
    `sleep 5; kill -KILL ${groups} 2>/dev/null; exit 0`;
  const watchdog = spawn('/bin/sh', ['-c', script], { detached: true, stdio: 'ignore' });
  watchdog.unref();
  return () => {
    if (watchdog.pid !== undefined) {
      try {
        process.kill(watchdog.pid, 'SIGKILL');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
      }
    }
  };
}

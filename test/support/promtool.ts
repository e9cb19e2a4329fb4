/** The pinned promtool, located like helm: dev/tools/build-promtool.sh prints its path (and builds it once). */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '../../dev/control-plane/binaries.js';

const run = promisify(execFile);

/** The promtool binary; rejects, naming the script, when it is not built and cannot be. */
export async function locatePromtool(): Promise<string> {
  const script = path.join(repoRoot, 'dev', 'tools', 'build-promtool.sh');
  try {
    // Cached by version; a cold build takes ~7 minutes on two cores (CI builds it before the tests).
    const { stdout } = await run('bash', [script], { timeout: 15 * 60_000 });
    const binary = stdout.trim().split('\n').at(-1) ?? '';
    if (binary === '') throw new Error('the script printed no path');
    return binary;
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    throw new Error(`promtool is not built: run \`bash dev/tools/build-promtool.sh\` (it failed: ${detail.slice(0, 2000)})`, {
      cause: err,
    });
  }
}

/** Runs promtool; resolves with its output, rejects with it. */
export async function promtool(binary: string, ...args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await run(binary, args, { cwd: repoRoot, maxBuffer: 16 << 20 });
    return stdout + stderr;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    throw new Error(`promtool ${args.join(' ')} failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`, { cause: err });
  }
}

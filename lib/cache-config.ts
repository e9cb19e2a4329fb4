/** Where gpudiag keeps build caches (control-plane binaries, the fake NVML library): one setting. */
import { homedir } from 'node:os';
import { join } from 'node:path';

/** `GPUDIAG_CACHE_DIR`, else `~/.cache/gpudiag` (dev/control-plane/build.sh uses the same rule). */
export function gpudiagCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const configured = env['GPUDIAG_CACHE_DIR'];
  return configured !== undefined && configured !== '' ? configured : join(homedir(), '.cache', 'gpudiag');
}

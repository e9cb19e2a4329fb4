/**
 * koffi, loaded on first use: its native module costs about 4 MiB of RSS, and the agent's main
 * thread (NVML runs on the NVML threads) and the operator need it only on a hung shutdown.
 */
import { createRequire } from 'node:module';
import type * as Koffi from 'koffi';

let loaded: typeof Koffi | undefined;

/** The koffi module. */
export function koffi(): typeof Koffi {
  loaded ??= createRequire(import.meta.url)('koffi') as typeof Koffi;
  return loaded;
}

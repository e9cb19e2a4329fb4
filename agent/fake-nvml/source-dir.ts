/** Locates the fake NVML sources (C file, scenarios) from either the TS tree or its dist/ copy. */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const C_SOURCE = 'fake_nvml.c';

/** Directory holding fake_nvml.c and scenarios/ (tsc does not copy them into dist/). */
export function fakeNvmlSourceDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  // dist/agent/fake-nvml → <repo>/agent/fake-nvml
  const candidates = [here, resolve(here, '..', '..', '..', 'agent', 'fake-nvml')];
  const found = candidates.find((dir) => existsSync(join(dir, C_SOURCE)));
  if (found === undefined) {
    throw new Error(`fake NVML sources not found; looked for ${C_SOURCE} in ${candidates.join(', ')}`);
  }
  return found;
}

/** Path of the fake library's C source. */
export function fakeNvmlCSourcePath(): string {
  return join(fakeNvmlSourceDir(), C_SOURCE);
}

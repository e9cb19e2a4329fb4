/** Compiles the fake libnvidia-ml.so.1, one build per driver era, into a content-addressed cache directory. */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { access, mkdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fakeNvmlCSourcePath } from './source-dir.js';
import { FAKE_NVML_ERAS, fakeNvmlEraSpec, NEWEST_FAKE_NVML_ERA, type FakeNvmlEra } from './eras.js';
import { gpudiagCacheDir } from '../../lib/cache-config.js';

const execFileAsync = promisify(execFile);

/** Library file name, identical to the real driver's so loaders treat it the same way. */
export const FAKE_NVML_LIBRARY_NAME = 'libnvidia-ml.so.1';

/** Options for {@link buildFakeNvml}. */
export interface BuildFakeNvmlOptions {
  /** Driver era to build (see eras.ts); default the newest. */
  era?: FakeNvmlEra;
  /** Root cache directory; defaults to env GPUDIAG_CACHE_DIR, then ~/.cache/gpudiag. */
  cacheDir?: string;
}

const COMPILER = 'gcc';
const BASE_FLAGS = ['-shared', '-fPIC', '-O2', '-pthread', '-fvisibility=hidden', '-Wall', '-Wextra', '-Werror'];
const HASH_PREFIX_LENGTH = 16;
const BUILD_TIMEOUT_MS = 120_000;

const inflightBuilds = new Map<string, Promise<string>>();

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** The compiler flags of one era's build (the era's name reaches the C code as GPUDIAG_FAKE_ERA). */
export function fakeNvmlBuildFlags(era: FakeNvmlEra): string[] {
  return [...BASE_FLAGS, `-DGPUDIAG_FAKE_ERA="${era}"`, ...fakeNvmlEraSpec(era).defines.map((d) => `-D${d}`)];
}

/** Builds (or reuses) the fake library of one era and returns the absolute path of the .so. */
export async function buildFakeNvml(options: BuildFakeNvmlOptions = {}): Promise<string> {
  const era = options.era ?? NEWEST_FAKE_NVML_ERA;
  const source = fakeNvmlCSourcePath();
  const text = await readFile(source);
  const flags = fakeNvmlBuildFlags(era);
  const digest = createHash('sha256').update(text).update(flags.join(' ')).digest('hex').slice(0, HASH_PREFIX_LENGTH);
  const root = options.cacheDir ?? gpudiagCacheDir();
  const dir = join(root, 'fake-nvml', `${digest}-${era}`);
  const target = join(dir, FAKE_NVML_LIBRARY_NAME);

  const pending = inflightBuilds.get(target);
  if (pending !== undefined) return pending;
  const build = (async (): Promise<string> => {
    if (await exists(target)) return target;
    await mkdir(dir, { recursive: true });
    // other processes (jest workers) may build concurrently: compile privately, publish by rename
    const temp = `${target}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      await execFileAsync(COMPILER, [...flags, '-o', temp, source], { timeout: BUILD_TIMEOUT_MS });
      await rename(temp, target);
    } catch (err) {
      await rm(temp, { force: true });
      throw new Error(`failed to compile fake NVML (${era}) from ${source}`, { cause: err });
    }
    return target;
  })();
  inflightBuilds.set(target, build);
  try {
    return await build;
  } finally {
    inflightBuilds.delete(target);
  }
}

/** Builds every era (CI does this once up front, so parallel test workers only read the cache). */
export async function buildAllFakeNvmlEras(options: Omit<BuildFakeNvmlOptions, 'era'> = {}): Promise<Map<FakeNvmlEra, string>> {
  const built = new Map<FakeNvmlEra, string>();
  for (const { era } of FAKE_NVML_ERAS) built.set(era, await buildFakeNvml({ ...options, era }));
  return built;
}

/**
 * The built images (dev/images/build.sh writes them as OCI archives): what is inside them, who
 * they run as, and that each entrypoint runs, with no cluster, under the restrictions the chart
 * puts on it. Runs with Podman (on runc: crun refuses this VM's hybrid cgroups). Not part of
 * `npm test`: `npm run test:images` builds the archives first.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { buildFakeNvml } from '../../agent/fake-nvml/build.js';
import { FakeNvmlController, fakeNvmlEraOf, loadScenario } from '../../agent/fake-nvml/scenario.js';
import { validateSnapshotDocument } from '../../agent/api/validate-snapshot.js';
import { repoRoot } from '../../dev/control-plane/binaries.js';
import { freePort } from '../../dev/control-plane/control-plane.js';

const ARCHIVE_DIR =
  process.env['GPUDIAG_IMAGES_DIR'] ??
  path.join(process.env['GPUDIAG_CACHE_DIR'] ?? path.join(os.homedir(), '.cache', 'gpudiag'), 'images', 'archives');
const PODMAN_GLOBAL = ['--runtime', 'runc', '--cgroup-manager', 'cgroupfs'];
/** Removed from the images on purpose (development only); the CLI's lazy import of it is the one dangling edge. */
const DEV_ONLY_MODULES = new Set(['dist/cli/commands/dev-up.js']);

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * `podman run` sets RLIMIT_NOFILE and RLIMIT_NPROC higher than this VM lets even root raise them
 * (runc: "error setting rlimit type 7: operation not permitted"; `--ulimit host` does not help).
 * What starts here: open files at the host's hard limit, processes at most pid_max (found by
 * trial: 32768 starts, 32769 does not, though the hard limit reads 96363).
 */
const [hardFiles, hardProcesses, pidMax] = execFileSync('bash', ['-c', 'ulimit -Hn; ulimit -Hu; cat /proc/sys/kernel/pid_max'], {
  encoding: 'utf8',
})
  .trim()
  .split('\n')
  .map(Number);
const processes = Math.min(hardProcesses ?? 4096, pidMax ?? 4096);
const RUN_LIMITS = ['--ulimit', `nofile=${hardFiles}:${hardFiles}`, '--ulimit', `nproc=${processes}:${processes}`];

function podman(args: readonly string[], timeoutMs = 60_000): Promise<Run> {
  const full = args[0] === 'run' ? ['run', ...RUN_LIMITS, ...args.slice(1)] : args;
  return new Promise((resolve, reject) => {
    const child = spawn('podman', [...PODMAN_GLOBAL, ...full], { stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const hint = 'podman and runc are needed: `dev/images/build.sh --smoke-tools` installs them';
    child.once('error', (err) => reject(new Error(`podman ${args.join(' ')}: ${err.message} (${hint})`, { cause: err })));
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function podmanOk(args: readonly string[], timeoutMs?: number): Promise<string> {
  const run = await podman(args, timeoutMs);
  if (run.code !== 0) throw new Error(`podman ${args.join(' ')} exited ${run.code}: ${run.stderr.trim()}`);
  return run.stdout.trim();
}

interface LoadedImage {
  ref: string;
  root: string;
  config: { User?: string; Entrypoint?: string[]; WorkingDir?: string; Env?: string[] };
}

/** Loads an archive into the local store and mounts the image's root read-only for inspection. */
async function loadImage(name: string): Promise<LoadedImage> {
  const archive = path.join(ARCHIVE_DIR, `${name}.oci.tar`);
  if (!existsSync(archive)) throw new Error(`${archive} is missing: run \`npm run images\` (dev/images/build.sh) first`);
  const loaded = await podmanOk(['load', '--quiet', '--input', archive], 180_000);
  const ref = /Loaded image(?:\(s\))?: *(\S+)/.exec(loaded)?.[1];
  if (ref === undefined) throw new Error(`podman load printed no image name: ${loaded}`);
  const [inspected] = JSON.parse(await podmanOk(['image', 'inspect', ref])) as { Config: LoadedImage['config'] }[];
  if (inspected === undefined) throw new Error(`podman image inspect ${ref} answered nothing`);
  const root = await podmanOk(['image', 'mount', ref]);
  return { ref, root, config: inspected.Config };
}

/** Every package directory under a node_modules tree, as package-lock.json keys (`node_modules/a/node_modules/@s/b`). */
async function packageKeys(root: string, rel = 'node_modules'): Promise<string[]> {
  const dir = path.join(root, rel);
  if (!existsSync(dir)) return [];
  const keys: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
    const names = entry.name.startsWith('@') ? (await readdir(path.join(dir, entry.name))).map((n) => `${entry.name}/${n}`) : [entry.name];
    for (const n of names) {
      const key = `${rel}/${n}`;
      keys.push(key, ...(await packageKeys(root, `${key}/node_modules`)));
    }
  }
  return keys;
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push(path.join(entry.parentPath, entry.name));
  }
  return out;
}

/**
 * Module specifiers a compiled file imports, statically or by a literal dynamic import, plus files it reads by
 * `new URL('<literal>', import.meta.url)`.
 */
function references(source: string): { imports: string[]; urls: string[] } {
  const imports = [
    ...source.matchAll(
      /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|^import\s+['"]([^'"]+)['"]/gm,
    ),
  ].map((m) => m[1] ?? m[2] ?? m[3] ?? '');
  const urls = [...source.matchAll(/new URL\(\s*['"](\.[^'"]+)['"]\s*,\s*import\.meta\.url\s*\)/g)].map((m) => m[1] ?? '');
  return { imports: imports.filter((s) => s !== ''), urls };
}

function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? specifier);
}

const lock = JSON.parse(readFileSync(path.join(repoRoot, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
const manifest = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };

const loaded = new Map<string, LoadedImage>();
const images = {
  get agent(): LoadedImage {
    return loadedImage('agent');
  },
  get operator(): LoadedImage {
    return loadedImage('operator');
  },
};

function loadedImage(name: string): LoadedImage {
  const image = loaded.get(name);
  if (image === undefined) throw new Error(`the ${name} image did not load (see beforeAll)`);
  return image;
}

beforeAll(async () => {
  for (const name of ['agent', 'operator']) loaded.set(name, await loadImage(name));
}, 300_000);

afterAll(async () => {
  for (const image of loaded.values()) await podman(['image', 'unmount', image.ref]);
});

describe.each(['agent', 'operator'] as const)('the %s image', (name) => {
  it('holds production dependencies only: no devDependency, no TypeScript source, no test, no development code', async () => {
    const { root } = images[name];
    const app = path.join(root, 'app');
    expect((await readdir(app)).sort()).toEqual(['agent', 'bin', 'dist', 'node_modules', 'package.json']);
    expect(await filesUnder(path.join(app, 'agent'))).toEqual([path.join(app, 'agent', 'api', 'snapshot.schema.json')]);

    const keys = await packageKeys(app);
    expect(keys.length).toBeGreaterThan(20);
    const unknown = keys.filter((k) => lock.packages[k] === undefined);
    const devOnly = keys.filter((k) => lock.packages[k]?.dev === true);
    expect({ unknown, devOnly }).toEqual({ unknown: [], devOnly: [] });
    const topLevel = new Set(keys.map((k) => k.slice('node_modules/'.length)));
    const shipped = [...Object.keys(manifest.devDependencies), 'typescript', 'jest', 'eslint'].filter((d) => topLevel.has(d));
    expect(shipped).toEqual([]);
    expect([...topLevel].filter((k) => k.startsWith('@types/'))).toEqual([]);

    const dist = await filesUnder(path.join(app, 'dist'));
    const rel = (f: string): string => path.relative(app, f);
    expect(dist.filter((f) => /\.(ts|map)$/.test(f) || /\.test\.js$/.test(f)).map(rel)).toEqual([]);
    expect((await readdir(path.join(app, 'dist'))).sort()).toEqual(['agent', 'api', 'cli', 'lib', 'operator']);
    expect(dist.filter((f) => /dist\/(agent\/fake-nvml|api\/codegen)\//.test(f)).map(rel)).toEqual([]);
  });

  it("keeps the build's registry and CA out: no secret, no npm setting in its environment or history", async () => {
    const { root, config, ref } = images[name];
    expect(existsSync(path.join(root, 'run', 'secrets'))).toBe(false);
    expect((config.Env ?? []).filter((e) => /^(NPM_CONFIG_|NODE_EXTRA_CA_CERTS=)/i.test(e))).toEqual([]);
    const history = await podmanOk(['history', '--no-trunc', '--format', '{{.CreatedBy}}', ref]);
    expect(history.split('\n').filter((line) => /NPM_CONFIG_REGISTRY|secrets\/ca/.test(line))).toEqual([]);
  });

  it('has every module and data file the compiled code loads', async () => {
    const { root } = images[name];
    const app = path.join(root, 'app');
    const missing: string[] = [];
    for (const file of (await filesUnder(path.join(app, 'dist'))).filter((f) => f.endsWith('.js'))) {
      const { imports, urls } = references(await readFile(file, 'utf8'));
      for (const spec of imports) {
        if (spec.startsWith('node:') || builtinModules.includes(spec)) continue;
        if (spec.startsWith('.')) {
          const target = path.relative(app, path.resolve(path.dirname(file), spec));
          if (!existsSync(path.join(app, target)) && !DEV_ONLY_MODULES.has(target))
            missing.push(`${path.relative(app, file)} imports ${spec}`);
        } else if (!existsSync(path.join(app, 'node_modules', packageName(spec)))) {
          missing.push(`${path.relative(app, file)} imports package ${spec}`);
        }
      }
      for (const url of urls) {
        if (!existsSync(path.resolve(path.dirname(file), url))) missing.push(`${path.relative(app, file)} reads ${url}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it("loads both components' module graphs and reads the snapshot schema and the XID data, on a read-only root", async () => {
    const script = [
      "await import('/app/dist/agent/agent.js');",
      "await import('/app/dist/operator/operator.js');",
      "await import('/app/dist/cli/commands/mcp.js');",
      "const { validateSnapshotDocument } = await import('/app/dist/agent/api/validate-snapshot.js');",
      'const v = validateSnapshotDocument({});',
      "if (v.ok) throw new Error('an empty document passed the schema');",
      "const koffi = (await import('koffi')).default;",
      "process.stdout.write('loaded ' + typeof koffi.load);",
    ].join('\n');
    const run = await podman([
      'run',
      '--rm',
      '--read-only',
      '--cap-drop',
      'ALL',
      '--network',
      'none',
      '--entrypoint',
      'node',
      images[name].ref,
      '--input-type=module',
      '-e',
      script,
    ]);
    expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: '' });
    expect(run.stdout).toBe('loaded function');
  });
});

describe('the operator image', () => {
  it('runs as a numeric non-root user, its entrypoint the operator', () => {
    const { config } = images.operator;
    expect(config.User).toBe('65532:65532');
    expect(config.Entrypoint).toEqual(['node', 'bin/gpudiag.js', 'operator']);
    expect(config.WorkingDir).toBe('/app');
  });

  it('starts on a read-only root with no capabilities and no privilege escalation', async () => {
    const flags = ['--rm', '--read-only', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges', '--network', 'none'];
    const help = await podman(['run', ...flags, images.operator.ref, '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('usage: gpudiag operator');
    const id = await podmanOk(['run', ...flags, '--entrypoint', 'id', images.operator.ref]);
    expect(id).toMatch(/^uid=65532(\(\d+\))? gid=65532(\(\d+\))? /);
    const write = await podman([
      'run',
      ...flags,
      '--entrypoint',
      'node',
      images.operator.ref,
      '-e',
      "require('fs').writeFileSync('/app/x', '')",
    ]);
    expect(write.stderr).toContain('EROFS');
  });
});

describe('the agent image', () => {
  const controller = new FakeNvmlController();
  let dir: string;
  let libraryPath: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'gpudiag-image-agent-'));
    await writeFile(
      path.join(dir, 'kmsg'),
      '4,7,5000000,-;NVRM: Xid (PCI:0000:3b:00): 48, pid=77, name=train, An uncorrectable double bit error (DBE) has been ' +
        'detected on GPU in the framebuffer at partition 6, subpartition 0.\n',
    );
    libraryPath = await buildFakeNvml({ era: fakeNvmlEraOf(await loadScenario('a100-dbe-remap-pending')) });
    await controller.load('a100-dbe-remap-pending');
  });
  afterAll(async () => {
    await controller.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it('runs as root (the kernel log needs CAP_SYSLOG), its entrypoint the agent with small semi-spaces', () => {
    const { config } = images.agent;
    expect(config.User).toBe('0');
    // small semi-spaces and an old-space cap: ~60 MiB less RSS after a burst of requests (Dockerfile.agent, bench/README.md)
    expect(config.Entrypoint).toEqual([
      'node',
      '--max-semi-space-size=1',
      '--max-old-space-size=128',
      '--expose-gc',
      'bin/gpudiag.js',
      'agent',
    ]);
  });

  it('serves a snapshot from a mounted NVML library on a read-only root with no capabilities, and exits 0 on SIGTERM', async () => {
    const port = await freePort();
    const stateFile = controller.env()['GPUDIAG_FAKE_NVML_STATE'] ?? '';
    const stateDir = path.dirname(stateFile);
    const name = `gpudiag-image-agent-${process.pid}`;
    await podmanOk([
      'run',
      '--detach',
      '--name',
      name,
      '--read-only',
      '--cap-drop',
      'ALL',
      '--network',
      'host',
      '--volume',
      `${libraryPath}:/usr/lib/nvidia/libnvidia-ml.so.1:ro`,
      '--volume',
      `${stateDir}:${stateDir}:ro`,
      '--env',
      `GPUDIAG_FAKE_NVML_STATE=${stateFile}`,
      '--volume',
      `${dir}/kmsg:/host/kmsg:ro`,
      '--volume',
      `${dir}:/var/lib/gpudiag`,
      images.agent.ref,
      '--node-name',
      'image-node',
      '--listen',
      `127.0.0.1:${port}`,
      '--auth',
      'none',
      '--nvml-library',
      '/usr/lib/nvidia/libnvidia-ml.so.1',
      '--nvml-no-fallback',
      '--kmsg-path',
      '/host/kmsg',
      '--cursor-file',
      '/var/lib/gpudiag/cursor.json',
      '--history-flush-ms',
      '100',
    ]);
    try {
      const url = `http://127.0.0.1:${port}`;
      const deadline = Date.now() + 60_000;
      while (
        !(await fetch(`${url}/readyz`).then(
          (r) => r.ok,
          () => false,
        ))
      ) {
        if (Date.now() > deadline) throw new Error(`agent not ready: ${(await podman(['logs', name])).stderr}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      const body: unknown = await (await fetch(`${url}/v1/snapshot?checks=ecc,xid&xidSince=2000-01-01T00:00:00Z`)).json();
      const checked = validateSnapshotDocument(body);
      if (!checked.ok) throw new Error(`snapshot fails the schema: ${checked.problems.join('; ')}`);
      expect(checked.document.node).toBe('image-node');
      expect(checked.document.gpus.length).toBeGreaterThan(0);
      expect(checked.document.xid?.events).toEqual(expect.arrayContaining([expect.objectContaining({ xid: 48, sources: ['kmsg'] })]));
      // The XID history is written to the mounted state directory, the only writable place.
      const deadlineHistory = Date.now() + 10_000;
      while (!existsSync(path.join(dir, 'cursor.json')) && Date.now() < deadlineHistory) await new Promise((r) => setTimeout(r, 100));
      expect((await stat(path.join(dir, 'cursor.json'))).size).toBeGreaterThan(0);
    } finally {
      await podman(['stop', '--time', '25', name], 60_000);
    }
    const exit = await podmanOk(['inspect', '--format', '{{.State.ExitCode}}', name]);
    const logs = await podman(['logs', name]);
    await podman(['rm', '--force', name]);
    expect(exit).toBe('0');
    expect(logs.stdout + logs.stderr).toContain('"message":"agent stopped"');
  }, 120_000);

  it('/dev/kmsg: readable with the device and CAP_SYSLOG alone; without CAP_SYSLOG the kernel refuses (dmesg_restrict)', async () => {
    const probe =
      "const fs = require('fs'); const fd = fs.openSync('/dev/kmsg', fs.constants.O_RDONLY | fs.constants.O_NONBLOCK); " +
      "const n = fs.readSync(fd, Buffer.alloc(8192)); process.stdout.write('read ' + (n > 0));";
    const base = [
      'run',
      '--rm',
      '--cap-drop',
      'ALL',
      '--device',
      '/dev/kmsg:/dev/kmsg:r',
      '--network',
      'none',
      '--read-only',
      '--entrypoint',
      'node',
    ];
    const withSyslog = await podman([...base, '--cap-add', 'SYSLOG', images.agent.ref, '-e', probe]);
    expect({ code: withSyslog.code, stdout: withSyslog.stdout }).toEqual({ code: 0, stdout: 'read true' });
    const restricted = (await readFile('/proc/sys/kernel/dmesg_restrict', 'utf8')).trim() === '1';
    const without = await podman([...base, images.agent.ref, '-e', probe]);
    if (restricted) expect(without.stderr).toContain('EPERM');
    else expect(without.code).toBe(0);
  });
});

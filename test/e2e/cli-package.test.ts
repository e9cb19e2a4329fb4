/**
 * The CLI as a user installs it: `npm pack` (its prepack writes the production build) of a copy
 * of the sources, `npm install -g --prefix <tmp>` of the tarball, and the installed `gpudiag`
 * run from a directory outside the repository: `--version`, `xid analyze` on a kernel-log
 * fixture, and an MCP session over stdio against the real control plane. The pack runs in a
 * copy because prepack replaces dist/, which this very suite runs from.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, realpath, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { GPU_HEALTH_POLICIES } from '../../api/index.js';
import { repoRoot } from '../../dev/control-plane/binaries.js';
import { testCluster } from '../support/cluster.js';

const run = promisify(execFile);
const FIXTURE = path.join(repoRoot, 'test', 'fixtures', 'xid', 'sample-dmesg.log');

interface Manifest {
  name: string;
  version: string;
  private?: boolean;
  bin: Record<string, string>;
  files: string[];
}
interface PackResult {
  filename: string;
  files: { path: string }[];
}

let tmp: string;
let tarball: string;
let packed: string[];
let gpudiag: string;
let cwd: string;
const manifest = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as Manifest;

/** The environment of npm and the installed CLI: no npm_* variables inherited from `npm test`, node on PATH. */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.toLowerCase().startsWith('npm_')) env[k] = v;
  env['PATH'] = `${path.dirname(process.execPath)}${path.delimiter}${process.env['PATH'] ?? '/usr/bin:/bin'}`;
  return env;
}

/** Copies what `npm pack` needs: the build's sources (tsconfig.build.json's roots), bin/, the package files. */
async function copySources(dest: string): Promise<void> {
  const build = JSON.parse(await readFile(path.join(repoRoot, 'tsconfig.build.json'), 'utf8')) as { include: string[] };
  const roots = new Set(['package.json', 'tsconfig.json', 'tsconfig.build.json', 'README.md', 'bin']);
  for (const pattern of [...build.include, ...manifest.files]) roots.add(pattern.split('/')[0] ?? pattern);
  roots.delete('dist');
  await mkdir(dest, { recursive: true });
  for (const root of roots) await cp(path.join(repoRoot, root), path.join(dest, root), { recursive: true });
  await symlink(path.join(repoRoot, 'node_modules'), path.join(dest, 'node_modules'));
}

/**
 * Waits until GPUHealthPolicies can be listed: right after the control plane starts, a new CRD's
 * storage may still answer 429 "storage is (re)initializing".
 */
async function policiesListable(): Promise<void> {
  const api = testCluster().admin().makeApiClient(CustomObjectsApi);
  for (let attempt = 1; ; attempt++) {
    try {
      await api.listClusterCustomObject({ ...GPU_HEALTH_POLICIES });
      return;
    } catch (err) {
      if (attempt >= 120) throw new Error('GPUHealthPolicies cannot be listed', { cause: err });
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

beforeAll(async () => {
  tmp = await realpath(await mkdtemp(path.join(os.tmpdir(), 'gpudiag-cli-package-')));
  const src = path.join(tmp, 'src');
  await copySources(src);
  const opts = { cwd: src, env: childEnv(), timeout: 240_000, maxBuffer: 16 << 20 };
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', tmp, '--no-audit', '--no-fund'], opts);
  const [result] = JSON.parse(stdout.slice(stdout.indexOf('['))) as PackResult[];
  if (result === undefined) throw new Error(`npm pack printed no result: ${stdout}`);
  tarball = path.join(tmp, result.filename);
  packed = result.files.map((f) => f.path);
  const prefix = path.join(tmp, 'prefix');
  cwd = path.join(tmp, 'cwd');
  await mkdir(cwd);
  await run('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tarball], { ...opts, cwd });
  gpudiag = path.join(prefix, 'bin', 'gpudiag');
}, 300_000);

afterAll(async () => {
  if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
});

describe('the npm package', () => {
  it('is scoped, private until a release, and names the gpudiag command', () => {
    expect(manifest).toMatchObject({ name: '@gpudiag/cli', private: true, bin: { gpudiag: 'bin/gpudiag.js' } });
    expect(path.basename(tarball)).toBe(`gpudiag-cli-${manifest.version}.tgz`);
  });

  it('holds the compiled CLI and what it reads at run time, and no tests, benchmarks, sources or source maps', () => {
    for (const f of [
      'package.json',
      'README.md',
      'bin/gpudiag.js',
      'dist/cli/main.js',
      'dist/agent/xid/catalog.json',
      'agent/api/snapshot.schema.json',
    ]) {
      expect(packed).toContain(f);
    }
    const unwanted = packed.filter((f) =>
      /(^|\/)(test|bench)\/|\.test\.js$|test-fixtures\.js$|test-support\.js$|\.map$|\.ts$|tsbuildinfo/.test(f),
    );
    expect(unwanted).toEqual([]);
    expect(packed.every((f) => /^(dist|bin)\/|^agent\/api\/snapshot\.schema\.json$|^(package\.json|README\.md|LICENSE)$/.test(f))).toBe(
      true,
    );
  });
});

describe('the installed gpudiag, run outside the repository', () => {
  it('prints its version', async () => {
    const { stdout } = await run(gpudiag, ['--version'], { cwd, env: childEnv() });
    expect(stdout).toBe(`gpudiag ${manifest.version}\n`);
  });

  it('analyzes a kernel log exactly as the repository build does', async () => {
    const installed = await run(gpudiag, ['xid', 'analyze', '--format', 'jsonl', FIXTURE], { cwd, env: childEnv() });
    const events = installed.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { kind: string; xid?: number; immediateAction?: string });
    expect(events.filter((e) => e.kind === 'xid').map((e) => e.xid)).toEqual(expect.arrayContaining([32, 62, 69, 79, 119]));
    expect(events.find((e) => e.xid === 79)?.immediateAction).toBe('RESTART_BM');
    const repo = await run(process.execPath, [path.join(repoRoot, 'bin', 'gpudiag.js'), 'xid', 'analyze', '--format', 'jsonl', FIXTURE], {
      cwd,
    });
    expect(installed.stdout).toBe(repo.stdout);
  });

  it('serves MCP over stdio: initialize, the read-only tools, and a call to the real API server', async () => {
    const transport = new StdioClientTransport({
      command: gpudiag,
      args: ['mcp', '--kubeconfig', testCluster().adminKubeconfigPath, '--read-only', '--log-level', 'warn'],
      cwd,
      env: { PATH: childEnv()['PATH'] ?? '', HOME: tmp },
      stderr: 'pipe',
    });
    await policiesListable();
    const client = new Client({ name: 'gpudiag-package-e2e', version: '0.0.0' });
    try {
      await client.connect(transport);
      expect(client.getServerVersion()).toMatchObject({ name: 'gpudiag', version: manifest.version });
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name)).toContain('list_health_policies');
      expect(tools.every((t) => t.annotations?.readOnlyHint === true)).toBe(true);
      const result = await client.callTool({ name: 'list_health_policies', arguments: {} });
      expect({ isError: result.isError ?? false, content: result.isError === true ? result.content : 'ok' }).toEqual({
        isError: false,
        content: 'ok',
      });
      expect(result.structuredContent).toHaveProperty('policies');
    } finally {
      await client.close();
    }
  });
});

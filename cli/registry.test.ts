import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { packageVersion } from '../lib/package-version.js';
import { COMMANDS } from './registry.js';

// Jest runs from the repository root; the shim loads dist/cli/main.js.
const BIN = path.resolve(process.cwd(), 'bin/gpudiag.js');
const COMMON = ['--help', '-h', '--version'];

function gpudiag(args: string[]): { status: number | null; out: string; stderr: string } {
  const res = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    timeout: 30_000,
    env: { PATH: process.env['PATH'] ?? '', HOME: '/nonexistent' },
  });
  return { status: res.status, out: res.stdout + res.stderr, stderr: res.stderr };
}

/** The flags a help text lists at the start of its option lines (`  -o, --output FORMAT`, `  --wait DURATION`). */
function helpFlags(help: string): string[] {
  const flags = new Set<string>();
  for (const line of help.split('\n')) {
    const m = /^ {2,}((?:-[a-zA-Z], )?--[a-z0-9-]+)/.exec(line);
    if (m !== null) for (const f of (m[1] ?? '').split(', ')) flags.add(f);
  }
  return [...flags].filter((f) => !COMMON.includes(f)).sort();
}

describe('the command table', () => {
  it.each(COMMANDS.map((c) => [c.words.join(' '), c] as const))('lists exactly the flags `gpudiag %s --help` documents', (_name, c) => {
    const help = gpudiag([...c.words, '--help']);
    expect(help.status).toBe(0);
    expect(
      Object.keys(c.flags)
        .filter((f) => !COMMON.includes(f))
        .sort(),
    ).toEqual(helpFlags(help.out));
  });

  it.each(COMMANDS.map((c) => [c.words.join(' '), c] as const))('`gpudiag %s --version` prints the version', (_name, c) => {
    const res = gpudiag([...c.words, '--version']);
    expect(res).toEqual({ status: 0, out: `gpudiag ${packageVersion()}\n`, stderr: '' });
  });

  it('a --version after `--` is an argument, not the flag', () => {
    const res = gpudiag(['xid', 'analyze', '--', '--version']);
    expect(res.status).toBe(1);
    expect(res.stderr).toContain('cannot read --version');
  });
});

describe('gpudiag diagnose exit codes without a cluster', () => {
  it('a usage error exits 64 and names the flag', () => {
    const res = gpudiag(['diagnose', '--output', 'xml']);
    expect(res.status).toBe(64);
    expect(res.stderr).toBe('gpudiag diagnose: --output must be table, json, yaml, got "xml"\nRun `gpudiag diagnose --help` for usage.\n');
  });

  it('no kubeconfig to load exits 2 (could not diagnose)', () => {
    const res = spawnSync(process.execPath, [BIN, 'diagnose'], {
      encoding: 'utf8',
      timeout: 30_000,
      env: { PATH: '', HOME: '/nonexistent', KUBECONFIG: '/nonexistent/config' },
    });
    expect(res.status).toBe(2);
    expect(res.stderr).toMatch(/^gpudiag diagnose: cannot load the kubeconfig/);
  });

  it('documents every exit code in --help', () => {
    const help = gpudiag(['diagnose', '--help']).out;
    for (const code of ['0    healthy', '1    unhealthy', '2    could not diagnose', '64   usage error', '130  interrupted'])
      expect(help).toContain(code);
  });
});

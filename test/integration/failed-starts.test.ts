/**
 * A start that cannot succeed fails: the binary logs why and exits non-zero by itself within
 * seconds — no server, timer, informer or child is left to keep it alive (the old operator
 * with a bad --agent-ca-file answered /readyz 200 and never reconciled nor exited).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { freePort } from '../../dev/control-plane/control-plane.js';
import { testCluster, useTestNamespace } from '../support/cluster.js';
import { spawnGpudiag } from '../support/processes.js';
import { applyRbac } from '../support/rbac.js';

const ns = useTestNamespace('failed-starts');
/** A failed start must end the process within this (the bound is generous for a loaded CI machine). */
const EXIT_BOUND_MS = 15_000;
let dir: string;
let files: { kubeconfig: string; garbage: string; token: string; noCluster: string };
let taken: Server;
let takenPort: number;

/** Runs `gpudiag <args>` until it exits (or the bound passes); resolves with code and output. */
async function run(args: string[]): Promise<{ code: number | string; output: string; ms: number }> {
  const started = Date.now();
  const gpudiag = spawnGpudiag(args, { PATH: process.env['PATH'] ?? '', HOME: dir });
  const timer = setTimeout(() => gpudiag.child.kill('SIGKILL'), EXIT_BOUND_MS);
  const exit = await gpudiag.exited;
  clearTimeout(timer);
  return { code: exit === 'SIGKILL' ? 'still running (killed)' : exit, output: gpudiag.output(), ms: Date.now() - started };
}

beforeAll(async () => {
  await applyRbac('operator.yaml', ns.name);
  dir = await mkdtemp(path.join(os.tmpdir(), 'gpudiag-failed-starts-'));
  const f = (name: string): string => path.join(dir, name);
  files = { kubeconfig: f('kubeconfig'), garbage: f('garbage'), token: f('agent-token'), noCluster: f('no-cluster.kubeconfig') };
  await writeFile(files.kubeconfig, (await testCluster().asServiceAccount(ns.name, 'gpudiag-operator')).exportConfig(), { mode: 0o600 });
  await writeFile(
    files.garbage,
    '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n: : [ this is not YAML either\n',
  );
  await writeFile(files.token, 'token');
  await writeFile(files.noCluster, JSON.stringify({ apiVersion: 'v1', kind: 'Config', clusters: [], users: [], contexts: [] }));
  taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', () => resolve()));
  takenPort = (taken.address() as { port: number }).port;
});

afterAll(async () => {
  await new Promise<void>((resolve) => taken.close(() => resolve()));
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

const agent = (extra: string[], listen = '127.0.0.1:0'): string[] => [
  'agent',
  '--node-name',
  'gpu-node-1',
  '--listen',
  listen,
  '--auth',
  'none',
  '--kmsg-path',
  '',
  '--nvml-library',
  '/nonexistent.so',
  '--nvml-no-fallback',
  ...extra,
];
const operator = async (extra: string[]): Promise<string[]> => [
  'operator',
  '--kubeconfig',
  files.kubeconfig,
  '--namespaces',
  ns.name,
  '--agent-namespace',
  ns.name,
  '--policy-selector',
  `gpudiag.io/shard=${ns.name}`,
  '--agent-token-file',
  files.token,
  '--probe-listen',
  `127.0.0.1:${await freePort()}`,
  '--identity',
  'failed-start',
  ...extra,
];

describe('failed starts fail', () => {
  it.each([
    [
      'agent: a TLS pair that is not a certificate and key',
      1,
      () => agent(['--tls-cert', files.garbage, '--tls-key', files.garbage]),
      '--tls-cert/--tls-key',
    ],
    [
      'agent: a kubeconfig that does not parse',
      1,
      () => agent(['--auth', 'tokenreview', '--allowed-callers', 'op', '--kubeconfig', files.garbage]),
      'cannot load the kubeconfig',
    ],
    [
      'agent: a kubeconfig without a cluster',
      1,
      () => agent(['--auth', 'tokenreview', '--allowed-callers', 'op', '--kubeconfig', files.noCluster]),
      'has no current cluster',
    ],
    ['agent: its port is in use', 1, () => agent([], `127.0.0.1:${takenPort}`), 'EADDRINUSE'],
    [
      'agent: a cursor directory that cannot hold the cursor',
      2,
      () => agent(['--cursor-file', path.join(files.garbage, 'cursor.json')]),
      '--cursor-file: the directory',
    ],
  ])('%s: exits %s by itself within seconds, saying why', async (_what, code, args, reason) => {
    const result = await run(args());
    expect({ code: result.code, reason: result.output.includes(reason) }).toEqual({ code, reason: true });
    if (code === 1) expect(result.output).toContain('"message":"agent failed to start"');
  });

  it.each([
    [
      'a CA bundle that holds no certificate',
      (): Promise<string[]> => operator(['--agent-scheme', 'https', '--agent-ca-file', files.token]),
      '--agent-ca-file',
    ],
    [
      'a CA bundle whose certificate does not parse',
      (): Promise<string[]> => operator(['--agent-scheme', 'https', '--agent-ca-file', files.garbage]),
      'certificate 1 of 1 does not parse',
    ],
    [
      'a kubeconfig that does not parse',
      async (): Promise<string[]> => (await operator([])).map((a) => (a === files.kubeconfig ? files.garbage : a)),
      'cannot load the kubeconfig',
    ],
    [
      'a kubeconfig without a cluster',
      async (): Promise<string[]> => (await operator([])).map((a) => (a === files.kubeconfig ? files.noCluster : a)),
      'has no current cluster',
    ],
    [
      'an agent token file that does not exist',
      async (): Promise<string[]> => (await operator([])).map((a) => (a === files.token ? path.join(dir, 'missing-token') : a)),
      'cannot read the agent token file',
    ],
    [
      'its probe port is in use',
      async (): Promise<string[]> => [...(await operator([])), '--probe-listen', `127.0.0.1:${takenPort}`],
      'EADDRINUSE',
    ],
    ['its MCP port is in use', async (): Promise<string[]> => operator(['--mcp-listen', `127.0.0.1:${takenPort}`]), 'EADDRINUSE'],
  ])('operator: %s: exits 1 by itself within seconds, saying why', async (_what, args, reason) => {
    const result = await run(await args());
    expect({ code: result.code, reason: result.output.includes(reason) }).toEqual({ code: 1, reason: true });
    expect(result.output).toContain('"message":"operator failed to start"');
  });

  it('mcp: a kubeconfig that does not parse: exits 1 by itself, saying why', async () => {
    const result = await run(['mcp', '--kubeconfig', files.garbage]);
    expect(result.code).toBe(1);
    expect(result.output).toContain('cannot load the kubeconfig');
  });
});

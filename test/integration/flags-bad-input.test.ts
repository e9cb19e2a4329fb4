/**
 * Every binary refuses bad flags the same way: exit code 2 and a message that names the flag
 * (empty or out-of-range ports, bad HOST:PORT, invalid names, selectors and identities,
 * unreadable files), before it starts anything.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { repoRoot } from '../../dev/control-plane/binaries.js';

let dir: string;
let kubeconfig: string;

/** Runs `gpudiag <args>`; resolves with the exit code and stderr. */
async function gpudiag(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(repoRoot, 'bin', 'gpudiag.js'), ...args],
      { timeout: 20_000, env: { PATH: process.env['PATH'] ?? '', HOME: dir } },
      (err, _stdout, stderr) => {
        const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null;
        resolve({ code, stderr });
      },
    );
  });
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'gpudiag-flags-'));
  kubeconfig = path.join(dir, 'kubeconfig');
  await writeFile(
    kubeconfig,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:1' } }],
      users: [{ name: 'u', user: { token: 't' } }],
      contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'ctx',
    }),
  );
  await writeFile(path.join(dir, 'a-file'), 'x');
});
afterAll(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

const agentBase = [
  'agent',
  '--node-name',
  'gpu-node-1',
  '--auth',
  'none',
  '--kmsg-path',
  '',
  '--nvml-library',
  '/nonexistent.so',
  '--nvml-no-fallback',
];

/** [flags, text the message must contain]; `{dir}` is a scratch directory holding a regular file `a-file`. */
const agentTable: [string[], string][] = [
  [['--listen', ''], '--listen must be HOST:PORT'],
  [['--listen', '127.0.0.1:'], '--listen must be HOST:PORT (e.g. 0.0.0.0:9440 or [::1]:9440): empty port'],
  [['--listen', ':9440'], '--listen must be HOST:PORT (e.g. 0.0.0.0:9440 or [::1]:9440): empty host'],
  [['--listen', '9440'], '--listen must be HOST:PORT (e.g. 0.0.0.0:9440 or [::1]:9440): no port'],
  [
    ['--listen', '127.0.0.1:70000'],
    '--listen must be HOST:PORT (e.g. 0.0.0.0:9440 or [::1]:9440): port must be an integer between 0 and 65535',
  ],
  [['--listen', '127.0.0.1:-1'], 'port must be an integer between 0 and 65535'],
  [['--listen', 'bad host:80'], 'invalid host "bad host"'],
  [['--listen', '::1:9440'], 'invalid host "::1"'],
  [['--listen', '[nope]:9440'], 'invalid host "nope"'],
  [['--node-name', ''], '--node-name (or NODE_NAME) is required'],
  [['--node-name', 'Bad_Name'], '--node-name must be a DNS-1123 subdomain, got "Bad_Name"'],
  [['--node-name', 'a'.repeat(300)], '--node-name must be a DNS-1123 subdomain'],
  [['--auth', 'mtls'], '--auth must be tokenreview or none, got "mtls"'],
  [['--auth', 'tokenreview'], '--allowed-callers is required with --auth tokenreview'],
  [['--auth', 'tokenreview', '--allowed-callers', 'a b'], '--allowed-callers must be comma-separated usernames without spaces, got "a b"'],
  [['--token-audience', 'x y'], '--token-audience must be a token audience without spaces or commas'],
  [['--token-verification', 'jwt'], '--token-verification must be auto or local or tokenreview, got "jwt"'],
  [['--tls-cert', '{dir}/a-file'], '--tls-cert and --tls-key must be given together'],
  [['--tls-cert', '/nonexistent.crt', '--tls-key', '{dir}/a-file'], '--tls-cert: cannot read "/nonexistent.crt"'],
  [['--tls-cert', '{dir}/a-file', '--tls-key', '{dir}'], '--tls-key: cannot read'],
  [['--kubeconfig', '/nonexistent/kubeconfig'], '--kubeconfig: cannot read "/nonexistent/kubeconfig"'],
  [['--cursor-file', '{dir}/a-file/cursor.json'], '--cursor-file: the directory'],
  [['--cursor-file', '/nonexistent-dir/cursor.json'], '--cursor-file: the directory "/nonexistent-dir" cannot hold the file'],
  [['--cursor-file', '{dir}'], '--cursor-file: cannot read'],
  [['--pod-resources-socket', 'kubelet.sock'], '--pod-resources-socket must be an absolute path or "", got "kubelet.sock"'],
  [['--pod-resources-socket', `/${'s'.repeat(200)}`], '--pod-resources-socket must be at most 107 bytes (a unix socket path)'],
  [['--proc-root', 'proc'], '--proc-root must be an absolute path, got "proc"'],
  [['--proc-root', '{dir}/a-file'], 'is not a directory'],
  [['--proc-root', '/nonexistent-proc'], '--proc-root: cannot read "/nonexistent-proc"'],
  [['--kmsg-poll-ms', ''], '--kmsg-poll-ms must be an integer between 10 and 60000, got ""'],
  [['--kmsg-poll-ms', '5'], '--kmsg-poll-ms must be an integer between 10 and 60000, got "5"'],
  [['--request-timeout-ms', '1e3'], '--request-timeout-ms must be an integer'],
  [['--snapshot-cache-ms', '0x10'], '--snapshot-cache-ms must be an integer'],
  [['--shutdown-grace-seconds', '0'], '--shutdown-grace-seconds must be an integer between 1 and 3600'],
  [['--nvml-call-timeout-ms', '99999999'], '--nvml-call-timeout-ms must be an integer between 10 and 60000'],
  [['--nvml-events', 'maybe'], '--nvml-events must be true or false, got "maybe"'],
  [['--log-level', 'loud'], '--log-level must be error or warn or info or debug, got "loud"'],
  [['--no-such-flag'], "Unknown option '--no-such-flag'"],
];

const operatorTable: [string[], string][] = [
  [['--probe-listen', ''], '--probe-listen must be HOST:PORT'],
  [['--probe-listen', '127.0.0.1:'], '--probe-listen must be HOST:PORT (e.g. 0.0.0.0:9440 or [::1]:9440): empty port'],
  [['--probe-listen', ':8081'], '--probe-listen must be HOST:PORT (e.g. 0.0.0.0:9440 or [::1]:9440): empty host'],
  [['--probe-listen', '127.0.0.1:99999'], '--probe-listen must be HOST:PORT (e.g. 0.0.0.0:9440 or [::1]:9440): port must be an integer'],
  [['--probe-listen', 'bad host:1'], '--probe-listen must be HOST:PORT (e.g. 0.0.0.0:9440 or [::1]:9440): invalid host'],
  [['--mcp-listen', '127.0.0.1:'], '--mcp-listen must be HOST:PORT (e.g. 0.0.0.0:9440 or [::1]:9440): empty port'],
  [
    ['--mcp-listen', '127.0.0.1:0', '--mcp-allowed-hosts', 'a b'],
    '--mcp-allowed-hosts must be comma-separated host names or addresses, got "a b"',
  ],
  [['--mcp-listen', '127.0.0.1:0', '--mcp-audience', 'a,b'], '--mcp-audience must be a token audience'],
  [['--mcp-listen', '127.0.0.1:0', '--mcp-rate-limit-burst', '0'], '--mcp-rate-limit-burst must be an integer between 1 and 100000'],
  [['--mcp-listen', '127.0.0.1:0', '--mcp-rate-limit-per-second', ''], '--mcp-rate-limit-per-second must be an integer'],
  [['--mcp-listen', '127.0.0.1:0', '--mcp-read-only', 'yes'], '--mcp-read-only must be true or false, got "yes"'],
  [
    ['--mcp-listen', '127.0.0.1:0', '--mcp-namespace', 'Default'],
    '--mcp-namespace must be a namespace name (DNS-1123 label), got "Default"',
  ],
  [['--namespaces', 'ok,Bad_NS'], '--namespaces must be a namespace name (DNS-1123 label), got "Bad_NS"'],
  [['--agent-namespace', ''], '--agent-namespace must be a namespace name (DNS-1123 label), got ""'],
  [['--lease-namespace', 'UPPER'], '--lease-namespace must be a namespace name'],
  [['--lease-name', 'bad name'], '--lease-name must be a Lease name (DNS-1123 subdomain), got "bad name"'],
  [['--lease-name', ''], '--lease-name must be a Lease name (DNS-1123 subdomain), got ""'],
  [['--identity', 'a b'], '--identity must be 1-119 letters, digits'],
  [['--identity', ''], '--identity must be 1-119 letters, digits'],
  [['--identity', 'x'.repeat(200)], '--identity must be 1-119 letters, digits'],
  [['--agent-selector', '!app'], '--agent-selector must be comma-separated key=value labels, got "!app"'],
  [['--agent-selector', 'a b=c'], '--agent-selector must be comma-separated key=value labels, got "a b=c"'],
  [['--agent-selector', ''], '--agent-selector must be comma-separated key=value labels'],
  [['--policy-selector', 'a b'], '--policy-selector must be comma-separated terms k=v, k!=v, k or !k'],
  [['--policy-selector', 'k=v v'], '--policy-selector must be comma-separated terms'],
  [['--agent-port', '0'], '--agent-port must be an integer between 1 and 65535, got "0"'],
  [['--agent-port', ''], '--agent-port must be an integer between 1 and 65535, got ""'],
  [['--agent-scheme', 'ftp'], '--agent-scheme must be http or https, got "ftp"'],
  [['--agent-ca-file', '/nonexistent/ca.crt'], '--agent-ca-file: cannot read "/nonexistent/ca.crt"'],
  [['--agent-ca-file', '{dir}'], '--agent-ca-file: cannot read'],
  [['--kubeconfig', '/nonexistent/kubeconfig'], '--kubeconfig: cannot read "/nonexistent/kubeconfig"'],
  [['--agent-token-file', ''], '--agent-token-file must name the projected token file'],
  [['--leader-election', 'maybe'], '--leader-election must be true or false'],
  [['--lease-duration-seconds', '2'], '--lease-duration-seconds must be an integer between 3 and 300'],
  [['--workers', '0'], '--workers must be an integer between 1 and 64, got "0"'],
  [['--fanout-concurrency', '100000'], '--fanout-concurrency must be an integer between 1 and 10000'],
  [['--api-timeout-seconds', '0'], '--api-timeout-seconds must be an integer between 1 and 600'],
  [['--shutdown-grace-seconds', ''], '--shutdown-grace-seconds must be an integer between 1 and 3600, got ""'],
  [['--log-level', 'loud'], '--log-level must be error or warn or info or debug'],
  [['--no-such-flag'], "Unknown option '--no-such-flag'"],
];

const mcpTable: [string[], string][] = [
  [['--kubeconfig', '/nonexistent/kubeconfig'], '--kubeconfig: cannot read "/nonexistent/kubeconfig"'],
  [['--kubeconfig', '{dir}'], '--kubeconfig: cannot read'],
  [['--kubeconfig', '{kubeconfig}', '--context', 'nope'], '--context: the kubeconfig has no context "nope"'],
  [['--kubeconfig', '{kubeconfig}', '--context', ''], '--context must name a kubeconfig context'],
  [['--namespace', 'Bad'], '--namespace must be a namespace name (RFC 1123 label), got "Bad"'],
  [['--agent-namespace', ''], '--agent-namespace must be a namespace name (RFC 1123 label), got ""'],
  [['--agent-selector', '!x'], '--agent-selector must be comma-separated key=value labels, got "!x"'],
  [['--ttl-seconds=-1'], '--ttl-seconds must be an integer between 0 and 31536000, got "-1"'],
  [['--wait-seconds', '0'], '--wait-seconds must be an integer between 1 and 600'],
  [['--idle-timeout-seconds', 'x'], '--idle-timeout-seconds must be an integer'],
  [['--log-level', 'loud'], '--log-level must be error or warn or info or debug'],
  [['--bogus'], "Unknown option '--bogus'"],
];

/** Maps `items` with at most `width` calls in flight (each call starts a Node process). */
async function inBatches<T, R>(items: readonly T[], width: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += width) out.push(...(await Promise.all(items.slice(i, i + width).map(fn))));
  return out;
}

function expand(args: string[]): string[] {
  return args.map((a) => a.replaceAll('{dir}', dir).replaceAll('{kubeconfig}', kubeconfig));
}

const binaries: { binary: string; base: string[]; table: [string[], string][]; usage: string }[] = [
  { binary: 'gpudiag agent', base: agentBase, table: agentTable, usage: 'usage: gpudiag agent' },
  { binary: 'gpudiag operator', base: ['operator'], table: operatorTable, usage: 'usage: gpudiag operator' },
  { binary: 'gpudiag mcp', base: ['mcp'], table: mcpTable, usage: 'usage: gpudiag mcp' },
];

describe.each(binaries)('$binary', ({ base, table, usage }) => {
  it('exits 2 with a message naming the flag for every bad input in its table', async () => {
    const results = await inBatches(table, 6, async ([flags, message]) => ({
      flags,
      message,
      ...(await gpudiag([...base, ...expand(flags)])),
    }));
    for (const r of results) {
      expect({ flags: r.flags, code: r.code }).toEqual({ flags: r.flags, code: 2 });
      const wanted = expand([r.message])[0] ?? '';
      expect({ flags: r.flags, message: r.stderr.includes(wanted) ? wanted : r.stderr.split('\n')[0] }).toEqual({
        flags: r.flags,
        message: wanted,
      });
      expect(r.stderr).toContain(usage);
    }
  }, 60_000);
});

/** The agent's kubeconfig reader (lib/kube/kubeconfig.ts): what it selects, and errors that name the field. */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { RequestOptions } from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createControlPlaneCerts, issueClientCertificate, type ControlPlaneCertPaths } from '../../dev/control-plane/certs.js';
import { kubeConfigForCertificate, kubeConfigForToken } from '../../dev/control-plane/control-plane.js';
import { loadKubeconfig, parseKubeconfig } from '../../lib/kube/kubeconfig.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

interface Doc {
  'current-context'?: unknown;
  clusters?: unknown;
  users?: unknown;
  contexts?: unknown;
}

/** A valid kubeconfig (token user, CA data) that each case changes one thing in. */
function base(): {
  'current-context': string;
  clusters: { name: string; cluster: Record<string, unknown> }[];
  users: { name: string; user: Record<string, unknown> }[];
  contexts: { name: string; context: Record<string, unknown> }[];
} {
  return {
    'current-context': 'ctx',
    clusters: [{ name: 'c', cluster: { server: 'https://10.0.0.1:6443', 'certificate-authority-data': b64('PEM') } }],
    users: [{ name: 'u', user: { token: 'abc.def' } }],
    contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u' } }],
  };
}

function changed(change: (d: ReturnType<typeof base>) => void): string {
  const d = base();
  change(d);
  return JSON.stringify(d);
}

const user = (d: ReturnType<typeof base>): Record<string, unknown> => d.users[0]?.user ?? {};
const cluster = (d: ReturnType<typeof base>): Record<string, unknown> => d.clusters[0]?.cluster ?? {};

describe('parseKubeconfig', () => {
  it('selects the current context: server, CA data, token', () => {
    expect(parseKubeconfig(JSON.stringify(base()), 'kc', '/etc/kube')).toEqual({
      context: 'ctx',
      server: 'https://10.0.0.1:6443',
      ca: { data: 'PEM', field: 'clusters[name="c"].cluster.certificate-authority-data' },
      insecureSkipTlsVerify: false,
      token: { token: 'abc.def' },
    });
  });

  it('reads YAML, resolves file references against the kubeconfig directory, prefers -data to files as kubectl does', () => {
    const yaml = [
      'apiVersion: v1',
      'kind: Config',
      'current-context: dev',
      'clusters:',
      '- name: local',
      '  cluster:',
      '    server: https://127.0.0.1:6443',
      '    certificate-authority: ca.crt',
      '    tls-server-name: kubernetes.default.svc',
      'users:',
      '- name: me',
      '  user:',
      '    tokenFile: ./secrets/token',
      '    client-certificate: /abs/me.crt',
      `    client-certificate-data: ${b64('CERT')}`,
      '    client-key: me.key',
      'contexts:',
      '- name: other',
      '  context: {cluster: nowhere, user: nobody}',
      '- name: dev',
      '  context: {cluster: local, user: me}',
    ].join('\n');
    expect(parseKubeconfig(yaml, 'kc', '/home/me/.kube')).toEqual({
      context: 'dev',
      server: 'https://127.0.0.1:6443',
      ca: { file: '/home/me/.kube/ca.crt', field: 'clusters[name="local"].cluster.certificate-authority' },
      insecureSkipTlsVerify: false,
      tlsServerName: 'kubernetes.default.svc',
      token: { tokenFile: '/home/me/.kube/secrets/token' },
      clientCertificate: {
        cert: { data: 'CERT', field: 'users[name="me"].user.client-certificate-data' },
        key: { file: '/home/me/.kube/me.key', field: 'users[name="me"].user.client-key' },
      },
    });
  });

  it('takes insecure-skip-tls-verify without a CA', () => {
    const text = changed((d) => {
      d.clusters[0] = { name: 'c', cluster: { server: 'https://x', 'insecure-skip-tls-verify': true } };
    });
    expect(parseKubeconfig(text, 'kc', '/')).toMatchObject({ insecureSkipTlsVerify: true });
    expect(parseKubeconfig(text, 'kc', '/')).not.toHaveProperty('ca');
  });

  it.each<[string, string, string]>([
    ['not YAML', ': : [ nope', 'kc is not YAML'],
    ['a list', '[1, 2]', 'kc is not a kubeconfig'],
    [
      'no current-context',
      JSON.stringify({ ...base(), 'current-context': undefined } satisfies Doc),
      'kc has no current cluster: current-context is not set',
    ],
    [
      'an empty kubeconfig',
      JSON.stringify({ apiVersion: 'v1', kind: 'Config', clusters: [], users: [], contexts: [] }),
      'kc has no current cluster: current-context is not set',
    ],
    ['current-context names no context', changed((d) => (d['current-context'] = 'gone')), 'kc: current-context "gone" is not in contexts'],
    ['contexts is not a list', changed((d) => ((d as Doc).contexts = { ctx: {} })), 'kc: contexts must be a list'],
    [
      'a context without its mapping',
      changed((d) => ((d as Doc).contexts = [{ name: 'ctx' }])),
      'kc: contexts[name="ctx"].context is missing',
    ],
    [
      'a context without a cluster',
      changed((d) => (d.contexts[0] = { name: 'ctx', context: { user: 'u' } })),
      'kc has no current cluster: contexts[name="ctx"].context.cluster is not set',
    ],
    [
      'a context without a user',
      changed((d) => (d.contexts[0] = { name: 'ctx', context: { cluster: 'c' } })),
      'kc: contexts[name="ctx"].context.user is not set',
    ],
    ['the cluster is not listed', changed((d) => (d.clusters = [])), 'kc: contexts[name="ctx"].context.cluster "c" is not in clusters'],
    ['the user is not listed', changed((d) => (d.users = [])), 'kc: contexts[name="ctx"].context.user "u" is not in users'],
    ['no server', changed((d) => delete cluster(d)['server']), 'kc: clusters[name="c"].cluster.server is not set'],
    [
      'a server that is not a string',
      changed((d) => (cluster(d)['server'] = 6443)),
      'kc: clusters[name="c"].cluster.server must be a non-empty string',
    ],
    [
      'an http server',
      changed((d) => (cluster(d)['server'] = 'http://10.0.0.1:8080')),
      'kc: clusters[name="c"].cluster.server must be an https:// URL, got "http://10.0.0.1:8080"',
    ],
    [
      'CA data that is not base64',
      changed((d) => (cluster(d)['certificate-authority-data'] = '-----BEGIN CERTIFICATE-----')),
      'kc: clusters[name="c"].cluster.certificate-authority-data is not base64',
    ],
    [
      'a CA and insecure-skip-tls-verify',
      changed((d) => (cluster(d)['insecure-skip-tls-verify'] = true)),
      'kc: clusters[name="c"].cluster gives both a certificate-authority and insecure-skip-tls-verify: true',
    ],
    [
      'insecure-skip-tls-verify as a string',
      changed((d) => (cluster(d)['insecure-skip-tls-verify'] = 'yes')),
      'kc: clusters[name="c"].cluster.insecure-skip-tls-verify must be true or false',
    ],
    [
      'a proxy',
      changed((d) => (cluster(d)['proxy-url'] = 'http://proxy:3128')),
      'kc: clusters[name="c"].cluster.proxy-url is not supported here',
    ],
    ['no credentials', changed((d) => (d.users[0] = { name: 'u', user: {} })), 'kc: users[name="u"].user has no credentials'],
    [
      'a certificate without its key',
      changed((d) => (user(d)['client-certificate-data'] = b64('C'))),
      'kc: users[name="u"].user gives client-certificate(-data) without client-key(-data)',
    ],
    [
      'a key without its certificate',
      changed((d) => (user(d)['client-key'] = 'k.pem')),
      'kc: users[name="u"].user gives client-key(-data) without client-certificate(-data)',
    ],
    ['an exec plugin', changed((d) => (user(d)['exec'] = { command: 'aws' })), 'kc: users[name="u"].user.exec is not supported here'],
    [
      'an auth-provider',
      changed((d) => (user(d)['auth-provider'] = { name: 'gcp' })),
      'kc: users[name="u"].user.auth-provider is not supported here',
    ],
    ['basic auth', changed((d) => (user(d)['password'] = 'p')), 'kc: users[name="u"].user.password is not supported here'],
    ['impersonation', changed((d) => (user(d)['as'] = 'admin')), 'kc: users[name="u"].user.as is not supported here'],
    [
      'a token with a newline',
      changed((d) => (user(d)['token'] = 'abc\r\nX-Injected: 1')),
      'kc: users[name="u"].user.token holds characters a bearer token cannot have',
    ],
    ['an empty token', changed((d) => (user(d)['token'] = '')), 'kc: users[name="u"].user.token must be a non-empty string'],
  ])('%s: fails naming it', (_what, text, message) => {
    expect(() => parseKubeconfig(text, 'kc', '/')).toThrow(message);
  });
});

describe('loadKubeconfig', () => {
  let dir: string;
  let certs: ControlPlaneCertPaths;
  let caPem: string;
  let client: { certPem: string; keyPem: string };
  let other: { certPem: string; keyPem: string };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'gpudiag-kubeconfig-'));
    certs = await createControlPlaneCerts(dir);
    caPem = await readFile(certs.caCert, 'utf8');
    client = await issueClientCertificate(certs, { user: 'me' }, dir);
    other = await issueClientCertificate(certs, { user: 'someone-else' }, dir);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function write(name: string, text: string): Promise<string> {
    const file = path.join(dir, name);
    await writeFile(file, text);
    return file;
  }

  it('reads what client-node writes (token and client-certificate users) into connection options', async () => {
    const tokenFile = await write('token.kubeconfig', kubeConfigForToken('https://127.0.0.1:6443', caPem, 'tok-123', 'sa').exportConfig());
    const options: RequestOptions = {};
    const connection = await loadKubeconfig(tokenFile);
    await connection.applyToHTTPSOptions(options);
    expect(connection.getCurrentCluster()).toEqual({ server: 'https://127.0.0.1:6443' });
    expect(options).toEqual({ ca: caPem, headers: { Authorization: 'Bearer tok-123' } });

    const certFile = await write(
      'cert.kubeconfig',
      kubeConfigForCertificate('https://127.0.0.1:6443', caPem, client.certPem, client.keyPem, 'me').exportConfig(),
    );
    const withCert: RequestOptions = {};
    await (await loadKubeconfig(certFile)).applyToHTTPSOptions(withCert);
    expect(withCert).toMatchObject({ cert: client.certPem, key: client.keyPem });
    expect(withCert.headers).toBeUndefined();
  });

  it('reads referenced files relative to the kubeconfig, and a tokenFile at start', async () => {
    await write('ca-rel.crt', caPem);
    await write('rel-token', 'from-file\n');
    const file = await write(
      'rel.kubeconfig',
      changed((d) => {
        d.clusters[0] = { name: 'c', cluster: { server: 'https://h:1', 'certificate-authority': 'ca-rel.crt' } };
        d.users[0] = { name: 'u', user: { tokenFile: 'rel-token' } };
      }),
    );
    const options: RequestOptions = {};
    await (await loadKubeconfig(file)).applyToHTTPSOptions(options);
    expect(options).toEqual({ ca: caPem, headers: { Authorization: 'Bearer from-file' } });
  });

  it.each<[string, (d: ReturnType<typeof base>) => void, string]>([
    [
      'a CA file that is missing',
      (d) => (d.clusters[0] = { name: 'c', cluster: { server: 'https://h', 'certificate-authority': 'nope.crt' } }),
      'cannot read',
    ],
    [
      'CA data that is no certificate',
      (d) => (cluster(d)['certificate-authority-data'] = b64('not a certificate')),
      'clusters[name="c"].cluster.certificate-authority-data holds no PEM certificate',
    ],
    [
      'a tokenFile that is missing',
      (d) => (d.users[0] = { name: 'u', user: { tokenFile: 'no-such-token' } }),
      'cannot read the token file',
    ],
    [
      'a key that does not match the certificate',
      (d) => (d.users[0] = { name: 'u', user: { 'client-certificate-data': b64(client.certPem), 'client-key-data': b64(other.keyPem) } }),
      'cannot be used',
    ],
  ])('%s: fails naming it', async (name, change, message) => {
    const d = base();
    cluster(d)['certificate-authority-data'] = b64(caPem);
    change(d);
    const file = await write(`${name.replace(/\W+/g, '-')}.kubeconfig`, JSON.stringify(d));
    await expect(loadKubeconfig(file)).rejects.toThrow(message);
  });

  it('a kubeconfig that is missing: names the file', async () => {
    await expect(loadKubeconfig(path.join(dir, 'absent'))).rejects.toThrow(`cannot read the kubeconfig ${path.join(dir, 'absent')}`);
  });
});

/**
 * A real Kubernetes control plane (etcd + kube-apiserver) on loopback, for tests and
 * `gpudiag dev up`: generated certificates, RBAC authorization, ServiceAccount tokens, and an
 * admin kubeconfig. No kubelet or controllers run, so Nodes and Pods are plain API objects.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { request } from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { ensureControlPlaneBinaries } from './binaries.js';
import { createControlPlaneCerts, issueClientCertificate, type ClientIdentity, type ControlPlaneCertPaths } from './certs.js';
import { startOrphanWatchdog, startProcess, type ManagedProcess } from './processes.js';

/** Options for starting a control plane. */
export interface ControlPlaneOptions {
  /** Directory for data, certificates and logs; a fresh temporary one when omitted. */
  dir?: string;
  /** Keep the directory after stop (dev up keeps it for the logs). */
  keepDir?: boolean;
  /** Where to report progress; silent when omitted. */
  onProgress?: (message: string) => void;
  /** Give up waiting for /readyz after this long. */
  readyTimeoutMs?: number;
  /** Aborts a start in progress (what is started so far is stopped). */
  signal?: AbortSignal;
  /**
   * Serve a real node (dev/real-node): listen and advertise on `address` (on the node's own
   * bridge, so pods reach the API server through the `kubernetes` Service) instead of 127.0.0.1,
   * authorize kubelets with the Node authorizer and NodeRestriction, admit ServiceAccounts (pods
   * get their projected tokens), and call kubelets with a client certificate.
   */
  realNode?: { address: string };
}

/** The Service range; its first address is the `kubernetes` Service. */
export const SERVICE_CIDR = '10.0.0.0/24';
const KUBERNETES_SERVICE_IP = '10.0.0.1';

/** Everything a client needs to reach a running control plane. */
export interface ControlPlaneEndpoint {
  server: string;
  dir: string;
  certs: ControlPlaneCertPaths;
  adminKubeconfigPath: string;
  /** The ServiceAccount token issuer (kube-controller-manager signs with the same key). */
  serviceAccountIssuer: string;
}

const ADMIN: ClientIdentity = { user: 'gpudiag-admin', groups: ['system:masters'] };

/** Finds a free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Builds a KubeConfig for a client certificate against the given server. */
export function kubeConfigForCertificate(server: string, caPem: string, certPem: string, keyPem: string, user: string): KubeConfig {
  const kc = new KubeConfig();
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  kc.loadFromOptions({
    clusters: [{ name: 'gpudiag-local', server, caData: b64(caPem), skipTLSVerify: false }],
    users: [{ name: user, certData: b64(certPem), keyData: b64(keyPem) }],
    contexts: [{ name: 'gpudiag-local', cluster: 'gpudiag-local', user }],
    currentContext: 'gpudiag-local',
  });
  return kc;
}

/** Builds a KubeConfig that authenticates with a bearer token (e.g. a ServiceAccount token). */
export function kubeConfigForToken(server: string, caPem: string, token: string, user: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'gpudiag-local', server, caData: Buffer.from(caPem).toString('base64'), skipTLSVerify: false }],
    users: [{ name: user, token }],
    contexts: [{ name: 'gpudiag-local', cluster: 'gpudiag-local', user }],
    currentContext: 'gpudiag-local',
  });
  return kc;
}

async function probeReady(server: string, caPem: string, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(`${server}/readyz`, { ca: caPem, timeout: 2000, signal }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

/** Without a node no pod runs: no ServiceAccount admission, no `kubernetes` endpoints. */
const objectsOnlyArgs = [
  '--authorization-mode',
  'RBAC',
  '--disable-admission-plugins',
  'ServiceAccount',
  '--endpoint-reconciler-type',
  'none',
];

/** What a kubelet and its pods need from the API server. */
async function realNodeArgs(address: string, certs: ControlPlaneCertPaths, certDir: string): Promise<string[]> {
  // The API server calls kubelets (logs, exec, port-forward) as this user; the kubelet's webhook
  // authorizer asks the API server, and system:masters may do anything.
  const kubeletClient = await issueClientCertificate(certs, { user: 'kube-apiserver-kubelet-client', groups: ['system:masters'] }, certDir);
  const certFile = path.join(certDir, 'kubelet-client.crt');
  const keyFile = path.join(certDir, 'kubelet-client.key');
  await writeFile(certFile, kubeletClient.certPem);
  await writeFile(keyFile, kubeletClient.keyPem, { mode: 0o600 });
  return [
    '--advertise-address',
    address,
    '--authorization-mode',
    'Node,RBAC',
    '--enable-admission-plugins',
    'NodeRestriction',
    '--endpoint-reconciler-type',
    'lease',
    '--kubelet-client-certificate',
    certFile,
    '--kubelet-client-key',
    keyFile,
    '--kubelet-preferred-address-types',
    'InternalIP',
  ];
}

/** A running etcd + kube-apiserver pair. */
export class ControlPlane {
  private constructor(
    readonly endpoint: ControlPlaneEndpoint,
    private readonly processes: ManagedProcess[],
    private readonly stopWatchdog: () => void,
    private readonly caPem: string,
    private readonly removeDir: boolean,
  ) {}

  /** Starts etcd and kube-apiserver and resolves once /readyz answers 200. */
  static async start(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
    const progress = options.onProgress ?? ((): void => undefined);
    const signal = options.signal ?? new AbortController().signal;
    const dir = options.dir ?? (await mkdtemp(path.join(os.tmpdir(), 'gpudiag-cp-')));
    await mkdir(path.join(dir, 'certs'), { recursive: true });
    await mkdir(path.join(dir, 'logs'), { recursive: true });
    const binaries = await ensureControlPlaneBinaries(progress);
    progress('generating certificates');
    const realNode = options.realNode;
    const certs = await createControlPlaneCerts(
      path.join(dir, 'certs'),
      realNode === undefined ? [] : [realNode.address, KUBERNETES_SERVICE_IP],
    );
    const [etcdPort, etcdPeerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
    const started: ManagedProcess[] = [];
    let stopWatchdog: () => void = () => undefined;
    const cleanup = async (): Promise<void> => {
      await Promise.all(started.map((p) => p.stop(5_000)));
      stopWatchdog();
      if (options.dir === undefined && options.keepDir !== true) await rm(dir, { recursive: true, force: true });
    };
    try {
      signal.throwIfAborted();
      progress(`starting etcd on 127.0.0.1:${etcdPort}`);
      const etcdUrl = `http://127.0.0.1:${etcdPort}`;
      started.push(
        await startProcess(
          'etcd',
          binaries.etcd,
          [
            '--data-dir',
            path.join(dir, 'etcd'),
            '--listen-client-urls',
            etcdUrl,
            '--advertise-client-urls',
            etcdUrl,
            '--listen-peer-urls',
            `http://127.0.0.1:${etcdPeerPort}`,
            '--initial-advertise-peer-urls',
            `http://127.0.0.1:${etcdPeerPort}`,
            '--initial-cluster',
            `default=http://127.0.0.1:${etcdPeerPort}`,
            '--unsafe-no-fsync',
            '--log-level',
            'warn',
          ],
          path.join(dir, 'logs', 'etcd.log'),
        ),
      );
      stopWatchdog = startOrphanWatchdog(
        process.pid,
        started.map((p) => p.pid),
      );
      signal.throwIfAborted();
      const host = realNode?.address ?? '127.0.0.1';
      const server = `https://${host}:${apiPort}`;
      progress(`starting kube-apiserver on ${server}`);
      started.push(
        await startProcess(
          'kube-apiserver',
          binaries.kubeApiserver,
          [
            '--etcd-servers',
            etcdUrl,
            '--cert-dir',
            path.join(dir, 'certs'),
            '--tls-cert-file',
            certs.servingCert,
            '--tls-private-key-file',
            certs.servingKey,
            '--client-ca-file',
            certs.caCert,
            '--secure-port',
            String(apiPort),
            '--bind-address',
            host,
            '--service-cluster-ip-range',
            SERVICE_CIDR,
            '--allow-privileged=true',
            '--service-account-issuer',
            `${server}/`,
            '--service-account-key-file',
            certs.serviceAccountPub,
            '--service-account-signing-key-file',
            certs.serviceAccountKey,
            ...(realNode === undefined ? objectsOnlyArgs : await realNodeArgs(realNode.address, certs, path.join(dir, 'certs'))),
            '--v',
            '1',
          ],
          path.join(dir, 'logs', 'kube-apiserver.log'),
        ),
      );
      stopWatchdog();
      stopWatchdog = startOrphanWatchdog(
        process.pid,
        started.map((p) => p.pid),
      );
      const caPem = await readFile(certs.caCert, 'utf8');
      await ControlPlane.waitReady(server, caPem, started, options.readyTimeoutMs ?? 60_000, signal);
      progress('control plane ready');
      const admin = await issueClientCertificate(certs, ADMIN, path.join(dir, 'certs'));
      const adminKubeconfigPath = path.join(dir, 'admin.kubeconfig');
      const kc = kubeConfigForCertificate(server, caPem, admin.certPem, admin.keyPem, ADMIN.user);
      await writeFile(adminKubeconfigPath, kc.exportConfig(), { mode: 0o600 });
      const endpoint = { server, dir, certs, adminKubeconfigPath, serviceAccountIssuer: `${server}/` };
      return new ControlPlane(endpoint, started, stopWatchdog, caPem, options.dir === undefined && options.keepDir !== true);
    } catch (err) {
      await cleanup();
      throw err;
    }
  }

  private static async waitReady(
    server: string,
    caPem: string,
    processes: ManagedProcess[],
    timeoutMs: number,
    signal: AbortSignal,
  ): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let exited: string | undefined;
    for (const p of processes) void p.exited.then((how) => (exited ??= `${p.name} exited (${how}); see ${p.logFile}`));
    while (Date.now() < deadline) {
      signal.throwIfAborted();
      if (exited !== undefined) throw new Error(exited);
      if (await probeReady(server, caPem, signal)) return;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`kube-apiserver at ${server} not ready after ${timeoutMs} ms; see ${processes.at(-1)?.logFile ?? 'its log'}`);
  }

  /** The PIDs of etcd and kube-apiserver (tests check that none survive stop). */
  get pids(): number[] {
    return this.processes.map((p) => p.pid);
  }

  /** A KubeConfig authenticated as the cluster admin (group system:masters). */
  adminKubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromFile(this.endpoint.adminKubeconfigPath);
    return kc;
  }

  /** A KubeConfig authenticated with a client certificate for the given user and groups. */
  async kubeConfigFor(identity: ClientIdentity): Promise<KubeConfig> {
    const cert = await issueClientCertificate(this.endpoint.certs, identity, path.join(this.endpoint.dir, 'certs'));
    return kubeConfigForCertificate(this.endpoint.server, this.caPem, cert.certPem, cert.keyPem, identity.user);
  }

  /** Stops kube-apiserver, then etcd, and removes the temporary directory it created. */
  async stop(): Promise<void> {
    for (const p of [...this.processes].reverse()) await p.stop();
    this.stopWatchdog();
    if (this.removeDir) await rm(this.endpoint.dir, { recursive: true, force: true });
  }
}

/**
 * A lean connection to the API server for processes that must not load client-node (the
 * agent): the server URL, the CA and the credentials, applied to node:https request options.
 * It fits lib/kube/raw-request's KubeTarget, so kubeRequest works with it. A token read from a
 * file (the projected ServiceAccount token, which the kubelet rotates) is re-read once it is
 * older than TOKEN_REREAD_MS. kubeconfig files are read by lib/kube/kubeconfig.ts.
 */
import { createSecureContext } from 'node:tls';
import type { RequestOptions } from 'node:https';
import path from 'node:path';
import { checkCertificateBundle } from '../pem.js';
import { readFileUpTo } from '../read-bounded.js';

/** Where the kubelet mounts a pod's ServiceAccount token and the cluster CA. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
/** A token file is re-read when its last read is older than this (the kubelet refreshes projected tokens well before they expire). */
export const TOKEN_REREAD_MS = 60_000;
/** Largest token file read (projected tokens are about 1 KiB). */
export const MAX_TOKEN_BYTES = 64 * 1024;
/** Largest CA bundle, certificate or key file read. */
export const MAX_PEM_BYTES = 1024 * 1024;

/** A bearer token is visible ASCII only: anything else would corrupt the Authorization header. */
export const BEARER_TOKEN = /^[\x21-\x7e]+$/;

/** How the connection verifies the server and proves who it is. */
export interface ConnectionSettings {
  /** The API server's https:// URL. */
  server: string;
  /** PEM bundle of the CAs that sign the server's certificate; the system CAs when unset. */
  ca?: string;
  /** Do not verify the server's certificate (kubeconfig `insecure-skip-tls-verify`). */
  insecureSkipTlsVerify?: boolean;
  /** The name the server's certificate is checked against (kubeconfig `tls-server-name`). */
  tlsServerName?: string;
  /** A fixed bearer token, or a file holding one (re-read as it rotates). */
  token?: string | TokenFile;
  /** A client certificate and its key (PEM). */
  clientCertificate?: { cert: string; key: string };
}

/** Reads a bearer token from a file and re-reads it once the last read is older than `rereadMs`. */
export class TokenFile {
  private value: string | undefined;
  private readAt = 0;
  private reading: Promise<string> | undefined;

  constructor(
    readonly path: string,
    private readonly rereadMs = TOKEN_REREAD_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** The token: the last one read while it is fresh, else the file's content now (concurrent callers share one read). */
  async current(): Promise<string> {
    if (this.value !== undefined && this.now() - this.readAt < this.rereadMs) return this.value;
    this.reading ??= this.read().finally(() => (this.reading = undefined));
    return this.reading;
  }

  private async read(): Promise<string> {
    let text: string;
    try {
      text = (await readFileUpTo(this.path, MAX_TOKEN_BYTES)).toString('utf8').trim();
    } catch (err) {
      throw new Error(`cannot read the token file ${this.path}`, { cause: err });
    }
    if (text === '') throw new Error(`the token file ${this.path} is empty`);
    if (!BEARER_TOKEN.test(text)) throw new Error(`the token file ${this.path} holds characters a bearer token cannot have`);
    this.value = text;
    this.readAt = this.now();
    return text;
  }
}

/** The API server with one set of credentials; every request gets the token current at that moment. */
export class ApiServerConnection {
  readonly server: string;

  constructor(private readonly settings: Readonly<ConnectionSettings>) {
    let url: URL;
    try {
      url = new URL(settings.server);
    } catch (err) {
      throw new Error(`the API server address ${JSON.stringify(settings.server)} is not a URL`, { cause: err });
    }
    if (url.protocol !== 'https:') throw new Error(`the API server address ${url.href} must be an https:// URL`);
    this.server = settings.server.replace(/\/+$/, '');
    if (typeof settings.token === 'string' && !BEARER_TOKEN.test(settings.token)) {
      throw new Error('the bearer token holds characters a bearer token cannot have');
    }
    if (settings.clientCertificate !== undefined) {
      try {
        createSecureContext(settings.clientCertificate);
      } catch (err) {
        throw new Error('the client certificate and key are not a usable pair', { cause: err });
      }
    }
  }

  /** Reads a token file once, so a missing or unreadable one fails at start rather than at the first request. */
  async check(): Promise<void> {
    if (this.settings.token instanceof TokenFile) await this.settings.token.current();
  }

  /** The server (the shape raw-request's KubeTarget asks for). */
  getCurrentCluster(): { readonly server: string } {
    return { server: this.server };
  }

  /** Adds the CA, the client certificate and the current bearer token to `options`. */
  async applyToHTTPSOptions(options: RequestOptions): Promise<void> {
    const { ca, insecureSkipTlsVerify, tlsServerName, token, clientCertificate } = this.settings;
    if (ca !== undefined) options.ca = ca;
    if (insecureSkipTlsVerify === true) options.rejectUnauthorized = false;
    if (tlsServerName !== undefined) options.servername = tlsServerName;
    if (clientCertificate !== undefined) {
      options.cert = clientCertificate.cert;
      options.key = clientCertificate.key;
    }
    if (token !== undefined) {
      const bearer = typeof token === 'string' ? token : await token.current();
      options.headers = { ...options.headers, Authorization: `Bearer ${bearer}` };
    }
  }
}

/** Reads a PEM file (bounded), naming `what` when it cannot. */
export async function readPemFile(file: string, what: string): Promise<string> {
  try {
    return (await readFileUpTo(file, MAX_PEM_BYTES)).toString('utf8');
  } catch (err) {
    throw new Error(`cannot read ${what} ${file}`, { cause: err });
  }
}

/** Where the in-cluster configuration comes from: the service environment variables, and the mounted ServiceAccount files. */
export interface InClusterSource {
  /** KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT, as the kubelet sets them in every pod. */
  service: { host: string; port: string } | undefined;
  /** Default SERVICE_ACCOUNT_DIR. */
  serviceAccountDir?: string;
  /** Default TOKEN_REREAD_MS. */
  tokenRereadMs?: number;
  now?: () => number;
}

/** The in-cluster connection: the kubernetes Service, the mounted CA and the mounted (rotating) token, read once here to fail fast. */
export async function inClusterConnection(source: InClusterSource): Promise<ApiServerConnection> {
  if (source.service === undefined) {
    throw new Error(
      'not running in a pod: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set (outside a cluster, pass --kubeconfig)',
    );
  }
  const dir = source.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
  const { host, port } = source.service;
  const caFile = path.join(dir, 'ca.crt');
  const ca = checkCertificateBundle(await readPemFile(caFile, 'the ServiceAccount CA'), caFile);
  const token = new TokenFile(path.join(dir, 'token'), source.tokenRereadMs ?? TOKEN_REREAD_MS, source.now ?? Date.now);
  // An IPv6 service address goes in brackets in a URL.
  const server = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const connection = new ApiServerConnection({ server, ca, token });
  await connection.check();
  return connection;
}

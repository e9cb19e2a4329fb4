/**
 * Reading a kubeconfig file without client-node: only what one connection needs — the current
 * context's cluster (server, CA, insecure-skip-tls-verify, tls-server-name) and user (token,
 * tokenFile, client certificate and key, inline or by file). Anything else that changes how to
 * connect (exec and auth-provider plugins, basic auth, impersonation, proxies) is refused by
 * name rather than ignored. Errors name the field, as `users[name="u"].user.client-key`.
 */
import path from 'node:path';
import { parse } from 'yaml';
import { checkCertificateBundle } from '../pem.js';
import { readFileUpTo } from '../read-bounded.js';
import { isRecord } from '../records.js';
import { ApiServerConnection, BEARER_TOKEN, readPemFile, TOKEN_REREAD_MS, TokenFile } from './connection.js';

/** Largest kubeconfig read. */
const MAX_KUBECONFIG_BYTES = 4 * 1024 * 1024;
/** Standard base64 (kubeconfig `-data` fields), whitespace allowed. */
const BASE64 = /^[A-Za-z0-9+/\s]*={0,2}\s*$/;

/** A PEM value given inline (decoded from a `-data` field) or as a file (resolved against the kubeconfig's directory). */
export type PemSource = { data: string; field: string } | { file: string; field: string };

/** What the current context selects. */
export interface KubeconfigSelection {
  context: string;
  server: string;
  ca?: PemSource;
  insecureSkipTlsVerify: boolean;
  tlsServerName?: string;
  token?: { token: string } | { tokenFile: string };
  clientCertificate?: { cert: PemSource; key: PemSource };
}

/** A kubeconfig that cannot be used, naming the field. */
export class KubeconfigError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'KubeconfigError';
  }
}

/** A kubeconfig that asks for something this reader does not implement (an exec plugin, a proxy…); client-node can read it. */
export class UnsupportedKubeconfigError extends KubeconfigError {
  constructor(message: string) {
    super(message);
    this.name = 'UnsupportedKubeconfigError';
  }
}

/** User fields that choose a way to authenticate (or to connect) this reader does not implement. */
const UNSUPPORTED_USER_FIELDS = ['exec', 'auth-provider', 'username', 'password', 'as', 'as-groups', 'as-uid', 'as-user-extra'];
const UNSUPPORTED_CLUSTER_FIELDS = ['proxy-url'];

/** The entry named `name` in a kubeconfig list (`clusters`, `users`, `contexts`): its inner mapping. */
function findNamed(
  doc: Record<string, unknown>,
  list: 'clusters' | 'users' | 'contexts',
  name: string,
  source: string,
  referrer: string,
): Record<string, unknown> {
  const entries = doc[list];
  if (entries !== undefined && entries !== null && !Array.isArray(entries)) throw new KubeconfigError(`${source}: ${list} must be a list`);
  const entry = (entries ?? []).find((e: unknown) => isRecord(e) && e['name'] === name) as Record<string, unknown> | undefined;
  if (entry === undefined) throw new KubeconfigError(`${source}: ${referrer} ${JSON.stringify(name)} is not in ${list}`);
  const inner = entry[list.slice(0, -1)];
  if (!isRecord(inner)) throw new KubeconfigError(`${source}: ${list}[name=${JSON.stringify(name)}].${list.slice(0, -1)} is missing`);
  return inner;
}

/** Reads an optional string field; present but not a non-empty string is an error. */
function optionalString(obj: Record<string, unknown>, key: string, field: string, source: string): string | undefined {
  const value = obj[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || value === '') throw new KubeconfigError(`${source}: ${field}.${key} must be a non-empty string`);
  return value;
}

/** A PEM value from `<key>-data` (base64, preferred, as kubectl does) or `<key>` (a file path). */
function pemSource(obj: Record<string, unknown>, key: string, field: string, source: string, baseDir: string): PemSource | undefined {
  const data = optionalString(obj, `${key}-data`, field, source);
  if (data !== undefined) {
    if (!BASE64.test(data)) throw new KubeconfigError(`${source}: ${field}.${key}-data is not base64`);
    return { data: Buffer.from(data, 'base64').toString('utf8'), field: `${field}.${key}-data` };
  }
  const file = optionalString(obj, key, field, source);
  return file === undefined ? undefined : { file: path.resolve(baseDir, file), field: `${field}.${key}` };
}

type ClusterPart = Pick<KubeconfigSelection, 'server' | 'ca' | 'insecureSkipTlsVerify' | 'tlsServerName'>;
type UserPart = Pick<KubeconfigSelection, 'token' | 'clientCertificate'>;

/** The connection half of a kubeconfig: `field` is where `cluster` sits, for messages. */
function readCluster(cluster: Record<string, unknown>, field: string, source: string, baseDir: string): ClusterPart {
  const fail = (problem: string): KubeconfigError => new KubeconfigError(`${source}: ${field}${problem}`);
  const server = optionalString(cluster, 'server', field, source);
  if (server === undefined) throw fail('.server is not set');
  const isHttps = URL.canParse(server) && new URL(server).protocol === 'https:';
  if (!isHttps) throw fail(`.server must be an https:// URL, got ${JSON.stringify(server)}`);
  const unsupported = UNSUPPORTED_CLUSTER_FIELDS.find((key) => cluster[key] !== undefined && cluster[key] !== null);
  if (unsupported !== undefined) throw new UnsupportedKubeconfigError(`${source}: ${field}.${unsupported} is not supported here`);
  const ca = pemSource(cluster, 'certificate-authority', field, source, baseDir);
  const insecure = cluster['insecure-skip-tls-verify'] ?? false;
  if (typeof insecure !== 'boolean') throw fail('.insecure-skip-tls-verify must be true or false');
  if (insecure && ca !== undefined) throw fail(' gives both a certificate-authority and insecure-skip-tls-verify: true');
  const tlsServerName = optionalString(cluster, 'tls-server-name', field, source);
  return {
    server,
    ...(ca !== undefined ? { ca } : {}),
    insecureSkipTlsVerify: insecure,
    ...(tlsServerName !== undefined ? { tlsServerName } : {}),
  };
}

/** The credentials half of a kubeconfig: a token (inline or a file) and/or a client certificate with its key. */
function readUser(user: Record<string, unknown>, field: string, source: string, baseDir: string): UserPart {
  const fail = (problem: string): KubeconfigError => new KubeconfigError(`${source}: ${field}${problem}`);
  const unsupported = UNSUPPORTED_USER_FIELDS.find((key) => user[key] !== undefined && user[key] !== null);
  if (unsupported !== undefined) {
    throw new UnsupportedKubeconfigError(
      `${source}: ${field}.${unsupported} is not supported here (use a token, a tokenFile or a client certificate)`,
    );
  }
  const token = optionalString(user, 'token', field, source);
  if (token !== undefined && !BEARER_TOKEN.test(token)) throw fail('.token holds characters a bearer token cannot have');
  const tokenFile = optionalString(user, 'tokenFile', field, source);
  const cert = pemSource(user, 'client-certificate', field, source, baseDir);
  const key = pemSource(user, 'client-key', field, source, baseDir);
  if (cert !== undefined && key === undefined) throw fail(' gives client-certificate(-data) without client-key(-data)');
  if (cert === undefined && key !== undefined) throw fail(' gives client-key(-data) without client-certificate(-data)');
  if (token === undefined && tokenFile === undefined && cert === undefined) {
    throw fail(' has no credentials (token, tokenFile, or client-certificate(-data) with client-key(-data))');
  }
  // An inline token wins over a tokenFile, as in kubectl.
  const bearer = token !== undefined ? { token } : tokenFile !== undefined ? { tokenFile: path.resolve(baseDir, tokenFile) } : undefined;
  return {
    ...(bearer !== undefined ? { token: bearer } : {}),
    ...(cert !== undefined && key !== undefined ? { clientCertificate: { cert, key } } : {}),
  };
}

/**
 * What the current context of a kubeconfig (its text) selects; file paths are resolved against
 * `baseDir`. Throws KubeconfigError naming the field that is missing or unusable.
 */
export function parseKubeconfig(text: string, source: string, baseDir: string): KubeconfigSelection {
  let doc: unknown;
  try {
    doc = parse(text, { maxAliasCount: 100 });
  } catch (err) {
    throw new KubeconfigError(`${source} is not YAML: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
  }
  if (!isRecord(doc)) throw new KubeconfigError(`${source} is not a kubeconfig (a YAML mapping with clusters, users and contexts)`);

  const context = doc['current-context'];
  if (typeof context !== 'string' || context === '') {
    throw new KubeconfigError(`${source} has no current cluster: current-context is not set`);
  }
  const ctx = findNamed(doc, 'contexts', context, source, 'current-context');
  const ctxField = `contexts[name=${JSON.stringify(context)}].context`;
  const clusterName = optionalString(ctx, 'cluster', ctxField, source);
  if (clusterName === undefined) throw new KubeconfigError(`${source} has no current cluster: ${ctxField}.cluster is not set`);
  const userName = optionalString(ctx, 'user', ctxField, source);
  if (userName === undefined) throw new KubeconfigError(`${source}: ${ctxField}.user is not set (TokenReview needs credentials)`);

  const cluster = findNamed(doc, 'clusters', clusterName, source, `${ctxField}.cluster`);
  const user = findNamed(doc, 'users', userName, source, `${ctxField}.user`);
  return {
    context,
    ...readCluster(cluster, `clusters[name=${JSON.stringify(clusterName)}].cluster`, source, baseDir),
    ...readUser(user, `users[name=${JSON.stringify(userName)}].user`, source, baseDir),
  };
}

/** The text of a PEM source (a file is read, bounded). */
async function pemText(pem: PemSource, source: string): Promise<string> {
  return 'data' in pem ? pem.data : readPemFile(pem.file, `${source}: ${pem.field}`);
}

/** Options of loadKubeconfig. */
export interface LoadKubeconfigOptions {
  /** How often a tokenFile is re-read (default TOKEN_REREAD_MS). */
  tokenRereadMs?: number;
  now?: () => number;
}

/** A connection from the current context of the kubeconfig at `file`; every referenced file is read (and checked) now. */
export async function loadKubeconfig(file: string, options: LoadKubeconfigOptions = {}): Promise<ApiServerConnection> {
  let text: string;
  try {
    text = (await readFileUpTo(file, MAX_KUBECONFIG_BYTES)).toString('utf8');
  } catch (err) {
    throw new Error(`cannot read the kubeconfig ${file}`, { cause: err });
  }
  const selection = parseKubeconfig(text, file, path.dirname(path.resolve(file)));
  const ca =
    selection.ca === undefined ? undefined : checkCertificateBundle(await pemText(selection.ca, file), `${file}: ${selection.ca.field}`);
  let clientCertificate: { cert: string; key: string } | undefined;
  if (selection.clientCertificate !== undefined) {
    const { cert, key } = selection.clientCertificate;
    clientCertificate = {
      cert: checkCertificateBundle(await pemText(cert, file), `${file}: ${cert.field}`),
      key: await pemText(key, file),
    };
  }
  const token =
    selection.token === undefined
      ? undefined
      : 'token' in selection.token
        ? selection.token.token
        : new TokenFile(selection.token.tokenFile, options.tokenRereadMs ?? TOKEN_REREAD_MS, options.now ?? Date.now);
  let connection: ApiServerConnection;
  try {
    connection = new ApiServerConnection({
      server: selection.server,
      ...(ca !== undefined ? { ca } : {}),
      insecureSkipTlsVerify: selection.insecureSkipTlsVerify,
      ...(selection.tlsServerName !== undefined ? { tlsServerName: selection.tlsServerName } : {}),
      ...(token !== undefined ? { token } : {}),
      ...(clientCertificate !== undefined ? { clientCertificate } : {}),
    });
  } catch (err) {
    throw new KubeconfigError(`${file}: the current context ${JSON.stringify(selection.context)} cannot be used`, { cause: err });
  }
  await connection.check();
  return connection;
}

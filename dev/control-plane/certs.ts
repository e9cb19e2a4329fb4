/**
 * Certificates and keys for a local control plane, made with the openssl CLI: a CA that signs
 * the API server's serving certificate and every client certificate, plus the ServiceAccount
 * token signing key pair (so TokenRequest and TokenReview work).
 */
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** An identity for a client certificate: CN becomes the user, O entries the groups. */
export interface ClientIdentity {
  user: string;
  groups?: readonly string[];
}

/** PEM material for one client certificate. */
export interface ClientCertificate {
  certPem: string;
  keyPem: string;
}

/** Paths of the files the API server is started with. */
export interface ControlPlaneCertPaths {
  caCert: string;
  caKey: string;
  servingCert: string;
  servingKey: string;
  serviceAccountKey: string;
  serviceAccountPub: string;
}

const validityDays = '3650';

async function openssl(args: string[]): Promise<void> {
  try {
    await run('openssl', args, { timeout: 30_000 });
  } catch (err) {
    throw new Error(`openssl ${args[0] ?? ''} failed (is the openssl CLI installed?)`, { cause: err });
  }
}

/** Escapes a value for an openssl -subj string. */
function subjectPart(value: string): string {
  return value.replace(/[\\/,=+]/g, (c) => `\\${c}`);
}

/**
 * Creates the CA, the serving certificate for 127.0.0.1/localhost (plus `extraIps`, e.g. a real
 * node's address and the `kubernetes` Service IP that pods dial) and the ServiceAccount keys in dir.
 */
export async function createControlPlaneCerts(dir: string, extraIps: readonly string[] = []): Promise<ControlPlaneCertPaths> {
  const p: ControlPlaneCertPaths = {
    caCert: path.join(dir, 'ca.crt'),
    caKey: path.join(dir, 'ca.key'),
    servingCert: path.join(dir, 'apiserver.crt'),
    servingKey: path.join(dir, 'apiserver.key'),
    serviceAccountKey: path.join(dir, 'sa.key'),
    serviceAccountPub: path.join(dir, 'sa.pub'),
  };
  await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', p.caKey]);
  await openssl([
    'req',
    '-x509',
    '-new',
    '-key',
    p.caKey,
    '-subj',
    '/CN=gpudiag-local-ca',
    '-days',
    validityDays,
    '-out',
    p.caCert,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
  ]);
  await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', p.servingKey]);
  await openssl([
    'req',
    '-x509',
    '-new',
    '-key',
    p.servingKey,
    '-subj',
    '/CN=kube-apiserver',
    '-days',
    validityDays,
    '-CA',
    p.caCert,
    '-CAkey',
    p.caKey,
    '-out',
    p.servingCert,
    '-addext',
    `subjectAltName=${['IP:127.0.0.1', ...extraIps.map((ip) => `IP:${ip}`), 'DNS:localhost', 'DNS:kubernetes.default.svc'].join(',')}`,
    '-addext',
    'extendedKeyUsage=serverAuth',
    '-addext',
    'basicConstraints=critical,CA:FALSE',
  ]);
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  await writeFile(p.serviceAccountKey, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  await writeFile(p.serviceAccountPub, publicKey.export({ type: 'spki', format: 'pem' }));
  return p;
}

/** Issues a client certificate for an identity, signed by the control plane's CA. */
export async function issueClientCertificate(
  certs: Pick<ControlPlaneCertPaths, 'caCert' | 'caKey'>,
  identity: ClientIdentity,
  workDir: string,
): Promise<ClientCertificate> {
  const base = path.join(workDir, `client-${Date.now()}-${Math.random().toString(36).slice(2)}`);
  const subject = [`/CN=${subjectPart(identity.user)}`, ...(identity.groups ?? []).map((g) => `/O=${subjectPart(g)}`)].join('');
  await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${base}.key`]);
  await openssl([
    'req',
    '-x509',
    '-new',
    '-key',
    `${base}.key`,
    '-subj',
    subject,
    '-days',
    validityDays,
    '-CA',
    certs.caCert,
    '-CAkey',
    certs.caKey,
    '-out',
    `${base}.crt`,
    '-addext',
    'extendedKeyUsage=clientAuth',
    '-addext',
    'basicConstraints=critical,CA:FALSE',
  ]);
  const [certPem, keyPem] = await Promise.all([readFile(`${base}.crt`, 'utf8'), readFile(`${base}.key`, 'utf8')]);
  return { certPem, keyPem };
}

/** Checking PEM certificate bundles when they are loaded, not when the first TLS call fails. */
import { X509Certificate } from 'node:crypto';

const CERTIFICATE_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * Returns `pem` when it holds at least one certificate and every certificate block parses;
 * throws naming `source` otherwise. Node's TLS accepts a garbage CA bundle silently and then
 * fails every handshake, so a bad file must be caught here.
 */
export function checkCertificateBundle(pem: string, source: string): string {
  const blocks = pem.match(CERTIFICATE_BLOCK) ?? [];
  if (blocks.length === 0) throw new Error(`${source} holds no PEM certificate`);
  blocks.forEach((block, i) => {
    try {
      new X509Certificate(block);
    } catch (err) {
      throw new Error(`${source}: certificate ${i + 1} of ${blocks.length} does not parse`, { cause: err });
    }
  });
  return pem;
}

/** The version in gpudiag's package.json (the repository's or an installed package's). */
import { readFileSync } from 'node:fs';

let cached: string | undefined;

/** `package.json`'s version, read once; `0.0.0` when it cannot be read. dist/lib/ sits two levels below the package root. */
export function packageVersion(): string {
  if (cached !== undefined) return cached;
  try {
    const pkg: unknown = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
    cached = typeof pkg === 'object' && pkg !== null && 'version' in pkg && typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    cached = '0.0.0';
  }
  return cached;
}

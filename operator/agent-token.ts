/**
 * The bearer token the operator presents to agents: a projected ServiceAccount token file that
 * the kubelet rotates, re-read when it changes (checked at most once per interval).
 */
import { readFile, stat } from 'node:fs/promises';

/** Returns the current token. */
export type TokenProvider = () => Promise<string>;

/** How often the token file's modification time is checked. */
const RECHECK_MS = 10_000;

/** A TokenProvider reading a projected token file, re-reading it after rotation. */
export function fileTokenProvider(file: string, now: () => number = Date.now): TokenProvider {
  let cached: { token: string; mtimeMs: number; checkedAt: number } | undefined;
  return async () => {
    if (cached !== undefined && now() - cached.checkedAt < RECHECK_MS) return cached.token;
    let info;
    try {
      info = await stat(file);
    } catch (err) {
      throw new Error(`cannot read the agent token file ${file} (is the projected token volume mounted?)`, { cause: err });
    }
    if (cached === undefined || info.mtimeMs !== cached.mtimeMs) {
      const token = (await readFile(file, 'utf8')).trim();
      if (token === '') throw new Error(`the agent token file ${file} is empty`);
      cached = { token, mtimeMs: info.mtimeMs, checkedAt: now() };
    } else {
      cached.checkedAt = now();
    }
    return cached.token;
  };
}

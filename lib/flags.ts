/**
 * Command-line flags with environment-variable fallbacks (flags win), shared by every binary's
 * configuration module. Problems become the caller's error type, naming the flag.
 */
import { parseArgs } from 'node:util';

/** Builds the caller's configuration error from a message. */
export type ConfigErrorFactory = (message: string) => Error;

/** Parsed flags, read with environment fallbacks. */
export interface FlagReader {
  /** The flag's value, else its environment variable's, else undefined. */
  get(flag: string): string | undefined;
  /** A boolean switch (a flag without value). */
  isSet(flag: string): boolean;
}

/** Parses `argv` strictly: every key of `envNames` is a string flag, `switches` are booleans. */
export function readFlags(argv: readonly string[], env: NodeJS.ProcessEnv, envNames: Readonly<Record<string, string>>, switches: readonly string[], makeError: ConfigErrorFactory): FlagReader {
  let values: Record<string, string | boolean | undefined>;
  try {
    const options = {
      ...Object.fromEntries(Object.keys(envNames).map((k) => [k, { type: 'string' as const }])),
      ...Object.fromEntries(switches.map((k) => [k, { type: 'boolean' as const }])),
    };
    ({ values } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }));
  } catch (err) {
    throw makeError((err as Error).message);
  }
  return {
    get(flag) {
      const v = values[flag];
      if (typeof v === 'string') return v;
      const envName = envNames[flag];
      return envName === undefined ? undefined : env[envName];
    },
    isSet: (flag) => values[flag] === true,
  };
}

/** Parses an integer flag value within [min, max]; empty or absent gives `fallback`. */
export function integerFlag(flag: string, value: string | undefined, fallback: number, min: number, max: number, makeError: ConfigErrorFactory): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw makeError(`--${flag} must be an integer between ${min} and ${max}, got "${value}"`);
  return n;
}

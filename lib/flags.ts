/**
 * Command-line flags with environment-variable fallbacks (flags win), shared by every binary's
 * configuration module. Problems become the caller's error type, naming the flag.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { quote } from './text.js';
import { isDnsSubdomain } from './kube/names.js';

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
export function readFlags(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  envNames: Readonly<Record<string, string>>,
  switches: readonly string[],
  makeError: ConfigErrorFactory,
): FlagReader {
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

/** Parses an integer flag value within [min, max]; absent gives `fallback`, empty is an error. */
export function integerFlag(
  flag: string,
  value: string | undefined,
  fallback: number,
  min: number,
  max: number,
  makeError: ConfigErrorFactory,
): number {
  if (value === undefined) return fallback;
  const n = /^-?\d{1,15}$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < min || n > max)
    throw makeError(`--${flag} must be an integer between ${min} and ${max}, got ${quote(value)}`);
  return n;
}

/** One of `choices`; absent gives `fallback`. */
export function choiceFlag<T extends string>(
  flag: string,
  value: string | undefined,
  choices: readonly T[],
  fallback: T,
  makeError: ConfigErrorFactory,
): T {
  if (value === undefined) return fallback;
  if (!(choices as readonly string[]).includes(value)) throw makeError(`--${flag} must be ${choices.join(' or ')}, got ${quote(value)}`);
  return value as T;
}

/** A listen address. */
export interface HostPort {
  host: string;
  port: number;
}

/**
 * Parses HOST:PORT (`0.0.0.0:9440`, `[::1]:9440`, `localhost:0`): the host an IP address or a
 * DNS name, the port an integer 0-65535 (0: any free port), neither empty.
 */
export function hostPortFlag(flag: string, value: string, makeError: ConfigErrorFactory): HostPort {
  const bad = (why: string): Error =>
    makeError(`--${flag} must be HOST:PORT (e.g. 0.0.0.0:9440 or [::1]:9440): ${why}, got ${quote(value)}`);
  const bracketed = /^\[([^\]]*)\]:(.*)$/.exec(value);
  const colon = value.lastIndexOf(':');
  const host = bracketed !== null ? (bracketed[1] ?? '') : colon < 0 ? value : value.slice(0, colon);
  const port = bracketed !== null ? (bracketed[2] ?? '') : colon < 0 ? undefined : value.slice(colon + 1);
  if (port === undefined) throw bad('no port');
  if (host === '') throw bad('empty host');
  if (bracketed !== null ? !isIPv6(host) : !(isIPv4(host) || isDnsSubdomain(host.toLowerCase()))) throw bad(`invalid host ${quote(host)}`);
  if (port === '') throw bad('empty port');
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) throw bad(`port must be an integer between 0 and 65535`);
  return { host, port: Number(port) };
}

/** Checks that a file given by a flag exists and can be read; returns the path. */
export function readableFileFlag(flag: string, file: string, makeError: ConfigErrorFactory): string {
  try {
    accessSync(file, constants.R_OK);
    if (!statSync(file).isFile()) throw new Error('not a regular file');
  } catch (err) {
    throw makeError(`--${flag}: cannot read ${quote(file, 200)}: ${(err as Error).message}`);
  }
  return file;
}

/** Checks that the directory of a file a flag names exists and is writable; returns the file path. */
export function writableDirectoryFlag(flag: string, file: string, makeError: ConfigErrorFactory): string {
  const dir = path.dirname(file);
  try {
    if (!statSync(dir).isDirectory()) throw new Error('not a directory');
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch (err) {
    throw makeError(`--${flag}: the directory ${quote(dir, 200)} cannot hold the file: ${(err as Error).message}`);
  }
  return file;
}

/**
 * True when `--version` (or `-V`) is among a command's arguments before a `--`: every command
 * answers it before parsing its own flags, so `gpudiag <command> --version` works everywhere.
 */
export function versionRequested(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).some((a) => a === '--version' || a === '-V');
}

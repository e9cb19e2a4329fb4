/**
 * The agent's XID history on disk: the kmsg cursor together with every event derived from the
 * records before it, in one file, so a crash between reading a record and saving can never
 * leave a cursor ahead of its events (the records are simply read again). Writes are atomic
 * (temp file, fsync, rename, fsync of the directory); the format is versioned; a corrupt file is
 * moved aside and reading starts over, never fatal.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { KmsgCursor } from './kmsg-reader.js';
import type { XidDedupEntry } from './dedup.js';
import { isRecord } from '../../lib/records.js';

/** The format marker and version written to the file. */
export const XID_HISTORY_FORMAT = 'gpudiag.io/xid-history';
export const XID_HISTORY_VERSION = 1;
/** A file larger than this is not ours (the stores are bounded far below it). */
const MAX_FILE_BYTES = 32 * 1024 * 1024;

/** A bus loss without an XID code, per GPU. */
export interface BusLossRecord {
  readonly pciBusId: string;
  readonly count: number;
  readonly firstSeenMs: number;
  readonly lastSeenMs: number;
}

/** What the file holds. */
export interface XidHistory {
  /** The boot the events belong to (sticky faults clear when it changes). */
  readonly bootId: string | null;
  /** The last kmsg record already reflected in the events. */
  readonly cursor: KmsgCursor | null;
  readonly xids: readonly XidDedupEntry[];
  readonly sxids: readonly XidDedupEntry[];
  readonly busLoss: readonly BusLossRecord[];
  /** When each GPU (kernel bus id) was last seen reset. */
  readonly gpuResets: Readonly<Record<string, number>>;
}

/** The outcome of loading: the history (null when there is none), and why a file was unusable. */
export interface LoadedXidHistory {
  readonly history: XidHistory | null;
  /** Set when the file existed but could not be used (it was moved aside). */
  readonly problem?: string;
}

function isCursor(value: unknown): value is KmsgCursor {
  return (
    isRecord(value) &&
    typeof value['bootId'] === 'string' &&
    typeof value['seq'] === 'number' &&
    Number.isSafeInteger(value['seq']) &&
    value['seq'] >= 0
  );
}

const SEVERITIES = new Set(['info', 'warning', 'critical']);

function isEntry(value: unknown): value is XidDedupEntry {
  if (!isRecord(value)) return false;
  const counts = value['counts'];
  return (
    typeof value['gpuKey'] === 'string' &&
    Number.isInteger(value['xid']) &&
    (value['pid'] === null || Number.isInteger(value['pid'])) &&
    (value['process'] === null || typeof value['process'] === 'string') &&
    Number.isFinite(value['firstSeenMs']) &&
    Number.isFinite(value['lastSeenMs']) &&
    typeof value['lastMessage'] === 'string' &&
    typeof value['subKey'] === 'string' &&
    SEVERITIES.has(String(value['worstSeverity'])) &&
    typeof value['worstMessage'] === 'string' &&
    (value['gpuInstance'] === null || Number.isInteger(value['gpuInstance'])) &&
    (value['computeInstance'] === null || Number.isInteger(value['computeInstance'])) &&
    isRecord(counts) &&
    Number.isInteger(counts['kmsg']) &&
    Number.isInteger(counts['nvml'])
  );
}

function isBusLoss(value: unknown): value is BusLossRecord {
  return (
    isRecord(value) &&
    typeof value['pciBusId'] === 'string' &&
    Number.isInteger(value['count']) &&
    Number.isFinite(value['firstSeenMs']) &&
    Number.isFinite(value['lastSeenMs'])
  );
}

function list<T>(value: unknown, field: string, check: (v: unknown) => v is T): T[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new Error(`field "${field}" must be an array`);
  value.forEach((v, i) => {
    if (!check(v)) throw new Error(`field "${field}[${i}]" is malformed`);
  });
  return value as T[];
}

/** Validates parsed file content; throws naming the field. A bare `{bootId, seq}` is the cursor file of older agents. */
export function parseXidHistory(data: unknown): XidHistory {
  if (isCursor(data) && !('format' in (data as object)))
    return { bootId: data.bootId, cursor: { bootId: data.bootId, seq: data.seq }, xids: [], sxids: [], busLoss: [], gpuResets: {} };
  if (!isRecord(data) || data['format'] !== XID_HISTORY_FORMAT) throw new Error(`field "format" must be "${XID_HISTORY_FORMAT}"`);
  if (data['version'] !== XID_HISTORY_VERSION)
    throw new Error(`field "version" is ${JSON.stringify(data['version'])}; this agent reads version ${XID_HISTORY_VERSION}`);
  const bootId = data['bootId'];
  if (bootId !== null && typeof bootId !== 'string') throw new Error('field "bootId" must be a string or null');
  const cursor = data['cursor'];
  if (cursor !== null && !isCursor(cursor)) throw new Error('field "cursor" must be {bootId, seq} or null');
  const resets = data['gpuResets'] ?? {};
  if (!isRecord(resets) || !Object.values(resets).every((v) => Number.isFinite(v)))
    throw new Error('field "gpuResets" must map bus ids to times');
  return {
    bootId,
    cursor,
    xids: list(data['xids'], 'xids', isEntry),
    sxids: list(data['sxids'], 'sxids', isEntry),
    busLoss: list(data['busLoss'], 'busLoss', isBusLoss),
    gpuResets: resets as Record<string, number>,
  };
}

/** Reads the history; a missing file is no history, an unusable one is moved to `<file>.corrupt` and reported. */
export function loadXidHistory(filePath: string): LoadedXidHistory {
  let raw: string;
  try {
    const size = fs.statSync(filePath).size;
    if (size > MAX_FILE_BYTES)
      throw Object.assign(new Error(`${size} bytes is more than the ${MAX_FILE_BYTES} a history can hold`), { code: 'EFBIG' });
    raw = fs.readFileSync(filePath, 'utf8');
  } catch (err) {
    if (typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'ENOENT') return { history: null };
    if ((err as { code?: unknown }).code !== 'EFBIG') throw new Error(`cannot read XID history ${filePath}`, { cause: err });
    return setAside(filePath, err instanceof Error ? err.message : String(err));
  }
  try {
    return { history: parseXidHistory(JSON.parse(raw)) };
  } catch (err) {
    return setAside(filePath, err instanceof Error ? err.message : String(err));
  }
}

function setAside(filePath: string, reason: string): LoadedXidHistory {
  try {
    fs.renameSync(filePath, `${filePath}.corrupt`);
  } catch (err) {
    return { history: null, problem: `${reason} (and moving it aside failed: ${err instanceof Error ? err.message : String(err)})` };
  }
  return { history: null, problem: `${reason}; moved to ${filePath}.corrupt` };
}

/** Writes the history atomically: a reader (or a restart after SIGKILL) sees the old file or the new one, never a mix. */
export function saveXidHistory(filePath: string, history: XidHistory): void {
  const body =
    JSON.stringify({ format: XID_HISTORY_FORMAT, version: XID_HISTORY_VERSION, savedAt: new Date().toISOString(), ...history }) + '\n';
  const dir = path.dirname(filePath);
  const tmp = path.join(dir, `.${path.basename(filePath)}.${process.pid}.tmp`);
  const fd = fs.openSync(tmp, 'w', 0o600);
  try {
    fs.writeSync(fd, body);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, filePath);
  syncDirectory(dir);
}

/** Makes a rename durable; false where the filesystem refuses to fsync a directory (the rename is still atomic). */
function syncDirectory(dir: string): boolean {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
    return true;
  } catch {
    return false;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * One line of a Kubernetes watch stream (`{"type": ..., "object": ...}`), parsed as untrusted
 * input: whatever the line holds, the answer is an event, never a throw. Lines too long, not
 * JSON or of an unknown shape become INVALID events the watcher treats as a broken stream.
 */
import { isRecord } from '../records.js';

/** An object event; `object` is still unchecked (validate it against its schema). */
export interface ObjectEvent {
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly object: unknown;
}

/** A bookmark: only a newer resourceVersion to resume from. */
export interface BookmarkEvent {
  readonly type: 'BOOKMARK';
  readonly resourceVersion: string | undefined;
}

/** The server ended the watch with a Status (410 Gone when the resourceVersion is too old). */
export interface ErrorEvent {
  readonly type: 'ERROR';
  readonly code: number | undefined;
  readonly reason: string;
  readonly message: string;
}

/** A line that is not a watch event (too long, not JSON, unknown type). */
export interface InvalidEvent {
  readonly type: 'INVALID';
  readonly problem: string;
}

export type WatchEvent = ObjectEvent | BookmarkEvent | ErrorEvent | InvalidEvent;

function isObjectType(type: unknown): type is ObjectEvent['type'] {
  return type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED';
}

function text(value: unknown, fallback: string): string {
  return typeof value === 'string' ? value : fallback;
}

/**
 * Parses one line (null: a line longer than the reader's bound, already dropped). Blank lines
 * (keep-alives) give undefined.
 */
export function parseWatchLine(line: string | null, maxLineBytes: number): WatchEvent | undefined {
  if (line === null) return { type: 'INVALID', problem: `a watch event longer than ${maxLineBytes} bytes` };
  if (line.trim() === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    // Not quoted: the line is untrusted, and JSON.parse's message quotes it.
    return { type: 'INVALID', problem: 'a watch line that is not JSON' };
  }
  if (!isRecord(parsed)) return { type: 'INVALID', problem: 'a watch line that is not a JSON object' };
  const type = parsed['type'];
  const object = parsed['object'];
  if (isObjectType(type)) {
    if (!isRecord(object)) return { type: 'INVALID', problem: `a ${type} event without an object` };
    return { type, object };
  }
  if (type === 'BOOKMARK') {
    const metadata = isRecord(object) ? object['metadata'] : undefined;
    const rv = isRecord(metadata) ? metadata['resourceVersion'] : undefined;
    return { type: 'BOOKMARK', resourceVersion: typeof rv === 'string' && rv !== '' ? rv : undefined };
  }
  if (type === 'ERROR') {
    const status = isRecord(object) ? object : {};
    const code = status['code'];
    return {
      type: 'ERROR',
      code: typeof code === 'number' && Number.isInteger(code) ? code : undefined,
      reason: text(status['reason'], 'Unknown'),
      message: text(status['message'], 'the API server ended the watch with an error'),
    };
  }
  return { type: 'INVALID', problem: 'a watch line without a known event type' };
}

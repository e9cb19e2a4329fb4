/**
 * A JSON-lines logger without winston, for the node agent: it runs on every GPU node, and
 * winston with logform adds ~8 MiB to a process whose whole budget is 60. Same records as
 * lib/logger's winston logger: one JSON line each, keys sorted, `timestamp` ISO-8601, what JSON
 * leaves raw (C1 controls, line separators, bidi overrides) escaped.
 */
import { stdout } from 'node:process';
import { escapeRawAfterJson, type Logger, type LoggerOptions } from './logger.js';

/** npm levels, as winston numbers them (lower is more severe). */
const LEVELS: Readonly<Record<string, number>> = { error: 0, warn: 1, info: 2, http: 3, verbose: 4, debug: 5, silly: 6 };
const DEFAULT_LEVEL = 'info';

type Fields = Record<string, unknown>;

/** JSON of a record with its keys sorted and bigints as strings, as winston's json format writes them. */
function recordLine(record: Fields): string {
  const sorted: Fields = {};
  for (const key of Object.keys(record).sort()) sorted[key] = record[key];
  let text: string;
  try {
    text = JSON.stringify(sorted, (_key, value: unknown) => (typeof value === 'bigint' ? String(value) : value));
  } catch (err) {
    // a circular or otherwise unserialisable field: keep the record, say which part was lost
    text = JSON.stringify({
      level: sorted['level'],
      message: sorted['message'],
      timestamp: sorted['timestamp'],
      logError: `fields not serialisable: ${String(err)}`,
    });
  }
  return escapeRawAfterJson(text);
}

class JsonLogger implements Logger {
  constructor(
    private readonly threshold: number,
    private readonly meta: Fields,
    private readonly out: NodeJS.WritableStream | undefined,
  ) {}

  error(message: string, fields?: Fields): void {
    this.write('error', message, fields);
  }
  warn(message: string, fields?: Fields): void {
    this.write('warn', message, fields);
  }
  info(message: string, fields?: Fields): void {
    this.write('info', message, fields);
  }
  debug(message: string, fields?: Fields): void {
    this.write('debug', message, fields);
  }
  child(fields: Fields): Logger {
    return new JsonLogger(this.threshold, { ...this.meta, ...fields }, this.out);
  }

  private write(level: string, message: string, fields: Fields | undefined): void {
    if (this.out === undefined || (LEVELS[level] ?? 0) > this.threshold) return;
    this.out.write(`${recordLine({ ...this.meta, ...fields, level, message, timestamp: new Date().toISOString() })}\n`);
  }
}

/** A JSON-lines logger to stdout (or `options.stream`); `stderrOnly` is not needed by the agent and not offered. */
export function createJsonLogger(options: Omit<LoggerOptions, 'stderrOnly'> = {}): Logger {
  const threshold = LEVELS[options.level ?? DEFAULT_LEVEL] ?? LEVELS[DEFAULT_LEVEL] ?? 2;
  const out = options.silent === true ? undefined : (options.stream ?? stdout);
  return new JsonLogger(threshold, { ...options.defaultMeta }, out);
}

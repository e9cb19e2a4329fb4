/**
 * Logging shared by every binary: JSON lines, constant messages, context in fields. The operator
 * and the MCP server log through winston; the node agent through lib/json-logger (same records,
 * without winston's memory). winston is loaded only when a winston logger is made.
 */
import { createRequire } from 'node:module';
import type winstonModule from 'winston';

/** What every component receives (create children with `logger.child({...})`); a winston logger is one. */
export interface Logger {
  error(message: string, fields?: Record<string, unknown>): unknown;
  warn(message: string, fields?: Record<string, unknown>): unknown;
  info(message: string, fields?: Record<string, unknown>): unknown;
  debug(message: string, fields?: Record<string, unknown>): unknown;
  child(fields: Record<string, unknown>): Logger;
}

/** Options for a component logger. */
export interface LoggerOptions {
  level?: string;
  /** Send every level to stderr (stdio MCP keeps stdout for the protocol). */
  stderrOnly?: boolean;
  /** Fields added to every line, e.g. `{ component: 'agent' }`. */
  defaultMeta?: Record<string, unknown>;
  /** Silence all output (tests). */
  silent?: boolean;
  /** Write records here instead of the console (tests). */
  stream?: NodeJS.WritableStream;
}

const allLevels = ['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly'];

/** The serialized line of a log record (triple-beam's MESSAGE symbol, which winston's formats write). */
const MESSAGE = Symbol.for('message');
/**
 * Characters JSON leaves raw that terminals or line-splitting readers still act on: DEL, C1 controls (0x9b is CSI), line and
 * paragraph separators, bidi overrides.
 */
const RAW_AFTER_JSON = /[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * One record, one line, whatever its fields hold: JSON already escapes quotes, newlines and
 * C0 controls (ANSI's ESC); this escapes what JSON leaves raw. Outside strings a JSON line is
 * plain ASCII, so replacing them with \u escapes keeps the line valid and its values unchanged.
 */
export function escapeRawAfterJson(line: string): string {
  return line.replace(RAW_AFTER_JSON, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Creates a winston JSON logger. Errors must be logged as fields (`{ error: err.message }`), never nested objects. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const winston = createRequire(import.meta.url)('winston') as typeof winstonModule;
  const oneLine = winston.format((info) => {
    const line = (info as unknown as Record<symbol, unknown>)[MESSAGE];
    if (typeof line === 'string') (info as unknown as Record<symbol, unknown>)[MESSAGE] = escapeRawAfterJson(line);
    return info;
  });
  return winston.createLogger({
    level: options.level ?? 'info',
    silent: options.silent ?? false,
    defaultMeta: options.defaultMeta ?? {},
    format: winston.format.combine(winston.format.timestamp(), winston.format.errors({ stack: true }), winston.format.json(), oneLine()),
    transports: [
      options.stream !== undefined
        ? new winston.transports.Stream({ stream: options.stream })
        : new winston.transports.Console(options.stderrOnly === true ? { stderrLevels: allLevels } : {}),
    ],
  });
}

/** Turns an unknown thrown value into loggable fields. */
export function errorFields(err: unknown): { error: string; cause?: string } {
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? err.cause.message : err.cause === undefined ? undefined : String(err.cause);
    return cause === undefined ? { error: err.message } : { error: err.message, cause };
  }
  return { error: String(err) };
}

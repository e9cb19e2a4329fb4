/** winston JSON logging shared by every binary: constant messages, context in fields. */
import winston from 'winston';

/** The logger type every component receives (create children with `logger.child({...})`). */
export type Logger = winston.Logger;

/** Options for a component logger. */
export interface LoggerOptions {
  level?: string;
  /** Send every level to stderr (stdio MCP keeps stdout for the protocol). */
  stderrOnly?: boolean;
  /** Fields added to every line, e.g. `{ component: 'agent' }`. */
  defaultMeta?: Record<string, unknown>;
  /** Silence all output (tests). */
  silent?: boolean;
}

const allLevels = ['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly'];

/** Creates a JSON logger. Errors must be logged as fields (`{ error: err.message }`), never nested objects. */
export function createLogger(options: LoggerOptions = {}): Logger {
  return winston.createLogger({
    level: options.level ?? 'info',
    silent: options.silent ?? false,
    defaultMeta: options.defaultMeta ?? {},
    format: winston.format.combine(winston.format.timestamp(), winston.format.errors({ stack: true }), winston.format.json()),
    transports: [new winston.transports.Console(options.stderrOnly === true ? { stderrLevels: allLevels } : {})],
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

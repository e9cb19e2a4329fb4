/**
 * A minimal gRPC client for unary calls to a local unix socket (the kubelet's pod-resources
 * API), over node:http2. Written by hand rather than loading @grpc/grpc-js: the agent runs on
 * every GPU node and loads only what it uses, and two unary calls need a few dozen lines, not a
 * library. The peer is treated as untrusted: every call has a deadline, an answer larger than
 * `maxResponseBytes` is refused as it arrives (never buffered), and every error names the
 * socket, the method and, when the peer sent one, the gRPC status.
 */
import http2 from 'node:http2';
import net from 'node:net';
import { clip } from '../text.js';

/** gRPC status codes (grpc/doc/statuscodes.md) by number. */
const STATUS_NAMES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
] as const;

/** Default deadline of one call. */
export const DEFAULT_DEADLINE_MS = 2_000;
/** Default largest answer (gRPC's own default receive limit). */
export const DEFAULT_MAX_RESPONSE_BYTES = 4 * 1024 * 1024;
/** Longest grpc-message kept in an error. */
const MAX_STATUS_MESSAGE_CHARS = 256;
/** The gRPC message prefix: a compressed flag and a 4-byte big-endian length. */
const FRAME_HEADER_BYTES = 5;

/**
 * What went wrong: `connect` (the socket is missing, refused or forbidden: see `errno`), `deadline`,
 * `too-large` (the answer passed the size cap), `status` (the peer answered a non-OK gRPC
 * status), `protocol` (not a well-formed gRPC answer), `aborted` (the caller's signal).
 */
export type GrpcFailureKind = 'connect' | 'deadline' | 'too-large' | 'status' | 'protocol' | 'aborted';

/** A failed unary call. */
export class GrpcCallError extends Error {
  constructor(
    readonly kind: GrpcFailureKind,
    message: string,
    readonly socketPath: string,
    readonly method: string,
    /** The system error code of a `connect` failure (ENOENT, EACCES, ECONNREFUSED...). */
    readonly errno?: string,
    /** The gRPC status of a `status` failure. */
    readonly grpcStatus?: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'GrpcCallError';
  }
}

/** One unary call. */
export interface UnaryCallOptions {
  /** The unix socket of the server. */
  socketPath: string;
  /** `/<package>.<Service>/<Method>`, e.g. `/v1.PodResourcesLister/List`. */
  method: string;
  /** The request message's protobuf encoding. */
  request: Uint8Array;
  deadlineMs?: number;
  maxResponseBytes?: number;
  signal?: AbortSignal;
}

/** The name of a gRPC status code, e.g. `7 PERMISSION_DENIED`. */
export function grpcStatusName(code: number): string {
  return `${code} ${STATUS_NAMES[code] ?? 'UNKNOWN_CODE'}`;
}

/**
 * The system error code of `err` or of its cause (a stream cancelled because the connect failed).
 * Duck-typed: errors from node:net may come from another realm (jest's VM contexts), where
 * `instanceof Error` is false.
 */
function errnoOf(err: unknown): string | undefined {
  let e = err as { code?: unknown; cause?: unknown } | null | undefined;
  for (let depth = 0; typeof e === 'object' && e !== null && depth < 4; depth += 1) {
    if (typeof e.code === 'string' && /^E[A-Z]+$/.test(e.code)) return e.code;
    e = e.cause as typeof e;
  }
  return undefined;
}

/** grpc-message is percent-encoded (gRPC over HTTP/2 spec); a bad escape keeps the raw text. */
function decodeStatusMessage(raw: string | string[] | undefined): string {
  const text = Array.isArray(raw) ? raw.join(',') : (raw ?? '');
  let decoded = text;
  try {
    decoded = decodeURIComponent(text);
  } catch (err) {
    if (!(err instanceof URIError)) throw err;
  }
  return clip(decoded.replace(/\p{Cc}/gu, ' '), MAX_STATUS_MESSAGE_CHARS);
}

/** The single message of a unary answer's body, or why the body is not one. */
function singleMessage(body: Buffer): Uint8Array | string {
  if (body.length < FRAME_HEADER_BYTES)
    return body.length === 0 ? 'the answer has no message' : `the answer is ${body.length} bytes, shorter than a message header`;
  if (body[0] !== 0) return `the answer is compressed (flag ${body[0]}), which this client never asked for`;
  const length = body.readUInt32BE(1);
  if (FRAME_HEADER_BYTES + length !== body.length) {
    return FRAME_HEADER_BYTES + length > body.length
      ? `the answer declares a ${length}-byte message but holds ${body.length - FRAME_HEADER_BYTES} bytes`
      : 'the answer holds more than one message';
  }
  return body.subarray(FRAME_HEADER_BYTES);
}

/**
 * Calls `method` on the gRPC server at `socketPath` and resolves with the answer message's bytes.
 * Rejects with a GrpcCallError; never leaves the connection open.
 */
export function unaryCall(options: UnaryCallOptions): Promise<Uint8Array> {
  const { socketPath, method, request } = options;
  const deadlineMs = options.deadlineMs ?? DEFAULT_DEADLINE_MS;
  const maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  const where = `gRPC ${method} on ${socketPath}`;
  const failure = (
    kind: GrpcFailureKind,
    detail: string,
    extra: { errno?: string; grpcStatus?: number; cause?: unknown } = {},
  ): GrpcCallError =>
    new GrpcCallError(
      kind,
      `${where}: ${detail}`,
      socketPath,
      method,
      extra.errno,
      extra.grpcStatus,
      extra.cause === undefined ? undefined : { cause: extra.cause },
    );

  return new Promise<Uint8Array>((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(failure('aborted', 'cancelled before it started', { cause: options.signal.reason }));
      return;
    }
    let settled = false;
    const chunks: Buffer[] = [];
    let received = 0;
    let headerChecked = false;
    let headers: http2.IncomingHttpHeaders | undefined;
    let trailers: http2.IncomingHttpHeaders | undefined;

    const session = http2.connect('http://localhost', { createConnection: () => net.connect(socketPath) });
    const finish = (result: Uint8Array | GrpcCallError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      session.destroy();
      if (result instanceof GrpcCallError) reject(result);
      else resolve(result);
    };
    const onAbort = (): void => finish(failure('aborted', 'cancelled by the caller', { cause: options.signal?.reason }));
    const timer = setTimeout(() => finish(failure('deadline', `no answer within ${deadlineMs} ms`)), deadlineMs);
    options.signal?.addEventListener('abort', onAbort, { once: true });

    const onError = (err: unknown): void => {
      const errno = errnoOf(err);
      const reason = String((err as { message?: unknown } | null)?.message ?? err);
      if (errno !== undefined) finish(failure('connect', `cannot connect (${errno})`, { errno, cause: err }));
      else finish(failure('protocol', `the connection failed: ${clip(reason, 200)}`, { cause: err }));
    };
    session.on('error', onError);

    const stream = session.request(
      {
        ':method': 'POST',
        ':path': method,
        'content-type': 'application/grpc',
        te: 'trailers',
        // The server gives up too when we do (gRPC's timeout header, in milliseconds).
        'grpc-timeout': `${deadlineMs}m`,
      },
      { endStream: false },
    );
    stream.on('error', onError);
    stream.on('response', (h) => (headers = h));
    stream.on('trailers', (t) => (trailers = t));
    stream.on('data', (chunk: Buffer) => {
      // One chunk is at most an HTTP/2 frame: holding it before the checks is bounded.
      received += chunk.length;
      chunks.push(chunk);
      // Refuse a declared oversized message at its header, before its bytes arrive.
      if (!headerChecked && received >= FRAME_HEADER_BYTES) {
        headerChecked = true;
        const declared = Buffer.concat(chunks).readUInt32BE(1);
        if (declared > maxResponseBytes)
          finish(failure('too-large', `the answer declares a ${declared}-byte message, more than ${maxResponseBytes}`));
      }
      if (received > maxResponseBytes + FRAME_HEADER_BYTES)
        finish(failure('too-large', `the answer is larger than ${maxResponseBytes} bytes`));
    });
    stream.on('end', () => finish(answer(headers, trailers, Buffer.concat(chunks))));
    stream.on('close', () => finish(failure('protocol', 'the connection closed before the answer ended')));
    stream.end(frame(request));
  });

  function answer(
    headers: http2.IncomingHttpHeaders | undefined,
    trailers: http2.IncomingHttpHeaders | undefined,
    body: Buffer,
  ): Uint8Array | GrpcCallError {
    const fail = (kind: GrpcFailureKind, detail: string, grpcStatus?: number): GrpcCallError =>
      new GrpcCallError(kind, `${where}: ${detail}`, socketPath, method, undefined, grpcStatus);
    if (headers === undefined) return fail('protocol', 'the answer has no headers');
    // node:http2 gives :status as a number, whatever its header type says.
    const httpStatus: unknown = headers[':status'];
    if (Number(httpStatus) !== 200) return fail('protocol', `HTTP status ${String(httpStatus)}, not a gRPC answer`);
    // A trailers-only answer carries the status in its headers.
    const statusHeaders = trailers ?? headers;
    const rawStatus = statusHeaders['grpc-status'];
    const status = typeof rawStatus === 'string' && /^\d{1,3}$/.test(rawStatus) ? Number(rawStatus) : undefined;
    if (status === undefined)
      return fail(
        'protocol',
        rawStatus === undefined
          ? 'the answer has no grpc-status'
          : `grpc-status ${JSON.stringify(clip(String(rawStatus), 20))} is not a number`,
      );
    if (status !== 0) {
      const message = decodeStatusMessage(statusHeaders['grpc-message']);
      return fail('status', `status ${grpcStatusName(status)}${message === '' ? '' : `: ${message}`}`, status);
    }
    const contentType = headers['content-type'] ?? '';
    if (!/^application\/grpc([+;]|$)/.test(contentType))
      return fail('protocol', `content-type ${JSON.stringify(clip(contentType, 60))} is not gRPC`);
    const message = singleMessage(body);
    return typeof message === 'string' ? fail('protocol', message) : message;
  }
}

/** `message` with the gRPC length prefix (uncompressed). */
function frame(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, FRAME_HEADER_BYTES);
  return out;
}

/**
 * The unary gRPC client's handling of answers a real gRPC server would not send but a broken
 * or hostile peer may: served by a plain node:http2 server on a unix socket, so each test
 * controls the exact headers, frames and trailers.
 */
import http2 from 'node:http2';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import path from 'node:path';
import { GrpcCallError, unaryCall, type GrpcFailureKind } from '../../lib/grpc/unary-client.js';
import { socketDir } from '../support/pod-resources-server.js';
import { rejectionOf } from '../support/rejection.js';

let dir: string;
let removeDir: () => Promise<void>;
let server: http2.Http2Server | undefined;

beforeEach(async () => {
  ({ dir, remove: removeDir } = await socketDir());
});

afterEach(async () => {
  await new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));
  server = undefined;
  await removeDir();
});

/** A gRPC message frame. */
function frame(bytes: number[], compressed = 0): Buffer {
  const out = Buffer.alloc(5 + bytes.length);
  out[0] = compressed;
  out.writeUInt32BE(bytes.length, 1);
  Buffer.from(bytes).copy(out, 5);
  return out;
}

/** Serves `respond` for every stream; resolves with the socket path. */
async function serve(
  respond: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, body: Buffer) => void,
): Promise<string> {
  const socketPath = path.join(dir, 'grpc.sock');
  server = http2.createServer();
  server.on('stream', (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => respond(stream, headers, Buffer.concat(chunks)));
    stream.on('error', () => stream.destroy());
  });
  await new Promise<void>((resolve) => server?.listen(socketPath, resolve));
  return socketPath;
}

/** Answers `body` with gRPC headers and the given trailers. */
function grpcAnswer(
  body: Buffer,
  trailers: Record<string, string> = { 'grpc-status': '0' },
  contentType = 'application/grpc',
): Parameters<typeof serve>[0] {
  return (stream) => {
    stream.respond({ ':status': 200, 'content-type': contentType }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers(trailers));
    stream.end(body);
  };
}

const failure = (promise: Promise<unknown>): Promise<GrpcCallError> => rejectionOf(promise, GrpcCallError);

const call = (socketPath: string, extra: Partial<Parameters<typeof unaryCall>[0]> = {}): Promise<Uint8Array> =>
  unaryCall({ socketPath, method: '/test.Echo/Call', request: Uint8Array.from([0x08, 0x01]), deadlineMs: 1_000, ...extra });

describe('unaryCall', () => {
  it('sends the gRPC request (path, headers, framed message) and returns the answer message', async () => {
    let seen: { headers: http2.IncomingHttpHeaders; body: Buffer } | undefined;
    const socketPath = await serve((stream, headers, body) => {
      seen = { headers, body };
      grpcAnswer(frame([0x0a, 0x01, 0x78]))(stream, headers, body);
    });
    expect([...(await call(socketPath))]).toEqual([0x0a, 0x01, 0x78]);
    expect(seen?.headers).toMatchObject({
      ':method': 'POST',
      ':path': '/test.Echo/Call',
      'content-type': 'application/grpc',
      te: 'trailers',
      'grpc-timeout': '1000m',
    });
    expect([...(seen?.body ?? [])]).toEqual([0, 0, 0, 0, 2, 0x08, 0x01]);
  });

  it('reads the status of a trailers-only answer from its headers', async () => {
    const socketPath = await serve((stream) => {
      stream.respond(
        { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '5', 'grpc-message': 'no%20such%20pod' },
        { endStream: true },
      );
    });
    const err = await failure(call(socketPath));
    expect({ kind: err.kind, grpcStatus: err.grpcStatus }).toEqual({ kind: 'status', grpcStatus: 5 });
    expect(err.message).toBe(`gRPC /test.Echo/Call on ${socketPath}: status 5 NOT_FOUND: no such pod`);
  });

  it('stops at the deadline of the caller signal', async () => {
    const socketPath = await serve(() => undefined);
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('caller gave up')), 50);
    const err = await failure(call(socketPath, { signal: controller.signal, deadlineMs: 10_000 }));
    expect(err.kind).toBe('aborted');
  });

  it.each<[string, Parameters<typeof serve>[0], GrpcFailureKind, string]>([
    ['an HTTP 404', (stream) => stream.respond({ ':status': 404 }, { endStream: true }), 'protocol', 'HTTP status 404, not a gRPC answer'],
    ['no grpc-status', grpcAnswer(frame([1]), {}), 'protocol', 'the answer has no grpc-status'],
    ['a grpc-status that is no number', grpcAnswer(frame([1]), { 'grpc-status': 'ok' }), 'protocol', 'grpc-status "ok" is not a number'],
    [
      'a content-type that is not gRPC',
      grpcAnswer(frame([1]), { 'grpc-status': '0' }, 'text/html'),
      'protocol',
      'content-type "text/html" is not gRPC',
    ],
    ['OK without a message', grpcAnswer(Buffer.alloc(0)), 'protocol', 'the answer has no message'],
    ['a cut message header', grpcAnswer(Buffer.from([0, 0, 0])), 'protocol', 'the answer is 3 bytes, shorter than a message header'],
    ['a compressed message never asked for', grpcAnswer(frame([1], 1)), 'protocol', 'the answer is compressed (flag 1)'],
    [
      'a message shorter than declared',
      grpcAnswer(frame([1, 2, 3]).subarray(0, 6)),
      'protocol',
      'declares a 3-byte message but holds 1 bytes',
    ],
    ['two messages', grpcAnswer(Buffer.concat([frame([1]), frame([2])])), 'protocol', 'the answer holds more than one message'],
    [
      'a 3 GiB declared message',
      grpcAnswer(Buffer.from([0, 0xc0, 0, 0, 0, 1])),
      'too-large',
      'declares a 3221225472-byte message, more than 4194304',
    ],
    ['a stream reset before the end', (stream) => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR), 'protocol', ''],
  ])('refuses %s', async (_what, respond, kind, message) => {
    const err = await failure(call(await serve(respond)));
    expect(err.kind).toBe(kind);
    expect(err.message).toContain(message);
    expect(err.message).toContain('gRPC /test.Echo/Call on ');
  });

  it('refuses an answer that grows past the cap across many frames, without waiting for its end', async () => {
    const socketPath = await serve((stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
      // Declares 1000 bytes (under the cap) but keeps sending.
      stream.write(Buffer.from([0, 0, 0, 0x03, 0xe8]));
      const chunk = Buffer.alloc(512);
      const timer = setInterval(() => stream.write(chunk), 5);
      stream.on('close', () => clearInterval(timer));
    });
    const err = await failure(call(socketPath, { maxResponseBytes: 2_000 }));
    expect(err.kind).toBe('too-large');
    expect(err.message).toContain('the answer is larger than 2000 bytes');
  });
});

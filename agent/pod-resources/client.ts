/**
 * A client of the kubelet's pod-resources API v1 (`v1.PodResourcesLister`) on its unix socket.
 * Every failure becomes a PodResourcesError whose `reason` the snapshot reports as it is, so
 * an operator reading "unknown" learns whether to mount the socket, fix permissions or look
 * at the kubelet.
 */
import { GrpcCallError, unaryCall } from '../../lib/grpc/unary-client.js';
import { WireFormatError } from '../../lib/protobuf/wire.js';
import { clip } from '../../lib/text.js';
import type { PodResourcesUnknownReason } from '../api/snapshot-document.js';
import {
  decodeAllocatableResourcesResponse,
  decodeListPodResourcesResponse,
  POD_RESOURCES_SERVICE,
  type ContainerDevices,
  type PodResources,
} from './messages.js';

/*
 * Why the pods of the GPUs are unknown (PodResourcesUnknownReason, in the snapshot document):
 * - `disabled`: `--pod-resources-socket ""`;
 * - `socket-missing`: no socket at the path (not mounted, or no kubelet there);
 * - `permission-denied`: the socket exists but the agent may not connect;
 * - `unreachable`: the socket exists but nobody answers (ECONNREFUSED: a kubelet restarting);
 * - `timeout`: no answer within the deadline;
 * - `too-large`: the answer passed the size cap;
 * - `grpc-error`: the kubelet answered a non-OK gRPC status (e.g. RESOURCE_EXHAUSTED from its rate limit);
 * - `malformed-answer`: not a well-formed gRPC answer, or a message that does not decode.
 */

/** Longest error message kept for the snapshot. */
const MAX_MESSAGE_CHARS = 512;

/** A failed pod-resources call. */
export class PodResourcesError extends Error {
  constructor(
    readonly reason: PodResourcesUnknownReason,
    message: string,
    options?: ErrorOptions,
  ) {
    super(clip(message, MAX_MESSAGE_CHARS), options);
    this.name = 'PodResourcesError';
  }
}

/** What a failed call means for the snapshot. */
export function unknownReasonOf(err: GrpcCallError): PodResourcesUnknownReason {
  switch (err.kind) {
    case 'connect':
      if (err.errno === 'ENOENT' || err.errno === 'ENOTDIR') return 'socket-missing';
      if (err.errno === 'EACCES' || err.errno === 'EPERM') return 'permission-denied';
      return 'unreachable';
    case 'deadline':
    case 'aborted':
      return 'timeout';
    case 'too-large':
      return 'too-large';
    case 'status':
      // A server that honours our grpc-timeout header gives up with DEADLINE_EXCEEDED.
      return err.grpcStatus === 4 ? 'timeout' : 'grpc-error';
    case 'protocol':
      return 'malformed-answer';
  }
}

/** Options of the client. */
export interface PodResourcesClientOptions {
  socketPath: string;
  /** Deadline of one call (default 2 s). */
  deadlineMs?: number;
  /** Largest answer accepted (default 4 MiB). */
  maxResponseBytes?: number;
}

/** The two calls of the pod-resources API the agent makes. */
export class PodResourcesClient {
  constructor(private readonly options: PodResourcesClientOptions) {}

  /** Every pod the kubelet runs, with the devices of its containers. */
  list(signal?: AbortSignal): Promise<PodResources[]> {
    return this.call('List', decodeListPodResourcesResponse, signal);
  }

  /** The devices the kubelet may allocate (every device plugin's devices). */
  allocatable(signal?: AbortSignal): Promise<ContainerDevices[]> {
    return this.call('GetAllocatableResources', decodeAllocatableResourcesResponse, signal);
  }

  private async call<T>(method: string, decode: (message: Uint8Array) => T, signal: AbortSignal | undefined): Promise<T> {
    const { socketPath, deadlineMs, maxResponseBytes } = this.options;
    const path = `/${POD_RESOURCES_SERVICE}/${method}`;
    let answer: Uint8Array;
    try {
      // Both requests are empty messages.
      answer = await unaryCall({
        socketPath,
        method: path,
        request: new Uint8Array(),
        ...(deadlineMs !== undefined ? { deadlineMs } : {}),
        ...(maxResponseBytes !== undefined ? { maxResponseBytes } : {}),
        ...(signal !== undefined ? { signal } : {}),
      });
    } catch (err) {
      if (err instanceof GrpcCallError) throw new PodResourcesError(unknownReasonOf(err), err.message, { cause: err });
      throw err;
    }
    try {
      return decode(answer);
    } catch (err) {
      if (err instanceof WireFormatError)
        throw new PodResourcesError('malformed-answer', `gRPC ${path} on ${socketPath}: ${err.message}`, { cause: err });
      throw err;
    }
  }
}

/**
 * The NVML worker's current native call, in shared memory: the worker writes it before and after
 * each call; the main thread reads it to notice a call that outlived its deadline while the worker
 * itself is blocked inside it (and so cannot post a message).
 */

/** Function names are stored by index: the table both sides share. */
export type CallNames = readonly string[];

const IN_CALL = 0;
const FN_INDEX = 1;
const INT32_SLOTS = 2;
const STARTED_AT_OFFSET = 8;
const DEVICE_OFFSET = 16;
const BYTES = 24;

/** What the worker is doing, as the main thread sees it. */
export interface CallInProgress {
  readonly fn: string;
  /** The nvmlDevice_t the call is about, when its first argument is one. */
  readonly device: bigint | null;
  readonly startedAtMs: number;
}

/** A view on the shared slot (both threads construct one over the same buffer). */
export class CallSlot {
  private readonly ints: Int32Array;
  private readonly startedAt: Float64Array;
  private readonly device: BigInt64Array;
  /** Name → index, as enter() runs once per native call (hundreds per snapshot). */
  private readonly indexOf: ReadonlyMap<string, number>;

  constructor(
    readonly buffer: SharedArrayBuffer,
    private readonly names: CallNames,
  ) {
    this.indexOf = new Map(names.map((name, i) => [name, i]));
    this.ints = new Int32Array(buffer, 0, INT32_SLOTS);
    this.startedAt = new Float64Array(buffer, STARTED_AT_OFFSET, 1);
    this.device = new BigInt64Array(buffer, DEVICE_OFFSET, 1);
  }

  /** A fresh buffer for a new worker. */
  static allocate(): SharedArrayBuffer {
    return new SharedArrayBuffer(BYTES);
  }

  /** Worker side: a native call starts. */
  enter(fn: string, device: bigint | null, nowMs: number): void {
    this.startedAt[0] = nowMs;
    this.device[0] = device ?? -1n;
    Atomics.store(this.ints, FN_INDEX, this.indexOf.get(fn) ?? -1);
    Atomics.store(this.ints, IN_CALL, 1);
  }

  /** Worker side: the native call returned. */
  leave(): void {
    Atomics.store(this.ints, IN_CALL, 0);
  }

  /** Main side: the call in progress, if any. */
  current(): CallInProgress | null {
    if (Atomics.load(this.ints, IN_CALL) === 0) return null;
    const device = this.device[0] ?? -1n;
    return {
      fn: this.names[Atomics.load(this.ints, FN_INDEX)] ?? 'unknown NVML call',
      device: device < 0n ? null : device,
      startedAtMs: this.startedAt[0] ?? 0,
    };
  }
}

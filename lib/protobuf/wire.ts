/**
 * The protobuf wire format, just enough to speak to a gRPC peer without a protobuf library:
 * varints, length-delimited fields and the skipping of every other wire type. Input is
 * untrusted (another process's answer): every read is bounds-checked, a truncated or malformed
 * message throws a WireFormatError that says where, and nothing is allocated from a length the
 * input claims before that length is known to fit in the input.
 */

/** A message that does not follow the wire format. */
export class WireFormatError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'WireFormatError';
  }
}

/** Wire types of the protobuf encoding (3 and 4 are the deprecated groups). */
export const WIRE_TYPE = { varint: 0, fixed64: 1, lengthDelimited: 2, startGroup: 3, endGroup: 4, fixed32: 5 } as const;

/** Longest varint: 10 bytes carry 64 bits. */
const MAX_VARINT_BYTES = 10;
/** Groups nested deeper than this are refused: skipping them recurses. */
const MAX_GROUP_DEPTH = 32;
/** Field numbers are 29 bits; 0 is not a field. */
const MAX_FIELD_NUMBER = 2 ** 29 - 1;

/** One field read from a message: a varint value, or the bytes of a length-delimited field. */
export type WireField =
  | { field: number; wireType: typeof WIRE_TYPE.varint; value: bigint }
  | { field: number; wireType: typeof WIRE_TYPE.lengthDelimited; bytes: Uint8Array };

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A bounds-checked cursor over one message's bytes. */
class Cursor {
  offset = 0;

  constructor(private readonly buf: Uint8Array) {}

  get done(): boolean {
    return this.offset >= this.buf.length;
  }

  varint(): bigint {
    const start = this.offset;
    let value = 0n;
    for (let i = 0; i < MAX_VARINT_BYTES; i += 1) {
      if (this.offset >= this.buf.length) throw new WireFormatError(`truncated varint at byte ${start}`);
      const byte = this.buf[this.offset] as number;
      this.offset += 1;
      value |= BigInt(byte & 0x7f) << BigInt(7 * i);
      if ((byte & 0x80) === 0) return BigInt.asUintN(64, value);
    }
    throw new WireFormatError(`varint longer than ${MAX_VARINT_BYTES} bytes at byte ${start}`);
  }

  /** A tag or length: a varint read as a number (exact up to 7 bytes, 49 bits, which every valid one fits). */
  smallVarint(): number {
    const start = this.offset;
    let value = 0;
    for (let i = 0; i < 7; i += 1) {
      if (this.offset >= this.buf.length) throw new WireFormatError(`truncated varint at byte ${start}`);
      const byte = this.buf[this.offset] as number;
      this.offset += 1;
      value += (byte & 0x7f) * 2 ** (7 * i);
      if ((byte & 0x80) === 0) return value;
    }
    throw new WireFormatError(`tag or length at byte ${start} is longer than 7 bytes`);
  }

  /** A length or other small count: a varint that must fit the remaining input. */
  length(): number {
    const at = this.offset;
    const length = this.smallVarint();
    if (length > this.buf.length - this.offset) {
      throw new WireFormatError(
        `length ${length} at byte ${at} runs past the end of the message (${this.buf.length - this.offset} bytes left)`,
      );
    }
    return length;
  }

  take(count: number): Uint8Array {
    if (count > this.buf.length - this.offset) throw new WireFormatError(`truncated field at byte ${this.offset}: ${count} bytes needed`);
    const bytes = this.buf.subarray(this.offset, this.offset + count);
    this.offset += count;
    return bytes;
  }

  /** The next tag as field number and wire type. */
  tag(): { field: number; wireType: number } {
    const at = this.offset;
    const tag = this.smallVarint();
    const field = Math.floor(tag / 8);
    if (field === 0 || field > MAX_FIELD_NUMBER) throw new WireFormatError(`invalid field number ${field} at byte ${at}`);
    return { field, wireType: tag % 8 };
  }
}

/** Skips one field's value of `wireType` (groups to their end tag); throws on a wire type that does not exist. */
function skip(cursor: Cursor, field: number, wireType: number, depth: number): void {
  switch (wireType) {
    case WIRE_TYPE.varint:
      cursor.varint();
      return;
    case WIRE_TYPE.fixed64:
      cursor.take(8);
      return;
    case WIRE_TYPE.lengthDelimited:
      cursor.take(cursor.length());
      return;
    case WIRE_TYPE.fixed32:
      cursor.take(4);
      return;
    case WIRE_TYPE.startGroup: {
      if (depth >= MAX_GROUP_DEPTH) throw new WireFormatError(`groups nested deeper than ${MAX_GROUP_DEPTH}`);
      for (;;) {
        if (cursor.done) throw new WireFormatError(`group ${field} has no end`);
        const inner = cursor.tag();
        if (inner.wireType === WIRE_TYPE.endGroup) {
          if (inner.field !== field) throw new WireFormatError(`group ${field} ended by the end tag of ${inner.field}`);
          return;
        }
        skip(cursor, inner.field, inner.wireType, depth + 1);
      }
    }
    case WIRE_TYPE.endGroup:
      throw new WireFormatError(`end of group ${field} without its start`);
    default:
      throw new WireFormatError(`unknown wire type ${wireType} of field ${field}`);
  }
}

/**
 * The varint and length-delimited fields of one message, in order; fixed-width fields and groups
 * are skipped (a decoder that needs them is not written yet). Throws WireFormatError on
 * malformed input, before yielding anything past the fault.
 */
export function* readFields(message: Uint8Array): Generator<WireField, void, undefined> {
  const cursor = new Cursor(message);
  while (!cursor.done) {
    const { field, wireType } = cursor.tag();
    if (wireType === WIRE_TYPE.varint) yield { field, wireType, value: cursor.varint() };
    else if (wireType === WIRE_TYPE.lengthDelimited) yield { field, wireType, bytes: cursor.take(cursor.length()) };
    else skip(cursor, field, wireType, 0);
  }
}

/** A length-delimited field's bytes as UTF-8 text; `what` names the field in the error. */
export function decodeString(bytes: Uint8Array, what: string): string {
  try {
    return utf8.decode(bytes);
  } catch (err) {
    throw new WireFormatError(`${what} is not valid UTF-8`, { cause: err });
  }
}

/** Builds one message. Fields are written in call order. */
export class WireWriter {
  private readonly chunks: Uint8Array[] = [];
  private size = 0;

  private push(bytes: Uint8Array): this {
    this.chunks.push(bytes);
    this.size += bytes.length;
    return this;
  }

  private rawVarint(value: bigint): this {
    if (value < 0n) value = BigInt.asUintN(64, value);
    const bytes: number[] = [];
    do {
      let byte = Number(value & 0x7fn);
      value >>= 7n;
      if (value !== 0n) byte |= 0x80;
      bytes.push(byte);
    } while (value !== 0n);
    return this.push(Uint8Array.from(bytes));
  }

  private tag(field: number, wireType: number): this {
    if (!Number.isInteger(field) || field < 1 || field > MAX_FIELD_NUMBER)
      throw new RangeError(`field number must be 1..${MAX_FIELD_NUMBER}, got ${field}`);
    return this.rawVarint((BigInt(field) << 3n) | BigInt(wireType));
  }

  /** An integer field (int32/int64/uint64/bool/enum: negative values as 64-bit two's complement). */
  varint(field: number, value: number | bigint): this {
    return this.tag(field, WIRE_TYPE.varint).rawVarint(BigInt(value));
  }

  /** A bytes field, or an embedded message's encoding. */
  bytes(field: number, value: Uint8Array): this {
    return this.tag(field, WIRE_TYPE.lengthDelimited).rawVarint(BigInt(value.length)).push(value);
  }

  /** A string field (UTF-8). */
  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  /** An embedded message. */
  message(field: number, value: WireWriter): this {
    return this.bytes(field, value.finish());
  }

  /** The message's bytes. */
  finish(): Uint8Array {
    const out = new Uint8Array(this.size);
    let at = 0;
    for (const chunk of this.chunks) {
      out.set(chunk, at);
      at += chunk.length;
    }
    return out;
  }
}

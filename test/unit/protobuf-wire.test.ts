/**
 * The hand-written protobuf wire reader against protobufjs, an independent implementation:
 * what protobufjs encodes, readFields reads; what WireWriter writes, protobufjs decodes; and
 * malformed or truncated input throws a WireFormatError quickly, never loops or allocates
 * from a length the input claims.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import { decodeString, readFields, WireFormatError, WireWriter, type WireField } from '../../lib/protobuf/wire.js';

const root = protobuf.parse(`
  syntax = "proto3";
  message Inner { string text = 1; }
  message Sample {
    string name = 1;
    int64 count = 2;
    repeated string ids = 3;
    Inner inner = 4;
    fixed64 f64 = 5;
    fixed32 f32 = 6;
    double d = 7;
    bytes raw = 8;
    bool flag = 536870911;
  }
`).root;
const Sample = root.lookupType('Sample');

const encode = (value: Record<string, unknown>): Uint8Array => Sample.encode(Sample.fromObject(value)).finish();
const fields = (bytes: Uint8Array): WireField[] => [...readFields(bytes)];
const text = (field: WireField | undefined): string => (field?.wireType === 2 ? decodeString(field.bytes, 'test') : 'not a string');

describe('readFields', () => {
  it('reads what protobufjs encodes, skipping fixed-width fields, in order', () => {
    const bytes = encode({
      name: 'gpu-0',
      count: 1234567,
      ids: ['a', 'ü'],
      inner: { text: 'x' },
      f64: 7,
      f32: 9,
      d: 1.5,
      raw: Buffer.from([0, 255]),
      flag: true,
    });
    const read = fields(bytes);
    expect(read.map((f) => f.field)).toEqual([1, 2, 3, 3, 4, 8, 536870911]);
    expect(text(read[0])).toBe('gpu-0');
    expect(read[1]).toEqual({ field: 2, wireType: 0, value: 1234567n });
    expect([text(read[2]), text(read[3])]).toEqual(['a', 'ü']);
    const inner = read[4]?.wireType === 2 ? fields(read[4].bytes) : [];
    expect(text(inner[0])).toBe('x');
    expect(read[5]?.wireType === 2 ? [...read[5].bytes] : []).toEqual([0, 255]);
    expect(read[6]).toEqual({ field: 536870911, wireType: 0, value: 1n });
  });

  it("reads a negative int64 as its 64-bit two's complement and an empty message as no fields", () => {
    expect(fields(encode({ count: -1 }))).toEqual([{ field: 2, wireType: 0, value: 2n ** 64n - 1n }]);
    expect(fields(new Uint8Array())).toEqual([]);
  });

  it('skips groups (wire types 3 and 4), nested ones too', () => {
    // field 9 group { field 1 varint 5; field 10 group { field 2 fixed32 } } then field 1 "ok"
    const bytes = Uint8Array.from([0x4b, 0x08, 0x05, 0x53, 0x15, 1, 2, 3, 4, 0x54, 0x4c, 0x0a, 0x02, 0x6f, 0x6b]);
    expect(fields(bytes).map((f) => [f.field, text(f)])).toEqual([[1, 'ok']]);
  });

  it.each<[string, number[], RegExp]>([
    ['a truncated varint', [0x10, 0xff], /truncated varint at byte 1/],
    ['a varint of 11 bytes', [0x10, ...Array<number>(10).fill(0xff), 0x01], /varint longer than 10 bytes at byte 1/],
    ['a tag longer than 7 bytes', [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], /tag or length at byte 0 is longer than 7 bytes/],
    ['field number 0', [0x00, 0x01], /invalid field number 0 at byte 0/],
    ['a length past the end', [0x0a, 0x05, 0x61], /length 5 at byte 1 runs past the end of the message \(1 bytes left\)/],
    ['a 4 GiB length in a 7-byte message', [0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x61], /length 4294967295 at byte 1 runs past the end/],
    ['a truncated fixed64', [0x29, 1, 2, 3], /truncated field at byte 1: 8 bytes needed/],
    ['a truncated fixed32', [0x35, 1], /truncated field at byte 1: 4 bytes needed/],
    ['wire type 6', [0x0e], /unknown wire type 6 of field 1/],
    ['wire type 7', [0x0f], /unknown wire type 7 of field 1/],
    ['an end group without a start', [0x0c], /end of group 1 without its start/],
    ['a group without an end', [0x0b, 0x08, 0x01], /group 1 has no end/],
    ["a group ended by another field's end tag", [0x0b, 0x14], /group 1 ended by the end tag of 2/],
    ['groups nested 40 deep', [...Array<number>(40).fill(0x0b)], /groups nested deeper than 32/],
  ])('throws on %s', (_what, bytes, message) => {
    expect(() => fields(Uint8Array.from(bytes))).toThrow(WireFormatError);
    expect(() => fields(Uint8Array.from(bytes))).toThrow(message);
  });

  it('yields the fields before a fault, then throws', () => {
    const reader = readFields(Uint8Array.from([0x0a, 0x01, 0x61, 0x0f]));
    expect(text(reader.next().value as WireField)).toBe('a');
    expect(() => reader.next()).toThrow(/unknown wire type 7/);
  });

  it('on any bytes, either reads fields that lie inside the input or throws a WireFormatError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          for (const f of readFields(bytes)) if (f.wireType === 2) expect(f.bytes.length).toBeLessThanOrEqual(bytes.length);
        } catch (err) {
          expect(err).toBeInstanceOf(WireFormatError);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses a string that is not UTF-8, naming the field', () => {
    expect(() => decodeString(Uint8Array.from([0xc3, 0x28]), 'PodResources.name')).toThrow('PodResources.name is not valid UTF-8');
  });
});

describe('WireWriter', () => {
  it('writes what protobufjs decodes', () => {
    const bytes = new WireWriter()
      .string(1, 'gpu-ü')
      .varint(2, -2n)
      .string(3, 'a')
      .string(3, '')
      .message(4, new WireWriter().string(1, 'inner'))
      .bytes(8, Uint8Array.from([1, 2]))
      .varint(536870911, 1)
      .finish();
    const decoded = Sample.toObject(Sample.decode(bytes), { longs: String, bytes: Array });
    expect(decoded).toEqual({ name: 'gpu-ü', count: '-2', ids: ['a', ''], inner: { text: 'inner' }, raw: [1, 2], flag: true });
  });

  it('round-trips through readFields and refuses field numbers outside 1..2^29-1', () => {
    expect(fields(new WireWriter().varint(1, 300).string(2, 'x').finish())).toEqual([
      { field: 1, wireType: 0, value: 300n },
      { field: 2, wireType: 2, bytes: Uint8Array.from([0x78]) },
    ]);
    expect(() => new WireWriter().varint(0, 1)).toThrow('field number must be 1..536870911, got 0');
    expect(() => new WireWriter().varint(2 ** 29, 1)).toThrow(RangeError);
  });
});

import { AssertionError, FlotillaError, assert } from "@flotilla/common";

/**
 * Zig-zag varints as Kafka's record format uses them (Kafka's `ByteUtils.writeVarint` /
 * `writeVarlong`, which follow Protobuf's `sint32` / `sint64`):
 *
 *   zigzag(n) = (n << 1) ^ (n >> 31)      for 32-bit varints (n >> 63 for varlongs)
 *
 * and the unsigned result is written 7 bits at a time, least significant group first, with
 * the high bit of each byte set when more bytes follow. So 0 -> 00, -1 -> 01, 1 -> 02,
 * 63 -> 7e, -64 -> 7f, 64 -> 80 01. A varint takes at most 5 bytes, a varlong at most 10.
 *
 * Varlongs are JavaScript numbers here, not bigints: the record format only stores
 * timestamp deltas in varlongs, and a millisecond timestamp (about 2^41) fits easily. Encoding
 * accepts magnitudes below 2^52; decoding rejects a varlong whose zig-zag form is 2^53 or more
 * (with a CORRUPT_MESSAGE naming the byte) rather than return a rounded number.
 */
export const VARINT_BYTES_MAX = 5;
export const VARLONG_BYTES_MAX = 10;
/** Largest varlong magnitude `writeVarlong` accepts (2^52 - 1); its zig-zag form stays below 2^53. */
export const VARLONG_MAGNITUDE_MAX = 2 ** 52 - 1;

function zigzag32(value: number): number {
  return ((value << 1) ^ (value >> 31)) >>> 0;
}

function zigzag64(value: number): number {
  return value >= 0 ? value * 2 : -value * 2 - 1;
}

/** Bytes `writeVarint(value)` takes. `value` must be an int32. */
export function sizeOfVarint(value: number): number {
  const u = zigzag32(value);
  if (u < 0x80) return 1;
  if (u < 0x4000) return 2;
  if (u < 0x200000) return 3;
  if (u < 0x10000000) return 4;
  return 5;
}

/** Bytes `writeVarlong(value)` takes. */
export function sizeOfVarlong(value: number): number {
  let u = zigzag64(value);
  let bytes = 1;
  while (u >= 0x80) {
    u = Math.floor(u / 0x80);
    bytes++;
  }
  return bytes;
}

/** Writes `value` (an int32) as a zig-zag varint at `pos`; returns the position after it. */
export function writeVarint(buf: Uint8Array, pos: number, value: number): number {
  // An if rather than assert(): this runs per field, and assert's message closure would allocate.
  if (!((value | 0) === value)) throw new AssertionError(`varint value ${value} is not an int32`);
  let u = zigzag32(value);
  while (u >= 0x80) {
    buf[pos++] = (u & 0x7f) | 0x80;
    u >>>= 7;
  }
  buf[pos++] = u;
  return pos;
}

/** Writes `value` (an integer with magnitude <= VARLONG_MAGNITUDE_MAX) as a zig-zag varlong; returns the position after it. */
export function writeVarlong(buf: Uint8Array, pos: number, value: number): number {
  if (!(Number.isInteger(value) && Math.abs(value) <= VARLONG_MAGNITUDE_MAX)) {
    throw new AssertionError(`varlong value ${value} is not an integer within ±(2^52 - 1)`);
  }
  let u = zigzag64(value);
  // Above 2^31 the bitwise operators would truncate, so divide until the rest fits them.
  while (u >= 0x80000000) {
    buf[pos++] = (u % 0x80) | 0x80;
    u = Math.floor(u / 0x80);
  }
  while (u >= 0x80) {
    buf[pos++] = (u & 0x7f) | 0x80;
    u >>>= 7;
  }
  buf[pos++] = u;
  return pos;
}

/**
 * A bounded reader over `buf[pos, end)`. Every read checks the bound first, so a lying
 * length or a truncated field is a CORRUPT_MESSAGE naming the field and its byte position,
 * never a read past the end. `context` names what is being read ("record batch at byte 0")
 * and `base` is subtracted from positions in messages (0 reports absolute positions).
 *
 * Field names are constants and `recordIndex` / `headerIndex` say where the reader is; the
 * full label ("key of header 0 of record 3") is only built when something fails, because
 * building it for every field of every record would cost more than reading the field.
 */
export class ByteCursor {
  pos: number;
  end: number;
  /** The record being read, for error messages; -1 when none. */
  recordIndex = -1;
  /** The header being read within that record; -1 when none. */
  headerIndex = -1;

  constructor(
    readonly buf: Buffer,
    pos: number,
    end: number,
    readonly context: string,
    readonly base = 0,
  ) {
    assert(pos >= 0 && pos <= end && end <= buf.length, () => `cursor range [${pos}, ${end}) outside a ${buf.length}-byte buffer`);
    this.pos = pos;
    this.end = end;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  /** `field` named with the record and header being read, e.g. "key of header 0 of record 3". */
  label(field: string): string {
    if (this.recordIndex < 0) return field;
    if (this.headerIndex < 0) return `${field} of record ${this.recordIndex}`;
    return `${field} of header ${this.headerIndex} of record ${this.recordIndex}`;
  }

  fail(detail: string, at = this.pos): never {
    throw new FlotillaError("CORRUPT_MESSAGE", `${this.context}: ${detail} at byte ${at - this.base}`);
  }

  readInt8(field: string): number {
    if (this.pos >= this.end) this.fail(`truncated ${this.label(field)}`);
    const v = this.buf[this.pos++]!;
    return v > 127 ? v - 256 : v;
  }

  /** A zig-zag varint of at most 5 bytes whose value fits 32 bits. */
  readVarint(field: string): number {
    const start = this.pos;
    const buf = this.buf;
    let u = 0;
    for (let i = 0; i < VARINT_BYTES_MAX; i++) {
      if (this.pos >= this.end) this.fail(`truncated varint ${this.label(field)}`, start);
      const b = buf[this.pos++]!;
      if (i === VARINT_BYTES_MAX - 1) {
        // The 5th byte holds bits 28..31: only its low 4 bits may be set.
        if (b > 0x0f) this.fail(`bad varint ${this.label(field)}: longer than 5 bytes or wider than 32 bits`, start);
        u |= b << 28;
      } else {
        u |= (b & 0x7f) << (7 * i);
        if (b < 0x80) break;
      }
    }
    return (u >>> 1) ^ -(u & 1);
  }

  /** A zig-zag varlong of at most 10 bytes whose zig-zag form is below 2^53. */
  readVarlong(field: string): number {
    const start = this.pos;
    const buf = this.buf;
    let u = 0;
    let scale = 1;
    for (let i = 0; ; i++) {
      if (i === VARLONG_BYTES_MAX) this.fail(`bad varlong ${this.label(field)}: longer than 10 bytes`, start);
      if (this.pos >= this.end) this.fail(`truncated varlong ${this.label(field)}`, start);
      const b = buf[this.pos++]!;
      u += (b & 0x7f) * scale;
      if (b < 0x80) break;
      scale *= 0x80;
    }
    // Every partial sum below 2^53 is exact, and rounding is monotonic, so u < 2^53 means the
    // value was read exactly; anything larger may have been rounded.
    if (u >= 2 ** 53) this.fail(`varlong ${this.label(field)} has magnitude above 2^52, which this decoder does not support`, start);
    return u % 2 === 1 ? -(u + 1) / 2 : u / 2;
  }

  /** `length` bytes as a view into the buffer (no copy). */
  readBytes(length: number, field: string): Buffer {
    if (length > this.end - this.pos) this.fail(`truncated ${this.label(field)}: needs ${length} bytes but ${this.end - this.pos} remain`);
    const start = this.pos;
    this.pos += length;
    return this.buf.subarray(start, this.pos);
  }

  readUtf8(length: number, field: string): string {
    if (length > this.end - this.pos) this.fail(`truncated ${this.label(field)}: needs ${length} bytes but ${this.end - this.pos} remain`);
    const start = this.pos;
    this.pos += length;
    return this.buf.toString("utf8", start, this.pos);
  }
}

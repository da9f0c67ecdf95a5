import { FlotillaError } from "@flotilla/common";

/**
 * Primitive types of the Apache Kafka wire protocol (the protocol guide's "Protocol
 * Primitive Types"), big-endian:
 *
 *   INT8/16/32/64          two's complement; INT64 is a JS number here and a value beyond
 *                          ±2^53 is rejected rather than rounded (offsets and timestamps fit)
 *   UNSIGNED_VARINT        7 bits per byte, low group first, high bit = more bytes
 *   STRING                 INT16 length then UTF-8; NULLABLE_STRING length -1 = null
 *   COMPACT_STRING         UNSIGNED_VARINT (length + 1) then UTF-8; 0 = null when nullable
 *   BYTES                  INT32 length then bytes; NULLABLE_BYTES length -1 = null
 *   COMPACT_BYTES          UNSIGNED_VARINT (length + 1) then bytes
 *   ARRAY                  INT32 count (-1 = null); COMPACT_ARRAY UNSIGNED_VARINT (count + 1)
 *   TAGGED_FIELDS          UNSIGNED_VARINT count, then per field tag, size, bytes (flexible
 *                          versions only; we read and skip them, and write none)
 *   UUID                   16 bytes
 *
 * A reader never reads past its end: truncated or lying input throws
 * FlotillaError("INVALID_REQUEST") naming the field and offset, which the listener turns
 * into a closed connection (the protocol has no way to answer a request it cannot parse).
 */
export class KafkaReader {
  offset: number;

  constructor(
    readonly buf: Buffer,
    offset = 0,
    readonly end = buf.length,
  ) {
    this.offset = offset;
  }

  get remaining(): number {
    return this.end - this.offset;
  }

  private need(bytes: number, what: string): number {
    if (bytes < 0 || this.offset + bytes > this.end) {
      throw new FlotillaError("INVALID_REQUEST", `truncated ${what}: needs ${bytes} bytes at offset ${this.offset}, ${this.end - this.offset} left`);
    }
    const at = this.offset;
    this.offset += bytes;
    return at;
  }

  int8(what = "int8"): number {
    return this.buf.readInt8(this.need(1, what));
  }
  int16(what = "int16"): number {
    return this.buf.readInt16BE(this.need(2, what));
  }
  int32(what = "int32"): number {
    return this.buf.readInt32BE(this.need(4, what));
  }
  uint32(what = "uint32"): number {
    return this.buf.readUInt32BE(this.need(4, what));
  }
  int64(what = "int64"): number {
    const v = this.buf.readBigInt64BE(this.need(8, what));
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new FlotillaError("INVALID_REQUEST", `${what} ${v} is outside the supported range ±2^53`);
    }
    return Number(v);
  }
  boolean(what = "boolean"): boolean {
    return this.int8(what) !== 0;
  }
  unsignedVarint(what = "unsigned varint"): number {
    let value = 0;
    let shift = 0;
    for (let i = 0; i < 5; i++) {
      const b = this.buf.readUInt8(this.need(1, what));
      value += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return value;
      shift += 7;
    }
    throw new FlotillaError("INVALID_REQUEST", `${what} at offset ${this.offset} is longer than 5 bytes`);
  }
  uuid(what = "uuid"): Buffer {
    const at = this.need(16, what);
    return this.buf.subarray(at, at + 16);
  }
  string(what = "string"): string {
    const s = this.nullableString(what);
    if (s === null) throw new FlotillaError("INVALID_REQUEST", `${what} is null where a string is required`);
    return s;
  }
  nullableString(what = "string"): string | null {
    const len = this.int16(`${what} length`);
    if (len < 0) return null;
    const at = this.need(len, what);
    return this.buf.toString("utf8", at, at + len);
  }
  compactString(what = "compact string"): string {
    const s = this.compactNullableString(what);
    if (s === null) throw new FlotillaError("INVALID_REQUEST", `${what} is null where a string is required`);
    return s;
  }
  compactNullableString(what = "compact string"): string | null {
    const n = this.unsignedVarint(`${what} length`);
    if (n === 0) return null;
    const at = this.need(n - 1, what);
    return this.buf.toString("utf8", at, at + n - 1);
  }
  /** A view into the request buffer (no copy): copy it if it must outlive the request. */
  bytes(what = "bytes"): Buffer {
    const b = this.nullableBytes(what);
    if (b === null) throw new FlotillaError("INVALID_REQUEST", `${what} is null where bytes are required`);
    return b;
  }
  nullableBytes(what = "bytes"): Buffer | null {
    const len = this.int32(`${what} length`);
    if (len < 0) return null;
    const at = this.need(len, what);
    return this.buf.subarray(at, at + len);
  }
  compactNullableBytes(what = "compact bytes"): Buffer | null {
    const n = this.unsignedVarint(`${what} length`);
    if (n === 0) return null;
    const at = this.need(n - 1, what);
    return this.buf.subarray(at, at + n - 1);
  }
  compactBytes(what = "compact bytes"): Buffer {
    const b = this.compactNullableBytes(what);
    if (b === null) throw new FlotillaError("INVALID_REQUEST", `${what} is null where bytes are required`);
    return b;
  }
  /** ARRAY; a null array reads as []. Each element must consume at least one byte, so a lying count fails fast. */
  array<T>(read: (r: KafkaReader) => T, what = "array"): T[] {
    const n = this.int32(`${what} count`);
    return this.elements(n, read, what);
  }
  compactArray<T>(read: (r: KafkaReader) => T, what = "compact array"): T[] {
    const n = this.unsignedVarint(`${what} count`) - 1;
    return this.elements(n, read, what);
  }
  private elements<T>(n: number, read: (r: KafkaReader) => T, what: string): T[] {
    if (n < 0) return [];
    if (n > this.remaining) throw new FlotillaError("INVALID_REQUEST", `${what} claims ${n} elements with ${this.remaining} bytes left`);
    const out: T[] = new Array<T>(n);
    for (let i = 0; i < n; i++) out[i] = read(this);
    return out;
  }
  /** Skips a TAGGED_FIELDS section (flexible versions). */
  taggedFields(what = "tagged fields"): void {
    const n = this.unsignedVarint(`${what} count`);
    if (n > this.remaining) throw new FlotillaError("INVALID_REQUEST", `${what} claims ${n} fields with ${this.remaining} bytes left`);
    for (let i = 0; i < n; i++) {
      this.unsignedVarint(`${what} tag`);
      const size = this.unsignedVarint(`${what} size`);
      this.need(size, what);
    }
  }
}

/**
 * Growable big-endian writer for responses. `toBuffer()` returns a view of the bytes
 * written so far. Large byte fields (fetched record batches) can be appended without a
 * copy with `chunk`; `toChunks()` then yields the pieces for a vectored socket write.
 */
export class KafkaWriter {
  private buf: Buffer;
  private pos = 0;
  private readonly chunks: Buffer[] = [];
  private chunkedLength = 0;

  constructor(initialBytes = 256) {
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  /** Bytes written so far, including appended chunks. */
  get length(): number {
    return this.chunkedLength + this.pos;
  }

  private ensure(bytes: number): void {
    if (this.pos + bytes <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + bytes) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  int8(v: number): this {
    this.ensure(1);
    this.pos = this.buf.writeInt8(v, this.pos);
    return this;
  }
  int16(v: number): this {
    this.ensure(2);
    this.pos = this.buf.writeInt16BE(v, this.pos);
    return this;
  }
  int32(v: number): this {
    this.ensure(4);
    this.pos = this.buf.writeInt32BE(v, this.pos);
    return this;
  }
  uint32(v: number): this {
    this.ensure(4);
    this.pos = this.buf.writeUInt32BE(v, this.pos);
    return this;
  }
  int64(v: number): this {
    this.ensure(8);
    this.pos = this.buf.writeBigInt64BE(BigInt(v), this.pos);
    return this;
  }
  boolean(v: boolean): this {
    return this.int8(v ? 1 : 0);
  }
  unsignedVarint(v: number): this {
    this.ensure(5);
    let u = v;
    while (u >= 0x80) {
      this.buf[this.pos++] = (u & 0x7f) | 0x80;
      u = Math.floor(u / 0x80);
    }
    this.buf[this.pos++] = u;
    return this;
  }
  uuid(v: Buffer): this {
    this.ensure(16);
    if (v.length === 16) v.copy(this.buf, this.pos);
    else this.buf.fill(0, this.pos, this.pos + 16);
    this.pos += 16;
    return this;
  }
  raw(b: Buffer): this {
    this.ensure(b.length);
    b.copy(this.buf, this.pos);
    this.pos += b.length;
    return this;
  }
  string(s: string): this {
    return this.nullableString(s);
  }
  nullableString(s: string | null): this {
    if (s === null) return this.int16(-1);
    const len = Buffer.byteLength(s);
    this.int16(len);
    this.ensure(len);
    this.pos += this.buf.write(s, this.pos, "utf8");
    return this;
  }
  compactString(s: string): this {
    return this.compactNullableString(s);
  }
  compactNullableString(s: string | null): this {
    if (s === null) return this.unsignedVarint(0);
    const len = Buffer.byteLength(s);
    this.unsignedVarint(len + 1);
    this.ensure(len);
    this.pos += this.buf.write(s, this.pos, "utf8");
    return this;
  }
  bytes(b: Buffer): this {
    return this.nullableBytes(b);
  }
  nullableBytes(b: Buffer | null): this {
    if (b === null) return this.int32(-1);
    this.int32(b.length);
    return this.raw(b);
  }
  compactNullableBytes(b: Buffer | null): this {
    if (b === null) return this.unsignedVarint(0);
    this.unsignedVarint(b.length + 1);
    return this.raw(b);
  }
  compactBytes(b: Buffer): this {
    return this.compactNullableBytes(b);
  }
  /** NULLABLE_BYTES whose content is appended by reference (no copy): for record batches. */
  chunkedBytes(b: Buffer | null): this {
    if (b === null) return this.int32(-1);
    this.int32(b.length);
    return this.chunk(b);
  }
  /** Appends `b` by reference. */
  chunk(b: Buffer): this {
    if (b.length === 0) return this;
    if (b.length < 1024) return this.raw(b);
    this.flushPending();
    this.chunks.push(b);
    this.chunkedLength += b.length;
    return this;
  }
  private flushPending(): void {
    if (this.pos === 0) return;
    const head = Buffer.from(this.buf.subarray(0, this.pos));
    this.chunks.push(head);
    this.chunkedLength += head.length;
    this.pos = 0;
  }
  array<T>(items: readonly T[], write: (w: this, item: T) => void): this {
    this.int32(items.length);
    for (const item of items) write(this, item);
    return this;
  }
  nullableArray<T>(items: readonly T[] | null, write: (w: this, item: T) => void): this {
    if (items === null) return this.int32(-1);
    return this.array(items, write);
  }
  compactArray<T>(items: readonly T[], write: (w: this, item: T) => void): this {
    this.unsignedVarint(items.length + 1);
    for (const item of items) write(this, item);
    return this;
  }
  /** An empty TAGGED_FIELDS section. */
  taggedFields(): this {
    return this.unsignedVarint(0);
  }
  /** Everything written, as pieces in order (no copy of chunked byte fields). */
  toChunks(): Buffer[] {
    const out = [...this.chunks];
    if (this.pos > 0) out.push(this.buf.subarray(0, this.pos));
    return out;
  }
  /** Everything written, as one buffer (copies when chunks were appended). */
  toBuffer(): Buffer {
    const chunks = this.toChunks();
    if (chunks.length === 1) return chunks[0]!;
    return Buffer.concat(chunks, this.length);
  }
}

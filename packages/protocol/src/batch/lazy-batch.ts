import { FlotillaError, assert } from "@flotilla/common";
import { VARINT_BYTES_MAX, VARLONG_BYTES_MAX } from "../varint.js";
import { decompress, type Compression } from "./compression.js";
import { ATTR_CONTROL, ATTR_TIMESTAMP_TYPE, ATTR_TRANSACTIONAL, BATCH_HEADER_BYTES, batchSizeAt, validateBatchAt, type BatchHeader } from "./header.js";
import {
  RECORD_BYTES_MIN,
  compressionFromAttributes,
  type DecodeBatchOptions,
  type DecodeBatchesOptions,
  type DecodedRecord,
  type RecordHeader,
  type TimestampType,
} from "./records.js";

/**
 * A lazily decoded RecordBatch v2 (the byte layout is documented in header.ts and
 * records.ts): the batch's frame, CRC and header are checked when the view is made, and
 * compressed records are decompressed then, once per batch. Records are NOT decoded up
 * front: a `RecordCursor` walks them one at a time, reading per record only its length,
 * timestamp delta, offset delta and the key and value lengths, and makes key and value
 * views or decodes headers only when asked. So a reader that counts records and bytes, or
 * reads only values, allocates nothing per record.
 *
 * Checks, and when they happen: the frame, magic and CRC32C (unless `verifyCrc: false`)
 * and that `recordCount` records can fit the section, at view time; per record, as the
 * cursor reaches it, the length (at least 6 bytes and within the section), every varint,
 * and that key and value lie within the record; headers, including that they fill the
 * record exactly, when `headers()` is called; and, when the cursor steps past the last
 * record, that the section holds exactly `recordCount` records. Every failure is a
 * CORRUPT_MESSAGE (or BATCH_TRUNCATED for a batch cut short) naming the batch, record and
 * byte, like `decodeBatch`. Since the CRC covers every record byte, a batch that passed the
 * CRC check only fails these if its writer was wrong.
 *
 * `decodeBatch` (records.ts) is the eager equivalent; `view.records()` gives the same
 * records as it does.
 */
export class RecordBatchView {
  readonly header: BatchHeader;
  readonly compression: Compression;
  readonly timestampType: TimestampType;
  readonly isControl: boolean;
  readonly isTransactional: boolean;
  /** Bytes the batch takes in its buffer: 12 + batchLength. */
  readonly sizeBytes: number;
  readonly baseOffset: number;
  /** baseOffset + lastOffsetDelta: the offset after which the next batch starts (lastOffset + 1). */
  readonly lastOffset: number;
  /** Records the header declares (a compacted batch may have fewer than lastOffsetDelta + 1). */
  readonly recordCount: number;
  /** The records section: the input buffer (uncompressed) or the decompressed records. */
  readonly section: Buffer;
  readonly sectionStart: number;
  readonly sectionEnd: number;
  /** "record batch at byte N" (plus the codec for compressed ones), for error messages. */
  readonly where: string;

  constructor(buf: Buffer, pos = 0, options: DecodeBatchOptions = {}) {
    assert(Number.isInteger(pos) && pos >= 0 && pos <= buf.length, "RecordBatchView position outside the buffer");
    const { header, size } = validateBatchAt(buf, pos, options.verifyCrc ?? true);
    const where = `record batch at byte ${pos}`;
    this.header = header;
    this.sizeBytes = size;
    this.baseOffset = header.baseOffset;
    this.lastOffset = header.baseOffset + header.lastOffsetDelta;
    this.recordCount = header.recordCount;
    this.timestampType = (header.attributes & ATTR_TIMESTAMP_TYPE) !== 0 ? "log-append" : "create";
    this.isControl = (header.attributes & ATTR_CONTROL) !== 0;
    this.isTransactional = (header.attributes & ATTR_TRANSACTIONAL) !== 0;
    try {
      this.compression = compressionFromAttributes(header.attributes);
    } catch (err) {
      throw withContext(err, where);
    }
    if (this.compression === "none") {
      this.section = buf;
      this.sectionStart = pos + BATCH_HEADER_BYTES;
      this.sectionEnd = pos + size;
      this.where = where;
    } else {
      let data: Buffer;
      try {
        data = decompress(this.compression, buf.subarray(pos + BATCH_HEADER_BYTES, pos + size), options);
      } catch (err) {
        throw withContext(err, where);
      }
      this.section = data;
      this.sectionStart = 0;
      this.sectionEnd = data.length;
      this.where = `${where} (${this.compression}-decompressed records)`;
    }
    const sectionBytes = this.sectionEnd - this.sectionStart;
    if (this.recordCount > sectionBytes / RECORD_BYTES_MIN) {
      this.fail(
        `record count ${this.recordCount} cannot fit in the ${sectionBytes}-byte records section (a record takes at least ${RECORD_BYTES_MIN} bytes)`,
        this.sectionStart,
      );
    }
  }

  /**
   * A cursor before the first record at or after `fromOffset` (default: the first record).
   * Records below `fromOffset` are stepped over (read, not returned): a fetch returns whole
   * batches, so the one holding the fetch offset may begin before it.
   */
  cursor(fromOffset = -1): RecordCursor {
    return new RecordCursor(this, fromOffset);
  }

  /** Every record, decoded eagerly: the same as `decodeBatch(...).records`. */
  records(): DecodedRecord[] {
    const out = new Array<DecodedRecord>(this.recordCount);
    const c = this.cursor();
    let i = 0;
    while (c.next()) out[i++] = c.toRecord();
    return out;
  }

  /** @internal Throws CORRUPT_MESSAGE about byte `at` of `section` (absolute, as decodeBatch reports it). */
  fail(detail: string, at: number): never {
    throw new FlotillaError("CORRUPT_MESSAGE", `${this.where}: ${detail} at byte ${at}`);
  }
}

/**
 * Walks the records of a RecordBatchView. A flyweight: after `next()` returns true its
 * fields describe the current record, and the next call overwrites them, so a loop over a
 * batch allocates nothing unless it asks for `key()`, `value()` or `headers()`.
 *
 *   const c = view.cursor();
 *   while (c.next()) total += c.valueLength;
 */
export class RecordCursor {
  /** Index of the current record in the batch (0-based; -1 before the first). */
  index = -1;
  /** Absolute offset: baseOffset + offsetDelta. */
  offset = -1;
  /** ms since the epoch: baseTimestamp + timestampDelta, or the batch's maxTimestamp for LogAppendTime. */
  timestamp = -1;
  /** Bytes of the key; -1 for a null key. */
  keyLength = -1;
  /** Bytes of the value; -1 for a null value. */
  valueLength = -1;

  private readonly view: RecordBatchView;
  private readonly buf: Buffer;
  private readonly sectionEnd: number;
  private readonly fromOffset: number;
  /** Start of the next record. */
  private pos: number;
  /** Where the current record starts (its length field), ends, and its key and value start. */
  private recordStart = 0;
  private recordLength = 0;
  private recordEnd = 0;
  private keyStart = 0;
  private valueStart = 0;
  /** Scratch for the varint readers: the position after the field just read. */
  private after = 0;

  constructor(view: RecordBatchView, fromOffset: number) {
    this.view = view;
    this.buf = view.section;
    this.pos = view.sectionStart;
    this.sectionEnd = view.sectionEnd;
    this.fromOffset = fromOffset;
  }

  /** The batch this cursor walks. */
  get batch(): RecordBatchView {
    return this.view;
  }

  /**
   * Moves to the next record (at or after the cursor's fromOffset); false after the last.
   * Throws CORRUPT_MESSAGE when the record is malformed, or when the section does not hold
   * exactly the declared number of records.
   */
  next(): boolean {
    const view = this.view;
    // Bounded by recordCount: each turn consumes a record or returns.
    for (;;) {
      const i = this.index + 1;
      if (i >= view.recordCount) {
        if (i === view.recordCount && this.pos !== this.sectionEnd) {
          this.index = i; // report once
          view.fail(`record count mismatch: ${this.sectionEnd - this.pos} bytes remain after the ${view.recordCount} records the batch declares`, this.pos);
        }
        this.index = view.recordCount;
        return false;
      }
      this.index = i;
      this.readRecord(i);
      if (this.offset >= this.fromOffset) return true;
    }
  }

  private readRecord(i: number): void {
    const view = this.view;
    const buf = this.buf;
    const start = this.pos;
    const sectionEnd = this.sectionEnd;
    if (start >= sectionEnd) view.fail(`record count mismatch: batch declares ${view.recordCount} records but the records section ends after ${i}`, start);
    const length = this.varint(start, sectionEnd, "length", i);
    let p = this.after;
    if (length < 6) view.fail(`record ${i} declares length ${length}, less than the 6 bytes of its fields`, start);
    const end = p + length;
    if (end > sectionEnd) view.fail(`truncated record ${i}: declares ${length} bytes but ${sectionEnd - p} remain`, start);
    p++; // attributes (int8, unused); length >= 6 guarantees the byte is there
    // timestampDelta: a one-byte varlong is the common case (records of one batch share a millisecond).
    let timestampDelta: number;
    const t0 = buf[p]!;
    if (t0 < 0x80) {
      timestampDelta = (t0 >>> 1) ^ -(t0 & 1);
      p++;
    } else {
      timestampDelta = this.varlong(p, end, "timestampDelta", i);
      p = this.after;
    }
    const offsetDelta = this.varint(p, end, "offsetDelta", i);
    p = this.after;
    const keyLength = this.varint(p, end, "key length", i);
    if (keyLength < -1) view.fail(`key of record ${i} has length ${keyLength}; only -1 (null) may be negative`, p);
    p = this.after;
    const keyStart = p;
    if (keyLength > 0) {
      if (keyLength > end - p) view.fail(`truncated key of record ${i}: needs ${keyLength} bytes but ${end - p} remain`, p);
      p += keyLength;
    }
    const valueLength = this.varint(p, end, "value length", i);
    if (valueLength < -1) view.fail(`value of record ${i} has length ${valueLength}; only -1 (null) may be negative`, p);
    p = this.after;
    const valueStart = p;
    if (valueLength > 0) {
      if (valueLength > end - p) view.fail(`truncated value of record ${i}: needs ${valueLength} bytes but ${end - p} remain`, p);
      p += valueLength;
    }
    // The header count must be there; the headers themselves are read by headers().
    if (p >= end) view.fail(`truncated varint header count of record ${i}`, p);
    this.recordStart = start;
    this.recordLength = length;
    this.recordEnd = end;
    this.keyStart = keyStart;
    this.valueStart = valueStart;
    this.keyLength = keyLength;
    this.valueLength = valueLength;
    this.offset = view.baseOffset + offsetDelta;
    this.timestamp = view.timestampType === "log-append" ? view.header.maxTimestamp : view.header.baseTimestamp + timestampDelta;
    this.pos = end;
  }

  /** The key as a view into the batch's bytes (no copy), or null. */
  key(): Buffer | null {
    this.checkOnRecord();
    return this.keyLength < 0 ? null : this.buf.subarray(this.keyStart, this.keyStart + this.keyLength);
  }

  /** The value as a view into the batch's bytes (no copy), or null. */
  value(): Buffer | null {
    this.checkOnRecord();
    return this.valueLength < 0 ? null : this.buf.subarray(this.valueStart, this.valueStart + this.valueLength);
  }

  /** Decodes the current record's headers (values are views), checking they fill the record exactly. */
  headers(): RecordHeader[] {
    this.checkOnRecord();
    const view = this.view;
    const i = this.index;
    const end = this.recordEnd;
    let p = this.valueStart + (this.valueLength > 0 ? this.valueLength : 0);
    const count = this.varint(p, end, "header count", i);
    p = this.after;
    if (count < 0) view.fail(`record ${i} has a negative header count ${count}`, p);
    // A header takes at least 2 bytes (two 1-byte lengths).
    if (count > (end - p) / 2) view.fail(`record ${i} declares ${count} headers, more than its remaining ${end - p} bytes can hold`, p);
    const out = new Array<RecordHeader>(count);
    for (let h = 0; h < count; h++) {
      const keyLength = this.varint(p, end, `key length of header ${h}`, i);
      p = this.after;
      if (keyLength < 0) view.fail(`header ${h} of record ${i} has a negative key length ${keyLength}`, p);
      if (keyLength > end - p) view.fail(`truncated key of header ${h} of record ${i}: needs ${keyLength} bytes but ${end - p} remain`, p);
      const key = this.buf.toString("utf8", p, p + keyLength);
      p += keyLength;
      const valueLength = this.varint(p, end, `value length of header ${h}`, i);
      if (valueLength < -1) view.fail(`value of header ${h} of record ${i} has length ${valueLength}; only -1 (null) may be negative`, p);
      p = this.after;
      let value: Buffer | null = null;
      if (valueLength >= 0) {
        if (valueLength > end - p) view.fail(`truncated value of header ${h} of record ${i}: needs ${valueLength} bytes but ${end - p} remain`, p);
        value = this.buf.subarray(p, p + valueLength);
        p += valueLength;
      }
      out[h] = { key, value };
    }
    if (p !== end) view.fail(`record ${i} declares length ${this.recordLength} but its fields end ${end - p} bytes early`, this.recordStart);
    return out;
  }

  /** The current record, decoded eagerly (as decodeBatch returns it). */
  toRecord(): DecodedRecord {
    return { offset: this.offset, timestamp: this.timestamp, key: this.key(), value: this.value(), headers: this.headers() };
  }

  private checkOnRecord(): void {
    assert(this.index >= 0 && this.index < this.view.recordCount, "RecordCursor is not on a record: call next() first and use the record before the next call");
  }

  /** A zig-zag varint (at most 5 bytes, 32 bits) at `p` within `end`; sets `after`. */
  private varint(p: number, end: number, field: string, record: number): number {
    const buf = this.buf;
    if (p < end) {
      const b0 = buf[p]!;
      if (b0 < 0x80) {
        this.after = p + 1;
        return (b0 >>> 1) ^ -(b0 & 1);
      }
    }
    const start = p;
    let u = 0;
    for (let i = 0; i < VARINT_BYTES_MAX; i++) {
      if (p >= end) this.view.fail(`truncated varint ${field} of record ${record}`, start);
      const b = buf[p++]!;
      if (i === VARINT_BYTES_MAX - 1) {
        // The 5th byte holds bits 28..31: only its low 4 bits may be set.
        if (b > 0x0f) this.view.fail(`bad varint ${field} of record ${record}: longer than 5 bytes or wider than 32 bits`, start);
        u |= b << 28;
      } else {
        u |= (b & 0x7f) << (7 * i);
        if (b < 0x80) break;
      }
    }
    this.after = p;
    return (u >>> 1) ^ -(u & 1);
  }

  /** A zig-zag varlong (at most 10 bytes, zig-zag form below 2^53) at `p` within `end`; sets `after`. */
  private varlong(p: number, end: number, field: string, record: number): number {
    const buf = this.buf;
    const start = p;
    let u = 0;
    let scale = 1;
    for (let i = 0; ; i++) {
      if (i === VARLONG_BYTES_MAX) this.view.fail(`bad varlong ${field} of record ${record}: longer than 10 bytes`, start);
      if (p >= end) this.view.fail(`truncated varlong ${field} of record ${record}`, start);
      const b = buf[p++]!;
      u += (b & 0x7f) * scale;
      if (b < 0x80) break;
      scale *= 0x80;
    }
    if (u >= 2 ** 53) this.view.fail(`varlong ${field} of record ${record} has magnitude above 2^52, which this decoder does not support`, start);
    this.after = p;
    return u % 2 === 1 ? -(u + 1) / 2 : u / 2;
  }
}

/** The same coded error with `where` put in front of its detail. */
function withContext(err: unknown, where: string): unknown {
  if (!(err instanceof FlotillaError)) return err;
  const prefix = `${err.errorName}: `;
  const detail = err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
  return new FlotillaError(err.errorName, `${where}: ${detail}`, { cause: err });
}

/** A lazy view of the batch at `pos` (see RecordBatchView). */
export function viewBatch(buf: Buffer, pos = 0, options: DecodeBatchOptions = {}): RecordBatchView {
  return new RecordBatchView(buf, pos, options);
}

/**
 * Lazy views of the back-to-back batches filling `buf`, as decodeBatches decodes them: with
 * `allowPartialTail`, a last batch cut short by the end of the buffer is left out (a fetch
 * response may end so); without it, that is BATCH_TRUNCATED.
 */
export function viewBatches(buf: Buffer, options: DecodeBatchesOptions = {}): RecordBatchView[] {
  const out: RecordBatchView[] = [];
  let pos = 0;
  // Each turn advances by a whole batch (at least 61 bytes) or stops, so this ends.
  while (pos < buf.length) {
    const remaining = buf.length - pos;
    if (options.allowPartialTail) {
      if (remaining < BATCH_HEADER_BYTES) break;
      if (batchSizeAt(buf, pos) > remaining) break;
    }
    const view = new RecordBatchView(buf, pos, options);
    out.push(view);
    pos += view.sizeBytes;
  }
  return out;
}

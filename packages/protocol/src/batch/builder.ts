import { AssertionError, FlotillaError, assert } from "@flotilla/common";
import { sizeOfVarint, sizeOfVarlong, writeVarint, writeVarlong } from "../varint.js";
import { compress, compressionCode, type Compression } from "./compression.js";
import {
  BATCH_HEADER_BYTES,
  LOG_OVERHEAD,
  MAGIC_V2,
  OFF_ATTRIBUTES,
  OFF_BASE_OFFSET,
  OFF_BASE_SEQUENCE,
  OFF_BASE_TIMESTAMP,
  OFF_BATCH_LENGTH,
  OFF_LAST_OFFSET_DELTA,
  OFF_LEADER_EPOCH,
  OFF_MAGIC,
  OFF_MAX_TIMESTAMP,
  OFF_PRODUCER_EPOCH,
  OFF_PRODUCER_ID,
  OFF_RECORD_COUNT,
  writeBatchCrc,
  writeInt64BE,
} from "./header.js";
import type { RecordHeader } from "./records.js";

/**
 * A RecordBatch v2 built one record at a time, as Kafka's MemoryRecordsBuilder does: each
 * record is written into the batch's buffer when it is appended, so nothing per record is
 * kept after that. The layout is the one documented in records.ts (records) and header.ts
 * (the 61-byte header); the bytes equal `encodeBatch` of the same records with the same
 * options (CreateTime, not transactional, not a control batch).
 *
 * Why every byte of a record is known at append: the batch's baseTimestamp is its first
 * record's timestamp and a record's offsetDelta is its index in the batch, so the
 * timestampDelta and offsetDelta varints of record i depend only on records 0..i.
 *
 * The buffer holds the header's 61 bytes (written by `build`) followed by the records, so an
 * uncompressed batch is finished in place, without a copy. A compressed batch compresses the
 * records section once, at `build`, into a new buffer. The producer fields (producerId,
 * epoch, baseSequence) go into the header at `build`; `stampProducerState` rewrites them (and
 * the CRC) in a built batch, which is all an idempotent producer's epoch bump needs.
 */

/** Fixed producer fields of a batch header; -1s for a producer that is not idempotent. */
export interface ProducerState {
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
}

export interface RecordBatchBuilderOptions {
  compression?: Compression;
  /**
   * The buffer to write into (for example one taken from a pool): it must hold at least the
   * header. The builder grows past it (reallocating) only when a record does not fit.
   */
  buffer?: Buffer;
  /** Initial capacity when no buffer is given. Default 16384. */
  capacityBytes?: number;
  /**
   * The buffer grows by doubling, but not past this many bytes unless a record needs more
   * (a producer passes batch.size, so a grown buffer is exactly batch.size and can be
   * reused for the next batch). Default: no limit.
   */
  growthLimitBytes?: number;
}

/** Header fields a producer leaves at their defaults but other writers set (encodeBatch). */
export interface BatchHeaderOptions {
  /** Default 0; the broker assigns the real one on append. */
  baseOffset?: number;
  /** Default -1 (Kafka's NO_PARTITION_LEADER_EPOCH). */
  partitionLeaderEpoch?: number;
  /** Attribute bits besides the compression codec (timestamp type, transactional, control). */
  attributeFlags?: number;
}

const INT32_MAX = 2 ** 31 - 1;
const DEFAULT_CAPACITY_BYTES = 16_384;

/**
 * Bytes of a record's fields that do not depend on its place in a batch: attributes, key,
 * value and headers with their lengths (everything but the length, timestampDelta and
 * offsetDelta varints). `RecordBatchBuilder.recordBytes` adds the rest.
 */
export function recordFieldsBytes(key: Uint8Array | null, value: Uint8Array | null, headers: readonly RecordHeader[] | undefined): number {
  let n = 1;
  n += key === null ? 1 : sizeOfVarint(key.length) + key.length;
  n += value === null ? 1 : sizeOfVarint(value.length) + value.length;
  if (headers === undefined || headers.length === 0) return n + 1;
  n += sizeOfVarint(headers.length);
  for (let h = 0; h < headers.length; h++) {
    const header = headers[h]!;
    const keyBytes = Buffer.byteLength(header.key, "utf8");
    n += sizeOfVarint(keyBytes) + keyBytes;
    n += header.value === null ? 1 : sizeOfVarint(header.value.length) + header.value.length;
  }
  return n;
}

export class RecordBatchBuilder {
  private buf: Buffer;
  /** Next free byte: the header's 61 bytes plus the records written so far. */
  private pos = BATCH_HEADER_BYTES;
  private count = 0;
  private baseTimestampValue = 0;
  private maxTimestampValue = 0;
  private built = false;
  private readonly growthLimitBytes: number;
  readonly compression: Compression;

  constructor(options: RecordBatchBuilderOptions = {}) {
    this.compression = options.compression ?? "none";
    this.growthLimitBytes = options.growthLimitBytes ?? INT32_MAX;
    const buffer = options.buffer;
    if (buffer !== undefined) {
      assert(buffer.length >= BATCH_HEADER_BYTES, "a batch buffer must hold at least the header");
      this.buf = buffer;
    } else {
      this.buf = Buffer.allocUnsafe(Math.max(BATCH_HEADER_BYTES, options.capacityBytes ?? DEFAULT_CAPACITY_BYTES));
    }
  }

  /** Records appended so far. */
  get recordCount(): number {
    return this.count;
  }

  /** Bytes of the batch so far, uncompressed: the header plus every record appended. */
  get sizeBytes(): number {
    return this.pos;
  }

  /** The first record's timestamp (the batch's baseTimestamp); 0 before the first record. */
  get baseTimestamp(): number {
    return this.baseTimestampValue;
  }

  get maxTimestamp(): number {
    return this.maxTimestampValue;
  }

  /** The buffer written into (its capacity may exceed `sizeBytes`), e.g. to give back to a pool once the batch is done. */
  get buffer(): Buffer {
    return this.buf;
  }

  /**
   * Bytes the next record would take in this batch, given its timestamp and
   * `recordFieldsBytes` of its key, value and headers.
   */
  recordBytes(timestamp: number, fieldsBytes: number): number {
    const body = fieldsBytes + sizeOfVarlong(this.count === 0 ? 0 : timestamp - this.baseTimestampValue) + sizeOfVarint(this.count);
    return sizeOfVarint(body) + body;
  }

  /**
   * Writes one record (CreateTime `timestamp`, ms) as the batch's next one and returns the
   * bytes it took. `fieldsBytes` must be `recordFieldsBytes(key, value, headers)` (passed in
   * by callers that computed it already). Throws MESSAGE_TOO_LARGE when the batch would pass
   * Kafka's int32 length; a timestamp that is not an integer within ±2^51 is a programmer
   * error (assert), as callers validate their input.
   */
  append(timestamp: number, key: Uint8Array | null, value: Uint8Array | null, headers?: readonly RecordHeader[], fieldsBytes = recordFieldsBytes(key, value, headers)): number {
    if (this.built) throw new AssertionError("append to a record batch that was already built");
    const index = this.count;
    if (index === 0 && !Number.isSafeInteger(timestamp)) throw new AssertionError(`record timestamp ${timestamp} is not a safe integer`);
    const timestampDelta = index === 0 ? 0 : timestamp - this.baseTimestampValue;
    const body = fieldsBytes + sizeOfVarlong(timestampDelta) + sizeOfVarint(index);
    const recordBytes = sizeOfVarint(body) + body;
    if (this.pos + recordBytes > INT32_MAX) throw new FlotillaError("MESSAGE_TOO_LARGE", `a record of ${recordBytes} bytes would take the batch past the int32 length Kafka's batch format can say`);
    if (this.pos + recordBytes > this.buf.length) this.grow(this.pos + recordBytes);
    const buf = this.buf;
    let pos = writeVarint(buf, this.pos, body);
    buf[pos++] = 0; // attributes
    pos = writeVarlong(buf, pos, timestampDelta);
    pos = writeVarint(buf, pos, index);
    pos = writeNullableBytes(buf, pos, key);
    pos = writeNullableBytes(buf, pos, value);
    if (headers === undefined || headers.length === 0) {
      buf[pos++] = 0;
    } else {
      pos = writeVarint(buf, pos, headers.length);
      for (let h = 0; h < headers.length; h++) {
        const header = headers[h]!;
        const keyBytes = Buffer.byteLength(header.key, "utf8");
        pos = writeVarint(buf, pos, keyBytes);
        pos += buf.write(header.key, pos, keyBytes, "utf8");
        pos = writeNullableBytes(buf, pos, header.value);
      }
    }
    if (pos !== this.pos + recordBytes) throw new AssertionError(`record ${index} took ${pos - this.pos} bytes, sized ${recordBytes} (fieldsBytes does not match the record)`);
    this.pos = pos;
    this.count = index + 1;
    if (index === 0) {
      this.baseTimestampValue = timestamp;
      this.maxTimestampValue = timestamp;
    } else if (timestamp > this.maxTimestampValue) {
      this.maxTimestampValue = timestamp;
    }
    return recordBytes;
  }

  /**
   * Finishes the batch: compresses the records section when the builder compresses, writes
   * the header with `producer` and the CRC32C, and returns the batch. Uncompressed, that is a
   * view of the builder's buffer (no copy); compressed, a new buffer, and the builder's
   * buffer is free for reuse. No record may be appended afterwards.
   */
  build(producer: ProducerState = { producerId: -1, producerEpoch: -1, baseSequence: -1 }, header: BatchHeaderOptions = {}): Buffer {
    assert(this.count > 0, "a record batch needs at least one record (Kafka batches carry lastOffsetDelta = count - 1)");
    assert(!this.built, "a record batch is built once");
    this.built = true;
    let out: Buffer;
    if (this.compression === "none") {
      out = this.buf.subarray(0, this.pos);
    } else {
      const compressed = compress(this.compression, this.buf.subarray(BATCH_HEADER_BYTES, this.pos));
      if (compressed.length > INT32_MAX - BATCH_HEADER_BYTES) throw new FlotillaError("MESSAGE_TOO_LARGE", `compressed records take ${compressed.length} bytes`);
      out = Buffer.allocUnsafe(BATCH_HEADER_BYTES + compressed.length);
      out.set(compressed, BATCH_HEADER_BYTES);
    }
    writeInt64BE(out, OFF_BASE_OFFSET, header.baseOffset ?? 0);
    out.writeInt32BE(out.length - LOG_OVERHEAD, OFF_BATCH_LENGTH);
    out.writeInt32BE(header.partitionLeaderEpoch ?? -1, OFF_LEADER_EPOCH);
    out.writeInt8(MAGIC_V2, OFF_MAGIC);
    out.writeInt16BE(compressionCode(this.compression) | (header.attributeFlags ?? 0), OFF_ATTRIBUTES);
    out.writeInt32BE(this.count - 1, OFF_LAST_OFFSET_DELTA);
    writeInt64BE(out, OFF_BASE_TIMESTAMP, this.baseTimestampValue);
    writeInt64BE(out, OFF_MAX_TIMESTAMP, this.maxTimestampValue);
    out.writeInt32BE(this.count, OFF_RECORD_COUNT);
    stampProducerState(out, producer);
    return out;
  }

  private grow(neededBytes: number): void {
    const next = Buffer.allocUnsafeSlow(Math.max(neededBytes, Math.min(this.buf.length * 2, this.growthLimitBytes, INT32_MAX)));
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }
}

/**
 * Writes producerId, producerEpoch and baseSequence into the header of the batch that fills
 * `batch` and recomputes its CRC (all three are inside the CRC'd range). The records are not
 * touched, so a compressed batch is not re-compressed.
 */
export function stampProducerState(batch: Buffer, producer: ProducerState): void {
  const { producerId, producerEpoch, baseSequence } = producer;
  assert(Number.isSafeInteger(producerId) && producerId >= -1, () => `producerId ${producerId} is not -1 or a non-negative safe integer`);
  assert(Number.isInteger(producerEpoch) && producerEpoch >= -(2 ** 15) && producerEpoch < 2 ** 15, () => `producerEpoch ${producerEpoch} is not an int16`);
  assert(Number.isInteger(baseSequence) && baseSequence >= -(2 ** 31) && baseSequence <= INT32_MAX, () => `baseSequence ${baseSequence} is not an int32`);
  writeInt64BE(batch, OFF_PRODUCER_ID, producerId);
  batch.writeInt16BE(producerEpoch, OFF_PRODUCER_EPOCH);
  batch.writeInt32BE(baseSequence, OFF_BASE_SEQUENCE);
  writeBatchCrc(batch, 0, batch.length);
}

function writeNullableBytes(buf: Buffer, pos: number, bytes: Uint8Array | null): number {
  if (bytes === null) {
    buf[pos] = 1; // zig-zag(-1)
    return pos + 1;
  }
  pos = writeVarint(buf, pos, bytes.length);
  buf.set(bytes, pos);
  return pos + bytes.length;
}

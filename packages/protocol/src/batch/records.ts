import { AssertionError, FlotillaError, assert } from "@flotilla/common";
import { VARINT_BYTES_MAX, VARLONG_BYTES_MAX } from "../varint.js";
import { compressionFromCode, type Compression, type DecompressOptions } from "./compression.js";
import { RecordBatchBuilder, recordFieldsBytes } from "./builder.js";
import { RecordBatchView } from "./lazy-batch.js";
import {
  ATTR_COMPRESSION_MASK,
  ATTR_CONTROL,
  ATTR_TIMESTAMP_TYPE,
  ATTR_TRANSACTIONAL,
  BATCH_HEADER_BYTES,
  LOG_OVERHEAD,
  OFF_ATTRIBUTES,
  OFF_MAX_TIMESTAMP,
  batchSizeAt,
  writeBatchCrc,
  writeInt64BE,
  type BatchHeader,
} from "./header.js";

export type { Compression } from "./compression.js";

/**
 * The records of a Kafka RecordBatch v2 (Kafka protocol guide, "Record" and "Record
 * Header"; the 61-byte batch header is documented in header.ts). After the header come
 * `recordCount` records, back to back, compressed as one block when attributes bits 0-2
 * say so. Each record:
 *
 *   length          varint   bytes of the record after this field
 *   attributes      int8     unused, 0
 *   timestampDelta  varlong  timestamp - batch baseTimestamp (may be negative)
 *   offsetDelta     varint   offset - batch baseOffset (0, 1, 2, ... as written by a producer)
 *   keyLength       varint   -1 for a null key
 *   key             bytes
 *   valueLength     varint   -1 for a null value
 *   value           bytes
 *   headerCount     varint
 *   headers, each:
 *     headerKeyLength    varint  (never null)
 *     headerKey          UTF-8 bytes
 *     headerValueLength  varint  -1 for a null value
 *     headerValue        bytes
 *
 * Varints and varlongs are zig-zag encoded (see varint.ts). The smallest record is 7 bytes
 * (a 1-byte length and six 1-byte fields), which bounds how many records a section can hold.
 *
 * Timestamps: in a CreateTime batch a record's timestamp is baseTimestamp + timestampDelta
 * and maxTimestamp is the largest of them. In a LogAppendTime batch (attributes bit 3) the
 * broker has stamped maxTimestamp with its append time, and readers report that as every
 * record's timestamp (Kafka's DefaultRecordBatch does the same), whatever the deltas say.
 */

export type TimestampType = "create" | "log-append";

export interface RecordHeader {
  key: string;
  value: Buffer | null;
}

export interface ProducerRecord {
  key: Buffer | null;
  value: Buffer | null;
  headers?: RecordHeader[];
  /** Milliseconds since the epoch. Default: `EncodeBatchOptions.nowMs`, else -1 (Kafka's NO_TIMESTAMP). */
  timestamp?: number;
}

export interface EncodeBatchOptions {
  compression?: Compression;
  /** Default 0; the broker assigns the real one on append. */
  baseOffset?: number;
  /** Default -1 (Kafka's NO_PARTITION_LEADER_EPOCH); the leader sets it on append. */
  partitionLeaderEpoch?: number;
  /** Default -1 (not idempotent). */
  producerId?: number;
  /** Default -1. */
  producerEpoch?: number;
  /** Sequence number of the first record; default -1. */
  baseSequence?: number;
  /**
   * Default "create". "log-append" stamps every record with `nowMs` (required then) as
   * Kafka's MemoryRecordsBuilder does for LogAppendTime, and sets attributes bit 3.
   */
  timestampType?: TimestampType;
  transactional?: boolean;
  /** A control batch (transaction markers); attributes bit 5. Default false. */
  isControl?: boolean;
  /** Default timestamp for records without one; with "log-append", the append time. */
  nowMs?: number;
}

export interface DecodedRecord {
  offset: number;
  timestamp: number;
  /** A view into the decoded buffer (the input for uncompressed batches): copy it to keep it past the buffer's life or to change it. */
  key: Buffer | null;
  /** A view, like `key`. */
  value: Buffer | null;
  headers: RecordHeader[];
}

export interface DecodedBatch {
  header: BatchHeader;
  compression: Compression;
  timestampType: TimestampType;
  isControl: boolean;
  records: DecodedRecord[];
}

export interface DecodeBatchOptions extends DecompressOptions {
  /** Check the CRC32C of the batch. Default true. */
  verifyCrc?: boolean;
}

export interface DecodeBatchesOptions extends DecodeBatchOptions {
  /** Ignore a last batch cut short by the end of the buffer (as a fetch response may end). Default false. */
  allowPartialTail?: boolean;
}

/** Kafka's RecordBatch.NO_TIMESTAMP. */
export const NO_TIMESTAMP = -1;
/** Fewest bytes a record can take: see the layout above. */
export const RECORD_BYTES_MIN = 7;
const INT32_MAX = 2 ** 31 - 1;

/** The codec in attributes bits 0-2; CORRUPT_MESSAGE for the undefined codes 5-7. */
export function compressionFromAttributes(attributes: number): Compression {
  return compressionFromCode(attributes & ATTR_COMPRESSION_MASK);
}

function isInt(value: number, min: number, max: number): boolean {
  return Number.isSafeInteger(value) && value >= min && value <= max;
}

/**
 * Encodes `records` as one RecordBatch v2 with offset deltas 0..n-1, compressing the records
 * section when asked and computing the CRC32C. Sizes are computed first and the records
 * are written into one preallocated buffer. Throws MESSAGE_TOO_LARGE when the batch would
 * not fit Kafka's int32 length; other bad arguments are programmer errors (assert).
 */
export function encodeBatch(records: readonly ProducerRecord[], options: EncodeBatchOptions = {}): Buffer {
  const count = records.length;
  assert(count > 0, "encodeBatch needs at least one record (Kafka batches carry lastOffsetDelta = count - 1)");
  const compression = options.compression ?? "none";
  const timestampType = options.timestampType ?? "create";
  const baseOffset = options.baseOffset ?? 0;
  const partitionLeaderEpoch = options.partitionLeaderEpoch ?? -1;
  const producerId = options.producerId ?? -1;
  const producerEpoch = options.producerEpoch ?? -1;
  const baseSequence = options.baseSequence ?? -1;
  const nowMs = options.nowMs;
  assert(isInt(baseOffset, 0, Number.MAX_SAFE_INTEGER), () => `baseOffset ${baseOffset} is not a non-negative safe integer`);
  assert(isInt(partitionLeaderEpoch, -(2 ** 31), INT32_MAX), () => `partitionLeaderEpoch ${partitionLeaderEpoch} is not an int32`);
  assert(isInt(producerId, -1, Number.MAX_SAFE_INTEGER), () => `producerId ${producerId} is not -1 or a non-negative safe integer`);
  assert(isInt(producerEpoch, -(2 ** 15), 2 ** 15 - 1), () => `producerEpoch ${producerEpoch} is not an int16`);
  assert(isInt(baseSequence, -(2 ** 31), INT32_MAX), () => `baseSequence ${baseSequence} is not an int32`);
  assert(nowMs === undefined || Number.isSafeInteger(nowMs), () => `nowMs ${nowMs} is not a safe integer`);
  assert(timestampType === "create" || nowMs !== undefined, "timestampType log-append needs nowMs, the append time");
  assert(count <= INT32_MAX, "too many records for one batch");

  // The builder writes the records (a scratch buffer sized for all of them, so it never
  // grows) and the header; this function adds the fields a producer never sets.
  const logAppend = timestampType === "log-append";
  const defaultTimestamp = nowMs ?? NO_TIMESTAMP;
  const fieldsBytes = new Array<number>(count);
  let capacityBytes = BATCH_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    const r = records[i]!;
    fieldsBytes[i] = recordFieldsBytes(r.key, r.value, r.headers);
    capacityBytes += fieldsBytes[i]! + VARLONG_BYTES_MAX + 2 * VARINT_BYTES_MAX;
  }
  const builder = new RecordBatchBuilder({ compression, capacityBytes: Math.min(capacityBytes, INT32_MAX) });
  for (let i = 0; i < count; i++) {
    const r = records[i]!;
    const timestamp = logAppend ? nowMs! : (r.timestamp ?? defaultTimestamp);
    if (!Number.isSafeInteger(timestamp)) throw new AssertionError(`record ${i} has timestamp ${timestamp}, not a safe integer`);
    builder.append(timestamp, r.key, r.value, r.headers, fieldsBytes[i]);
  }
  let attributeFlags = 0;
  if (logAppend) attributeFlags |= ATTR_TIMESTAMP_TYPE;
  if (options.transactional) attributeFlags |= ATTR_TRANSACTIONAL;
  if (options.isControl) attributeFlags |= ATTR_CONTROL;
  return builder.build({ producerId, producerEpoch, baseSequence }, { baseOffset, partitionLeaderEpoch, attributeFlags });
}

/**
 * Decodes the batch at `pos`: checks its frame and (by default) CRC, decompresses the
 * records within `decompressedBytesMax`, and reads every record. Keys, values and header
 * values are views into `buf` (uncompressed) or into the decompressed buffer: nothing is
 * copied. Any inconsistency is a CORRUPT_MESSAGE naming the field and byte (positions in
 * `buf`, or in the decompressed records for compressed batches); a batch cut short by the
 * end of `buf` is BATCH_TRUNCATED.
 *
 * This is the eager form of RecordBatchView (lazy-batch.ts), which does the reading: a
 * reader that does not need every record as an object should walk a view's cursor instead.
 */
export function decodeBatch(buf: Buffer, pos = 0, options: DecodeBatchOptions = {}): DecodedBatch {
  const view = new RecordBatchView(buf, pos, options);
  return { header: view.header, compression: view.compression, timestampType: view.timestampType, isControl: view.isControl, records: view.records() };
}

/**
 * Decodes back-to-back batches filling `buf`. With `allowPartialTail`, a last batch cut
 * short by the end of the buffer (fewer bytes than its header or its declared length) is
 * left out, as Kafka clients do with fetch responses; without it, that is BATCH_TRUNCATED.
 */
export function decodeBatches(buf: Buffer, options: DecodeBatchesOptions = {}): DecodedBatch[] {
  const out: DecodedBatch[] = [];
  let pos = 0;
  // Each turn advances by a whole batch (at least 61 bytes) or stops, so this ends.
  while (pos < buf.length) {
    const remaining = buf.length - pos;
    if (options.allowPartialTail) {
      if (remaining < BATCH_HEADER_BYTES) break;
      const size = batchSizeAt(buf, pos);
      if (size > remaining) break;
    }
    const batch = decodeBatch(buf, pos, options);
    out.push(batch);
    pos += LOG_OVERHEAD + batch.header.batchLength;
  }
  return out;
}

/**
 * Turns the batch at `pos` into a LogAppendTime batch stamped `timestampMs`, as a broker does
 * for topics with message.timestamp.type=LogAppendTime: sets attributes bit 3 and
 * maxTimestamp, and recomputes the CRC (both fields are inside the CRC'd range). Record
 * deltas are left alone; readers take maxTimestamp as every record's timestamp.
 */
export function setLogAppendTime(buf: Buffer, pos: number, timestampMs: number): void {
  assert(Number.isSafeInteger(timestampMs), () => `timestampMs ${timestampMs} is not a safe integer`);
  const remaining = buf.length - pos;
  if (remaining < BATCH_HEADER_BYTES) {
    throw new FlotillaError("BATCH_TRUNCATED", `record batch at byte ${pos} has ${remaining} bytes, fewer than the ${BATCH_HEADER_BYTES}-byte header`);
  }
  const size = batchSizeAt(buf, pos);
  if (size < BATCH_HEADER_BYTES) throw new FlotillaError("CORRUPT_MESSAGE", `record batch at byte ${pos} declares ${size} bytes, fewer than its header`);
  if (size > remaining) throw new FlotillaError("BATCH_TRUNCATED", `record batch at byte ${pos} declares ${size} bytes but only ${remaining} are present`);
  buf.writeInt16BE(buf.readInt16BE(pos + OFF_ATTRIBUTES) | ATTR_TIMESTAMP_TYPE, pos + OFF_ATTRIBUTES);
  writeInt64BE(buf, pos + OFF_MAX_TIMESTAMP, timestampMs);
  writeBatchCrc(buf, pos, size);
}

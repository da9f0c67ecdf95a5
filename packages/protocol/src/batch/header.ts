import { crc32c } from "@node-rs/crc32";
import { FlotillaError } from "@flotilla/common";

/**
 * Kafka RecordBatch v2 header, big-endian (Kafka protocol guide, "Record Batch"):
 *
 *   offset size field
 *        0    8 baseOffset            first offset of the batch (set by the broker)
 *        8    4 batchLength           bytes after this field (so batch size = 12 + batchLength)
 *       12    4 partitionLeaderEpoch  set by the leader on append
 *       16    1 magic                 2
 *       17    4 crc                   CRC32C over bytes [21, end)
 *       21    2 attributes            bits 0-2 compression (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd),
 *                                     bit 3 timestampType (1 = LogAppendTime), bit 4 transactional,
 *                                     bit 5 control, bit 6 hasDeleteHorizonMs
 *       23    4 lastOffsetDelta
 *       27    8 baseTimestamp         (firstTimestamp)
 *       35    8 maxTimestamp
 *       43    8 producerId            -1 when not idempotent
 *       51    2 producerEpoch
 *       53    4 baseSequence
 *       57    4 recordCount
 *       61      records (compressed as a whole when the attributes say so)
 *
 * Because baseOffset and partitionLeaderEpoch sit before the CRC'd range, the broker can
 * assign offsets and epochs without recomputing the CRC. LogAppendTime rewrites
 * maxTimestamp and attributes, which are inside it, so that path recomputes the CRC.
 */
export const BATCH_HEADER_BYTES = 61;
/** baseOffset + batchLength: the part of a batch before `batchLength` counts. */
export const LOG_OVERHEAD = 12;
export const MAGIC_V2 = 2;
export const CRC_START = 21;

export const OFF_BASE_OFFSET = 0;
export const OFF_BATCH_LENGTH = 8;
export const OFF_LEADER_EPOCH = 12;
export const OFF_MAGIC = 16;
export const OFF_CRC = 17;
export const OFF_ATTRIBUTES = 21;
export const OFF_LAST_OFFSET_DELTA = 23;
export const OFF_BASE_TIMESTAMP = 27;
export const OFF_MAX_TIMESTAMP = 35;
export const OFF_PRODUCER_ID = 43;
export const OFF_PRODUCER_EPOCH = 51;
export const OFF_BASE_SEQUENCE = 53;
export const OFF_RECORD_COUNT = 57;

export const ATTR_COMPRESSION_MASK = 0x07;
export const ATTR_TIMESTAMP_TYPE = 0x08;
export const ATTR_TRANSACTIONAL = 0x10;
export const ATTR_CONTROL = 0x20;

export interface BatchHeader {
  readonly baseOffset: number;
  readonly batchLength: number;
  readonly partitionLeaderEpoch: number;
  readonly magic: number;
  readonly crc: number;
  readonly attributes: number;
  readonly lastOffsetDelta: number;
  readonly baseTimestamp: number;
  readonly maxTimestamp: number;
  readonly producerId: number;
  readonly producerEpoch: number;
  readonly baseSequence: number;
  readonly recordCount: number;
}

/** Total bytes of the batch starting at `pos` (12 + batchLength). Needs 12 readable bytes. */
export function batchSizeAt(buf: Buffer, pos = 0): number {
  return LOG_OVERHEAD + buf.readInt32BE(pos + OFF_BATCH_LENGTH);
}

/** Writes a signed 64-bit big-endian integer from a safe integer without going through BigInt. */
export function writeInt64BE(buf: Buffer, pos: number, value: number): void {
  const hi = Math.floor(value / 2 ** 32);
  buf.writeInt32BE(hi, pos);
  buf.writeUInt32BE(value - hi * 2 ** 32, pos + 4);
}

/** Reads the 61-byte header at `pos` without validating it. */
export function readBatchHeader(buf: Buffer, pos = 0): BatchHeader {
  return {
    baseOffset: Number(buf.readBigInt64BE(pos + OFF_BASE_OFFSET)),
    batchLength: buf.readInt32BE(pos + OFF_BATCH_LENGTH),
    partitionLeaderEpoch: buf.readInt32BE(pos + OFF_LEADER_EPOCH),
    magic: buf.readInt8(pos + OFF_MAGIC),
    crc: buf.readUInt32BE(pos + OFF_CRC),
    attributes: buf.readInt16BE(pos + OFF_ATTRIBUTES),
    lastOffsetDelta: buf.readInt32BE(pos + OFF_LAST_OFFSET_DELTA),
    baseTimestamp: Number(buf.readBigInt64BE(pos + OFF_BASE_TIMESTAMP)),
    maxTimestamp: Number(buf.readBigInt64BE(pos + OFF_MAX_TIMESTAMP)),
    producerId: Number(buf.readBigInt64BE(pos + OFF_PRODUCER_ID)),
    producerEpoch: buf.readInt16BE(pos + OFF_PRODUCER_EPOCH),
    baseSequence: buf.readInt32BE(pos + OFF_BASE_SEQUENCE),
    recordCount: buf.readInt32BE(pos + OFF_RECORD_COUNT),
  };
}

export function setBaseOffset(buf: Buffer, pos: number, baseOffset: number): void {
  buf.writeBigInt64BE(BigInt(baseOffset), pos + OFF_BASE_OFFSET);
}

export function setPartitionLeaderEpoch(buf: Buffer, pos: number, epoch: number): void {
  buf.writeInt32BE(epoch, pos + OFF_LEADER_EPOCH);
}

/** CRC32C of the batch's CRC'd range [21, size). */
export function computeBatchCrc(buf: Buffer, pos: number, size: number): number {
  return crc32c(buf.subarray(pos + CRC_START, pos + size)) >>> 0;
}

export function writeBatchCrc(buf: Buffer, pos: number, size: number): void {
  buf.writeUInt32BE(computeBatchCrc(buf, pos, size), pos + OFF_CRC);
}

/**
 * Checks the batch at `pos` in `buf` is whole and sound: at least a header, magic 2,
 * its length within the buffer, and the CRC right. Returns the header and size, or
 * throws CORRUPT_MESSAGE / BATCH_TRUNCATED naming what is wrong. `verifyCrc` false checks
 * the frame alone (for a reader told to skip CRCs, as Kafka's check.crcs=false).
 */
export function validateBatchAt(buf: Buffer, pos: number, verifyCrc = true): { header: BatchHeader; size: number } {
  const remaining = buf.length - pos;
  if (remaining < BATCH_HEADER_BYTES) {
    throw new FlotillaError("BATCH_TRUNCATED", `record batch at byte ${pos} has ${remaining} bytes, fewer than the ${BATCH_HEADER_BYTES}-byte header`);
  }
  const header = readBatchHeader(buf, pos);
  if (header.magic !== MAGIC_V2) {
    throw new FlotillaError("CORRUPT_MESSAGE", `record batch at byte ${pos} has magic ${header.magic}; only magic 2 (RecordBatch v2) is supported`);
  }
  const size = LOG_OVERHEAD + header.batchLength;
  if (header.batchLength < BATCH_HEADER_BYTES - LOG_OVERHEAD) {
    throw new FlotillaError("CORRUPT_MESSAGE", `record batch at byte ${pos} declares length ${header.batchLength}, shorter than its header`);
  }
  if (size > remaining) {
    throw new FlotillaError("BATCH_TRUNCATED", `record batch at byte ${pos} declares ${size} bytes but only ${remaining} are present`);
  }
  const crc = verifyCrc ? computeBatchCrc(buf, pos, size) : header.crc;
  if (crc !== header.crc) {
    throw new FlotillaError("CORRUPT_MESSAGE", `record batch at byte ${pos} fails its CRC32C check (stored ${header.crc.toString(16)}, computed ${crc.toString(16)})`);
  }
  if (header.lastOffsetDelta < 0 || header.recordCount < 0) {
    throw new FlotillaError("CORRUPT_MESSAGE", `record batch at byte ${pos} has a negative lastOffsetDelta or recordCount`);
  }
  return { header, size };
}

/** Validates every batch in a buffer of back-to-back batches; the buffer must end on a batch boundary. */
export function validateBatches(buf: Buffer): { header: BatchHeader; pos: number; size: number }[] {
  const out: { header: BatchHeader; pos: number; size: number }[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const { header, size } = validateBatchAt(buf, pos);
    out.push({ header, pos, size });
    pos += size;
  }
  return out;
}

import { FlotillaError } from "@flotilla/common";
import { ByteCursor } from "../varint.js";
import { decompress, type DecompressOptions } from "./compression.js";
import { BATCH_HEADER_BYTES, type BatchHeader } from "./header.js";
import { compressionFromAttributes, RECORD_BYTES_MIN } from "./records.js";

/**
 * Checks that the records section of a batch whose frame and CRC are already checked
 * holds exactly the records its header declares, each well formed (layout in records.ts),
 * with offset deltas 0, 1, 2, ... ending at lastOffsetDelta. Compressed batches are
 * decompressed (within the decompression limit) to check them.
 *
 * A CRC proves the bytes are the ones the producer wrote, not that the producer wrote a
 * readable batch: without this, a buggy or hostile client could store a batch every
 * consumer then fails on. Kafka's broker validates the records of every produced batch for
 * the same reason. This reads but allocates nothing per record (unlike decodeBatch), so
 * the cost is a pass over the bytes, plus the decompression for compressed batches.
 *
 * Throws CORRUPT_MESSAGE naming the record and field that is wrong.
 */
export function validateBatchRecords(buf: Buffer, pos: number, size: number, header: BatchHeader, options: DecompressOptions = {}): void {
  const where = `record batch at byte ${pos}`;
  const compression = compressionFromAttributes(header.attributes);
  let cursor: ByteCursor;
  if (compression === "none") {
    cursor = new ByteCursor(buf, pos + BATCH_HEADER_BYTES, pos + size, where);
  } else {
    let data: Buffer;
    try {
      data = decompress(compression, buf.subarray(pos + BATCH_HEADER_BYTES, pos + size), options);
    } catch (err) {
      if (err instanceof FlotillaError) throw new FlotillaError(err.errorName, `${where}: ${err.message}`, { cause: err });
      throw new FlotillaError("CORRUPT_MESSAGE", `${where}: ${compression} records do not decompress: ${(err as Error).message}`, { cause: err });
    }
    cursor = new ByteCursor(data, 0, data.length, `${where} (${compression}-decompressed records)`);
  }
  const count = header.recordCount;
  if (count === 0) cursor.fail("a produced batch must hold at least one record");
  if (count - 1 !== header.lastOffsetDelta) cursor.fail(`lastOffsetDelta ${header.lastOffsetDelta} does not match the record count ${count}`);
  if (count > cursor.remaining / RECORD_BYTES_MIN) cursor.fail(`record count ${count} cannot fit in the ${cursor.remaining}-byte records section`);
  const sectionEnd = cursor.end;
  for (let i = 0; i < count; i++) {
    cursor.recordIndex = i;
    cursor.headerIndex = -1;
    const start = cursor.pos;
    if (start >= sectionEnd) cursor.fail(`record count mismatch: batch declares ${count} records but the records section ends after ${i}`);
    const length = cursor.readVarint("length");
    const recordEnd = cursor.pos + length;
    if (length < RECORD_BYTES_MIN - 1 || recordEnd > sectionEnd) cursor.fail(`record ${i} declares length ${length}, which does not fit the ${sectionEnd - cursor.pos} bytes left`, start);
    cursor.end = recordEnd;
    cursor.readInt8("attributes");
    cursor.readVarlong("timestampDelta");
    const offsetDelta = cursor.readVarint("offsetDelta");
    if (offsetDelta !== i) cursor.fail(`record ${i} has offsetDelta ${offsetDelta}; offsets inside a batch must be consecutive from 0`, start);
    skipNullableBytes(cursor, "key");
    skipNullableBytes(cursor, "value");
    const headerCount = cursor.readVarint("header count");
    if (headerCount < 0 || headerCount > cursor.remaining / 2) cursor.fail(`record ${i} declares ${headerCount} headers in ${cursor.remaining} bytes`);
    for (let h = 0; h < headerCount; h++) {
      cursor.headerIndex = h;
      const keyLength = cursor.readVarint("key length");
      if (keyLength < 0) cursor.fail(`header ${h} of record ${i} has a negative key length ${keyLength}`);
      if (keyLength > cursor.remaining) cursor.fail(`truncated key of header ${h} of record ${i}`);
      cursor.pos += keyLength;
      skipNullableBytes(cursor, "value");
    }
    cursor.headerIndex = -1;
    if (cursor.pos !== recordEnd) cursor.fail(`record ${i} declares length ${length} but its fields end ${recordEnd - cursor.pos} bytes early`, start);
    cursor.end = sectionEnd;
  }
  if (cursor.pos !== sectionEnd) cursor.fail(`${sectionEnd - cursor.pos} bytes remain after the ${count} records the batch declares`);
}

function skipNullableBytes(cursor: ByteCursor, field: string): void {
  const at = cursor.pos;
  const length = cursor.readVarint(`${field} length`);
  if (length === -1) return;
  if (length < -1) cursor.fail(`${cursor.label(field)} has length ${length}; only -1 (null) may be negative`, at);
  if (length > cursor.remaining) cursor.fail(`truncated ${cursor.label(field)}: ${length} bytes declared, ${cursor.remaining} left`, at);
  cursor.pos += length;
}

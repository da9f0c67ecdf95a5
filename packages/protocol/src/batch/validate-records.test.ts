import { describe, expect, it } from "vitest";
import { compress } from "./compression.js";
import { BATCH_HEADER_BYTES, OFF_ATTRIBUTES, OFF_LAST_OFFSET_DELTA, OFF_RECORD_COUNT, readBatchHeader, writeBatchCrc } from "./header.js";
import { encodeBatch, type Compression } from "./records.js";
import { validateBatchRecords } from "./validate-records.js";

const records = [
  { key: Buffer.from("k1"), value: Buffer.from("v1"), headers: [{ key: "h", value: Buffer.from("x") }] },
  { key: null, value: Buffer.from("second value"), headers: [] },
  { key: Buffer.from("k3"), value: null, headers: [{ key: "n", value: null }] },
];

function check(batch: Buffer): void {
  validateBatchRecords(batch, 0, batch.length, readBatchHeader(batch, 0));
}

/** A batch whose records section is replaced by `section` (compressed with `codec`), header fixed up and CRC recomputed, as a hostile client would send. */
function withSection(section: Buffer, count: number, codec: Compression = "none", lastOffsetDelta = count - 1): Buffer {
  const base = encodeBatch(records, { compression: "none" });
  const body = codec === "none" ? section : compress(codec, section);
  const out = Buffer.concat([base.subarray(0, BATCH_HEADER_BYTES), body]);
  out.writeInt32BE(out.length - 12, 8);
  out.writeInt16BE((out.readInt16BE(OFF_ATTRIBUTES) & ~7) | ({ none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 } as const)[codec], OFF_ATTRIBUTES);
  out.writeInt32BE(lastOffsetDelta, OFF_LAST_OFFSET_DELTA);
  out.writeInt32BE(count, OFF_RECORD_COUNT);
  writeBatchCrc(out, 0, out.length);
  return out;
}

describe("validateBatchRecords", () => {
  it.each(["none", "gzip", "snappy", "lz4", "zstd"] as const)("accepts well-formed %s batches", (compression) => {
    expect(() => check(encodeBatch(records, { compression }))).not.toThrow();
  });

  it("rejects a compressed payload that does not decompress, though its CRC is right", () => {
    const garbage = withSection(Buffer.from("definitely not gzip data"), 3);
    garbage.writeInt16BE(garbage.readInt16BE(OFF_ATTRIBUTES) | 1, OFF_ATTRIBUTES);
    writeBatchCrc(garbage, 0, garbage.length);
    expect(() => check(garbage)).toThrowError(/CORRUPT_MESSAGE/);
  });

  it("rejects a record count that disagrees with the records present", () => {
    const good = encodeBatch(records);
    const section = good.subarray(BATCH_HEADER_BYTES);
    expect(() => check(withSection(section, 4))).toThrowError(/CORRUPT_MESSAGE.*(record count|ends after)/);
    expect(() => check(withSection(section, 2))).toThrowError(/CORRUPT_MESSAGE.*remain after/);
    expect(() => check(withSection(section, 3, "none", 5))).toThrowError(/lastOffsetDelta 5/);
    expect(() => check(withSection(section, 3, "lz4"))).not.toThrow();
  });

  it("rejects non-consecutive offset deltas and truncated fields", () => {
    const good = encodeBatch(records);
    const section = Buffer.from(good.subarray(BATCH_HEADER_BYTES));
    // Record 0: length varint (1 byte), attributes (1), timestampDelta varlong 0 (1), offsetDelta at byte 3.
    const badDelta = Buffer.from(section);
    badDelta[3] = 4; // zig-zag 2
    expect(() => check(withSection(badDelta, 3))).toThrowError(/offsetDelta 2/);
    const truncated = section.subarray(0, section.length - 3);
    expect(() => check(withSection(truncated, 3))).toThrowError(/CORRUPT_MESSAGE/);
  });
});

import { describe, expect, it } from "vitest";
import { SeededRandom } from "@flotilla/common";
import { RecordBatchBuilder, recordFieldsBytes, stampProducerState } from "./builder.js";
import type { Compression } from "./compression.js";
import { BATCH_HEADER_BYTES, validateBatchAt } from "./header.js";
import { decodeBatch, encodeBatch, type ProducerRecord } from "./records.js";

const CODECS: Compression[] = ["none", "gzip", "snappy", "lz4", "zstd"];

/** Records with null and empty keys and values, headers (null values, non-ASCII keys) and timestamps around a base, so deltas go both ways. */
function randomRecords(random: SeededRandom, count: number): Required<ProducerRecord>[] {
  const baseMs = 1_700_000_000_000;
  return Array.from({ length: count }, (_, i) => ({
    key: random.bool(0.2) ? null : Buffer.alloc(random.int(0, 200), 65 + (i % 26)),
    value: random.bool(0.1) ? null : Buffer.alloc(random.int(0, random.bool(0.1) ? 20_000 : 300), 97 + (i % 26)),
    headers: Array.from({ length: random.bool(0.5) ? 0 : random.int(1, 4) }, (_, h) => ({
      key: h === 1 ? "ключ-é" : `h${h}`,
      value: random.bool(0.25) ? null : Buffer.alloc(random.int(0, 70), h),
    })),
    timestamp: baseMs + random.int(-5_000_000, 5_000_000),
  }));
}

function build(records: readonly Required<ProducerRecord>[], compression: Compression, producer?: { producerId: number; producerEpoch: number; baseSequence: number }, capacityBytes?: number): Buffer {
  const builder = new RecordBatchBuilder({ compression, ...(capacityBytes !== undefined ? { capacityBytes } : {}) });
  let expectedSize = BATCH_HEADER_BYTES;
  for (const r of records) {
    const fields = recordFieldsBytes(r.key, r.value, r.headers);
    const predicted = builder.recordBytes(r.timestamp, fields);
    expect(builder.append(r.timestamp, r.key, r.value, r.headers, fields)).toBe(predicted);
    expectedSize += predicted;
    expect(builder.sizeBytes).toBe(expectedSize);
  }
  return builder.build(producer);
}

describe("RecordBatchBuilder", () => {
  it("writes the same bytes as encodeBatch, for every codec, with and without producer state", () => {
    const random = new SeededRandom(808);
    for (let trial = 0; trial < 40; trial++) {
      const records = randomRecords(random, random.int(1, 60));
      const compression = CODECS[trial % CODECS.length]!;
      const producer = trial % 2 === 0 ? { producerId: random.int(0, 1_000_000), producerEpoch: random.int(0, 32_767), baseSequence: random.int(0, 2 ** 31 - 1) } : undefined;
      const expected = encodeBatch(records, { compression, ...(producer ?? {}) });
      // A small starting capacity makes the builder grow its buffer along the way.
      const actual = build(records, compression, producer, trial % 3 === 0 ? 64 : undefined);
      expect(actual.equals(expected), `trial ${trial} (${compression}, ${records.length} records)`).toBe(true);
    }
  });

  it("gives a record with a timestamp before the first one a negative delta that decodes back", () => {
    const records: Required<ProducerRecord>[] = [
      { key: null, value: Buffer.from("a"), headers: [], timestamp: 10_000 },
      { key: Buffer.from("k"), value: null, headers: [{ key: "h", value: null }], timestamp: 9_000 },
      { key: Buffer.alloc(0), value: Buffer.alloc(0), headers: [], timestamp: 12_345 },
    ];
    const batch = build(records, "none");
    expect(batch.equals(encodeBatch(records))).toBe(true);
    const decoded = decodeBatch(batch);
    expect(decoded.header.baseTimestamp).toBe(10_000);
    expect(decoded.header.maxTimestamp).toBe(12_345);
    expect(decoded.records.map((r) => [r.offset, r.timestamp, r.key?.toString() ?? null, r.value?.toString() ?? null])).toEqual([
      [0, 10_000, null, "a"],
      [1, 9_000, "k", null],
      [2, 12_345, "", ""],
    ]);
    expect(decoded.records[1]!.headers).toEqual([{ key: "h", value: null }]);
  });

  it("finishes an uncompressed batch in place, in the buffer it was given", () => {
    const buffer = Buffer.alloc(4096);
    const builder = new RecordBatchBuilder({ buffer });
    builder.append(5, null, Buffer.from("x"));
    const batch = builder.build();
    expect(batch.buffer).toBe(buffer.buffer);
    expect(batch.byteOffset).toBe(buffer.byteOffset);
    expect(builder.buffer).toBe(buffer);
    expect(() => builder.append(6, null, null)).toThrow(/already built/);
  });

  it("restamps the producer state of a built batch, compressed or not, with a valid CRC and the same records", () => {
    const random = new SeededRandom(9);
    for (const compression of CODECS) {
      const records = randomRecords(random, 20);
      const batch = build(records, compression, { producerId: 7, producerEpoch: 0, baseSequence: 100 });
      const recordsBefore = Buffer.from(batch.subarray(BATCH_HEADER_BYTES));
      stampProducerState(batch, { producerId: 7, producerEpoch: 1, baseSequence: 0 });
      expect(batch.equals(encodeBatch(records, { compression, producerId: 7, producerEpoch: 1, baseSequence: 0 }))).toBe(true);
      const { header } = validateBatchAt(batch, 0);
      expect([header.producerId, header.producerEpoch, header.baseSequence]).toEqual([7, 1, 0]);
      expect(batch.subarray(BATCH_HEADER_BYTES).equals(recordsBefore)).toBe(true);
    }
  });

  it("counts the record fields that do not depend on the record's place", () => {
    // attributes 1 + null key 1 + value (1 + 3) + no headers 1
    expect(recordFieldsBytes(null, Buffer.from("abc"), undefined)).toBe(7);
    // ... + one header: key "é" (1 + 2) and a null value (1), count 1
    expect(recordFieldsBytes(null, Buffer.from("abc"), [{ key: "é", value: null }])).toBe(7 + 4);
  });

  it("grows its buffer by doubling up to growthLimitBytes, and past it only as far as a record needs", () => {
    const builder = new RecordBatchBuilder({ capacityBytes: 100, growthLimitBytes: 300 });
    const value = Buffer.alloc(60, 1);
    builder.append(0, null, value);
    expect(builder.buffer.length).toBe(200);
    builder.append(0, null, value);
    builder.append(0, null, value);
    expect(builder.buffer.length).toBe(300);
    builder.append(0, null, Buffer.alloc(400, 2));
    expect(builder.buffer.length).toBe(builder.sizeBytes);
    const records = [value, value, value, Buffer.alloc(400, 2)].map((v) => ({ key: null, value: v, timestamp: 0 }));
    expect(builder.build().equals(encodeBatch(records))).toBe(true);
  });

  it("refuses to build an empty batch", () => {
    expect(() => new RecordBatchBuilder().build()).toThrow(/at least one record/);
  });
});

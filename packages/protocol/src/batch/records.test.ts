import { describe, expect, it } from "vitest";
import { crc32c } from "@node-rs/crc32";
import { FlotillaError, type ErrorName } from "@flotilla/common";
import { compress, type Compression } from "./compression.js";
import { BATCH_HEADER_BYTES, CRC_START, OFF_ATTRIBUTES, OFF_BATCH_LENGTH, OFF_RECORD_COUNT, writeBatchCrc } from "./header.js";
import {
  compressionFromAttributes,
  decodeBatch,
  decodeBatches,
  encodeBatch,
  setLogAppendTime,
  type DecodedBatch,
  type EncodeBatchOptions,
  type ProducerRecord,
} from "./records.js";
import { JAVA_PRODUCER_BATCHES_HEX, KAFKAJS_SNAPPY_BATCH_HEX, KAFKAJS_ZSTD_PAYLOAD_BATCH_HEX, KAFKA_LOG_APPEND_TIME_GZIP_BATCH_HEX } from "./test-vectors.js";

const CODECS: Compression[] = ["none", "gzip", "snappy", "lz4", "zstd"];
const b = (s: string) => Buffer.from(s, "utf8");

function errorOf(fn: () => unknown): FlotillaError | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    if (err instanceof FlotillaError) return err;
    throw err; // anything else is a crash: let the test fail with it
  }
}

function errorName(fn: () => unknown): ErrorName | "none" {
  return errorOf(fn)?.errorName ?? "none";
}

/** Applies `edit` to a copy of `batch` (it may return a shorter view), then recomputes the CRC, so only the edit is wrong. */
function edited(batch: Buffer, edit: (buf: Buffer) => Buffer | void): Buffer {
  const copy = Buffer.from(batch);
  const out = edit(copy) ?? copy;
  writeBatchCrc(out, 0, out.length);
  return out;
}

/** Comparable plain form of decoded records. */
function plain(batch: DecodedBatch) {
  return batch.records.map((r) => ({
    offset: r.offset,
    timestamp: r.timestamp,
    key: r.key === null ? null : r.key.toString("hex"),
    value: r.value === null ? null : r.value.toString("hex"),
    headers: r.headers.map((h) => ({ key: h.key, value: h.value === null ? null : h.value.toString("hex") })),
  }));
}

const hexOrNull = (x: Uint8Array | null) => (x === null ? null : Buffer.from(x.buffer, x.byteOffset, x.byteLength).toString("hex"));

/** Encodes, decodes, and compares everything in one equality (hex strings: fast even for MiB values). */
function expectRoundTrip(records: ProducerRecord[], options: EncodeBatchOptions = {}): DecodedBatch {
  const buf = encodeBatch(records, options);
  const decoded = decodeBatch(buf);
  const baseOffset = options.baseOffset ?? 0;
  const got = decoded.records.map((r) => ({ offset: r.offset, key: hexOrNull(r.key), value: hexOrNull(r.value), headers: r.headers.map((h) => [h.key, hexOrNull(h.value)]) }));
  const want = records.map((r, i) => ({ offset: baseOffset + i, key: hexOrNull(r.key), value: hexOrNull(r.value), headers: (r.headers ?? []).map((h) => [h.key, hexOrNull(h.value)]) }));
  expect(got).toEqual(want);
  return decoded;
}

/** Deterministic pseudo-random bytes (xorshift32). */
function pseudoRandomBytes(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

const mixedRecords: ProducerRecord[] = [
  { key: null, value: b("null key"), timestamp: 1_700_000_000_000 },
  { key: b("null value"), value: null, timestamp: 1_700_000_000_010 },
  { key: b("empty value"), value: Buffer.alloc(0), timestamp: 1_699_999_999_990 },
  { key: Buffer.alloc(0), value: b("empty key"), timestamp: 1_700_000_000_001 },
  {
    key: b("headers"),
    value: b("v"),
    headers: [
      { key: "trace-id", value: b("abc123") },
      { key: "null-header", value: null },
      { key: "", value: Buffer.alloc(0) },
      { key: "ключ-🔑", value: b("ünïcödé") },
      { key: "trace-id", value: b("a repeated key is kept, in order") },
    ],
    timestamp: 1_700_000_000_005,
  },
  { key: b("日本語のキー 🗝"), value: b("unicode key"), timestamp: 1_700_000_000_002 },
  { key: null, value: null, timestamp: 1_700_000_000_003 },
];

describe("encodeBatch / decodeBatch round trips", () => {
  for (const compression of CODECS) {
    describe(compression, () => {
      it("null keys and values, empty values, headers with null values, unicode keys", () => {
        const decoded = expectRoundTrip(mixedRecords, { compression });
        expect(decoded.compression).toBe(compression);
        expect(compressionFromAttributes(decoded.header.attributes)).toBe(compression);
        expect(decoded.timestampType).toBe("create");
        expect(decoded.records.map((r) => r.timestamp)).toEqual(mixedRecords.map((r) => r.timestamp));
        expect(decoded.header.baseTimestamp).toBe(1_700_000_000_000);
        expect(decoded.header.maxTimestamp).toBe(1_700_000_000_010);
      });

      it("5000 small records", () => {
        const records = Array.from({ length: 5000 }, (_, i) => ({ key: b(`key-${i}`), value: b(`value-${i}-${"x".repeat(i % 50)}`), timestamp: 1_700_000_000_000 + i }));
        const decoded = expectRoundTrip(records, { compression, baseOffset: 1_000_000 });
        expect(decoded.header.lastOffsetDelta).toBe(4999);
        expect(decoded.header.recordCount).toBe(5000);
        expect(decoded.records[4999]!.offset).toBe(1_004_999);
      });

      it("large records (1 MiB and 300 KiB values, a 70 KiB key)", () => {
        expectRoundTrip(
          [
            { key: b("big"), value: pseudoRandomBytes(1024 * 1024, 11) },
            { key: pseudoRandomBytes(70 * 1024, 12), value: Buffer.alloc(300 * 1024, 0x41) },
          ],
          { compression, nowMs: 5 },
        );
      });
    });
  }

  it("carries the producer fields, epoch and flags into the header", () => {
    const buf = encodeBatch([{ key: null, value: b("x") }], {
      baseOffset: 2 ** 40 + 3,
      partitionLeaderEpoch: 17,
      producerId: 2 ** 35 + 9,
      producerEpoch: 4,
      baseSequence: 123456,
      transactional: true,
      nowMs: 1_600_000_000_000,
    });
    const d = decodeBatch(buf);
    expect(d.header).toMatchObject({
      baseOffset: 2 ** 40 + 3,
      partitionLeaderEpoch: 17,
      magic: 2,
      producerId: 2 ** 35 + 9,
      producerEpoch: 4,
      baseSequence: 123456,
      recordCount: 1,
      lastOffsetDelta: 0,
      attributes: 0x10,
    });
    expect(d.records[0]!.offset).toBe(2 ** 40 + 3);
    expect(d.isControl).toBe(false);
    const control = decodeBatch(encodeBatch([{ key: Buffer.from([0, 0, 0, 1]), value: Buffer.from([0, 0, 0, 0, 0, 0]) }], { isControl: true, transactional: true, nowMs: 1 }));
    expect(control.isControl).toBe(true);
    expect(control.header.attributes).toBe(0x30);
  });

  it("uses Kafka's defaults: producer id, epoch, sequence and leader epoch -1, timestamp -1 without nowMs", () => {
    const d = decodeBatch(encodeBatch([{ key: null, value: null }]));
    expect(d.header).toMatchObject({ baseOffset: 0, partitionLeaderEpoch: -1, producerId: -1, producerEpoch: -1, baseSequence: -1, baseTimestamp: -1, maxTimestamp: -1 });
    expect(d.records[0]!.timestamp).toBe(-1);
  });

  it("decodes keys and values as views into the input, without copying", () => {
    const buf = encodeBatch([{ key: b("key"), value: b("value") }]);
    const r = decodeBatch(buf).records[0]!;
    expect(r.value!.buffer).toBe(buf.buffer);
    buf[buf.length - 6] = "V".charCodeAt(0); // the value's first byte (before "alue" and the header count)
    expect(r.value!.toString()).toBe("Value");
  });

  it("refuses programmer errors with an assertion", () => {
    expect(() => encodeBatch([])).toThrow(/at least one record/);
    expect(() => encodeBatch([{ key: null, value: null }], { timestampType: "log-append" })).toThrow(/needs nowMs/);
    expect(() => encodeBatch([{ key: null, value: null }], { producerEpoch: 40000 })).toThrow(/producerEpoch/);
    expect(() => encodeBatch([{ key: null, value: null, timestamp: 1.5 }])).toThrow(/timestamp/);
  });
});

describe("timestamps", () => {
  it("CreateTime: baseTimestamp is the first record's, maxTimestamp the largest, deltas may be negative", () => {
    const records = [
      { key: null, value: b("a"), timestamp: 5000 },
      { key: null, value: b("b"), timestamp: 3000 },
      { key: null, value: b("c"), timestamp: 9000 },
      { key: null, value: b("d") }, // takes nowMs
    ];
    const d = decodeBatch(encodeBatch(records, { nowMs: 7000 }));
    expect(d.timestampType).toBe("create");
    expect(d.header.baseTimestamp).toBe(5000);
    expect(d.header.maxTimestamp).toBe(9000);
    expect(d.records.map((r) => r.timestamp)).toEqual([5000, 3000, 9000, 7000]);
  });

  it("log-append at encode stamps every record with nowMs", () => {
    const d = decodeBatch(encodeBatch([{ key: null, value: b("a"), timestamp: 1 }, { key: null, value: b("b"), timestamp: 2 }], { timestampType: "log-append", nowMs: 777 }));
    expect(d.timestampType).toBe("log-append");
    expect(d.header.attributes & 0x08).toBe(0x08);
    expect(d.header.maxTimestamp).toBe(777);
    expect(d.records.map((r) => r.timestamp)).toEqual([777, 777]);
  });

  for (const compression of CODECS) {
    it(`setLogAppendTime (${compression}) sets bit 3 and maxTimestamp, keeps the CRC valid, and readers see maxTimestamp on every record`, () => {
      const records = [
        { key: null, value: b("a"), timestamp: 1000 },
        { key: null, value: b("b"), timestamp: 900 },
      ];
      const single = encodeBatch(records, { compression });
      const buf = Buffer.concat([Buffer.from("junk"), single]); // at a non-zero position
      const before = decodeBatch(buf, 4);
      setLogAppendTime(buf, 4, 123_456_789);
      const after = decodeBatch(buf, 4); // verifies the CRC
      expect(after.timestampType).toBe("log-append");
      expect(after.compression).toBe(compression);
      expect(after.header.maxTimestamp).toBe(123_456_789);
      expect(after.header.baseTimestamp).toBe(before.header.baseTimestamp);
      expect(after.records.map((r) => r.timestamp)).toEqual([123_456_789, 123_456_789]);
      expect(buf.subarray(0, 4).toString()).toBe("junk");
    });
  }

  it("setLogAppendTime refuses a batch that is not all there", () => {
    const buf = encodeBatch([{ key: null, value: b("a") }]);
    expect(errorName(() => setLogAppendTime(buf.subarray(0, 40), 0, 1))).toBe("BATCH_TRUNCATED");
    expect(errorName(() => setLogAppendTime(buf.subarray(0, buf.length - 1), 0, 1))).toBe("BATCH_TRUNCATED");
  });
});

describe("byte layout", () => {
  it("matches, byte for byte, a batch assembled field by field from the protocol guide", () => {
    // Three records as a Kafka producer lays them out (baseTimestamp = the first record's
    // timestamp), every field written by hand from the Kafka protocol guide's "Record Batch",
    // "Record" and "Record Header" sections, independent of the encoder.
    const records = Buffer.from(
      [
        "16", // record 0: length 11 (zig-zag 22)
        "00", // attributes
        "00", // timestampDelta 0
        "00", // offsetDelta 0
        "04", "6b31", // key length 2, "k1"
        "01", // value length -1: null
        "02", // header count 1
        "02", "68", // header key length 1, "h"
        "01", // header value length -1: null
        "0c", // record 1: length 6
        "00", // attributes
        "0a", // timestampDelta +5 (zig-zag 10)
        "02", // offsetDelta 1
        "01", // key length -1: null
        "00", // value length 0: empty
        "00", // header count 0
        "10", // record 2: length 8
        "00", // attributes
        "01", // timestampDelta -1 (zig-zag 1)
        "04", // offsetDelta 2
        "02", "6b", // key "k"
        "02", "76", // value "v"
        "00", // header count 0
      ].join(""),
      "hex",
    );
    const header = Buffer.from(
      [
        "0000000000000000", // baseOffset 0
        "0000004d", // batchLength 77 = 49 header bytes after this field + 28 record bytes
        "ffffffff", // partitionLeaderEpoch -1
        "02", // magic
        "00000000", // crc, filled below
        "0000", // attributes: no compression, CreateTime, not transactional, not control
        "00000002", // lastOffsetDelta 2
        "0000018bcfe56800", // baseTimestamp 1700000000000
        "0000018bcfe56805", // maxTimestamp 1700000000005
        "000000000000002a", // producerId 42
        "0003", // producerEpoch 3
        "00000007", // baseSequence 7
        "00000003", // recordCount 3
      ].join(""),
      "hex",
    );
    const expected = Buffer.concat([header, records]);
    expect(expected.length).toBe(12 + 77);
    // CRC-32C (Castagnoli) over attributes..end. The check value shows the library is CRC-32C.
    expect(crc32c(Buffer.from("123456789")) >>> 0).toBe(0xe3069283);
    expected.writeUInt32BE(crc32c(expected.subarray(CRC_START)) >>> 0, 17);

    const encoded = encodeBatch(
      [
        { key: b("k1"), value: null, headers: [{ key: "h", value: null }], timestamp: 1_700_000_000_000 },
        { key: null, value: Buffer.alloc(0), timestamp: 1_700_000_000_005 },
        { key: b("k"), value: b("v"), timestamp: 1_699_999_999_999 },
      ],
      { producerId: 42, producerEpoch: 3, baseSequence: 7 },
    );
    expect(encoded.toString("hex")).toBe(expected.toString("hex"));

    const d = decodeBatch(expected);
    expect(d.header).toMatchObject({ baseOffset: 0, batchLength: 77, partitionLeaderEpoch: -1, lastOffsetDelta: 2, baseTimestamp: 1_700_000_000_000, maxTimestamp: 1_700_000_000_005, producerId: 42, producerEpoch: 3, baseSequence: 7, recordCount: 3 });
    expect(plain(d)).toEqual([
      { offset: 0, timestamp: 1_700_000_000_000, key: "6b31", value: null, headers: [{ key: "h", value: null }] },
      { offset: 1, timestamp: 1_700_000_000_005, key: null, value: "", headers: [] },
      { offset: 2, timestamp: 1_699_999_999_999, key: "6b", value: "76", headers: [] },
    ]);
  });
});

describe("known answers from real Kafka and other clients", () => {
  it("decodes six batches written by Kafka's Java producer, and re-encodes them byte for byte", () => {
    const buf = Buffer.from(JAVA_PRODUCER_BATCHES_HEX, "hex");
    const batches = decodeBatches(buf);
    expect(batches.length).toBe(6);
    // Timestamps read off the fixture's header bytes (0x016679fa3120 = 1539644731680, ...).
    const timestamps = [1539644731680, 1539644732194, 1539644732699, 1539644733203, 1539644733708, 1539644734213];
    batches.forEach((batch, i) => {
      expect(batch.compression).toBe("none");
      expect(batch.timestampType).toBe("create");
      expect(batch.header).toMatchObject({ baseOffset: i, partitionLeaderEpoch: 0, producerId: -1, producerEpoch: -1, baseSequence: -1, recordCount: 1 });
      expect(plain(batch)).toEqual([
        { offset: i, timestamp: timestamps[i], key: b(`KEY-${i + 1}`).toString("hex"), value: b(`VALUE-Lorem ipsum dolor sit amet-${i + 1}`).toString("hex"), headers: [] },
      ]);
      // Our encoder, given the same record and header fields, writes the Java producer's exact bytes (CRC included).
      const again = encodeBatch([{ key: b(`KEY-${i + 1}`), value: b(`VALUE-Lorem ipsum dolor sit amet-${i + 1}`), timestamp: timestamps[i] }], { baseOffset: i, partitionLeaderEpoch: 0 });
      expect(again.toString("hex")).toBe(buf.subarray(i * 107, (i + 1) * 107).toString("hex"));
    });
  });

  it("decodes sarama's uncompressed, gzip, raw-snappy and lz4 batches (IBM/sarama record_test.go), CRCs included", () => {
    const header = (length: number, crc: number[], attributes: number) => [
      ...[0, 0, 0, 0, 0, 0, 0, 0], ...[0, 0, 0, length], ...[0, 0, 0, 0], 2, ...crc, 0, attributes, ...[0, 0, 0, 0],
      ...[0, 0, 1, 88, 141, 205, 89, 56], ...[0, 0, 0, 0, 0, 0, 0, 0], ...[0, 0, 0, 0, 0, 0, 0, 0], 0, 0, ...[0, 0, 0, 0], ...[0, 0, 0, 1],
    ];
    const uncompressed = [40, 0, 10, 0, 8, 1, 2, 3, 4, 6, 5, 6, 7, 2, 6, 8, 9, 10, 4, 11, 12];
    const cases: [Compression, number[]][] = [
      ["none", [...header(70, [84, 121, 97, 253], 0), ...uncompressed]],
      ["gzip", [...header(95, [231, 74, 206, 165], 1), 31, 139, 8, 0, 0, 9, 110, 136, 0, 255, 0, 21, 0, 234, 255, 40, 0, 10, 0, 8, 1, 2, 3, 4, 6, 5, 6, 7, 2, 6, 8, 9, 10, 4, 11, 12, 3, 0, 173, 201, 88, 103, 21, 0, 0, 0]],
      ["snappy", [...header(72, [21, 0, 159, 97], 2), 21, 80, ...uncompressed]],
      ["lz4", [...header(89, [169, 74, 119, 197], 3), 4, 34, 77, 24, 100, 112, 185, 21, 0, 0, 128, ...uncompressed, 0, 0, 0, 0, 12, 59, 239, 146]],
    ];
    for (const [compression, bytes] of cases) {
      const d = decodeBatch(Buffer.from(bytes));
      expect(d.compression).toBe(compression);
      expect(d.header).toMatchObject({ baseTimestamp: 1479847795000, maxTimestamp: 0, producerId: 0, producerEpoch: 0, baseSequence: 0 });
      // Sarama's record: timestampDelta 5 ms, key 01020304, value 050607, one header 08090a = 0b0c.
      expect(plain(d)).toEqual([{ offset: 0, timestamp: 1479847795005, key: "01020304", value: "050607", headers: [{ key: "\b\t\n", value: "0b0c" }] }]);
    }
  });

  it("decodes sarama's empty batch and empty control batch (zero records)", () => {
    const empty = (crc: number[], attributes: number) =>
      Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 49, 0, 0, 0, 0, 2, ...crc, 0, attributes, ...new Array<number>(4 + 8 + 8 + 8 + 2 + 4 + 4).fill(0)]);
    const plainBatch = decodeBatch(empty([89, 95, 183, 221], 0));
    expect(plainBatch.records).toEqual([]);
    expect(plainBatch.isControl).toBe(false);
    const control = decodeBatch(empty([81, 46, 67, 217], 32));
    expect(control.records).toEqual([]);
    expect(control.isControl).toBe(true);
  });

  it("decodes a raw-snappy batch a broker served to KafkaJS", () => {
    const d = decodeBatch(Buffer.from(KAFKAJS_SNAPPY_BATCH_HEX, "hex"));
    expect(d.compression).toBe("snappy");
    expect(plain(d)).toEqual([{ offset: 0, timestamp: 1549293228209, key: b("key-149").toString("hex"), value: b("value-149-2019-02-04T15:13:48.187Z").toString("hex"), headers: [] }]);
  });

  it("reports a broker's LogAppendTime (maxTimestamp) for every record of a real LogAppendTime batch", () => {
    const d = decodeBatch(Buffer.from(KAFKA_LOG_APPEND_TIME_GZIP_BATCH_HEX, "hex"));
    expect(d.compression).toBe("gzip");
    expect(d.timestampType).toBe("log-append");
    expect(d.header.baseTimestamp).toBe(1597425188775);
    expect(d.header.maxTimestamp).toBe(1597425188809);
    expect(plain(d)).toEqual([{ offset: 0, timestamp: 1597425188809, key: b("key-0").toString("hex"), value: b("value-0-2020-08-14T17:13:08.682Z").toString("hex"), headers: [] }]);
  });

  it("decodes a zstd frame written by a native zstd encoder (no content size in its header)", () => {
    // The fixture's attributes say "none" although its records are a zstd frame; mark them zstd.
    const buf = edited(Buffer.from(KAFKAJS_ZSTD_PAYLOAD_BATCH_HEX, "hex"), (x) => void x.writeInt16BE(4, OFF_ATTRIBUTES));
    const d = decodeBatch(buf);
    expect(d.compression).toBe("zstd");
    expect(d.records.length).toBe(1);
    const r = d.records[0]!;
    expect(r.key!.toString()).toBe("lorem");
    expect(r.value!.length).toBe(445);
    expect(r.value!.toString().startsWith("Lorem ipsum dolor sit amet, consectetur adipisicing elit")).toBe(true);
    expect(r.timestamp).toBe(1602081211219);
  });
});

describe("corruption and truncation", () => {
  const small: ProducerRecord[] = [
    { key: b("k0"), value: b("value zero"), headers: [{ key: "h", value: b("hv") }, { key: "n", value: null }], timestamp: 1000 },
    { key: null, value: b("value one"), timestamp: 999 },
    { key: b("k2"), value: null, timestamp: 1005 },
  ];

  for (const compression of CODECS) {
    it(`${compression}: a flipped bit anywhere in the CRC'd range is a CRC mismatch`, () => {
      const batch = encodeBatch(small, { compression });
      for (let pos = CRC_START; pos < batch.length; pos++) {
        for (const mask of [0x01, 0x80]) {
          const bad = Buffer.from(batch);
          bad[pos]! ^= mask;
          const err = errorOf(() => decodeBatch(bad));
          expect([pos, err?.errorName]).toEqual([pos, "CORRUPT_MESSAGE"]);
          expect(err!.message).toMatch(/fails its CRC32C check/);
        }
      }
    });

    it(`${compression}: truncation at every byte is BATCH_TRUNCATED, alone or as a partial tail`, () => {
      const batch = encodeBatch(small, { compression });
      const whole = encodeBatch([{ key: null, value: b("first") }]);
      for (let cut = 0; cut < batch.length; cut++) {
        const part = batch.subarray(0, cut);
        expect([cut, errorName(() => decodeBatch(part))]).toEqual([cut, "BATCH_TRUNCATED"]);
        const joined = Buffer.concat([whole, part]);
        expect([cut, errorName(() => decodeBatches(joined))]).toEqual([cut, cut === 0 ? "none" : "BATCH_TRUNCATED"]);
        expect(decodeBatches(joined, { allowPartialTail: true }).length).toBe(1);
      }
    });

    it(`${compression}: records cut short inside a well-framed batch (length and CRC fixed up) are CORRUPT_MESSAGE`, () => {
      const batch = encodeBatch(small, { compression });
      for (let end = BATCH_HEADER_BYTES; end < batch.length; end++) {
        const bad = edited(batch, (x) => {
          const cut = x.subarray(0, end);
          cut.writeInt32BE(end - 12, OFF_BATCH_LENGTH);
          return cut;
        });
        const err = errorOf(() => decodeBatch(bad));
        expect([end, err?.errorName]).toEqual([end, "CORRUPT_MESSAGE"]);
      }
    });

    it(`${compression}: any byte overwritten with CRC checks off is a coded error or a clean decode, never a crash`, () => {
      const batch = encodeBatch(small, { compression });
      for (let pos = 0; pos < batch.length; pos++) {
        for (const value of [0x00, 0x7f, 0x80, 0xff]) {
          const bad = Buffer.from(batch);
          bad[pos] = value;
          const name = errorName(() => decodeBatch(bad, 0, { verifyCrc: false, decompressedBytesMax: 1 << 20 }));
          expect(["none", "CORRUPT_MESSAGE", "BATCH_TRUNCATED", "RECORD_LIST_TOO_LARGE"]).toContain(name);
        }
      }
    });
  }

  it("bytes before the CRC'd range (baseOffset, partitionLeaderEpoch) can change without a CRC error, as the broker needs", () => {
    const batch = encodeBatch(small);
    batch.writeInt32BE(7, 12); // partitionLeaderEpoch
    batch.writeBigInt64BE(500n, 0); // baseOffset
    const d = decodeBatch(batch);
    expect(d.header.partitionLeaderEpoch).toBe(7);
    expect(d.records.map((r) => r.offset)).toEqual([500, 501, 502]);
  });
});

describe("error messages name what is wrong and where", () => {
  const one = encodeBatch([{ key: b("key"), value: b("value") }], { nowMs: 10 });
  // Layout of `one` after the header (byte 61): length, attributes, tsDelta, offsetDelta, keyLen, "key", valueLen, "value", headerCount.
  const message = (buf: Buffer, options?: { verifyCrc?: boolean }) => errorOf(() => decodeBatch(buf, 0, options))?.message ?? "no error";

  it("unknown compression code", () => {
    const bad = edited(one, (x) => void x.writeInt16BE(5, OFF_ATTRIBUTES));
    expect(message(bad)).toBe("CORRUPT_MESSAGE: record batch at byte 0: unknown compression code 5 (Kafka defines 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd)");
  });

  it("CRC mismatch", () => {
    const bad = Buffer.from(one);
    bad[bad.length - 1]! ^= 1;
    expect(message(bad)).toMatch(/^CORRUPT_MESSAGE: record batch at byte 0 fails its CRC32C check \(stored [0-9a-f]+, computed [0-9a-f]+\)$/);
  });

  it("record count mismatch, both ways", () => {
    const more = edited(one, (x) => void x.writeInt32BE(2, OFF_RECORD_COUNT));
    expect(message(more)).toMatch(/record count mismatch: batch declares 2 records but the records section ends after 1 at byte \d+/);
    const two = encodeBatch([{ key: null, value: b("a") }, { key: null, value: b("b") }]);
    const fewer = edited(two, (x) => void x.writeInt32BE(1, OFF_RECORD_COUNT));
    expect(message(fewer)).toMatch(/record count mismatch: \d+ bytes remain after the 1 records the batch declares/);
  });

  it("a record count the bytes cannot hold is refused before allocating", () => {
    const huge = edited(one, (x) => void x.writeInt32BE(2 ** 31 - 1, OFF_RECORD_COUNT));
    expect(message(huge)).toMatch(/record count 2147483647 cannot fit in the 15-byte records section/);
  });

  it("bad varint, negative lengths, lengths beyond the record", () => {
    const badVarlong = edited(one, (x) => void x.fill(0xff, 63, 74));
    expect(message(badVarlong)).toMatch(/bad varlong timestampDelta of record 0: longer than 10 bytes at byte 63$/);
    const badVarint = edited(one, (x) => void x.fill(0xff, 64, 69));
    expect(message(badVarint)).toMatch(/bad varint offsetDelta of record 0: longer than 5 bytes or wider than 32 bits at byte 64$/);
    const keyLen = BATCH_HEADER_BYTES + 4;
    expect(message(edited(one, (x) => void (x[keyLen] = 0x03)))).toBe("CORRUPT_MESSAGE: record batch at byte 0: key of record 0 has length -2; only -1 (null) may be negative at byte 65");
    expect(message(edited(one, (x) => void (x[keyLen] = 0x40)))).toMatch(/truncated key of record 0: needs 32 bytes but \d+ remain at byte 66/);
    expect(message(edited(one, (x) => void (x[BATCH_HEADER_BYTES] = 0x7e)))).toMatch(/truncated record 0: declares 63 bytes but 14 remain at byte 61/);
    expect(message(edited(one, (x) => void (x[BATCH_HEADER_BYTES] = 0x04)))).toMatch(/record 0 declares length 2, less than the 6 bytes of its fields at byte 61/);
  });

  it("a bad header names the header and the record", () => {
    const withHeaders = encodeBatch([{ key: null, value: null }, { key: null, value: null, headers: [{ key: "a", value: b("1") }, { key: "b", value: b("2") }] }]);
    // The batch ends with header 1 of record 1: key length, "b", value length (2nd byte from the end), "2".
    const bad = edited(withHeaders, (x) => void (x[x.length - 2] = 0x04)); // value length 1 -> 2
    expect(message(bad)).toMatch(/truncated value of header 1 of record 1: needs 2 bytes but 1 remain at byte \d+$/);
  });

  it("magic other than 2, and a declared length shorter than the header", () => {
    expect(message(edited(one, (x) => void (x[16] = 1)))).toMatch(/has magic 1; only magic 2/);
    const short = Buffer.from(one);
    short.writeInt32BE(10, OFF_BATCH_LENGTH);
    expect(message(short)).toMatch(/declares length 10, shorter than its header/);
    expect(message(short, { verifyCrc: false })).toMatch(/declares length 10, shorter than its header/);
  });

  it("a compressed batch names the decompressed position", () => {
    const gz = encodeBatch([{ key: b("key"), value: b("value") }], { compression: "gzip" });
    // Rebuild the gzip payload with a corrupt key length (-2) inside.
    const raw = Buffer.from(one.subarray(BATCH_HEADER_BYTES));
    raw[4] = 0x03;
    const bad = edited(Buffer.concat([gz.subarray(0, BATCH_HEADER_BYTES), compress("gzip", raw)]), (x) => void x.writeInt32BE(x.length - 12, OFF_BATCH_LENGTH));
    expect(message(bad)).toBe("CORRUPT_MESSAGE: record batch at byte 0 (gzip-decompressed records): key of record 0 has length -2; only -1 (null) may be negative at byte 4");
  });

  it("an undecompressable payload and an oversized one", () => {
    const bad = edited(one, (x) => void x.writeInt16BE(1, OFF_ATTRIBUTES)); // says gzip, is not
    expect(message(bad)).toMatch(/^CORRUPT_MESSAGE: record batch at byte 0: gzip-compressed records are malformed: /);
    const big = encodeBatch([{ key: null, value: Buffer.alloc(100_000) }], { compression: "zstd" });
    expect(errorOf(() => decodeBatch(big, 0, { decompressedBytesMax: 50_000 }))?.errorName).toBe("RECORD_LIST_TOO_LARGE");
  });
});

describe("decodeBatches", () => {
  it("decodes back-to-back batches of every codec", () => {
    const parts = CODECS.map((compression, i) => encodeBatch([{ key: b(`k${i}`), value: b(compression), timestamp: i }], { compression, baseOffset: i * 10 }));
    const batches = decodeBatches(Buffer.concat(parts));
    expect(batches.map((x) => x.compression)).toEqual(CODECS);
    expect(batches.map((x) => x.records[0]!.offset)).toEqual([0, 10, 20, 30, 40]);
  });

  it("an empty buffer holds no batches", () => {
    expect(decodeBatches(Buffer.alloc(0))).toEqual([]);
  });

  it("a partial tail is an error unless allowed, and a corrupt batch is an error either way", () => {
    const a = encodeBatch([{ key: null, value: b("a") }]);
    const c = encodeBatch([{ key: null, value: b("c") }]);
    for (const tail of [c.subarray(0, 5), c.subarray(0, 30), c.subarray(0, c.length - 1)]) {
      const buf = Buffer.concat([a, tail]);
      expect(errorName(() => decodeBatches(buf))).toBe("BATCH_TRUNCATED");
      expect(decodeBatches(buf, { allowPartialTail: true }).length).toBe(1);
    }
    const corrupt = Buffer.concat([a, c]);
    corrupt[corrupt.length - 1]! ^= 1;
    expect(errorName(() => decodeBatches(corrupt, { allowPartialTail: true }))).toBe("CORRUPT_MESSAGE");
  });
});

import { describe, expect, it } from "vitest";
import { AssertionError, FlotillaError, type ErrorName } from "@flotilla/common";
import type { Compression } from "./compression.js";
import { BATCH_HEADER_BYTES, OFF_BATCH_LENGTH, OFF_RECORD_COUNT, writeBatchCrc } from "./header.js";
import { RecordBatchView, viewBatch, viewBatches } from "./lazy-batch.js";
import { decodeBatches, encodeBatch, setLogAppendTime, type ProducerRecord } from "./records.js";
import { JAVA_PRODUCER_BATCHES_HEX, KAFKA_LOG_APPEND_TIME_GZIP_BATCH_HEX, KAFKAJS_SNAPPY_BATCH_HEX } from "./test-vectors.js";

const CODECS: Compression[] = ["none", "gzip", "snappy", "lz4", "zstd"];
const b = (s: string) => Buffer.from(s, "utf8");
const hex = (x: Buffer | null) => (x === null ? null : x.toString("hex"));

function errorOf(fn: () => unknown): FlotillaError | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    if (err instanceof FlotillaError) return err;
    throw err; // anything else is a crash: let the test fail with it
  }
}
const errorName = (fn: () => unknown): ErrorName | "none" => errorOf(fn)?.errorName ?? "none";

/** Applies `edit` to a copy of `batch`, then recomputes the CRC, so only the edit is wrong. */
function edited(batch: Buffer, edit: (buf: Buffer) => Buffer | void): Buffer {
  const copy = Buffer.from(batch);
  const out = edit(copy) ?? copy;
  writeBatchCrc(out, 0, out.length);
  return out;
}

/** Walks a view with its cursor, reading everything, into a comparable plain form. */
function walk(view: RecordBatchView, fromOffset?: number) {
  const c = view.cursor(fromOffset);
  const out = [];
  while (c.next()) {
    out.push({
      index: c.index,
      offset: c.offset,
      timestamp: c.timestamp,
      keyLength: c.keyLength,
      valueLength: c.valueLength,
      key: hex(c.key()),
      value: hex(c.value()),
      headers: c.headers().map((h) => ({ key: h.key, value: hex(h.value) })),
    });
  }
  return out;
}

/** What the cursor should report for records encoded at `baseOffset` with CreateTime. */
function expected(records: ProducerRecord[], baseOffset: number) {
  return records.map((r, i) => ({
    index: i,
    offset: baseOffset + i,
    timestamp: r.timestamp ?? -1,
    keyLength: r.key === null ? -1 : r.key.length,
    valueLength: r.value === null ? -1 : r.value.length,
    key: hex(r.key),
    value: hex(r.value),
    headers: (r.headers ?? []).map((h) => ({ key: h.key, value: hex(h.value) })),
  }));
}

const mixed: ProducerRecord[] = [
  { key: b("k0"), value: b("value zero"), headers: [{ key: "h", value: b("hv") }, { key: "n", value: null }, { key: "ünï", value: Buffer.alloc(0) }], timestamp: 1000 },
  { key: null, value: b("value one"), timestamp: 999 },
  { key: b("k2"), value: null, timestamp: 1005 },
  { key: null, value: null, timestamp: 1_700_000_000_000 },
  { key: Buffer.alloc(0), value: Buffer.alloc(300, 7), timestamp: 1001 },
];

describe("RecordBatchView reads what encodeBatch wrote", () => {
  for (const compression of CODECS) {
    it(`${compression}: headers, null and empty keys and values, negative and large timestamp deltas`, () => {
      const buf = encodeBatch(mixed, { compression, baseOffset: 70 });
      const view = viewBatch(buf);
      expect(view.compression).toBe(compression);
      expect([view.baseOffset, view.lastOffset, view.recordCount, view.sizeBytes]).toEqual([70, 74, 5, buf.length]);
      expect(walk(view)).toEqual(expected(mixed, 70));
      // The eager form (decodeBatch's) gives the same records.
      expect(view.records().map((r) => ({ offset: r.offset, timestamp: r.timestamp, key: hex(r.key), value: hex(r.value), headers: r.headers.length }))).toEqual(
        expected(mixed, 70).map((r) => ({ offset: r.offset, timestamp: r.timestamp, key: r.key, value: r.value, headers: r.headers.length })),
      );
    });

    it(`${compression}: 3000 records with multi-byte offset deltas and lengths, walked without asking for key or value`, () => {
      const records: ProducerRecord[] = [];
      for (let i = 0; i < 3000; i++) records.push({ key: i % 3 === 0 ? null : b(`key-${i}`), value: Buffer.alloc(i % 200, i & 0xff), timestamp: 5000 + (i % 400) });
      const view = viewBatch(encodeBatch(records, { compression }));
      const c = view.cursor();
      let count = 0;
      let bytes = 0;
      while (c.next()) {
        expect(c.offset).toBe(count);
        count++;
        bytes += Math.max(c.keyLength, 0) + Math.max(c.valueLength, 0);
      }
      expect(count).toBe(3000);
      expect(bytes).toBe(records.reduce((n, r) => n + (r.key?.length ?? 0) + (r.value?.length ?? 0), 0));
      expect(c.next()).toBe(false); // stays at the end
    });

    it(`${compression}: a LogAppendTime batch reports maxTimestamp for every record`, () => {
      const buf = encodeBatch(mixed, { compression });
      setLogAppendTime(buf, 0, 42_000);
      const view = viewBatch(buf);
      expect(view.timestampType).toBe("log-append");
      expect(walk(view).map((r) => r.timestamp)).toEqual([42_000, 42_000, 42_000, 42_000, 42_000]);
    });
  }

  it("cursor(fromOffset) steps over the records before it, including in a batch whose offsets have gaps", () => {
    const view = viewBatch(encodeBatch(mixed, { baseOffset: 10 }));
    expect(walk(view, 12).map((r) => r.offset)).toEqual([12, 13, 14]);
    expect(walk(view, 14).map((r) => [r.index, r.offset])).toEqual([[4, 14]]);
    expect(walk(view, 15)).toEqual([]);
    expect(walk(view, 0).length).toBe(5);
  });

  it("marks control and transactional batches", () => {
    const control = viewBatch(encodeBatch([{ key: b("\u0000\u0000\u0000\u0001"), value: b("\u0000\u0000") }], { isControl: true, transactional: true }));
    expect([control.isControl, control.isTransactional]).toEqual([true, true]);
    expect(walk(control).length).toBe(1);
    const plain = viewBatch(encodeBatch(mixed));
    expect([plain.isControl, plain.isTransactional]).toEqual([false, false]);
  });

  it("keys and values are views into the input of an uncompressed batch, not copies", () => {
    const buf = encodeBatch([{ key: b("key"), value: b("value") }]);
    const c = viewBatch(buf).cursor();
    expect(c.next()).toBe(true);
    const value = c.value()!;
    expect(value.buffer).toBe(buf.buffer);
    buf[buf.length - 2] = "V".charCodeAt(0); // the 'e' of "value" (the header count follows it)
    expect(value.toString()).toBe("valuV");
  });

  it("key(), value() and headers() before next() or after the end are programmer errors", () => {
    const c = viewBatch(encodeBatch([{ key: null, value: b("x") }])).cursor();
    expect(() => c.value()).toThrow(AssertionError);
    expect(c.next()).toBe(true);
    expect(c.value()!.toString()).toBe("x");
    expect(c.next()).toBe(false);
    expect(() => c.key()).toThrow(AssertionError);
  });
});

describe("known answers from real Kafka and other clients", () => {
  it("six batches from Kafka's Java producer", () => {
    const views = viewBatches(Buffer.from(JAVA_PRODUCER_BATCHES_HEX, "hex"));
    expect(views.length).toBe(6);
    views.forEach((v, i) => {
      const [r] = walk(v);
      expect(r).toMatchObject({ offset: i, key: b(`KEY-${i + 1}`).toString("hex"), value: b(`VALUE-Lorem ipsum dolor sit amet-${i + 1}`).toString("hex"), headers: [] });
    });
  });

  it("a raw-snappy batch a broker served to KafkaJS, and a broker's gzip LogAppendTime batch", () => {
    const [snappy] = walk(viewBatch(Buffer.from(KAFKAJS_SNAPPY_BATCH_HEX, "hex")));
    expect(snappy).toMatchObject({ offset: 0, timestamp: 1549293228209, key: b("key-149").toString("hex") });
    const logAppend = viewBatch(Buffer.from(KAFKA_LOG_APPEND_TIME_GZIP_BATCH_HEX, "hex"));
    expect(walk(logAppend)[0]).toMatchObject({ timestamp: 1597425188809, key: b("key-0").toString("hex") });
  });
});

describe("viewBatches", () => {
  it("views back-to-back batches of every codec, as decodeBatches decodes them", () => {
    const parts = CODECS.map((compression, i) => encodeBatch(mixed, { compression, baseOffset: i * 10 }));
    const buf = Buffer.concat(parts);
    const views = viewBatches(buf);
    expect(views.map((v) => v.compression)).toEqual(CODECS);
    const eager = decodeBatches(buf);
    views.forEach((v, i) => {
      expect(walk(v).map((r) => [r.offset, r.timestamp, r.key, r.value])).toEqual(eager[i]!.records.map((r) => [r.offset, r.timestamp, hex(r.key), hex(r.value)]));
    });
  });

  it("leaves out a partial tail only when allowed", () => {
    const a = encodeBatch([{ key: null, value: b("a") }]);
    const c = encodeBatch([{ key: null, value: b("c") }]);
    for (const tail of [c.subarray(0, 5), c.subarray(0, 30), c.subarray(0, c.length - 1)]) {
      const buf = Buffer.concat([a, tail]);
      expect(errorName(() => viewBatches(buf))).toBe("BATCH_TRUNCATED");
      expect(viewBatches(buf, { allowPartialTail: true }).length).toBe(1);
    }
    expect(viewBatches(Buffer.alloc(0))).toEqual([]);
  });
});

describe("truncated and corrupt input is a clear FlotillaError", () => {
  for (const compression of CODECS) {
    it(`${compression}: truncation at every byte is BATCH_TRUNCATED when the view is made`, () => {
      const batch = encodeBatch(mixed, { compression });
      for (let cut = 0; cut < batch.length; cut++) expect([cut, errorName(() => viewBatch(batch.subarray(0, cut)))]).toEqual([cut, "BATCH_TRUNCATED"]);
    });

    it(`${compression}: records cut short inside a well-framed batch fail as the cursor reaches them`, () => {
      const batch = encodeBatch(mixed, { compression });
      for (let end = BATCH_HEADER_BYTES; end < batch.length; end++) {
        const bad = edited(batch, (x) => {
          const cut = x.subarray(0, end);
          cut.writeInt32BE(end - 12, OFF_BATCH_LENGTH);
          return cut;
        });
        expect([end, errorName(() => walk(viewBatch(bad)))]).toEqual([end, "CORRUPT_MESSAGE"]);
      }
    });

    it(`${compression}: any byte overwritten (CRC off) gives a coded error or a clean walk, never a crash or a view outside the record`, () => {
      const batch = encodeBatch(mixed, { compression });
      for (let pos = 0; pos < batch.length; pos++) {
        for (const value of [0x00, 0x01, 0x7f, 0x80, 0xff]) {
          const bad = Buffer.from(batch);
          bad[pos] = value;
          const name = errorName(() => {
            const view = viewBatch(bad, 0, { verifyCrc: false, decompressedBytesMax: 1 << 20 });
            const c = view.cursor();
            while (c.next()) {
              for (const x of [c.key(), c.value()]) if (x !== null) expect(x.byteOffset + x.length).toBeLessThanOrEqual(view.section.byteOffset + view.sectionEnd);
            }
          });
          expect(["none", "CORRUPT_MESSAGE", "BATCH_TRUNCATED", "RECORD_LIST_TOO_LARGE"]).toContain(name);
        }
      }
    });
  }

  it("a flipped bit is a CRC mismatch at view time, unless CRC checks are off", () => {
    const bad = encodeBatch(mixed);
    bad[bad.length - 3]! ^= 1;
    expect(errorOf(() => viewBatch(bad))?.message).toMatch(/fails its CRC32C check/);
    expect(errorName(() => viewBatch(bad, 0, { verifyCrc: false }))).toBe("none");
  });

  it("record count mismatch, both ways, is found by walking the cursor to the end", () => {
    const one = encodeBatch([{ key: b("key"), value: b("value") }]);
    const more = viewBatch(edited(one, (x) => void x.writeInt32BE(2, OFF_RECORD_COUNT)));
    expect(errorOf(() => walk(more))?.message).toMatch(/record count mismatch: batch declares 2 records but the records section ends after 1 at byte \d+/);
    const two = encodeBatch([{ key: null, value: b("a") }, { key: null, value: b("b") }]);
    const fewer = viewBatch(edited(two, (x) => void x.writeInt32BE(1, OFF_RECORD_COUNT)));
    const c = fewer.cursor();
    expect(c.next()).toBe(true);
    expect(errorOf(() => c.next())?.message).toMatch(/record count mismatch: \d+ bytes remain after the 1 records the batch declares/);
    const huge = edited(one, (x) => void x.writeInt32BE(2 ** 31 - 1, OFF_RECORD_COUNT));
    expect(errorOf(() => viewBatch(huge))?.message).toMatch(/record count 2147483647 cannot fit in the 15-byte records section/);
  });

  it("a bad header is found when headers() reads it, naming the header and the record", () => {
    const withHeaders = encodeBatch([{ key: null, value: null }, { key: null, value: null, headers: [{ key: "a", value: b("1") }, { key: "b", value: b("2") }] }]);
    const bad = viewBatch(edited(withHeaders, (x) => void (x[x.length - 2] = 0x04))); // value length 1 -> 2
    const c = bad.cursor();
    expect(c.next() && c.next()).toBe(true); // the cursor reads no headers
    expect(errorOf(() => c.headers())?.message).toMatch(/truncated value of header 1 of record 1: needs 2 bytes but 1 remain at byte \d+$/);
  });

  it("a compressed batch names the position in the decompressed records", () => {
    const gz = encodeBatch([{ key: b("key"), value: b("value") }], { compression: "gzip" });
    const view = viewBatch(gz);
    // Corrupt the decompressed section (it is the view's own buffer): key length -2.
    view.section[4] = 0x03;
    expect(errorOf(() => walk(view))?.message).toBe("CORRUPT_MESSAGE: record batch at byte 0 (gzip-decompressed records): key of record 0 has length -2; only -1 (null) may be negative at byte 4");
  });
});

import { describe, expect, it } from "vitest";
import { SeededRandom } from "@flotilla/common";
import { BATCH_HEADER_BYTES, encodeBatch } from "@flotilla/protocol";
import { estimateRecordSizeBytes, toBuffer, toHeaders, varintBytes, type OutgoingRecord } from "./records.js";

describe("record helpers", () => {
  it("encodes strings as UTF-8 and keeps Buffers and nulls", () => {
    expect(toBuffer("é")).toEqual(Buffer.from([0xc3, 0xa9]));
    const b = Buffer.from("x");
    expect(toBuffer(b)).toBe(b);
    expect(toBuffer(new Uint8Array([1, 2]))).toEqual(Buffer.from([1, 2]));
    expect(toBuffer(null)).toBeNull();
    expect(toBuffer(undefined)).toBeNull();
  });

  it("takes headers as an object or as a list with repeated keys", () => {
    expect(toHeaders({ a: "1", b: null })).toEqual([
      { key: "a", value: Buffer.from("1") },
      { key: "b", value: null },
    ]);
    expect(toHeaders([{ key: "a", value: "1" }, { key: "a", value: "2" }]).map((h) => h.value?.toString())).toEqual(["1", "2"]);
  });

  it("counts zig-zag varint bytes", () => {
    expect([0, -1, 63, 64, -64, -65, 8191, 8192].map(varintBytes)).toEqual([1, 1, 1, 2, 1, 2, 2, 3]);
  });

  it("never under-estimates the encoded size of a batch (what keeps batches within batch.size)", () => {
    const random = new SeededRandom(11);
    for (let trial = 0; trial < 50; trial++) {
      const records: OutgoingRecord[] = Array.from({ length: random.int(1, 40) }, () => ({
        key: random.bool(0.2) ? null : Buffer.alloc(random.int(0, 300), 1),
        value: random.bool(0.1) ? null : Buffer.alloc(random.int(0, 3000), 2),
        headers: Array.from({ length: random.int(0, 3) }, (_, i) => ({ key: `h${i}`, value: random.bool(0.2) ? null : Buffer.alloc(random.int(0, 50)) })),
        timestamp: 1_700_000_000_000 + random.int(-100_000, 100_000),
      }));
      const estimate = BATCH_HEADER_BYTES + records.reduce((n, r) => n + estimateRecordSizeBytes(r), 0);
      const actual = encodeBatch(records).length;
      expect(estimate).toBeGreaterThanOrEqual(actual);
      // ...and not by much: at most 16 bytes per record of slack for the unknown deltas.
      expect(estimate - actual).toBeLessThanOrEqual(16 * records.length);
    }
  });
});

import { describe, expect, it } from "vitest";
import { ConsumerRecordBatch, type ConsumerRecordBatches } from "@flotilla/client";
import { OFF_RECORD_COUNT, encodeBatch, viewBatch, writeBatchCrc, type ProducerRecord } from "@flotilla/protocol";
import { countRecords } from "./consume.js";

const b = (s: string) => Buffer.from(s, "utf8");

function result(batches: { partition: number; records: ProducerRecord[]; baseOffset: number; fromOffset?: number; buf?: Buffer }[]): ConsumerRecordBatches {
  const partitions = new Map<number, ConsumerRecordBatch[]>();
  let count = 0;
  for (const x of batches) {
    const view = viewBatch(x.buf ?? encodeBatch(x.records, { baseOffset: x.baseOffset }));
    const batch = new ConsumerRecordBatch("t", x.partition, view, x.fromOffset ?? x.baseOffset, x.buf ? view.recordCount : undefined);
    count += batch.recordCount;
    partitions.set(x.partition, [...(partitions.get(x.partition) ?? []), batch]);
  }
  return {
    count,
    partitions: [...partitions].map(([partition, bs]) => ({ topic: "t", partition, highWatermark: 100, batches: bs, recordCount: bs.reduce((n, y) => n + y.recordCount, 0), nextOffset: bs.at(-1)!.lastOffset + 1 })),
  };
}

describe("countRecords (perf consume's tally)", () => {
  const three: ProducerRecord[] = [
    { key: b("k"), value: b("0123456789") },
    { key: null, value: b("abc") },
    { key: b("kk"), value: null },
  ];

  it("counts every record and its key + value bytes, null as 0, over partitions and batches", () => {
    const r = result([
      { partition: 0, records: three, baseOffset: 0 },
      { partition: 0, records: three, baseOffset: 3 },
      { partition: 2, records: [{ key: null, value: Buffer.alloc(100) }], baseOffset: 50 },
    ]);
    expect(countRecords(r, Infinity)).toEqual({ records: 7, bytes: 2 * (1 + 10 + 3 + 2) + 100 });
  });

  it("stops at the record limit, counting only the bytes of the records counted", () => {
    const r = result([{ partition: 0, records: three, baseOffset: 0 }, { partition: 1, records: three, baseOffset: 0 }]);
    expect(countRecords(r, 2)).toEqual({ records: 2, bytes: 11 + 3 });
    expect(countRecords(r, 4)).toEqual({ records: 4, bytes: 16 + 11 });
  });

  it("counts only the records a batch delivers when the position falls inside it", () => {
    const r = result([{ partition: 0, records: three, baseOffset: 10, fromOffset: 11 }]);
    expect(countRecords(r, Infinity)).toEqual({ records: 2, bytes: 3 + 2 });
  });

  it("does not trust the batch header's record count: a batch claiming more records than it holds fails", () => {
    const buf = encodeBatch(three);
    buf.writeInt32BE(5, OFF_RECORD_COUNT);
    writeBatchCrc(buf, 0, buf.length);
    const r = result([{ partition: 0, records: [], baseOffset: 0, buf }]);
    expect(r.count).toBe(5);
    expect(() => countRecords(r, Infinity)).toThrow(/CORRUPT_MESSAGE.*record count mismatch/);
  });
});

import { describe, expect, it } from "vitest";
import { BATCH_HEADER_BYTES } from "@flotilla/protocol";
import { RecordAccumulator, tpKey, type PendingRecord, type TopicPartition } from "./accumulator.js";

const t0: TopicPartition = { topic: "t", partition: 0 };
const t1: TopicPartition = { topic: "t", partition: 1 };
const none = new Set<string>();

function rec(sizeBytes: number, tag = ""): PendingRecord<number> {
  return { record: { key: null, value: Buffer.from(tag), headers: [], timestamp: 0 }, sizeBytes, owner: 0, index: 0 };
}

describe("RecordAccumulator", () => {
  it("fills one batch up to batch.size, then starts the next and marks the first full", () => {
    const acc = new RecordAccumulator<number>({ batchSizeBytes: BATCH_HEADER_BYTES + 300, lingerMs: 5 });
    const a = acc.append(t0, rec(100), 0);
    const b = acc.append(t0, rec(100), 0);
    expect(a.newBatch).toBe(true);
    expect(b.newBatch).toBe(false);
    expect(b.batch).toBe(a.batch);
    // 61 + 300 = batch.size exactly: the third record fits, and the batch is now full.
    const c = acc.append(t0, rec(100), 0);
    expect(c.batch).toBe(a.batch);
    expect(c.batchFull).toBe(true);
    const d = acc.append(t0, rec(100), 0);
    expect(d.newBatch).toBe(true);
    expect(d.batch.recordCount).toBe(1);
    expect(acc.bytesInUse).toBe(2 * BATCH_HEADER_BYTES + 400);
  });

  it("gives a record larger than batch.size a batch of its own, ready at once", () => {
    const acc = new RecordAccumulator<number>({ batchSizeBytes: 200, lingerMs: 1000 });
    const r = acc.append(t0, rec(500), 0);
    expect(r.batchFull).toBe(true);
    expect(acc.ready(0, false, none).ready).toEqual([t0]);
    expect(acc.append(t0, rec(10), 0).newBatch).toBe(true);
  });

  it("holds a batch that is not full for linger.ms, and says when to look again", () => {
    const acc = new RecordAccumulator<number>({ batchSizeBytes: 16_384, lingerMs: 5 });
    acc.append(t0, rec(10), 100);
    acc.append(t1, rec(10), 102);
    expect(acc.ready(100, false, none)).toEqual({ ready: [], nextCheckDelayMs: 5 });
    expect(acc.ready(104, false, none)).toEqual({ ready: [], nextCheckDelayMs: 1 });
    expect(acc.ready(105, false, none)).toEqual({ ready: [t0], nextCheckDelayMs: 2 });
    expect(acc.ready(107, false, none)).toEqual({ ready: [t0, t1], nextCheckDelayMs: undefined });
  });

  it("sends at once when flushing, whatever linger.ms says", () => {
    const acc = new RecordAccumulator<number>({ batchSizeBytes: 16_384, lingerMs: 60_000 });
    acc.append(t0, rec(10), 0);
    expect(acc.ready(0, true, none).ready).toEqual([t0]);
  });

  it("with linger.ms 0 a batch is ready as soon as it has a record", () => {
    const acc = new RecordAccumulator<number>({ batchSizeBytes: 16_384, lingerMs: 0 });
    acc.append(t0, rec(10), 7);
    expect(acc.ready(7, false, none).ready).toEqual([t0]);
  });

  it("skips muted partitions (a batch in flight) so a partition's batches go one at a time", () => {
    const acc = new RecordAccumulator<number>({ batchSizeBytes: 16_384, lingerMs: 0 });
    acc.append(t0, rec(10), 0);
    acc.append(t1, rec(10), 0);
    expect(acc.ready(0, false, new Set([tpKey(t0)])).ready).toEqual([t1]);
  });

  it("drains the first batch of each partition within max request size, always at least one", () => {
    const acc = new RecordAccumulator<number>({ batchSizeBytes: 1000, lingerMs: 0 });
    acc.append(t0, rec(900), 0);
    acc.append(t0, rec(900), 0);
    acc.append(t1, rec(900), 0);
    const first = acc.drain([t0, t1], 1000);
    expect(first.map((b) => b.tp)).toEqual([t0]);
    const second = acc.drain([t0, t1], 10_000);
    expect(second.map((b) => b.tp)).toEqual([t0, t1]);
    expect(acc.queuedBatches).toBe(0);
  });

  it("closes a drained batch: later records start a new batch", () => {
    const acc = new RecordAccumulator<number>({ batchSizeBytes: 16_384, lingerMs: 0 });
    const a = acc.append(t0, rec(10), 0).batch;
    expect(acc.drain([t0], 1 << 20)).toEqual([a]);
    const b = acc.append(t0, rec(10), 0);
    expect(b.newBatch).toBe(true);
    expect(b.batch).not.toBe(a);
  });

  it("puts a retried batch back first and holds it until its backoff has passed", () => {
    const acc = new RecordAccumulator<number>({ batchSizeBytes: 16_384, lingerMs: 0 });
    const a = acc.append(t0, rec(10, "a"), 0).batch;
    acc.drain([t0], 1 << 20);
    a.attempts = 1;
    acc.append(t0, rec(10, "b"), 1);
    acc.reenqueue(a, 100);
    expect(acc.ready(50, true, none)).toEqual({ ready: [], nextCheckDelayMs: 50 });
    expect(acc.ready(100, false, none).ready).toEqual([t0]);
    const [again] = acc.drain([t0], 1 << 20);
    expect(again).toBe(a);
  });

  it("expires queued batches older than delivery.timeout.ms, oldest first", () => {
    const acc = new RecordAccumulator<number>({ batchSizeBytes: 100, lingerMs: 0 });
    acc.append(t0, rec(80), 0);
    acc.append(t0, rec(80), 50);
    acc.append(t1, rec(80), 90);
    const expired = acc.expire(100, 60);
    expect(expired.map((b) => b.createdMs)).toEqual([0]);
    expect(acc.queuedBatches).toBe(2);
  });

  it("gives bytes back on release", () => {
    const acc = new RecordAccumulator<number>({ batchSizeBytes: 16_384, lingerMs: 0 });
    acc.append(t0, rec(10), 0);
    acc.append(t0, rec(20), 0);
    const [b] = acc.drain([t0], 1 << 20);
    expect(acc.bytesInUse).toBe(BATCH_HEADER_BYTES + 30);
    acc.release(b!);
    expect(acc.bytesInUse).toBe(0);
  });
});

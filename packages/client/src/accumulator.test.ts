import { describe, expect, it } from "vitest";
import { BATCH_HEADER_BYTES, decodeBatch, encodeBatch, recordFieldsBytes, type Compression } from "@flotilla/protocol";
import { APPEND_BATCH_FULL, APPEND_NEW_BATCH, BATCH_BUFFER_INITIAL_BYTES, RecordAccumulator, tpKey, type AccumulatorOptions, type ProducerBatch, type TopicPartition } from "./accumulator.js";

const t0: TopicPartition = { topic: "t", partition: 0 };
const t1: TopicPartition = { topic: "t", partition: 1 };
const none = new Set<string>();

/** Bytes of one record with a null key, no headers, a `valueBytes`-byte value, deltas 0 (the first record of a batch). */
function firstRecordBytes(valueBytes: number): number {
  return encodeBatch([{ key: null, value: Buffer.alloc(valueBytes) }]).length - BATCH_HEADER_BYTES;
}

function accumulator(options: AccumulatorOptions): RecordAccumulator<string> {
  return new RecordAccumulator<string>(options);
}

/** Appends a record with a null key and a value of `valueBytes` bytes (filled with `tag`), owned by `owner` as its record `index`. */
function add(acc: RecordAccumulator<string>, tp: TopicPartition, valueBytes: number, nowMs: number, o: { owner?: string; index?: number; timestamp?: number; tag?: number } = {}): { flags: number; batch: ProducerBatch<string> } {
  const value = Buffer.alloc(valueBytes, o.tag ?? 0);
  const flags = acc.append(tp, tpKey(tp), o.timestamp ?? 1000, null, value, undefined, recordFieldsBytes(null, value, undefined), o.owner ?? "call", o.index ?? 0, nowMs);
  return { flags, batch: acc.lastBatch };
}

describe("RecordAccumulator", () => {
  it("fills one batch up to batch.size with the records' exact bytes, then starts the next and marks the first full", () => {
    // Three records of a 90-byte value, deltas all under 64: each takes the same bytes.
    const recordBytes = firstRecordBytes(90);
    const acc = accumulator({ batchSizeBytes: BATCH_HEADER_BYTES + 3 * recordBytes, lingerMs: 5 });
    const a = add(acc, t0, 90, 0);
    const b = add(acc, t0, 90, 0);
    expect(a.flags).toBe(APPEND_NEW_BATCH);
    expect(b.flags).toBe(0);
    expect(b.batch).toBe(a.batch);
    // 61 + 3 records = batch.size exactly: the third record fits, and the batch is now full.
    const c = add(acc, t0, 90, 0);
    expect(c.batch).toBe(a.batch);
    expect(c.flags).toBe(APPEND_BATCH_FULL);
    const d = add(acc, t0, 90, 0);
    expect(d.flags & APPEND_NEW_BATCH).toBe(APPEND_NEW_BATCH);
    expect(d.batch.recordCount).toBe(1);
    expect(a.batch.sizeBytes).toBe(BATCH_HEADER_BYTES + 3 * recordBytes);
    expect(acc.bytesInUse).toBe(2 * BATCH_HEADER_BYTES + 4 * recordBytes);
  });

  it("encodes records at append into the bytes encodeBatch would write, compressed once when first encoded", () => {
    for (const compression of ["none", "lz4", "gzip"] as Compression[]) {
      const acc = accumulator({ batchSizeBytes: 16_384, lingerMs: 0, compression });
      const records = [
        { key: null, value: Buffer.from("a"), timestamp: 5000 },
        { key: Buffer.from("k"), value: null, timestamp: 4000 },
        { key: Buffer.from("k2"), value: Buffer.from("bb"), timestamp: 7000 },
      ];
      records.forEach((r, i) => acc.append(t0, tpKey(t0), r.timestamp, r.key, r.value, undefined, recordFieldsBytes(r.key, r.value, undefined), "c", i, 0));
      const [batch] = acc.drain([t0], 1 << 20);
      batch!.producerId = 3;
      batch!.producerEpoch = 1;
      batch!.baseSequence = 42;
      const bytes = acc.encode(batch!);
      expect(bytes.equals(encodeBatch(records, { compression, producerId: 3, producerEpoch: 1, baseSequence: 42 }))).toBe(true);
      // A retry sends the very same bytes.
      expect(acc.encode(batch!)).toBe(bytes);
      // An epoch bump rewrites only the header.
      batch!.clearSequence();
      batch!.producerId = 3;
      batch!.producerEpoch = 2;
      batch!.baseSequence = 0;
      expect(acc.encode(batch!)).toBe(bytes);
      expect(decodeBatch(bytes).header.producerEpoch).toBe(2);
      expect(bytes.equals(encodeBatch(records, { compression, producerId: 3, producerEpoch: 2, baseSequence: 0 }))).toBe(true);
    }
  });

  it("keeps one range per send() call and batch, listing indices only when a call's records are split over partitions", () => {
    const acc = accumulator({ batchSizeBytes: 16_384, lingerMs: 0 });
    add(acc, t0, 1, 0, { owner: "A", index: 0 });
    add(acc, t0, 1, 0, { owner: "A", index: 1 });
    add(acc, t1, 1, 0, { owner: "A", index: 2 });
    add(acc, t0, 1, 0, { owner: "A", index: 3 });
    add(acc, t0, 1, 0, { owner: "B", index: 0, timestamp: 1000 });
    add(acc, t0, 1, 0, { owner: "B", index: 1, timestamp: 900 });
    const [b0, b1] = acc.drain([t0, t1], 1 << 20);
    expect(b0!.ranges).toEqual([
      { owner: "A", first: 0, count: 3, indices: [0, 1, 3], timestamp: 1000, timestamps: undefined },
      { owner: "B", first: 0, count: 2, indices: undefined, timestamp: 1000, timestamps: [1000, 900] },
    ]);
    expect(b1!.ranges).toEqual([{ owner: "A", first: 2, count: 1, indices: undefined, timestamp: 1000, timestamps: undefined }]);
    expect(b0!.recordCount).toBe(5);
  });

  it("gives a record larger than batch.size a batch of its own, ready at once", () => {
    const acc = accumulator({ batchSizeBytes: 200, lingerMs: 1000 });
    const r = add(acc, t0, 500, 0);
    expect(r.flags).toBe(APPEND_NEW_BATCH | APPEND_BATCH_FULL);
    expect(acc.ready(0, false, none).ready).toEqual([t0]);
    expect(add(acc, t0, 10, 0).flags & APPEND_NEW_BATCH).toBe(APPEND_NEW_BATCH);
    const [big] = acc.drain([t0], 1 << 20);
    expect(decodeBatch(acc.encode(big!)).records[0]!.value!.length).toBe(500);
  });

  it("holds a batch that is not full for linger.ms, and says when to look again", () => {
    const acc = accumulator({ batchSizeBytes: 16_384, lingerMs: 5 });
    add(acc, t0, 10, 100);
    add(acc, t1, 10, 102);
    expect(acc.ready(100, false, none)).toEqual({ ready: [], nextCheckDelayMs: 5 });
    expect(acc.ready(104, false, none)).toEqual({ ready: [], nextCheckDelayMs: 1 });
    expect(acc.ready(105, false, none)).toEqual({ ready: [t0], nextCheckDelayMs: 2 });
    expect(acc.ready(107, false, none)).toEqual({ ready: [t0, t1], nextCheckDelayMs: undefined });
  });

  it("sends at once when flushing, whatever linger.ms says", () => {
    const acc = accumulator({ batchSizeBytes: 16_384, lingerMs: 60_000 });
    add(acc, t0, 10, 0);
    expect(acc.ready(0, true, none).ready).toEqual([t0]);
  });

  it("with linger.ms 0 a batch is ready as soon as it has a record", () => {
    const acc = accumulator({ batchSizeBytes: 16_384, lingerMs: 0 });
    add(acc, t0, 10, 7);
    expect(acc.ready(7, false, none).ready).toEqual([t0]);
  });

  it("skips muted partitions (a batch in flight) so a partition's batches go one at a time", () => {
    const acc = accumulator({ batchSizeBytes: 16_384, lingerMs: 0 });
    add(acc, t0, 10, 0);
    add(acc, t1, 10, 0);
    expect(acc.ready(0, false, new Set([tpKey(t0)])).ready).toEqual([t1]);
  });

  it("drains the first batch of each partition within max request size, always at least one", () => {
    const acc = accumulator({ batchSizeBytes: 1000, lingerMs: 0 });
    add(acc, t0, 880, 0);
    add(acc, t0, 880, 0);
    add(acc, t1, 880, 0);
    const first = acc.drain([t0, t1], 1000);
    expect(first.map((b) => b.tp)).toEqual([t0]);
    const second = acc.drain([t0, t1], 10_000);
    expect(second.map((b) => b.tp)).toEqual([t0, t1]);
    expect(acc.queuedBatches).toBe(0);
  });

  it("closes a drained batch: later records start a new batch", () => {
    const acc = accumulator({ batchSizeBytes: 16_384, lingerMs: 0 });
    const a = add(acc, t0, 10, 0).batch;
    expect(acc.drain([t0], 1 << 20)).toEqual([a]);
    const b = add(acc, t0, 10, 0);
    expect(b.flags).toBe(APPEND_NEW_BATCH);
    expect(b.batch).not.toBe(a);
  });

  it("puts a retried batch back first and holds it until its backoff has passed", () => {
    const acc = accumulator({ batchSizeBytes: 16_384, lingerMs: 0 });
    const a = add(acc, t0, 10, 0, { tag: 97 }).batch;
    acc.drain([t0], 1 << 20);
    a.attempts = 1;
    add(acc, t0, 10, 1, { tag: 98 });
    acc.reenqueue(a, 100);
    expect(acc.ready(50, true, none)).toEqual({ ready: [], nextCheckDelayMs: 50 });
    expect(acc.ready(100, false, none).ready).toEqual([t0]);
    const [again] = acc.drain([t0], 1 << 20);
    expect(again).toBe(a);
  });

  it("expires queued batches older than delivery.timeout.ms, oldest first", () => {
    const acc = accumulator({ batchSizeBytes: 100, lingerMs: 0 });
    add(acc, t0, 60, 0);
    add(acc, t0, 60, 50);
    add(acc, t1, 60, 90);
    const expired = acc.expire(100, 60);
    expect(expired.map((b) => b.createdMs)).toEqual([0]);
    expect(acc.queuedBatches).toBe(2);
  });

  it("gives bytes back on release", () => {
    const acc = accumulator({ batchSizeBytes: 16_384, lingerMs: 0 });
    add(acc, t0, 10, 0);
    add(acc, t0, 20, 0);
    const [b] = acc.drain([t0], 1 << 20);
    expect(acc.bytesInUse).toBe(b!.sizeBytes);
    expect(b!.sizeBytes).toBe(encodeBatch([{ key: null, value: Buffer.alloc(10) }, { key: null, value: Buffer.alloc(20) }], { nowMs: 1000 }).length);
    acc.release(b!);
    expect(acc.bytesInUse).toBe(0);
  });

  it("reuses a done batch's buffer for a later batch, up to the pool's bytes, and never one still in use", () => {
    const acc = accumulator({ batchSizeBytes: 1024, lingerMs: 0, bufferPoolBytesMax: 2048 });
    const batches: ProducerBatch<string>[] = [];
    for (let i = 0; i < 3; i++) {
      add(acc, t0, 10, 0, { tag: 65 + i });
      batches.push(...acc.drain([t0], 1 << 20));
    }
    const encoded = batches.map((b) => acc.encode(b));
    expect(new Set(encoded.map((e) => e.buffer)).size).toBe(3);
    for (const b of batches) acc.release(b);
    // Two fit the pool's 2048 bytes; the third is left to the garbage collector.
    expect(acc.pooledBuffers).toBe(2);
    expect(batches[0]!.encoded).toBeUndefined();
    const next = add(acc, t0, 10, 0, { tag: 90 }).batch;
    expect(acc.pooledBuffers).toBe(1);
    const [drained] = acc.drain([t0], 1 << 20);
    expect(drained).toBe(next);
    const bytes = acc.encode(next);
    expect(encoded.some((e) => e.buffer === bytes.buffer)).toBe(true);
    expect(decodeBatch(bytes).records[0]!.value!.equals(Buffer.alloc(10, 90))).toBe(true);
  });

  it("starts a batch of a large batch.size in a small buffer that grows to exactly batch.size, and then reuses it", () => {
    const batchSizeBytes = 300_000;
    const acc = accumulator({ batchSizeBytes, lingerMs: 0, bufferPoolBytesMax: batchSizeBytes });
    const first = add(acc, t0, 10, 0).batch;
    expect(first.builder!.buffer.length).toBe(BATCH_BUFFER_INITIAL_BYTES);
    // Fill it: 1000-byte records until the batch is full.
    for (let i = 0; i < 1000 && acc.lastBatch === first && !first.closed; i++) add(acc, t0, 1000, 0, { tag: i % 250 });
    expect(first.closed).toBe(true);
    expect(first.builder!.buffer.length).toBe(batchSizeBytes);
    const [drained] = acc.drain([t0], 1 << 30);
    expect(drained).toBe(first);
    const bytes = acc.encode(first);
    expect(decodeBatch(bytes).records.length).toBe(first.recordCount);
    acc.release(first);
    expect(acc.pooledBuffers).toBe(1);
    const next = add(acc, t0, 10, 0).batch;
    expect(next.builder!.buffer.length).toBe(batchSizeBytes);
    expect(acc.pooledBuffers).toBe(0);
  });
});

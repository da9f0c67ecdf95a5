import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FlotillaError } from "@flotilla/common";
import { silentLogger } from "@flotilla/common/logger";
import { Consumer, type ConsumerOptions, type ConsumerRecord, type ConsumerRecordBatches } from "./consumer.js";
import { Producer } from "./producer.js";
import { MemoryBroker } from "./testing/memory-broker.js";

let broker: MemoryBroker;
const closers: (() => Promise<void>)[] = [];

function consumer(options: Partial<ConsumerOptions> = {}): Consumer {
  const c = new Consumer({ bootstrapServers: broker.address, logger: silentLogger(), fetchMaxWaitMs: 100, retryBackoffMs: 10, retryBackoffMaxMs: 50, ...options });
  closers.push(() => c.close());
  return c;
}

/** Writes values to one partition, `perBatch` records per batch (one send() + flush each). */
async function produce(partition: number, values: string[], perBatch = values.length): Promise<void> {
  const p = new Producer({ bootstrapServers: broker.address, logger: silentLogger(), lingerMs: 1000 });
  try {
    for (let i = 0; i < values.length; i += perBatch) {
      const sent = p.send({ topic: "t", messages: values.slice(i, i + perBatch).map((value) => ({ key: `k${partition}`, value, partition })) });
      await p.flush();
      await sent;
    }
  } finally {
    await p.close();
  }
}

/** Polls until `count` records arrived or 5 s passed. */
async function pollN(c: Consumer, count: number): Promise<ConsumerRecord[]> {
  const out: ConsumerRecord[] = [];
  const deadline = Date.now() + 5000;
  while (out.length < count && Date.now() < deadline) out.push(...(await c.poll({ timeoutMs: 200 })));
  return out;
}

const show = (rs: ConsumerRecord[]) => rs.map((r) => `${r.partition}@${r.offset}:${r.value?.toString()}`);

beforeEach(async () => {
  broker = new MemoryBroker();
  await broker.start();
  broker.createTopic("t", 2);
});

afterEach(async () => {
  await Promise.all(closers.splice(0).map((f) => f()));
  await broker.stop();
});

describe("Consumer against an in-memory broker", () => {
  it("reads every partition of an assigned topic from the earliest offset, in offset order", async () => {
    await produce(0, ["a0", "a1", "a2"], 2);
    await produce(1, ["b0", "b1"]);
    const c = consumer({ autoOffsetReset: "earliest" });
    await c.assign([{ topic: "t" }]);
    expect(c.assignment()).toEqual([
      { topic: "t", partition: 0 },
      { topic: "t", partition: 1 },
    ]);
    const records = await pollN(c, 5);
    const p0 = records.filter((r) => r.partition === 0);
    expect(show(p0)).toEqual(["0@0:a0", "0@1:a1", "0@2:a2"]);
    expect(show(records.filter((r) => r.partition === 1))).toEqual(["1@0:b0", "1@1:b1"]);
    expect(p0[0]?.key?.toString()).toBe("k0");
    expect(await c.position({ topic: "t", partition: 0 })).toBe(3);
  });

  it("skips the records below a seek offset inside the batch that holds it", async () => {
    await produce(0, Array.from({ length: 10 }, (_, i) => `v${i}`));
    const c = consumer();
    await c.assign([{ topic: "t", partition: 0 }]);
    c.seek({ topic: "t", partition: 0 }, { offset: 6 });
    expect(show(await pollN(c, 4))).toEqual(["0@6:v6", "0@7:v7", "0@8:v8", "0@9:v9"]);
  });

  it("starts at the end by default (autoOffsetReset latest) and sees only new records", async () => {
    await produce(0, ["old"]);
    const c = consumer();
    await c.assign([{ topic: "t", partition: 0 }]);
    expect(await c.position({ topic: "t", partition: 0 })).toBe(1);
    expect(await c.poll({ timeoutMs: 200 })).toEqual([]);
    await produce(0, ["new"]);
    expect(show(await pollN(c, 1))).toEqual(["0@1:new"]);
  });

  it("seeks by timestamp to the first record at or after it, even inside a batch, and to the end past every record", async () => {
    const p = new Producer({ bootstrapServers: broker.address, logger: silentLogger(), lingerMs: 1000 });
    const sent = p.send({ topic: "t", messages: [10, 20, 30, 40].map((ts) => ({ value: `at${ts}`, timestamp: ts, partition: 0 })) });
    await p.flush();
    await sent;
    await p.close();
    const c = consumer();
    await c.assign([{ topic: "t", partition: 0 }]);
    c.seek({ topic: "t", partition: 0 }, { timestamp: 25 });
    expect(show(await pollN(c, 2))).toEqual(["0@2:at30", "0@3:at40"]);
    c.seek({ topic: "t", partition: 0 }, { timestamp: 1000 });
    expect(await c.position({ topic: "t", partition: 0 })).toBe(4);
    expect(await c.poll({ timeoutMs: 200 })).toEqual([]);
  });

  it("yields records one by one from the async iterator; breaking leaves the position after the last one", async () => {
    await produce(0, ["a", "b", "c", "d"]);
    const c = consumer({ autoOffsetReset: "earliest" });
    await c.assign([{ topic: "t", partition: 0 }]);
    const seen: string[] = [];
    for await (const r of c) {
      seen.push(r.value!.toString());
      if (seen.length === 2) break;
    }
    expect(seen).toEqual(["a", "b"]);
    expect(await c.position({ topic: "t", partition: 0 })).toBe(2);
    expect(show(await pollN(c, 2))).toEqual(["0@2:c", "0@3:d"]);
  });

  it("runs eachBatch per partition and eachMessage per record until closed", async () => {
    await produce(0, ["a", "b"]);
    await produce(1, ["c"]);
    const c = consumer({ autoOffsetReset: "earliest" });
    await c.assign([{ topic: "t" }]);
    const batches: string[] = [];
    const done = c.run({
      eachBatch: async (b) => {
        batches.push(`${b.partition}:${b.messages.map((m) => m.value?.toString()).join(",")}:hw=${b.highWatermark}`);
        if (batches.length === 2) await c.close();
      },
    });
    await done;
    expect(batches.sort()).toEqual(["0:a,b:hw=2", "1:c:hw=1"]);

    const c2 = consumer({ autoOffsetReset: "earliest" });
    await c2.assign([{ topic: "t", partition: 0 }]);
    const messages: string[] = [];
    await c2.run({
      eachMessage: async (m) => {
        messages.push(m.value!.toString());
        if (messages.length === 2) await c2.close();
      },
    });
    expect(messages).toEqual(["a", "b"]);
  });

  it("recovers from NOT_LEADER_OR_FOLLOWER on fetch by refreshing metadata and retrying", async () => {
    await produce(0, ["a", "b"]);
    const c = consumer({ autoOffsetReset: "earliest" });
    await c.assign([{ topic: "t", partition: 0 }]);
    const metadataBefore = broker.calls.get("metadata") ?? 0;
    broker.failNext("fetch", "NOT_LEADER_OR_FOLLOWER", { times: 2 });
    expect(show(await pollN(c, 2))).toEqual(["0@0:a", "0@1:b"]);
    expect(broker.calls.get("metadata") ?? 0).toBeGreaterThan(metadataBefore);
  });

  it("resets an out-of-range position per autoOffsetReset, or throws with none", async () => {
    await produce(0, ["a", "b"]);
    const c = consumer({ autoOffsetReset: "earliest" });
    await c.assign([{ topic: "t", partition: 0 }]);
    c.seek({ topic: "t", partition: 0 }, { offset: 50 });
    expect(show(await pollN(c, 2))).toEqual(["0@0:a", "0@1:b"]);

    const strict = consumer({ autoOffsetReset: "none" });
    await strict.assign([{ topic: "t", partition: 0 }]);
    await expect(strict.poll({ timeoutMs: 100 })).rejects.toMatchObject({ errorName: "OFFSET_OUT_OF_RANGE" });
    strict.seek({ topic: "t", partition: 0 }, { offset: 50 });
    let err: unknown;
    for (let i = 0; i < 20 && err === undefined; i++) err = await strict.poll({ timeoutMs: 100 }).then(() => undefined, (e: unknown) => e);
    expect(FlotillaError.is(err, "OFFSET_OUT_OF_RANGE")).toBe(true);
  });

  it("returns nothing from paused partitions until resumed", async () => {
    await produce(0, ["a"]);
    await produce(1, ["b"]);
    const c = consumer({ autoOffsetReset: "earliest" });
    await c.assign([{ topic: "t" }]);
    c.pause([{ topic: "t", partition: 0 }]);
    expect(c.paused()).toEqual([{ topic: "t", partition: 0 }]);
    const first = await pollN(c, 1);
    expect(show(first)).toEqual(["1@0:b"]);
    expect(await c.poll({ timeoutMs: 200 })).toEqual([]);
    c.resume([{ topic: "t", partition: 0 }]);
    expect(show(await pollN(c, 1))).toEqual(["0@0:a"]);
  });

  it("refuses to seek a partition it was not assigned, and to assign a partition the topic lacks", async () => {
    const c = consumer();
    await c.assign([{ topic: "t", partition: 0 }]);
    expect(() => c.seek({ topic: "t", partition: 1 }, "earliest")).toThrow(/not assigned/);
    await expect(c.assign([{ topic: "t", partition: 5 }])).rejects.toMatchObject({ errorName: "UNKNOWN_TOPIC_OR_PARTITION" });
  });
});

describe("Consumer.pollBatches", () => {
  /** Polls batches until `count` records arrived or 5 s passed. */
  async function pollBatchesN(c: Consumer, count: number, maxRecords?: number): Promise<ConsumerRecordBatches[]> {
    const out: ConsumerRecordBatches[] = [];
    let n = 0;
    const deadline = Date.now() + 5000;
    while (n < count && Date.now() < deadline) {
      const r = await c.pollBatches({ timeoutMs: 200, ...(maxRecords !== undefined ? { maxRecords } : {}) });
      if (r.count > 0) out.push(r);
      n += r.count;
    }
    return out;
  }

  /** Every record of a result, read through the batches' cursors, as "partition@offset:value". */
  function walk(results: ConsumerRecordBatches[]): string[] {
    const out: string[] = [];
    for (const r of results) {
      for (const p of r.partitions) {
        for (const b of p.batches) {
          const c = b.cursor();
          while (c.next()) out.push(`${p.partition}@${c.offset}:${c.value()?.toString()}`);
        }
      }
    }
    return out;
  }

  it("returns the fetched batches by partition, with counts, offsets and the position after them", async () => {
    await produce(0, ["a0", "a1", "a2", "a3", "a4"], 2);
    await produce(1, ["b0", "b1"]);
    const c = consumer({ autoOffsetReset: "earliest" });
    await c.assign([{ topic: "t" }]);
    const results = await pollBatchesN(c, 7);
    expect(walk(results).sort()).toEqual(["0@0:a0", "0@1:a1", "0@2:a2", "0@3:a3", "0@4:a4", "1@0:b0", "1@1:b1"]);
    const p0 = results.flatMap((r) => r.partitions).filter((p) => p.partition === 0);
    expect(p0.flatMap((p) => p.batches.map((b) => [b.baseOffset, b.lastOffset, b.fromOffset, b.recordCount]))).toEqual([
      [0, 1, 0, 2],
      [2, 3, 2, 2],
      [4, 4, 4, 1],
    ]);
    expect(p0.at(-1)).toMatchObject({ topic: "t", highWatermark: 5, nextOffset: 5 });
    expect(results.reduce((n, r) => n + r.count, 0)).toBe(7);
    expect(await c.position({ topic: "t", partition: 0 })).toBe(5);
    expect(await c.position({ topic: "t", partition: 1 })).toBe(2);
    // Nothing more until new records arrive; then only those.
    expect((await c.pollBatches({ timeoutMs: 200 })).count).toBe(0);
    await produce(1, ["b2"]);
    expect(walk(await pollBatchesN(c, 1))).toEqual(["1@2:b2"]);
  });

  it("batch.records() gives the same records poll() would, with keys, timestamps and headers", async () => {
    await produce(0, ["x", "y"]);
    const a = consumer({ autoOffsetReset: "earliest" });
    await a.assign([{ topic: "t", partition: 0 }]);
    const viaPoll = await pollN(a, 2);
    const b = consumer({ autoOffsetReset: "earliest" });
    await b.assign([{ topic: "t", partition: 0 }]);
    const viaBatches = (await pollBatchesN(b, 2)).flatMap((r) => r.partitions.flatMap((p) => p.batches.flatMap((x) => x.records())));
    expect(viaBatches).toEqual(viaPoll);
    expect(viaBatches[0]).toMatchObject({ topic: "t", partition: 0, offset: 0, headers: [] });
    expect(viaBatches[0]!.key!.toString()).toBe("k0");
  });

  it("starts a batch at the seek offset inside it, and counts only the records it delivers", async () => {
    await produce(0, Array.from({ length: 10 }, (_, i) => `v${i}`));
    const c = consumer();
    await c.assign([{ topic: "t", partition: 0 }]);
    c.seek({ topic: "t", partition: 0 }, { offset: 6 });
    const results = await pollBatchesN(c, 4);
    const [batch] = results[0]!.partitions[0]!.batches;
    expect([batch!.baseOffset, batch!.fromOffset, batch!.recordCount]).toEqual([0, 6, 4]);
    expect(walk(results)).toEqual(["0@6:v6", "0@7:v7", "0@8:v8", "0@9:v9"]);
    expect(await c.position({ topic: "t", partition: 0 })).toBe(10);
  });

  it("continues a batch that poll() began from poll()'s place", async () => {
    await produce(0, ["a", "b", "c", "d", "e"]);
    const c = consumer({ autoOffsetReset: "earliest" });
    await c.assign([{ topic: "t", partition: 0 }]);
    let first: ConsumerRecord[] = [];
    for (let i = 0; i < 20 && first.length === 0; i++) first = await c.poll({ timeoutMs: 200, maxRecords: 2 });
    expect(show(first)).toEqual(["0@0:a", "0@1:b"]);
    expect(await c.position({ topic: "t", partition: 0 })).toBe(2);
    const rest = await pollBatchesN(c, 3);
    expect(rest[0]!.partitions[0]!.batches.map((b) => [b.fromOffset, b.recordCount])).toEqual([[2, 3]]);
    expect(walk(rest)).toEqual(["0@2:c", "0@3:d", "0@4:e"]);
    expect(await c.position({ topic: "t", partition: 0 })).toBe(5);
  });

  it("adds whole batches while fewer than maxRecords records are taken, and leaves the rest buffered", async () => {
    await produce(0, ["a", "b", "c", "d", "e", "f", "g"], 3);
    const c = consumer({ autoOffsetReset: "earliest" });
    await c.assign([{ topic: "t", partition: 0 }]);
    // Let all three batches arrive in one fetch first.
    for (let i = 0; i < 50 && (await c.position({ topic: "t", partition: 0 })) === 0; i++) {
      const r = await c.pollBatches({ timeoutMs: 200, maxRecords: 4 });
      if (r.count === 0) continue;
      expect(r.partitions[0]!.batches.map((b) => b.recordCount)).toEqual([3, 3]);
      expect(r.count).toBe(6);
      expect(r.partitions[0]!.nextOffset).toBe(6);
      expect(await c.position({ topic: "t", partition: 0 })).toBe(6);
      break;
    }
    expect(walk(await pollBatchesN(c, 1, 4))).toEqual(["0@6:g"]);
    expect(await c.position({ topic: "t", partition: 0 })).toBe(7);
  });

  it("skips to the first record at or after a seek timestamp", async () => {
    const p = new Producer({ bootstrapServers: broker.address, logger: silentLogger(), lingerMs: 1000 });
    const sent = p.send({ topic: "t", messages: [10, 20, 30, 40].map((ts) => ({ value: `at${ts}`, timestamp: ts, partition: 0 })) });
    await p.flush();
    await sent;
    await p.close();
    const c = consumer();
    await c.assign([{ topic: "t", partition: 0 }]);
    c.seek({ topic: "t", partition: 0 }, { timestamp: 25 });
    const results = await pollBatchesN(c, 2);
    expect(walk(results)).toEqual(["0@2:at30", "0@3:at40"]);
    expect(results[0]!.partitions[0]!.batches[0]!.recordCount).toBe(2);
  });

  it("fetches ahead while the caller holds data, up to about max.partition.fetch.bytes buffered, without a poll", async () => {
    await produce(0, Array.from({ length: 10 }, (_, i) => `value-${i}`), 1); // 10 one-record batches of 77 bytes
    const c = consumer({ autoOffsetReset: "earliest", maxPartitionFetchBytes: 3 * 77 });
    await c.assign([{ topic: "t", partition: 0 }]);
    const first = await pollBatchesN(c, 1, 1);
    expect(first[0]!.partitions[0]!.batches.map((b) => [b.baseOffset, b.view.sizeBytes])).toEqual([[0, 77]]);
    // No poll for a while: the first answer (batches 0-2) brought records, so the next fetch
    // (3-5) went out at once; then more than 3 x 77 bytes were buffered and fetching stopped.
    await new Promise((r) => setTimeout(r, 500));
    const fetches = broker.calls.get("fetch") ?? 0;
    await new Promise((r) => setTimeout(r, 300));
    expect(broker.calls.get("fetch") ?? 0).toBe(fetches);
    // What was fetched ahead is handed out at once, even if the broker now fails every fetch;
    // without fetching ahead only batches 1-2 of the first answer would be buffered.
    broker.failNext("fetch", "NOT_LEADER_OR_FOLLOWER", { times: 1000 });
    const buffered = await c.pollBatches({ timeoutMs: 0, maxRecords: 100 });
    expect(walk([buffered]).map((x) => x.split(":")[0])).toEqual(["0@1", "0@2", "0@3", "0@4", "0@5"]);
  });

  it("returns nothing from paused partitions, and the iterator and poll() read on after pollBatches()", async () => {
    await produce(0, ["a"]);
    await produce(1, ["b"]);
    const c = consumer({ autoOffsetReset: "earliest" });
    await c.assign([{ topic: "t" }]);
    c.pause([{ topic: "t", partition: 0 }]);
    expect(walk(await pollBatchesN(c, 1))).toEqual(["1@0:b"]);
    expect((await c.pollBatches({ timeoutMs: 200 })).count).toBe(0);
    c.resume([{ topic: "t", partition: 0 }]);
    expect(walk(await pollBatchesN(c, 1))).toEqual(["0@0:a"]);
    await produce(0, ["c"]);
    expect(show(await pollN(c, 1))).toEqual(["0@1:c"]);
  });
});

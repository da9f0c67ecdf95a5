import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FlotillaError } from "@flotilla/common";
import { silentLogger } from "@flotilla/common/logger";
import { Consumer, type ConsumerOptions, type ConsumerRecord } from "./consumer.js";
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

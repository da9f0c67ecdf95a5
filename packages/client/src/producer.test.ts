import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FlotillaError } from "@flotilla/common";
import { silentLogger } from "@flotilla/common/logger";
import { decodeBatches } from "@flotilla/protocol";
import { Producer, type ProducerOptions } from "./producer.js";
import { MemoryBroker } from "./testing/memory-broker.js";

let broker: MemoryBroker;
const producers: Producer[] = [];

function producer(options: Partial<ProducerOptions> = {}): Producer {
  const p = new Producer({ bootstrapServers: broker.address, logger: silentLogger(), retryBackoffMs: 10, retryBackoffMaxMs: 50, ...options });
  producers.push(p);
  return p;
}

/** Values stored in a partition, in offset order, decoded from the batches the broker kept. */
function stored(topic: string, partition: number): string[] {
  return (broker.topics.get(topic)?.[partition] ?? []).flatMap((b) => decodeBatches(b.bytes).flatMap((d) => d.records.map((r) => `${r.offset}:${r.value?.toString()}`)));
}

beforeEach(async () => {
  broker = new MemoryBroker();
  await broker.start();
  broker.createTopic("t", 3);
});

afterEach(async () => {
  await Promise.all(producers.splice(0).map((p) => p.close({ timeoutMs: 1000 })));
  await broker.stop();
});

describe("Producer against an in-memory broker", () => {
  it("puts the records of one send to one partition into one batch with consecutive offsets", async () => {
    const p = producer({ lingerMs: 20 });
    const meta = await p.send({ topic: "t", messages: Array.from({ length: 100 }, (_, i) => ({ value: `v${i}`, partition: 1 })) });
    expect(meta.map((m) => m.offset)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(meta.every((m) => m.partition === 1 && m.topic === "t")).toBe(true);
    expect(broker.produceLog).toEqual([[{ topic: "t", partition: 1, batches: 1 }]]);
    expect(stored("t", 1)).toEqual(Array.from({ length: 100 }, (_, i) => `${i}:v${i}`));
  });

  it("answers each record of concurrent calls spread over partitions with its own partition, offset and timestamp", async () => {
    const p = producer({ lingerMs: 20 });
    // Call A alternates partitions 0 and 2 (so its records in each batch are not consecutive
    // in the call), call B's records go to partition 0 between A's; timestamps differ by record.
    const a = p.send({ topic: "t", messages: Array.from({ length: 6 }, (_, i) => ({ value: `a${i}`, partition: (i % 2) * 2, timestamp: 1000 + i, headers: { n: `${i}` } })) });
    const b = p.send({ topic: "t", messages: [{ value: "b0", partition: 0 }, { key: null, value: null, partition: 0, timestamp: 500 }] });
    const [ma, mb] = await Promise.all([a, b]);
    expect(ma.map((m) => [m.partition, m.offset, m.timestamp])).toEqual([
      [0, 0, 1000],
      [2, 0, 1001],
      [0, 1, 1002],
      [2, 1, 1003],
      [0, 2, 1004],
      [2, 2, 1005],
    ]);
    expect(mb.map((m) => [m.partition, m.offset])).toEqual([
      [0, 3],
      [0, 4],
    ]);
    expect(mb[1]!.timestamp).toBe(500);
    expect(stored("t", 0)).toEqual(["0:a0", "1:a2", "2:a4", "3:b0", "4:undefined"]);
    const [batch] = decodeBatches(broker.topics.get("t")![2]![0]!.bytes);
    expect(batch!.records.map((r) => [r.timestamp, r.headers[0]!.value!.toString()])).toEqual([
      [1001, "1"],
      [1003, "3"],
      [1005, "5"],
    ]);
  });

  it("rejects a timestamp that is not an integer ms within ±2^51 before queueing anything", async () => {
    const p = producer();
    await expect(p.send({ topic: "t", messages: [{ value: "ok", partition: 0 }, { value: "x", partition: 0, timestamp: 1.5 }] })).rejects.toThrow(/INVALID_TIMESTAMP/);
    await expect(p.send({ topic: "t", messages: [{ value: "x", partition: 0, timestamp: 2 ** 52 }] })).rejects.toThrow(/INVALID_TIMESTAMP/);
    await p.flush();
    expect(stored("t", 0)).toEqual([]);
  });

  it("sends full batches without waiting for linger.ms, and the rest on flush()", async () => {
    const p = producer({ lingerMs: 60_000, batchSizeBytes: 1000 });
    const value = "x".repeat(90);
    const sent = p.send({ topic: "t", messages: Array.from({ length: 25 }, () => ({ value, partition: 0 })) });
    // Full batches go out on their own: wait (bounded) until the broker has some records.
    for (let i = 0; i < 100 && broker.logEndOffset("t", 0) === 0; i++) await new Promise((r) => setTimeout(r, 10));
    const early = broker.logEndOffset("t", 0);
    expect(early).toBeGreaterThan(0);
    expect(early).toBeLessThan(25);
    await p.flush();
    expect(broker.logEndOffset("t", 0)).toBe(25);
    expect((await sent).map((m) => m.offset)).toEqual(Array.from({ length: 25 }, (_, i) => i));
  });

  it("flush() covers a send() made just before it, still waiting for metadata", async () => {
    const p = producer({ lingerMs: 60_000 });
    const sent = p.send({ topic: "t", messages: [{ value: "a", partition: 0 }] });
    await p.flush();
    expect(broker.logEndOffset("t", 0)).toBe(1);
    expect((await sent)[0]?.offset).toBe(0);
  });

  it("retries NOT_LEADER_OR_FOLLOWER after a metadata refresh and writes each record once, in order", async () => {
    const p = producer({ lingerMs: 0 });
    await p.send({ topic: "t", messages: [{ value: "warm-up", partition: 2 }] });
    const metadataBefore = broker.calls.get("metadata") ?? 0;
    broker.failNext("produce", "NOT_LEADER_OR_FOLLOWER", { times: 2 });
    const sends = Array.from({ length: 5 }, (_, i) => p.send({ topic: "t", messages: [{ value: `r${i}`, partition: 2 }] }));
    const meta = (await Promise.all(sends)).flat();
    expect(meta.map((m) => m.offset)).toEqual([1, 2, 3, 4, 5]);
    expect(stored("t", 2)).toEqual(["0:warm-up", "1:r0", "2:r1", "3:r2", "4:r3", "5:r4"]);
    expect(broker.calls.get("metadata") ?? 0).toBeGreaterThan(metadataBefore);
  });

  it("waits for a partition without a leader, asking for metadata at most once per retry.backoff.ms", async () => {
    broker.leaderless.add("t/0");
    const p = producer({ lingerMs: 0, retryBackoffMs: 50, retryBackoffMaxMs: 50 });
    const sent = p.send({ topic: "t", messages: [{ value: "a", partition: 0 }] });
    await new Promise((r) => setTimeout(r, 500));
    const metadataCalls = broker.calls.get("metadata") ?? 0;
    // About 500 / 50 refreshes; a loop without backoff would make hundreds.
    expect(metadataCalls).toBeGreaterThan(2);
    expect(metadataCalls).toBeLessThan(25);
    expect(broker.calls.get("produce") ?? 0).toBe(0);
    broker.leaderless.delete("t/0");
    expect((await sent)[0]?.offset).toBe(0);
  });

  it("retries a whole request that failed with a network error", async () => {
    const p = producer({ lingerMs: 0 });
    await p.send({ topic: "t", messages: [{ value: "a", partition: 0 }] });
    broker.failNext("produce", "NETWORK_EXCEPTION", { wholeCall: true });
    const meta = await p.send({ topic: "t", messages: [{ value: "b", partition: 0 }] });
    expect(meta[0]?.offset).toBe(1);
    expect(stored("t", 0)).toEqual(["0:a", "1:b"]);
  });

  it("fails at once on a non-retriable error, with the broker's code", async () => {
    const p = producer({ lingerMs: 0 });
    broker.failNext("produce", "INVALID_REQUEST");
    const err = await p.send({ topic: "t", messages: [{ value: "a", partition: 0 }] }).catch((e: unknown) => e);
    expect(FlotillaError.is(err, "INVALID_REQUEST")).toBe(true);
    expect(broker.calls.get("produce")).toBe(1);
  });

  it("gives up on a retriable error once delivery.timeout.ms has passed", async () => {
    const p = producer({ lingerMs: 0, requestTimeoutMs: 200, deliveryTimeoutMs: 400 });
    broker.failNext("produce", "NOT_ENOUGH_REPLICAS", { times: 10_000 });
    const started = Date.now();
    const err = await p.send({ topic: "t", messages: [{ value: "a", partition: 0 }] }).catch((e: unknown) => e);
    expect(FlotillaError.is(err, "NOT_ENOUGH_REPLICAS")).toBe(true);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(broker.calls.get("produce")).toBeGreaterThan(1);
    expect(broker.logEndOffset("t", 0)).toBe(0);
  });

  it("gives up on an unknown topic after max.block.ms with UNKNOWN_TOPIC_OR_PARTITION", async () => {
    const p = producer({ maxBlockMs: 300 });
    const err = await p.send({ topic: "missing", messages: [{ value: "a" }] }).catch((e: unknown) => e);
    expect(FlotillaError.is(err, "UNKNOWN_TOPIC_OR_PARTITION")).toBe(true);
  });

  it("with acks=0 resolves with offset -1 and still writes the records", async () => {
    const p = producer({ acks: 0, lingerMs: 0 });
    const meta = await p.send({ topic: "t", messages: [{ value: "a", partition: 1 }] });
    expect(meta).toMatchObject([{ topic: "t", partition: 1, offset: -1 }]);
    await p.flush();
    expect(stored("t", 1)).toEqual(["0:a"]);
  });

  it("rejects a record larger than maxRequestSizeBytes before queueing anything", async () => {
    const p = producer({ maxRequestSizeBytes: 1000 });
    const err = await p.send({ topic: "t", messages: [{ value: "small" }, { value: "x".repeat(2000) }] }).catch((e: unknown) => e);
    expect(FlotillaError.is(err, "MESSAGE_TOO_LARGE")).toBe(true);
    await p.flush();
    expect(broker.calls.get("produce") ?? 0).toBe(0);
  });

  it("checks its options and names the bad one", () => {
    expect(() => producer({ acks: 2 as never })).toThrow(/acks/);
    expect(() => producer({ lingerMs: -1 })).toThrow(/lingerMs/);
    expect(() => producer({ deliveryTimeoutMs: 1000, requestTimeoutMs: 30_000 })).toThrow(/deliveryTimeoutMs/);
  });

  it("bounds what it holds by buffer.memory: a send() that finds no room waits max.block.ms, then fails naming the limit", async () => {
    // No leader: nothing can be sent, so the first record's bytes stay held.
    broker.leaderless.add("t/0");
    const p = producer({ bufferMemoryBytes: 1000, maxBlockMs: 200, lingerMs: 0 });
    const value = "x".repeat(600);
    const first = p.send({ topic: "t", messages: [{ value, partition: 0 }] });
    const startedMs = performance.now();
    const second = p.send({ topic: "t", messages: [{ value, partition: 0 }] });
    await expect(second).rejects.toThrow(/bufferMemoryBytes \(1000\) within maxBlockMs \(200\)/);
    expect(performance.now() - startedMs).toBeGreaterThanOrEqual(150);
    // Once a leader is back the held record goes out and its space is free again.
    broker.leaderless.delete("t/0");
    expect((await first).map((m) => m.offset)).toEqual([0]);
    expect((await p.send({ topic: "t", messages: [{ value, partition: 0 }] })).map((m) => m.offset)).toEqual([1]);
  });

  it("a send() waiting for buffer.memory goes ahead, in order, as soon as earlier records are acknowledged", async () => {
    broker.leaderless.add("t/0");
    const p = producer({ bufferMemoryBytes: 1000, maxBlockMs: 10_000, lingerMs: 0 });
    const value = "x".repeat(600);
    const first = p.send({ topic: "t", messages: [{ value: `a${value}`, partition: 0 }] });
    const second = p.send({ topic: "t", messages: [{ value: `b${value}`, partition: 0 }] });
    await new Promise((r) => setTimeout(r, 100));
    expect(broker.logEndOffset("t", 0)).toBe(0);
    broker.leaderless.delete("t/0");
    expect((await first).map((m) => m.offset)).toEqual([0]);
    expect((await second).map((m) => m.offset)).toEqual([1]);
    expect(stored("t", 0).map((v) => v.slice(0, 3))).toEqual(["0:a", "1:b"]);
  });
});

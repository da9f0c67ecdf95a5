import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FlotillaError } from "@flotilla/common";
import { silentLogger } from "@flotilla/common/logger";
import { decodeBatches, readBatchHeader, recordFieldsBytes } from "@flotilla/protocol";
import { RecordAccumulator, tpKey, type ProducerBatch } from "./accumulator.js";
import { Producer, incrementSequence, type ProducerOptions } from "./producer.js";
import { MemoryBroker } from "./testing/memory-broker.js";

let broker: MemoryBroker;
const producers: Producer[] = [];

function producer(options: Partial<ProducerOptions> = {}): Producer {
  const p = new Producer({ bootstrapServers: broker.address, logger: silentLogger(), retryBackoffMs: 5, retryBackoffMaxMs: 20, ...options });
  producers.push(p);
  return p;
}

/** Values stored in a partition, in offset order. */
function values(topic: string, partition: number): string[] {
  return (broker.topics.get(topic)?.[partition] ?? []).flatMap((b) => decodeBatches(b.bytes).flatMap((d) => d.records.map((r) => r.value?.toString() ?? "")));
}

function headers(topic: string, partition: number) {
  return (broker.topics.get(topic)?.[partition] ?? []).map((b) => readBatchHeader(b.bytes));
}

const range = (n: number, prefix = "v") => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

beforeEach(async () => {
  broker = new MemoryBroker();
  await broker.start();
  broker.createTopic("t", 2);
});

afterEach(async () => {
  await Promise.all(producers.splice(0).map((p) => p.close({ timeoutMs: 1000 })));
  await broker.stop();
});

describe("idempotent producer: configuration", () => {
  it("is on by default and off when acks is set below all, as in Kafka", async () => {
    const on = producer();
    await on.send({ topic: "t", messages: [{ value: "a", partition: 0 }] });
    const off = producer({ acks: 1 });
    await off.send({ topic: "t", messages: [{ value: "b", partition: 0 }] });
    const [h1, h2] = headers("t", 0);
    expect(h1!.producerId).toBeGreaterThanOrEqual(0);
    expect(h1!.producerEpoch).toBe(0);
    expect(h1!.baseSequence).toBe(0);
    expect(h2!.producerId).toBe(-1);
    expect(h2!.baseSequence).toBe(-1);
    expect(broker.calls.get("initProducerId")).toBe(1);
  });

  it("refuses idempotent: true with acks other than all, or with retries 0", () => {
    expect(() => producer({ idempotent: true, acks: 1 })).toThrow(/idempotent: true needs acks "all"/);
    expect(() => producer({ idempotent: true, acks: 0 })).toThrow(FlotillaError);
    expect(() => producer({ idempotent: true, retries: 0 })).toThrow(/retries > 0/);
    expect(() => producer({ maxInFlightRequests: 6 })).toThrow(/maxInFlightRequests/);
    // Not explicit: quietly off, like Kafka.
    expect(() => producer({ retries: 0 })).not.toThrow();
  });
});

describe("idempotent producer: sequences and retries", () => {
  it("numbers each partition's batches from 0 by record count, with one producer id and epoch", async () => {
    // Records of 11 bytes as encoded: 3 to a 100-byte batch, so each call spans several batches.
    const p = producer({ batchSizeBytes: 100, lingerMs: 0 });
    for (let round = 0; round < 5; round++) {
      await p.send({ topic: "t", messages: range(7, `r${round}-`).flatMap((v) => [{ value: v, partition: 0 }, { value: v, partition: 1 }]) });
    }
    for (const partition of [0, 1]) {
      const hs = headers("t", partition);
      expect(hs.length).toBeGreaterThan(5);
      let expected = 0;
      for (const h of hs) {
        expect(h.producerId).toBe(hs[0]!.producerId);
        expect(h.producerEpoch).toBe(0);
        expect(h.baseSequence).toBe(expected);
        expected = incrementSequence(expected, h.recordCount);
      }
      expect(expected).toBe(35);
    }
  });

  it("writes a batch once when its first response is lost and the retry carries the same sequence", async () => {
    const p = producer();
    broker.dropNextResponse("produce");
    const meta = await p.send({ topic: "t", messages: range(10).map((value) => ({ value, partition: 1 })) });
    expect(meta.map((m) => m.offset)).toEqual(range(10).map((_, i) => i));
    expect(values("t", 1)).toEqual(range(10));
    expect(broker.calls.get("produce")).toBe(2);
    // Without idempotence the same fault writes the batch twice: what this feature prevents.
    const plain = producer({ idempotent: false });
    broker.dropNextResponse("produce");
    await plain.send({ topic: "t", messages: [{ value: "x", partition: 0 }] });
    expect(values("t", 0)).toEqual(["x", "x"]);
  });

  it("keeps order when the first of several pipelined batches fails and those behind it come back out of order", async () => {
    // Records of 11 bytes as encoded: 2 to a 90-byte batch, 16 batches, more than 5 in flight.
    const p = producer({ batchSizeBytes: 90, lingerMs: 0, maxInFlightRequests: 5 });
    // The first batch fails without being written; pipelined batches behind it are refused
    // by the broker as out of order until it went through.
    broker.failNext("produce", "NOT_LEADER_OR_FOLLOWER");
    const sends = [];
    for (let i = 0; i < 8; i++) sends.push(p.send({ topic: "t", messages: range(4, `s${i}-`).map((value) => ({ value, partition: 0 })) }));
    const metas = (await Promise.all(sends)).flat();
    const expected = Array.from({ length: 8 }, (_, i) => range(4, `s${i}-`)).flat();
    expect(values("t", 0)).toEqual(expected);
    expect(metas.map((m) => m.offset)).toEqual(expected.map((_, i) => i));
    const seqs = headers("t", 0).map((h) => h.baseSequence);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
  });

  it("bumps its epoch and restarts at sequence 0 when the leader lost its sequences", async () => {
    const p = producer();
    await p.send({ topic: "t", messages: range(3).map((value) => ({ value, partition: 0 })) });
    broker.forgetProducers("t", 0);
    await p.send({ topic: "t", messages: range(2, "w").map((value) => ({ value, partition: 0 })) });
    expect(values("t", 0)).toEqual([...range(3), ...range(2, "w")]);
    const hs = headers("t", 0);
    expect(hs.map((h) => [h.producerEpoch, h.baseSequence])).toEqual([
      [0, 0],
      [1, 0],
    ]);
    expect(hs[1]!.producerId).toBe(hs[0]!.producerId);
    // Other partitions continue in the new epoch from 0 too.
    await p.send({ topic: "t", messages: [{ value: "z", partition: 1 }] });
    expect(headers("t", 1).map((h) => [h.producerEpoch, h.baseSequence])).toEqual([[1, 0]]);
  });

  it("retries InitProducerId and sends once it has an id", async () => {
    broker.dropNextResponse("initProducerId");
    const p = producer();
    await p.send({ topic: "t", messages: [{ value: "a", partition: 0 }] });
    expect(broker.calls.get("initProducerId")).toBe(2);
    expect(values("t", 0)).toEqual(["a"]);
  });
});

describe("accumulator with sequenced batches", () => {
  const tp = { topic: "t", partition: 0 };
  const value = Buffer.alloc(90, 120);
  const append = (acc: RecordAccumulator): number => acc.append(tp, tpKey(tp), 0, null, value, undefined, recordFieldsBytes(null, value, undefined), undefined, 0, 0);

  function drainedBatches(acc: RecordAccumulator, n: number): ProducerBatch[] {
    const out: ProducerBatch[] = [];
    for (let i = 0; i < n; i++) {
      append(acc);
      const [b] = acc.drain([tp], 1 << 20);
      b!.producerId = 1;
      b!.producerEpoch = 0;
      b!.baseSequence = i * 10;
      out.push(b!);
    }
    return out;
  }

  it("puts retries back in sequence order, ahead of new batches, whatever order they failed in", () => {
    const acc = new RecordAccumulator({ batchSizeBytes: 150, lingerMs: 0 });
    const [b0, b1, b2] = drainedBatches(acc, 3);
    append(acc); // a new batch, no sequence yet
    acc.reenqueue(b2!, 0);
    acc.reenqueue(b0!, 0);
    acc.reenqueue(b1!, 0);
    const order = acc.queued().map((b) => b.baseSequence);
    expect(order).toEqual([0, 10, 20, -1]);
  });

  it("lets the caller mute a partition by looking at its first batch", () => {
    const acc = new RecordAccumulator({ batchSizeBytes: 150, lingerMs: 0 });
    const [b0] = drainedBatches(acc, 1);
    acc.reenqueue(b0!, 0);
    expect(acc.ready(0, false, (_key, first) => first.hasSequence).ready).toEqual([]);
    expect(acc.ready(0, false, () => false).ready).toEqual([tp]);
  });
});

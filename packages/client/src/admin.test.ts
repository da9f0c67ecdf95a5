import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FlotillaError } from "@flotilla/common";
import { silentLogger } from "@flotilla/common/logger";
import { Admin } from "./admin.js";
import { Producer } from "./producer.js";
import { MemoryBroker } from "./testing/memory-broker.js";

let broker: MemoryBroker;
let admin: Admin;

beforeEach(async () => {
  broker = new MemoryBroker();
  await broker.start();
  admin = new Admin({ bootstrapServers: broker.address, logger: silentLogger(), retryBackoffMs: 10, retryBackoffMaxMs: 50 });
});

afterEach(async () => {
  await admin.close();
  await broker.stop();
});

describe("Admin against an in-memory broker", () => {
  it("creates, lists and deletes topics, and reports per-topic errors with their code", async () => {
    expect(await admin.createTopics({ topics: [{ topic: "b", numPartitions: 2 }, { topic: "a", numPartitions: 1 }] })).toMatchObject([
      { topic: "b", numPartitions: 2 },
      { topic: "a", numPartitions: 1 },
    ]);
    expect(await admin.listTopics()).toEqual(["a", "b"]);
    const exists = await admin.createTopics({ topics: [{ topic: "a" }] }).catch((e: unknown) => e);
    expect(FlotillaError.is(exists, "TOPIC_ALREADY_EXISTS")).toBe(true);
    expect((exists as Error).message).toContain('"a"');
    await admin.deleteTopics({ topics: ["a"] });
    expect(await admin.listTopics()).toEqual(["b"]);
  });

  it("answers UNKNOWN_TOPIC_OR_PARTITION at once instead of waiting for the topic", async () => {
    const started = Date.now();
    const err = await admin.deleteTopics({ topics: ["nope"] }).catch((e: unknown) => e);
    expect(FlotillaError.is(err, "UNKNOWN_TOPIC_OR_PARTITION")).toBe(true);
    const err2 = await admin.metadata({ topics: ["nope"] }).catch((e: unknown) => e);
    expect(FlotillaError.is(err2, "UNKNOWN_TOPIC_OR_PARTITION")).toBe(true);
    const err3 = await admin.listOffsets("nope", "latest").catch((e: unknown) => e);
    expect(FlotillaError.is(err3, "UNKNOWN_TOPIC_OR_PARTITION")).toBe(true);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it("retries a call that failed with a network error", async () => {
    broker.createTopic("t", 1);
    broker.failNext("metadata", "NETWORK_EXCEPTION", { wholeCall: true, times: 2 });
    expect(await admin.listTopics()).toEqual(["t"]);
    expect(broker.calls.get("metadata")).toBe(3);
  });

  it("lists earliest and latest offsets per partition", async () => {
    broker.createTopic("t", 2);
    const producer = new Producer({ bootstrapServers: broker.address, logger: silentLogger(), lingerMs: 0 });
    await producer.send({ topic: "t", messages: [{ value: "a", partition: 1 }, { value: "b", partition: 1 }] });
    await producer.close();
    expect((await admin.listOffsets("t", "latest")).map((o) => [o.partition, o.offset])).toEqual([
      [0, 0],
      [1, 2],
    ]);
    expect(await admin.fetchTopicOffsets("t")).toEqual([
      { partition: 0, low: 0, high: 0 },
      { partition: 1, low: 0, high: 2 },
    ]);
  });
});

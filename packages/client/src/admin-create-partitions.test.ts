import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FlotillaError } from "@flotilla/common";
import { silentLogger } from "@flotilla/common/logger";
import { Admin } from "./admin.js";
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

describe("Admin.createPartitions", () => {
  it("grows a topic and sees the new partitions in fresh metadata", async () => {
    broker.createTopic("t", 2);
    expect((await admin.metadata({ topics: ["t"] })).topics[0]!.partitions).toHaveLength(2);
    await admin.createPartitions([{ topic: "t", count: 4 }]);
    expect((await admin.metadata({ topics: ["t"] })).topics[0]!.partitions.map((p) => p.partition)).toEqual([0, 1, 2, 3]);
  });

  it("validateOnly changes nothing", async () => {
    broker.createTopic("t", 2);
    await admin.createPartitions([{ topic: "t", count: 4 }], { validateOnly: true });
    expect((await admin.metadata({ topics: ["t"] })).topics[0]!.partitions).toHaveLength(2);
  });

  it("throws the per-topic error with its code, naming the topic, without waiting", async () => {
    broker.createTopic("orders", 2);
    const started = Date.now();
    const fewer = await admin.createPartitions([{ topic: "orders", count: 2 }]).catch((e: unknown) => e);
    expect(FlotillaError.is(fewer, "INVALID_PARTITIONS")).toBe(true);
    expect((fewer as Error).message).toContain('topic "orders"');
    const unknown = await admin.createPartitions([{ topic: "nope", count: 3 }]).catch((e: unknown) => e);
    expect(FlotillaError.is(unknown, "UNKNOWN_TOPIC_OR_PARTITION")).toBe(true);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it("checks its arguments before sending anything", async () => {
    await expect(admin.createPartitions([])).rejects.toMatchObject({ errorName: "INVALID_REQUEST" });
    await expect(admin.createPartitions([{ topic: "t", count: 0 }])).rejects.toMatchObject({ errorName: "INVALID_PARTITIONS" });
    expect(broker.calls.get("createPartitions")).toBeUndefined();
  });
});

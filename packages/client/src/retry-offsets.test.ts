/**
 * OFFSET_NOT_AVAILABLE is what a leader that just took over answers ListOffsets until its high
 * watermark is known in its own epoch (packages/broker/src/list-offsets.ts). It is retriable in
 * the error table, so the retrier (./retry.ts) tries again: the admin client's offset lookups
 * and the consumer's position reset both get the offset once the leader knows it.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FlotillaError } from "@flotilla/common";
import { silentLogger } from "@flotilla/common/logger";
import { Admin } from "./admin.js";
import { Consumer } from "./consumer.js";
import { Producer } from "./producer.js";
import { shouldRetry } from "./retry.js";
import { MemoryBroker } from "./testing/memory-broker.js";

let broker: MemoryBroker;
const closers: (() => Promise<void>)[] = [];

beforeEach(async () => {
  broker = new MemoryBroker();
  await broker.start();
  broker.createTopic("t", 1);
  const producer = new Producer({ bootstrapServers: broker.address, logger: silentLogger(), lingerMs: 0 });
  await producer.send({ topic: "t", messages: [{ value: "a" }, { value: "b" }, { value: "c" }] });
  await producer.close();
});

afterEach(async () => {
  for (const close of closers.splice(0)) await close();
  await broker.stop();
});

describe("OFFSET_NOT_AVAILABLE from a new leader", () => {
  it("is retriable for the retrier", () => {
    expect(shouldRetry(new FlotillaError("OFFSET_NOT_AVAILABLE", "new leader"), 1, 5, 0, 10_000, 100)).toBe(true);
  });

  it("Admin.listOffsets retries it and returns the offset the leader then answers", async () => {
    const admin = new Admin({ bootstrapServers: broker.address, logger: silentLogger(), retryBackoffMs: 10, retryBackoffMaxMs: 50 });
    closers.push(() => admin.close());
    broker.failNext("listOffsets", "OFFSET_NOT_AVAILABLE", { times: 2 });
    expect((await admin.listOffsets("t", "latest")).map((o) => o.offset)).toEqual([3]);
    expect(broker.calls.get("listOffsets")).toBe(3);
  });

  it("a consumer resetting to latest retries it and starts at the end", async () => {
    const consumer = new Consumer({ bootstrapServers: broker.address, logger: silentLogger(), autoOffsetReset: "latest", retryBackoffMs: 10, retryBackoffMaxMs: 50 });
    closers.push(() => consumer.close());
    await consumer.assign([{ topic: "t" }]);
    broker.failNext("listOffsets", "OFFSET_NOT_AVAILABLE", { times: 2 });
    expect(await consumer.position({ topic: "t", partition: 0 })).toBe(3);
    expect(broker.calls.get("listOffsets"), "both injected refusals were met and retried").toBeGreaterThanOrEqual(3);
  });
});

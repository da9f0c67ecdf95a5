import { describe, expect, it } from "vitest";
import { FlotillaError } from "@flotilla/common";
import { silentLogger } from "@flotilla/common/logger";
import { ProducerIdManager } from "./producer-ids.js";

describe("ProducerIdManager", () => {
  it("serves ids from controller blocks, prefetching the next block before the current one runs out", async () => {
    const asked: number[] = [];
    let next = 0;
    const manager = new ProducerIdManager(async () => {
      asked.push(next);
      const block = { firstProducerId: next, count: 10 };
      next += 10;
      return block;
    }, silentLogger());
    const ids: number[] = [];
    for (let i = 0; i < 25; i++) ids.push(await manager.generateProducerId());
    expect(ids).toEqual(Array.from({ length: 25 }, (_, i) => i));
    // The third block was fetched ahead of need (at 90% of the second).
    expect(asked).toEqual([0, 10, 20]);
  });

  it("shares one allocation among concurrent callers and hands each a distinct id", async () => {
    let calls = 0;
    const manager = new ProducerIdManager(async () => {
      calls++;
      await new Promise((r) => setTimeout(r, 5));
      return { firstProducerId: 1000 * calls, count: 1000 };
    }, silentLogger());
    const ids = await Promise.all(Array.from({ length: 50 }, () => manager.generateProducerId()));
    expect(new Set(ids).size).toBe(50);
    expect(calls).toBe(1);
  });

  it("fails the waiting calls retriably when the controller cannot be reached, and recovers", async () => {
    let fail = true;
    const manager = new ProducerIdManager(async () => {
      if (fail) throw new Error("connection refused");
      return { firstProducerId: 7, count: 3 };
    }, silentLogger());
    const err = await manager.generateProducerId().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FlotillaError);
    expect((err as FlotillaError).retriable).toBe(true);
    fail = false;
    expect(await manager.generateProducerId()).toBe(7);
  });
});

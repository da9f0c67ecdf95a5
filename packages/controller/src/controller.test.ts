import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ErrorCodes, SeededRandom } from "@flotilla/common";
import { silentLogger } from "@flotilla/common/logger";
import type { MetadataChanges, MetadataImage } from "@flotilla/metadata";
import { Controller } from "./controller.js";
import { LevelMetadataLog } from "./level-metadata-log.js";

const logger = silentLogger();
const endpoints = [{ name: "PLAINTEXT", host: "127.0.0.1", port: 9092 }];
let dir: string;
const cleanups: (() => Promise<void>)[] = [];

async function start(seed = 1): Promise<{ controller: Controller; log: LevelMetadataLog }> {
  const log = await LevelMetadataLog.open(dir, { logger });
  const controller = await Controller.start({ log, defaults: { numPartitions: 1, replicationFactor: 1 }, random: new SeededRandom(seed), logger });
  let closed = false;
  const stop = async () => {
    if (closed) return;
    closed = true;
    await controller.close();
    await log.close();
  };
  cleanups.push(stop);
  return { controller, log };
}

async function registerAndUnfence(controller: Controller, brokerId: number): Promise<void> {
  const { brokerEpoch } = await controller.registerBroker({ brokerId, incarnationId: `inc-${brokerId}-${Math.random()}`, endpoints, rack: null });
  await controller.brokerHeartbeat({ brokerId, brokerEpoch, currentMetadataOffset: controller.image().offset, wantFence: false });
}

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "flotilla-controller-"));
});

afterEach(async () => {
  for (const stop of cleanups.splice(0)) await stop();
  await rm(dir, { recursive: true, force: true });
});

describe("Controller", () => {
  it("registers a broker, creates a topic and tells listeners about each committed batch", async () => {
    const { controller } = await start();
    const seen: { image: MetadataImage; changes: MetadataChanges }[] = [];
    controller.subscribe((image, changes) => seen.push({ image, changes }));
    const { brokerEpoch } = await controller.registerBroker({ brokerId: 1, incarnationId: "a", endpoints, rack: null });
    expect(brokerEpoch).toBe(0);
    expect(controller.image().brokers.get(1)?.fenced).toBe(true);
    expect(await controller.brokerHeartbeat({ brokerId: 1, brokerEpoch, currentMetadataOffset: 0, wantFence: false })).toEqual({ isFenced: false, shouldShutDown: false, isCaughtUp: true });

    const response = await controller.createTopics({ topics: [{ name: "orders", numPartitions: 3, replicationFactor: -1, configs: {} }], timeoutMs: 1000, validateOnly: false });
    expect(response.topics[0]).toMatchObject({ name: "orders", errorCode: 0, numPartitions: 3, replicationFactor: 1 });
    const image = controller.image();
    expect(image.topicsByName.get("orders")?.partitions.size).toBe(3);
    expect(image.offset).toBe(5); // register, unfence, topic, 3 partitions
    expect(seen).toHaveLength(3);
    const last = seen[2]!;
    expect(last.image).toBe(image);
    expect([...last.changes.createdTopics]).toEqual([response.topics[0]!.topicId]);
  });

  it("a command whose every item fails writes nothing and leaves the image as it was", async () => {
    const { controller, log } = await start();
    await registerAndUnfence(controller, 1);
    const before = controller.image();
    const response = await controller.createTopics({ topics: [{ name: "t", numPartitions: 1, replicationFactor: 2, configs: {} }], timeoutMs: 0, validateOnly: false });
    expect(response.topics[0]!.errorCode).toBe(ErrorCodes.INVALID_REPLICATION_FACTOR.code);
    expect(controller.image()).toBe(before);
    expect(log.committedOffset()).toBe(before.offset);
  });

  it("runs concurrent commands one after another so each sees the previous one's records", async () => {
    const { controller } = await start();
    await registerAndUnfence(controller, 1);
    const req = { topics: [{ name: "same", numPartitions: 1, replicationFactor: 1, configs: {} }], timeoutMs: 0, validateOnly: false };
    const [a, b] = await Promise.all([controller.createTopics(req), controller.createTopics(req)]);
    expect(a.topics[0]!.errorCode).toBe(0);
    expect(b.topics[0]!.errorCode).toBe(ErrorCodes.TOPIC_ALREADY_EXISTS.code);
  });

  it("rebuilds the same image from the log after a restart", async () => {
    const first = await start(7);
    await registerAndUnfence(first.controller, 1);
    await first.controller.createTopics({ topics: [{ name: "a", numPartitions: 2, replicationFactor: 1, configs: { "retention.ms": "60000" } }], timeoutMs: 0, validateOnly: false });
    await first.controller.deleteTopics({ names: ["a"], timeoutMs: 0 });
    await first.controller.createTopics({ topics: [{ name: "b", numPartitions: 1, replicationFactor: 1, configs: {} }], timeoutMs: 0, validateOnly: false });
    const before = first.controller.image();
    await cleanups.pop()!();
    const second = await start(8);
    const after = second.controller.image();
    expect(after.offset).toBe(before.offset);
    expect([...after.topicsByName.keys()]).toEqual(["b"]);
    expect(after.topicsByName.get("b")).toEqual(before.topicsByName.get("b"));
    expect(after.brokers.get(1)).toEqual(before.brokers.get(1));
    expect(after.configs.topic.size).toBe(0);
  });

  it("a committed record that does not replay stops the controller instead of serving a wrong image", async () => {
    const { controller, log } = await start();
    await registerAndUnfence(controller, 1);
    const before = controller.image();
    // Written behind the controller's back: commands never emit a removal of an unknown topic.
    await expect(log.append([{ type: "RemoveTopic", topicId: "no-such-topic" }])).rejects.toThrow(/RemoveTopic of unknown topic id/);
    expect(controller.image()).toBe(before);
    await expect(controller.deleteTopics({ names: ["x"], timeoutMs: 0 })).rejects.toThrow(/UNKNOWN_SERVER_ERROR: controller stopped after a metadata replay failure/);
  });

  it("refuses commands once closed", async () => {
    const { controller } = await start();
    await controller.close();
    await expect(controller.deleteTopics({ names: ["x"], timeoutMs: 0 })).rejects.toThrow(/SHUTTING_DOWN/);
  });

  it("refuses commands past the queue limit instead of queueing without bound", async () => {
    const log = await LevelMetadataLog.open(dir, { logger });
    const controller = await Controller.start({ log, defaults: { numPartitions: 1, replicationFactor: 1 }, random: new SeededRandom(1), logger, pendingCommandsMax: 2 });
    cleanups.push(async () => {
      await controller.close();
      await log.close();
    });
    const calls = [1, 2, 3].map((i) => controller.registerBroker({ brokerId: i, incarnationId: `x${i}`, endpoints, rack: null }));
    const settled = await Promise.allSettled(calls);
    expect(settled.map((s) => s.status)).toEqual(["fulfilled", "fulfilled", "rejected"]);
    expect(String((settled[2] as PromiseRejectedResult).reason)).toMatch(/2 commands queued \(limit 2\)/);
  });

  it("fences a broker whose session expired, gives its partitions new leaders, and unfences it when it returns", async () => {
    let now = 0;
    const clock = { nowMs: () => now, monotonicMs: () => now };
    const log = await LevelMetadataLog.open(dir, { logger });
    const controller = await Controller.start({ log, defaults: { numPartitions: 1, replicationFactor: 1 }, random: new SeededRandom(3), logger, clock, brokerSessionTimeoutMs: 1000 });
    cleanups.push(async () => {
      await controller.close();
      await log.close();
    });
    await controller.tick(0);
    await registerAndUnfence(controller, 1);
    await registerAndUnfence(controller, 2);
    await controller.createTopics({ topics: [{ name: "t", numPartitions: 4, replicationFactor: 2, configs: {} }], timeoutMs: 0, validateOnly: false });
    const ledBy = (id: number) => [...controller.image().topicsByName.get("t")!.partitions.values()].filter((p) => p.leader === id).length;
    expect(ledBy(1)).toBe(2);
    const epoch2 = controller.image().brokers.get(2)!.brokerEpoch;
    now = 800;
    await controller.brokerHeartbeat({ brokerId: 2, brokerEpoch: epoch2, currentMetadataOffset: controller.image().offset, wantFence: false });
    now = 1500; // broker 1 silent since 0, broker 2 heard at 800
    await controller.tick(now);
    expect(controller.image().brokers.get(1)?.fenced).toBe(true);
    expect(controller.image().brokers.get(2)?.fenced).toBe(false);
    expect(ledBy(1)).toBe(0);
    expect(ledBy(2)).toBe(4);
    // Broker 1 comes back (same process, same epoch), caught up: unfenced.
    const epoch1 = controller.image().brokers.get(1)!.brokerEpoch;
    const reply = await controller.brokerHeartbeat({ brokerId: 1, brokerEpoch: epoch1, currentMetadataOffset: controller.image().offset, wantFence: false });
    expect(reply.isFenced).toBe(false);
    expect(controller.image().brokers.get(1)?.fenced).toBe(false);
  });

  it("controlled shutdown: the heartbeat with wantShutDown answers shouldShutDown after leadership moved away", async () => {
    const { controller } = await start(4);
    await registerAndUnfence(controller, 1);
    await registerAndUnfence(controller, 2);
    await controller.createTopics({ topics: [{ name: "t", numPartitions: 4, replicationFactor: 2, configs: {} }], timeoutMs: 0, validateOnly: false });
    const epoch1 = controller.image().brokers.get(1)!.brokerEpoch;
    const reply = await controller.brokerHeartbeat({ brokerId: 1, brokerEpoch: epoch1, currentMetadataOffset: controller.image().offset, wantFence: false, wantShutDown: true });
    expect(reply).toMatchObject({ shouldShutDown: true, isFenced: true });
    for (const p of controller.image().topicsByName.get("t")!.partitions.values()) {
      expect(p.leader).toBe(2);
      expect(p.isr).toEqual([2]);
    }
  });
});

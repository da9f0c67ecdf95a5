/**
 * Broker sessions across changes of the active controller (the failure of an isolated active
 * controller, seen in test/chaos/partition.test.ts): a controller that becomes active gives
 * every broker a fresh session, fences at most one stale broker per check (the one silent
 * longest), and a fenced broker's heartbeat unfences it and gives leaderless partitions a
 * leader. Time is a hand-driven clock; activity is toggled on a wrapper of the LevelDB log.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FlotillaError, SeededRandom } from "@flotilla/common";
import { silentLogger } from "@flotilla/common/logger";
import { NO_LEADER, type MetadataImage, type MetadataRecord } from "@flotilla/metadata";
import { Controller } from "./controller.js";
import { LevelMetadataLog } from "./level-metadata-log.js";
import type { CommitListener, MetadataLog } from "./metadata-log.js";

const logger = silentLogger();
const endpoints = [{ name: "PLAINTEXT", host: "127.0.0.1", port: 9092 }];
const SESSION_MS = 1000;

/** A LevelDB log whose activity (and term of activity) the test switches, as Raft leadership would. */
class SwitchableLog implements MetadataLog {
  active = true;
  term = 1;
  constructor(private readonly inner: LevelMetadataLog) {}
  committedOffset(): number {
    return this.inner.committedOffset();
  }
  append(records: readonly MetadataRecord[]): Promise<{ baseOffset: number; lastOffset: number }> {
    if (!this.active) return Promise.reject(new FlotillaError("NOT_CONTROLLER", "switched off by the test"));
    return this.inner.append(records);
  }
  read(fromOffset: number) {
    return this.inner.read(fromOffset);
  }
  onCommit(listener: CommitListener): () => void {
    return this.inner.onCommit(listener);
  }
  isActive(): boolean {
    return this.active;
  }
  activeTerm(): number {
    return this.active ? this.term : 0;
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

let dir: string;
let now = 0;
const clock = { nowMs: () => now, monotonicMs: () => now };
const cleanups: (() => Promise<void>)[] = [];

async function start(): Promise<{ controller: Controller; log: SwitchableLog }> {
  const log = new SwitchableLog(await LevelMetadataLog.open(dir, { logger }));
  const controller = await Controller.start({ log, defaults: { numPartitions: 1, replicationFactor: 1 }, random: new SeededRandom(11), logger, clock, brokerSessionTimeoutMs: SESSION_MS });
  cleanups.push(async () => {
    await controller.close();
    await log.close();
  });
  await controller.tick(now);
  return { controller, log };
}

async function register(controller: Controller, brokerId: number): Promise<void> {
  const { brokerEpoch } = await controller.registerBroker({ brokerId, incarnationId: `inc-${brokerId}`, endpoints, rack: null });
  await heartbeat(controller, brokerId, brokerEpoch);
}

function heartbeat(controller: Controller, brokerId: number, epoch?: number) {
  const brokerEpoch = epoch ?? controller.image().brokers.get(brokerId)!.brokerEpoch;
  return controller.brokerHeartbeat({ brokerId, brokerEpoch, currentMetadataOffset: controller.image().offset, wantFence: false });
}

const fenced = (image: MetadataImage): number[] => [...image.brokers.values()].filter((b) => b.fenced).map((b) => b.brokerId).sort();
const partitions = (image: MetadataImage) => [...image.topicsByName.get("t")!.partitions.values()];

beforeEach(async () => {
  now = 0;
  dir = await mkdtemp(path.join(tmpdir(), "flotilla-controller-sessions-"));
});

afterEach(async () => {
  for (const stop of cleanups.splice(0)) await stop();
  await rm(dir, { recursive: true, force: true });
});

describe("broker sessions when the active controller changes", () => {
  it("a controller that becomes active fences no broker before a full session timeout from then, though it never heard them", async () => {
    const { controller, log } = await start();
    for (const id of [1, 2]) await register(controller, id);
    // Leadership goes elsewhere for a long while; this node hears no heartbeat (they go to the other controller).
    log.active = false;
    now = 5_000;
    await controller.tick(now);
    expect(fenced(controller.image())).toEqual([]);
    // It becomes active again in a later term: every broker gets a session from now on.
    log.active = true;
    log.term = 2;
    now = 10_000;
    await controller.tick(now);
    now = 10_000 + SESSION_MS - 100;
    await controller.tick(now);
    expect(fenced(controller.image()), "no broker fenced within one session of becoming active").toEqual([]);
    await heartbeat(controller, 2);
    now = 10_000 + SESSION_MS + 100;
    await controller.tick(now);
    expect(fenced(controller.image()), "only the broker still silent after a full session").toEqual([1]);
  });

  it("a new term of activity starts fresh sessions even when no check saw this node inactive in between", async () => {
    const { controller, log } = await start();
    for (const id of [1, 2]) await register(controller, id);
    // Lost and regained leadership between two checks: the last contacts it holds are from the old term.
    log.term = 3;
    now = 4_000;
    await controller.tick(now);
    expect(fenced(controller.image())).toEqual([]);
    now = 4_000 + SESSION_MS + 1;
    await controller.tick(now);
    expect(fenced(controller.image())).toEqual([1]);
  });

  it("fences at most one stale broker per check, the one silent longest, so delayed heartbeats of the others still count", async () => {
    const { controller } = await start();
    for (const id of [1, 2, 3]) await register(controller, id);
    await controller.createTopics({ topics: [{ name: "t", numPartitions: 3, replicationFactor: 3, configs: {} }], timeoutMs: 0, validateOnly: false });
    // Broker 3 is gone from 0; brokers 1 and 2 were last heard at 100 (their heartbeats are late).
    now = 100;
    await heartbeat(controller, 1);
    await heartbeat(controller, 2);
    now = 100 + SESSION_MS + 500; // all three sessions have lapsed
    await controller.tick(now);
    expect(fenced(controller.image()), "the longest silent first, and only it").toEqual([3]);
    // The late heartbeats arrive before the next check: nothing more is fenced.
    await heartbeat(controller, 1);
    await heartbeat(controller, 2);
    now += 500;
    await controller.tick(now);
    expect(fenced(controller.image())).toEqual([3]);
    for (const p of partitions(controller.image())) {
      expect([1, 2]).toContain(p.leader);
      expect(p.isr).not.toContain(3);
      expect(p.isr.length).toBe(2);
    }
  });

  it("a fenced broker's heartbeat unfences it once caught up, and leaderless partitions whose ISR holds it get it as leader", async () => {
    const { controller } = await start();
    for (const id of [1, 2]) await register(controller, id);
    await controller.createTopics({ topics: [{ name: "t", numPartitions: 2, replicationFactor: 2, configs: {} }], timeoutMs: 0, validateOnly: false });
    // Both brokers fall silent: fenced one check apart; the partitions end leaderless with the last one fenced in their ISR.
    now = SESSION_MS + 100;
    await controller.tick(now);
    now += 500;
    await controller.tick(now);
    expect(fenced(controller.image())).toEqual([1, 2]);
    const last = partitions(controller.image())[0]!.isr;
    expect(last.length).toBe(1);
    for (const p of partitions(controller.image())) expect(p.leader).toBe(NO_LEADER);
    const lastIsr = last[0]!;
    const other = lastIsr === 1 ? 2 : 1;
    // The other broker returns first: unfenced, but it may not lead (not in the ISR, unclean election off).
    expect((await heartbeat(controller, other)).isFenced).toBe(false);
    for (const p of partitions(controller.image())) expect(p.leader).toBe(NO_LEADER);
    // A heartbeat that is not caught up (metadata offset before its registration) does not unfence.
    const epoch = controller.image().brokers.get(lastIsr)!.brokerEpoch;
    expect((await controller.brokerHeartbeat({ brokerId: lastIsr, brokerEpoch: epoch, currentMetadataOffset: epoch - 1, wantFence: false })).isFenced).toBe(true);
    // The ISR's last member returns, caught up: unfenced and elected at once.
    expect((await heartbeat(controller, lastIsr)).isFenced).toBe(false);
    expect(fenced(controller.image())).toEqual([]);
    for (const p of partitions(controller.image())) expect(p.leader).toBe(lastIsr);
  });
});

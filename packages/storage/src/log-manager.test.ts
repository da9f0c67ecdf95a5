import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { existsSync } from "node:fs";
import { mkdir, readdir } from "node:fs/promises";
import { join } from "node:path";
import { FlotillaError } from "@flotilla/common";
import { silentLogger } from "@flotilla/common/logger";
import { LogManager, parseTopicPartitionDir, topicPartitionDirName } from "./index.js";
import { FakeClock, buildBatch, tempDir, testConfig } from "./test-support.js";

let root: { path: string; cleanup: () => Promise<void> };
let clock: FakeClock;
const managers: LogManager[] = [];

beforeEach(async () => {
  root = await tempDir("flotilla-logmanager-");
  clock = new FakeClock();
});

afterEach(async () => {
  await Promise.allSettled(managers.splice(0).map((m) => m.closeAll()));
  await root.cleanup();
});

const config = testConfig({ segmentBytes: 400, retentionMs: 60_000 });

async function openManager(logDirs: string[]): Promise<LogManager> {
  const manager = await LogManager.open({ logDirs, clock, logger: silentLogger(), configFor: () => config });
  managers.push(manager);
  return manager;
}

describe("parseTopicPartitionDir", () => {
  it("splits at the last '-' so topic names may contain dashes", () => {
    expect(parseTopicPartitionDir("orders-eu-west-12")).toEqual({ topic: "orders-eu-west", partition: 12 });
    expect(parseTopicPartitionDir(topicPartitionDirName("__consumer_offsets", 49))).toEqual({ topic: "__consumer_offsets", partition: 49 });
    for (const bad of ["orders", "-3", "orders-", "orders-x", "orders-01", "orders-1.abc-delete", "bad topic-1"]) {
      expect(parseTopicPartitionDir(bad), bad).toBeUndefined();
    }
  });
});

describe("LogManager", () => {
  it("spreads new partitions over log.dirs, reopens them all at start-up, and deletes one by rename then removal", async () => {
    const dirs = [join(root.path, "a"), join(root.path, "b")];
    const manager = await openManager(dirs);
    const names = ["orders-eu", "orders-eu", "orders-eu", "clicks", "clicks", "x-y-z"];
    const logs = await Promise.all(names.map((topic, i) => manager.getOrCreate(topic, i, config)));
    expect(await manager.getOrCreate("orders-eu", 0, config)).toBe(logs[0]);
    const perDir = dirs.map((d) => names.filter((t, i) => manager.logDirOf(t, i) === d).length);
    expect(perDir).toEqual([3, 3]);
    for (const [i, log] of logs.entries()) {
      for (let b = 0; b < 5 + i; b++) await log.appendAsLeader(buildBatch({ records: 2, valueBytes: 40, baseTimestamp: clock.now }), { leaderEpoch: 0 });
    }
    const ends = logs.map((l) => l.logEndOffset);
    await manager.closeAll();
    managers.splice(managers.indexOf(manager), 1);

    // A deletion a crash interrupted, and a directory that is not a partition.
    await mkdir(join(dirs[0]!, "gone-3.0123456789abcdef0123456789abcdef-delete"), { recursive: true });
    await mkdir(join(dirs[1]!, "not_a_partition"), { recursive: true });
    const reopened = await openManager(dirs);
    expect(existsSync(join(dirs[0]!, "gone-3.0123456789abcdef0123456789abcdef-delete"))).toBe(false);
    expect(reopened.all()).toHaveLength(names.length);
    names.forEach((topic, i) => expect(reopened.get(topic, i)?.logEndOffset).toBe(ends[i]));
    expect(reopened.get("x-y-z", 5)?.topic).toBe("x-y-z");

    const victimDir = reopened.logDirOf("clicks", 3)!;
    expect(await reopened.delete("clicks", 3)).toBe(true);
    expect(reopened.get("clicks", 3)).toBeUndefined();
    expect((await readdir(victimDir)).filter((n) => n.startsWith("clicks-3"))).toEqual([]);
    expect(await reopened.delete("clicks", 3)).toBe(false);
    // Created again, it starts empty, in the dir now holding fewer partitions.
    const fresh = await reopened.getOrCreate("clicks", 3, config);
    expect(fresh.logEndOffset).toBe(0);
    expect(reopened.logDirOf("clicks", 3)).toBe(victimDir);
  });

  it("refuses invalid topic names and partitions", async () => {
    const manager = await openManager([root.path]);
    await expect(manager.getOrCreate("bad/topic", 0, config)).rejects.toSatisfy((e) => FlotillaError.is(e, "INVALID_TOPIC_EXCEPTION"));
    await expect(manager.getOrCreate("t", -1, config)).rejects.toSatisfy((e) => FlotillaError.is(e, "INVALID_PARTITIONS"));
  });

  it("runs retention on every log, on demand and from its timer", async () => {
    const manager = await openManager([root.path]);
    const logs = await Promise.all([0, 1].map((p) => manager.getOrCreate("t", p, config)));
    for (const log of logs) {
      for (let b = 0; b < 20; b++) await log.appendAsLeader(buildBatch({ records: 2, valueBytes: 40, baseTimestamp: clock.now }), { leaderEpoch: 0 });
      expect(log.segmentCount).toBeGreaterThan(2);
    }
    clock.advance(120_000);
    expect(await manager.runRetention()).toBeGreaterThan(2);
    for (const log of logs) expect(log.segmentCount).toBeLessThanOrEqual(2);

    for (const log of logs) {
      for (let b = 0; b < 20; b++) await log.appendAsLeader(buildBatch({ records: 2, valueBytes: 40, baseTimestamp: clock.now }), { leaderEpoch: 0 });
    }
    clock.advance(120_000);
    manager.startRetention(10);
    // Bounded wait for the timer to do the same.
    for (let i = 0; i < 200 && logs.some((l) => l.segmentCount > 2); i++) await new Promise((r) => setTimeout(r, 10));
    await manager.stopRetention();
    for (const log of logs) expect(log.segmentCount).toBeLessThanOrEqual(2);
  });
});

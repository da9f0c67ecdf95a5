import { copyFile, readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { silentLogger } from "@flotilla/common/logger";
import { decodeBatches, encodeBatch, type Compression } from "@flotilla/protocol";
import type { LogConfig } from "./config.js";
import { CLEANER_OFFSET_CHECKPOINT_FILE, cleanLog, type CleanResult } from "./log-cleaner.js";
import { LogManager } from "./log-manager.js";
import { PartitionLog } from "./partition-log.js";
import { FakeClock, tempDir, testConfig } from "./test-support.js";

const logger = silentLogger();
const DAY_MS = 86_400_000;

interface Rec {
  offset: number;
  key: string | null;
  value: string | null;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function openLog(dir: string, clock: FakeClock, overrides: Partial<LogConfig> = {}): Promise<PartitionLog> {
  const log = await PartitionLog.open({ dir, config: testConfig({ cleanupPolicy: "compact", ...overrides }), clock, logger, topic: "t", partition: 0 });
  cleanups.push(() => log.close());
  return log;
}

async function fresh(): Promise<string> {
  const dir = await tempDir("flotilla-cleaner-");
  cleanups.push(dir.cleanup);
  return dir.path;
}

async function append(log: PartitionLog, clock: FakeClock, records: [string | null, string | null][], compression: Compression = "none"): Promise<void> {
  const batch = encodeBatch(
    records.map(([k, v]) => ({ key: k === null ? null : Buffer.from(k), value: v === null ? null : Buffer.from(v) })),
    { nowMs: clock.now, compression },
  );
  await log.appendAsLeader(batch, { leaderEpoch: 0 });
}

/** Every record in the log, decoded, by reading forward from the log start. */
async function readAll(log: PartitionLog): Promise<Rec[]> {
  const out: Rec[] = [];
  let offset = log.logStartOffset;
  for (let i = 0; i < 10_000 && offset < log.logEndOffset; i++) {
    const r = await log.read(offset, { maxBytes: 64 * 1024, minOneBatch: true });
    for (const b of decodeBatches(r.records)) {
      for (const rec of b.records) out.push({ offset: rec.offset, key: rec.key?.toString() ?? null, value: rec.value?.toString() ?? null });
    }
    expect(r.nextOffset).toBeGreaterThan(offset);
    offset = r.nextOffset;
  }
  return out;
}

/** What compaction of [0, endOffset) must leave: the last record per key there, everything else as is. */
function expectedAfter(before: Rec[], endOffset: number, dropTombstones: boolean): Rec[] {
  const last = new Map<string, number>();
  for (const r of before) if (r.key !== null && r.offset < endOffset) last.set(r.key, r.offset);
  return before.filter((r) => {
    if (r.offset >= endOffset || r.key === null) return true;
    if (last.get(r.key) !== r.offset) return false;
    return !(dropTombstones && r.value === null);
  });
}

async function clean(log: PartitionLog, clock: FakeClock, checkpoint = 0): Promise<CleanResult | undefined> {
  return cleanLog(log, { checkpoint, nowMs: clock.now, clock, logger });
}

describe("log cleaner", () => {
  it("keeps exactly the latest value per key at its original offset, leaves the active segment alone, and shrinks the log", async () => {
    const clock = new FakeClock();
    const log = await openLog(await fresh(), clock);
    const codecs: Compression[] = ["none", "gzip", "none", "lz4"];
    for (let i = 0; i < 300; i++) {
      const n = 1 + (i % 3);
      const recs: [string | null, string | null][] = [];
      for (let j = 0; j < n; j++) recs.push([`k${(i * 3 + j) % 5}`, `v${i}-${j}`]);
      if (i % 50 === 7) recs.push([null, `nokey${i}`]);
      await append(log, clock, recs, codecs[i % codecs.length]);
      clock.advance(10);
    }
    expect(log.segmentCount).toBeGreaterThan(5);
    const before = await readAll(log);
    const sizeBefore = log.sizeBytes;
    const activeBefore = log.segmentInfos().at(-1)!;
    const endOffset = activeBefore.baseOffset;

    const result = (await clean(log, clock))!;
    expect(result.swapped).toBe(true);
    expect(result.endOffset).toBe(endOffset);
    const after = await readAll(log);
    expect(after).toEqual(expectedAfter(before, endOffset, false));
    // Null-key records are all kept; every key still has its latest value.
    expect(after.filter((r) => r.key === null)).toEqual(before.filter((r) => r.key === null));
    expect(result.recordsRemoved).toBe(before.length - after.length);
    expect(log.sizeBytes).toBeLessThan(sizeBefore / 2);
    expect(log.logStartOffset).toBe(0);
    expect(log.segmentInfos().at(-1)).toEqual(activeBefore);
    expect(log.segmentInfos().map((s) => s.baseOffset)).toEqual(log.segmentInfos().map((s) => s.baseOffset).sort((a, b) => a - b));

    // Nothing dirty is left below the checkpoint.
    expect(await clean(log, clock, result.endOffset)).toBeUndefined();
  });

  it("reads of removed offsets return the next surviving batch", async () => {
    const clock = new FakeClock();
    const log = await openLog(await fresh(), clock);
    for (let i = 0; i < 120; i++) await append(log, clock, [[`k${i % 3}`, `value-${i}`]]);
    await clean(log, clock);
    const survivors = await readAll(log);
    const surviving = new Set(survivors.map((r) => r.offset));
    const hole = [...Array(log.logEndOffset).keys()].find((o) => !surviving.has(o) && o > 0)!;
    expect(hole).toBeDefined();
    // Batches from the hole on: possibly a header-only batch the cleaner kept at a segment's
    // end (no records), then the batch holding the next surviving record.
    const next = survivors.find((s) => s.offset > hole)!;
    let offset = hole;
    let seen: number[] = [];
    for (let i = 0; i < 200 && seen.length === 0; i++) {
      const r = await log.read(offset, { maxBytes: 1, minOneBatch: true });
      expect(r.nextOffset).toBeGreaterThan(offset);
      seen = decodeBatches(r.records).flatMap((b) => b.records.map((x) => x.offset));
      offset = r.nextOffset;
    }
    expect(seen[0]).toBe(next.offset);
  });

  it("a follower copies a cleaned leader's log, holes filled with empty batches, and reopens it", async () => {
    const clock = new FakeClock();
    const leader = await openLog(await fresh(), clock);
    for (let i = 0; i < 150; i++) await append(leader, clock, [[`k${i % 3}`, `v${i}`]]);
    await clean(leader, clock);
    const followerDir = await fresh();
    const follower = await PartitionLog.open({ dir: followerDir, config: testConfig({ cleanupPolicy: "compact" }), clock, logger, topic: "t", partition: 0 });
    for (let i = 0; i < 1000 && follower.logEndOffset < leader.logEndOffset; i++) {
      const r = await leader.read(follower.logEndOffset, { maxBytes: 300, minOneBatch: true });
      await follower.appendAsFollower(Buffer.from(r.records));
    }
    expect(follower.logEndOffset).toBe(leader.logEndOffset);
    const expected = await readAll(leader);
    expect(await readAll(follower)).toEqual(expected);
    await follower.close();
    const reopened = await openLog(followerDir, clock);
    expect(await readAll(reopened)).toEqual(expected);
    await expect(reopened.appendAsFollower(Buffer.from((await leader.read(0, { maxBytes: 100, minOneBatch: true })).records))).rejects.toThrow(/below the log end offset/);
    // A log that is not compacted refuses holes.
    const plain = await openLog(await fresh(), clock, { cleanupPolicy: "delete" });
    await expect(plain.appendAsFollower(Buffer.from((await leader.read(120, { maxBytes: 100, minOneBatch: true })).records))).rejects.toThrow(/skips offsets/);
  });

  it("keeps tombstones before delete.retention.ms and drops them after", async () => {
    const clock = new FakeClock();
    const log = await openLog(await fresh(), clock, { deleteRetentionMs: DAY_MS });
    for (let i = 0; i < 40; i++) await append(log, clock, [[`k${i % 4}`, `v${i}`]]);
    await append(log, clock, [["k1", null]]);
    await append(log, clock, [["k2", null]]);
    for (let i = 0; i < 40; i++) await append(log, clock, [[`other${i % 2}`, `w${i}`]]);
    const before = await readAll(log);
    const first = (await clean(log, clock))!;
    const afterFirst = await readAll(log);
    expect(afterFirst).toEqual(expectedAfter(before, first.endOffset, false));
    expect(afterFirst.filter((r) => r.value === null).map((r) => r.key)).toEqual(["k1", "k2"]);

    // A day later, new dirty data triggers another cleaning, which drops the expired tombstones.
    clock.advance(DAY_MS + 1);
    for (let i = 0; i < 60; i++) await append(log, clock, [[`late${i % 2}`, `x${i}`]]);
    const second = (await clean(log, clock, first.endOffset))!;
    expect(second.swapped).toBe(true);
    const afterSecond = await readAll(log);
    expect(afterSecond.filter((r) => r.value === null)).toEqual([]);
    expect(afterSecond.filter((r) => r.key === "k0").map((r) => r.value)).toEqual(["v36"]);
    expect(afterSecond.some((r) => r.key === "k1" || r.key === "k2")).toBe(false);
  });

  it("reopening a cleaned log gives the same records and segments", async () => {
    const clock = new FakeClock();
    const dir = await fresh();
    const log = await PartitionLog.open({ dir, config: testConfig({ cleanupPolicy: "compact" }), clock, logger, topic: "t", partition: 0 });
    for (let i = 0; i < 150; i++) await append(log, clock, [[`k${i % 7}`, `v${i}`], [`k${(i + 3) % 7}`, `w${i}`]]);
    await clean(log, clock);
    const records = await readAll(log);
    const segments = log.segmentInfos().map((s) => [s.baseOffset, s.nextOffset, s.sizeBytes]);
    const end = log.logEndOffset;
    await log.close();
    for (const crash of [false, true]) {
      if (crash) await writeFile(join(dir, "00000000000000000000.index"), Buffer.alloc(5)); // a ragged index forces a rebuild
      const again = await openLog(dir, clock);
      expect(await readAll(again)).toEqual(records);
      expect(again.segmentInfos().map((s) => [s.baseOffset, s.nextOffset, s.sizeBytes])).toEqual(segments);
      expect(again.logEndOffset).toBe(end);
      await again.close();
    }
  });

  it("recovers from a crash mid-swap: a leftover .cleaned is dropped, a leftover .swap is completed", async () => {
    const clock = new FakeClock();
    const dirA = await fresh();
    const logA = await PartitionLog.open({ dir: dirA, config: testConfig({ cleanupPolicy: "compact" }), clock, logger, topic: "t", partition: 0 });
    for (let i = 0; i < 150; i++) await append(logA, clock, [[`k${i % 4}`, `v${i}`]]);
    await logA.close();
    // dirB: the same log, uncleaned.
    const dirB = await fresh();
    for (const name of await readdir(dirA)) await copyFile(join(dirA, name), join(dirB, name));

    const reopenedA = await openLog(dirA, clock);
    const original = await readAll(reopenedA);
    const result = (await clean(reopenedA, clock))!;
    expect(result.segmentsRewritten).toBeGreaterThan(1);
    const cleaned = await readAll(reopenedA);
    await reopenedA.close();

    // Crash after step b for every rewritten segment, with a half-written .cleaned of one more.
    const names = (await readdir(dirA)).filter((n) => n.endsWith(".log"));
    let swaps = 0;
    for (const name of names) {
      const a = await readFile(join(dirA, name));
      const b = await readFile(join(dirB, name));
      if (!a.equals(b)) {
        await writeFile(join(dirB, name + ".swap"), a);
        swaps++;
      }
    }
    expect(swaps).toBe(result.segmentsRewritten);
    await writeFile(join(dirB, names[names.length - 1] + ".cleaned"), Buffer.from("half a segment"));
    const logB = await openLog(dirB, clock);
    expect(await readAll(logB)).toEqual(cleaned);
    expect((await readdir(dirB)).filter((n) => n.endsWith(".swap") || n.endsWith(".cleaned"))).toEqual([]);
    await logB.close();

    // Crash before step b: only .cleaned files; the original log is served whole.
    const uncleanedDir = await fresh();
    const orig = await PartitionLog.open({ dir: uncleanedDir, config: testConfig({ cleanupPolicy: "compact" }), clock, logger, topic: "t", partition: 0 });
    await orig.close();
    for (const name of (await readdir(dirA)).filter((n) => n.endsWith(".log"))) {
      await writeFile(join(uncleanedDir, name + ".cleaned"), await readFile(join(dirA, name)));
    }
    // uncleanedDir holds the empty log plus stray .cleaned files, which must simply disappear.
    const logC = await openLog(uncleanedDir, clock);
    expect(logC.logEndOffset).toBe(0);
    expect((await readdir(uncleanedDir)).some((n) => n.endsWith(".cleaned"))).toBe(false);
    expect(original.length).toBe(150);
  });

  it("cleanup.policy=compact skips time and size retention; compact,delete applies it", async () => {
    for (const policy of ["compact", "compact,delete"] as const) {
      const clock = new FakeClock();
      const log = await openLog(await fresh(), clock, { cleanupPolicy: policy, retentionMs: 1000 });
      for (let i = 0; i < 60; i++) await append(log, clock, [[`k${i}`, `v${i}`]]);
      clock.advance(10_000);
      const { deletedSegments } = await log.applyRetention(clock.now);
      if (policy === "compact") expect(deletedSegments).toBe(0);
      else expect(deletedSegments).toBeGreaterThan(0);
    }
  });

  it("LogManager cleans compacted logs whose dirty ratio is high enough, keeps a checkpoint, and leaves delete logs alone", async () => {
    const clock = new FakeClock();
    const logDir = await fresh();
    const manager = await LogManager.open({ logDirs: [logDir], clock, logger, configFor: () => testConfig() });
    cleanups.push(() => manager.closeAll());
    const compacted = await manager.getOrCreate("c", 0, testConfig({ cleanupPolicy: "compact", minCleanableDirtyRatio: 0.5 }));
    const plain = await manager.getOrCreate("d", 0, testConfig());
    for (let i = 0; i < 100; i++) {
      await append(compacted, clock, [[`k${i % 2}`, `v${i}`]]);
      await append(plain, clock, [[`k${i % 2}`, `v${i}`]]);
    }
    const plainBefore = await readAll(plain);
    const results = await manager.runCleaner();
    expect(results.map((r) => `${r.topic}-${r.partition}`)).toEqual(["c-0"]);
    expect(await readAll(plain)).toEqual(plainBefore);
    const checkpoint = await readFile(join(logDir, CLEANER_OFFSET_CHECKPOINT_FILE), "utf8");
    expect(checkpoint).toBe(`0\n1\nc 0 ${results[0]!.endOffset}\n`);
    // The clean part is not cleaned again until enough new dirty data arrives.
    expect(await manager.runCleaner()).toEqual([]);
  });

  it("a log truncated while it was being cleaned keeps its data: the cleaned files are discarded", async () => {
    const clock = new FakeClock();
    const dir = await fresh();
    const log = await openLog(dir, clock);
    for (let i = 0; i < 100; i++) await append(log, clock, [[`k${i % 2}`, `v${i}`]]);
    const racing = {
      dir: log.dir,
      topic: log.topic,
      partition: log.partition,
      currentConfig: log.currentConfig,
      logStartOffset: log.logStartOffset,
      cleanableSegments: () => log.cleanableSegments(),
      takeTruncationMark: () => log.takeTruncationMark(),
      swapCleanedSegments: async (cleaned: Parameters<PartitionLog["swapCleanedSegments"]>[0]) => {
        await log.truncateTo(30); // a follower's truncation lands between pass 2 and the swap
        return log.swapCleanedSegments(cleaned);
      },
    };
    const before = (await readAll(log)).filter((r) => r.offset < 30);
    const result = (await cleanLog(racing, { checkpoint: 0, nowMs: clock.now, clock, logger }))!;
    expect(result.swapped).toBe(false);
    expect(result.endOffset).toBe(0);
    expect(await readAll(log)).toEqual(before);
    expect((await readdir(dir)).filter((n) => n.includes(".swap") || n.includes(".cleaned"))).toEqual([]);
    expect(log.takeTruncationMark()).toBe(30);
  });

  it("keeps an idempotent producer's last batch of a segment as an empty header when all its records go, and drops other emptied batches", async () => {
    const clock = new FakeClock();
    const log = await openLog(await fresh(), clock);
    await append(log, clock, [["first", "x"]]);
    const producerBatch = encodeBatch([{ key: Buffer.from("k"), value: Buffer.from("from-producer") }], { nowMs: clock.now, producerId: 7, producerEpoch: 2, baseSequence: 40 });
    const { baseOffset: producerOffset } = await log.appendAsLeader(producerBatch, { leaderEpoch: 0 });
    for (let i = 0; i < 60; i++) await append(log, clock, [["k", `v${i}`]]);
    const firstSegmentEnd = log.segmentInfos()[0]!.nextOffset;
    expect(firstSegmentEnd).toBeGreaterThan(producerOffset + 2);
    await clean(log, clock);
    const r = await log.read(0, { maxBytes: 1_000_000 });
    const headers = decodeBatches(r.records).map((b) => ({ base: b.header.baseOffset, count: b.header.recordCount, producerId: b.header.producerId, baseSequence: b.header.baseSequence }));
    const kept = headers.find((h) => h.base === producerOffset);
    expect(kept).toEqual({ base: producerOffset, count: 0, producerId: 7, baseSequence: 40 });
    // The plain batches emptied between the producer's batch and the segment's last one are gone.
    expect(headers.filter((h) => h.base > producerOffset && h.base < firstSegmentEnd - 1)).toEqual([]);
  });

  it("startRetention also runs the cleaner loop every log.cleaner.backoff.ms; closeAll stops it", async () => {
    const clock = new FakeClock();
    const logDir = await fresh();
    const manager = await LogManager.open({ logDirs: [logDir], clock, logger, configFor: () => testConfig(), cleanerBackoffMs: 20 });
    cleanups.push(() => manager.closeAll());
    const log = await manager.getOrCreate("c", 0, testConfig({ cleanupPolicy: "compact" }));
    for (let i = 0; i < 100; i++) await append(log, clock, [[`k${i % 2}`, `v${i}`]]);
    const sizeBefore = log.sizeBytes;
    manager.startRetention(3_600_000);
    const deadline = Date.now() + 5000;
    while (log.sizeBytes === sizeBefore && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(log.sizeBytes).toBeLessThan(sizeBefore / 2);
    await manager.closeAll();
  });
});

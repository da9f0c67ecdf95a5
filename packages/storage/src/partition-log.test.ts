import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FlotillaError, SeededRandom } from "@flotilla/common";
import { silentLogger } from "@flotilla/common/logger";
import { decodeBatches, encodeBatch, readBatchHeader, validateBatches } from "@flotilla/protocol";
import { PartitionLog, type LogConfig } from "./index.js";
import { FakeClock, buildBatch, tempDir, testConfig } from "./test-support.js";

let dir: { path: string; cleanup: () => Promise<void> };
let clock: FakeClock;
const opened: PartitionLog[] = [];

beforeEach(async () => {
  dir = await tempDir();
  clock = new FakeClock();
});

afterEach(async () => {
  await Promise.allSettled(opened.splice(0).map((log) => log.close()));
  await dir.cleanup();
});

async function openLog(config: LogConfig = testConfig(), extra: { openSegmentsMax?: number } = {}): Promise<PartitionLog> {
  const log = await PartitionLog.open({ dir: dir.path, config, clock, logger: silentLogger(), topic: "t", partition: 0, ...extra });
  opened.push(log);
  return log;
}

/** Every batch from logStartOffset to logEndOffset, read in pieces of `maxBytes`. */
async function readAll(log: PartitionLog, maxBytes = 4096): Promise<Buffer> {
  const parts: Buffer[] = [];
  let offset = log.logStartOffset;
  for (let i = 0; i < 100_000 && offset < log.logEndOffset; i++) {
    const result = await log.read(offset, { maxBytes, minOneBatch: true });
    expect(result.records.length).toBeGreaterThan(0);
    parts.push(result.records);
    offset = result.nextOffset;
  }
  expect(offset).toBe(log.logEndOffset);
  return Buffer.concat(parts);
}

/** What the leader should have stored: the input with baseOffset and leader epoch assigned. */
function expectedStored(batch: Buffer, baseOffset: number, leaderEpoch: number): Buffer {
  const copy = Buffer.from(batch);
  copy.writeBigInt64BE(BigInt(baseOffset), 0);
  copy.writeInt32BE(leaderEpoch, 12);
  return copy;
}

describe("PartitionLog appends and reads", () => {
  it("round-trips batches by offset across many segments, bytes unchanged but for offset and epoch", async () => {
    const log = await openLog(testConfig({ segmentBytes: 600, indexIntervalBytes: 100 }));
    const rng = new SeededRandom(7);
    const stored: { baseOffset: number; lastOffset: number; bytes: Buffer }[] = [];
    for (let i = 0; i < 150; i++) {
      const records = rng.int(1, 6);
      const batch = buildBatch({ records, valueBytes: rng.int(4, 60), seed: i });
      const original = Buffer.from(batch);
      const info = await log.appendAsLeader(batch, { leaderEpoch: 3 });
      const expectedBase = stored.length === 0 ? 0 : stored[stored.length - 1]!.lastOffset + 1;
      expect(info).toMatchObject({ baseOffset: expectedBase, lastOffset: expectedBase + records - 1, batchCount: 1, recordCount: records });
      stored.push({ baseOffset: info.baseOffset, lastOffset: info.lastOffset, bytes: expectedStored(original, info.baseOffset, 3) });
    }
    expect(log.segmentCount).toBeGreaterThan(10);
    expect(log.logEndOffset).toBe(stored[stored.length - 1]!.lastOffset + 1);
    expect(log.sizeBytes).toBe(stored.reduce((n, s) => n + s.bytes.length, 0));
    expect(await readAll(log, 700)).toEqual(Buffer.concat(stored.map((s) => s.bytes)));

    // Every offset, including those inside a batch, finds the batch holding it.
    for (const s of stored) {
      for (let offset = s.baseOffset; offset <= s.lastOffset; offset++) {
        const result = await log.read(offset, { maxBytes: 1, minOneBatch: true });
        expect(result.firstOffset).toBe(s.baseOffset);
        expect(result.nextOffset).toBe(s.lastOffset + 1);
        expect(result.records).toEqual(s.bytes);
      }
    }
  });

  it("appends several batches given in one buffer with one call", async () => {
    const log = await openLog();
    const batches = [buildBatch({ records: 2, seed: 1 }), buildBatch({ records: 3, seed: 2 }), buildBatch({ records: 1, seed: 3 })];
    const info = await log.appendAsLeader(Buffer.concat(batches), { leaderEpoch: 0 });
    expect(info).toMatchObject({ baseOffset: 0, lastOffset: 5, batchCount: 3, recordCount: 6 });
    const read = await log.read(0, { maxBytes: 10_000 });
    expect(validateBatches(read.records).map((b) => b.header.baseOffset)).toEqual([0, 2, 5]);
  });

  it("stores batches from the record codec, compressed or not, so they decode with the offsets the leader assigned", async () => {
    const log = await openLog(testConfig({ segmentBytes: 1 << 20 }));
    await log.appendAsLeader(buildBatch({ records: 3 }), { leaderEpoch: 0 }); // offsets 0..2
    const records = Array.from({ length: 20 }, (_, i) => ({ key: Buffer.from(`k${i}`), value: Buffer.from(`value ${i} `.repeat(8)), timestamp: clock.now + i }));
    const gzip = encodeBatch(records.slice(0, 10), { compression: "gzip" });
    const plain = encodeBatch(records.slice(10), { compression: "none", producerId: 42, producerEpoch: 1, baseSequence: 0 });
    const info = await log.appendAsLeader(Buffer.concat([gzip, plain]), { leaderEpoch: 5 });
    expect(info).toMatchObject({ baseOffset: 3, lastOffset: 22, batchCount: 2, recordCount: 20, maxTimestamp: clock.now + 19 });
    const read = await log.read(3, { maxBytes: 1 << 20 });
    const decoded = decodeBatches(read.records);
    expect(decoded.map((b) => b.compression)).toEqual(["gzip", "none"]);
    expect(decoded.map((b) => b.header.partitionLeaderEpoch)).toEqual([5, 5]);
    const flat = decoded.flatMap((b) => b.records);
    expect(flat.map((r) => r.offset)).toEqual(Array.from({ length: 20 }, (_, i) => 3 + i));
    expect(flat.map((r) => r.value?.toString())).toEqual(records.map((r) => r.value.toString()));
    expect(decoded[1]!.header.producerId).toBe(42);
  });

  it("rejects a batch with a bad CRC and appends nothing of the call", async () => {
    const log = await openLog();
    const good = buildBatch({ seed: 1 });
    const bad = buildBatch({ seed: 2 });
    bad[bad.length - 1]! ^= 0xff;
    await expect(log.appendAsLeader(Buffer.concat([good, bad]), { leaderEpoch: 0 })).rejects.toSatisfy((e) => FlotillaError.is(e, "CORRUPT_MESSAGE"));
    expect(log.logEndOffset).toBe(0);
    expect(log.sizeBytes).toBe(0);
    await expect(log.appendAsLeader(Buffer.alloc(0), { leaderEpoch: 0 })).rejects.toSatisfy((e) => FlotillaError.is(e, "INVALID_BATCH"));
  });

  it("rejects a batch larger than segment.bytes with RECORD_LIST_TOO_LARGE, as Kafka does", async () => {
    const log = await openLog(testConfig({ segmentBytes: 200 }));
    await expect(log.appendAsLeader(buildBatch({ valueBytes: 300 }), { leaderEpoch: 0 })).rejects.toSatisfy((e) => FlotillaError.is(e, "RECORD_LIST_TOO_LARGE"));
  });

  it("keeps the follower's offsets and refuses ones that do not continue the log", async () => {
    const log = await openLog();
    const first = buildBatch({ records: 4, baseOffset: 0 });
    first.writeInt32BE(9, 12); // the leader's epoch, kept as is
    await log.appendAsFollower(first);
    expect(log.logEndOffset).toBe(4);
    await expect(log.appendAsFollower(buildBatch({ baseOffset: 7 }))).rejects.toSatisfy((e) => FlotillaError.is(e, "INVALID_REQUEST"));
    expect((await log.appendAsFollower(buildBatch({ records: 2, baseOffset: 4 }))).lastOffset).toBe(5);
    expect((await log.appendAsFollower(Buffer.alloc(0))).batchCount).toBe(0);
    const read = await log.read(0, { maxBytes: 10_000 });
    expect(read.records.subarray(0, first.length)).toEqual(first);
    expect(readBatchHeader(read.records, 0).partitionLeaderEpoch).toBe(9);
  });

  it("throws OFFSET_OUT_OF_RANGE outside [logStartOffset, logEndOffset] and returns empty at the end", async () => {
    const log = await openLog(testConfig({ segmentBytes: 300 }));
    for (let i = 0; i < 20; i++) await log.appendAsLeader(buildBatch({ records: 2, valueBytes: 40, baseTimestamp: clock.now }), { leaderEpoch: 0 });
    const atEnd = await log.read(log.logEndOffset, { maxBytes: 1000 });
    expect(atEnd).toEqual({ records: Buffer.alloc(0), firstOffset: 40, nextOffset: 40 });
    await expect(log.read(41, { maxBytes: 1000 })).rejects.toSatisfy((e) => FlotillaError.is(e, "OFFSET_OUT_OF_RANGE"));
    await expect(log.read(-1, { maxBytes: 1000 })).rejects.toSatisfy((e) => FlotillaError.is(e, "OFFSET_OUT_OF_RANGE"));
    await expect(log.read(0, { maxBytes: -1 })).rejects.toSatisfy((e) => FlotillaError.is(e, "INVALID_FETCH_SIZE"));

    clock.advance(1000);
    const config = testConfig({ segmentBytes: 300, retentionMs: 10 });
    log.updateConfig(config);
    const { logStartOffset } = await log.applyRetention(clock.now);
    expect(logStartOffset).toBeGreaterThan(0);
    await expect(log.read(logStartOffset - 1, { maxBytes: 1000 })).rejects.toSatisfy((e) => FlotillaError.is(e, "OFFSET_OUT_OF_RANGE"));
    expect((await log.read(logStartOffset, { maxBytes: 1000 })).firstOffset).toBe(logStartOffset);
  });

  it("honours maxOffsetExclusive, maxBytes and minOneBatch", async () => {
    const log = await openLog(testConfig({ segmentBytes: 100_000 }));
    const sizes: number[] = [];
    for (let i = 0; i < 10; i++) {
      const batch = buildBatch({ records: 2, valueBytes: 20, seed: i });
      sizes.push(batch.length);
      await log.appendAsLeader(batch, { leaderEpoch: 0 });
    }
    // Offsets 0..19, two per batch. A high watermark of 7 ends the read before the batch at 8.
    const bounded = await log.read(0, { maxBytes: 100_000, maxOffsetExclusive: 7 });
    expect(validateBatches(bounded.records).map((b) => b.header.baseOffset)).toEqual([0, 2, 4, 6]);
    expect(bounded.nextOffset).toBe(8);
    expect(await log.read(8, { maxBytes: 100_000, maxOffsetExclusive: 8 })).toEqual({ records: Buffer.alloc(0), firstOffset: 8, nextOffset: 8 });

    const two = await log.read(3, { maxBytes: sizes[0]! * 2 + 10 });
    expect(two.firstOffset).toBe(2);
    expect(validateBatches(two.records)).toHaveLength(2);
    expect(two.nextOffset).toBe(6);

    const tooSmall = await log.read(4, { maxBytes: 10 });
    expect(tooSmall.records.length).toBe(0);
    expect(tooSmall.nextOffset).toBe(4);
    const oneAnyway = await log.read(4, { maxBytes: 10, minOneBatch: true });
    expect(validateBatches(oneAnyway.records)).toHaveLength(1);
    expect(oneAnyway.nextOffset).toBe(6);
  });

  it("serves concurrent reads during appends with whole batches only", async () => {
    const log = await openLog(testConfig({ segmentBytes: 2048, indexIntervalBytes: 64 }));
    let appending = true;
    const appends = (async () => {
      for (let i = 0; i < 200; i++) await log.appendAsLeader(buildBatch({ records: 1 + (i % 4), valueBytes: 30, seed: i }), { leaderEpoch: 1 });
    })().finally(() => (appending = false));
    let reads = 0;
    const readers = Array.from({ length: 4 }, async (_, r) => {
      // Until the appends are done (and a few reads more), bounded by count.
      for (let i = 0, after = 0; i < 20_000 && after < 20; i++) {
        if (!appending) after++;
        const end = log.logEndOffset;
        if (end === 0) {
          await new Promise((resolve) => setTimeout(resolve, 1));
          continue;
        }
        const offset = (i * 13 + r * 7) % end;
        const result = await log.read(offset, { maxBytes: 1500, minOneBatch: true });
        const batches = validateBatches(result.records); // throws on a partial batch
        expect(batches.length).toBeGreaterThan(0);
        let next = result.firstOffset;
        for (const b of batches) {
          expect(b.header.baseOffset).toBe(next);
          next = b.header.baseOffset + b.header.lastOffsetDelta + 1;
        }
        expect(next).toBe(result.nextOffset);
        reads++;
      }
    });
    await Promise.all([appends, ...readers]);
    expect(reads).toBeGreaterThan(80);
  });

  it("keeps at most openSegmentsMax closed segments open while reading across all of them", async () => {
    const log = await openLog(testConfig({ segmentBytes: 256 }), { openSegmentsMax: 2 });
    for (let i = 0; i < 60; i++) await log.appendAsLeader(buildBatch({ records: 1, valueBytes: 40, seed: i }), { leaderEpoch: 0 });
    expect(log.segmentCount).toBeGreaterThan(10);
    // Segments being fsynced after their roll are held open until that is done: wait for it.
    await log.flush();
    await readAll(log, 256);
    const openClosed = log.segmentInfos().slice(0, -1).filter((s) => s.open);
    expect(openClosed.length).toBeLessThanOrEqual(2);
    expect(log.segmentInfos().at(-1)!.open).toBe(true);
  });
});

describe("PartitionLog rolling", () => {
  it("rolls by size: no segment passes segment.bytes", async () => {
    const config = testConfig({ segmentBytes: 500 });
    const log = await openLog(config);
    for (let i = 0; i < 50; i++) await log.appendAsLeader(buildBatch({ valueBytes: 10 + (i % 50) }), { leaderEpoch: 0 });
    const infos = log.segmentInfos();
    expect(infos.length).toBeGreaterThan(3);
    for (const s of infos) expect(s.sizeBytes).toBeLessThanOrEqual(500);
    for (let i = 1; i < infos.length; i++) expect(infos[i]!.baseOffset).toBe(infos[i - 1]!.nextOffset);
  });

  it("rolls by time once segment.ms has passed since the segment's first append, never an empty segment", async () => {
    const log = await openLog(testConfig({ segmentBytes: 1 << 20, segmentMs: 60_000 }));
    await log.maybeRoll(clock.now + 10 * 60_000);
    expect(log.segmentCount).toBe(1); // empty: nothing to roll
    await log.appendAsLeader(buildBatch({ baseTimestamp: clock.now }), { leaderEpoch: 0 });
    clock.advance(60_000);
    await log.appendAsLeader(buildBatch({ baseTimestamp: clock.now }), { leaderEpoch: 0 });
    expect(log.segmentCount).toBe(1); // exactly segment.ms: not yet
    clock.advance(1);
    await log.appendAsLeader(buildBatch({ baseTimestamp: clock.now }), { leaderEpoch: 0 });
    expect(log.segmentInfos().map((s) => s.baseOffset)).toEqual([0, 2]);
    clock.advance(60_001);
    await log.maybeRoll(clock.now);
    expect(log.segmentInfos().map((s) => s.baseOffset)).toEqual([0, 2, 3]);
  });

  it("rolls when an index is full", async () => {
    // 48 bytes: 6 offset entries, 4 time entries (one kept for the closing entry).
    const log = await openLog(testConfig({ segmentBytes: 1 << 20, segmentIndexBytes: 48, indexIntervalBytes: 0 }));
    for (let i = 0; i < 12; i++) await log.appendAsLeader(buildBatch({ baseTimestamp: clock.now + i }), { leaderEpoch: 0 });
    const infos = log.segmentInfos();
    expect(infos.length).toBeGreaterThan(1);
    // Batch 0 sits at byte 0 and is not indexed; three more fill the time index (4 slots, one kept for closing).
    expect(infos[0]!.nextOffset - infos[0]!.baseOffset).toBe(4);
    // Three entries fill it; the closing entry is skipped as the largest timestamp is already in.
    expect(infos[0]!.timeIndexEntries).toBe(3);
    expect((await readAll(log)).length).toBe(log.sizeBytes);
  });

  it("maybeRoll is also done by applyRetention so a quiet partition's data can expire", async () => {
    const log = await openLog(testConfig({ segmentMs: 1000, retentionMs: 5000 }));
    await log.appendAsLeader(buildBatch({ baseTimestamp: clock.now }), { leaderEpoch: 0 });
    clock.advance(10_000);
    const result = await log.applyRetention(clock.now);
    expect(result).toEqual({ deletedSegments: 1, logStartOffset: 1 });
    expect(log.logEndOffset).toBe(1);
    expect(log.sizeBytes).toBe(0);
  });
});

describe("PartitionLog offsetForTimestamp", () => {
  it("finds the first batch whose maxTimestamp >= target, matching a brute-force scan, before and after reopen", async () => {
    const config = testConfig({ segmentBytes: 600, indexIntervalBytes: 90 });
    const log = await openLog(config);
    const rng = new SeededRandom(11);
    const batches: { baseOffset: number; maxTimestamp: number }[] = [];
    let ts = 1_000_000;
    for (let i = 0; i < 120; i++) {
      // Mostly increasing, sometimes older than before (producer clocks differ), sometimes equal.
      ts += rng.pick([0, 1, 5, 20, -30]);
      const records = rng.int(1, 4);
      const info = await log.appendAsLeader(buildBatch({ records, valueBytes: 20, baseTimestamp: ts, timestampStepMs: 2 }), { leaderEpoch: 0 });
      batches.push({ baseOffset: info.baseOffset, maxTimestamp: info.maxTimestamp });
    }
    expect(log.segmentCount).toBeGreaterThan(5);
    const oracle = (target: number) => {
      const hit = batches.find((b) => b.maxTimestamp >= target);
      return hit === undefined ? undefined : { offset: hit.baseOffset, timestamp: hit.maxTimestamp };
    };
    const targets = new Set<number>([0, Number.MAX_SAFE_INTEGER]);
    for (const b of batches) for (const d of [-1, 0, 1]) targets.add(b.maxTimestamp + d);
    const check = async (l: PartitionLog) => {
      for (const target of targets) expect(await l.offsetForTimestamp(target), `target ${target}`).toEqual(oracle(target));
    };
    await check(log);
    await log.close();
    await check(await openLog(config));
  });
});

describe("PartitionLog retention", () => {
  async function fill(log: PartitionLog, count: number, stepMs: number): Promise<void> {
    for (let i = 0; i < count; i++) {
      await log.appendAsLeader(buildBatch({ records: 2, valueBytes: 50, baseTimestamp: clock.now }), { leaderEpoch: 0 });
      clock.advance(stepMs);
    }
  }

  it("by time deletes only whole closed segments whose largest timestamp is older than retention.ms", async () => {
    const log = await openLog(testConfig({ segmentBytes: 400, retentionMs: 10_000 }));
    await fill(log, 30, 1000);
    const before = log.segmentInfos();
    const now = clock.now;
    const expired = before.slice(0, -1).filter((s) => now - s.maxTimestamp > 10_000);
    expect(expired.length).toBeGreaterThan(1);
    expect(expired.length).toBeLessThan(before.length - 1);
    const result = await log.applyRetention(now);
    expect(result.deletedSegments).toBe(expired.length);
    expect(result.logStartOffset).toBe(before[expired.length]!.baseOffset);
    expect(log.logStartOffset).toBe(result.logStartOffset);
    expect(log.segmentInfos()).toEqual(before.slice(expired.length).map((s) => expect.objectContaining({ baseOffset: s.baseOffset, sizeBytes: s.sizeBytes })));
    // Idempotent.
    expect((await log.applyRetention(now)).deletedSegments).toBe(0);
  });

  it("by size keeps the log at or above retention.bytes, never deleting the active segment, and never reuses offsets", async () => {
    const log = await openLog(testConfig({ segmentBytes: 400, retentionBytes: 1000 }));
    await fill(log, 30, 1);
    const before = log.segmentInfos();
    const result = await log.applyRetention(clock.now);
    expect(result.deletedSegments).toBeGreaterThan(0);
    expect(log.sizeBytes).toBeGreaterThanOrEqual(1000);
    // Deleting one more closed segment would have gone under the limit.
    const remaining = log.segmentInfos();
    if (remaining.length > 1) expect(log.sizeBytes - remaining[0]!.sizeBytes).toBeLessThan(1000);
    expect(remaining.at(-1)!.baseOffset).toBe(before.at(-1)!.baseOffset);

    // Everything closed goes; the log end stays and new appends continue from it.
    const end = log.logEndOffset;
    log.updateConfig(testConfig({ segmentBytes: 400, retentionBytes: 0 }));
    await log.applyRetention(clock.now);
    expect(log.segmentCount).toBe(1);
    expect(log.logEndOffset).toBe(end);
    expect((await log.appendAsLeader(buildBatch(), { leaderEpoch: 0 })).baseOffset).toBe(end);
  });
});

describe("PartitionLog truncation", () => {
  async function fillBatches(log: PartitionLog, count: number): Promise<Buffer[]> {
    const stored: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      const batch = buildBatch({ records: 3, valueBytes: 30, seed: i, baseTimestamp: clock.now + i });
      const info = await log.appendAsLeader(batch, { leaderEpoch: 2 });
      stored.push(expectedStored(batch, info.baseOffset, 2));
    }
    return stored;
  }

  it("drops everything at and after an offset inside a segment, at a segment boundary and mid-batch", async () => {
    const config = testConfig({ segmentBytes: 500, indexIntervalBytes: 100 });
    const log = await openLog(config);
    const stored = await fillBatches(log, 40); // offsets 0..119, 3 per batch
    const infos = log.segmentInfos();

    await log.truncateTo(90); // batch boundary (30 * 3)
    expect(log.logEndOffset).toBe(90);
    expect(await readAll(log)).toEqual(Buffer.concat(stored.slice(0, 30)));

    const boundary = infos.find((s) => s.baseOffset > 20 && s.baseOffset < 90)!;
    await log.truncateTo(boundary.baseOffset);
    expect(log.logEndOffset).toBe(boundary.baseOffset);
    expect(log.segmentInfos().at(-1)!.nextOffset).toBe(boundary.baseOffset);
    expect(await readAll(log)).toEqual(Buffer.concat(stored.slice(0, boundary.baseOffset / 3)));

    await log.truncateTo(10); // inside the batch 9..11: the whole batch goes
    expect(log.logEndOffset).toBe(9);
    expect(await readAll(log)).toEqual(Buffer.concat(stored.slice(0, 3)));
    expect(await log.offsetForTimestamp(clock.now + 3)).toBeUndefined();
    expect(await log.offsetForTimestamp(clock.now + 2)).toEqual({ offset: 6, timestamp: clock.now + 2 });

    // Appends continue, and a reopen sees the same log.
    const info = await log.appendAsLeader(buildBatch({ records: 2 }), { leaderEpoch: 3 });
    expect(info.baseOffset).toBe(9);
    const before = await readAll(log);
    await log.close();
    const reopened = await openLog(config);
    expect(reopened.logEndOffset).toBe(11);
    expect(await readAll(reopened)).toEqual(before);
  });

  it("truncateTo at or below logStartOffset empties the log, and truncateFullyAndStartAt restarts at any offset", async () => {
    const config = testConfig({ segmentBytes: 500 });
    const log = await openLog(config);
    await fillBatches(log, 20);
    await log.truncateTo(0);
    expect([log.logStartOffset, log.logEndOffset, log.sizeBytes, log.segmentCount]).toEqual([0, 0, 0, 1]);

    await fillBatches(log, 20);
    await log.truncateFullyAndStartAt(1000);
    expect([log.logStartOffset, log.logEndOffset, log.sizeBytes, log.segmentCount]).toEqual([1000, 1000, 0, 1]);
    await expect(log.read(999, { maxBytes: 100 })).rejects.toSatisfy((e) => FlotillaError.is(e, "OFFSET_OUT_OF_RANGE"));
    await log.appendAsFollower(buildBatch({ records: 2, baseOffset: 1000 }));
    await log.close();
    const reopened = await openLog(config);
    expect([reopened.logStartOffset, reopened.logEndOffset]).toEqual([1000, 1002]);
  });

  it("refuses calls after close and after deleteFiles", async () => {
    const log = await openLog();
    await log.appendAsLeader(buildBatch(), { leaderEpoch: 0 });
    await log.close();
    await expect(log.read(0, { maxBytes: 10 })).rejects.toSatisfy((e) => FlotillaError.is(e, "SHUTTING_DOWN"));
    await expect(log.appendAsLeader(buildBatch(), { leaderEpoch: 0 })).rejects.toSatisfy((e) => FlotillaError.is(e, "SHUTTING_DOWN"));
    const again = await openLog();
    await again.deleteFiles();
    await expect(again.read(0, { maxBytes: 10 })).rejects.toSatisfy((e) => FlotillaError.is(e, "NOT_LEADER_OR_FOLLOWER"));
  });
});

describe("fsync policy", () => {
  /** Whether the active segment holds appended bytes not fsynced yet. */
  const unflushed = (log: PartitionLog): boolean => (log as unknown as { active: { unflushed: boolean } }).active.unflushed;
  const append = (log: PartitionLog, records: number) => log.appendAsLeader(buildBatch({ records }), { leaderEpoch: 0 });

  it("without flush intervals never fsyncs on append (the OS writes back; replication is the durability)", async () => {
    const log = await openLog(testConfig({ segmentBytes: 1 << 20 }));
    for (let i = 0; i < 20; i++) await append(log, 5);
    expect(unflushed(log)).toBe(true);
    await log.flush();
    expect(unflushed(log)).toBe(false);
  });

  it("flush.messages: fsyncs once that many records are unflushed", async () => {
    const log = await openLog(testConfig({ segmentBytes: 1 << 20, flushIntervalMessages: 5 }));
    await append(log, 3);
    expect(unflushed(log)).toBe(true);
    await append(log, 3); // 6 >= 5
    expect(unflushed(log)).toBe(false);
    await append(log, 4); // the count starts again
    expect(unflushed(log)).toBe(true);
  });

  it("flush.ms: fsyncs on the first append that much time after the last fsync", async () => {
    const log = await openLog(testConfig({ segmentBytes: 1 << 20, flushIntervalMs: 1000 }));
    await append(log, 1);
    expect(unflushed(log)).toBe(true);
    clock.advance(999);
    await append(log, 1);
    expect(unflushed(log)).toBe(true);
    clock.advance(1);
    await append(log, 1);
    expect(unflushed(log)).toBe(false);
  });
});

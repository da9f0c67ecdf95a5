import { silentLogger } from "@flotilla/common/logger";
import { PartitionLog, cleanLog } from "@flotilla/storage";
import { FakeClock, tempDir } from "@flotilla/storage/test-support";
import { afterEach, describe, expect, it } from "vitest";
import { DEFAULT_GROUP_COORDINATOR_CONFIG } from "./config.js";
import { GroupCoordinatorEngine, type OffsetsLog } from "./coordinator.js";
import { ManualTimer } from "./timer.js";

/** __consumer_offsets partition 0 as a real compacted partition log (one partition, leader epoch 0). */
class PartitionOffsetsLog implements OffsetsLog {
  constructor(readonly log: PartitionLog) {}
  async append(_partition: number, batch: Buffer): Promise<number> {
    return (await this.log.appendAsLeader(batch, { leaderEpoch: 0 })).baseOffset;
  }
  range(): { logStartOffset: number; logEndOffset: number } {
    return { logStartOffset: this.log.logStartOffset, logEndOffset: this.log.logEndOffset };
  }
  async read(_partition: number, offset: number, maxBytes: number): Promise<Buffer> {
    return (await this.log.read(offset, { maxBytes, minOneBatch: true })).records;
  }
}

function engineOn(log: OffsetsLog): GroupCoordinatorEngine {
  const timer = new ManualTimer();
  const config = { ...DEFAULT_GROUP_COORDINATOR_CONFIG, offsetsTopicNumPartitions: 1, groupInitialRebalanceDelayMs: 0 };
  return new GroupCoordinatorEngine({ config, log, clock: timer, timer, logger: silentLogger() });
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe("group coordinator on a compacted __consumer_offsets", () => {
  it("a reload after compaction yields the same committed offsets from a much smaller log", async () => {
    const dir = await tempDir("flotilla-offsets-compaction-");
    cleanups.push(dir.cleanup);
    const clock = new FakeClock();
    const config = { segmentBytes: 2048, segmentMs: 7 * 86_400_000, retentionMs: -1, retentionBytes: -1, indexIntervalBytes: 256, segmentIndexBytes: 4096, cleanupPolicy: "compact" as const };
    const log = await PartitionLog.open({ dir: dir.path, config, clock, logger: silentLogger(), topic: "__consumer_offsets", partition: 0 });
    cleanups.push(() => log.close());
    const offsetsLog = new PartitionOffsetsLog(log);
    const engine = engineOn(offsetsLog);
    await engine.loadPartition(0);
    for (let round = 0; round < 60; round++) {
      for (const groupId of ["g1", "g2", "g3"]) {
        const r = await engine.offsetCommit({
          groupId,
          generationId: -1,
          memberId: "",
          groupInstanceId: "",
          topics: [{ name: "t", partitions: [0, 1, 2].map((p) => ({ partition: p, committedOffset: round * 10 + p, committedLeaderEpoch: 0, committedMetadata: `r${round}` })) }],
        });
        expect(r.topics.flatMap((t) => t.partitions.map((p) => p.errorCode))).toEqual([0, 0, 0]);
      }
    }
    const fetchAll = async (e: GroupCoordinatorEngine) =>
      Promise.all(["g1", "g2", "g3"].map(async (groupId) => (await e.offsetFetch({ groupId, topics: [] })).topics));
    const before = await fetchAll(engine);
    expect(before[0]![0]!.partitions.map((p) => p.committedOffset)).toEqual([590, 591, 592]);
    const sizeBefore = log.sizeBytes;

    const result = (await cleanLog(log, { checkpoint: 0, nowMs: clock.now, clock, logger: silentLogger() }))!;
    expect(result.swapped).toBe(true);
    expect(result.recordsRemoved).toBeGreaterThan(100);
    expect(log.sizeBytes).toBeLessThan(sizeBefore / 2);

    const reloaded = engineOn(offsetsLog);
    await reloaded.loadPartition(0);
    expect(await fetchAll(reloaded)).toEqual(before);
  });
});

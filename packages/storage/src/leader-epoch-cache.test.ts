import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FlotillaError } from "@flotilla/common";
import { silentLogger } from "@flotilla/common/logger";
import { LEADER_EPOCH_CHECKPOINT_FILE, LeaderEpochCache, PartitionLog } from "./index.js";
import { FakeClock, buildBatch, tempDir, testConfig } from "./test-support.js";

let dir: { path: string; cleanup: () => Promise<void> };
const opened: PartitionLog[] = [];

beforeEach(async () => {
  dir = await tempDir();
});

afterEach(async () => {
  await Promise.allSettled(opened.splice(0).map((log) => log.close()));
  await dir.cleanup();
});

async function openLog(): Promise<PartitionLog> {
  const log = await PartitionLog.open({ dir: dir.path, config: testConfig({ segmentBytes: 4096 }), clock: new FakeClock(), logger: silentLogger(), topic: "t", partition: 0 });
  opened.push(log);
  return log;
}

/** A batch as a follower receives it: offsets and epoch already set by the leader. */
function replicated(baseOffset: number, records: number, epoch: number, seed = 0): Buffer {
  const b = buildBatch({ baseOffset, records, seed });
  b.writeInt32BE(epoch, 12);
  return b;
}

describe("LeaderEpochCache", () => {
  it("writes Kafka's text layout and reads it back after reopening", async () => {
    const cache = await LeaderEpochCache.load(dir.path, silentLogger());
    await cache.assign(0, 0);
    await cache.assign(3, 120);
    await cache.assign(3, 150); // same epoch: no new entry
    await cache.assign(2, 200); // older epoch: ignored
    expect(await readFile(join(dir.path, LEADER_EPOCH_CHECKPOINT_FILE), "utf8")).toBe("0\n2\n0 0\n3 120\n");
    const again = await LeaderEpochCache.load(dir.path, silentLogger());
    expect(again.all()).toEqual([
      { epoch: 0, startOffset: 0 },
      { epoch: 3, startOffset: 120 },
    ]);
    expect(again.latestEpoch).toBe(3);
  });

  it("answers endOffsetFor with Kafka's semantics", async () => {
    const cache = await LeaderEpochCache.load(dir.path, silentLogger());
    expect(cache.endOffsetFor(0, 10)).toEqual({ epoch: -1, endOffset: -1 });
    await cache.assign(2, 5);
    await cache.assign(4, 20);
    await cache.assign(7, 30);
    expect(cache.endOffsetFor(7, 42)).toEqual({ epoch: 7, endOffset: 42 }); // latest: the log end
    expect(cache.endOffsetFor(4, 42)).toEqual({ epoch: 4, endOffset: 30 }); // ends where 7 starts
    expect(cache.endOffsetFor(5, 42)).toEqual({ epoch: 4, endOffset: 30 }); // unknown epoch: the largest below it
    expect(cache.endOffsetFor(1, 42)).toEqual({ epoch: 1, endOffset: 5 }); // older than all
    expect(cache.endOffsetFor(9, 42)).toEqual({ epoch: -1, endOffset: -1 }); // newer than all
    expect(cache.endOffsetFor(-1, 42)).toEqual({ epoch: -1, endOffset: -1 });
  });

  it("a new epoch replaces entries at or past its start offset", async () => {
    const cache = await LeaderEpochCache.load(dir.path, silentLogger());
    await cache.assign(1, 0);
    await cache.assign(2, 10);
    await cache.assign(5, 10);
    expect(cache.all()).toEqual([
      { epoch: 1, startOffset: 0 },
      { epoch: 5, startOffset: 10 },
    ]);
  });

  it("truncateFromStart (retention) keeps the epoch in force at the new log start, starting there", async () => {
    const cache = await LeaderEpochCache.load(dir.path, silentLogger());
    await cache.assign(1, 0);
    await cache.assign(2, 10);
    await cache.assign(4, 20);
    await cache.truncateFromStart(15);
    expect(cache.all()).toEqual([
      { epoch: 2, startOffset: 15 },
      { epoch: 4, startOffset: 20 },
    ]);
    await cache.truncateFromStart(20);
    expect(cache.all()).toEqual([{ epoch: 4, startOffset: 20 }]);
    await cache.truncateFromStart(5); // before every entry: nothing to do
    expect((await LeaderEpochCache.load(dir.path, silentLogger())).all()).toEqual([{ epoch: 4, startOffset: 20 }]);
  });

  it("rejects a malformed checkpoint with STORAGE_CORRUPT naming the file", async () => {
    await writeFile(join(dir.path, LEADER_EPOCH_CHECKPOINT_FILE), "0\n2\n1 5\n");
    const err = await LeaderEpochCache.load(dir.path, silentLogger()).catch((e: unknown) => e);
    expect(FlotillaError.is(err) && err.errorName).toBe("STORAGE_CORRUPT");
    expect(String((err as Error).message)).toContain(LEADER_EPOCH_CHECKPOINT_FILE);
    await writeFile(join(dir.path, LEADER_EPOCH_CHECKPOINT_FILE), "0\n2\n3 5\n2 9\n");
    await expect(LeaderEpochCache.load(dir.path, silentLogger())).rejects.toThrow(/does not increase/);
  });
});

describe("PartitionLog keeps its leader epoch cache", () => {
  it("leader appends add an entry per new epoch; truncateTo and truncateFullyAndStartAt trim it, on disk too", async () => {
    const log = await openLog();
    await log.appendAsLeader(buildBatch({ records: 3 }), { leaderEpoch: 0 });
    await log.appendAsLeader(buildBatch({ records: 2 }), { leaderEpoch: 0 });
    await log.appendAsLeader(buildBatch({ records: 4 }), { leaderEpoch: 2 });
    await log.appendAsLeader(buildBatch({ records: 1 }), { leaderEpoch: 5 });
    expect(log.leaderEpochCache.all()).toEqual([
      { epoch: 0, startOffset: 0 },
      { epoch: 2, startOffset: 5 },
      { epoch: 5, startOffset: 9 },
    ]);
    await log.truncateTo(9);
    expect(log.leaderEpochCache.all()).toEqual([
      { epoch: 0, startOffset: 0 },
      { epoch: 2, startOffset: 5 },
    ]);
    await log.close();
    const reopened = await openLog();
    expect(reopened.leaderEpochCache.all()).toEqual([
      { epoch: 0, startOffset: 0 },
      { epoch: 2, startOffset: 5 },
    ]);
    await reopened.truncateFullyAndStartAt(40);
    expect(reopened.leaderEpochCache.all()).toEqual([]);
    expect(await readFile(join(dir.path, LEADER_EPOCH_CHECKPOINT_FILE), "utf8")).toBe("0\n0\n");
  });

  it("follower appends add an entry for each batch with a newer partitionLeaderEpoch", async () => {
    const log = await openLog();
    await log.appendAsFollower(Buffer.concat([replicated(0, 2, 1), replicated(2, 2, 1, 1), replicated(4, 3, 3, 2)]));
    await log.appendAsFollower(replicated(7, 1, 3, 3));
    await log.appendAsFollower(replicated(8, 1, 6, 4));
    expect(log.leaderEpochCache.all()).toEqual([
      { epoch: 1, startOffset: 0 },
      { epoch: 3, startOffset: 4 },
      { epoch: 6, startOffset: 8 },
    ]);
    expect(log.leaderEpochCache.endOffsetFor(3, log.logEndOffset)).toEqual({ epoch: 3, endOffset: 8 });
  });
});

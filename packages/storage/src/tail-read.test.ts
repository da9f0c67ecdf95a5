import { pbkdf2 } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { silentLogger } from "@flotilla/common/logger";
import { HOT_TAIL_BYTES, PartitionLog } from "./partition-log.js";
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

/**
 * Occupies every thread of libuv's pool (pbkdf2 runs there) and resolves when all jobs are
 * done; `firstDone` resolves when the first one is. Anything queued on the pool after this
 * call finishes after `firstDone`.
 */
function occupyThreadPool(): { firstDone: Promise<void>; allDone: Promise<void> } {
  const threads = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
  let markFirst!: () => void;
  const firstDone = new Promise<void>((r) => (markFirst = r));
  const jobs = Array.from({ length: threads }, () => new Promise<void>((resolve, reject) => {
    pbkdf2("password", "salt", 200_000, 32, "sha256", (err) => {
      markFirst();
      if (err) reject(err);
      else resolve();
    });
  }));
  return { firstDone, allDone: Promise.all(jobs).then(() => undefined) };
}

describe("PartitionLog reads at the tail", () => {
  it("a read near the active segment's end does not wait for a busy thread pool; one in an older segment does", async () => {
    const log = await PartitionLog.open({ dir: dir.path, config: testConfig({ segmentBytes: 2048 }), clock: new FakeClock(), logger: silentLogger(), topic: "t", partition: 0 });
    opened.push(log);
    for (let i = 0; i < 40; i++) await log.appendAsLeader(buildBatch({ records: 2, valueBytes: 40, seed: i }), { leaderEpoch: 1 });
    expect(log.segmentCount).toBeGreaterThan(1);
    expect(HOT_TAIL_BYTES).toBeGreaterThan(2048);

    const tailOffset = log.logEndOffset - 2;
    const order: string[] = [];
    const pool = occupyThreadPool();
    void pool.firstDone.then(() => order.push("pool"));
    const tail = log.read(tailOffset, { maxBytes: 4096, minOneBatch: true }).then((r) => {
      order.push("tail");
      return r;
    });
    const old = log.read(0, { maxBytes: 4096, minOneBatch: true }).then((r) => {
      order.push("old");
      return r;
    });
    const [tailResult, oldResult] = await Promise.all([tail, old, pool.allDone]);
    expect(tailResult.firstOffset).toBe(tailOffset);
    expect(tailResult.nextOffset).toBe(log.logEndOffset);
    expect(tailResult.records.length).toBeGreaterThan(0);
    expect(oldResult.firstOffset).toBe(0);
    // The tail read finished before any pool job could; the old segment's read queued behind them.
    expect(order.indexOf("tail")).toBeLessThan(order.indexOf("pool"));
    expect(order.indexOf("old")).toBeGreaterThan(order.indexOf("pool"));
  });
});

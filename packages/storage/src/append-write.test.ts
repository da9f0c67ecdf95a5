import { pbkdf2 } from "node:crypto";
import { readFile } from "node:fs/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { silentLogger } from "@flotilla/common/logger";
import { PartitionLog } from "./partition-log.js";
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

/** Occupies every thread of libuv's pool (pbkdf2 runs there); resolves when the first job is done. */
function occupyThreadPool(): { firstDone: Promise<void>; allDone: Promise<void> } {
  const threads = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
  let markFirst!: () => void;
  const firstDone = new Promise<void>((r) => (markFirst = r));
  const jobs = Array.from(
    { length: threads },
    () =>
      new Promise<void>((resolve, reject) => {
        pbkdf2("password", "salt", 200_000, 32, "sha256", (err) => {
          markFirst();
          if (err) reject(err);
          else resolve();
        });
      }),
  );
  return { firstDone, allDone: Promise.all(jobs).then(() => undefined) };
}

describe("PartitionLog appends", () => {
  it("write without waiting for libuv's thread pool, and the bytes are in the file when the append resolves", async () => {
    const log = await PartitionLog.open({ dir: dir.path, config: testConfig({ segmentBytes: 1 << 20 }), clock: new FakeClock(), logger: silentLogger(), topic: "t", partition: 0 });
    opened.push(log);
    // The first append of an epoch also records it in the epoch checkpoint (a pool write).
    await log.appendAsLeader(buildBatch({ records: 2, valueBytes: 40, seed: 0 }), { leaderEpoch: 1 });

    const order: string[] = [];
    const pool = occupyThreadPool();
    void pool.firstDone.then(() => order.push("pool"));
    const batches = [1, 2, 3].map((seed) => buildBatch({ records: 3, valueBytes: 100, seed }));
    const appended = Promise.all(batches.map((b) => log.appendAsLeader(b, { leaderEpoch: 1 }))).then((infos) => {
      order.push("appends");
      return infos;
    });
    const [infos] = await Promise.all([appended, pool.allDone]);
    expect(infos.map((i) => i.baseOffset)).toEqual([2, 5, 8]);
    expect(order).toEqual(["appends", "pool"]);
    const file = await readFile(`${dir.path}/00000000000000000000.log`);
    expect(file.length).toBe(buildBatch({ records: 2, valueBytes: 40, seed: 0 }).length + batches.reduce((n, b) => n + b.length, 0));
  });
});

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { existsSync } from "node:fs";
import { readFile, readdir, truncate, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { FlotillaError, SeededRandom } from "@flotilla/common";
import { silentLogger } from "@flotilla/common/logger";
import { validateBatches } from "@flotilla/protocol";
import { CLEAN_SHUTDOWN_FILE, PartitionLog, segmentFileName, type LogConfig } from "./index.js";
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

const config: LogConfig = testConfig({ segmentBytes: 600, indexIntervalBytes: 100 });

async function openLog(path = dir.path, logConfig = config): Promise<PartitionLog> {
  const log = await PartitionLog.open({ dir: path, config: logConfig, clock, logger: silentLogger(), topic: "t", partition: 0 });
  opened.push(log);
  return log;
}

async function closeLog(log: PartitionLog): Promise<void> {
  await log.close();
  opened.splice(opened.indexOf(log), 1);
}

async function readAll(log: PartitionLog): Promise<Buffer> {
  const parts: Buffer[] = [];
  let offset = log.logStartOffset;
  for (let i = 0; i < 10_000 && offset < log.logEndOffset; i++) {
    const result = await log.read(offset, { maxBytes: 1000, minOneBatch: true });
    validateBatches(result.records); // whole, CRC-valid batches only
    parts.push(result.records);
    offset = result.nextOffset;
  }
  expect(offset).toBe(log.logEndOffset);
  return Buffer.concat(parts);
}

interface StoredBatch {
  file: string;
  position: number;
  bytes: Buffer;
  baseOffset: number;
  lastOffset: number;
}

/** Every batch on disk, in offset order, with the segment file and position holding it. */
async function batchesOnDisk(path: string): Promise<StoredBatch[]> {
  const logs = (await readdir(path)).filter((n) => n.endsWith(".log")).sort();
  const out: StoredBatch[] = [];
  for (const file of logs) {
    const buf = await readFile(join(path, file));
    for (const b of validateBatches(buf)) {
      out.push({ file, position: b.pos, bytes: buf.subarray(b.pos, b.pos + b.size), baseOffset: b.header.baseOffset, lastOffset: b.header.baseOffset + b.header.lastOffsetDelta });
    }
  }
  return out;
}

async function fillLog(log: PartitionLog, rng: SeededRandom, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const batch = buildBatch({ records: rng.int(1, 5), valueBytes: rng.int(5, 80), seed: rng.int(0, 1000), baseTimestamp: clock.now + i * 10 });
    await log.appendAsLeader(batch, { leaderEpoch: 1 });
  }
}

describe("recovery at open", () => {
  it("keeps everything after a clean close, without rescanning, and consumes the marker", async () => {
    const log = await openLog();
    await fillLog(log, new SeededRandom(1), 60);
    const bytes = await readAll(log);
    const infos = log.segmentInfos().map(({ baseOffset, nextOffset, sizeBytes, maxTimestamp }) => ({ baseOffset, nextOffset, sizeBytes, maxTimestamp }));
    expect(infos.length).toBeGreaterThan(3);
    await closeLog(log);
    expect(existsSync(join(dir.path, CLEAN_SHUTDOWN_FILE))).toBe(true);

    const reopened = await openLog();
    expect(existsSync(join(dir.path, CLEAN_SHUTDOWN_FILE))).toBe(false);
    expect(reopened.recovery).toMatchObject({ cleanShutdown: true, recoveredSegments: 0, truncatedBytes: 0, deletedSegments: 0 });
    expect(reopened.segmentInfos().map(({ baseOffset, nextOffset, sizeBytes, maxTimestamp }) => ({ baseOffset, nextOffset, sizeBytes, maxTimestamp }))).toEqual(infos);
    expect(await readAll(reopened)).toEqual(bytes);
  });

  it("rescans only the last segment after an unclean shutdown", async () => {
    const log = await openLog();
    await fillLog(log, new SeededRandom(2), 60);
    const bytes = await readAll(log);
    await closeLog(log);
    await unlink(join(dir.path, CLEAN_SHUTDOWN_FILE));
    const reopened = await openLog();
    expect(reopened.recovery).toMatchObject({ cleanShutdown: false, recoveredSegments: 1, truncatedBytes: 0 });
    expect(await readAll(reopened)).toEqual(bytes);
  });

  it("survives 50 cuts of segment files at random byte positions: whole batches before the cut stay byte for byte, nothing after it", async () => {
    const rng = new SeededRandom(20240611);
    // Larger segments than elsewhere: two to five per round keeps 50 rounds quick.
    const cutConfig = testConfig({ segmentBytes: 1200, indexIntervalBytes: 100 });
    const seen = { closedSegmentCut: 0, activeSegmentCut: 0, truncated: 0, segmentsDropped: 0, unclean: 0 };
    for (let round = 0; round < 50; round++) {
      const roundDir = join(dir.path, `round-${round}`);
      const log = await openLog(roundDir, cutConfig);
      await fillLog(log, rng, rng.int(8, 25));
      await closeLog(log);
      const clean = rng.bool();
      if (!clean) await unlink(join(roundDir, CLEAN_SHUTDOWN_FILE));

      const before = await batchesOnDisk(roundDir);
      const files = [...new Set(before.map((b) => b.file))];
      const file = rng.pick(files);
      const fileBytes = (await readFile(join(roundDir, file))).length;
      const cut = rng.int(0, fileBytes + 1);
      await truncate(join(roundDir, file), cut);

      const fileIndex = files.indexOf(file);
      const survivors =
        cut === fileBytes
          ? before
          : before.filter((b) => files.indexOf(b.file) < fileIndex || (b.file === file && b.position + b.bytes.length <= cut));
      const baseOfCutFile = Number(file.slice(0, 20));
      const expectedEnd = cut === fileBytes ? before.at(-1)!.lastOffset + 1 : survivors.length > 0 && survivors.at(-1)!.file === file ? survivors.at(-1)!.lastOffset + 1 : baseOfCutFile;
      const context = `round ${round}: cut ${file} (${fileIndex + 1} of ${files.length}) at ${cut} of ${fileBytes} bytes, ${clean ? "clean" : "unclean"} shutdown`;

      const reopened = await openLog(roundDir, cutConfig);
      if (fileIndex < files.length - 1) seen.closedSegmentCut++;
      else seen.activeSegmentCut++;
      if (reopened.recovery.truncatedBytes > 0) seen.truncated++;
      if (reopened.recovery.deletedSegments > 0) seen.segmentsDropped++;
      if (!clean) seen.unclean++;
      expect(reopened.logEndOffset, context).toBe(expectedEnd);
      expect(await readAll(reopened), context).toEqual(Buffer.concat(survivors.map((b) => b.bytes)));
      // Appends continue at the right offset, and survive another reopen.
      const info = await reopened.appendAsLeader(buildBatch({ records: 2, seed: round }), { leaderEpoch: 2 });
      expect(info.baseOffset, context).toBe(expectedEnd);
      const after = await readAll(reopened);
      await closeLog(reopened);
      if (round % 5 === 0) {
        // The repaired log is whole: a clean reopen needs no recovery.
        const third = await openLog(roundDir, cutConfig);
        expect(third.recovery.recoveredSegments, context).toBe(0);
        expect(await readAll(third), context).toEqual(after);
        await closeLog(third);
      }
    }
    // The seed must have exercised each kind of damage.
    for (const [kind, count] of Object.entries(seen)) expect(count, kind).toBeGreaterThan(3);
  });

  it("cuts a tail batch with a corrupted byte, after a clean or an unclean shutdown", async () => {
    for (const clean of [true, false]) {
      const path = join(dir.path, clean ? "clean" : "unclean");
      const log = await openLog(path);
      await fillLog(log, new SeededRandom(3), 30);
      await closeLog(log);
      if (!clean) await unlink(join(path, CLEAN_SHUTDOWN_FILE));
      const before = await batchesOnDisk(path);
      const last = before.at(-1)!;
      const logPath = join(path, last.file);
      const content = await readFile(logPath);
      content[last.position + 40]! ^= 0x5a; // inside the CRC'd range of the last batch
      await writeFile(logPath, content);

      const reopened = await openLog(path);
      expect(reopened.logEndOffset).toBe(last.baseOffset);
      expect(reopened.recovery.truncatedBytes).toBe(last.bytes.length);
      expect(await readAll(reopened)).toEqual(Buffer.concat(before.slice(0, -1).map((b) => b.bytes)));
      await closeLog(reopened);
    }
  });

  it("rebuilds missing or corrupt index files to the same bytes", async () => {
    const log = await openLog();
    await fillLog(log, new SeededRandom(4), 60);
    const bytes = await readAll(log);
    const someTime = log.segmentInfos()[2]!.maxTimestamp;
    const expectedAt = await log.offsetForTimestamp(someTime);
    await closeLog(log);
    const names = (await readdir(dir.path)).filter((n) => n.endsWith(".index") || n.endsWith(".timeindex")).sort();
    const original = new Map(await Promise.all(names.map(async (n) => [n, await readFile(join(dir.path, n))] as const)));
    expect(names.length).toBeGreaterThan(6);

    // Missing, ragged, pointing past the log, and pointing at the wrong batch.
    await unlink(join(dir.path, names[0]!));
    await writeFile(join(dir.path, names[1]!), Buffer.from([1, 2, 3]));
    const bogus = Buffer.alloc(8);
    bogus.writeInt32BE(1, 0);
    bogus.writeInt32BE(1_000_000, 4);
    const third = names.find((n, i) => i >= 2 && n.endsWith(".index") && original.get(n)!.length >= 16)!;
    await writeFile(join(dir.path, third), Buffer.concat([original.get(third)!, bogus]));
    const misdirected = Buffer.from(original.get(third)!);
    const timeOnly = names.find((n) => n.endsWith(".timeindex") && n !== names[0] && n !== names[1])!;
    await unlink(join(dir.path, timeOnly));

    const reopened = await openLog();
    expect(reopened.recovery.recoveredSegments).toBeGreaterThanOrEqual(3);
    expect(reopened.recovery.truncatedBytes).toBe(0);
    expect(await readAll(reopened)).toEqual(bytes);
    expect(await reopened.offsetForTimestamp(someTime)).toEqual(expectedAt);
    await closeLog(reopened);
    for (const n of names) expect(await readFile(join(dir.path, n)), n).toEqual(original.get(n));

    // An entry in the middle that names the wrong batch is caught when it is used: reads
    // walk from the start of the segment instead of trusting it.
    misdirected.writeInt32BE(misdirected.readInt32BE(0) + 1, 0);
    await writeFile(join(dir.path, third), misdirected);
    const again = await openLog();
    expect(await readAll(again)).toEqual(bytes);
  });

  it("removes orphan index files and leftovers of an interrupted full truncation", async () => {
    const log = await openLog();
    await fillLog(log, new SeededRandom(5), 10);
    const bytes = await readAll(log);
    await closeLog(log);
    const orphan = join(dir.path, segmentFileName(99_999, ".index"));
    const leftover = join(dir.path, segmentFileName(0, ".log") + ".deleted");
    await writeFile(orphan, Buffer.alloc(8));
    await writeFile(leftover, Buffer.alloc(100));
    await writeFile(join(dir.path, "leader-epoch-checkpoint"), "0\n1\n0 0\n");
    const reopened = await openLog();
    expect(existsSync(orphan)).toBe(false);
    expect(existsSync(leftover)).toBe(false);
    expect(existsSync(join(dir.path, "leader-epoch-checkpoint"))).toBe(true); // not ours: left alone
    expect(await readAll(reopened)).toEqual(bytes);
  });

  it("drops segments after a gap in offsets", async () => {
    const log = await openLog();
    await fillLog(log, new SeededRandom(6), 60);
    const infos = log.segmentInfos();
    await closeLog(log);
    expect(infos.length).toBeGreaterThan(4);
    const before = await batchesOnDisk(dir.path);
    await unlink(join(dir.path, segmentFileName(infos[2]!.baseOffset, ".log")));
    const reopened = await openLog();
    expect(reopened.recovery.deletedSegments).toBe(infos.length - 3);
    expect(reopened.logEndOffset).toBe(infos[1]!.nextOffset);
    expect(await readAll(reopened)).toEqual(Buffer.concat(before.filter((b) => b.baseOffset < infos[1]!.nextOffset).map((b) => b.bytes)));
  });

  it("fails with STORAGE_CORRUPT naming the file for a bad name, overlapping segments, or a batch under the wrong name", async () => {
    const expectCorrupt = async (path: string, fileName: string) => {
      const err = await PartitionLog.open({ dir: path, config, clock, logger: silentLogger(), topic: "t", partition: 0 }).then(
        (log) => {
          opened.push(log);
          return undefined;
        },
        (e: unknown) => e,
      );
      expect(FlotillaError.is(err, "STORAGE_CORRUPT"), String(err)).toBe(true);
      expect((err as Error).message).toContain(fileName);
    };

    const badName = join(dir.path, "bad-name");
    const log = await openLog(badName);
    await fillLog(log, new SeededRandom(7), 3);
    await closeLog(log);
    await writeFile(join(badName, "123.log"), Buffer.alloc(0));
    await expectCorrupt(badName, "123.log");

    const overlap = join(dir.path, "overlap");
    const log2 = await openLog(overlap);
    for (let i = 0; i < 3; i++) await log2.appendAsLeader(buildBatch({ records: 4 }), { leaderEpoch: 0 });
    await closeLog(log2);
    const inside = segmentFileName(5, ".log");
    await writeFile(join(overlap, inside), buildBatch({ baseOffset: 5 }));
    await expectCorrupt(overlap, inside);

    const misnamed = join(dir.path, "misnamed");
    const log3 = await openLog(misnamed);
    await closeLog(log3);
    await writeFile(join(misnamed, segmentFileName(0, ".log")), buildBatch({ baseOffset: 7 }));
    await unlink(join(misnamed, CLEAN_SHUTDOWN_FILE));
    await expectCorrupt(misnamed, segmentFileName(0, ".log"));
  });
});

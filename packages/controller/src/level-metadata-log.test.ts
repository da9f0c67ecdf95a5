import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FlotillaError } from "@flotilla/common";
import { silentLogger } from "@flotilla/common/logger";
import type { CommittedRecord, MetadataRecord } from "@flotilla/metadata";
import { Level } from "level";
import { LevelMetadataLog, decodeOffsetKey, encodeOffsetKey } from "./level-metadata-log.js";
import type { CommittedBatch } from "./metadata-log.js";

const logger = silentLogger();
let dir: string;
const open: LevelMetadataLog[] = [];

async function openLog(): Promise<LevelMetadataLog> {
  const log = await LevelMetadataLog.open(dir, { logger });
  open.push(log);
  return log;
}

async function readAll(log: LevelMetadataLog, from = 0): Promise<CommittedRecord[]> {
  const out: CommittedRecord[] = [];
  for await (const r of log.read(from)) out.push(r);
  return out;
}

const topic = (name: string): MetadataRecord => ({ type: "Topic", name, topicId: `id-${name}` });

/** Writes raw entries into the log's "records" sublevel, as a damaged disk might. */
async function writeRaw(entries: [Uint8Array, Uint8Array][]): Promise<void> {
  const db = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: "view", valueEncoding: "view" });
  await db.open();
  const records = db.sublevel<Uint8Array, Uint8Array>("records", { keyEncoding: "view", valueEncoding: "view" });
  await db.batch(entries.map(([key, value]) => ({ type: "put" as const, sublevel: records, key, value })));
  await db.close();
}

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "flotilla-mdlog-"));
});

afterEach(async () => {
  for (const log of open.splice(0)) await log.close();
  await rm(dir, { recursive: true, force: true });
});

describe("LevelMetadataLog", () => {
  it("offset keys are 8-byte big-endian so byte order is offset order", () => {
    expect(Buffer.from(encodeOffsetKey(258)).toString("hex")).toBe("0000000000000102");
    expect(decodeOffsetKey(encodeOffsetKey(2 ** 40 + 7))).toBe(2 ** 40 + 7);
    expect(Buffer.compare(Buffer.from(encodeOffsetKey(255)), Buffer.from(encodeOffsetKey(256)))).toBe(-1);
  });

  it("gives batches consecutive offsets, tells listeners, and reads from any offset", async () => {
    const log = await openLog();
    expect(log.committedOffset()).toBe(-1);
    const seen: CommittedBatch[] = [];
    log.onCommit((b) => seen.push(b));
    const [a, b] = await Promise.all([log.append([topic("a"), topic("b")]), log.append([topic("c")])]);
    expect(a).toEqual({ baseOffset: 0, lastOffset: 1 });
    expect(b).toEqual({ baseOffset: 2, lastOffset: 2 });
    expect(seen.map((s) => [s.baseOffset, s.lastOffset, s.records.length])).toEqual([[0, 1, 2], [2, 2, 1]]);
    expect((await readAll(log, 1)).map((r) => [r.offset, (r.record as { name: string }).name])).toEqual([[1, "b"], [2, "c"]]);
    expect(await readAll(log, 3)).toEqual([]);
  });

  it("keeps every committed record across a reopen", async () => {
    const log = await openLog();
    for (let i = 0; i < 5; i++) await log.append([topic(`t${i}`)]);
    await log.close();
    const again = await openLog();
    expect(again.committedOffset()).toBe(4);
    expect((await readAll(again)).map((r) => r.offset)).toEqual([0, 1, 2, 3, 4]);
    expect(await again.append([topic("t5")])).toEqual({ baseOffset: 5, lastOffset: 5 });
  });

  it("stops start-up on a record that does not decode, naming the offset", async () => {
    const log = await openLog();
    await log.append([topic("a"), topic("b")]);
    await log.close();
    open.length = 0;
    await writeRaw([[encodeOffsetKey(1), Buffer.from("{garbage")]]);
    const err = await LevelMetadataLog.open(dir, { logger }).catch((e: unknown) => e);
    expect(FlotillaError.is(err, "STORAGE_CORRUPT")).toBe(true);
    expect((err as Error).message).toMatch(/record at offset 1 is not valid JSON/);
    // The failed open released the directory: a later open sees the same error, not a lock.
    const again = await LevelMetadataLog.open(dir, { logger }).catch((e: unknown) => e);
    expect((again as Error).message).toMatch(/record at offset 1/);
  });

  it("stops start-up on a gap in the offsets", async () => {
    const log = await openLog();
    await log.append([topic("a")]);
    await log.close();
    open.length = 0;
    await writeRaw([[encodeOffsetKey(5), Buffer.from('{"v":1,"type":"RemoveTopic","topicId":"x"}')]]);
    await expect(LevelMetadataLog.open(dir, { logger })).rejects.toThrow(/jumps from offset 0 to 5/);
  });

  it("refuses appends after close", async () => {
    const log = await openLog();
    await log.close();
    await expect(log.append([topic("a")])).rejects.toThrow(/closed/);
  });

  it("refuses a second open of the same directory while the first holds it", async () => {
    await openLog();
    await expect(LevelMetadataLog.open(dir, { logger })).rejects.toThrow(/cannot open the metadata log/);
  });
});

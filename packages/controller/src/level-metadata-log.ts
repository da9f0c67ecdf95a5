/**
 * Single-node metadata log in LevelDB. A batch is committed when LevelDB has written
 * and fsynced it (`sync: true`), which is exactly the durability a one-voter quorum has.
 *
 * On-disk layout (one LevelDB directory, one sublevel per key space):
 *   "meta"     "format"                      -> UTF-8 "1" (this layout's version)
 *   "records"  8-byte big-endian offset      -> one metadata record (@flotilla/metadata codec)
 * Offsets start at 0 and have no gaps; big-endian keys make LevelDB's byte order the
 * offset order. Batch boundaries are not stored: a batch is one atomic LevelDB write,
 * and replay does not need them.
 *
 * Start-up reads every record once: a record that does not decode, a gap in the offsets
 * or an unknown format version stops the open with STORAGE_CORRUPT naming the directory
 * and the offset, because a controller that skipped a record would serve a wrong image.
 */
import { assert, FlotillaError } from "@flotilla/common";
import type { Logger } from "@flotilla/common/logger";
import { decodeRecord, encodeRecord, type CommittedRecord, type MetadataRecord } from "@flotilla/metadata";
import { Level } from "level";
import { METADATA_BATCH_RECORDS_MAX, type CommitListener, type MetadataLog } from "./metadata-log.js";

type Bytes = Uint8Array;
const ENCODINGS = { keyEncoding: "view", valueEncoding: "view" } as const;
const FORMAT_KEY = Buffer.from("format");
const FORMAT_VERSION = "1";

export function encodeOffsetKey(offset: number): Uint8Array {
  assert(Number.isSafeInteger(offset) && offset >= 0, `metadata offset ${offset} is not a non-negative integer`);
  const key = Buffer.alloc(8);
  key.writeBigUInt64BE(BigInt(offset));
  return key;
}

export function decodeOffsetKey(key: Uint8Array): number {
  assert(key.byteLength === 8, `metadata log key of ${key.byteLength} bytes, want 8`);
  return Number(Buffer.from(key.buffer, key.byteOffset, 8).readBigUInt64BE());
}

export class LevelMetadataLog implements MetadataLog {
  private readonly meta;
  private readonly records;
  private readonly listeners = new Set<CommitListener>();
  /** Next offset to hand out; offsets of appends in flight are below it. */
  private nextOffset: number;
  private committed: number;
  /** The append chain: each write starts after the previous one finished. */
  private tail: Promise<unknown> = Promise.resolve();
  private failure: FlotillaError | undefined;
  private closed = false;

  private constructor(
    private readonly db: Level<Bytes, Bytes>,
    private readonly dir: string,
    lastOffset: number,
    private readonly logger: Logger,
  ) {
    this.meta = db.sublevel<Bytes, Bytes>("meta", ENCODINGS);
    this.records = db.sublevel<Bytes, Bytes>("records", ENCODINGS);
    this.committed = lastOffset;
    this.nextOffset = lastOffset + 1;
  }

  /** Opens (creating if needed) the log in `dir` and checks every stored record. */
  static async open(dir: string, options: { logger: Logger }): Promise<LevelMetadataLog> {
    const db = new Level<Bytes, Bytes>(dir, ENCODINGS);
    try {
      await db.open({ createIfMissing: true });
    } catch (err) {
      const code = (err as { code?: string }).code;
      throw new FlotillaError("KAFKA_STORAGE_ERROR", `cannot open the metadata log at ${dir} (${code ?? "error"}): ${(err as Error).message}`, { cause: err });
    }
    try {
      const lastOffset = await LevelMetadataLog.check(db, dir);
      const log = new LevelMetadataLog(db, dir, lastOffset, options.logger);
      options.logger.info({ dir, lastOffset }, "metadata log opened");
      return log;
    } catch (err) {
      await db.close();
      throw err;
    }
  }

  /** Checks the format and every record; returns the last offset (-1 when empty). */
  private static async check(db: Level<Bytes, Bytes>, dir: string): Promise<number> {
    const meta = db.sublevel<Bytes, Bytes>("meta", ENCODINGS);
    const records = db.sublevel<Bytes, Bytes>("records", ENCODINGS);
    const format = await meta.get(FORMAT_KEY);
    let expected = 0;
    for await (const [key, value] of records.iterator()) {
      if (format === undefined) throw new FlotillaError("STORAGE_CORRUPT", `metadata log at ${dir} has records but no format marker`);
      if (key.byteLength !== 8) throw new FlotillaError("STORAGE_CORRUPT", `metadata log at ${dir} has a key of ${key.byteLength} bytes after offset ${expected - 1}`);
      const offset = decodeOffsetKey(key);
      if (offset !== expected) throw new FlotillaError("STORAGE_CORRUPT", `metadata log at ${dir} jumps from offset ${expected - 1} to ${offset}`);
      decodeRecord(value, `metadata log at ${dir}: record at offset ${offset}`);
      expected++;
    }
    if (format === undefined) {
      await db.batch([{ type: "put", sublevel: meta, key: FORMAT_KEY, value: Buffer.from(FORMAT_VERSION) }], { sync: true });
    } else if (Buffer.from(format).toString() !== FORMAT_VERSION) {
      throw new FlotillaError("STORAGE_CORRUPT", `metadata log at ${dir} has format ${Buffer.from(format).toString()}; this build reads format ${FORMAT_VERSION}`);
    }
    return expected - 1;
  }

  committedOffset(): number {
    return this.committed;
  }

  append(records: readonly MetadataRecord[]): Promise<{ baseOffset: number; lastOffset: number }> {
    assert(records.length > 0 && records.length <= METADATA_BATCH_RECORDS_MAX, `metadata batch of ${records.length} records (1..${METADATA_BATCH_RECORDS_MAX})`);
    if (this.closed) return Promise.reject(new FlotillaError("SHUTTING_DOWN", "the metadata log is closed"));
    if (this.failure) return Promise.reject(this.failure);
    const baseOffset = this.nextOffset;
    const lastOffset = baseOffset + records.length - 1;
    this.nextOffset = lastOffset + 1;
    // Encode now: a record that cannot be encoded is a bug in the caller, reported to it.
    const ops = records.map((record, i) => ({ type: "put" as const, sublevel: this.records, key: encodeOffsetKey(baseOffset + i), value: encodeRecord(record) }));
    const write = this.tail.then(async () => {
      if (this.failure) throw this.failure;
      try {
        await this.db.batch(ops, { sync: true });
      } catch (err) {
        this.failure = new FlotillaError("KAFKA_STORAGE_ERROR", `metadata log at ${this.dir}: write of offsets ${baseOffset}..${lastOffset} failed: ${(err as Error).message}`, { cause: err });
        this.logger.error({ err, dir: this.dir, baseOffset, lastOffset }, "metadata log write failed; refusing further appends");
        throw this.failure;
      }
      this.committed = lastOffset;
      const batch = Object.freeze({ baseOffset, lastOffset, records: Object.freeze([...records]) });
      for (const listener of [...this.listeners]) listener(batch);
      return { baseOffset, lastOffset };
    });
    this.tail = write.catch(() => undefined);
    return write;
  }

  async *read(fromOffset: number): AsyncIterable<CommittedRecord> {
    assert(Number.isSafeInteger(fromOffset) && fromOffset >= 0, `read from offset ${fromOffset}`);
    const upTo = this.committed;
    if (fromOffset > upTo) return;
    for await (const [key, value] of this.records.iterator({ gte: encodeOffsetKey(fromOffset), lte: encodeOffsetKey(upTo) })) {
      const offset = decodeOffsetKey(key);
      yield { offset, record: decodeRecord(value, `metadata log at ${this.dir}: record at offset ${offset}`) };
    }
  }

  onCommit(listener: CommitListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.tail;
    this.listeners.clear();
    await this.db.close();
  }
}

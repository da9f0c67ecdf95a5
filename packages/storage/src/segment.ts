import { open, readFile, stat, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { FlotillaError, Limits, assert } from "@flotilla/common";
import type { Logger } from "@flotilla/common/logger";
import {
  BATCH_HEADER_BYTES,
  OFF_BASE_OFFSET,
  OFF_LAST_OFFSET_DELTA,
  OFF_MAX_TIMESTAMP,
  batchSizeAt,
  validateBatchAt,
  type BatchHeader,
} from "@flotilla/protocol";
import { OffsetIndex, TimeIndex, OFFSET_INDEX_ENTRY_BYTES, TIME_INDEX_ENTRY_BYTES } from "./indexes.js";
import { ByteWindow, isNotFound, readExactly, storageError, syncFile, unlinkIfExists, writeFullySync, writeWholeFile } from "./io.js";

/**
 * One segment of a partition log: three files in the partition directory, all named by the
 * segment's base offset (the first offset it holds) zero-padded to 20 digits, e.g.
 *
 *     00000000000000368769.log        the batches
 *     00000000000000368769.index      sparse offset index (see indexes.ts)
 *     00000000000000368769.timeindex  sparse time index (see indexes.ts)
 *
 * `.log` holds Kafka RecordBatch v2 batches back to back with no framing of its own, exactly
 * the bytes a producer sent apart from the baseOffset and partitionLeaderEpoch the leader
 * wrote into each header (both outside the CRC). Offsets are contiguous: the first batch's
 * baseOffset is the segment's base offset, and each next batch starts one past the previous
 * batch's last offset (baseOffset + lastOffsetDelta), except in segments the log cleaner
 * rewrote, where whole batches may be missing between the first and the last (see
 * log-cleaner.ts). The segment's last offset + 1 is the next
 * segment's base offset.
 *
 * The indexes live in memory while a segment is resident; their files are rewritten whole
 * when the segment stops being the active one (roll), at clean shutdown and after a rebuild.
 * While a segment is active its index files on disk are stale; recovery after an unclean
 * shutdown rebuilds them from the .log (see PartitionLog).
 *
 * Readers never look at or past `sizeBytes`: it moves only after a write completed, so a
 * concurrent read sees whole batches only.
 */

export const LOG_SUFFIX = ".log";
export const INDEX_SUFFIX = ".index";
export const TIME_INDEX_SUFFIX = ".timeindex";
const BASE_OFFSET_DIGITS = 20;

/** Batches travel in gRPC messages, so none can be larger; a header claiming more is corrupt. */
export const BATCH_BYTES_MAX = Limits.grpcMessageBytesMax;
/** Read size when scanning a .log at recovery. */
const RECOVERY_WINDOW_BYTES = 1024 * 1024;
/** Read size when walking headers forward from an index entry. */
const WALK_WINDOW_BYTES = 64 * 1024;

export function segmentFileName(baseOffset: number, suffix: string): string {
  return String(baseOffset).padStart(BASE_OFFSET_DIGITS, "0") + suffix;
}

/** How a segment sizes and fills its indexes; fixed per segment except the interval. */
export interface IndexSettings {
  indexIntervalBytes: number;
  offsetIndexEntriesMax: number;
  timeIndexEntriesMax: number;
}

export function indexSettingsFor(config: { indexIntervalBytes: number; segmentIndexBytes: number }): IndexSettings {
  return {
    indexIntervalBytes: config.indexIntervalBytes,
    offsetIndexEntriesMax: Math.floor(config.segmentIndexBytes / OFFSET_INDEX_ENTRY_BYTES),
    timeIndexEntriesMax: Math.floor(config.segmentIndexBytes / TIME_INDEX_ENTRY_BYTES),
  };
}

/** What the append path knows of each batch of an append call. */
export interface AppendBatch {
  /** Byte position inside the appended buffer. */
  position: number;
  size: number;
  baseOffset: number;
  lastOffset: number;
  maxTimestamp: number;
}

export interface SegmentReadResult {
  records: Buffer;
  firstOffset: number;
  nextOffset: number;
}

/** Where a validating scan of a .log stopped early, and why. */
export interface ScanStop {
  kind: "torn" | "corrupt" | "offset";
  position: number;
  detail: string;
}

interface ScanOutcome {
  endPosition: number;
  nextOffset: number;
  maxTimestamp: number;
  firstMaxTimestamp: number;
  lastBatchBaseOffset: number;
  batches: number;
  stop?: ScanStop;
}

/** Outcome of opening a segment at start-up. */
export interface SegmentOpenResult {
  segment: LogSegment;
  /** True when the .log was scanned in full and the indexes rebuilt. */
  recovered: boolean;
  /** Bytes cut from the end of the .log (torn or corrupt tail). */
  truncatedBytes: number;
  /** Why the scan stopped early, when it did. */
  stop?: ScanStop;
  /** Why the cheap check failed and a full scan was done, when it was. */
  recoveryReason?: string;
}

function readBaseOffset(buf: Buffer, at: number): number {
  return Number(buf.readBigInt64BE(at + OFF_BASE_OFFSET));
}

export class LogSegment {
  readonly logPath: string;
  readonly indexPath: string;
  readonly timeIndexPath: string;

  /** Bytes of whole batches; readers stay below it. */
  sizeBytes = 0;
  /** One past the last offset held; the base offset while empty. */
  nextOffset: number;
  /** Largest batch maxTimestamp, -1 when no batch carries one. */
  maxTimestamp = -1;
  lastBatchBaseOffset = -1;
  /** Clock time the segment.ms roll is measured from (first append, or recovered first timestamp). */
  rollBaseMs: number;
  /** Clock time of the last append (file mtime after a restart): the retention time of a segment without timestamps. */
  lastModifiedMs: number;
  /** Readers holding this segment open; a segment is only evicted or deleted at zero. */
  refs = 0;
  /** Log bytes written since the last fsync. */
  unflushed = false;
  /** Whether the index files on disk hold what memory holds. */
  indexFilesCurrent = false;
  deleted = false;
  /** A write failed and the partial bytes could not be cut off: the .log no longer ends on a batch boundary. */
  writeFailed = false;

  private bytesSinceLastIndexEntry = 0;
  private offsetIndex: OffsetIndex | undefined;
  private timeIndex: TimeIndex | undefined;
  private handle: FileHandle | undefined;
  private loading: Promise<void> | undefined;

  private constructor(
    readonly dir: string,
    readonly baseOffset: number,
    public settings: IndexSettings,
    private readonly logger: Logger,
    nowMs: number,
  ) {
    this.logPath = join(dir, segmentFileName(baseOffset, LOG_SUFFIX));
    this.indexPath = join(dir, segmentFileName(baseOffset, INDEX_SUFFIX));
    this.timeIndexPath = join(dir, segmentFileName(baseOffset, TIME_INDEX_SUFFIX));
    this.nextOffset = baseOffset;
    this.rollBaseMs = nowMs;
    this.lastModifiedMs = nowMs;
  }

  /** Creates the .log of a new, empty segment; fails if one with this base offset exists. */
  static async create(options: { dir: string; baseOffset: number; settings: IndexSettings; logger: Logger; nowMs: number }): Promise<LogSegment> {
    const segment = new LogSegment(options.dir, options.baseOffset, options.settings, options.logger, options.nowMs);
    try {
      segment.handle = await open(segment.logPath, "wx+");
    } catch (err) {
      throw storageError("creating", segment.logPath, err);
    }
    segment.offsetIndex = new OffsetIndex(options.settings.offsetIndexEntriesMax);
    segment.timeIndex = new TimeIndex(options.settings.timeIndexEntriesMax);
    // Stale index files of the same name could survive a crash of an earlier deletion.
    await unlinkIfExists(segment.indexPath);
    await unlinkIfExists(segment.timeIndexPath);
    return segment;
  }

  /**
   * Opens an existing segment at start-up. `mode: "check"` trusts the files after cheap
   * checks (index files present and whole, the last index entry pointing at a batch header,
   * every batch after it valid and ending exactly at the end of the file); any failure falls
   * back to a full scan. `mode: "recover"` always scans the whole .log: every batch is
   * validated (size, magic, CRC32C, contiguous offsets), the file is cut at the first bad one
   * and both indexes are rebuilt. A first batch whose offset disagrees with the file name is
   * STORAGE_CORRUPT, as that is not something a crash produces.
   */
  static async open(options: {
    dir: string;
    baseOffset: number;
    settings: IndexSettings;
    logger: Logger;
    nowMs: number;
    mode: "check" | "recover";
    /** Load the indexes into memory (the active segment must be resident). */
    resident: boolean;
  }): Promise<SegmentOpenResult> {
    const segment = new LogSegment(options.dir, options.baseOffset, options.settings, options.logger, options.nowMs);
    let fileBytes: number;
    try {
      segment.handle = await open(segment.logPath, "r+");
      const info = await segment.handle.stat();
      fileBytes = info.size;
      segment.lastModifiedMs = info.mtimeMs;
    } catch (err) {
      await segment.handle?.close();
      throw storageError("opening", segment.logPath, err);
    }
    try {
      let recoveryReason: string | undefined = "recovery of every batch was requested";
      if (options.mode === "check") {
        recoveryReason = await segment.cheapCheck(fileBytes);
        if (recoveryReason === undefined) {
          segment.sizeBytes = fileBytes;
          if (options.resident) recoveryReason = await segment.loadIndexes();
        }
      }
      if (recoveryReason === undefined) {
        segment.indexFilesCurrent = true;
        await segment.recoverRollBase(options.nowMs);
        if (!options.resident) await segment.evict();
        return { segment, recovered: false, truncatedBytes: 0 };
      }
      const outcome = await segment.rebuild(fileBytes);
      await segment.recoverRollBase(options.nowMs);
      if (!options.resident) await segment.evict();
      return { segment, recovered: true, truncatedBytes: fileBytes - outcome.endPosition, stop: outcome.stop, recoveryReason };
    } catch (err) {
      await segment.handle?.close();
      segment.handle = undefined;
      throw err;
    }
  }

  get isEmpty(): boolean {
    return this.sizeBytes === 0;
  }

  get resident(): boolean {
    return this.handle !== undefined && this.offsetIndex !== undefined && this.timeIndex !== undefined;
  }

  /** Whether the indexes have room for the entries an append may add. */
  indexesFull(): boolean {
    assert(this.offsetIndex && this.timeIndex, "indexesFull on a segment that is not resident");
    return this.offsetIndex.isFull() || this.timeIndex.isFull();
  }

  /** Number of offset-index entries in memory (tests and diagnostics). */
  get offsetIndexEntries(): number {
    return this.offsetIndex?.entries ?? 0;
  }

  get timeIndexEntries(): number {
    return this.timeIndex?.entries ?? 0;
  }

  // ---------------------------------------------------------------------------------------
  // Residency: a closed segment's file handle and indexes are loaded on demand and dropped
  // when the log's bound on open segments is reached.

  async ensureResident(): Promise<void> {
    if (this.resident) return;
    assert(!this.deleted, () => `segment ${this.logPath} used after deletion`);
    this.loading ??= (async () => {
      try {
        if (this.handle === undefined) {
          try {
            this.handle = await open(this.logPath, "r+");
          } catch (err) {
            throw storageError("opening", this.logPath, err);
          }
        }
        const problem = await this.loadIndexes();
        if (problem !== undefined) {
          // Lookups stay correct without entries (they walk from byte 0), only slower.
          this.logger.warn({ file: this.indexPath, problem }, "index unusable; serving this segment without it until the next recovery");
          this.offsetIndex = new OffsetIndex(this.settings.offsetIndexEntriesMax);
          this.timeIndex = new TimeIndex(this.settings.timeIndexEntriesMax);
        }
      } finally {
        this.loading = undefined;
      }
    })();
    await this.loading;
  }

  /** Closes the file handle and drops the indexes. Only for closed segments nobody holds. */
  async evict(): Promise<void> {
    assert(this.refs === 0, () => `evicting ${this.logPath} while ${this.refs} readers hold it`);
    assert(this.indexFilesCurrent || this.deleted, () => `evicting ${this.logPath} before its index files were written`);
    const handle = this.handle;
    this.handle = undefined;
    this.offsetIndex = undefined;
    this.timeIndex = undefined;
    await handle?.close();
  }

  private async loadIndexes(): Promise<string | undefined> {
    let indexBytes: Buffer;
    let timeIndexBytes: Buffer;
    try {
      indexBytes = await readWholeFile(this.indexPath);
      timeIndexBytes = await readWholeFile(this.timeIndexPath);
    } catch (err) {
      if (isNotFound(err)) return `index file missing: ${String((err as Error).message)}`;
      throw err;
    }
    const offsetIndex = OffsetIndex.decode(indexBytes, this.settings.offsetIndexEntriesMax, this.sizeBytes);
    if (offsetIndex === undefined) return `${this.indexPath} is not a whole, increasing list of entries inside the log`;
    const relEnd = this.nextOffset - this.baseOffset;
    const timeIndex = TimeIndex.decode(timeIndexBytes, this.settings.timeIndexEntriesMax, relEnd);
    if (timeIndex === undefined) return `${this.timeIndexPath} is not a whole, increasing list of entries inside the log`;
    this.offsetIndex = offsetIndex;
    this.timeIndex = timeIndex;
    const last = offsetIndex.last();
    this.bytesSinceLastIndexEntry = this.sizeBytes - (last?.position ?? 0);
    return undefined;
  }

  // ---------------------------------------------------------------------------------------
  // Start-up checks and rebuild.

  /**
   * Cheap start-up check; returns why a full scan is needed, or undefined when the segment
   * can be trusted. Reads the last entry of each index and the batches after the last
   * offset-index entry only.
   */
  private async cheapCheck(fileBytes: number): Promise<string | undefined> {
    const handle = this.requireHandle();
    const lastOffsetEntry = await readLastEntry(this.indexPath, OFFSET_INDEX_ENTRY_BYTES);
    if (lastOffsetEntry === "missing") return `${this.indexPath} is missing`;
    if (lastOffsetEntry === "ragged") return `${this.indexPath} is not a whole number of entries`;
    const lastTimeEntry = await readLastEntry(this.timeIndexPath, TIME_INDEX_ENTRY_BYTES);
    if (lastTimeEntry === "missing") return `${this.timeIndexPath} is missing`;
    if (lastTimeEntry === "ragged") return `${this.timeIndexPath} is not a whole number of entries`;

    let from = 0;
    let expected = this.baseOffset;
    if (lastOffsetEntry !== undefined) {
      const rel = lastOffsetEntry.readInt32BE(0);
      const position = lastOffsetEntry.readInt32BE(4);
      if (rel <= 0 || position <= 0 || position >= fileBytes) return `${this.indexPath} ends with entry (${rel}, ${position}) outside the ${fileBytes}-byte log`;
      from = position;
      expected = this.baseOffset + rel;
    }
    const outcome = await scanBatches({ handle, path: this.logPath, from, end: fileBytes, expectedBaseOffset: expected, windowBytes: WALK_WINDOW_BYTES });
    if (outcome.stop !== undefined) return `batch check after the last index entry failed: ${outcome.stop.detail}`;
    if (fileBytes > 0 && outcome.batches === 0) return `no batch found after the last index entry`;
    this.nextOffset = outcome.nextOffset;
    this.lastBatchBaseOffset = outcome.lastBatchBaseOffset;
    let maxTimestamp = outcome.maxTimestamp;
    if (lastTimeEntry !== undefined) {
      const ts = Number(lastTimeEntry.readBigInt64BE(0));
      const rel = lastTimeEntry.readInt32BE(8);
      if (ts < 0 || rel < 0 || this.baseOffset + rel > this.lastBatchBaseOffset) {
        return `${this.timeIndexPath} ends with entry (${ts}, ${rel}) outside the log`;
      }
      maxTimestamp = Math.max(maxTimestamp, ts);
    }
    this.maxTimestamp = maxTimestamp;
    this.bytesSinceLastIndexEntry = fileBytes - from;
    return undefined;
  }

  /** Scans the whole .log, cuts it at the first bad batch, and rebuilds both indexes. */
  private async rebuild(fileBytes: number): Promise<ScanOutcome> {
    const handle = this.requireHandle();
    this.offsetIndex = new OffsetIndex(this.settings.offsetIndexEntriesMax);
    this.timeIndex = new TimeIndex(this.settings.timeIndexEntriesMax);
    this.bytesSinceLastIndexEntry = 0;
    this.maxTimestamp = -1;
    const outcome = await scanBatches({
      handle,
      path: this.logPath,
      from: 0,
      end: fileBytes,
      expectedBaseOffset: this.baseOffset,
      windowBytes: RECOVERY_WINDOW_BYTES,
      reuse: true,
      onBatch: (header, position, size) => this.indexBatch(header.baseOffset, header.maxTimestamp, position, size),
    });
    if (outcome.stop?.kind === "offset" && outcome.stop.position === 0) {
      throw new FlotillaError("STORAGE_CORRUPT", `${this.logPath}: ${outcome.stop.detail}; the file does not belong under this name`);
    }
    if (outcome.endPosition < fileBytes) {
      try {
        await handle.truncate(outcome.endPosition);
      } catch (err) {
        throw storageError("truncating", this.logPath, err);
      }
    }
    this.sizeBytes = outcome.endPosition;
    this.nextOffset = outcome.nextOffset;
    this.lastBatchBaseOffset = outcome.lastBatchBaseOffset;
    this.maxTimestamp = outcome.maxTimestamp;
    // The closing entry too, so the files match what a roll or clean close writes (and the
    // cheap check at the next open finds the largest timestamp). Appends after it are fine:
    // later entries only need larger timestamps.
    await this.seal({ sync: false });
    return outcome;
  }

  /** segment.ms counts from the first batch's timestamp when it is plausible, else from now. */
  private async recoverRollBase(nowMs: number): Promise<void> {
    this.rollBaseMs = nowMs;
    if (this.sizeBytes < BATCH_HEADER_BYTES) return;
    const header = await readExactly(this.requireHandle(), this.logPath, 0, BATCH_HEADER_BYTES);
    const firstMaxTimestamp = Number(header.readBigInt64BE(OFF_MAX_TIMESTAMP));
    if (firstMaxTimestamp >= 0 && firstMaxTimestamp <= nowMs) this.rollBaseMs = firstMaxTimestamp;
  }

  // ---------------------------------------------------------------------------------------
  // Append.

  /** The index policy, shared by appends and rebuilds so both produce the same entries. */
  private indexBatch(baseOffset: number, maxTimestamp: number, position: number, size: number): void {
    const offsetIndex = this.offsetIndex!;
    const timeIndex = this.timeIndex!;
    if (maxTimestamp > this.maxTimestamp) this.maxTimestamp = maxTimestamp;
    const rel = baseOffset - this.baseOffset;
    if (position > 0 && this.bytesSinceLastIndexEntry >= this.settings.indexIntervalBytes) {
      if (offsetIndex.append(rel, position)) timeIndex.maybeAppend(this.maxTimestamp, rel);
      this.bytesSinceLastIndexEntry = 0;
    }
    this.bytesSinceLastIndexEntry += size;
  }

  /**
   * Writes `buf` (whole, validated batches with offsets already assigned) at the end of the
   * .log with one write, then publishes it: indexes, offsets and `sizeBytes` move together,
   * after the write, in one synchronous step. The write itself is synchronous (to the page
   * cache; see writeFullySync for why and what it costs).
   */
  async append(buf: Buffer, batches: readonly AppendBatch[], nowMs: number): Promise<void> {
    assert(this.resident, () => `append to ${this.logPath}, which is not resident`);
    assert(batches.length > 0 && batches[0]!.baseOffset === this.nextOffset, () => `append to ${this.logPath} at offset ${batches[0]?.baseOffset}, expected ${this.nextOffset}`);
    const position = this.sizeBytes;
    const handle = this.requireHandle();
    try {
      writeFullySync(handle, this.logPath, buf, position);
    } catch (err) {
      // Cut any partial write so the file ends on a batch boundary again; if even that fails
      // the caller takes the log offline.
      try {
        await handle.truncate(position);
      } catch {
        this.writeFailed = true;
      }
      throw err;
    }
    if (position === 0) this.rollBaseMs = nowMs;
    for (const batch of batches) {
      this.indexBatch(batch.baseOffset, batch.maxTimestamp, position + batch.position, batch.size);
      this.lastBatchBaseOffset = batch.baseOffset;
    }
    this.nextOffset = batches[batches.length - 1]!.lastOffset + 1;
    this.sizeBytes = position + buf.length;
    this.lastModifiedMs = nowMs;
    this.unflushed = true;
    this.indexFilesCurrent = false;
  }

  /**
   * Seals the segment when it stops being the active one (roll, shutdown): adds the closing
   * time-index entry (the segment's largest timestamp) and writes both index files.
   */
  async seal(options: { sync: boolean }): Promise<void> {
    assert(this.timeIndex, () => `sealing ${this.logPath}, which is not resident`);
    if (this.maxTimestamp >= 0 && this.lastBatchBaseOffset >= 0) {
      this.timeIndex.maybeAppend(this.maxTimestamp, this.lastBatchBaseOffset - this.baseOffset, true);
    }
    await this.writeIndexFiles(options);
  }

  async writeIndexFiles(options: { sync: boolean }): Promise<void> {
    assert(this.offsetIndex && this.timeIndex, () => `writing indexes of ${this.logPath}, which is not resident`);
    await writeWholeFile(this.indexPath, this.offsetIndex.encode(), options);
    await writeWholeFile(this.timeIndexPath, this.timeIndex.encode(), options);
    this.indexFilesCurrent = true;
  }

  /** fsync of the .log (and of the index files when they are current). */
  async flush(): Promise<void> {
    if (this.deleted) return;
    const wasUnflushed = this.unflushed;
    this.unflushed = false;
    try {
      if (this.handle !== undefined) await this.handle.sync();
      else if (wasUnflushed) await syncFile(this.logPath);
      if (this.indexFilesCurrent) {
        await syncFile(this.indexPath);
        await syncFile(this.timeIndexPath);
      }
    } catch (err) {
      this.unflushed = wasUnflushed;
      throw FlotillaError.is(err) ? err : storageError("fsync of", this.logPath, err);
    }
  }

  // ---------------------------------------------------------------------------------------
  // Reads. Callers hold a reference (refs) and the log's shared lock, and pass `end`, the
  // `sizeBytes` they observed: nothing at or past it is looked at.

  /** Where to start walking for `offset`: an index entry at or before it, or byte 0. */
  private walkStart(offset: number): { position: number; baseOffset: number } {
    const entry = this.offsetIndex!.floor(offset - this.baseOffset);
    return entry === undefined ? { position: 0, baseOffset: this.baseOffset } : { position: entry.position, baseOffset: this.baseOffset + entry.relativeOffset };
  }

  /**
   * Walks batch headers from the index entry at or before `target` until `found(header)`;
   * returns the position and header fields of that batch, or undefined when `end` is reached.
   * The header an index entry points at must carry the entry's offset; if not, the entry is
   * stale, and the walk starts over from byte 0 rather than trust it.
   */
  private async walk(
    window: ByteWindow,
    end: number,
    start: { position: number; baseOffset: number },
    found: (baseOffset: number, lastOffset: number, maxTimestamp: number) => boolean,
  ): Promise<{ position: number; size: number; baseOffset: number; lastOffset: number; maxTimestamp: number; at: number } | undefined> {
    let position = start.position;
    let checkAgainst: number | undefined = start.position === 0 ? undefined : start.baseOffset;
    for (let steps = 0; position < end; steps++) {
      assert(steps <= (2 * end) / BATCH_HEADER_BYTES + 2, () => `header walk in ${this.logPath} does not advance`);
      const at = await window.at(position, BATCH_HEADER_BYTES, steps === 0 ? undefined : WALK_WINDOW_BYTES);
      const baseOffset = readBaseOffset(window.buf, at);
      if (checkAgainst !== undefined) {
        if (baseOffset !== checkAgainst) {
          this.logger.warn({ file: this.indexPath, position, expected: checkAgainst, found: baseOffset }, "offset index entry does not point at its batch; walking from the start of the segment");
          position = 0;
          checkAgainst = undefined;
          continue;
        }
        checkAgainst = undefined;
      }
      const size = batchSizeAt(window.buf, at);
      if (size < BATCH_HEADER_BYTES || position + size > end) {
        throw new FlotillaError("STORAGE_CORRUPT", `${this.logPath}: batch at byte ${position} declares ${size} bytes, past the end of the data at ${end}`);
      }
      const lastOffset = baseOffset + window.buf.readInt32BE(at + OFF_LAST_OFFSET_DELTA);
      const maxTimestamp = Number(window.buf.readBigInt64BE(at + OFF_MAX_TIMESTAMP));
      if (found(baseOffset, lastOffset, maxTimestamp)) return { position, size, baseOffset, lastOffset, maxTimestamp, at };
      position += size;
    }
    return undefined;
  }

  /**
   * Whole batches from the one holding `offset`, at most `maxBytes` of them (or the first
   * one alone when `minOneBatch` and it is larger), none with a base offset at or past
   * `maxOffsetExclusive`. Usually one positional read: the bytes from the index entry on,
   * sized to cover the walk and the answer; the records returned are a slice of it.
   * Returns undefined when `offset` is not below `end`'s last offset.
   */
  async read(offset: number, options: { maxBytes: number; maxOffsetExclusive: number; minOneBatch: boolean; end: number }): Promise<SegmentReadResult | undefined> {
    const { maxBytes, maxOffsetExclusive, minOneBatch, end } = options;
    const handle = this.requireHandle();
    const start = this.walkStart(offset);
    const window = new ByteWindow(handle, this.logPath, end, this.settings.indexIntervalBytes + maxBytes + BATCH_HEADER_BYTES);
    const first = await this.walk(window, end, start, (_base, last) => last >= offset);
    if (first === undefined) return undefined;
    const empty = { records: Buffer.alloc(0), firstOffset: offset, nextOffset: offset };
    if (first.baseOffset >= maxOffsetExclusive) return empty;

    let total = 0;
    let nextOffset = offset;
    let at = first.at;
    const available = Math.min(end - first.position, maxBytes);
    if (available >= first.size) {
      at = await window.at(first.position, available);
      const buf = window.buf;
      while (total + BATCH_HEADER_BYTES <= available) {
        const size = batchSizeAt(buf, at + total);
        if (size < BATCH_HEADER_BYTES || total + size > available) break;
        const baseOffset = readBaseOffset(buf, at + total);
        if (baseOffset >= maxOffsetExclusive) break;
        nextOffset = baseOffset + buf.readInt32BE(at + total + OFF_LAST_OFFSET_DELTA) + 1;
        total += size;
      }
    }
    if (total === 0) {
      if (!minOneBatch) return empty;
      at = await window.at(first.position, first.size);
      total = first.size;
      nextOffset = first.lastOffset + 1;
    }
    return { records: window.buf.subarray(at, at + total), firstOffset: first.baseOffset, nextOffset };
  }

  /** The first batch whose maxTimestamp >= `timestampMs`, via the time index; undefined if none below `end`. */
  async findByTimestamp(timestampMs: number, end: number): Promise<{ offset: number; timestamp: number } | undefined> {
    const handle = this.requireHandle();
    const rel = this.timeIndex!.lastBefore(timestampMs);
    const start = this.walkStart(rel === undefined ? this.baseOffset : this.baseOffset + rel);
    const window = new ByteWindow(handle, this.logPath, end, WALK_WINDOW_BYTES);
    const batch = await this.walk(window, end, start, (_base, _last, maxTimestamp) => maxTimestamp >= timestampMs);
    return batch === undefined ? undefined : { offset: batch.baseOffset, timestamp: batch.maxTimestamp };
  }

  // ---------------------------------------------------------------------------------------
  // Truncation and deletion. Callers hold the log's exclusive lock.

  /**
   * Drops the batch holding `offset` and everything after it; returns the new next offset
   * (the dropped batch's base offset, which is below `offset` when it falls mid-batch).
   */
  async truncateTo(offset: number): Promise<number> {
    assert(this.resident, () => `truncating ${this.logPath}, which is not resident`);
    assert(offset >= this.baseOffset && offset < this.nextOffset, () => `truncate ${this.logPath} to ${offset}, outside [${this.baseOffset}, ${this.nextOffset})`);
    const handle = this.requireHandle();
    const end = this.sizeBytes;
    const window = new ByteWindow(handle, this.logPath, end, WALK_WINDOW_BYTES);
    const cut = await this.walk(window, end, this.walkStart(offset), (_base, last) => last >= offset);
    assert(cut !== undefined, () => `offset ${offset} not found in ${this.logPath}`);
    try {
      await handle.truncate(cut.position);
    } catch (err) {
      throw storageError("truncating", this.logPath, err);
    }
    this.sizeBytes = cut.position;
    this.nextOffset = cut.baseOffset;
    this.offsetIndex!.truncateToPosition(cut.position);
    this.timeIndex!.truncateToOffset(cut.baseOffset - this.baseOffset);
    this.indexFilesCurrent = false;
    this.unflushed = true;
    // The largest timestamp and last batch now come from the kept entries plus the batches
    // after the last kept offset-index entry.
    const from = this.offsetIndex!.last();
    const tail = await scanBatches({
      handle,
      path: this.logPath,
      from: from?.position ?? 0,
      end: cut.position,
      expectedBaseOffset: from === undefined ? this.baseOffset : this.baseOffset + from.relativeOffset,
      windowBytes: WALK_WINDOW_BYTES,
    });
    assert(tail.stop === undefined, () => `${this.logPath} no longer scans cleanly after truncation: ${tail.stop?.detail}`);
    this.maxTimestamp = Math.max(this.timeIndex!.last()?.timestamp ?? -1, tail.maxTimestamp);
    this.lastBatchBaseOffset = tail.lastBatchBaseOffset;
    this.bytesSinceLastIndexEntry = cut.position - (from?.position ?? 0);
    return this.nextOffset;
  }

  /** Closes the handle and removes the three files, .log first: an index left alone by a crash is removed at start-up. */
  async deleteFiles(): Promise<void> {
    assert(this.refs === 0, () => `deleting ${this.logPath} while ${this.refs} readers hold it`);
    this.deleted = true;
    const handle = this.handle;
    this.handle = undefined;
    this.offsetIndex = undefined;
    this.timeIndex = undefined;
    await handle?.close();
    await unlinkIfExists(this.logPath);
    await unlinkIfExists(this.indexPath);
    await unlinkIfExists(this.timeIndexPath);
  }

  async close(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    await handle?.close();
  }

  private requireHandle(): FileHandle {
    assert(this.handle !== undefined, () => `${this.logPath} has no open file handle`);
    return this.handle;
  }
}

async function readWholeFile(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    if (isNotFound(err)) throw err;
    throw storageError("reading", path, err);
  }
}

/** The last `entryBytes` of an index file; undefined when empty. */
async function readLastEntry(path: string, entryBytes: number): Promise<Buffer | undefined | "missing" | "ragged"> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(path, "r");
    const { size } = await handle.stat();
    if (size % entryBytes !== 0) return "ragged";
    if (size === 0) return undefined;
    return await readExactly(handle, path, size - entryBytes, entryBytes);
  } catch (err) {
    if (isNotFound(err)) return "missing";
    throw FlotillaError.is(err) ? err : storageError("reading", path, err);
  } finally {
    await handle?.close();
  }
}

/**
 * Validates the batches of a .log in [from, end): size, magic, CRC32C and contiguous
 * offsets starting at `expectedBaseOffset`. Stops at the first bad batch and says why.
 */
export async function scanBatches(options: {
  handle: FileHandle;
  path: string;
  from: number;
  end: number;
  expectedBaseOffset: number;
  windowBytes: number;
  reuse?: boolean;
  onBatch?: (header: BatchHeader, position: number, size: number) => void;
}): Promise<ScanOutcome> {
  const { handle, path, end, onBatch } = options;
  const window = new ByteWindow(handle, path, end, options.windowBytes, { reuse: options.reuse ?? false });
  const outcome: ScanOutcome = {
    endPosition: options.from,
    nextOffset: options.expectedBaseOffset,
    maxTimestamp: -1,
    firstMaxTimestamp: -1,
    lastBatchBaseOffset: -1,
    batches: 0,
  };
  let position = options.from;
  while (position < end) {
    const remaining = end - position;
    if (remaining < BATCH_HEADER_BYTES) {
      outcome.stop = { kind: "torn", position, detail: `${path}: ${remaining} bytes at byte ${position}, fewer than a batch header` };
      break;
    }
    let at = await window.at(position, BATCH_HEADER_BYTES);
    const size = batchSizeAt(window.buf, at);
    if (size < BATCH_HEADER_BYTES || size > BATCH_BYTES_MAX) {
      outcome.stop = { kind: "corrupt", position, detail: `${path}: batch at byte ${position} declares an impossible size of ${size} bytes` };
      break;
    }
    if (size > remaining) {
      outcome.stop = { kind: "torn", position, detail: `${path}: batch at byte ${position} declares ${size} bytes but the file has ${remaining} left` };
      break;
    }
    at = await window.at(position, size);
    let header: BatchHeader;
    try {
      header = validateBatchAt(window.buf.subarray(at, at + size), 0).header;
    } catch (err) {
      if (!FlotillaError.is(err)) throw err;
      outcome.stop = { kind: "corrupt", position, detail: `${path}: batch at byte ${position} is invalid (${err.message})` };
      break;
    }
    // The first batch scanned must start exactly where expected (the file name or an index
    // entry says so); later ones may start past the previous batch's end, because the log
    // cleaner drops whole batches from compacted segments (it keeps each segment's first and
    // last batch, so segments still meet exactly). Overlap is never allowed.
    if (outcome.batches === 0 ? header.baseOffset !== outcome.nextOffset : header.baseOffset < outcome.nextOffset) {
      outcome.stop = { kind: "offset", position, detail: `batch at byte ${position} has base offset ${header.baseOffset}, expected ${outcome.batches === 0 ? "" : "at least "}${outcome.nextOffset}` };
      break;
    }
    onBatch?.(header, position, size);
    if (outcome.batches === 0) outcome.firstMaxTimestamp = header.maxTimestamp;
    outcome.batches++;
    if (header.maxTimestamp > outcome.maxTimestamp) outcome.maxTimestamp = header.maxTimestamp;
    outcome.lastBatchBaseOffset = header.baseOffset;
    outcome.nextOffset = header.baseOffset + header.lastOffsetDelta + 1;
    position += size;
    outcome.endPosition = position;
  }
  return outcome;
}

/** Size of a file, or undefined when it does not exist. */
export async function fileBytesOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw storageError("stat of", path, err);
  }
}

import { mkdir, readdir, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { randomUUID } from "node:crypto";
import { FlotillaError, assert, type Clock } from "@flotilla/common";
import type { Logger } from "@flotilla/common/logger";
import { setBaseOffset, setPartitionLeaderEpoch, validateBatchAt } from "@flotilla/protocol";
import { SEGMENT_BYTES_MAX, appliesRetention, isCompacted, validateLogConfig, type LogConfig } from "./config.js";
import { gapFillerBatch, recoverCleanerFiles, type CleanableSegment, type CleanedSegment } from "./log-cleaner.js";
import { Mutex, ReadWriteLock } from "./lock.js";
import { storageError, syncDir, unlinkIfExists, writeWholeFile } from "./io.js";
import { LeaderEpochCache } from "./leader-epoch-cache.js";
import {
  INDEX_SUFFIX,
  LOG_SUFFIX,
  LogSegment,
  TIME_INDEX_SUFFIX,
  indexSettingsFor,
  segmentFileName,
  type AppendBatch,
} from "./segment.js";

export { DEFAULT_LOG_CONFIG, type LogConfig } from "./config.js";

/**
 * Written into the partition directory by a clean close, removed (durably) at open. Without
 * it, the last segment is rescanned batch by batch at open.
 */
export const CLEAN_SHUTDOWN_FILE = ".clean-shutdown";
/** Suffix of segment files being removed by truncateFullyAndStartAt; removed at open. */
const DELETED_SUFFIX = ".deleted";
/** Closed segments kept open (file handle and indexes in memory) at once, unless told otherwise. */
export const OPEN_SEGMENTS_MAX_DEFAULT = 4;
/** Relative offsets in the indexes are int32. */
const RELATIVE_OFFSET_MAX = 0x7fffffff;
/** How often a long recovery logs its progress. */
const RECOVERY_PROGRESS_INTERVAL_MS = 5000;

const SEGMENT_FILE_RE = /^(\d{20})\.(log|index|timeindex)$/;
const SEGMENT_LIKE_RE = /\.(log|index|timeindex)$/;

export interface PartitionLogOptions {
  dir: string;
  config: LogConfig;
  clock: Clock;
  logger: Logger;
  topic: string;
  partition: number;
  /** Bound on closed segments with an open file handle and in-memory indexes; the active one is always open. Default 4. */
  openSegmentsMax?: number;
}

export interface AppendInfo {
  /** Offset of the first record appended. */
  baseOffset: number;
  /** Offset of the last record appended (baseOffset - 1 when nothing was appended). */
  lastOffset: number;
  /** Largest batch maxTimestamp appended, -1 when none carried one. */
  maxTimestamp: number;
  batchCount: number;
  recordCount: number;
}

export interface ReadOptions {
  /** Upper bound on the bytes returned (except the one batch minOneBatch allows). */
  maxBytes: number;
  /** Batches whose base offset is at or past this are left out: the high watermark for consumers. */
  maxOffsetExclusive?: number;
  /** Return the first batch whole even when it is larger than maxBytes. Default false. */
  minOneBatch?: boolean;
}

export interface ReadResult {
  /** Whole batches, bytes as stored. */
  records: Buffer;
  /** Base offset of the first batch returned (at or below the offset asked for); the asked offset when empty. */
  firstOffset: number;
  /** Offset to fetch next: one past the last offset returned; the asked offset when empty. */
  nextOffset: number;
}

/** What open() found and did; also logged. */
export interface RecoveryInfo {
  cleanShutdown: boolean;
  segments: number;
  /** Segments whose .log was scanned in full and indexes rebuilt. */
  recoveredSegments: number;
  /** Bytes cut from torn or corrupt segment tails. */
  truncatedBytes: number;
  /** Segments removed because they followed a cut or a gap in offsets. */
  deletedSegments: number;
  durationMs: number;
}

export interface SegmentInfo {
  baseOffset: number;
  nextOffset: number;
  sizeBytes: number;
  maxTimestamp: number;
  /** File handle open and indexes in memory. */
  open: boolean;
  /** Entries in memory; 0 while the segment is not open. */
  offsetIndexEntries: number;
  timeIndexEntries: number;
}

interface PlannedBatch extends AppendBatch {
  lastOffsetDelta: number;
  recordCount: number;
  partitionLeaderEpoch: number;
}

type LogState = "open" | "closed" | "deleted" | "failed";

/**
 * The log of one partition replica: an ordered list of segments (see LogSegment for the file
 * layout) of which the last is the active one appends go to.
 *
 * Concurrency. Appends, rolls, truncations, retention, flush and close run one at a time
 * (`appendLock`). Reads run concurrently with appends: an append publishes its bytes only
 * after its write completed, and a read looks only below the sizes it observed when it
 * started, so it sees whole batches only. Operations that shrink or remove files
 * (truncation, retention deletes, close) also take the exclusive side of `rw`, whose shared
 * side every read holds, so no read is ever served from a file being cut or removed.
 *
 * Durability. Nothing is fsynced per append unless flush.messages / flush.ms say so (Kafka's
 * default: durability comes from replication). A segment is fsynced, in the background,
 * when it is rolled, and everything is fsynced at close.
 *
 * Recovery at open. Every segment but the last gets a cheap check (index files whole, the last
 * index entry pointing at its batch, every batch after it valid up to the exact end of the
 * file) and is rescanned only if that fails. The last segment is rescanned in full (size,
 * magic, CRC32C and offsets of every batch) unless the `.clean-shutdown` marker is present.
 * Only the last segment needs that: a process crash loses nothing the kernel has, and closed
 * segments were fsynced at roll. A rescanned segment is cut at its first bad batch and its
 * indexes rebuilt; if that cut a segment short, or the next segment does not start where a
 * segment ends, every later segment is removed (offsets must be contiguous). Offsets that
 * overlap between segments, a segment file with a malformed name, or a first batch whose
 * offset disagrees with its file name are STORAGE_CORRUPT naming the file.
 */
export class PartitionLog {
  readonly dir: string;
  readonly topic: string;
  readonly partition: number;
  readonly recovery: RecoveryInfo;
  /**
   * Epoch -> first offset, kept in step with the log: a leader append in a new epoch and a
   * follower append of a batch with a newer partitionLeaderEpoch add an entry; truncation,
   * full truncation and retention trim it (see LeaderEpochCache for the file).
   */
  readonly leaderEpochCache: LeaderEpochCache;

  private config: LogConfig;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly openSegmentsMax: number;
  /** Replaced, never mutated, so a read keeps a consistent list across its awaits. */
  private segments: readonly LogSegment[];
  /** Closed segments that are open, least recently used first. */
  private openClosedSegments: LogSegment[] = [];
  private readonly appendLock = new Mutex();
  private readonly rw = new ReadWriteLock();
  private state: LogState = "open";
  private failure: unknown;
  private unflushedRecords = 0;
  private lastFlushMs: number;
  private readonly backgroundFlushes = new Set<Promise<void>>();
  private readonly backgroundFlushLock = new Mutex();
  /** Lowest offset truncated to since the cleaner last asked: its checkpoint must not pass it. */
  private truncationMark: number | undefined;

  private constructor(options: PartitionLogOptions, segments: LogSegment[], recovery: RecoveryInfo, leaderEpochCache: LeaderEpochCache) {
    this.dir = options.dir;
    this.leaderEpochCache = leaderEpochCache;
    this.topic = options.topic;
    this.partition = options.partition;
    this.config = options.config;
    this.clock = options.clock;
    this.logger = options.logger;
    this.openSegmentsMax = options.openSegmentsMax ?? OPEN_SEGMENTS_MAX_DEFAULT;
    this.segments = segments;
    this.recovery = recovery;
    this.lastFlushMs = options.clock.nowMs();
  }

  /** Opens (creating if needed) the log in `dir`, recovering it as the class comment describes. */
  static async open(options: PartitionLogOptions): Promise<PartitionLog> {
    validateLogConfig(options.config);
    assert(options.openSegmentsMax === undefined || options.openSegmentsMax >= 0, "openSegmentsMax must be >= 0");
    const logger = options.logger.child({ topic: options.topic, partition: options.partition });
    const startedMs = options.clock.monotonicMs();
    const { dir, clock } = options;
    const settings = indexSettingsFor(options.config);
    try {
      await mkdir(dir, { recursive: true });
    } catch (err) {
      throw storageError("creating directory", dir, err);
    }
    // A cleaner swap a crash interrupted is finished or rolled back first (see log-cleaner.ts).
    const names = await recoverCleanerFiles(dir, await listDir(dir), logger);
    const cleanShutdown = names.includes(CLEAN_SHUTDOWN_FILE);

    const logBases = new Set<number>();
    const indexFiles: { base: number; name: string }[] = [];
    for (const name of names) {
      if (name.endsWith(DELETED_SUFFIX)) {
        await unlinkIfExists(join(dir, name));
        continue;
      }
      if (!SEGMENT_LIKE_RE.test(name)) continue; // files of others (e.g. a leader-epoch checkpoint) are left alone
      const match = SEGMENT_FILE_RE.exec(name);
      const base = match ? Number(match[1]) : NaN;
      if (!match || !Number.isSafeInteger(base)) {
        throw new FlotillaError("STORAGE_CORRUPT", `${join(dir, name)} is not a segment file name: expected a base offset of 20 digits, e.g. ${segmentFileName(0, LOG_SUFFIX)}`);
      }
      if (match[2] === "log") logBases.add(base);
      else indexFiles.push({ base, name });
    }
    for (const { base, name } of indexFiles) {
      if (!logBases.has(base)) {
        logger.warn({ file: join(dir, name) }, "removing an index file that has no .log");
        await unlinkIfExists(join(dir, name));
      }
    }
    if (cleanShutdown) {
      // Removed before anything else, so a crash from here on is seen as one at the next open.
      await unlinkIfExists(join(dir, CLEAN_SHUTDOWN_FILE));
      await syncDir(dir);
    }

    const bases = [...logBases].sort((a, b) => a - b);
    const segments: LogSegment[] = [];
    const recovery: RecoveryInfo = { cleanShutdown, segments: 0, recoveredSegments: 0, truncatedBytes: 0, deletedSegments: 0, durationMs: 0 };
    try {
      if (bases.length === 0) {
        segments.push(await LogSegment.create({ dir, baseOffset: 0, settings, logger, nowMs: clock.nowMs() }));
        await syncDir(dir);
      }
      let lastProgressMs = startedMs;
      for (let i = 0; i < bases.length; i++) {
        const base = bases[i]!;
        const previous = segments[segments.length - 1];
        if (previous !== undefined && base !== previous.nextOffset) {
          if (base < previous.nextOffset) {
            throw new FlotillaError("STORAGE_CORRUPT", `${join(dir, segmentFileName(base, LOG_SUFFIX))} starts at offset ${base}, inside ${previous.logPath}, which ends at ${previous.nextOffset - 1}`);
          }
          recovery.deletedSegments += await removeSegmentFiles(dir, bases.slice(i), logger, `offsets ${previous.nextOffset}..${base - 1} are missing after ${previous.logPath}`);
          break;
        }
        const isLast = i === bases.length - 1;
        const opened = await LogSegment.open({
          dir,
          baseOffset: base,
          settings,
          logger,
          nowMs: clock.nowMs(),
          mode: isLast && !cleanShutdown ? "recover" : "check",
          resident: isLast,
        });
        segments.push(opened.segment);
        if (opened.recovered) {
          recovery.recoveredSegments++;
          recovery.truncatedBytes += opened.truncatedBytes;
          const fields = { file: opened.segment.logPath, reason: opened.recoveryReason, truncatedBytes: opened.truncatedBytes, stoppedAt: opened.stop?.detail };
          if (opened.truncatedBytes > 0) logger.warn(fields, "segment recovered: cut at its first torn or corrupt batch, indexes rebuilt");
          else logger.info(fields, "segment recovered: indexes rebuilt");
        }
        if (opened.truncatedBytes > 0 && !isLast) {
          recovery.deletedSegments += await removeSegmentFiles(dir, bases.slice(i + 1), logger, `${opened.segment.logPath} was cut short at offset ${opened.segment.nextOffset}`);
          break;
        }
        const nowMonoMs = clock.monotonicMs();
        if (nowMonoMs - lastProgressMs >= RECOVERY_PROGRESS_INTERVAL_MS) {
          lastProgressMs = nowMonoMs;
          logger.info({ segmentsLoaded: i + 1, segmentsTotal: bases.length }, "loading log segments");
        }
      }
      // The last segment may have been opened as a closed one if later segments were removed.
      await segments[segments.length - 1]!.ensureResident();
    } catch (err) {
      await Promise.allSettled(segments.map((s) => s.close()));
      throw err;
    }
    recovery.segments = segments.length;
    recovery.durationMs = clock.monotonicMs() - startedMs;
    // Recovery may have cut the tail: epochs that start past the end describe lost records.
    const leaderEpochCache = await LeaderEpochCache.load(dir, logger);
    await leaderEpochCache.truncateFromEnd(segments[segments.length - 1]!.nextOffset);
    const log = new PartitionLog({ ...options, logger }, segments, recovery, leaderEpochCache);
    const level = recovery.recoveredSegments > 0 || recovery.deletedSegments > 0 ? "info" : "debug";
    logger[level]({ ...recovery, logStartOffset: log.logStartOffset, logEndOffset: log.logEndOffset }, "log opened");
    return log;
  }

  // ---------------------------------------------------------------------------------------
  // State.

  get logStartOffset(): number {
    return this.segments[0]!.baseOffset;
  }

  /** The offset the next appended record gets. */
  get logEndOffset(): number {
    return this.active.nextOffset;
  }

  /** Bytes of all .log files. */
  get sizeBytes(): number {
    let total = 0;
    for (const segment of this.segments) total += segment.sizeBytes;
    return total;
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  get currentConfig(): LogConfig {
    return this.config;
  }

  /** One entry per segment, oldest first (diagnostics, metrics, tests). */
  segmentInfos(): SegmentInfo[] {
    return this.segments.map((s) => ({
      baseOffset: s.baseOffset,
      nextOffset: s.nextOffset,
      sizeBytes: s.sizeBytes,
      maxTimestamp: s.maxTimestamp,
      open: s.resident,
      offsetIndexEntries: s.offsetIndexEntries,
      timeIndexEntries: s.timeIndexEntries,
    }));
  }

  private get active(): LogSegment {
    return this.segments[this.segments.length - 1]!;
  }

  private ensureUsable(): void {
    switch (this.state) {
      case "open":
        return;
      case "closed":
        throw new FlotillaError("SHUTTING_DOWN", `log of ${this.topic}-${this.partition} is closed`);
      case "deleted":
        throw new FlotillaError("NOT_LEADER_OR_FOLLOWER", `log of ${this.topic}-${this.partition} was deleted`);
      case "failed":
        throw new FlotillaError("KAFKA_STORAGE_ERROR", `log of ${this.topic}-${this.partition} is offline after an I/O failure`, { cause: this.failure });
    }
  }

  /** Takes the log offline: an I/O failure left memory and files in doubt (Kafka marks the log dir offline). */
  private fail(err: unknown): void {
    if (this.state !== "open") return;
    this.state = "failed";
    this.failure = err;
    this.logger.error({ err }, "log is offline after an I/O failure");
  }

  // ---------------------------------------------------------------------------------------
  // Appends.

  /**
   * Leader path. Validates every batch (size, magic, CRC; at least one record, and
   * lastOffsetDelta = recordCount - 1 as producers write them), assigns offsets from
   * logEndOffset by rewriting each baseOffset, stamps partitionLeaderEpoch, and appends
   * all batches to one segment with one write. `batches` is modified in place. Both fields
   * lie outside the CRC, so no CRC is recomputed. Nothing is appended if any batch is bad.
   */
  async appendAsLeader(batches: Buffer, options: { leaderEpoch: number }): Promise<AppendInfo> {
    return this.appendLock.run(async () => {
      this.ensureUsable();
      const plan = this.plan(batches, "leader");
      let next = this.logEndOffset;
      for (const batch of plan.batches) {
        setBaseOffset(batches, batch.position, next);
        setPartitionLeaderEpoch(batches, batch.position, options.leaderEpoch);
        batch.baseOffset = next;
        batch.lastOffset = next + batch.lastOffsetDelta;
        next = batch.lastOffset + 1;
      }
      // Persisted before the records: a crash in between leaves an epoch that starts at the
      // log end offset, which is harmless.
      await this.leaderEpochCache.assign(options.leaderEpoch, plan.batches[0]!.baseOffset);
      return this.appendPlanned(batches, plan);
    });
  }

  /**
   * A replica that became leader in `leaderEpoch` records that the epoch starts at the
   * current log end offset (Kafka's maybeAssignEpochStartOffset at makeLeader), so that it
   * answers OffsetForLeaderEpoch precisely before its first append. Ordered with appends.
   */
  async assignEpochStartOffset(leaderEpoch: number): Promise<void> {
    await this.appendLock.run(async () => {
      this.ensureUsable();
      await this.leaderEpochCache.assign(leaderEpoch, this.logEndOffset);
    });
  }

  /**
   * Follower and recovery path: appends batches with the offsets they carry, which must
   * continue the log (the first at or past logEndOffset, each next one past the previous).
   * In a compacted log, offsets skipped between them (the leader's log has holes where the
   * cleaner dropped whole batches) are filled with header-only batches of no records (see
   * gapFillerBatch), so this log's segments stay contiguous. An empty buffer appends nothing.
   */
  async appendAsFollower(batches: Buffer): Promise<AppendInfo> {
    return this.appendLock.run(async () => {
      this.ensureUsable();
      let plan = this.plan(batches, "follower");
      if (plan.batches.length === 0) {
        return { baseOffset: this.logEndOffset, lastOffset: this.logEndOffset - 1, maxTimestamp: -1, batchCount: 0, recordCount: 0 };
      }
      if (plan.batches[0]!.baseOffset < this.logEndOffset) {
        throw new FlotillaError("INVALID_REQUEST", `follower append to ${this.topic}-${this.partition} starts at offset ${plan.batches[0]!.baseOffset}, below the log end offset ${this.logEndOffset}`);
      }
      let hasGap = false;
      let expected = this.logEndOffset;
      for (const b of plan.batches) {
        if (b.baseOffset !== expected) hasGap = true;
        expected = b.lastOffset + 1;
      }
      if (hasGap) {
        // Only a compacted log legitimately has holes; elsewhere a gap is a replication bug.
        if (!isCompacted(this.config)) {
          throw new FlotillaError("INVALID_REQUEST", `follower append to ${this.topic}-${this.partition} skips offsets (log end offset ${this.logEndOffset}, batches from ${plan.batches[0]!.baseOffset}) in a log that is not compacted`);
        }
        const parts: Buffer[] = [];
        let next = this.logEndOffset;
        for (const b of plan.batches) {
          if (b.baseOffset > next) parts.push(...gapFillerBatch(next, b.baseOffset - 1, b.partitionLeaderEpoch));
          parts.push(batches.subarray(b.position, b.position + b.size));
          next = b.lastOffset + 1;
        }
        batches = Buffer.concat(parts);
        plan = this.plan(batches, "follower");
      }
      for (const batch of plan.batches) {
        if (batch.partitionLeaderEpoch > this.leaderEpochCache.latestEpoch) await this.leaderEpochCache.assign(batch.partitionLeaderEpoch, batch.baseOffset);
      }
      return this.appendPlanned(batches, plan);
    });
  }

  /** Validates every batch header and CRC; no record is decoded. */
  private plan(buf: Buffer, mode: "leader" | "follower"): { batches: PlannedBatch[]; recordCount: number; maxTimestamp: number } {
    if (mode === "leader" && buf.length === 0) throw new FlotillaError("INVALID_BATCH", "append carries no record batch");
    const batches: PlannedBatch[] = [];
    let recordCount = 0;
    let maxTimestamp = -1;
    let position = 0;
    while (position < buf.length) {
      const { header, size } = validateBatchAt(buf, position);
      if (size > this.config.segmentBytes) {
        // Kafka's RecordBatchTooLargeException: a batch must fit in one segment.
        throw new FlotillaError("RECORD_LIST_TOO_LARGE", `batch at byte ${position} is ${size} bytes, larger than segment.bytes ${this.config.segmentBytes}`);
      }
      if (mode === "leader" && (header.recordCount < 1 || header.lastOffsetDelta !== header.recordCount - 1)) {
        throw new FlotillaError("INVALID_BATCH", `batch at byte ${position} has ${header.recordCount} records and lastOffsetDelta ${header.lastOffsetDelta}; a produced batch has at least one record and lastOffsetDelta = recordCount - 1`);
      }
      if (mode === "follower") {
        const previous = batches[batches.length - 1];
        if (previous !== undefined && header.baseOffset <= previous.lastOffset) {
          throw new FlotillaError("INVALID_BATCH", `batch at byte ${position} has base offset ${header.baseOffset}, but the batch before it ends at ${previous.lastOffset}`);
        }
      }
      batches.push({
        position,
        size,
        baseOffset: header.baseOffset,
        lastOffset: header.baseOffset + header.lastOffsetDelta,
        maxTimestamp: header.maxTimestamp,
        lastOffsetDelta: header.lastOffsetDelta,
        recordCount: header.recordCount,
        partitionLeaderEpoch: header.partitionLeaderEpoch,
      });
      recordCount += header.recordCount;
      if (header.maxTimestamp > maxTimestamp) maxTimestamp = header.maxTimestamp;
      position += size;
    }
    return { batches, recordCount, maxTimestamp };
  }

  private async appendPlanned(buf: Buffer, plan: { batches: PlannedBatch[]; recordCount: number; maxTimestamp: number }): Promise<AppendInfo> {
    const first = plan.batches[0]!;
    const last = plan.batches[plan.batches.length - 1]!;
    const nowMs = this.clock.nowMs();
    await this.rollIfNeeded(nowMs, buf.length, last.lastOffset);
    const active = this.active;
    assert(active.sizeBytes + buf.length <= SEGMENT_BYTES_MAX || active.isEmpty, "append would push a segment past int32 positions");
    assert(last.lastOffset - active.baseOffset <= RELATIVE_OFFSET_MAX, "append would overflow int32 relative offsets in a fresh segment");
    try {
      await active.append(buf, plan.batches, nowMs);
    } catch (err) {
      if (active.writeFailed) this.fail(err);
      throw err;
    }
    this.unflushedRecords += plan.recordCount;
    const { flushIntervalMessages, flushIntervalMs } = this.config;
    if (
      (flushIntervalMessages !== undefined && this.unflushedRecords >= flushIntervalMessages) ||
      (flushIntervalMs !== undefined && nowMs - this.lastFlushMs >= flushIntervalMs)
    ) {
      await this.flushLocked();
    }
    return { baseOffset: first.baseOffset, lastOffset: last.lastOffset, maxTimestamp: plan.maxTimestamp, batchCount: plan.batches.length, recordCount: plan.recordCount };
  }

  // ---------------------------------------------------------------------------------------
  // Rolling.

  /**
   * Why the active segment must be rolled before an append of `incomingBytes` ending at
   * `incomingLastOffset` (0 / -1 for a time check only), or undefined. An empty segment is
   * never rolled.
   */
  private rollReason(nowMs: number, incomingBytes: number, incomingLastOffset: number): string | undefined {
    const active = this.active;
    if (active.isEmpty) return undefined;
    if (incomingBytes > 0 && active.sizeBytes + incomingBytes > this.config.segmentBytes) return "segment.bytes";
    // Wall-clock time since the first append rather than producer timestamps, so a producer
    // with a skewed clock cannot force a roll per append.
    if (nowMs - active.rollBaseMs > this.config.segmentMs) return "segment.ms";
    if (active.indexesFull()) return "index full";
    if (incomingLastOffset - active.baseOffset > RELATIVE_OFFSET_MAX) return "relative offset overflow";
    return undefined;
  }

  private async rollIfNeeded(nowMs: number, incomingBytes: number, incomingLastOffset: number): Promise<void> {
    const reason = this.rollReason(nowMs, incomingBytes, incomingLastOffset);
    if (reason !== undefined) await this.roll(reason, nowMs);
  }

  /** Rolls the active segment if segment.ms has passed (or its index is full). Appends do this themselves. */
  async maybeRoll(nowMs: number): Promise<void> {
    await this.appendLock.run(async () => {
      this.ensureUsable();
      await this.rollIfNeeded(nowMs, 0, -1);
    });
  }

  private async roll(reason: string, nowMs: number): Promise<void> {
    const old = this.active;
    try {
      await old.seal({ sync: false });
      const next = await LogSegment.create({ dir: this.dir, baseOffset: old.nextOffset, settings: indexSettingsFor(this.config), logger: this.logger, nowMs });
      this.segments = [...this.segments, next];
    } catch (err) {
      this.fail(err);
      throw err;
    }
    this.logger.info({ reason, closedSegment: old.baseOffset, closedBytes: old.sizeBytes, newSegment: old.nextOffset }, "rolled log segment");
    this.openClosedSegments.push(old);
    await this.evictExcess();
    this.flushInBackground(old);
  }

  /**
   * fsync of a segment that was just rolled, off the append path (Kafka does the same).
   * One at a time, so a burst of rolls does not fill libuv's thread pool with fsyncs.
   */
  private flushInBackground(segment: LogSegment): void {
    const done = this.backgroundFlushLock
      .run(() => this.rw.read(async () => {
        if (segment.deleted) return;
        segment.refs++;
        try {
          await segment.flush();
          await syncDir(this.dir);
        } finally {
          // release() retries the eviction this reference may have held up.
          this.release(segment);
        }
      }))
      .catch((err: unknown) => this.fail(err))
      .finally(() => this.backgroundFlushes.delete(done));
    this.backgroundFlushes.add(done);
  }

  private async drainBackgroundFlushes(): Promise<void> {
    for (let rounds = 0; rounds < 8 && this.backgroundFlushes.size > 0; rounds++) {
      await Promise.allSettled([...this.backgroundFlushes]);
    }
  }

  // ---------------------------------------------------------------------------------------
  // Open closed segments, bounded.

  private async acquire(segment: LogSegment): Promise<void> {
    segment.refs++;
    try {
      await segment.ensureResident();
    } catch (err) {
      segment.refs--;
      throw err;
    }
    if (segment !== this.active) {
      const at = this.openClosedSegments.indexOf(segment);
      if (at >= 0) this.openClosedSegments.splice(at, 1);
      this.openClosedSegments.push(segment);
      await this.evictExcess();
    }
  }

  private release(segment: LogSegment): void {
    segment.refs--;
    assert(segment.refs >= 0, () => `segment ${segment.logPath} released more often than acquired`);
    if (segment.refs === 0 && this.openClosedSegments.length > this.openSegmentsMax) {
      void this.evictExcess().catch((err: unknown) => this.logger.warn({ err }, "closing an idle segment failed"));
    }
  }

  /** Closes the least recently used closed segments nobody holds until the bound is met. */
  private async evictExcess(): Promise<void> {
    while (this.openClosedSegments.length > this.openSegmentsMax) {
      const at = this.openClosedSegments.findIndex((s) => s.refs === 0);
      if (at < 0) return; // every open one is being read; the next release retries
      const [victim] = this.openClosedSegments.splice(at, 1);
      await victim!.evict();
    }
  }

  private forgetOpen(segment: LogSegment): void {
    const at = this.openClosedSegments.indexOf(segment);
    if (at >= 0) this.openClosedSegments.splice(at, 1);
  }

  // ---------------------------------------------------------------------------------------
  // Reads.

  /**
   * Whole batches, as stored, from the one holding `offset`, up to `maxBytes` (the first
   * batch whole regardless when `minOneBatch`), none whose base offset is at or past
   * `maxOffsetExclusive`. Served from one segment: a read never spans a segment boundary, so
   * callers loop on `nextOffset`. Empty at logEndOffset or at/after maxOffsetExclusive.
   * Throws OFFSET_OUT_OF_RANGE when offset < logStartOffset or > logEndOffset.
   */
  async read(offset: number, options: ReadOptions): Promise<ReadResult> {
    if (!Number.isSafeInteger(options.maxBytes) || options.maxBytes < 0) {
      throw new FlotillaError("INVALID_FETCH_SIZE", `maxBytes must be a non-negative integer, got ${options.maxBytes}`);
    }
    return this.rw.read(async () => {
      this.ensureUsable();
      const logStartOffset = this.logStartOffset;
      const logEndOffset = this.logEndOffset;
      if (!Number.isSafeInteger(offset) || offset < logStartOffset || offset > logEndOffset) {
        throw new FlotillaError("OFFSET_OUT_OF_RANGE", `offset ${offset} of ${this.topic}-${this.partition} is outside [${logStartOffset}, ${logEndOffset}]`);
      }
      const maxOffsetExclusive = options.maxOffsetExclusive ?? Number.POSITIVE_INFINITY;
      const empty: ReadResult = { records: Buffer.alloc(0), firstOffset: offset, nextOffset: offset };
      if (offset === logEndOffset || offset >= maxOffsetExclusive) return empty;
      const segments = this.segments;
      for (let i = floorSegment(segments, offset); i < segments.length; i++) {
        const segment = segments[i]!;
        // Observed together, before any await: bytes below `end` hold offsets below `nextOffset`.
        const end = segment.sizeBytes;
        if (offset >= segment.nextOffset) continue;
        await this.acquire(segment);
        try {
          const result = await segment.read(offset, { maxBytes: options.maxBytes, maxOffsetExclusive, minOneBatch: options.minOneBatch ?? false, end });
          if (result !== undefined) return result;
        } finally {
          this.release(segment);
        }
      }
      return empty;
    });
  }

  /**
   * Kafka's ListOffsets by timestamp: the first batch whose maxTimestamp >= timestampMs,
   * found through each segment's largest timestamp and then its time index. Returns that
   * batch's base offset and maxTimestamp (the broker does not decode records, so the answer
   * is batch-granular: the batch may start with records older than timestampMs), or
   * undefined when no batch is that recent.
   */
  async offsetForTimestamp(timestampMs: number): Promise<{ offset: number; timestamp: number } | undefined> {
    return this.rw.read(async () => {
      this.ensureUsable();
      for (const segment of this.segments) {
        const end = segment.sizeBytes;
        if (segment.maxTimestamp < timestampMs || end === 0) continue;
        await this.acquire(segment);
        try {
          const found = await segment.findByTimestamp(timestampMs, end);
          if (found !== undefined) return found;
        } finally {
          this.release(segment);
        }
      }
      return undefined;
    });
  }

  // ---------------------------------------------------------------------------------------
  // Truncation.

  /**
   * Drops every batch at and after `offset` (a follower's divergent suffix). A batch that
   * `offset` falls inside is dropped whole, so logEndOffset becomes that batch's base offset.
   * No-op at or past logEndOffset. At or below logStartOffset this is
   * truncateFullyAndStartAt(offset), as in Kafka.
   */
  async truncateTo(offset: number): Promise<void> {
    assert(Number.isSafeInteger(offset) && offset >= 0, () => `truncateTo(${offset})`);
    await this.appendLock.run(async () => {
      this.ensureUsable();
      if (offset >= this.logEndOffset) return;
      await this.drainBackgroundFlushes();
      await this.rw.write(async () => {
        if (offset <= this.logStartOffset) {
          await this.truncateFullyLocked(offset);
          return;
        }
        const before = this.logEndOffset;
        this.markTruncation(offset);
        const segments = this.segments;
        let keep = floorSegment(segments, offset) + 1;
        if (segments[keep - 1]!.baseOffset === offset) keep--;
        assert(keep >= 1, "truncation below the first segment is truncateFully");
        try {
          for (const dropped of segments.slice(keep).reverse()) {
            this.forgetOpen(dropped);
            await dropped.deleteFiles();
          }
          this.segments = segments.slice(0, keep);
          const active = this.active;
          this.forgetOpen(active);
          await active.ensureResident();
          active.settings = indexSettingsFor(this.config);
          if (offset < active.nextOffset) await active.truncateTo(offset);
          await syncDir(this.dir);
          await this.leaderEpochCache.truncateFromEnd(this.logEndOffset);
        } catch (err) {
          this.fail(err);
          throw err;
        }
        this.logger.info({ requestedOffset: offset, previousLogEndOffset: before, logEndOffset: this.logEndOffset }, "log truncated");
      });
    });
  }

  /** Removes every segment and starts an empty one at `offset`: logStartOffset = logEndOffset = offset. */
  async truncateFullyAndStartAt(offset: number): Promise<void> {
    assert(Number.isSafeInteger(offset) && offset >= 0, () => `truncateFullyAndStartAt(${offset})`);
    await this.appendLock.run(async () => {
      this.ensureUsable();
      await this.drainBackgroundFlushes();
      await this.rw.write(() => this.truncateFullyLocked(offset));
    });
  }

  private async truncateFullyLocked(offset: number): Promise<void> {
    const before = { logStartOffset: this.logStartOffset, logEndOffset: this.logEndOffset };
    this.markTruncation(0);
    try {
      // Rename first: a crash before the new segment exists must not leave old segments
      // beside it (they are removed at open by their suffix).
      const renamed: string[] = [];
      for (const segment of this.segments) {
        this.forgetOpen(segment);
        await segment.close();
        segment.deleted = true;
        for (const path of [segment.logPath, segment.indexPath, segment.timeIndexPath]) {
          try {
            await rename(path, path + DELETED_SUFFIX);
            renamed.push(path + DELETED_SUFFIX);
          } catch (err) {
            if ((err as { code?: string }).code !== "ENOENT") throw storageError("renaming", path, err);
          }
        }
      }
      const fresh = await LogSegment.create({ dir: this.dir, baseOffset: offset, settings: indexSettingsFor(this.config), logger: this.logger, nowMs: this.clock.nowMs() });
      this.segments = [fresh];
      await syncDir(this.dir);
      for (const path of renamed) await unlinkIfExists(path);
      await this.leaderEpochCache.clear();
    } catch (err) {
      this.fail(err);
      throw err;
    }
    this.logger.info({ ...before, newOffset: offset }, "log truncated fully");
  }

  // ---------------------------------------------------------------------------------------
  // Retention.

  /**
   * Deletes whole closed segments from the oldest while they breach retention.ms (their
   * largest timestamp, or last write time when they carry none, is older than nowMs minus
   * retention.ms) or retention.bytes (removing them keeps the log at or above the limit).
   * The active segment is never deleted; but it is rolled first if segment.ms has passed,
   * so data in a quiet partition does expire (what segment.ms exists for). logStartOffset
   * moves to the first remaining segment; logEndOffset never moves back.
   */
  async applyRetention(nowMs: number): Promise<{ deletedSegments: number; logStartOffset: number }> {
    return this.appendLock.run(async () => {
      this.ensureUsable();
      await this.rollIfNeeded(nowMs, 0, -1);
      const segments = this.segments;
      const closed = segments.length - 1;
      let count = 0;
      // cleanup.policy=compact alone keeps every segment; the cleaner shrinks them instead.
      const retains = appliesRetention(this.config);
      const retentionMs = retains ? this.config.retentionMs : -1;
      const retentionBytes = retains ? this.config.retentionBytes : -1;
      if (retentionMs >= 0) {
        while (count < closed) {
          const segment = segments[count]!;
          const largestTimestamp = segment.maxTimestamp >= 0 ? segment.maxTimestamp : segment.lastModifiedMs;
          if (nowMs - largestTimestamp <= retentionMs) break;
          count++;
        }
      }
      if (retentionBytes >= 0) {
        let excess = this.sizeBytes - retentionBytes;
        for (let i = 0; i < count; i++) excess -= segments[i]!.sizeBytes;
        while (count < closed && excess - segments[count]!.sizeBytes >= 0) {
          excess -= segments[count]!.sizeBytes;
          count++;
        }
      }
      if (count === 0) return { deletedSegments: 0, logStartOffset: this.logStartOffset };
      await this.drainBackgroundFlushes();
      const doomed = segments.slice(0, count);
      await this.rw.write(async () => {
        // Publish first: the list never names a segment whose files are gone.
        this.segments = segments.slice(count);
        try {
          for (const segment of doomed) {
            this.forgetOpen(segment);
            await segment.deleteFiles();
          }
          await this.leaderEpochCache.truncateFromStart(this.logStartOffset);
        } catch (err) {
          this.fail(err);
          throw err;
        }
      });
      this.logger.info(
        { deletedSegments: count, deletedUpToOffset: this.logStartOffset - 1, logStartOffset: this.logStartOffset, sizeBytes: this.sizeBytes },
        "retention deleted log segments",
      );
      return { deletedSegments: count, logStartOffset: this.logStartOffset };
    });
  }

  // ---------------------------------------------------------------------------------------
  // Compaction hooks (the cleaner itself is log-cleaner.ts).

  private markTruncation(offset: number): void {
    this.truncationMark = Math.min(this.truncationMark ?? offset, offset);
  }

  /** The lowest offset truncated to since the last call, if any; clears it. */
  takeTruncationMark(): number | undefined {
    const mark = this.truncationMark;
    this.truncationMark = undefined;
    return mark;
  }

  /** The closed segments (every one but the active), oldest first, as the cleaner reads them. */
  cleanableSegments(): CleanableSegment[] {
    this.ensureUsable();
    return this.segments.slice(0, -1).map((s) => ({
      baseOffset: s.baseOffset,
      nextOffset: s.nextOffset,
      sizeBytes: s.sizeBytes,
      maxTimestamp: s.maxTimestamp,
      lastModifiedMs: s.lastModifiedMs,
      logPath: s.logPath,
      token: s,
    }));
  }

  /**
   * Step c of the cleaner's swap (see log-cleaner.ts): replaces each cleaned segment's .log by
   * its `.swap` file and reopens it with rebuilt indexes. All or nothing at the check: returns
   * false, changing nothing, when any of the segments is no longer a closed segment of this
   * log of the size that was cleaned (truncated, deleted by retention, became active).
   */
  async swapCleanedSegments(cleaned: readonly CleanedSegment[]): Promise<boolean> {
    return this.appendLock.run(async () => {
      this.ensureUsable();
      await this.drainBackgroundFlushes();
      return this.rw.write(async () => {
        const segments = [...this.segments];
        const closed = segments.slice(0, -1);
        const at: number[] = [];
        for (const c of cleaned) {
          const i = closed.indexOf(c.original.token as LogSegment);
          if (i < 0 || closed[i]!.sizeBytes !== c.original.sizeBytes || closed[i]!.deleted) return false;
          at.push(i);
        }
        try {
          for (let k = 0; k < cleaned.length; k++) {
            const old = segments[at[k]!]!;
            assert(old.refs === 0, () => `swapping ${old.logPath} while ${old.refs} readers hold it`);
            this.forgetOpen(old);
            await old.close();
            old.deleted = true;
            await unlinkIfExists(old.indexPath);
            await unlinkIfExists(old.timeIndexPath);
            try {
              await rename(cleaned[k]!.swapPath, old.logPath);
            } catch (err) {
              throw storageError("renaming", cleaned[k]!.swapPath, err);
            }
          }
          await syncDir(this.dir);
          for (let k = 0; k < cleaned.length; k++) {
            const old = segments[at[k]!]!;
            const opened = await LogSegment.open({
              dir: this.dir,
              baseOffset: old.baseOffset,
              settings: indexSettingsFor(this.config),
              logger: this.logger,
              nowMs: this.clock.nowMs(),
              mode: "recover",
              resident: false,
            });
            assert(opened.truncatedBytes === 0 && opened.segment.nextOffset === old.nextOffset, () => `cleaned ${old.logPath} does not end at offset ${old.nextOffset}`);
            segments[at[k]!] = opened.segment;
          }
          this.segments = segments;
        } catch (err) {
          this.fail(err);
          throw err;
        }
        return true;
      });
    });
  }

  // ---------------------------------------------------------------------------------------
  // Configuration, flush, close.

  /** New settings apply from the next append; index capacity changes with the next segment. */
  updateConfig(config: LogConfig): void {
    validateLogConfig(config);
    this.config = config;
    this.active.settings = { ...this.active.settings, indexIntervalBytes: config.indexIntervalBytes };
  }

  /** fsync of everything appended so far. */
  async flush(): Promise<void> {
    await this.appendLock.run(async () => {
      this.ensureUsable();
      await this.drainBackgroundFlushes();
      this.ensureUsable();
      await this.flushLocked();
    });
  }

  private async flushLocked(): Promise<void> {
    try {
      await this.active.flush();
    } catch (err) {
      this.fail(err);
      throw err;
    }
    this.unflushedRecords = 0;
    this.lastFlushMs = this.clock.nowMs();
  }

  /**
   * Seals the active segment (final time-index entry, index files written), fsyncs
   * everything, closes every file and writes the clean-shutdown marker. Idempotent. Later
   * calls on the log throw SHUTTING_DOWN.
   */
  async close(): Promise<void> {
    await this.appendLock.run(async () => {
      if (this.state !== "open" && this.state !== "failed") return;
      await this.drainBackgroundFlushes();
      await this.rw.write(async () => {
        const wasFailed = this.state === "failed";
        this.state = "closed";
        const segments = this.segments;
        try {
          if (!wasFailed) {
            await this.active.seal({ sync: true });
            await this.active.flush();
          }
        } finally {
          this.openClosedSegments = [];
          await Promise.allSettled(segments.map((s) => s.close()));
        }
        if (wasFailed) return; // no marker: the next open rescans the last segment
        await writeWholeFile(join(this.dir, CLEAN_SHUTDOWN_FILE), Buffer.alloc(0), { sync: true });
        await syncDir(this.dir);
        this.logger.debug({ logEndOffset: this.logEndOffset }, "log closed");
      });
    });
  }

  /**
   * Closes the log and removes its directory: renamed first to
   * `<topic>-<partition>.<uuid>-delete` (as Kafka does), so a crash mid-way leaves a name
   * LogManager recognizes and finishes removing at start-up. Later calls on the log throw
   * NOT_LEADER_OR_FOLLOWER.
   */
  async deleteFiles(): Promise<void> {
    await this.appendLock.run(async () => {
      if (this.state === "deleted") return;
      await this.drainBackgroundFlushes();
      await this.rw.write(async () => {
        this.state = "deleted";
        this.openClosedSegments = [];
        await Promise.allSettled(this.segments.map((s) => s.close()));
        for (const segment of this.segments) segment.deleted = true;
        const doomed = join(dirname(this.dir), `${basename(this.dir)}.${randomUUID().replaceAll("-", "")}${DELETE_DIR_SUFFIX}`);
        try {
          await rename(this.dir, doomed);
        } catch (err) {
          throw storageError("renaming", this.dir, err);
        }
        try {
          await rm(doomed, { recursive: true, force: true });
        } catch (err) {
          throw storageError("removing", doomed, err);
        }
        this.logger.info({ dir: this.dir }, "log deleted");
      });
    });
  }
}

/** Suffix of a partition directory being deleted. */
export const DELETE_DIR_SUFFIX = "-delete";

/** Index of the last segment whose base offset is <= offset (0 when offset precedes all). */
function floorSegment(segments: readonly LogSegment[], offset: number): number {
  let lo = 0;
  let hi = segments.length - 1;
  let found = 0;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (segments[mid]!.baseOffset <= offset) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return found;
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    throw storageError("listing", dir, err);
  }
}

/** Removes the files of segments not yet opened (start-up), newest first; returns how many. */
async function removeSegmentFiles(dir: string, bases: readonly number[], logger: Logger, reason: string): Promise<number> {
  if (bases.length === 0) return 0;
  logger.warn({ reason, removedSegments: bases.map((b) => segmentFileName(b, LOG_SUFFIX)) }, "removing log segments that follow a gap or a cut; offsets must be contiguous");
  for (const base of [...bases].reverse()) {
    for (const suffix of [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX]) await unlinkIfExists(join(dir, segmentFileName(base, suffix)));
  }
  await syncDir(dir);
  return bases.length;
}

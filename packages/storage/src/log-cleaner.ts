import { open, readFile, rename, utimes, type FileHandle } from "node:fs/promises";
import { dirname, join } from "node:path";
import { FlotillaError, assert, type Clock } from "@flotilla/common";
import type { Logger } from "@flotilla/common/logger";
import {
  ATTR_COMPRESSION_MASK,
  BATCH_HEADER_BYTES,
  LOG_OVERHEAD,
  MAGIC_V2,
  OFF_ATTRIBUTES,
  OFF_BASE_OFFSET,
  OFF_BASE_SEQUENCE,
  OFF_BASE_TIMESTAMP,
  OFF_BATCH_LENGTH,
  OFF_LAST_OFFSET_DELTA,
  OFF_LEADER_EPOCH,
  OFF_MAGIC,
  OFF_MAX_TIMESTAMP,
  OFF_PRODUCER_EPOCH,
  OFF_PRODUCER_ID,
  OFF_RECORD_COUNT,
  batchSizeAt,
  compress,
  decodeBatch,
  decompress,
  readBatchHeader,
  writeBatchCrc,
  type BatchHeader,
  type DecodedBatch,
} from "@flotilla/protocol";
import { isCompacted, type LogConfig } from "./config.js";
import { ByteWindow, isNotFound, storageError, syncDir, unlinkIfExists, writeFully } from "./io.js";
import { BATCH_BYTES_MAX, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX } from "./segment.js";

/**
 * The log cleaner: compaction of logs whose cleanup.policy includes "compact" (Kafka's
 * LogCleaner, simplified). Compaction keeps, for every key, only the record with the highest
 * offset; a record with a null value (a tombstone) says the key is deleted and is itself
 * dropped once its segment is older than delete.retention.ms.
 *
 * One cleaning of a log:
 *   1. The cleanable range is the closed segments (never the active one) that are old enough
 *      for min.compaction.lag.ms. Of it, the part from the cleaner checkpoint (the offset up
 *      to which the log was cleaned before) on is "dirty".
 *   2. Pass 1 decodes the dirty segments in order into a map key -> latest offset. The map is
 *      bounded by `dedupeBufferBytes` (Kafka's log.cleaner.dedupe.buffer.size): segments are
 *      added whole until the estimate passes the bound, so it may go past it by one segment's
 *      keys. The end of the last mapped segment is where this cleaning stops (`endOffset`).
 *   3. Pass 2 rewrites every closed segment below `endOffset` into `<base>.log.cleaned`,
 *      keeping a record when its key is null (Kafka rejects those at produce; we keep them
 *      rather than lose data), when the map does not know its key (it only occurs in the
 *      already-clean part), or when its offset is the latest for its key; a latest tombstone
 *      is dropped when its segment's time (largest timestamp, else last write) is older than
 *      now - delete.retention.ms. Control batches are kept whole.
 *   4. Segments that lost nothing are left alone. The others are swapped in (see below), and
 *      the checkpoint moves to `endOffset`.
 *
 * Rewritten batches keep their header: baseOffset, lastOffsetDelta, partitionLeaderEpoch,
 * timestamps, producerId/epoch/baseSequence and compression. Only the surviving records
 * remain, as their original bytes (offset and timestamp deltas are relative to the unchanged
 * base, so they stay valid); compressed batches are decompressed and recompressed with the
 * same codec; recordCount, length and CRC are rewritten. Kafka does the same for v2 batches
 * (it keeps the original base offset too, so baseSequence still lines up with it). A batch
 * that loses every record is dropped, except that an empty batch (no records, no compression
 * bits, header only) is kept when it is the first or the last batch of its segment (so the
 * segment still starts at the offset its file name says and ends where the next segment
 * starts) or the last batch of its producer id in the segment (so the producer's last
 * sequence survives for producer-state rebuilds, as Kafka keeps such batches). Offsets
 * therefore never change and the log start offset never moves; a read of a removed offset
 * returns the next surviving batch.
 *
 * Swap, per segment `<base>` (crash-safe; PartitionLog.open calls recoverCleanerFiles):
 *   a. write `<base>.log.cleaned`, fsync, give it the old segment's mtime;
 *   b. rename it to `<base>.log.swap` and fsync the directory: the new contents are now
 *      complete and durable;
 *   c. under the log's exclusive lock: close the old segment, remove its index files, rename
 *      `<base>.log.swap` over `<base>.log` (atomic), fsync the directory, and open the new
 *      segment, which rebuilds its indexes.
 * At open, a `.cleaned` file is an unfinished step a and is deleted (the old .log is intact);
 * a `.swap` file is a finished step b and the swap is completed (index files removed, renamed
 * over the .log). Either way nothing is lost.
 */

export const CLEANED_SUFFIX = ".cleaned";
export const SWAP_SUFFIX = ".swap";
/** Kafka's name for the per-log-dir file of clean-up-to offsets. */
export const CLEANER_OFFSET_CHECKPOINT_FILE = "cleaner-offset-checkpoint";
/** log.cleaner.backoff.ms default. */
export const LOG_CLEANER_BACKOFF_MS_DEFAULT = 15_000;
/** log.cleaner.dedupe.buffer.size default (Kafka: 128 MiB over all cleaner threads). */
export const DEDUPE_BUFFER_BYTES_DEFAULT = 128 * 1024 * 1024;
/** Per-entry cost estimate of the key map beyond the key's bytes (Map slot, string header, number). */
const MAP_ENTRY_OVERHEAD_BYTES = 64;
const READ_WINDOW_BYTES = 1024 * 1024;

const CLEANER_FILE_RE = /^(\d{20})\.log\.(cleaned|swap)$/;

/**
 * Finishes or rolls back a swap a crash interrupted (see the module comment). Returns the
 * directory's names as they are afterwards. Called by PartitionLog.open before it looks at
 * segments.
 */
export async function recoverCleanerFiles(dir: string, names: readonly string[], logger: Logger): Promise<string[]> {
  let changed = false;
  const out = new Set(names);
  for (const name of names) {
    const match = CLEANER_FILE_RE.exec(name);
    if (!match) continue;
    const path = join(dir, name);
    const base = match[1]!;
    if (match[2] === "cleaned") {
      logger.warn({ file: path }, "removing an unfinished cleaned segment; the original segment is intact");
      await unlinkIfExists(path);
      out.delete(name);
    } else {
      logger.warn({ file: path }, "completing a segment swap interrupted by a crash");
      await unlinkIfExists(join(dir, base + INDEX_SUFFIX));
      await unlinkIfExists(join(dir, base + TIME_INDEX_SUFFIX));
      out.delete(base + INDEX_SUFFIX);
      out.delete(base + TIME_INDEX_SUFFIX);
      try {
        await rename(path, join(dir, base + LOG_SUFFIX));
      } catch (err) {
        throw storageError("renaming", path, err);
      }
      out.delete(name);
      out.add(base + LOG_SUFFIX);
    }
    changed = true;
  }
  if (changed) await syncDir(dir);
  return [...out];
}

/** A closed segment as the cleaner sees it (a snapshot from PartitionLog.cleanableSegments). */
export interface CleanableSegment {
  baseOffset: number;
  nextOffset: number;
  sizeBytes: number;
  /** Largest batch maxTimestamp, -1 when none. */
  maxTimestamp: number;
  lastModifiedMs: number;
  logPath: string;
  /** Identity of the segment object: the swap only replaces the very segment that was cleaned. */
  readonly token: object;
}

/** What PartitionLog.swapCleanedSegments installs. */
export interface CleanedSegment {
  original: CleanableSegment;
  swapPath: string;
}

/** The parts of PartitionLog the cleaner uses. */
export interface CleanableLog {
  readonly dir: string;
  readonly topic: string;
  readonly partition: number;
  readonly currentConfig: LogConfig;
  readonly logStartOffset: number;
  cleanableSegments(): CleanableSegment[];
  swapCleanedSegments(cleaned: readonly CleanedSegment[]): Promise<boolean>;
  /** The lowest offset the log was truncated to since the last call, if any (clears it). */
  takeTruncationMark(): number | undefined;
}

export interface CleanResult {
  topic: string;
  partition: number;
  /** The cleaner checkpoint after this cleaning. */
  endOffset: number;
  bytesBefore: number;
  bytesAfter: number;
  recordsRemoved: number;
  segmentsRewritten: number;
  /** False when the log changed under the cleaning (truncation, retention) and nothing was swapped. */
  swapped: boolean;
  durationMs: number;
}

/** The segment's time for tombstone expiry and compaction lag: its largest timestamp, else its last write. */
function segmentTimeMs(s: CleanableSegment): number {
  return s.maxTimestamp >= 0 ? s.maxTimestamp : s.lastModifiedMs;
}

/** Which segments a cleaning may touch and which of them are dirty. */
export interface CleanablePlan {
  /** Closed segments old enough for min.compaction.lag.ms, oldest first. */
  cleanable: CleanableSegment[];
  /** Index in `cleanable` of the first dirty segment. */
  firstDirtyIndex: number;
  dirtyBytes: number;
  totalBytes: number;
  /** dirtyBytes / totalBytes; 0 when nothing is cleanable. */
  dirtyRatio: number;
}

/** Splits a log's closed segments into clean and dirty at `checkpoint` (clamped onto a segment boundary). */
export function planCleaning(segments: readonly CleanableSegment[], checkpoint: number, config: LogConfig, nowMs: number): CleanablePlan {
  const lagMs = config.minCompactionLagMs ?? 0;
  const cleanable: CleanableSegment[] = [];
  for (const s of segments) {
    if (lagMs > 0 && nowMs - segmentTimeMs(s) < lagMs) break;
    cleanable.push(s);
  }
  // A checkpoint inside a segment (after a truncation) makes that whole segment dirty.
  let firstDirtyIndex = cleanable.findIndex((s) => s.nextOffset > checkpoint);
  if (firstDirtyIndex < 0) firstDirtyIndex = cleanable.length;
  let dirtyBytes = 0;
  let totalBytes = 0;
  cleanable.forEach((s, i) => {
    totalBytes += s.sizeBytes;
    if (i >= firstDirtyIndex) dirtyBytes += s.sizeBytes;
  });
  return { cleanable, firstDirtyIndex, dirtyBytes, totalBytes, dirtyRatio: totalBytes === 0 ? 0 : dirtyBytes / totalBytes };
}

/**
 * Calls `each` for every batch of a segment file with its raw bytes (a view: copy to keep),
 * its header and, unless `headersOnly`, its decoded records.
 */
async function forEachBatch(
  segment: CleanableSegment,
  each: (raw: Buffer, header: BatchHeader, batch: DecodedBatch | undefined) => void | Promise<void>,
  options: { headersOnly?: boolean } = {},
): Promise<void> {
  let handle: FileHandle;
  try {
    handle = await open(segment.logPath, "r");
  } catch (err) {
    if (isNotFound(err)) throw new FlotillaError("NOT_LEADER_OR_FOLLOWER", `${segment.logPath} was removed while it was being cleaned`);
    throw storageError("opening", segment.logPath, err);
  }
  try {
    const end = segment.sizeBytes;
    const window = new ByteWindow(handle, segment.logPath, end, READ_WINDOW_BYTES);
    let position = 0;
    for (let batches = 0; position < end; batches++) {
      assert(batches <= end / BATCH_HEADER_BYTES, () => `batch walk of ${segment.logPath} does not advance`);
      let at = await window.at(position, BATCH_HEADER_BYTES);
      const size = batchSizeAt(window.buf, at);
      if (size < BATCH_HEADER_BYTES || size > BATCH_BYTES_MAX || position + size > end) {
        throw new FlotillaError("STORAGE_CORRUPT", `${segment.logPath}: batch at byte ${position} declares ${size} bytes, impossible below the end at ${end}`);
      }
      at = await window.at(position, size);
      const raw = window.buf.subarray(at, at + size);
      let batch: DecodedBatch | undefined;
      if (!options.headersOnly) {
        try {
          batch = decodeBatch(raw, 0);
        } catch (err) {
          throw new FlotillaError("STORAGE_CORRUPT", `${segment.logPath}: batch at byte ${position} cannot be decoded for cleaning: ${(err as Error).message}`, { cause: err });
        }
      }
      await each(raw, batch?.header ?? readBatchHeader(raw, 0), batch);
      position += size;
    }
  } finally {
    await handle.close();
  }
}

/** Zig-zag varint at `pos`: its value and the position after it. */
function readVarint(buf: Buffer, pos: number): { value: number; next: number } {
  let raw = 0;
  for (let i = 0; i < 5; i++) {
    const b = buf[pos + i];
    if (b === undefined) throw new FlotillaError("CORRUPT_MESSAGE", `varint at byte ${pos} runs past the records`);
    raw += (b & 0x7f) * 2 ** (7 * i);
    if ((b & 0x80) === 0) return { value: raw % 2 === 0 ? raw / 2 : -(raw + 1) / 2, next: pos + i + 1 };
  }
  throw new FlotillaError("CORRUPT_MESSAGE", `varint at byte ${pos} is longer than 5 bytes`);
}

/** The records section of a batch, decompressed, cut into each record's bytes (length prefix included). */
function rawRecords(raw: Buffer, batch: DecodedBatch): Buffer[] {
  const body = raw.subarray(BATCH_HEADER_BYTES);
  const section = batch.compression === "none" ? body : decompress(batch.compression, body);
  const out: Buffer[] = [];
  let pos = 0;
  for (let i = 0; i < batch.records.length; i++) {
    const { value: length, next } = readVarint(section, pos);
    out.push(section.subarray(pos, next + length));
    pos = next + length;
  }
  assert(pos === section.length, "record slicing disagrees with the decoder");
  return out;
}

/** The batch with only `kept` records (see the module comment); header fields other than size, count and CRC unchanged. */
function rebuildBatch(raw: Buffer, batch: DecodedBatch, kept: readonly Buffer[]): Buffer {
  let body: Buffer = Buffer.concat(kept);
  let attributes = raw.readInt16BE(OFF_ATTRIBUTES);
  if (kept.length === 0) attributes &= ~ATTR_COMPRESSION_MASK;
  else if (batch.compression !== "none") body = compress(batch.compression, body);
  const out = Buffer.alloc(BATCH_HEADER_BYTES + body.length);
  raw.copy(out, 0, 0, BATCH_HEADER_BYTES);
  body.copy(out, BATCH_HEADER_BYTES);
  out.writeInt32BE(out.length - LOG_OVERHEAD, OFF_BATCH_LENGTH);
  out.writeInt16BE(attributes, OFF_ATTRIBUTES);
  out.writeInt32BE(kept.length, OFF_RECORD_COUNT);
  writeBatchCrc(out, 0, out.length);
  return out;
}

const INT32_MAX = 0x7fffffff;

/**
 * Header-only batches (no records, no compression, no producer, timestamps -1) that cover
 * offsets [from, to]: what a follower appends for the holes a compacted leader's log has
 * where the cleaner dropped whole batches. One batch per 2^31 offsets (lastOffsetDelta is
 * an int32). Readers skip them as they skip the cleaner's own empty batches.
 */
export function gapFillerBatch(from: number, to: number, partitionLeaderEpoch: number): Buffer[] {
  assert(Number.isSafeInteger(from) && to >= from, () => `gap [${from}, ${to}] is empty`);
  const out: Buffer[] = [];
  for (let base = from; base <= to && out.length < 1 + (to - from) / INT32_MAX; ) {
    const last = Math.min(to, base + INT32_MAX);
    const buf = Buffer.alloc(BATCH_HEADER_BYTES);
    buf.writeBigInt64BE(BigInt(base), OFF_BASE_OFFSET);
    buf.writeInt32BE(BATCH_HEADER_BYTES - LOG_OVERHEAD, OFF_BATCH_LENGTH);
    buf.writeInt32BE(partitionLeaderEpoch, OFF_LEADER_EPOCH);
    buf.writeInt8(MAGIC_V2, OFF_MAGIC);
    buf.writeInt32BE(last - base, OFF_LAST_OFFSET_DELTA);
    buf.writeBigInt64BE(-1n, OFF_BASE_TIMESTAMP);
    buf.writeBigInt64BE(-1n, OFF_MAX_TIMESTAMP);
    buf.writeBigInt64BE(-1n, OFF_PRODUCER_ID);
    buf.writeInt16BE(-1, OFF_PRODUCER_EPOCH);
    buf.writeInt32BE(-1, OFF_BASE_SEQUENCE);
    buf.writeInt32BE(0, OFF_RECORD_COUNT);
    writeBatchCrc(buf, 0, buf.length);
    out.push(buf);
    base = last + 1;
  }
  return out;
}

export interface CleanLogOptions {
  /** Cleaner checkpoint of the log: offsets below it were cleaned before. */
  checkpoint: number;
  nowMs: number;
  clock: Clock;
  logger: Logger;
  dedupeBufferBytes?: number;
}

/**
 * One cleaning of `log` as the module comment describes. Returns undefined when there is
 * nothing dirty to clean. Never touches the active segment.
 */
export async function cleanLog(log: CleanableLog, options: CleanLogOptions): Promise<CleanResult | undefined> {
  const config = log.currentConfig;
  assert(isCompacted(config), () => `cleaning ${log.topic}-${log.partition}, whose cleanup.policy is ${config.cleanupPolicy ?? "delete"}`);
  const startedMs = options.clock.monotonicMs();
  const plan = planCleaning(log.cleanableSegments(), options.checkpoint, config, options.nowMs);
  if (plan.firstDirtyIndex >= plan.cleanable.length) return undefined;

  // Pass 1: key -> latest offset over the dirty segments, bounded.
  const limitBytes = options.dedupeBufferBytes ?? DEDUPE_BUFFER_BYTES_DEFAULT;
  const latest = new Map<string, number>();
  let mapBytes = 0;
  let mappedEnd = plan.firstDirtyIndex;
  for (let i = plan.firstDirtyIndex; i < plan.cleanable.length && mapBytes <= limitBytes; i++) {
    await forEachBatch(plan.cleanable[i]!, (_raw, _header, batch) => {
      if (batch === undefined || batch.isControl) return;
      for (const record of batch.records) {
        if (record.key === null) continue;
        const key = record.key.toString("latin1");
        if (!latest.has(key)) mapBytes += record.key.length * 2 + MAP_ENTRY_OVERHEAD_BYTES;
        latest.set(key, record.offset);
      }
    });
    mappedEnd = i + 1;
  }
  const endOffset = plan.cleanable[mappedEnd - 1]!.nextOffset;
  const deleteHorizonMs = options.nowMs - (config.deleteRetentionMs ?? 86_400_000);

  // Pass 2: rewrite every segment below endOffset that loses something, streaming each into
  // its .cleaned file.
  const cleaned: CleanedSegment[] = [];
  let bytesBefore = 0;
  let bytesAfter = 0;
  let recordsRemoved = 0;
  try {
    for (let i = 0; i < mappedEnd; i++) {
      const segment = plan.cleanable[i]!;
      bytesBefore += segment.sizeBytes;
      const rewritten = await rewriteSegment(segment, latest, segmentTimeMs(segment) < deleteHorizonMs);
      if (rewritten === undefined) {
        bytesAfter += segment.sizeBytes;
        continue;
      }
      recordsRemoved += rewritten.recordsRemoved;
      bytesAfter += rewritten.sizeBytes;
      cleaned.push({ original: segment, swapPath: rewritten.swapPath });
    }
  } catch (err) {
    await Promise.allSettled(cleaned.map((c) => unlinkIfExists(c.swapPath)));
    throw err;
  }

  let swapped = true;
  if (cleaned.length > 0) {
    swapped = await log.swapCleanedSegments(cleaned);
    if (!swapped) await Promise.allSettled(cleaned.map((c) => unlinkIfExists(c.swapPath)));
  }
  return {
    topic: log.topic,
    partition: log.partition,
    endOffset: swapped ? endOffset : options.checkpoint,
    bytesBefore,
    bytesAfter: swapped ? bytesAfter : bytesBefore,
    recordsRemoved: swapped ? recordsRemoved : 0,
    segmentsRewritten: swapped ? cleaned.length : 0,
    swapped,
    durationMs: options.clock.monotonicMs() - startedMs,
  };
}

/**
 * Pass 2 for one segment: steps a and b of the swap (the cleaned .log written batch by batch,
 * fsynced, dated like the original, renamed to .swap). Returns undefined, leaving no file,
 * when the segment would lose nothing.
 */
async function rewriteSegment(
  segment: CleanableSegment,
  latest: ReadonlyMap<string, number>,
  dropTombstones: boolean,
): Promise<{ swapPath: string; sizeBytes: number; recordsRemoved: number } | undefined> {
  // Headers first: the batch count and each producer's last batch, for the empty batches rule.
  let batchCount = 0;
  const lastBatchOfProducer = new Map<number, number>();
  await forEachBatch(segment, (_raw, header) => {
    if (header.producerId >= 0) lastBatchOfProducer.set(header.producerId, batchCount);
    batchCount++;
  }, { headersOnly: true });

  const cleanedPath = segment.logPath + CLEANED_SUFFIX;
  const swapPath = segment.logPath + SWAP_SUFFIX;
  let handle: FileHandle | undefined;
  let position = 0;
  let removed = 0;
  let index = 0;
  try {
    handle = await open(cleanedPath, "w");
    const out = handle;
    await forEachBatch(segment, async (raw, header, batch) => {
      const at = index++;
      let bytes: Buffer | undefined = raw;
      if (batch !== undefined && !batch.isControl) {
        const keep = batch.records.map((r) => {
          if (r.key === null) return true;
          const newest = latest.get(r.key.toString("latin1"));
          if (newest !== undefined && r.offset < newest) return false;
          return !(r.value === null && dropTombstones);
        });
        const keptCount = keep.filter(Boolean).length;
        if (keptCount < batch.records.length) {
          removed += batch.records.length - keptCount;
          if (keptCount > 0) {
            bytes = rebuildBatch(raw, batch, rawRecords(raw, batch).filter((_, k) => keep[k]));
          } else if (at === 0 || at === batchCount - 1 || (header.producerId >= 0 && lastBatchOfProducer.get(header.producerId) === at)) {
            bytes = rebuildBatch(raw, batch, []);
          } else {
            bytes = undefined;
          }
        }
      }
      if (bytes !== undefined) {
        await writeFully(out, cleanedPath, bytes, position);
        position += bytes.length;
      }
    });
    assert(index === batchCount, () => `${segment.logPath} changed between two reads of the cleaner`);
    if (removed > 0) await handle.sync();
  } catch (err) {
    await handle?.close().catch(() => undefined);
    await unlinkIfExists(cleanedPath);
    throw FlotillaError.is(err) ? err : storageError("writing", cleanedPath, err);
  }
  await handle.close();
  if (removed === 0) {
    await unlinkIfExists(cleanedPath);
    return undefined;
  }
  try {
    // Tombstone expiry and time retention of a segment without timestamps read its mtime.
    const seconds = segment.lastModifiedMs / 1000;
    await utimes(cleanedPath, seconds, seconds);
    await rename(cleanedPath, swapPath);
  } catch (err) {
    await unlinkIfExists(cleanedPath);
    throw storageError("renaming", cleanedPath, err);
  }
  await syncDir(dirname(segment.logPath));
  return { swapPath, sizeBytes: position, recordsRemoved: removed };
}

/**
 * Kafka's cleaner-offset-checkpoint, one per log dir: text lines
 *
 *     0                          version
 *     <n>                        number of entries
 *     <topic> <partition> <offset>   n times: the log is clean below <offset>
 *
 * Replaced whole (temp file, fsync, rename, directory fsync).
 */
export async function readCleanerCheckpoint(logDir: string): Promise<Map<string, number>> {
  const path = join(logDir, CLEANER_OFFSET_CHECKPOINT_FILE);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if (isNotFound(err)) return new Map();
    throw storageError("reading", path, err);
  }
  const lines = text.split("\n").filter((l) => l.length > 0);
  const count = Number(lines[1]);
  if (lines[0] !== "0" || !Number.isSafeInteger(count) || lines.length !== count + 2) {
    throw new FlotillaError("STORAGE_CORRUPT", `${path} is not a version-0 checkpoint with a matching entry count`);
  }
  const out = new Map<string, number>();
  for (const line of lines.slice(2)) {
    const parts = line.split(" ");
    const offset = Number(parts[2]);
    if (parts.length !== 3 || !/^\d+$/.test(parts[1]!) || !Number.isSafeInteger(offset) || offset < 0) {
      throw new FlotillaError("STORAGE_CORRUPT", `${path}: line "${line}" is not "<topic> <partition> <offset>"`);
    }
    out.set(`${parts[0]}-${parts[1]}`, offset);
  }
  return out;
}

export async function writeCleanerCheckpoint(logDir: string, entries: ReadonlyMap<string, number>): Promise<void> {
  const path = join(logDir, CLEANER_OFFSET_CHECKPOINT_FILE);
  const lines = ["0", String(entries.size)];
  for (const [key, offset] of entries) {
    const dash = key.lastIndexOf("-");
    lines.push(`${key.slice(0, dash)} ${key.slice(dash + 1)} ${offset}`);
  }
  const tmp = path + ".tmp";
  let handle: FileHandle | undefined;
  try {
    handle = await open(tmp, "w");
    await writeFully(handle, tmp, Buffer.from(lines.join("\n") + "\n"), 0);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(tmp, path);
  } catch (err) {
    await handle?.close().catch(() => undefined);
    throw FlotillaError.is(err) ? err : storageError("writing", path, err);
  }
  await syncDir(logDir);
}

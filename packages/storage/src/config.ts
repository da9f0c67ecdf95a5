import { FlotillaError } from "@flotilla/common";
import { BATCH_HEADER_BYTES } from "@flotilla/protocol";
import { OFFSET_INDEX_ENTRY_BYTES, TIME_INDEX_ENTRY_BYTES } from "./indexes.js";

/**
 * Per-partition log settings. Each field names the Kafka broker property (`log.*`) and the
 * topic-level override it corresponds to; the broker maps its configuration onto this.
 */
export interface LogConfig {
  /** log.segment.bytes / segment.bytes: roll when a segment would exceed this. Default 1 GiB. */
  segmentBytes: number;
  /** log.roll.ms / segment.ms: roll a non-empty segment this long after its first append. Default 7 days. */
  segmentMs: number;
  /** log.retention.ms (or log.retention.hours * 3600000) / retention.ms; -1 = unlimited. Default 7 days. */
  retentionMs: number;
  /** log.retention.bytes / retention.bytes; -1 = unlimited (default). */
  retentionBytes: number;
  /** log.index.interval.bytes / index.interval.bytes: bytes of log between offset-index entries. Default 4096. */
  indexIntervalBytes: number;
  /** log.index.size.max.bytes / segment.index.bytes: largest index file; a full index rolls the segment. Default 10 MiB. */
  segmentIndexBytes: number;
  /** log.flush.interval.messages / flush.messages: fsync after this many records. Default: never force (rely on replication). */
  flushIntervalMessages?: number;
  /** log.flush.interval.ms / flush.ms: fsync when an append finds this long since the last fsync. Default: never force. */
  flushIntervalMs?: number;
  /**
   * cleanup.policy. "delete" (default): retention by time and size. "compact": the log
   * cleaner keeps the latest record per key and time/size retention is skipped.
   * "compact,delete": both.
   */
  cleanupPolicy?: "delete" | "compact" | "compact,delete";
  /** min.cleanable.dirty.ratio: clean once dirty closed bytes / all closed bytes reach this. Default 0.5. */
  minCleanableDirtyRatio?: number;
  /** delete.retention.ms: tombstones are kept this long after their segment's last write. Default 1 day. */
  deleteRetentionMs?: number;
  /** min.compaction.lag.ms: segments whose newest record is younger than this are not cleaned. Default 0. */
  minCompactionLagMs?: number;
}

/** Whether the log cleaner works on a log with this config. */
export function isCompacted(config: LogConfig): boolean {
  return config.cleanupPolicy === "compact" || config.cleanupPolicy === "compact,delete";
}

/** Whether time/size retention applies (policy includes delete). */
export function appliesRetention(config: LogConfig): boolean {
  return config.cleanupPolicy !== "compact";
}

const DAY_MS = 24 * 60 * 60 * 1000;

export const DEFAULT_LOG_CONFIG: LogConfig = Object.freeze({
  segmentBytes: 1024 * 1024 * 1024,
  segmentMs: 7 * DAY_MS,
  retentionMs: 7 * DAY_MS,
  retentionBytes: -1,
  indexIntervalBytes: 4096,
  segmentIndexBytes: 10 * 1024 * 1024,
});

/** Segment positions are int32 in the offset index, so no segment may pass 2^31 - 1 bytes. */
export const SEGMENT_BYTES_MAX = 0x7fffffff;
/** The smallest index that can hold two entries of either kind. */
export const SEGMENT_INDEX_BYTES_MIN = 2 * Math.max(OFFSET_INDEX_ENTRY_BYTES, TIME_INDEX_ENTRY_BYTES);

function checkInt(key: string, value: unknown, min: number, max: number): void {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new FlotillaError("INVALID_CONFIG", `${key} must be an integer between ${min} and ${max}, got ${String(value)}`);
  }
}

/**
 * Throws INVALID_CONFIG naming the Kafka property when a field is out of bounds. Called by
 * PartitionLog.open and updateConfig, so a bad value stops the caller before any file changes.
 */
export function validateLogConfig(config: LogConfig): void {
  checkInt("segment.bytes", config.segmentBytes, BATCH_HEADER_BYTES, SEGMENT_BYTES_MAX);
  checkInt("segment.ms", config.segmentMs, 1, Number.MAX_SAFE_INTEGER);
  checkInt("retention.ms", config.retentionMs, -1, Number.MAX_SAFE_INTEGER);
  checkInt("retention.bytes", config.retentionBytes, -1, Number.MAX_SAFE_INTEGER);
  checkInt("index.interval.bytes", config.indexIntervalBytes, 0, SEGMENT_BYTES_MAX);
  checkInt("segment.index.bytes", config.segmentIndexBytes, SEGMENT_INDEX_BYTES_MIN, SEGMENT_BYTES_MAX);
  if (config.flushIntervalMessages !== undefined) checkInt("flush.messages", config.flushIntervalMessages, 1, Number.MAX_SAFE_INTEGER);
  if (config.flushIntervalMs !== undefined) checkInt("flush.ms", config.flushIntervalMs, 0, Number.MAX_SAFE_INTEGER);
  const policy = config.cleanupPolicy;
  if (policy !== undefined && policy !== "delete" && policy !== "compact" && policy !== "compact,delete") {
    throw new FlotillaError("INVALID_CONFIG", `cleanup.policy must be delete, compact or compact,delete, got ${String(policy)}`);
  }
  const ratio = config.minCleanableDirtyRatio;
  if (ratio !== undefined && (typeof ratio !== "number" || !(ratio >= 0 && ratio <= 1))) {
    throw new FlotillaError("INVALID_CONFIG", `min.cleanable.dirty.ratio must be a number between 0 and 1, got ${String(ratio)}`);
  }
  if (config.deleteRetentionMs !== undefined) checkInt("delete.retention.ms", config.deleteRetentionMs, 0, Number.MAX_SAFE_INTEGER);
  if (config.minCompactionLagMs !== undefined) checkInt("min.compaction.lag.ms", config.minCompactionLagMs, 0, Number.MAX_SAFE_INTEGER);
}

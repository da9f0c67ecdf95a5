/**
 * The leader epoch cache of one partition replica (Kafka's LeaderEpochFileCache, KIP-101):
 * for every leader epoch that wrote to the log, the offset of its first record. A replica
 * that follows a new leader asks it where its own latest epoch ends (OffsetForLeaderEpoch)
 * and truncates anything past that: the divergent suffix a former leader wrote but never
 * replicated.
 *
 * File `leader-epoch-checkpoint` in the partition directory, UTF-8 text, Kafka's layout:
 *
 *     0                 <- format version
 *     2                 <- number of entries
 *     0 0               <- "epoch startOffset", epochs and start offsets strictly increasing
 *     3 1200
 *
 * Written whole to `leader-epoch-checkpoint.tmp`, fsynced, renamed over the file, and the
 * directory fsynced, so a crash leaves the old or the new file, never a torn one. Entries
 * change rarely (a new epoch, a truncation, retention), so each change is written at once.
 *
 * Invariants: epochs strictly increase and start offsets strictly increase along the list.
 */
import { readFile, rename } from "node:fs/promises";
import { join } from "node:path";
import { FlotillaError, assert } from "@flotilla/common";
import type { Logger } from "@flotilla/common/logger";
import { isNotFound, storageError, syncDir, writeWholeFile } from "./io.js";

export const LEADER_EPOCH_CHECKPOINT_FILE = "leader-epoch-checkpoint";
const CHECKPOINT_VERSION = 0;
/** Kafka's sentinels for "no epoch" / "no offset" in OffsetForLeaderEpoch answers. */
export const UNDEFINED_EPOCH = -1;
export const UNDEFINED_EPOCH_OFFSET = -1;

export interface EpochEntry {
  readonly epoch: number;
  readonly startOffset: number;
}

export class LeaderEpochCache {
  private entries: EpochEntry[];

  private constructor(
    private readonly dir: string,
    entries: EpochEntry[],
    private readonly logger: Logger,
  ) {
    this.entries = entries;
  }

  /** Reads the checkpoint in `dir`; a missing file is an empty cache. A malformed one is STORAGE_CORRUPT. */
  static async load(dir: string, logger: Logger): Promise<LeaderEpochCache> {
    const path = join(dir, LEADER_EPOCH_CHECKPOINT_FILE);
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (err) {
      if (isNotFound(err)) return new LeaderEpochCache(dir, [], logger);
      throw storageError("reading", path, err);
    }
    return new LeaderEpochCache(dir, parseCheckpoint(text, path), logger);
  }

  /** Entries oldest first (a copy). */
  all(): EpochEntry[] {
    return [...this.entries];
  }

  /** The epoch of the last entry, or UNDEFINED_EPOCH when there is none. */
  get latestEpoch(): number {
    return this.entries[this.entries.length - 1]?.epoch ?? UNDEFINED_EPOCH;
  }

  /**
   * Records that `epoch` starts at `startOffset`. No-op unless `epoch` is newer than the
   * latest one (appends within an epoch do not change the cache). Entries at or past
   * `startOffset` are dropped first: they describe records that are no longer in the log.
   */
  async assign(epoch: number, startOffset: number): Promise<void> {
    assert(Number.isSafeInteger(epoch) && epoch >= 0 && Number.isSafeInteger(startOffset) && startOffset >= 0, () => `assign(${epoch}, ${startOffset})`);
    if (epoch <= this.latestEpoch) return;
    const kept = this.entries.filter((e) => e.startOffset < startOffset);
    kept.push({ epoch, startOffset });
    await this.replace(kept);
    this.logger.info({ epoch, startOffset }, "new leader epoch in the log");
  }

  /**
   * Kafka's endOffsetFor: where `epoch` ends in this log, as the leader answers a follower
   * that asks about its latest epoch.
   * - the latest epoch ends at the log end offset;
   * - an older epoch ends where the next higher epoch starts; the answer names the largest
   *   epoch at or below the one asked for (the follower may not know it);
   * - an epoch below the first entry: that epoch, ending at the first entry's start;
   * - no entries, UNDEFINED_EPOCH asked, or an epoch newer than all: (-1, -1).
   */
  endOffsetFor(epoch: number, logEndOffset: number): { epoch: number; endOffset: number } {
    const undefinedAnswer = { epoch: UNDEFINED_EPOCH, endOffset: UNDEFINED_EPOCH_OFFSET };
    if (epoch === UNDEFINED_EPOCH || this.entries.length === 0) return undefinedAnswer;
    if (epoch === this.latestEpoch) return { epoch, endOffset: logEndOffset };
    const higherIndex = this.entries.findIndex((e) => e.epoch > epoch);
    if (higherIndex < 0) return undefinedAnswer;
    const higher = this.entries[higherIndex]!;
    if (higherIndex === 0) return { epoch, endOffset: higher.startOffset };
    return { epoch: this.entries[higherIndex - 1]!.epoch, endOffset: higher.startOffset };
  }

  /** After truncating the log to `endOffset`: drops entries starting at or past it. */
  async truncateFromEnd(endOffset: number): Promise<void> {
    const kept = this.entries.filter((e) => e.startOffset < endOffset);
    if (kept.length === this.entries.length) return;
    await this.replace(kept);
  }

  /**
   * After the log start moved to `startOffset` (retention): entries wholly before it go,
   * and the epoch in force at `startOffset` now starts there.
   */
  async truncateFromStart(startOffset: number): Promise<void> {
    let lastBefore = -1;
    for (let i = 0; i < this.entries.length; i++) if (this.entries[i]!.startOffset <= startOffset) lastBefore = i;
    if (lastBefore < 0) return;
    const head = this.entries[lastBefore]!;
    if (lastBefore === 0 && head.startOffset === startOffset) return;
    await this.replace([{ epoch: head.epoch, startOffset }, ...this.entries.slice(lastBefore + 1)]);
  }

  /** Forgets every entry (the log was emptied and restarted at another offset). */
  async clear(): Promise<void> {
    if (this.entries.length === 0) return;
    await this.replace([]);
  }

  private async replace(entries: EpochEntry[]): Promise<void> {
    for (let i = 1; i < entries.length; i++) {
      assert(entries[i]!.epoch > entries[i - 1]!.epoch && entries[i]!.startOffset > entries[i - 1]!.startOffset, "leader epoch entries must increase in epoch and start offset");
    }
    const path = join(this.dir, LEADER_EPOCH_CHECKPOINT_FILE);
    const tmp = `${path}.tmp`;
    const lines = [String(CHECKPOINT_VERSION), String(entries.length), ...entries.map((e) => `${e.epoch} ${e.startOffset}`)];
    await writeWholeFile(tmp, Buffer.from(lines.join("\n") + "\n", "utf8"), { sync: true });
    try {
      await rename(tmp, path);
    } catch (err) {
      throw storageError("renaming", tmp, err);
    }
    await syncDir(this.dir);
    this.entries = entries;
  }
}

function parseCheckpoint(text: string, path: string): EpochEntry[] {
  const bad = (why: string) => new FlotillaError("STORAGE_CORRUPT", `${path}: ${why}`);
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  if (lines.length < 2) throw bad("expected a version line and a count line");
  if (Number(lines[0]) !== CHECKPOINT_VERSION) throw bad(`unknown version "${lines[0]}", expected ${CHECKPOINT_VERSION}`);
  const count = Number(lines[1]);
  if (!Number.isSafeInteger(count) || count < 0 || count !== lines.length - 2) throw bad(`count "${lines[1]}" does not match the ${lines.length - 2} entry lines`);
  const entries: EpochEntry[] = [];
  for (const line of lines.slice(2)) {
    const parts = line.trim().split(/\s+/);
    const epoch = Number(parts[0]);
    const startOffset = Number(parts[1]);
    if (parts.length !== 2 || !Number.isSafeInteger(epoch) || !Number.isSafeInteger(startOffset) || epoch < 0 || startOffset < 0) throw bad(`entry "${line}" is not "epoch startOffset"`);
    const previous = entries[entries.length - 1];
    if (previous && (epoch <= previous.epoch || startOffset <= previous.startOffset)) throw bad(`entry "${line}" does not increase on "${previous.epoch} ${previous.startOffset}"`);
    entries.push({ epoch, startOffset });
  }
  return entries;
}

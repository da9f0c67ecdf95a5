import { mkdir, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { FlotillaError, topicNameProblem, type Clock } from "@flotilla/common";
import type { Logger } from "@flotilla/common/logger";
import { isCompacted, type LogConfig } from "./config.js";
import {
  LOG_CLEANER_BACKOFF_MS_DEFAULT,
  cleanLog,
  planCleaning,
  readCleanerCheckpoint,
  writeCleanerCheckpoint,
  type CleanResult,
} from "./log-cleaner.js";
import { storageError } from "./io.js";
import { DELETE_DIR_SUFFIX, PartitionLog } from "./partition-log.js";

/** Kafka's log.retention.check.interval.ms default. */
export const RETENTION_CHECK_INTERVAL_MS_DEFAULT = 300_000;
/** Partition logs opened at once at start-up (Kafka: num.recovery.threads.per.data.dir, per dir). */
export const RECOVERY_THREADS_DEFAULT = 2;

export interface LogManagerOptions {
  /** log.dirs: one or more directories, each holding `<topic>-<partition>` directories. */
  logDirs: readonly string[];
  clock: Clock;
  logger: Logger;
  /** The config for a partition found on disk at start-up; the broker applies topic overrides later with updateConfig. */
  configFor: (topic: string, partition: number) => LogConfig;
  /** Partition logs opened (and recovered) concurrently at start-up. Default 2 per log dir. */
  recoveryThreadsMax?: number;
  /** Passed to each PartitionLog: closed segments kept open at once. */
  openSegmentsMax?: number;
  /** log.cleaner.dedupe.buffer.size: bound on the cleaner's key map. Default 128 MiB. */
  cleanerDedupeBufferBytes?: number;
  /** Compacted logs cleaned per cleaner round at most (bounded work per round). Default 4. */
  cleanerLogsPerRoundMax?: number;
  /** log.cleaner.enable: startRetention also starts the cleaner loop. Default true, as in Kafka. */
  cleanerEnabled?: boolean;
  /** log.cleaner.backoff.ms: pause between cleaner rounds. Default 15000. */
  cleanerBackoffMs?: number;
}

/** Compacted logs cleaned per round unless told otherwise. */
export const CLEANER_LOGS_PER_ROUND_DEFAULT = 4;

export interface TopicPartition {
  topic: string;
  partition: number;
}

/** `<topic>-<partition>`, Kafka's partition directory name. */
export function topicPartitionDirName(topic: string, partition: number): string {
  return `${topic}-${partition}`;
}

/**
 * Parses `<topic>-<partition>`. Topic names may contain '-', so the partition is what
 * follows the LAST '-'. Returns undefined for names that are not partition directories.
 */
export function parseTopicPartitionDir(name: string): TopicPartition | undefined {
  const dash = name.lastIndexOf("-");
  if (dash <= 0) return undefined;
  const topic = name.slice(0, dash);
  const digits = name.slice(dash + 1);
  if (!/^\d{1,9}$/.test(digits) || (digits.length > 1 && digits.startsWith("0"))) return undefined;
  if (topicNameProblem(topic) !== undefined) return undefined;
  return { topic, partition: Number(digits) };
}

function keyOf(topic: string, partition: number): string {
  return topicPartitionDirName(topic, partition);
}

/** Runs `work` over `items` with at most `limit` in flight; rejects with the first failure after all settle. */
async function forEachBounded<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let firstError: unknown;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++]!;
      try {
        await work(item);
      } catch (err) {
        firstError ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (firstError !== undefined) throw firstError;
}

/**
 * Owns the partition logs of one broker across its log.dirs: opens every partition directory
 * at start-up, creates new ones in the dir holding the fewest, deletes them, and runs
 * retention on a timer.
 *
 * Only directories named `<topic>-<partition>` (a valid topic name, a partition number) are
 * treated as partitions; other entries in a log dir are left alone with a warning, and
 * `<name>-delete` directories, left by a deletion that a crash interrupted, are removed.
 */
export class LogManager {
  private readonly logs = new Map<string, PartitionLog>();
  private readonly dirOf = new Map<string, string>();
  private readonly creating = new Map<string, Promise<PartitionLog>>();
  private readonly deleting = new Map<string, Promise<void>>();
  private retentionTimer: NodeJS.Timeout | undefined;
  private retentionRun: Promise<void> | undefined;
  private cleanerTimer: NodeJS.Timeout | undefined;
  private cleanerRun: Promise<unknown> | undefined;
  /** Per log dir: `<topic>-<partition>` -> offset below which the log is clean (cleaner-offset-checkpoint). */
  private readonly cleanerCheckpoints = new Map<string, Map<string, number>>();
  private closed = false;

  private constructor(private readonly options: LogManagerOptions) {}

  static async open(options: LogManagerOptions): Promise<LogManager> {
    if (options.logDirs.length === 0) throw new FlotillaError("INVALID_CONFIG", "log.dirs must name at least one directory");
    const manager = new LogManager(options);
    const found: { dir: string; path: string; topic: string; partition: number }[] = [];
    for (const dir of options.logDirs) {
      try {
        await mkdir(dir, { recursive: true });
      } catch (err) {
        throw storageError("creating log dir", dir, err);
      }
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        throw storageError("listing log dir", dir, err);
      }
      for (const entry of entries) {
        if (!entry.isDirectory()) continue;
        const path = join(dir, entry.name);
        if (entry.name.endsWith(DELETE_DIR_SUFFIX)) {
          options.logger.info({ path }, "finishing the deletion of a partition directory");
          await rm(path, { recursive: true, force: true });
          continue;
        }
        const parsed = parseTopicPartitionDir(entry.name);
        if (parsed === undefined) {
          options.logger.warn({ path }, "ignoring a directory in log.dirs that is not named <topic>-<partition>");
          continue;
        }
        const key = keyOf(parsed.topic, parsed.partition);
        const other = found.find((f) => keyOf(f.topic, f.partition) === key);
        if (other !== undefined) {
          throw new FlotillaError("STORAGE_CORRUPT", `partition ${key} has a directory in two log dirs: ${other.path} and ${path}`);
        }
        found.push({ dir, path, ...parsed });
      }
    }
    const startedMs = options.clock.monotonicMs();
    try {
      await forEachBounded(found, options.recoveryThreadsMax ?? RECOVERY_THREADS_DEFAULT * options.logDirs.length, async (f) => {
        const log = await PartitionLog.open({
          dir: f.path,
          config: options.configFor(f.topic, f.partition),
          clock: options.clock,
          logger: options.logger,
          topic: f.topic,
          partition: f.partition,
          openSegmentsMax: options.openSegmentsMax,
        });
        manager.logs.set(keyOf(f.topic, f.partition), log);
        manager.dirOf.set(keyOf(f.topic, f.partition), f.dir);
      });
    } catch (err) {
      await manager.closeAll();
      throw err;
    }
    options.logger.info({ partitions: found.length, logDirs: options.logDirs, durationMs: options.clock.monotonicMs() - startedMs }, "log manager opened");
    return manager;
  }

  get(topic: string, partition: number): PartitionLog | undefined {
    return this.logs.get(keyOf(topic, partition));
  }

  /** Every open partition log. */
  all(): PartitionLog[] {
    return [...this.logs.values()];
  }

  /** The log dir holding a partition, when it exists. */
  logDirOf(topic: string, partition: number): string | undefined {
    return this.dirOf.get(keyOf(topic, partition));
  }

  /**
   * The partition's log, created empty (in the log dir with the fewest partitions) when
   * absent. `config` applies only when creating; use updateConfig on an existing log.
   */
  async getOrCreate(topic: string, partition: number, config: LogConfig): Promise<PartitionLog> {
    this.ensureOpen();
    const problem = topicNameProblem(topic);
    if (problem !== undefined) throw new FlotillaError("INVALID_TOPIC_EXCEPTION", problem);
    if (!Number.isSafeInteger(partition) || partition < 0) throw new FlotillaError("INVALID_PARTITIONS", `partition ${partition} of ${topic} is not a non-negative integer`);
    const key = keyOf(topic, partition);
    const existing = this.logs.get(key);
    if (existing !== undefined) return existing;
    const pending = this.creating.get(key);
    if (pending !== undefined) return pending;
    const created = (async () => {
      await this.deleting.get(key);
      this.ensureOpen();
      const dir = this.leastLoadedDir();
      this.dirOf.set(key, dir);
      try {
        const log = await PartitionLog.open({
          dir: join(dir, key),
          config,
          clock: this.options.clock,
          logger: this.options.logger,
          topic,
          partition,
          openSegmentsMax: this.options.openSegmentsMax,
        });
        this.logs.set(key, log);
        return log;
      } catch (err) {
        this.dirOf.delete(key);
        throw err;
      }
    })().finally(() => this.creating.delete(key));
    this.creating.set(key, created);
    return created;
  }

  /** Deletes the partition's log and directory. Returns false when there was none. */
  async delete(topic: string, partition: number): Promise<boolean> {
    const key = keyOf(topic, partition);
    await this.creating.get(key)?.catch(() => undefined);
    const log = this.logs.get(key);
    if (log === undefined) return false;
    this.logs.delete(key);
    const done = log.deleteFiles().finally(() => {
      this.dirOf.delete(key);
      this.deleting.delete(key);
    });
    this.deleting.set(key, done);
    await done;
    return true;
  }

  private leastLoadedDir(): string {
    const counts = new Map<string, number>(this.options.logDirs.map((d) => [d, 0]));
    for (const dir of this.dirOf.values()) counts.set(dir, (counts.get(dir) ?? 0) + 1);
    let best = this.options.logDirs[0]!;
    for (const dir of this.options.logDirs) if (counts.get(dir)! < counts.get(best)!) best = dir;
    return best;
  }

  /**
   * Runs applyRetention on every log every `intervalMs` (log.retention.check.interval.ms,
   * default 300000). Runs never overlap; a failing log is logged and skipped. Unless
   * cleanerEnabled is false, also starts the log cleaner (startCleaner with cleanerBackoffMs):
   * both are the log manager's background upkeep, stopped together by closeAll.
   */
  startRetention(intervalMs: number = RETENTION_CHECK_INTERVAL_MS_DEFAULT): void {
    this.ensureOpen();
    if (this.options.cleanerEnabled ?? true) this.startCleaner(this.options.cleanerBackoffMs ?? LOG_CLEANER_BACKOFF_MS_DEFAULT);
    if (!Number.isSafeInteger(intervalMs) || intervalMs < 1) {
      throw new FlotillaError("INVALID_CONFIG", `log.retention.check.interval.ms must be a positive integer, got ${intervalMs}`);
    }
    if (this.retentionTimer !== undefined) return;
    const schedule = (): void => {
      this.retentionTimer = setTimeout(() => {
        this.retentionRun = this.runRetention()
          .then(() => undefined)
          .finally(() => {
            this.retentionRun = undefined;
            if (this.retentionTimer !== undefined && !this.closed) schedule();
          });
      }, intervalMs);
      this.retentionTimer.unref();
    };
    schedule();
  }

  async stopRetention(): Promise<void> {
    if (this.retentionTimer !== undefined) clearTimeout(this.retentionTimer);
    this.retentionTimer = undefined;
    await this.retentionRun;
  }

  /** One retention pass over every log, at the clock's now. Returns the segments deleted. */
  async runRetention(): Promise<number> {
    let deleted = 0;
    for (const log of this.all()) {
      try {
        deleted += (await log.applyRetention(this.options.clock.nowMs())).deletedSegments;
      } catch (err) {
        // A log closed or deleted under the pass is not a failure of retention.
        if (FlotillaError.is(err, "SHUTTING_DOWN") || FlotillaError.is(err, "NOT_LEADER_OR_FOLLOWER")) continue;
        this.options.logger.warn({ err, topic: log.topic, partition: log.partition }, "retention failed for a log");
      }
    }
    return deleted;
  }

  /**
   * Runs the log cleaner every `backoffMs` (log.cleaner.backoff.ms, default 15000): each round
   * cleans the dirtiest compacted logs (see runCleaner). Rounds never overlap.
   */
  startCleaner(backoffMs: number = LOG_CLEANER_BACKOFF_MS_DEFAULT): void {
    this.ensureOpen();
    if (!Number.isSafeInteger(backoffMs) || backoffMs < 1) {
      throw new FlotillaError("INVALID_CONFIG", `log.cleaner.backoff.ms must be a positive integer, got ${backoffMs}`);
    }
    if (this.cleanerTimer !== undefined) return;
    const schedule = (): void => {
      this.cleanerTimer = setTimeout(() => {
        this.cleanerRun = this.runCleaner()
          .catch((err: unknown) => this.options.logger.warn({ err }, "log cleaner round failed"))
          .finally(() => {
            this.cleanerRun = undefined;
            if (this.cleanerTimer !== undefined && !this.closed) schedule();
          });
      }, backoffMs);
      this.cleanerTimer.unref();
    };
    schedule();
  }

  async stopCleaner(): Promise<void> {
    if (this.cleanerTimer !== undefined) clearTimeout(this.cleanerTimer);
    this.cleanerTimer = undefined;
    await this.cleanerRun;
  }

  /**
   * One cleaner round at the clock's now: of the logs whose cleanup.policy includes compact
   * and whose dirty ratio reaches min.cleanable.dirty.ratio, cleans the dirtiest (at most
   * cleanerLogsPerRoundMax) and moves their checkpoints. A failing log is logged and skipped.
   */
  async runCleaner(): Promise<CleanResult[]> {
    const nowMs = this.options.clock.nowMs();
    const candidates: { log: PartitionLog; key: string; logDir: string; checkpoint: number; ratio: number }[] = [];
    for (const [key, log] of this.logs) {
      const config = log.currentConfig;
      const logDir = this.dirOf.get(key);
      if (!isCompacted(config) || logDir === undefined) continue;
      const checkpoints = await this.checkpointsOf(logDir);
      let checkpoint = Math.max(checkpoints.get(key) ?? 0, log.logStartOffset);
      const truncatedTo = log.takeTruncationMark();
      if (truncatedTo !== undefined && truncatedTo < checkpoint) {
        // Offsets past a truncation may be written again: they are dirty.
        checkpoint = Math.max(truncatedTo, log.logStartOffset);
        checkpoints.set(key, checkpoint);
      }
      let plan;
      try {
        plan = planCleaning(log.cleanableSegments(), checkpoint, config, nowMs);
      } catch (err) {
        if (FlotillaError.is(err)) continue; // closed, deleted or offline
        throw err;
      }
      if (plan.dirtyBytes === 0 || plan.dirtyRatio < (config.minCleanableDirtyRatio ?? 0.5)) continue;
      candidates.push({ log, key, logDir, checkpoint, ratio: plan.dirtyRatio });
    }
    candidates.sort((a, b) => b.ratio - a.ratio);
    const results: CleanResult[] = [];
    for (const c of candidates.slice(0, this.options.cleanerLogsPerRoundMax ?? CLEANER_LOGS_PER_ROUND_DEFAULT)) {
      if (this.closed) break;
      try {
        const result = await cleanLog(c.log, {
          checkpoint: c.checkpoint,
          nowMs,
          clock: this.options.clock,
          logger: this.options.logger,
          dedupeBufferBytes: this.options.cleanerDedupeBufferBytes,
        });
        if (result === undefined) continue;
        results.push(result);
        if (result.swapped) {
          const checkpoints = await this.checkpointsOf(c.logDir);
          checkpoints.set(c.key, result.endOffset);
          for (const key of [...checkpoints.keys()]) if (this.dirOf.get(key) !== c.logDir) checkpoints.delete(key);
          await writeCleanerCheckpoint(c.logDir, checkpoints);
        }
        this.options.logger.info(
          {
            topic: result.topic,
            partition: result.partition,
            dirtyRatio: Number(c.ratio.toFixed(3)),
            cleanedUpToOffset: result.endOffset,
            bytesBefore: result.bytesBefore,
            bytesAfter: result.bytesAfter,
            recordsRemoved: result.recordsRemoved,
            segmentsRewritten: result.segmentsRewritten,
            swapped: result.swapped,
            durationMs: result.durationMs,
          },
          result.swapped ? "log cleaned" : "log changed during cleaning; cleaned segments discarded",
        );
      } catch (err) {
        if (FlotillaError.is(err, "SHUTTING_DOWN") || FlotillaError.is(err, "NOT_LEADER_OR_FOLLOWER")) continue;
        this.options.logger.warn({ err, topic: c.log.topic, partition: c.log.partition }, "cleaning failed for a log");
      }
    }
    return results;
  }

  private async checkpointsOf(logDir: string): Promise<Map<string, number>> {
    let checkpoints = this.cleanerCheckpoints.get(logDir);
    if (checkpoints === undefined) {
      checkpoints = await readCleanerCheckpoint(logDir);
      this.cleanerCheckpoints.set(logDir, checkpoints);
    }
    return checkpoints;
  }

  /** Stops retention and closes every log (clean shutdown). */
  async closeAll(): Promise<void> {
    this.closed = true;
    await this.stopCleaner();
    await this.stopRetention();
    await Promise.allSettled([...this.creating.values(), ...this.deleting.values()]);
    const logs = this.all();
    this.logs.clear();
    this.dirOf.clear();
    await forEachBounded(logs, Math.max(1, (this.options.recoveryThreadsMax ?? RECOVERY_THREADS_DEFAULT) * this.options.logDirs.length), (log) => log.close());
  }

  private ensureOpen(): void {
    if (this.closed) throw new FlotillaError("SHUTTING_DOWN", "log manager is closed");
  }
}

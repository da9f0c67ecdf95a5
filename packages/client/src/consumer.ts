import { FlotillaError, type ErrorName } from "@flotilla/common";
import { EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, errorFromFields, viewBatches, type FetchResponse, type RecordBatchView, type RecordCursor } from "@flotilla/protocol";
import { tpKey, type TopicPartition } from "./accumulator.js";
import type { Cluster } from "./cluster.js";
import { checkInt, makeCluster, resolveCommon, type CommonClientOptions, type ResolvedCommon } from "./config.js";
import { batchesFromFetch } from "./fetch-records.js";
import type { RecordHeader } from "./records.js";
import { withRetries } from "./retry.js";

export type OffsetResetStrategy = "earliest" | "latest" | "none";

export interface ConsumerOptions extends CommonClientOptions {
  /** Kafka's fetch.max.wait.ms: how long the broker holds a fetch waiting for fetch.min.bytes. Default 500. */
  fetchMaxWaitMs?: number;
  /** Kafka's fetch.min.bytes: the broker answers once this many bytes are available. Default 1. */
  fetchMinBytes?: number;
  /** Kafka's fetch.max.bytes: bytes per fetch response (at least one batch is always returned). Default 52428800. */
  fetchMaxBytes?: number;
  /** Kafka's max.partition.fetch.bytes: bytes per partition per fetch. Default 1048576. */
  maxPartitionFetchBytes?: number;
  /** Kafka's max.poll.records: records one poll() returns at most. Default 500. */
  maxPollRecords?: number;
  /**
   * Kafka's auto.offset.reset: where a partition without a position starts, and where a
   * consumer goes when its position is out of range. "none" fails instead. Default "latest",
   * as in Kafka.
   */
  autoOffsetReset?: OffsetResetStrategy;
  /** Kafka's default.api.timeout.ms: bound of position lookups (ListOffsets) and metadata waits. Default 60000. */
  defaultApiTimeoutMs?: number;
}

/** One record as the consumer returns it. */
export interface ConsumerRecord {
  topic: string;
  partition: number;
  offset: number;
  /** ms since the epoch: CreateTime, or LogAppendTime when the topic uses it. */
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: RecordHeader[];
}

export interface ConsumerBatch {
  topic: string;
  partition: number;
  /** The partition's high watermark when these records were fetched. */
  highWatermark: number;
  messages: ConsumerRecord[];
}

/**
 * One fetched record batch of a partition, as pollBatches() hands it out: the batch's bytes
 * (a RecordBatchView, decompressed once) and a cursor over the records it delivers, so a
 * caller that works in bulk pays no allocation per record. The records delivered are those
 * at or after `fromOffset`: a fetch returns whole batches, so the batch holding the
 * position may begin before it.
 */
export class ConsumerRecordBatch {
  /** Records this batch delivers (those at or after fromOffset). */
  readonly recordCount: number;

  constructor(
    readonly topic: string,
    readonly partition: number,
    /** The batch: header fields, codec, timestamp type, bytes. */
    readonly view: RecordBatchView,
    /** The first offset this batch delivers; >= view.baseOffset. */
    readonly fromOffset: number,
    recordCount?: number,
  ) {
    this.recordCount = recordCount ?? (fromOffset <= view.baseOffset ? view.recordCount : countFrom(view, fromOffset));
  }

  get baseOffset(): number {
    return this.view.baseOffset;
  }

  /** baseOffset + lastOffsetDelta; the partition's position after this batch is lastOffset + 1. */
  get lastOffset(): number {
    return this.view.lastOffset;
  }

  /**
   * A new cursor over the delivered records (see RecordCursor: `while (c.next())` then
   * c.offset, c.timestamp, c.keyLength, c.valueLength, and c.key(), c.value(), c.headers()
   * as views). Throws CORRUPT_MESSAGE for a malformed record; the CRC was checked when the
   * batch was fetched.
   */
  cursor(): RecordCursor {
    return this.view.cursor(this.fromOffset);
  }

  /** The delivered records as ConsumerRecord objects (one allocation each; prefer cursor() in hot loops). */
  records(): ConsumerRecord[] {
    const out: ConsumerRecord[] = [];
    const c = this.cursor();
    while (c.next()) out.push(toConsumerRecord(this.topic, this.partition, c));
    return out;
  }
}

/** One partition's part of a pollBatches() result. */
export interface PartitionBatches {
  topic: string;
  partition: number;
  /** The partition's high watermark when these batches were fetched. */
  highWatermark: number;
  batches: ConsumerRecordBatch[];
  /** Records in `batches`. */
  recordCount: number;
  /** The partition's position after these batches: the offset to commit once they are processed. */
  nextOffset: number;
}

/** What pollBatches() returns, like Kafka's ConsumerRecords: the fetched batches, by partition. */
export interface ConsumerRecordBatches {
  /** Records in every batch of every partition. */
  count: number;
  partitions: PartitionBatches[];
}

/** Where seek() moves a partition: an offset, either end, or the first record at or after a time. */
export type SeekTarget = { offset: number } | "earliest" | "latest" | { timestamp: number };

/** Whole topics or single partitions to assign. */
export type AssignmentInput = { topic: string; partition?: number };

export type RunOptions = { eachMessage: (message: ConsumerRecord) => Promise<void> | void } | { eachBatch: (batch: ConsumerBatch) => Promise<void> | void };

type Reset = "earliest" | "latest" | { timestamp: number };

interface PartitionState {
  tp: TopicPartition;
  /** Offset of the next record to return to the user; undefined until resolved. */
  position: number | undefined;
  /** Offset of the next fetch (>= position: records in between are buffered). */
  fetchOffset: number | undefined;
  /** How to find the position when it is undefined. */
  reset: Reset | undefined;
  /**
   * Fetched batches, in offset order; those from `bufferedHead` on are not yet wholly
   * returned. Records are decoded only as poll() takes them (through `cursor`, which walks
   * buffered[bufferedHead]) or not at all (pollBatches() hands out whole batches). Taking
   * advances the head instead of splicing; the array is dropped once all of it was taken.
   */
  buffered: ConsumerRecordBatch[];
  bufferedHead: number;
  /** poll()'s place in buffered[bufferedHead]: its current record was already returned. */
  cursor: RecordCursor | undefined;
  /** Bytes of the batches from bufferedHead on: what decides whether to fetch ahead. */
  bufferedBytes: number;
  highWatermark: number;
  paused: boolean;
  /** Bumped by seek(), assign() and resets, so that answers to older fetches are dropped. */
  generation: number;
  /** Monotonic ms before which this partition is not fetched (after a retriable error). */
  backoffUntilMs: number;
  /**
   * After a seek by timestamp: records are dropped until the first one at or after this
   * time. The broker answers ListOffsets by timestamp per batch (the first batch whose max
   * timestamp is >= the target), so the offset it gives may sit before the record sought.
   */
  timestampFloor: number | undefined;
}

/** Errors that mean the client's metadata (leaders, partitions) is out of date. */
const METADATA_ERRORS = new Set<ErrorName>([
  "NOT_LEADER_OR_FOLLOWER",
  "UNKNOWN_TOPIC_OR_PARTITION",
  "LEADER_NOT_AVAILABLE",
  "NETWORK_EXCEPTION",
  "FENCED_LEADER_EPOCH",
  "UNKNOWN_LEADER_EPOCH",
  "REPLICA_NOT_AVAILABLE",
  "KAFKA_STORAGE_ERROR",
  "SHUTTING_DOWN",
]);

/**
 * Reads records from assigned partitions (manual assignment; GroupConsumer builds on it).
 * Fetches are long-polls (fetch.max.wait.ms, fetch.min.bytes), at most one in flight per
 * broker, so the leaders of different partitions are fetched from in parallel.
 *
 * Fetching ahead: a partition is fetched while it has at most max.partition.fetch.bytes of
 * fetched batches buffered, and an answer that brought records is followed at once by the
 * next fetch. So the next answer is on its way while the caller processes the last one
 * (Kafka's consumer sends fetches before returning records for the same reason), and
 * buffered memory stays below about 2 x max.partition.fetch.bytes per partition (plus one
 * batch larger than the limit, which a broker still returns whole). Batches are buffered as
 * fetched (RecordBatchView: CRC checked, decompressed once); a record is decoded only when
 * it is returned.
 *
 * Ways to read: `poll()` (an object per record), `pollBatches()` (the fetched batches with
 * lazy cursors, nothing per record), `for await (const m of consumer)`, and
 * `run({ eachMessage })` / `run({ eachBatch })`. Each record is returned once, in offset
 * order per partition; `position(tp)` is the offset after the last record returned (or
 * after the last batch, with pollBatches()), from which fetching goes on.
 */
export class Consumer implements AsyncIterable<ConsumerRecord> {
  private readonly common: ResolvedCommon;
  private readonly cluster: Cluster;
  private readonly fetchMaxWaitMs: number;
  private readonly fetchMinBytes: number;
  private readonly fetchMaxBytes: number;
  private readonly maxPartitionFetchBytes: number;
  private readonly maxPollRecords: number;
  private readonly autoOffsetReset: OffsetResetStrategy;
  private readonly defaultApiTimeoutMs: number;

  private readonly partitions = new Map<string, PartitionState>();
  /** Brokers with a fetch in flight, and how to cancel it. */
  private readonly inflightFetches = new Map<number, AbortController>();
  private fatal: FlotillaError | undefined;
  private closed = false;
  private wakers: (() => void)[] = [];
  /** Round-robin start for taking buffered records, so no partition starves the others. */
  private takeCursor = 0;

  constructor(options: ConsumerOptions) {
    this.common = resolveCommon(options, "consumer");
    this.fetchMaxWaitMs = checkInt("fetchMaxWaitMs", options.fetchMaxWaitMs ?? 500, 0);
    this.fetchMinBytes = checkInt("fetchMinBytes", options.fetchMinBytes ?? 1, 0);
    this.fetchMaxBytes = checkInt("fetchMaxBytes", options.fetchMaxBytes ?? 52_428_800, 1);
    this.maxPartitionFetchBytes = checkInt("maxPartitionFetchBytes", options.maxPartitionFetchBytes ?? 1_048_576, 1);
    this.maxPollRecords = checkInt("maxPollRecords", options.maxPollRecords ?? 500, 1);
    this.defaultApiTimeoutMs = checkInt("defaultApiTimeoutMs", options.defaultApiTimeoutMs ?? 60_000, 1);
    const reset = options.autoOffsetReset ?? "latest";
    if (reset !== "earliest" && reset !== "latest" && reset !== "none") {
      throw new FlotillaError("INVALID_CONFIG", `autoOffsetReset must be earliest, latest or none, got ${String(reset)}`);
    }
    this.autoOffsetReset = reset;
    this.cluster = makeCluster(this.common);
  }

  /**
   * Replaces the assignment. `{topic}` alone assigns every partition of the topic (looked up
   * in the metadata, so this waits for it). Partitions kept from the old assignment keep
   * their positions; new ones start per autoOffsetReset unless seek() says otherwise.
   */
  async assign(assignment: readonly AssignmentInput[]): Promise<void> {
    this.checkOpen();
    const deadlineMs = this.common.clock.monotonicMs() + this.defaultApiTimeoutMs;
    const wanted: TopicPartition[] = [];
    for (const a of assignment) {
      const info = await withRetries(() => this.cluster.topic(a.topic, deadlineMs), this.common.retry, this.common, { deadlineMs });
      if (a.partition === undefined) {
        for (const p of info.partitions) wanted.push({ topic: a.topic, partition: p.partition });
      } else {
        if (!Number.isInteger(a.partition) || a.partition < 0 || a.partition >= info.partitions.length) {
          throw new FlotillaError("UNKNOWN_TOPIC_OR_PARTITION", `topic "${a.topic}" has no partition ${a.partition} (it has ${info.partitions.length})`);
        }
        wanted.push({ topic: a.topic, partition: a.partition });
      }
    }
    const keys = new Set(wanted.map(tpKey));
    for (const [key, st] of this.partitions) {
      if (!keys.has(key)) {
        st.generation++;
        this.partitions.delete(key);
      }
    }
    for (const tp of wanted) {
      const key = tpKey(tp);
      if (this.partitions.has(key)) continue;
      this.partitions.set(key, {
        tp,
        position: undefined,
        fetchOffset: undefined,
        reset: this.autoOffsetReset === "none" ? undefined : this.autoOffsetReset,
        buffered: [],
        bufferedHead: 0,
        cursor: undefined,
        bufferedBytes: 0,
        highWatermark: -1,
        paused: false,
        generation: 0,
        backoffUntilMs: 0,
        timestampFloor: undefined,
      });
    }
    this.wake();
  }

  /** The current assignment, sorted by topic then partition. */
  assignment(): TopicPartition[] {
    return [...this.partitions.values()].map((s) => s.tp).sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1));
  }

  /**
   * Moves an assigned partition. An offset applies at once; "earliest", "latest" and
   * timestamps are looked up (ListOffsets) before the next fetch. A timestamp after every
   * record moves to the end (the latest offset). After a timestamp seek, records before the
   * first one at or after the time are skipped even if the broker's answer points into the
   * batch before it (the broker answers per batch), so position() may at first be a little
   * before the first record returned. Buffered records are dropped.
   */
  seek(tp: TopicPartition, target: SeekTarget): void {
    this.checkOpen();
    const st = this.stateOf(tp);
    st.generation++;
    clearBuffered(st);
    st.backoffUntilMs = 0;
    st.timestampFloor = undefined;
    if (typeof target === "object" && "offset" in target) {
      checkInt("seek offset", target.offset, 0);
      st.position = target.offset;
      st.fetchOffset = target.offset;
      st.reset = undefined;
    } else {
      st.position = undefined;
      st.fetchOffset = undefined;
      st.reset = target;
    }
    this.wake();
  }

  /** The offset of the next record poll() will return for `tp`, looking it up if needed. */
  async position(tp: TopicPartition): Promise<number> {
    this.checkOpen();
    const st = this.stateOf(tp);
    if (st.position === undefined) await this.resolvePositions();
    if (st.position === undefined) {
      throw new FlotillaError("OFFSET_OUT_OF_RANGE", `${tp.topic}-${tp.partition} has no position and autoOffsetReset is "none"; seek() first`);
    }
    return st.position;
  }

  /** Stops fetching and returning records of these partitions until resume(). */
  pause(tps: readonly TopicPartition[]): void {
    for (const tp of tps) this.stateOf(tp).paused = true;
  }

  resume(tps: readonly TopicPartition[]): void {
    for (const tp of tps) this.stateOf(tp).paused = false;
    this.wake();
  }

  paused(): TopicPartition[] {
    return [...this.partitions.values()].filter((s) => s.paused).map((s) => s.tp);
  }

  /**
   * Returns up to `maxRecords` (default max.poll.records) buffered records, fetching when
   * none are buffered and waiting up to `timeoutMs` for some to arrive. Returns [] after the
   * timeout or once the consumer is closed. Throws a non-retriable fetch error (e.g.
   * OFFSET_OUT_OF_RANGE with autoOffsetReset "none").
   */
  poll(options: { timeoutMs?: number; maxRecords?: number } = {}): Promise<ConsumerRecord[]> {
    return this.pollWith(options, (max) => this.take(max), (records) => records.length, () => []);
  }

  /**
   * Like poll(), but returns the fetched record batches themselves, by partition (Kafka's
   * ConsumerRecords shape), instead of an object per record: each ConsumerRecordBatch has
   * its record count, offsets and a cursor that decodes records lazily, so a caller that
   * processes records in bulk allocates nothing per record. Positions move as with poll():
   * past every batch returned (position(tp) and the `nextOffset` of each partition are the
   * offset after the last batch), and a batch that poll() had begun is returned from
   * poll()'s place on. Whole batches only: batches are added while fewer than `maxRecords`
   * (default max.poll.records) records are taken, so the count can pass `maxRecords` by
   * less than one batch. Returns an empty result ({count: 0, partitions: []}) after the
   * timeout or once the consumer is closed.
   */
  pollBatches(options: { timeoutMs?: number; maxRecords?: number } = {}): Promise<ConsumerRecordBatches> {
    return this.pollWith(options, (max) => this.takeBatches(max), (result) => result.count, () => ({ count: 0, partitions: [] }));
  }

  /**
   * The wait loop of poll() and pollBatches(): takes up to `maxRecords` of what is buffered
   * with `take`, and returns it once it holds any record; else waits for a wake-up (new data,
   * a finished fetch) or the deadline and tries again. Returns `empty()` once closed, and the
   * last (empty) take at the timeout.
   */
  private async pollWith<T>(options: { timeoutMs?: number; maxRecords?: number }, take: (maxRecords: number) => T, countOf: (taken: T) => number, empty: () => T): Promise<T> {
    const timeoutMs = options.timeoutMs ?? this.fetchMaxWaitMs;
    const maxRecords = options.maxRecords ?? this.maxPollRecords;
    const deadlineMs = this.common.clock.monotonicMs() + timeoutMs;
    // Bounded: each turn either returns or waits for a wake-up or the deadline.
    for (;;) {
      if (this.closed) return empty();
      this.throwIfFatal();
      this.checkPositionsDefined();
      if (this.needsPositions()) await this.resolvePositions();
      const taken = take(maxRecords);
      // Fetch for the partitions just drained before handing their data over, so the
      // next fetch overlaps the caller's processing (as Kafka's consumer does).
      this.sendFetches();
      if (countOf(taken) > 0) return taken;
      const leftMs = deadlineMs - this.common.clock.monotonicMs();
      if (leftMs <= 0) return taken;
      await this.waitForWake(Math.min(leftMs, this.nextBackoffDelayMs()));
    }
  }

  /** Yields records one at a time until close(); breaking out leaves position() after the last one yielded. */
  async *[Symbol.asyncIterator](): AsyncGenerator<ConsumerRecord, void, undefined> {
    while (!this.closed) {
      const [record] = await this.poll({ timeoutMs: Math.max(this.fetchMaxWaitMs, 100), maxRecords: 1 });
      if (record) yield record;
    }
  }

  /**
   * Calls `eachMessage` for every record (or `eachBatch` for each partition's records of a
   * poll), awaiting each call, until close(). Resolves when the consumer is closed; rejects
   * with the first error a callback or a fetch throws.
   */
  async run(options: RunOptions): Promise<void> {
    while (!this.closed) {
      const records = await this.poll({ timeoutMs: Math.max(this.fetchMaxWaitMs, 100) });
      if ("eachMessage" in options) {
        for (const r of records) {
          if (this.closed) return;
          await options.eachMessage(r);
        }
      } else {
        const groups = new Map<string, ConsumerBatch>();
        for (const r of records) {
          const key = tpKey(r);
          let g = groups.get(key);
          if (!g) {
            g = { topic: r.topic, partition: r.partition, highWatermark: this.partitions.get(key)?.highWatermark ?? -1, messages: [] };
            groups.set(key, g);
          }
          g.messages.push(r);
        }
        for (const g of groups.values()) {
          if (this.closed) return;
          await options.eachBatch(g);
        }
      }
    }
  }

  /** Stops fetching, cancels fetches in flight and closes the connections. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.inflightFetches.values()) c.abort();
    this.inflightFetches.clear();
    this.wake();
    this.cluster.close();
  }

  // --- internals -------------------------------------------------------------------------

  private checkOpen(): void {
    if (this.closed) throw new FlotillaError("INVALID_REQUEST", "consumer is closed");
  }

  private stateOf(tp: TopicPartition): PartitionState {
    const st = this.partitions.get(tpKey(tp));
    if (!st) throw new FlotillaError("INVALID_REQUEST", `${tp.topic}-${tp.partition} is not assigned to this consumer`);
    return st;
  }

  private throwIfFatal(): void {
    if (this.fatal) {
      const err = this.fatal;
      this.fatal = undefined;
      throw err;
    }
  }

  /** With autoOffsetReset "none", a partition that was never seek()ed has nowhere to start. */
  private checkPositionsDefined(): void {
    for (const st of this.partitions.values()) {
      if (st.position === undefined && st.reset === undefined) {
        throw new FlotillaError("OFFSET_OUT_OF_RANGE", `${st.tp.topic}-${st.tp.partition} has no position and autoOffsetReset is "none"; seek() it first`);
      }
    }
  }

  private needsPositions(): boolean {
    for (const st of this.partitions.values()) if (st.position === undefined && st.reset !== undefined) return true;
    return false;
  }

  /** Looks up positions (ListOffsets to each leader) of partitions that have a reset pending. */
  private async resolvePositions(): Promise<void> {
    const deadlineMs = this.common.clock.monotonicMs() + this.defaultApiTimeoutMs;
    const pending = [...this.partitions.values()].filter((s) => s.position === undefined && s.reset !== undefined);
    if (pending.length === 0) return;
    await withRetries(
      async () => {
        const todo = pending.filter((s) => s.position === undefined && s.reset !== undefined && this.partitions.get(tpKey(s.tp)) === s);
        if (todo.length === 0) return;
        for (const s of todo) await this.cluster.topic(s.tp.topic, deadlineMs);
        const byLeader = new Map<number, PartitionState[]>();
        for (const s of todo) {
          const { nodeId } = this.cluster.leaderOf(s.tp.topic, s.tp.partition);
          byLeader.set(nodeId, [...(byLeader.get(nodeId) ?? []), s]);
        }
        let firstError: FlotillaError | undefined;
        await Promise.all(
          [...byLeader].map(async ([nodeId, states]) => {
            const generations = states.map((s) => s.generation);
            const topics = new Map<string, { partition: number; timestamp: number }[]>();
            for (const s of states) {
              const r = s.reset as Reset;
              const timestamp = r === "earliest" ? EARLIEST_TIMESTAMP : r === "latest" ? LATEST_TIMESTAMP : r.timestamp;
              topics.set(s.tp.topic, [...(topics.get(s.tp.topic) ?? []), { partition: s.tp.partition, timestamp }]);
            }
            const res = await this.cluster.connectionTo(nodeId).listOffsets(
              { replicaId: -1, topics: [...topics].map(([name, partitions]) => ({ name, partitions })) },
              { timeoutMs: this.common.requestTimeoutMs },
            );
            const answers = new Map<string, { errorCode: number; errorMessage: string; offset: number }>();
            for (const t of res.topics) for (const p of t.partitions) answers.set(tpKey({ topic: t.name, partition: p.partition }), p);
            states.forEach((s, i) => {
              if (s.generation !== generations[i]) return; // seek()ed meanwhile: the answer is stale
              const a = answers.get(tpKey(s.tp));
              const err = a ? errorFromFields(a.errorCode, a.errorMessage) : new FlotillaError("UNKNOWN_SERVER_ERROR", `ListOffsets answer lacks ${s.tp.topic}-${s.tp.partition}`);
              if (err || !a) {
                firstError ??= err;
                return;
              }
              if (a.offset < 0) {
                // No record at or after the timestamp: go to the end, as Kafka's seek to
                // the result of offsetsForTimes would leave the consumer waiting for new data.
                s.reset = "latest";
                return;
              }
              s.position = a.offset;
              s.fetchOffset = a.offset;
              if (typeof s.reset === "object") s.timestampFloor = s.reset.timestamp;
              s.reset = undefined;
            });
          }),
        );
        if (firstError) throw firstError;
        if (todo.some((s) => s.position === undefined && s.reset === "latest")) throw new FlotillaError("OFFSET_NOT_AVAILABLE", "resolving the latest offset after a timestamp lookup");
      },
      this.common.retry,
      this.common,
      {
        deadlineMs,
        onRetriableError: (err) => {
          if (METADATA_ERRORS.has(err.errorName)) this.cluster.markStale();
        },
      },
    );
  }

  /** Takes buffered records from unpaused partitions, round-robin over partitions, advancing positions. */
  private take(maxRecords: number): ConsumerRecord[] {
    const out: ConsumerRecord[] = [];
    const states = [...this.partitions.values()];
    if (states.length === 0) return out;
    for (let i = 0; i < states.length && out.length < maxRecords; i++) {
      const st = states[(this.takeCursor + i) % states.length] as PartitionState;
      if (st.paused || st.buffered.length === 0) continue;
      const { topic, partition } = st.tp;
      try {
        // Bounded: each turn returns a record or finishes a batch.
        while (out.length < maxRecords && st.bufferedHead < st.buffered.length) {
          const batch = st.buffered[st.bufferedHead] as ConsumerRecordBatch;
          const c = (st.cursor ??= batch.cursor());
          if (c.next()) {
            out.push(toConsumerRecord(topic, partition, c));
            st.position = c.offset + 1;
            // The batch's last record: finish it now (next() also checks nothing trails it),
            // so a drained partition is fetched again before this poll returns.
            if (c.index < batch.view.recordCount - 1) continue;
            c.next();
          }
          st.position = Math.max(st.position ?? 0, batch.lastOffset + 1);
          st.bufferedHead++;
          st.bufferedBytes -= batch.view.sizeBytes;
          st.cursor = undefined;
        }
      } catch (err) {
        // A malformed record behind a good CRC (a writer's bug): return what was taken,
        // drop the rest of this partition's data, fail the next poll. A refetch from the
        // position would meet the same record.
        this.fatal ??= err instanceof FlotillaError ? err : new FlotillaError("CORRUPT_MESSAGE", `${topic}-${partition}: ${String(err)}`, { cause: err });
        clearBuffered(st);
        st.fetchOffset = st.position;
        st.generation++;
        continue;
      }
      if (st.bufferedHead === st.buffered.length) {
        clearBuffered(st);
        st.position = st.fetchOffset;
        // The next call starts after a partition that was drained, so all get a turn.
        this.takeCursor = (this.takeCursor + i + 1) % states.length;
      }
    }
    return out;
  }

  /** Takes whole buffered batches from unpaused partitions, round-robin, advancing positions. */
  private takeBatches(maxRecords: number): ConsumerRecordBatches {
    const partitions: PartitionBatches[] = [];
    let count = 0;
    const states = [...this.partitions.values()];
    for (let i = 0; i < states.length && count < maxRecords; i++) {
      const st = states[(this.takeCursor + i) % states.length] as PartitionState;
      if (st.paused || st.buffered.length === 0) continue;
      const { topic, partition } = st.tp;
      const batches: ConsumerRecordBatch[] = [];
      let taken = 0;
      // Bounded by the buffered batches.
      while (count < maxRecords && st.bufferedHead < st.buffered.length) {
        let batch = st.buffered[st.bufferedHead] as ConsumerRecordBatch;
        if (st.cursor !== undefined) {
          // poll() began this batch: the rest of it starts at the position.
          const from = st.position ?? batch.fromOffset;
          st.cursor = undefined;
          try {
            batch = new ConsumerRecordBatch(topic, partition, batch.view, from);
          } catch (err) {
            this.fatal ??= err instanceof FlotillaError ? err : new FlotillaError("CORRUPT_MESSAGE", `${topic}-${partition}: ${String(err)}`, { cause: err });
            clearBuffered(st);
            st.fetchOffset = st.position;
            st.generation++;
            break;
          }
        }
        st.bufferedHead++;
        st.bufferedBytes -= batch.view.sizeBytes;
        st.position = Math.max(st.position ?? 0, batch.lastOffset + 1);
        if (batch.recordCount === 0) continue;
        batches.push(batch);
        taken += batch.recordCount;
        count += batch.recordCount;
      }
      if (st.bufferedHead === st.buffered.length) {
        clearBuffered(st);
        st.position = st.fetchOffset;
        this.takeCursor = (this.takeCursor + i + 1) % states.length;
      }
      if (batches.length > 0) partitions.push({ topic, partition, highWatermark: st.highWatermark, batches, recordCount: taken, nextOffset: st.position as number });
    }
    return { count, partitions };
  }

  private nextBackoffDelayMs(): number {
    const nowMs = this.common.clock.monotonicMs();
    let min = Infinity;
    for (const st of this.partitions.values()) if (st.backoffUntilMs > nowMs) min = Math.min(min, st.backoffUntilMs - nowMs);
    return min;
  }

  /** Sends one fetch to each broker that has none in flight, for its fetchable partitions. */
  private sendFetches(): void {
    if (this.closed) return;
    const nowMs = this.common.clock.monotonicMs();
    const byLeader = new Map<number, { st: PartitionState; leaderEpoch: number }[]>();
    let leaderMissing = false;
    for (const st of this.partitions.values()) {
      // Fetch ahead while less than a partition fetch's worth is buffered (see the class comment).
      if (st.paused || st.fetchOffset === undefined || st.bufferedBytes > this.maxPartitionFetchBytes || st.backoffUntilMs > nowMs) continue;
      let leader: { nodeId: number; leaderEpoch: number };
      try {
        leader = this.cluster.leaderOf(st.tp.topic, st.tp.partition);
      } catch {
        leaderMissing = true;
        st.backoffUntilMs = nowMs + this.common.retry.retryBackoffMs;
        continue;
      }
      if (this.inflightFetches.has(leader.nodeId)) continue;
      byLeader.set(leader.nodeId, [...(byLeader.get(leader.nodeId) ?? []), { st, leaderEpoch: leader.leaderEpoch }]);
    }
    if (leaderMissing) this.refreshMetadataInBackground();
    for (const [nodeId, parts] of byLeader) void this.fetchFrom(nodeId, parts);
  }

  private refreshing = false;
  private refreshMetadataInBackground(): void {
    this.cluster.markStale();
    if (this.refreshing) return;
    this.refreshing = true;
    this.cluster
      .refresh(this.common.clock.monotonicMs() + this.common.requestTimeoutMs)
      .catch((err: unknown) => this.common.logger.warn({ err: (err as Error).message }, "metadata refresh failed"))
      .finally(() => {
        this.refreshing = false;
        this.wake();
      });
  }

  private async fetchFrom(nodeId: number, parts: { st: PartitionState; leaderEpoch: number }[]): Promise<void> {
    const abort = new AbortController();
    this.inflightFetches.set(nodeId, abort);
    const sent = parts.map(({ st }) => ({ st, generation: st.generation, fetchOffset: st.fetchOffset as number }));
    const topics = new Map<string, { partition: number; fetchOffset: number; partitionMaxBytes: number; currentLeaderEpoch: number }[]>();
    parts.forEach(({ st, leaderEpoch }) => {
      const list = topics.get(st.tp.topic) ?? [];
      list.push({ partition: st.tp.partition, fetchOffset: st.fetchOffset as number, partitionMaxBytes: this.maxPartitionFetchBytes, currentLeaderEpoch: leaderEpoch });
      topics.set(st.tp.topic, list);
    });
    let response: FetchResponse | undefined;
    try {
      response = await this.cluster.connectionTo(nodeId).fetch(
        {
          replicaId: -1,
          maxWaitMs: this.fetchMaxWaitMs,
          minBytes: this.fetchMinBytes,
          maxBytes: this.fetchMaxBytes,
          topics: [...topics].map(([name, partitions]) => ({ name, partitions })),
        },
        // The broker may hold the fetch for fetch.max.wait.ms before it starts to answer.
        { timeoutMs: this.common.requestTimeoutMs + this.fetchMaxWaitMs, signal: abort.signal },
      );
    } catch (err) {
      if (!this.closed) {
        const fe = err instanceof FlotillaError ? err : new FlotillaError("NETWORK_EXCEPTION", String(err), { cause: err });
        this.common.logger.debug({ nodeId, err: fe.message }, "fetch failed");
        for (const s of sent) this.onPartitionError(s.st, s.generation, fe);
      }
    } finally {
      if (this.inflightFetches.get(nodeId) === abort) this.inflightFetches.delete(nodeId);
    }
    // An answer with records is followed at once by the next fetch, while the caller works
    // on these, within the buffered-bytes bound. An empty answer is not: the next poll()
    // sends that fetch, so an idle consumer does not long-poll on its own.
    if (response && !this.closed && this.applyFetch(nodeId, response, sent)) this.sendFetches();
    this.wake();
  }

  /** Buffers the answer's batches; true when some partition got records. */
  private applyFetch(nodeId: number, response: FetchResponse, sent: { st: PartitionState; generation: number; fetchOffset: number }[]): boolean {
    let gotRecords = false;
    const answers = new Map<string, FetchResponse["topics"][number]["partitions"][number]>();
    for (const t of response.topics) for (const p of t.partitions) answers.set(tpKey({ topic: t.name, partition: p.partition }), p);
    for (const { st, generation, fetchOffset } of sent) {
      // Dropped when seek()/assign() moved the partition after this fetch was sent.
      if (st.generation !== generation || this.partitions.get(tpKey(st.tp)) !== st || st.fetchOffset !== fetchOffset) continue;
      const a = answers.get(tpKey(st.tp));
      if (!a) continue;
      const err = errorFromFields(a.errorCode, a.errorMessage);
      if (err) {
        this.onPartitionError(st, generation, new FlotillaError(err.errorName, `${st.tp.topic}-${st.tp.partition} on broker ${nodeId}: ${a.errorMessage || err.message}`));
        continue;
      }
      st.highWatermark = a.highWatermark;
      if (a.records.length === 0) continue;
      // Checks each batch's frame and CRC and decompresses it; records are read later, lazily.
      let views: RecordBatchView[];
      try {
        views = viewBatches(a.records, { allowPartialTail: true });
      } catch (e) {
        this.fatal ??= e instanceof FlotillaError ? e : new FlotillaError("CORRUPT_MESSAGE", `${st.tp.topic}-${st.tp.partition}: ${String(e)}`, { cause: e });
        continue;
      }
      const { batches, nextFetchOffset } = batchesFromFetch(views, fetchOffset);
      const { topic, partition } = st.tp;
      const fresh: ConsumerRecordBatch[] = [];
      try {
        for (const { batch, fromOffset } of batches) {
          let from = fromOffset;
          if (st.timestampFloor !== undefined) {
            // After a timestamp seek: start at the first record at or after the time.
            const floor = st.timestampFloor;
            const c = batch.cursor(fromOffset);
            from = -1;
            while (c.next()) {
              if (c.timestamp >= floor) {
                from = c.offset;
                break;
              }
            }
            if (from < 0) continue; // nothing in this batch
            st.timestampFloor = undefined;
          }
          const b = new ConsumerRecordBatch(topic, partition, batch, from);
          if (b.recordCount > 0) fresh.push(b);
        }
      } catch (e) {
        // Nothing of this answer is kept and the fetch offset stays: batches buffered
        // before it are still returned, then the refetch meets the same error.
        this.fatal ??= e instanceof FlotillaError ? e : new FlotillaError("CORRUPT_MESSAGE", `${topic}-${partition}: ${String(e)}`, { cause: e });
        continue;
      }
      for (const b of fresh) {
        st.buffered.push(b);
        st.bufferedBytes += b.view.sizeBytes;
      }
      if (fresh.length > 0) gotRecords = true;
      st.fetchOffset = nextFetchOffset;
      if (st.buffered.length === 0) st.position = nextFetchOffset;
    }
    return gotRecords;
  }

  private onPartitionError(st: PartitionState, generation: number, err: FlotillaError): void {
    if (st.generation !== generation) return;
    if (err.errorName === "OFFSET_OUT_OF_RANGE") {
      if (this.autoOffsetReset === "none") {
        this.fatal ??= err;
        return;
      }
      this.common.logger.info({ topic: st.tp.topic, partition: st.tp.partition, fetchOffset: st.fetchOffset, reset: this.autoOffsetReset }, "offset out of range; resetting");
      st.generation++;
      st.position = undefined;
      st.fetchOffset = undefined;
      clearBuffered(st);
      st.timestampFloor = undefined;
      st.reset = this.autoOffsetReset;
      return;
    }
    if (err.retriable) {
      if (METADATA_ERRORS.has(err.errorName)) this.refreshMetadataInBackground();
      st.backoffUntilMs = this.common.clock.monotonicMs() + this.common.retry.retryBackoffMs;
      return;
    }
    this.fatal ??= err;
  }

  private wake(): void {
    const w = this.wakers;
    this.wakers = [];
    for (const f of w) f();
  }

  private waitForWake(timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        const i = this.wakers.indexOf(done);
        if (i >= 0) this.wakers.splice(i, 1);
        resolve();
      };
      const t = setTimeout(done, Math.max(1, Math.ceil(timeoutMs)));
      this.wakers.push(done);
    });
  }
}

function clearBuffered(st: PartitionState): void {
  st.buffered = [];
  st.bufferedHead = 0;
  st.cursor = undefined;
  st.bufferedBytes = 0;
}

/** Records of `view` at or after `fromOffset`, by walking them. */
function countFrom(view: RecordBatchView, fromOffset: number): number {
  const c = view.cursor(fromOffset);
  let n = 0;
  while (c.next()) n++;
  return n;
}

/** The cursor's current record as a ConsumerRecord (key, value and header values are views into the fetched bytes). */
function toConsumerRecord(topic: string, partition: number, c: RecordCursor): ConsumerRecord {
  return { topic, partition, offset: c.offset, timestamp: c.timestamp, key: c.key(), value: c.value(), headers: c.headers() };
}

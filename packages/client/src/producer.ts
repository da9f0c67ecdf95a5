import { FlotillaError, assert } from "@flotilla/common";
import { BATCH_HEADER_BYTES, encodeBatch, errorFromFields, type Compression, type ProduceResponse } from "@flotilla/protocol";
import { RecordAccumulator, tpKey, type PendingRecord, type ProducerBatch, type TopicPartition } from "./accumulator.js";
import type { Cluster } from "./cluster.js";
import { checkInt, makeCluster, resolveCommon, type CommonClientOptions, type ResolvedCommon } from "./config.js";
import { PartitionChooser, type PartitionerFn, type UnkeyedPartitioning } from "./partitioner.js";
import { estimateRecordSizeBytes, toBuffer, toHeaders, type Bytes, type HeadersInput, type OutgoingRecord } from "./records.js";
import { backoffMs, shouldRetry, withRetries } from "./retry.js";

export type Acks = 0 | 1 | -1 | "all";

export interface ProducerOptions extends CommonClientOptions {
  /** Kafka's acks: 0 = do not wait, 1 = the leader wrote it, -1/"all" = every in-sync replica has it. Default "all". */
  acks?: Acks;
  /** Kafka's compression.type, applied per batch. Default "none". */
  compression?: Compression;
  /** Kafka's batch.size: bytes (estimated, before compression) per partition batch. Default 16384. */
  batchSizeBytes?: number;
  /**
   * Kafka's linger.ms: how long a batch that is not full waits for more records. Default 5,
   * as in Kafka 4.0 (KIP-1030): a few milliseconds of waiting lets concurrent sends share one
   * batch and one request, which costs little latency and saves much per-request overhead.
   */
  lingerMs?: number;
  /** Kafka's delivery.timeout.ms: upper bound from send() to success or failure, retries included. Default 120000. */
  deliveryTimeoutMs?: number;
  /** Kafka's max.block.ms: how long send() may wait for metadata or buffer space. Default 60000. */
  maxBlockMs?: number;
  /** Kafka's max.request.size: bytes of batches in one Produce request, and the largest record. Default 1048576. */
  maxRequestSizeBytes?: number;
  /** Kafka's buffer.memory: bytes of records held before send() waits. Default 33554432. */
  bufferMemoryBytes?: number;
  /**
   * Kafka's max.in.flight.requests.per.connection: Produce requests in flight per broker.
   * Default 1. A partition never has more than one batch in flight whatever this is, so
   * records of a partition stay in send order across retries.
   */
  maxInFlightRequests?: number;
  /** How records without a key are spread. Default "sticky" (Kafka's built-in partitioner). */
  unkeyedPartitioning?: UnkeyedPartitioning;
  /** Replaces the default partitioner for records without an explicit partition. */
  partitioner?: PartitionerFn;
}

export interface ProducerMessage {
  key?: Bytes | null;
  value: Bytes | null;
  headers?: HeadersInput;
  /** Wins over any partitioner. */
  partition?: number;
  /** CreateTime in ms since the epoch. Default: now. */
  timestamp?: number;
}

export interface SendRequest {
  topic: string;
  messages: ProducerMessage[];
}

export interface RecordMetadata {
  topic: string;
  partition: number;
  /** Offset of the record; -1 with acks=0, which does not wait to learn it. */
  offset: number;
  /** The broker's LogAppendTime when the topic uses it, else the record's CreateTime. */
  timestamp: number;
}

interface Delivery {
  offset: number;
  logAppendTimeMs: number;
}

type Batch = ProducerBatch<Delivery>;

/** Errors after which the client's idea of leaders or partitions is suspect. */
const METADATA_ERRORS = new Set([
  "NOT_LEADER_OR_FOLLOWER",
  "UNKNOWN_TOPIC_OR_PARTITION",
  "LEADER_NOT_AVAILABLE",
  "NETWORK_EXCEPTION",
  "FENCED_LEADER_EPOCH",
  "UNKNOWN_LEADER_EPOCH",
  "REPLICA_NOT_AVAILABLE",
  "KAFKA_STORAGE_ERROR",
  "SHUTTING_DOWN",
  "REQUEST_TIMED_OUT",
]);

/**
 * Sends records to topics. send() picks each record's partition, adds it to that partition's
 * open batch and returns a promise that settles when the broker acknowledged it. A sender
 * (driven by appends, timers and completions, not a polling loop) sends a partition's batch
 * once it is full (batch.size), has lingered linger.ms, or a flush() asked for it; it groups
 * ready batches by leader into one Produce request per broker, encoding each batch as one
 * RecordBatch v2. Retriable failures put the batch back at the front of its queue after a
 * backoff and refresh the metadata; the batch fails once retries or delivery.timeout.ms run out.
 *
 * Not yet idempotent: a retry after a lost response can write a batch twice (the broker API
 * has no producer ids yet).
 */
export class Producer {
  private readonly common: ResolvedCommon;
  private readonly cluster: Cluster;
  private readonly acc: RecordAccumulator<Delivery>;
  private readonly chooser: PartitionChooser;
  private readonly acks: number;
  private readonly compression: Compression;
  private readonly lingerMs: number;
  private readonly deliveryTimeoutMs: number;
  private readonly maxBlockMs: number;
  private readonly maxRequestSizeBytes: number;
  private readonly bufferMemoryBytes: number;
  private readonly maxInFlightRequests: number;

  /** Partitions with a batch in flight (muted in the accumulator). */
  private readonly inflightPartitions = new Set<string>();
  /** Produce requests in flight per broker node id. */
  private readonly inflightPerBroker = new Map<number, number>();
  /** Every batch not yet completed, with the promise that settles when it is. */
  private readonly incomplete = new Map<Batch, Promise<void>>();
  private readonly batchDone = new Map<Batch, () => void>();
  private flushes = 0;
  private closing = false;
  private closed = false;
  private senderScheduled = false;
  private timer: NodeJS.Timeout | undefined;
  private timerAtMs = Infinity;
  private metadataRefresh: Promise<void> | undefined;
  private lastRefreshStartMs = -Infinity;
  /** Waiters for buffer space (buffer.memory), woken as batches complete. */
  private spaceWaiters: (() => void)[] = [];
  /** Settles when the last send() call has queued its records (see send()). */
  private appendTail: Promise<void> = Promise.resolve();

  constructor(options: ProducerOptions) {
    this.common = resolveCommon(options, "producer");
    const acks = options.acks ?? "all";
    if (acks !== 0 && acks !== 1 && acks !== -1 && acks !== "all") throw new FlotillaError("INVALID_CONFIG", `acks must be 0, 1, -1 or "all", got ${String(acks)}`);
    this.acks = acks === "all" ? -1 : acks;
    this.compression = options.compression ?? "none";
    if (!["none", "gzip", "snappy", "lz4", "zstd"].includes(this.compression)) {
      throw new FlotillaError("INVALID_CONFIG", `compression must be none, gzip, snappy, lz4 or zstd, got ${String(this.compression)}`);
    }
    const batchSizeBytes = checkInt("batchSizeBytes", options.batchSizeBytes ?? 16_384, 1);
    this.lingerMs = checkInt("lingerMs", options.lingerMs ?? 5, 0);
    this.deliveryTimeoutMs = checkInt("deliveryTimeoutMs", options.deliveryTimeoutMs ?? 120_000, 1);
    this.maxBlockMs = checkInt("maxBlockMs", options.maxBlockMs ?? 60_000, 0);
    this.maxRequestSizeBytes = checkInt("maxRequestSizeBytes", options.maxRequestSizeBytes ?? 1_048_576, 1);
    this.bufferMemoryBytes = checkInt("bufferMemoryBytes", options.bufferMemoryBytes ?? 33_554_432, 1);
    this.maxInFlightRequests = checkInt("maxInFlightRequests", options.maxInFlightRequests ?? 1, 1, 5);
    // Kafka's rule: a batch must be able to linger and then make one full request attempt.
    if (this.deliveryTimeoutMs < this.lingerMs + this.common.requestTimeoutMs) {
      throw new FlotillaError(
        "INVALID_CONFIG",
        `deliveryTimeoutMs (${this.deliveryTimeoutMs}) must be >= lingerMs + requestTimeoutMs (${this.lingerMs + this.common.requestTimeoutMs})`,
      );
    }
    this.acc = new RecordAccumulator<Delivery>({ batchSizeBytes, lingerMs: this.lingerMs });
    this.chooser = new PartitionChooser({ unkeyed: options.unkeyedPartitioning ?? "sticky", custom: options.partitioner, batchSizeBytes }, this.common.random);
    this.cluster = makeCluster(this.common);
  }

  /**
   * Queues the messages and resolves with one RecordMetadata per message, in order, once all
   * are acknowledged (per acks). Rejects with the first FlotillaError if any fails; records
   * of other partitions in the same call may still have been written.
   */
  async send(request: SendRequest): Promise<RecordMetadata[]> {
    if (this.closing) throw new FlotillaError("INVALID_REQUEST", "send() after close()");
    // Appends happen in call order, also when an earlier call waits for metadata, so that
    // records of concurrent send() calls to a partition keep the order of the calls.
    const previous = this.appendTail;
    let appended!: () => void;
    this.appendTail = new Promise<void>((r) => (appended = r));
    let results: Promise<RecordMetadata>[];
    try {
      await previous;
      results = await this.append(request);
    } finally {
      appended();
    }
    // Attach handlers to every promise so that one rejection does not leave others unhandled.
    const settled = await Promise.allSettled(results);
    const failed = settled.find((s) => s.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
    return settled.map((s) => (s as PromiseFulfilledResult<RecordMetadata>).value);
  }

  /** Looks up the topic, places and queues every message; returns one promise per message. */
  private async append(request: SendRequest): Promise<Promise<RecordMetadata>[]> {
    const { topic } = request;
    const startMs = this.common.clock.monotonicMs();
    const blockDeadlineMs = startMs + this.maxBlockMs;
    const info = await withRetries(() => this.cluster.topic(topic, blockDeadlineMs), this.common.retry, this.common, { deadlineMs: blockDeadlineMs });
    const numPartitions = info.partitions.length;

    // Validate and place every message before queueing any, so a bad one fails the call whole.
    const placed: { tp: TopicPartition; record: OutgoingRecord; sizeBytes: number }[] = [];
    const nowMs = this.common.clock.nowMs();
    for (const m of request.messages) {
      const record: OutgoingRecord = {
        key: toBuffer(m.key),
        value: toBuffer(m.value),
        headers: toHeaders(m.headers),
        timestamp: m.timestamp ?? nowMs,
      };
      const sizeBytes = estimateRecordSizeBytes(record);
      if (sizeBytes + BATCH_HEADER_BYTES > this.maxRequestSizeBytes || sizeBytes > this.bufferMemoryBytes) {
        throw new FlotillaError("MESSAGE_TOO_LARGE", `a record of about ${sizeBytes} bytes for topic "${topic}" is larger than maxRequestSizeBytes (${this.maxRequestSizeBytes}) or bufferMemoryBytes`);
      }
      const partition = this.chooser.choose({ topic, key: record.key, value: record.value, partition: m.partition, numPartitions, recordSizeBytes: sizeBytes });
      placed.push({ tp: { topic, partition }, record, sizeBytes });
    }

    const results: Promise<RecordMetadata>[] = [];
    for (const p of placed) {
      if (this.acc.bytesInUse + p.sizeBytes > this.bufferMemoryBytes) {
        try {
          await this.waitForSpace(p.sizeBytes, blockDeadlineMs);
        } catch (err) {
          // Records already queued still go out; their outcome is dropped with this call's error.
          for (const r of results) r.catch(() => undefined);
          this.wakeup();
          throw err;
        }
      }
      results.push(
        new Promise<RecordMetadata>((resolve, reject) => {
          const pending: PendingRecord<Delivery> = {
            record: p.record,
            sizeBytes: p.sizeBytes,
            done: (r) => {
              if (!r.ok) reject(r.error);
              else resolve({ topic, partition: p.tp.partition, offset: r.value.offset, timestamp: r.value.logAppendTimeMs >= 0 ? r.value.logAppendTimeMs : p.record.timestamp });
            },
          };
          const { batch, batchFull, newBatch } = this.acc.append(p.tp, pending, this.common.clock.monotonicMs());
          if (newBatch) this.track(batch);
          if (batchFull) this.wakeup();
        }),
      );
    }
    this.wakeup();
    return results;
  }

  /**
   * Sends every record of the send() calls made before it now, ignoring linger.ms, and
   * waits until each is settled (acknowledged or failed).
   */
  async flush(): Promise<void> {
    // Calls still looking up metadata have not queued their records yet: wait for them.
    await this.appendTail;
    const pending = [...this.incomplete.values()];
    if (pending.length === 0) return;
    this.flushes++;
    this.wakeup();
    try {
      await Promise.all(pending);
    } finally {
      this.flushes--;
    }
  }

  /**
   * Flushes, then closes the connections. With `timeoutMs`, records still unsent after it
   * fail with REQUEST_TIMED_OUT instead of being waited for.
   */
  async close(options: { timeoutMs?: number } = {}): Promise<void> {
    if (this.closed) return;
    this.closing = true;
    const flushed = this.flush();
    if (options.timeoutMs !== undefined) {
      let t: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([flushed.then(() => false), new Promise<boolean>((r) => (t = setTimeout(() => r(true), options.timeoutMs)))]);
      clearTimeout(t);
      if (timedOut) {
        for (const b of this.acc.abortAll()) this.fail(b, new FlotillaError("REQUEST_TIMED_OUT", `producer closed with records for ${b.tp.topic}-${b.tp.partition} unsent`));
      }
    }
    await flushed.catch(() => undefined);
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.cluster.close();
  }

  private track(batch: Batch): void {
    let resolveDone!: () => void;
    this.incomplete.set(batch, new Promise<void>((r) => (resolveDone = r)));
    this.batchDone.set(batch, resolveDone);
  }

  private complete(batch: Batch): void {
    this.acc.release(batch);
    const done = this.batchDone.get(batch);
    this.incomplete.delete(batch);
    this.batchDone.delete(batch);
    done?.();
    const waiters = this.spaceWaiters;
    this.spaceWaiters = [];
    for (const w of waiters) w();
  }

  private async waitForSpace(bytes: number, deadlineMs: number): Promise<void> {
    // Bounded by max.block.ms; each wake-up re-checks, and nothing waits when no batch is
    // outstanding (then the space is simply there).
    while (this.acc.bytesInUse + bytes > this.bufferMemoryBytes && this.incomplete.size > 0) {
      const leftMs = deadlineMs - this.common.clock.monotonicMs();
      if (leftMs <= 0) throw new FlotillaError("REQUEST_TIMED_OUT", `no room in bufferMemoryBytes (${this.bufferMemoryBytes}) within maxBlockMs (${this.maxBlockMs})`);
      this.wakeup();
      let t: NodeJS.Timeout | undefined;
      await new Promise<void>((r) => {
        this.spaceWaiters.push(r);
        t = setTimeout(r, leftMs);
      });
      clearTimeout(t);
    }
  }

  /** Schedules one sender pass, coalescing the many wake-ups of one tick. */
  private wakeup(): void {
    if (this.senderScheduled || this.closed) return;
    this.senderScheduled = true;
    setImmediate(() => {
      this.senderScheduled = false;
      this.sendReady();
    });
  }

  private scheduleAt(delayMs: number): void {
    const at = this.common.clock.monotonicMs() + delayMs;
    if (this.timer && this.timerAtMs <= at) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAtMs = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAtMs = Infinity;
      this.sendReady();
    }, Math.max(0, Math.ceil(delayMs)));
  }

  /** One pass of the sender: expire, find ready partitions, group by leader, send. */
  private sendReady(): void {
    if (this.closed) return;
    const nowMs = this.common.clock.monotonicMs();
    for (const b of this.acc.expire(nowMs, this.deliveryTimeoutMs)) {
      this.fail(b, new FlotillaError("REQUEST_TIMED_OUT", `${b.recordCount} record(s) for ${b.tp.topic}-${b.tp.partition} expired after ${nowMs - b.createdMs} ms (deliveryTimeoutMs ${this.deliveryTimeoutMs})`));
    }
    const { ready, nextCheckDelayMs } = this.acc.ready(nowMs, this.flushes > 0 || this.closing, this.inflightPartitions);
    const byLeader = new Map<number, TopicPartition[]>();
    let leaderMissing = false;
    for (const tp of ready) {
      let nodeId: number;
      try {
        nodeId = this.cluster.leaderOf(tp.topic, tp.partition).nodeId;
      } catch {
        leaderMissing = true;
        continue;
      }
      const list = byLeader.get(nodeId) ?? [];
      list.push(tp);
      byLeader.set(nodeId, list);
    }
    for (const [nodeId, tps] of byLeader) {
      if ((this.inflightPerBroker.get(nodeId) ?? 0) >= this.maxInFlightRequests) continue;
      const batches = this.acc.drain(tps, this.maxRequestSizeBytes);
      if (batches.length > 0) void this.sendRequest(nodeId, batches);
    }
    if (leaderMissing) this.refreshMetadata();
    if (nextCheckDelayMs !== undefined) this.scheduleAt(nextCheckDelayMs);
    else if (leaderMissing) this.scheduleAt(this.common.retry.retryBackoffMs);
  }

  /** One background metadata refresh at a time; the sender runs again when it ends. */
  private refreshMetadata(): void {
    this.cluster.markStale();
    if (this.metadataRefresh) return;
    // At most one refresh per retry.backoff.ms, so a partition without a leader does not
    // turn the sender into a loop of Metadata requests.
    const sinceMs = this.common.clock.monotonicMs() - this.lastRefreshStartMs;
    if (sinceMs < this.common.retry.retryBackoffMs) {
      this.scheduleAt(this.common.retry.retryBackoffMs - sinceMs);
      return;
    }
    this.lastRefreshStartMs = this.common.clock.monotonicMs();
    const deadlineMs = this.common.clock.monotonicMs() + this.common.requestTimeoutMs;
    this.metadataRefresh = this.cluster
      .refresh(deadlineMs)
      .catch((err: unknown) => this.common.logger.warn({ err: (err as Error).message }, "metadata refresh failed"))
      .finally(() => {
        this.metadataRefresh = undefined;
        this.wakeup();
      });
  }

  private async sendRequest(nodeId: number, batches: Batch[]): Promise<void> {
    this.inflightPerBroker.set(nodeId, (this.inflightPerBroker.get(nodeId) ?? 0) + 1);
    for (const b of batches) {
      this.inflightPartitions.add(tpKey(b.tp));
      b.attempts++;
    }
    try {
      const topics = new Map<string, { partition: number; records: Buffer }[]>();
      for (const b of batches) {
        const encoded = b.encoded ?? encodeBatch(b.records.map((r) => r.record), { compression: this.compression });
        b.encoded = encoded;
        const list = topics.get(b.tp.topic) ?? [];
        list.push({ partition: b.tp.partition, records: encoded });
        topics.set(b.tp.topic, list);
      }
      const request = { acks: this.acks, timeoutMs: this.common.requestTimeoutMs, topics: [...topics].map(([name, partitions]) => ({ name, partitions })) };
      if (this.acks === 0) {
        // acks=0: the caller does not wait for the broker. The request still completes
        // before the partition's next batch goes out, which keeps per-partition order.
        for (const b of batches) this.succeed(b, { offset: -1, logAppendTimeMs: -1 }, false);
      }
      let response: ProduceResponse;
      try {
        const connection = this.cluster.connectionTo(nodeId);
        // The gRPC deadline has a second of slack over the broker's own timeout, so that the
        // broker's REQUEST_TIMED_OUT (which says which partitions) arrives first.
        response = await connection.produce(request, { timeoutMs: this.common.requestTimeoutMs + 1000 });
      } catch (err) {
        const fe = err instanceof FlotillaError ? err : new FlotillaError("NETWORK_EXCEPTION", String(err), { cause: err });
        for (const b of batches) this.handleError(b, fe);
        return;
      }
      if (this.acks === 0) {
        for (const b of batches) this.finishAcksZero(b, response);
        return;
      }
      const byTp = new Map<string, ProduceResponse["topics"][number]["partitions"][number]>();
      for (const t of response.topics) for (const p of t.partitions) byTp.set(tpKey({ topic: t.name, partition: p.partition }), p);
      for (const b of batches) {
        const pr = byTp.get(tpKey(b.tp));
        if (!pr) {
          this.handleError(b, new FlotillaError("UNKNOWN_SERVER_ERROR", `Produce response from broker ${nodeId} has no result for ${b.tp.topic}-${b.tp.partition}`));
          continue;
        }
        const err = errorFromFields(pr.errorCode, pr.errorMessage);
        if (err) this.handleError(b, new FlotillaError(err.errorName, `${b.tp.topic}-${b.tp.partition} on broker ${nodeId}: ${pr.errorMessage || err.message}`));
        else this.succeed(b, { offset: pr.baseOffset, logAppendTimeMs: pr.logAppendTimeMs }, true);
      }
    } finally {
      for (const b of batches) this.inflightPartitions.delete(tpKey(b.tp));
      this.inflightPerBroker.set(nodeId, (this.inflightPerBroker.get(nodeId) ?? 1) - 1);
      this.wakeup();
    }
  }

  private finishAcksZero(batch: Batch, response: ProduceResponse): void {
    for (const t of response.topics) {
      for (const p of t.partitions) {
        if (t.name === batch.tp.topic && p.partition === batch.tp.partition && p.errorCode !== 0) {
          this.common.logger.warn({ topic: t.name, partition: p.partition, errorCode: p.errorCode, errorMessage: p.errorMessage }, "acks=0 batch failed on the broker");
        }
      }
    }
    this.complete(batch);
  }

  private succeed(batch: Batch, delivery: Delivery, completeNow: boolean): void {
    batch.records.forEach((r, i) => r.done({ ok: true, value: { offset: delivery.offset < 0 ? -1 : delivery.offset + i, logAppendTimeMs: delivery.logAppendTimeMs } }));
    if (completeNow) this.complete(batch);
  }

  private fail(batch: Batch, error: Error): void {
    for (const r of batch.records) r.done({ ok: false, error });
    this.complete(batch);
  }

  private handleError(batch: Batch, err: FlotillaError): void {
    if (this.acks === 0) {
      // The caller was already told; nothing to retry for (Kafka's acks=0 does not retry).
      this.common.logger.warn({ topic: batch.tp.topic, partition: batch.tp.partition, err: err.message }, "acks=0 batch failed");
      this.complete(batch);
      return;
    }
    const nowMs = this.common.clock.monotonicMs();
    const waitMs = backoffMs(batch.attempts, this.common.retry, this.common.random.next());
    if (METADATA_ERRORS.has(err.errorName)) this.refreshMetadata();
    if (!this.closed && shouldRetry(err, batch.attempts, this.common.retry.retries, nowMs, batch.createdMs + this.deliveryTimeoutMs, waitMs)) {
      this.common.logger.debug({ topic: batch.tp.topic, partition: batch.tp.partition, attempt: batch.attempts, waitMs, err: err.message }, "retrying batch");
      this.acc.reenqueue(batch, nowMs + waitMs);
      return;
    }
    assert(batch.records.length > 0, "a sent batch has records");
    this.fail(batch, err);
  }
}

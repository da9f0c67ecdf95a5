import { FlotillaError, assert, type ErrorName } from "@flotilla/common";
import { BATCH_HEADER_BYTES, errorFromFields, recordFieldsBytes, type Compression, type ProduceResponse } from "@flotilla/protocol";
import { APPEND_BATCH_FULL, APPEND_NEW_BATCH, RecordAccumulator, tpKey, type ProducerBatch, type SendRange, type TopicPartition } from "./accumulator.js";
import type { Cluster } from "./cluster.js";
import { checkInt, makeCluster, resolveCommon, type CommonClientOptions, type ResolvedCommon } from "./config.js";
import { PartitionChooser, type ChooseArgs, type PartitionerFn, type UnkeyedPartitioning } from "./partitioner.js";
import { recordBytesMax, toBuffer, toHeaders, type Bytes, type HeadersInput, type RecordHeader } from "./records.js";
import { backoffMs, shouldRetry, withRetries } from "./retry.js";

export type Acks = 0 | 1 | -1 | "all";

export interface ProducerOptions extends CommonClientOptions {
  /** Kafka's acks: 0 = do not wait, 1 = the leader wrote it, -1/"all" = every in-sync replica has it. Default "all". */
  acks?: Acks;
  /** Kafka's compression.type, applied per batch. Default "none". */
  compression?: Compression;
  /**
   * Kafka's batch.size: bytes per partition batch, as encoded before compression (records
   * are encoded at send(), so the size is exact), and the size of the buffer each batch is
   * written into. A larger record gets a batch of its own. Default 16384.
   */
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
   * Kafka's max.in.flight.requests.per.connection: Produce requests in flight per broker
   * (1..5). Default 5 with idempotence, else 1. Without idempotence a partition never has
   * more than one batch in flight, so records of a partition stay in send order across
   * retries; with it, up to 5 batches per partition are in flight and their sequence
   * numbers keep them in order.
   */
  maxInFlightRequests?: number;
  /**
   * Kafka's enable.idempotence. Default true when acks is "all" (as in Kafka 3+), false when
   * acks is set to 0 or 1. The producer gets a producer id (InitProducerId) and stamps each
   * batch with it, its epoch and a per-partition sequence, so that a retry never writes a
   * batch twice and batches of a partition never reorder. Needs acks "all" and retries > 0.
   */
  idempotent?: boolean;
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

/**
 * One send() call: counts its records as batches settle them and settles the call's
 * promise once all are done (the first failure in message order wins, as before, but only
 * once every record is settled, so none is left unobserved). A call that fails before all
 * its records were queued (no metadata, no buffer space) rejects at once; its queued
 * records still go out and their outcomes are dropped.
 */
class SendCall {
  readonly promise: Promise<RecordMetadata[]>;
  private resolve!: (value: RecordMetadata[]) => void;
  private reject!: (error: Error) => void;
  /** Made at the first success, not at send(), so that it is young when filled (cheaper for the GC). */
  private results: RecordMetadata[] | undefined;
  private readonly count: number;
  private remaining: number;
  private firstErrorIndex = Infinity;
  private firstError: Error | undefined;
  private done = false;

  constructor(
    readonly topic: string,
    count: number,
  ) {
    this.count = count;
    this.remaining = count;
    this.promise = new Promise<RecordMetadata[]>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    if (count === 0) this.finish();
  }

  /**
   * The records of `range` were written at offsets `baseOffset`, `baseOffset + 1`, ... (-1
   * for all with acks=0); `logAppendTimeMs` is the broker's append time, or -1 for CreateTime.
   */
  succeeded(range: SendRange, partition: number, baseOffset: number, logAppendTimeMs: number): void {
    if (this.done) return;
    const { topic } = this;
    const results = (this.results ??= new Array<RecordMetadata>(this.count));
    const { first, count, indices, timestamp, timestamps } = range;
    for (let k = 0; k < count; k++) {
      results[indices === undefined ? first + k : indices[k]!] = {
        topic,
        partition,
        offset: baseOffset < 0 ? -1 : baseOffset + k,
        timestamp: logAppendTimeMs >= 0 ? logAppendTimeMs : timestamps === undefined ? timestamp : timestamps[k]!,
      };
    }
    this.remaining -= count;
    if (this.remaining === 0) this.finish();
  }

  failed(range: SendRange, error: Error): void {
    if (this.done) return;
    // A range's indices grow, so its first is its lowest.
    const index = range.indices === undefined ? range.first : range.indices[0]!;
    if (index < this.firstErrorIndex) {
      this.firstErrorIndex = index;
      this.firstError = error;
    }
    this.remaining -= range.count;
    if (this.remaining === 0) this.finish();
  }

  /** Fails the whole call now (its records could not all be queued). */
  abort(error: Error): void {
    if (this.done) return;
    this.done = true;
    this.reject(error);
  }

  private finish(): void {
    this.done = true;
    if (this.firstError) this.reject(this.firstError);
    else this.resolve(this.results ?? []);
  }
}

type Batch = ProducerBatch<SendCall>;

/**
 * The messages of one send() call, validated and placed on their partitions, not yet
 * queued: one array per field rather than an object per record. The fast path of send()
 * reuses one instance, since it places and queues without awaiting in between.
 */
class PlacedRecords {
  count = 0;
  /** Sum of the records' recordBytesMax: what buffer.memory must have room for. */
  bytesMax = 0;
  /** TopicPartition objects and keys of the topic, by partition, as of placing. */
  tps: readonly { tp: TopicPartition; key: string }[] = [];
  readonly keys: (Buffer | null)[] = [];
  readonly values: (Buffer | null)[] = [];
  readonly headers: (RecordHeader[] | undefined)[] = [];
  readonly timestamps: number[] = [];
  readonly partitions: number[] = [];
  /** recordFieldsBytes of each record (see the protocol's RecordBatchBuilder). */
  readonly fieldsBytes: number[] = [];
  /** recordBytesMax of each record. */
  readonly bytesMaxOf: number[] = [];

  /** Drops the entries past `count`. */
  truncate(): void {
    const n = this.count;
    this.keys.length = n;
    this.values.length = n;
    this.headers.length = n;
    this.timestamps.length = n;
    this.partitions.length = n;
    this.fieldsBytes.length = n;
    this.bytesMaxOf.length = n;
  }
}

/** Free batch buffers the producer keeps for reuse, at most (see the constructor). */
const BUFFER_POOL_BATCHES_MAX = 32;
/** Timestamps beyond ±2^51 ms could make a batch's timestamp deltas overflow the varlong the format allows. */
const TIMESTAMP_MAGNITUDE_MAX_MS = 2 ** 51;
/**
 * How long send() trusts the cached metadata of a topic before it asks the cluster's
 * freshness check (and a refresh when due) again, in the background: as Kafka's producer
 * does, records are placed with the cached partition count meanwhile, so that a due check
 * does not send every call behind it down the slow path; the sender refreshes metadata on
 * any leader error by itself.
 */
const TOPIC_RECHECK_MS_MAX = 1000;

/**
 * Batches in flight per partition with idempotence: the leader remembers a producer's last 5
 * batches (Kafka's NUM_BATCHES_TO_RETAIN), so a retry of any of them is recognised.
 */
export const IDEMPOTENT_IN_FLIGHT_PER_PARTITION_MAX = 5;
const INT32_MAX = 2 ** 31 - 1;
/** Kafka's producer epochs are int16: past this the producer takes a new producer id. */
const PRODUCER_EPOCH_MAX = 32_767;

/** `seq + delta` in int32 sequence space, wrapping to 0 after 2^31-1 (as the broker counts). */
export function incrementSequence(seq: number, delta: number): number {
  return seq > INT32_MAX - delta ? delta - (INT32_MAX - seq) - 1 : seq + delta;
}

interface PartitionSequences {
  /** Sequence the next new batch gets. */
  nextSequence: number;
  /** Last sequence the leader acknowledged in this epoch, -1 before the first. */
  lastAckedSequence: number;
  inflight: Set<Batch>;
}

/** Leader answers about sequences that, with idempotence, say an earlier batch is missing. */
const SEQUENCE_ERRORS: ReadonlySet<ErrorName> = new Set<ErrorName>(["OUT_OF_ORDER_SEQUENCE_NUMBER", "UNKNOWN_PRODUCER_ID"]);

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
 * Sends records to topics. send() picks each record's partition, encodes it into that
 * partition's open batch (a RecordBatch v2 written record by record, as Kafka's
 * MemoryRecordsBuilder does; per call and batch only a SendRange is kept, which settles the
 * call) and returns a promise that settles when the broker acknowledged it. A sender
 * (driven by appends, timers and completions, not a polling loop) sends a partition's batch
 * once it is full (batch.size), has lingered linger.ms, or a flush() asked for it; it groups
 * ready batches by leader into one Produce request per broker, finishing each batch once
 * (compression, header, CRC) at its first send. Retriable failures put the batch back at the front of its queue after a
 * backoff and refresh the metadata; the batch fails once retries or delivery.timeout.ms run out.
 *
 * Idempotence (KIP-98, on by default). The producer asks any broker for a producer id
 * (InitProducerId) before its first batch. Each batch gets, when first drained, the producer
 * id, epoch and the partition's next sequence number; the bytes are finished once and a
 * retry resends them unchanged, so the leader recognises a retry of a batch it already has
 * (answered with the original offsets) and refuses gaps. Up to 5 batches per partition are
 * in flight (the leader remembers a producer's last 5). When one fails with a retriable
 * error, the batches behind it come back OUT_OF_ORDER_SEQUENCE_NUMBER, which is retriable
 * for a batch that is not the next one the leader expects; retries are put back in
 * sequence order and sent one at a time after the partition's in-flight batches settled,
 * ORIGINAL sequences kept, so a retry after a lost response or a leader change neither
 * duplicates nor reorders.
 *
 * When the leader lost batches it had (OUT_OF_ORDER_SEQUENCE_NUMBER for the very next
 * sequence, or UNKNOWN_PRODUCER_ID), or a batch with a sequence failed for good (which
 * leaves a gap), the producer bumps its epoch locally, as Kafka 2.5+ (KIP-360) does for an
 * idempotent producer without transactions: it stops sending, waits for every in-flight
 * batch to settle, increments the epoch (a new producer id from InitProducerId once the
 * epoch would pass 32767), restarts every partition at sequence 0 and re-stamps the
 * queued batches in their order (only their headers and CRCs are rewritten; compressed
 * records are not compressed again). Leaders accept a new epoch at sequence 0 and fence the old
 * one. Like Kafka's, this path can duplicate a batch the old leader wrote whose answer was
 * lost before the bump; it is reached only after data loss on the broker side (unclean
 * election, retention of a producer's last batch) or a failed batch.
 */
export class Producer {
  private readonly common: ResolvedCommon;
  private readonly cluster: Cluster;
  private readonly acc: RecordAccumulator<SendCall>;
  private readonly chooser: PartitionChooser;
  private readonly acks: number;
  private readonly compression: Compression;
  private readonly lingerMs: number;
  private readonly deliveryTimeoutMs: number;
  private readonly maxBlockMs: number;
  private readonly maxRequestSizeBytes: number;
  private readonly bufferMemoryBytes: number;
  private readonly maxInFlightRequests: number;
  private readonly idempotent: boolean;
  /** Idempotence: the current producer id and epoch; undefined until InitProducerId answered. */
  private producerIdAndEpoch: { producerId: number; producerEpoch: number } | undefined;
  private initProducerIdCall: Promise<void> | undefined;
  private initProducerIdRetryAtMs = 0;
  private initProducerIdAttempts = 0;
  /** Idempotence: per partition, the next sequence, the last acknowledged one and the batches in flight. */
  private readonly sequences = new Map<string, PartitionSequences>();
  /** Idempotence: stop sending and bump the epoch once nothing is in flight (see the class comment). */
  private epochBumpPending = false;

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
  /** send() calls still waiting (for metadata or buffer space) to queue their records. */
  private appendsWaiting = 0;
  /** Per topic, monotonic ms when send() last checked its metadata through the cluster. */
  private readonly topicCheckedAtMs = new Map<string, number>();
  /** Per topic, one TopicPartition object and key per partition, reused by every record. */
  private readonly partitionsOf = new Map<string, { tp: TopicPartition; key: string }[]>();
  /** send()'s fast path places into this one (it queues before anything else can run). */
  private placedScratch = new PlacedRecords();
  /** Arguments of PartitionChooser.choose, one object reused for every record. */
  private readonly chooseArgs: ChooseArgs = { topic: "", key: null, value: null, partition: undefined, numPartitions: 0, recordSizeBytes: 0 };

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
    // Kafka's rules: idempotence is the default only where it fits (acks=all, retries > 0);
    // asked for explicitly where it cannot work, it is a configuration error.
    if (options.idempotent === true && this.acks !== -1) {
      throw new FlotillaError("INVALID_CONFIG", `idempotent: true needs acks "all" (-1), got acks ${String(acks)}; set idempotent: false to use acks ${String(acks)}`);
    }
    if (options.idempotent === true && this.common.retry.retries === 0) {
      throw new FlotillaError("INVALID_CONFIG", "idempotent: true needs retries > 0; set idempotent: false to use retries 0");
    }
    if (options.idempotent !== undefined && typeof options.idempotent !== "boolean") throw new FlotillaError("INVALID_CONFIG", `idempotent must be true or false, got ${String(options.idempotent)}`);
    this.idempotent = options.idempotent ?? (this.acks === -1 && this.common.retry.retries > 0);
    this.maxInFlightRequests = checkInt("maxInFlightRequests", options.maxInFlightRequests ?? (this.idempotent ? 5 : 1), 1, IDEMPOTENT_IN_FLIGHT_PER_PARTITION_MAX);
    // Kafka's rule: a batch must be able to linger and then make one full request attempt.
    if (this.deliveryTimeoutMs < this.lingerMs + this.common.requestTimeoutMs) {
      throw new FlotillaError(
        "INVALID_CONFIG",
        `deliveryTimeoutMs (${this.deliveryTimeoutMs}) must be >= lingerMs + requestTimeoutMs (${this.lingerMs + this.common.requestTimeoutMs})`,
      );
    }
    // Free batch buffers kept for reuse (see AccumulatorOptions): up to 32 batches' worth, as
    // many as a few requests in flight to a few brokers complete at once, and at most a
    // quarter of buffer.memory, the memory they take beyond it.
    const bufferPoolBytesMax = Math.min(Math.floor(this.bufferMemoryBytes / 4), BUFFER_POOL_BATCHES_MAX * batchSizeBytes);
    this.acc = new RecordAccumulator<SendCall>({ batchSizeBytes, lingerMs: this.lingerMs, compression: this.compression, bufferPoolBytesMax });
    this.chooser = new PartitionChooser({ unkeyed: options.unkeyedPartitioning ?? "sticky", custom: options.partitioner, batchSizeBytes }, this.common.random);
    this.cluster = makeCluster(this.common);
  }

  /**
   * Queues the messages and resolves with one RecordMetadata per message, in order, once all
   * are acknowledged (per acks). Rejects with the first FlotillaError if any fails; records
   * of other partitions in the same call may still have been written.
   */
  send(request: SendRequest): Promise<RecordMetadata[]> {
    if (this.closing) return Promise.reject(new FlotillaError("INVALID_REQUEST", "send() after close()"));
    const { topic } = request;
    const call = new SendCall(topic, request.messages.length);
    // Fast path: no earlier call is still waiting, the topic's metadata was checked through
    // the cluster before (and is rechecked in the background every TOPIC_RECHECK_MS_MAX) and
    // the records fit in buffer.memory: queue them now, without awaiting anything, so a
    // send() costs no promise beyond the call's own.
    let placedEarly: { placed: PlacedRecords; numPartitions: number } | undefined;
    if (this.appendsWaiting === 0 && request.messages.length > 0) {
      const info = this.cluster.cachedTopic(topic);
      const checkedAtMs = this.topicCheckedAtMs.get(topic);
      const nowMs = this.common.clock.monotonicMs();
      if (info && checkedAtMs !== undefined) {
        if (nowMs - checkedAtMs >= Math.min(TOPIC_RECHECK_MS_MAX, this.common.metadataMaxAgeMs)) this.recheckTopic(topic, nowMs);
        const placed = this.placedScratch;
        try {
          this.place(request, info.partitions.length, placed);
        } catch (err) {
          call.abort(err as Error);
          return call.promise;
        }
        if (this.acc.bytesInUse + placed.bytesMax <= this.bufferMemoryBytes) {
          this.enqueue(call, placed, 0, nowMs);
          return call.promise;
        }
        // No room yet: the slow path takes these placed records over (placing them again
        // would cost as much and move the sticky partitioner twice), and the fast path
        // gets a new scratch.
        placedEarly = { placed, numPartitions: info.partitions.length };
        this.placedScratch = new PlacedRecords();
      }
    }
    // Slow path. Appends happen in call order, also when an earlier call waits for metadata
    // or buffer space, so that records of concurrent send() calls to a partition keep the
    // order of the calls.
    const previous = this.appendTail;
    let appended!: () => void;
    this.appendTail = new Promise<void>((r) => (appended = r));
    this.appendsWaiting++;
    void (async () => {
      try {
        await previous;
        await this.append(request, call, placedEarly);
      } catch (err) {
        call.abort(err as Error);
      } finally {
        this.appendsWaiting--;
        appended();
      }
    })();
    return call.promise;
  }

  /**
   * The background metadata check of a topic send() uses from the cache (one at a time per
   * topic: the check time moves first). When it fails, the topic's next send() takes the
   * slow path, which waits for metadata within max.block.ms and reports the error.
   */
  private recheckTopic(topic: string, nowMs: number): void {
    this.topicCheckedAtMs.set(topic, nowMs);
    this.cluster.topic(topic, nowMs + this.maxBlockMs).catch((err: unknown) => {
      this.topicCheckedAtMs.delete(topic);
      this.common.logger.debug({ topic, err: (err as Error).message }, "background metadata check of a topic failed");
    });
  }

  /** Validates and places every message into `out` (none is queued if one is bad). */
  private place(request: SendRequest, numPartitions: number, out: PlacedRecords): void {
    const { topic, messages } = request;
    let tps = this.partitionsOf.get(topic);
    if (!tps || tps.length !== numPartitions) {
      tps = Array.from({ length: numPartitions }, (_, partition) => ({ tp: { topic, partition }, key: tpKey({ topic, partition }) }));
      this.partitionsOf.set(topic, tps);
    }
    out.tps = tps;
    out.count = 0;
    out.bytesMax = 0;
    const nowMs = this.common.clock.nowMs();
    const args = this.chooseArgs;
    args.topic = topic;
    args.numPartitions = numPartitions;
    let bytesMax = 0;
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i]!;
      const key = toBuffer(m.key);
      const value = toBuffer(m.value);
      const headers = m.headers ? toHeaders(m.headers) : undefined;
      let timestamp = nowMs;
      if (m.timestamp !== undefined) {
        timestamp = m.timestamp;
        if (!Number.isSafeInteger(timestamp) || Math.abs(timestamp) > TIMESTAMP_MAGNITUDE_MAX_MS) {
          throw new FlotillaError("INVALID_TIMESTAMP", `record ${i} for topic "${topic}" has timestamp ${String(timestamp)}; it must be an integer number of ms within ±2^51`);
        }
      }
      const fieldsBytes = recordFieldsBytes(key, value, headers);
      const sizeBytes = recordBytesMax(fieldsBytes);
      if (sizeBytes + BATCH_HEADER_BYTES > this.maxRequestSizeBytes || sizeBytes > this.bufferMemoryBytes) {
        throw new FlotillaError("MESSAGE_TOO_LARGE", `a record of about ${sizeBytes} bytes for topic "${topic}" is larger than maxRequestSizeBytes (${this.maxRequestSizeBytes}) or bufferMemoryBytes`);
      }
      args.key = key;
      args.value = value;
      args.partition = m.partition;
      args.recordSizeBytes = sizeBytes;
      out.partitions[i] = this.chooser.choose(args);
      out.keys[i] = key;
      out.values[i] = value;
      out.headers[i] = headers;
      out.timestamps[i] = timestamp;
      out.fieldsBytes[i] = fieldsBytes;
      out.bytesMaxOf[i] = sizeBytes;
      bytesMax += sizeBytes;
    }
    args.key = null;
    args.value = null;
    out.count = messages.length;
    out.bytesMax = bytesMax;
    // The reused scratch must not hold on to the keys and values of a much larger earlier call.
    if (out.keys.length > 2 * out.count && out.keys.length > 1024) out.truncate();
  }

  /** Queues placed records [from, from + count) into the accumulator (the caller made sure they fit). */
  private enqueue(call: SendCall, placed: PlacedRecords, from: number, nowMs: number, count = placed.count - from): void {
    const { tps } = placed;
    for (let i = from; i < from + count; i++) {
      const { tp, key } = tps[placed.partitions[i]!]!;
      const flags = this.acc.append(tp, key, placed.timestamps[i]!, placed.keys[i]!, placed.values[i]!, placed.headers[i], placed.fieldsBytes[i]!, call, i, nowMs);
      if ((flags & APPEND_NEW_BATCH) !== 0) this.track(this.acc.lastBatch);
      if ((flags & APPEND_BATCH_FULL) !== 0) this.wakeup();
    }
    this.wakeup();
  }

  /**
   * Slow path: looks up the topic, places the messages (unless the fast path did, for the
   * same partition count) and queues them, as many at a time as buffer.memory has room
   * for, waiting for space as needed.
   */
  private async append(request: SendRequest, call: SendCall, placedEarly?: { placed: PlacedRecords; numPartitions: number }): Promise<void> {
    const { topic } = request;
    const startMs = this.common.clock.monotonicMs();
    const blockDeadlineMs = startMs + this.maxBlockMs;
    const info = await withRetries(() => this.cluster.topic(topic, blockDeadlineMs), this.common.retry, this.common, { deadlineMs: blockDeadlineMs });
    this.topicCheckedAtMs.set(topic, this.common.clock.monotonicMs());
    let placed: PlacedRecords;
    if (placedEarly && placedEarly.numPartitions === info.partitions.length) {
      placed = placedEarly.placed;
    } else {
      // Its own PlacedRecords: this call awaits between records, while others use the scratch one.
      placed = new PlacedRecords();
      this.place(request, info.partitions.length, placed);
    }
    // Each turn queues at least one record or waits (bounded by max.block.ms).
    let next = 0;
    while (next < placed.count) {
      let end = next;
      let bytes = 0;
      while (end < placed.count && this.acc.bytesInUse + bytes + placed.bytesMaxOf[end]! <= this.bufferMemoryBytes) bytes += placed.bytesMaxOf[end++]!;
      if (end === next) {
        try {
          await this.waitForSpace(placed.bytesMaxOf[next]!, blockDeadlineMs);
        } catch (err) {
          // Records already queued still go out; their outcome is dropped with this call's error.
          this.wakeup();
          throw err;
        }
        // There is room now, or nothing is outstanding (then the record goes in anyway).
        end = next + 1;
      }
      this.enqueue(call, placed, next, this.common.clock.monotonicMs(), end - next);
      next = end;
    }
    this.wakeup();
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
      const expired = `${b.recordCount} record(s) for ${b.tp.topic}-${b.tp.partition} expired after ${nowMs - b.createdMs} ms (deliveryTimeoutMs ${this.deliveryTimeoutMs})`;
      // A batch that expired while backing off for a retry failed for the reason it was
      // retrying (as when the retry budget ends before the deadline), not for lack of time alone.
      const last = b.lastError;
      this.fail(b, FlotillaError.is(last) ? new FlotillaError(last.errorName, `${expired}, last error: ${last.message.replace(`${last.errorName}: `, "")}`, { cause: last }) : new FlotillaError("REQUEST_TIMED_OUT", expired));
    }
    if (this.idempotent && this.idempotenceBlocksSending(nowMs)) return;
    const { ready, nextCheckDelayMs } = this.acc.ready(nowMs, this.flushes > 0 || this.closing, this.idempotent ? this.idempotentMuted : this.inflightPartitions);
    const byLeader = new Map<number, TopicPartition[]>();
    let leaderMissing = false;
    let sentAny = false;
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
      if (batches.length > 0) {
        void this.sendRequest(nodeId, batches);
        // With idempotence a partition may have more batches in flight: another pass
        // drains its next one, up to the per-broker and per-partition limits.
        if (this.idempotent) sentAny = true;
      }
    }
    if (sentAny) this.wakeup();
    if (leaderMissing) this.refreshMetadata();
    if (nextCheckDelayMs !== undefined) this.scheduleAt(nextCheckDelayMs);
    else if (leaderMissing) this.scheduleAt(this.common.retry.retryBackoffMs);
  }

  // ---------------------------------------------------------------------------------------
  // Idempotence (see the class comment).

  /**
   * A partition with idempotence sends a new batch while fewer than 5 are in flight, and a
   * retry (a batch that already has its sequence) only once nothing of it is in flight, so
   * that retries reach the leader in sequence order.
   */
  private readonly idempotentMuted = (key: string, first: Batch): boolean => {
    const inflight = this.sequences.get(key)?.inflight.size ?? 0;
    return first.hasSequence ? inflight > 0 : inflight >= IDEMPOTENT_IN_FLIGHT_PER_PARTITION_MAX;
  };

  private sequenceState(tp: TopicPartition): PartitionSequences {
    const key = tpKey(tp);
    let st = this.sequences.get(key);
    if (!st) {
      st = { nextSequence: 0, lastAckedSequence: -1, inflight: new Set() };
      this.sequences.set(key, st);
    }
    return st;
  }

  /** Whether the sender must wait: for a producer id, or for in-flight batches before an epoch bump. */
  private idempotenceBlocksSending(nowMs: number): boolean {
    if (this.epochBumpPending) {
      // Completions wake the sender up, so this is re-checked once the last batch settles.
      for (const st of this.sequences.values()) if (st.inflight.size > 0) return true;
      this.bumpEpoch();
    }
    if (this.producerIdAndEpoch) return false;
    if (this.acc.queuedBatches > 0) this.initProducerId(nowMs);
    return true;
  }

  /** Kafka 2.5+'s local epoch bump for an idempotent producer; called with nothing in flight. */
  private bumpEpoch(): void {
    const current = this.producerIdAndEpoch;
    this.epochBumpPending = false;
    this.producerIdAndEpoch = current && current.producerEpoch < PRODUCER_EPOCH_MAX ? { producerId: current.producerId, producerEpoch: current.producerEpoch + 1 } : undefined;
    this.sequences.clear();
    let restamped = 0;
    for (const b of this.acc.queued()) {
      if (!b.hasSequence) continue;
      b.clearSequence();
      restamped++;
    }
    this.common.logger.warn({ from: current, to: this.producerIdAndEpoch ?? "a new producer id", restampedBatches: restamped }, "bumping the producer epoch: the leader lost sequences or a batch failed; unacknowledged batches get new sequences");
  }

  /** One InitProducerId at a time, to any broker, with backoff between failed attempts. */
  private initProducerId(nowMs: number): void {
    if (this.initProducerIdCall) return;
    if (nowMs < this.initProducerIdRetryAtMs) {
      this.scheduleAt(this.initProducerIdRetryAtMs - nowMs);
      return;
    }
    this.initProducerIdCall = (async () => {
      try {
        const response = await this.cluster.anyConnection().initProducerId({ transactionalId: "" }, { timeoutMs: this.common.requestTimeoutMs });
        const err = errorFromFields(response.errorCode, response.errorMessage);
        if (err) throw err;
        this.producerIdAndEpoch = { producerId: response.producerId, producerEpoch: response.producerEpoch };
        this.initProducerIdAttempts = 0;
        this.common.logger.debug(this.producerIdAndEpoch, "got a producer id");
      } catch (err) {
        this.cluster.rotate();
        this.initProducerIdAttempts++;
        const fe = err instanceof FlotillaError ? err : new FlotillaError("NETWORK_EXCEPTION", String(err), { cause: err });
        if (!fe.retriable) {
          // Kafka treats a failed InitProducerId as fatal for what waits: fail it, not hang.
          for (const b of this.acc.abortAll()) this.fail(b, new FlotillaError(fe.errorName, `no producer id for the idempotent producer: ${fe.message}`, { cause: fe }));
          return;
        }
        const waitMs = backoffMs(this.initProducerIdAttempts, this.common.retry, this.common.random.next());
        this.initProducerIdRetryAtMs = this.common.clock.monotonicMs() + waitMs;
        this.common.logger.warn({ err: fe.message, waitMs }, "InitProducerId failed; will retry");
      }
    })().finally(() => {
      this.initProducerIdCall = undefined;
      this.wakeup();
    });
  }

  /** Stamps a batch that is drained for the first time with the producer id, epoch and the partition's next sequence. */
  private stampSequence(batch: Batch): void {
    const pe = this.producerIdAndEpoch;
    assert(pe !== undefined, "an idempotent batch is drained only once the producer has an id");
    const st = this.sequenceState(batch.tp);
    batch.producerId = pe.producerId;
    batch.producerEpoch = pe.producerEpoch;
    batch.baseSequence = st.nextSequence;
    st.nextSequence = incrementSequence(st.nextSequence, batch.recordCount);
  }

  /** Whether `batch` is the next one the leader expects: an error for it is about it, not about an earlier batch. */
  private isNextSequence(batch: Batch): boolean {
    const last = this.sequenceState(batch.tp).lastAckedSequence;
    return last < 0 ? batch.baseSequence === 0 : incrementSequence(last, 1) === batch.baseSequence;
  }

  private onIdempotentAck(batch: Batch): void {
    const st = this.sequenceState(batch.tp);
    // A retry of a batch the leader had (answered with its original offsets) may come after
    // later batches were acknowledged: only a batch that follows moves the acknowledged mark.
    if (st.lastAckedSequence < 0 || this.isNextSequence(batch)) st.lastAckedSequence = incrementSequence(batch.baseSequence, batch.recordCount - 1);
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
      if (this.idempotent) {
        if (!b.hasSequence) this.stampSequence(b);
        this.sequenceState(b.tp).inflight.add(b);
      } else this.inflightPartitions.add(tpKey(b.tp));
      b.attempts++;
    }
    try {
      const topics = new Map<string, { partition: number; records: Buffer }[]>();
      for (const b of batches) {
        // Encoded into its buffer at append; finished (compressed, header, CRC) once, at the
        // first send, and re-stamped only if an epoch bump changed its producer state.
        const encoded = this.acc.encode(b);
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
        else {
          if (this.idempotent) this.onIdempotentAck(b);
          this.succeed(b, { offset: pr.baseOffset, logAppendTimeMs: pr.logAppendTimeMs }, true);
        }
      }
    } finally {
      for (const b of batches) {
        if (this.idempotent) this.sequences.get(tpKey(b.tp))?.inflight.delete(b);
        else this.inflightPartitions.delete(tpKey(b.tp));
      }
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

  private succeed(batch: Batch, delivery: { offset: number; logAppendTimeMs: number }, completeNow: boolean): void {
    const { offset, logAppendTimeMs } = delivery;
    const { partition } = batch.tp;
    // O(send() calls in the batch), plus the RecordMetadata per record that send() returns.
    let at = 0;
    for (const range of batch.ranges) {
      range.owner.succeeded(range, partition, offset < 0 ? -1 : offset + at, logAppendTimeMs);
      at += range.count;
    }
    if (completeNow) this.complete(batch);
  }

  private fail(batch: Batch, error: Error): void {
    // A sequence that never reaches the leader leaves a gap every later batch would trip on.
    if (this.idempotent && batch.hasSequence) this.epochBumpPending = true;
    for (const range of batch.ranges) range.owner.failed(range, error);
    this.complete(batch);
  }

  private handleError(batch: Batch, err: FlotillaError): void {
    if (this.acks === 0) {
      // The caller was already told; nothing to retry for (Kafka's acks=0 does not retry).
      this.common.logger.warn({ topic: batch.tp.topic, partition: batch.tp.partition, err: err.message }, "acks=0 batch failed");
      this.complete(batch);
      return;
    }
    let sequenceRetry = false;
    if (this.idempotent && batch.hasSequence && SEQUENCE_ERRORS.has(err.errorName)) {
      // For a batch behind one that failed, the leader's complaint is about that earlier
      // batch: retry once it went through (Kafka's TransactionManager.canRetry). For the very
      // batch the leader should take next, the leader lost sequences: bump the epoch.
      if (this.isNextSequence(batch)) {
        this.epochBumpPending = true;
        this.common.logger.warn({ topic: batch.tp.topic, partition: batch.tp.partition, baseSequence: batch.baseSequence, err: err.message }, "the leader lost this producer's sequences; the epoch will be bumped");
      }
      sequenceRetry = true;
    }
    const nowMs = this.common.clock.monotonicMs();
    const waitMs = backoffMs(batch.attempts, this.common.retry, this.common.random.next());
    if (METADATA_ERRORS.has(err.errorName)) this.refreshMetadata();
    const deadlineMs = batch.createdMs + this.deliveryTimeoutMs;
    const retry = sequenceRetry
      ? batch.attempts <= this.common.retry.retries && nowMs + waitMs < deadlineMs
      : shouldRetry(err, batch.attempts, this.common.retry.retries, nowMs, deadlineMs, waitMs);
    if (!this.closed && retry) {
      this.common.logger.debug({ topic: batch.tp.topic, partition: batch.tp.partition, attempt: batch.attempts, waitMs, err: err.message }, "retrying batch");
      batch.lastError = err;
      this.acc.reenqueue(batch, nowMs + waitMs);
      return;
    }
    assert(batch.recordCount > 0, "a sent batch has records");
    this.fail(batch, err);
  }
}

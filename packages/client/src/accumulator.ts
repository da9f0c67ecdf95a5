import { assert } from "@flotilla/common";
import { BATCH_HEADER_BYTES, RecordBatchBuilder, stampProducerState, type Compression, type RecordHeader } from "@flotilla/protocol";

export interface TopicPartition {
  topic: string;
  partition: number;
}

export function tpKey(tp: TopicPartition): string {
  return `${tp.topic}\u0000${tp.partition}`;
}

/**
 * The records one owner (the producer's send() call) has in one batch: `count` records that
 * sit back to back in the batch, the call's records `first`, `first + 1`, ... or, when the
 * call's records went to several partitions, the call indices listed in `indices`. One range
 * per call and batch (not an object per record) is what settles the call when the batch
 * completes. `timestamp` is the CreateTime of every record of the range unless `timestamps`
 * lists them one by one (made only when they differ).
 */
export interface SendRange<O = unknown> {
  readonly owner: O;
  readonly first: number;
  count: number;
  indices: number[] | undefined;
  readonly timestamp: number;
  timestamps: number[] | undefined;
}

/**
 * Records bound for one partition, sent together as one RecordBatch v2. Records are encoded
 * into the batch's buffer as they are appended (RecordBatchBuilder, as Kafka's
 * MemoryRecordsBuilder); what stays per record is only what send() returns. A batch is
 * closed (accepts no more records) once it is full or drained; `attempts` counts sends,
 * and a batch that failed with a retriable error waits until `retryAtMs` before it is
 * drained again.
 */
export class ProducerBatch<R = unknown> {
  /** The send() calls with records here, in batch order (see SendRange). */
  readonly ranges: SendRange<R>[] = [];
  /** Bytes of the batch, uncompressed: the header plus every record as encoded. */
  sizeBytes = BATCH_HEADER_BYTES;
  recordCount = 0;
  closed = false;
  attempts = 0;
  retryAtMs = 0;
  /** The retriable error of the last failed attempt, reported if delivery.timeout.ms runs out while it waits to retry. */
  lastError: Error | undefined;
  /**
   * The finished batch, kept so that a retry resends the same bytes without re-compressing.
   * Set by RecordAccumulator.encode at the first send; gone once the batch is released.
   */
  encoded: Buffer | undefined;
  /** The records written so far; undefined once released (its buffer goes back to the pool). */
  builder: RecordBatchBuilder | undefined;
  /** The producer state in `encoded` is not the batch's any more (an epoch bump cleared it). */
  restampNeeded = false;
  /**
   * Idempotence: the producer id, epoch and sequence of the first record, stamped when the
   * batch is first drained (-1 until then, and for a producer that is not idempotent). A
   * retry keeps them; only an epoch bump clears them (`clearSequence`) for re-sequencing.
   */
  producerId = -1;
  producerEpoch = -1;
  baseSequence = -1;

  constructor(
    readonly tp: TopicPartition,
    /** Monotonic ms when the first record arrived; linger.ms and delivery.timeout.ms count from here. */
    readonly createdMs: number,
    builder: RecordBatchBuilder,
  ) {
    this.builder = builder;
  }

  get hasSequence(): boolean {
    return this.baseSequence >= 0;
  }

  /** Forgets the idempotence stamp: the next drain stamps it anew, into the same bytes (only the header changes). */
  clearSequence(): void {
    this.producerId = -1;
    this.producerEpoch = -1;
    this.baseSequence = -1;
    if (this.encoded) this.restampNeeded = true;
  }
}

/** A new batch's buffer when no pooled one is free and batch.size is larger (see newBuilder). */
export const BATCH_BUFFER_INITIAL_BYTES = 65_536;

/** Flags `RecordAccumulator.append` returns. */
export const APPEND_NEW_BATCH = 1;
export const APPEND_BATCH_FULL = 2;

/** Whether a partition may not send now: a set of muted partition keys, or a test on its first queued batch. */
export type MutedPartitions<R> = ReadonlySet<string> | ((key: string, first: ProducerBatch<R>) => boolean);

export interface AccumulatorOptions {
  /** Kafka's batch.size: a batch is sent once it holds this many bytes (uncompressed, as encoded). */
  batchSizeBytes: number;
  /** Kafka's linger.ms: how long a batch that is not full waits for more records. */
  lingerMs: number;
  /** Kafka's compression.type, applied to each batch once, when it is first sent. Default "none". */
  compression?: Compression;
  /**
   * Bytes of batch buffers kept for reuse once their batch is done (as Kafka's BufferPool
   * keeps batch.size buffers): a fresh buffer costs an allocation and, from a megabyte or
   * so, a page fault on the first touch of each page; a reused one does not. Batches are
   * made and done at about the same rate, so a few buffers absorb the churn. Default 0.
   */
  bufferPoolBytesMax?: number;
}

export interface ReadyResult {
  /** Partitions whose first batch may be sent now. */
  ready: TopicPartition[];
  /** How long until the next batch becomes ready by time alone; undefined when none waits. */
  nextCheckDelayMs: number | undefined;
}

/**
 * Kafka's RecordAccumulator, without I/O or clocks: the caller passes `nowMs` (monotonic).
 * Per partition it keeps a queue of batches; records join the last open batch while it has
 * room, else a new one starts. The first batch of a partition is ready to send when it is
 * full, when it has lingered `lingerMs`, or when the caller is flushing; a batch that is
 * backing off after a retriable error is not ready until its `retryAtMs`. Partitions with a
 * batch in flight are passed as `muted` and skipped, so batches of a partition go out one at
 * a time and in order, also across retries.
 */
export class RecordAccumulator<R = unknown> {
  private readonly queues = new Map<string, ProducerBatch<R>[]>();
  private bytesInUseValue = 0;
  private readonly compression: Compression;
  /** Free batch.size buffers (see AccumulatorOptions.bufferPoolBytesMax). */
  private readonly pool: Buffer[] = [];
  private readonly poolBytesMax: number;
  private lastBatchValue: ProducerBatch<R> | undefined;

  constructor(private readonly options: AccumulatorOptions) {
    assert(options.batchSizeBytes > 0, "batchSizeBytes must be positive");
    assert(options.lingerMs >= 0, "lingerMs must be >= 0");
    this.compression = options.compression ?? "none";
    this.poolBytesMax = options.bufferPoolBytesMax ?? 0;
  }

  /** Bytes held by batches not yet completed (queued or in flight): what buffer.memory limits. */
  get bytesInUse(): number {
    return this.bytesInUseValue;
  }

  /** Number of batches waiting (not in flight). */
  get queuedBatches(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.length;
    return n;
  }

  /** The batch the last append() wrote to. */
  get lastBatch(): ProducerBatch<R> {
    assert(this.lastBatchValue !== undefined, "lastBatch before any append");
    return this.lastBatchValue;
  }

  /**
   * Encodes a record (its CreateTime `timestamp`, key, value, headers and `fieldsBytes` =
   * recordFieldsBytes of them) into the partition's last open batch, or into a new batch
   * when it does not fit there; a record larger than batch.size gets a batch of its own. The
   * record is `owner`'s record number `index`. Returns APPEND_NEW_BATCH when a batch was
   * started and APPEND_BATCH_FULL when the batch is now full (so the caller may send without
   * waiting for linger.ms), or'ed; `lastBatch` is the batch. No object is made per record.
   */
  append(
    tp: TopicPartition,
    key: string,
    timestamp: number,
    recordKey: Buffer | null,
    value: Buffer | null,
    headers: RecordHeader[] | undefined,
    fieldsBytes: number,
    owner: R,
    index: number,
    nowMs: number,
  ): number {
    let q = this.queues.get(key);
    if (!q) {
      q = [];
      this.queues.set(key, q);
    }
    const last = q[q.length - 1];
    let batch: ProducerBatch<R> | undefined;
    let flags = 0;
    let recordBytes = 0;
    if (last && !last.closed && last.attempts === 0) {
      recordBytes = last.builder!.recordBytes(timestamp, fieldsBytes);
      if (last.sizeBytes + recordBytes <= this.options.batchSizeBytes) batch = last;
      else last.closed = true;
    } else if (last) {
      last.closed = true;
    }
    if (batch === undefined) {
      // The first record of a batch has both deltas 0.
      const bodyBytes = fieldsBytes + 2;
      recordBytes = varintBytes(bodyBytes) + bodyBytes;
      batch = new ProducerBatch<R>(tp, nowMs, this.newBuilder(BATCH_HEADER_BYTES + recordBytes));
      q.push(batch);
      this.bytesInUseValue += BATCH_HEADER_BYTES;
      flags = APPEND_NEW_BATCH;
    }
    const written = batch.builder!.append(timestamp, recordKey, value, headers, fieldsBytes);
    assert(written === recordBytes, "a record takes the bytes its batch predicted");
    batch.sizeBytes += recordBytes;
    batch.recordCount++;
    this.bytesInUseValue += recordBytes;
    addToRange(batch.ranges, owner, index, timestamp);
    this.lastBatchValue = batch;
    // Full when the next record of the same size would not fit (Kafka closes a batch the
    // moment the next append fails; this anticipates it so the sender need not wait).
    if (batch.sizeBytes + recordBytes > this.options.batchSizeBytes) {
      batch.closed = true;
      flags |= APPEND_BATCH_FULL;
    }
    return flags;
  }

  /**
   * The batch's bytes as sent, with its current producer state (producerId, epoch,
   * baseSequence): built and compressed at the first call, kept for retries; after an
   * epoch bump only the header is rewritten. A compressed batch gives its uncompressed
   * buffer back to the pool at once.
   */
  encode(batch: ProducerBatch<R>): Buffer {
    if (batch.encoded !== undefined) {
      if (batch.restampNeeded) {
        stampProducerState(batch.encoded, batch);
        batch.restampNeeded = false;
      }
      return batch.encoded;
    }
    const builder = batch.builder;
    assert(builder !== undefined, "a released batch cannot be encoded");
    batch.closed = true;
    batch.encoded = builder.build(batch);
    if (this.compression !== "none") this.recycle(batch);
    return batch.encoded;
  }
  /** Which partitions have a batch to send now, and when the next one will by lingering. */
  ready(nowMs: number, flushing: boolean, muted: MutedPartitions<R>): ReadyResult {
    const ready: TopicPartition[] = [];
    let next: number | undefined;
    for (const [key, q] of this.queues) {
      const first = q[0];
      if (!first || (typeof muted === "function" ? muted(key, first) : muted.has(key))) continue;
      let waitMs: number;
      if (first.attempts > 0) {
        waitMs = first.retryAtMs - nowMs;
      } else {
        const full = first.closed || q.length > 1;
        waitMs = full || flushing ? 0 : first.createdMs + this.options.lingerMs - nowMs;
      }
      if (waitMs <= 0) ready.push(first.tp);
      else next = next === undefined ? waitMs : Math.min(next, waitMs);
    }
    return { ready, nextCheckDelayMs: next };
  }

  /**
   * Takes the first batch of each given partition, in order, until adding the next would
   * pass `maxRequestSizeBytes` (the first is always taken so that a large batch still goes
   * out). Drained batches are closed: later records start a new batch.
   */
  drain(tps: readonly TopicPartition[], maxRequestSizeBytes: number): ProducerBatch<R>[] {
    const out: ProducerBatch<R>[] = [];
    let bytes = 0;
    for (const tp of tps) {
      const q = this.queues.get(tpKey(tp));
      const first = q?.[0];
      if (!q || !first) continue;
      if (out.length > 0 && bytes + first.sizeBytes > maxRequestSizeBytes) break;
      q.shift();
      if (q.length === 0) this.queues.delete(tpKey(tp));
      first.closed = true;
      bytes += first.sizeBytes;
      out.push(first);
    }
    return out;
  }

  /**
   * Puts a batch that failed with a retriable error back at the front of its partition's
   * queue; a batch with a sequence goes among the other retries in sequence order (they may
   * fail in any order when several were in flight), so they go out again in that order.
   */
  reenqueue(batch: ProducerBatch<R>, retryAtMs: number): void {
    assert(batch.closed, "only a drained (closed) batch can be re-enqueued");
    batch.retryAtMs = retryAtMs;
    const key = tpKey(batch.tp);
    let q = this.queues.get(key);
    if (!q) {
      q = [];
      this.queues.set(key, q);
    }
    let at = 0;
    if (batch.hasSequence) {
      // Sequences of one producer epoch grow with drain order, so the plain comparison holds
      // except across the int32 wrap, where the lower numbers were drained later.
      const before = (a: ProducerBatch<R>, b: ProducerBatch<R>) => (Math.abs(a.baseSequence - b.baseSequence) > 2 ** 30 ? a.baseSequence > b.baseSequence : a.baseSequence < b.baseSequence);
      while (at < q.length && q[at]!.hasSequence && q[at]!.producerEpoch === batch.producerEpoch && before(q[at]!, batch)) at++;
    }
    q.splice(at, 0, batch);
  }

  /** Every queued batch (not in flight), partition by partition in queue order. */
  queued(): ProducerBatch<R>[] {
    const out: ProducerBatch<R>[] = [];
    for (const q of this.queues.values()) out.push(...q);
    return out;
  }

  /** Removes and returns queued batches older than `deliveryTimeoutMs` (Kafka's delivery.timeout.ms). */
  expire(nowMs: number, deliveryTimeoutMs: number): ProducerBatch<R>[] {
    const out: ProducerBatch<R>[] = [];
    for (const [key, q] of this.queues) {
      // Batches of a partition are in creation order, so expiry takes a prefix.
      while (q.length > 0 && nowMs - (q[0] as ProducerBatch<R>).createdMs >= deliveryTimeoutMs) out.push(q.shift() as ProducerBatch<R>);
      if (q.length === 0) this.queues.delete(key);
    }
    return out;
  }

  /** Removes and returns every queued batch (on close with a timeout, or a fatal error). */
  abortAll(): ProducerBatch<R>[] {
    const out: ProducerBatch<R>[] = [];
    for (const q of this.queues.values()) out.push(...q);
    this.queues.clear();
    return out;
  }

  /**
   * Call once a batch is done (acknowledged, failed or expired) to give its bytes back. Its
   * buffer goes to the pool, so nothing may use `batch.encoded` afterwards (it is cleared):
   * a batch is done only after its request was serialized and answered.
   */
  release(batch: ProducerBatch<R>): void {
    this.bytesInUseValue -= batch.sizeBytes;
    assert(this.bytesInUseValue >= 0, "accumulator released more bytes than it held");
    this.recycle(batch);
    batch.encoded = undefined;
  }

  /** Buffers waiting in the pool (for tests and metrics). */
  get pooledBuffers(): number {
    return this.pool.length;
  }

  /**
   * A builder for a new batch whose first record makes it `firstBatchBytes` long: in a
   * pooled batch.size buffer when there is one; else in a new buffer of batch.size, or, for
   * a batch.size above BATCH_BUFFER_INITIAL_BYTES, one of that size that grows by doubling
   * up to batch.size (so that many partitions with a few records each do not hold a
   * batch.size buffer each); a record larger than batch.size gets a buffer of its size.
   */
  private newBuilder(firstBatchBytes: number): RecordBatchBuilder {
    const size = Math.max(this.options.batchSizeBytes, BATCH_HEADER_BYTES);
    if (firstBatchBytes > size) return new RecordBatchBuilder({ compression: this.compression, capacityBytes: firstBatchBytes });
    const buffer = this.pool.pop() ?? Buffer.allocUnsafeSlow(Math.min(size, Math.max(firstBatchBytes, BATCH_BUFFER_INITIAL_BYTES)));
    return new RecordBatchBuilder({ compression: this.compression, buffer, growthLimitBytes: size });
  }

  /** Takes the batch's builder and keeps its buffer for reuse when it is a batch.size buffer and the pool has room. */
  private recycle(batch: ProducerBatch<R>): void {
    const builder = batch.builder;
    if (builder === undefined) return;
    batch.builder = undefined;
    const buffer = builder.buffer;
    if (buffer.length === this.options.batchSizeBytes && (this.pool.length + 1) * buffer.length <= this.poolBytesMax) this.pool.push(buffer);
  }
}

/** Bytes of a zig-zag varint of a non-negative int32. */
function varintBytes(value: number): number {
  return value < 0x40 ? 1 : value < 0x2000 ? 2 : value < 0x100000 ? 3 : value < 0x8000000 ? 4 : 5;
}

/** Adds record `index` of `owner` (just appended as the batch's last record) to the batch's ranges. */
function addToRange<R>(ranges: SendRange<R>[], owner: R, index: number, timestamp: number): void {
  const range = ranges[ranges.length - 1];
  if (range === undefined || range.owner !== owner) {
    ranges.push({ owner, first: index, count: 1, indices: undefined, timestamp, timestamps: undefined });
    return;
  }
  if (range.indices === undefined && index !== range.first + range.count) {
    // The owner's records in between went to other partitions: list them one by one.
    range.indices = Array.from({ length: range.count }, (_, k) => range.first + k);
  }
  if (range.indices !== undefined) range.indices.push(index);
  if (range.timestamps === undefined && timestamp !== range.timestamp) range.timestamps = new Array<number>(range.count).fill(range.timestamp);
  if (range.timestamps !== undefined) range.timestamps.push(timestamp);
  range.count++;
}

import { assert } from "@flotilla/common";
import { BATCH_HEADER_BYTES } from "@flotilla/protocol";
import type { OutgoingRecord } from "./records.js";

export interface TopicPartition {
  topic: string;
  partition: number;
}

export function tpKey(tp: TopicPartition): string {
  return `${tp.topic}\u0000${tp.partition}`;
}

/**
 * One record waiting in a batch. `owner` is what settles its outcome (the producer's send()
 * call, which counts its records) and `index` the record's place in it: one shared owner
 * per call instead of a promise and a closure per record keeps send() cheap per record.
 */
export interface PendingRecord<O = unknown> {
  record: OutgoingRecord;
  sizeBytes: number;
  owner: O;
  index: number;
}

/**
 * Records bound for one partition, sent together as one RecordBatch v2. A batch is closed
 * (accepts no more records) once it is full or drained; `attempts` counts sends, and a batch
 * that failed with a retriable error waits until `retryAtMs` before it is drained again.
 */
export class ProducerBatch<R = unknown> {
  readonly records: PendingRecord<R>[] = [];
  sizeBytes = BATCH_HEADER_BYTES;
  closed = false;
  attempts = 0;
  retryAtMs = 0;
  /** The retriable error of the last failed attempt, reported if delivery.timeout.ms runs out while it waits to retry. */
  lastError: Error | undefined;
  /** The encoded batch, kept so that a retry resends the same bytes without re-compressing. */
  encoded: Buffer | undefined;
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
  ) {}

  get recordCount(): number {
    return this.records.length;
  }

  get hasSequence(): boolean {
    return this.baseSequence >= 0;
  }

  /** Forgets the idempotence stamp (and the bytes carrying it): the next drain stamps it anew. */
  clearSequence(): void {
    this.producerId = -1;
    this.producerEpoch = -1;
    this.baseSequence = -1;
    this.encoded = undefined;
  }
}

/** Whether a partition may not send now: a set of muted partition keys, or a test on its first queued batch. */
export type MutedPartitions<R> = ReadonlySet<string> | ((key: string, first: ProducerBatch<R>) => boolean);

export interface AccumulatorOptions {
  /** Kafka's batch.size: a batch is sent once it holds this many bytes (estimated, uncompressed). */
  batchSizeBytes: number;
  /** Kafka's linger.ms: how long a batch that is not full waits for more records. */
  lingerMs: number;
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

  constructor(private readonly options: AccumulatorOptions) {
    assert(options.batchSizeBytes > 0, "batchSizeBytes must be positive");
    assert(options.lingerMs >= 0, "lingerMs must be >= 0");
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

  /**
   * Adds a record to the partition's last open batch, or to a new batch when it does not fit.
   * A record larger than batch.size gets a batch of its own. Returns the batch it joined and
   * whether that batch is now full (so the caller may send without waiting for linger.ms).
   */
  append(tp: TopicPartition, pending: PendingRecord<R>, nowMs: number, key: string = tpKey(tp)): { batch: ProducerBatch<R>; batchFull: boolean; newBatch: boolean } {
    let q = this.queues.get(key);
    if (!q) {
      q = [];
      this.queues.set(key, q);
    }
    const last = q[q.length - 1];
    let batch: ProducerBatch<R>;
    let newBatch = false;
    if (last && !last.closed && last.attempts === 0 && last.sizeBytes + pending.sizeBytes <= this.options.batchSizeBytes) {
      batch = last;
    } else {
      if (last) last.closed = true;
      batch = new ProducerBatch<R>(tp, nowMs);
      q.push(batch);
      newBatch = true;
    }
    batch.records.push(pending);
    batch.sizeBytes += pending.sizeBytes;
    this.bytesInUseValue += pending.sizeBytes;
    if (newBatch) this.bytesInUseValue += BATCH_HEADER_BYTES;
    // Full when the next record of the same size would not fit (Kafka closes a batch the
    // moment the next append fails; this anticipates it so the sender need not wait).
    const batchFull = batch.sizeBytes + pending.sizeBytes > this.options.batchSizeBytes;
    if (batchFull) batch.closed = true;
    return { batch, batchFull, newBatch };
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

  /** Call once a batch is done (acknowledged, failed or expired) to give its bytes back. */
  release(batch: ProducerBatch<R>): void {
    this.bytesInUseValue -= batch.sizeBytes;
    assert(this.bytesInUseValue >= 0, "accumulator released more bytes than it held");
  }
}

/**
 * Idempotent-producer state of one partition replica (Kafka's ProducerStateManager,
 * KIP-98 without transactions).
 *
 * For each producer id seen in the log: its epoch and the metadata of its last
 * PRODUCER_BATCHES_RETAINED batches (baseSequence, lastSequence, firstOffset, lastOffset,
 * maxTimestamp). Everything comes from RecordBatch v2 headers (producerId, producerEpoch,
 * baseSequence, lastOffsetDelta, maxTimestamp): no record is decoded.
 *
 * The leader checks a produce request's batches against it before appending
 * (`checkLeaderAppend`):
 *   - producerId -1: not idempotent, nothing checked;
 *   - epoch older than the known one: INVALID_PRODUCER_EPOCH (a zombie of a bumped producer);
 *   - epoch newer than the known one: the batch must start at sequence 0, else
 *     OUT_OF_ORDER_SEQUENCE_NUMBER (the producer bumped its epoch and restarted its sequences);
 *   - a producer id the partition has no state for: the batch must start at sequence 0, else
 *     UNKNOWN_PRODUCER_ID (its state was lost, e.g. to retention; the client bumps its epoch);
 *   - same epoch, same (baseSequence, lastSequence) as one of the retained batches: a retry
 *     of a batch already in the log, answered with the ORIGINAL offsets and not appended
 *     (Kafka answers the original metadata rather than DUPLICATE_SEQUENCE_NUMBER);
 *   - same epoch otherwise: baseSequence must be lastSequence + 1 (int32, wrapping to 0
 *     after 2^31-1), else OUT_OF_ORDER_SEQUENCE_NUMBER.
 * Every replica (leader, follower, recovery) then records what it appended (`onAppend`), so a
 * follower that becomes leader already dedupes retries of batches the old leader appended.
 *
 * Loading. The state is built lazily from the log's batch headers (`load`), on the first
 * append after the replica was created or its log was truncated (`invalidate`): that scan
 * reads the log from its start offset, which Kafka avoids with periodic snapshots. Snapshots
 * are not written here: a load costs one sequential read of the partition's log.
 *
 * Bounds: PRODUCER_BATCHES_RETAINED batches per producer (which is why clients keep at
 * most 5 batches in flight per partition) and `producersMax` producers per partition, the
 * least recently appended one forgotten first (Kafka expires producer ids by age,
 * producer.id.expiration.ms).
 */
import { FlotillaError, assert } from "@flotilla/common";
import { BATCH_HEADER_BYTES, batchSizeAt, readBatchHeader, type BatchHeader } from "@flotilla/protocol";

/** Kafka's ProducerStateEntry.NUM_BATCHES_TO_RETAIN: batches remembered per producer for dedup. */
export const PRODUCER_BATCHES_RETAINED = 5;
/** Default bound on producer ids remembered per partition. */
export const PRODUCERS_PER_PARTITION_MAX = 10_000;
/** Bytes read per step when loading the state from the log. */
export const PRODUCER_STATE_LOAD_READ_BYTES = 1_048_576;
/** Kafka's RecordBatch.NO_PRODUCER_ID. */
export const NO_PRODUCER_ID = -1;
const INT32_MAX = 2 ** 31 - 1;

/** What dedup needs of one appended batch. */
export interface BatchMetadata {
  readonly baseSequence: number;
  readonly lastSequence: number;
  readonly firstOffset: number;
  readonly lastOffset: number;
  readonly maxTimestamp: number;
}

export interface ProducerEntry {
  readonly producerId: number;
  readonly producerEpoch: number;
  /** Oldest first; at most PRODUCER_BATCHES_RETAINED, never empty. */
  readonly batches: readonly BatchMetadata[];
}

/** The header fields the state is made of. */
export type ProducerBatchHeader = Pick<BatchHeader, "producerId" | "producerEpoch" | "baseSequence" | "lastOffsetDelta" | "maxTimestamp">;

/** `seq + delta` in int32 sequence space: past 2^31-1 it wraps to 0 (Kafka's DefaultRecordBatch.incrementSequence). */
export function incrementSequence(seq: number, delta: number): number {
  return seq > INT32_MAX - delta ? delta - (INT32_MAX - seq) - 1 : seq + delta;
}

/** Whether `next` directly follows `last` in int32 sequence space. */
export function inSequence(last: number, next: number): boolean {
  return next === last + 1 || (next === 0 && last === INT32_MAX);
}

/** The part of a log the loader reads (PartitionLog has it). */
export interface ProducerStateSource {
  readonly logStartOffset: number;
  readonly logEndOffset: number;
  read(offset: number, options: { maxBytes: number; minOneBatch?: boolean }): Promise<{ records: Buffer; nextOffset: number }>;
}

export type LeaderAppendCheck =
  | { readonly kind: "append" }
  /** The request is a retry of a batch already in the log: answer these offsets, append nothing. */
  | { readonly kind: "duplicate"; readonly firstOffset: number; readonly lastOffset: number }
  /**
   * Only with `waitForEarlier`: a batch of `producerId` starts past the sequence the leader
   * expects next, as if earlier batches of that producer are still on their way.
   */
  | { readonly kind: "ahead"; readonly producerId: number };

/**
 * Whether `seq` lies ahead of `expected` in int32 sequence space (by less than half of it),
 * i.e. batches between them are missing rather than `seq` being an old one.
 */
export function sequenceAhead(expected: number, seq: number): boolean {
  const forward = seq >= expected ? seq - expected : seq + (INT32_MAX - expected) + 1;
  return forward > 0 && forward < 2 ** 30;
}

export class ProducerStateManager {
  private readonly producers = new Map<number, ProducerEntry>();
  private loaded = false;
  /** Bumped by invalidate(), so that a load overtaken by a truncation does not count. */
  private generation = 0;
  private tail: Promise<unknown> = Promise.resolve();
  /** Appends that wait for an earlier batch of a producer (see waitForAppend), by producer id. */
  private readonly appendWaiters = new Map<number, Set<() => void>>();

  constructor(
    /** "topic-partition", for error messages. */
    private readonly name: string,
    private readonly producersMax = PRODUCERS_PER_PARTITION_MAX,
  ) {
    assert(producersMax >= 1, "producersMax must be at least 1");
  }

  get isLoaded(): boolean {
    return this.loaded;
  }

  get producerCount(): number {
    return this.producers.size;
  }

  entry(producerId: number): ProducerEntry | undefined {
    return this.producers.get(producerId);
  }

  /** Every entry, by producer id (tests compare a loaded state with a live one). */
  entries(): ProducerEntry[] {
    return [...this.producers.values()].sort((a, b) => a.producerId - b.producerId);
  }

  /**
   * Runs `fn` after every earlier exclusive section ended: the leader's check, append and
   * update of one request happen with no other request's in between (two pipelined batches
   * of one producer must see each other's sequence).
   */
  runExclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** The log was truncated (or replaced): forget everything; the next append reloads. */
  invalidate(): void {
    this.generation++;
    this.loaded = false;
    this.producers.clear();
    this.wakeAll();
  }

  /**
   * Resolves at the next append recorded for `producerId`, at invalidate() or wakeAll(), or
   * after `timeoutMs`, whichever comes first. A leader append whose batch arrived ahead of
   * the same producer's earlier ones (pipelined requests are separate gRPC calls, which
   * HTTP/2 may deliver in any order) waits here, outside the exclusive section, so that the
   * earlier batches can go first; then it checks again.
   */
  waitForAppend(producerId: number, timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      let set = this.appendWaiters.get(producerId);
      if (!set) this.appendWaiters.set(producerId, (set = new Set()));
      const waiters = set;
      const wake = (): void => {
        clearTimeout(timer);
        waiters.delete(wake);
        if (waiters.size === 0 && this.appendWaiters.get(producerId) === waiters) this.appendWaiters.delete(producerId);
        resolve();
      };
      const timer = setTimeout(wake, Math.max(0, timeoutMs));
      waiters.add(wake);
    });
  }

  /** Wakes every waitForAppend (the replica's role changed: the waits re-check and fail fast). */
  wakeAll(): void {
    for (const set of [...this.appendWaiters.values()]) for (const wake of [...set]) wake();
  }

  /** Appends waiting in waitForAppend (tests, diagnostics). */
  get appendWaiterCount(): number {
    let n = 0;
    for (const set of this.appendWaiters.values()) n += set.size;
    return n;
  }

  /**
   * Builds the state from the batch headers of [logStartOffset, logEndOffset) unless it is
   * loaded. Call inside runExclusive, so no append interleaves with the scan.
   */
  async ensureLoaded(log: ProducerStateSource): Promise<void> {
    // Bounded: each pass either loads or was overtaken by invalidate(), which only a
    // truncation calls; a handful of those in a row means something is wrong.
    for (let attempt = 0; attempt < 16 && !this.loaded; attempt++) {
      const generation = this.generation;
      const fresh = new ProducerStateManager(this.name, this.producersMax);
      await fresh.scan(log);
      if (generation !== this.generation) continue;
      this.producers.clear();
      for (const [id, e] of fresh.producers) this.producers.set(id, e);
      this.loaded = true;
    }
    assert(this.loaded, () => `producer state of ${this.name} could not be loaded: the log kept being truncated`);
  }

  private async scan(log: ProducerStateSource): Promise<void> {
    const endOffset = log.logEndOffset;
    let offset = log.logStartOffset;
    // Bounded by the log's size: every read moves `offset` forward (minOneBatch), else stops.
    while (offset < endOffset) {
      const { records, nextOffset } = await log.read(offset, { maxBytes: PRODUCER_STATE_LOAD_READ_BYTES, minOneBatch: true });
      if (records.length === 0 || nextOffset <= offset) break;
      this.applyBatches(records, endOffset);
      offset = nextOffset;
    }
  }

  /** Records every batch in `records` (back-to-back, offsets assigned) that starts below `endOffset`. */
  applyBatches(records: Buffer, endOffset = Number.POSITIVE_INFINITY): void {
    let pos = 0;
    while (pos + BATCH_HEADER_BYTES <= records.length) {
      const header = readBatchHeader(records, pos);
      if (header.baseOffset >= endOffset) break;
      this.onAppend(header, header.baseOffset);
      pos += batchSizeAt(records, pos);
    }
  }

  /**
   * Leader: checks a request's batches in order (see the file comment). Throws the coded
   * error of the first that fails. A duplicate is answered only for a request of that one
   * batch (what producers send); a duplicate among several batches is
   * DUPLICATE_SEQUENCE_NUMBER, since the request can be answered neither as a retry nor as
   * new data.
   */
  checkLeaderAppend(headers: readonly ProducerBatchHeader[], options: { waitForEarlier?: boolean } = {}): LeaderAppendCheck {
    assert(this.loaded, "producer state is checked only once loaded");
    // What the earlier batches of this request would make of each producer's entry.
    const pending = new Map<number, { producerEpoch: number; lastSequence: number }>();
    for (const h of headers) {
      if (h.producerId < 0) continue;
      if (h.baseSequence < 0) {
        throw new FlotillaError("INVALID_REQUEST", `batch of producer ${h.producerId} for ${this.name} has sequence ${h.baseSequence}; an idempotent batch carries a sequence >= 0`);
      }
      const lastSequence = incrementSequence(h.baseSequence, h.lastOffsetDelta);
      const entry = this.producers.get(h.producerId);
      const current = pending.get(h.producerId) ?? (entry ? { producerEpoch: entry.producerEpoch, lastSequence: entry.batches[entry.batches.length - 1]!.lastSequence } : undefined);
      // Ahead of the producer's state, as the first of its batches in this request: with
      // waitForEarlier, earlier batches may still arrive (never within one request).
      const mayWait = options.waitForEarlier === true && !pending.has(h.producerId);
      if (current === undefined) {
        if (h.baseSequence !== 0 && mayWait) return { kind: "ahead", producerId: h.producerId };
        if (h.baseSequence !== 0) {
          throw new FlotillaError("UNKNOWN_PRODUCER_ID", `${this.name} has no state for producer ${h.producerId} (epoch ${h.producerEpoch}) and its batch starts at sequence ${h.baseSequence}, not 0`);
        }
      } else if (h.producerEpoch < current.producerEpoch) {
        throw new FlotillaError("INVALID_PRODUCER_EPOCH", `producer ${h.producerId} sent epoch ${h.producerEpoch} to ${this.name}, older than its current epoch ${current.producerEpoch}`);
      } else if (h.producerEpoch > current.producerEpoch) {
        if (h.baseSequence !== 0 && mayWait) return { kind: "ahead", producerId: h.producerId };
        if (h.baseSequence !== 0) {
          throw new FlotillaError("OUT_OF_ORDER_SEQUENCE_NUMBER", `producer ${h.producerId} starts epoch ${h.producerEpoch} on ${this.name} at sequence ${h.baseSequence}; a new epoch starts at 0`);
        }
      } else {
        const duplicate = !pending.has(h.producerId) ? entry?.batches.find((b) => b.baseSequence === h.baseSequence && b.lastSequence === lastSequence) : undefined;
        if (duplicate) {
          if (headers.length !== 1) {
            throw new FlotillaError("DUPLICATE_SEQUENCE_NUMBER", `a request of ${headers.length} batches for ${this.name} repeats producer ${h.producerId}'s batch of sequences ${h.baseSequence}..${lastSequence}`);
          }
          return { kind: "duplicate", firstOffset: duplicate.firstOffset, lastOffset: duplicate.lastOffset };
        }
        if (!inSequence(current.lastSequence, h.baseSequence)) {
          if (mayWait && sequenceAhead(incrementSequence(current.lastSequence, 1), h.baseSequence)) return { kind: "ahead", producerId: h.producerId };
          throw new FlotillaError(
            "OUT_OF_ORDER_SEQUENCE_NUMBER",
            `producer ${h.producerId} (epoch ${h.producerEpoch}) sent sequence ${h.baseSequence} to ${this.name}; expected ${incrementSequence(current.lastSequence, 1)}`,
          );
        }
      }
      pending.set(h.producerId, { producerEpoch: h.producerEpoch, lastSequence });
    }
    return { kind: "append" };
  }

  /**
   * Records an appended batch at `firstOffset` (its offsets as stored). No checks: the leader
   * checked before appending, and a follower or a load takes the log as the truth. A newer
   * epoch replaces the producer's retained batches.
   */
  onAppend(header: ProducerBatchHeader, firstOffset: number): void {
    if (header.producerId < 0) return;
    const batch: BatchMetadata = {
      baseSequence: header.baseSequence,
      lastSequence: incrementSequence(header.baseSequence, header.lastOffsetDelta),
      firstOffset,
      lastOffset: firstOffset + header.lastOffsetDelta,
      maxTimestamp: header.maxTimestamp,
    };
    const old = this.producers.get(header.producerId);
    const waiters = this.appendWaiters.get(header.producerId);
    if (waiters) for (const wake of [...waiters]) wake();
    let batches: BatchMetadata[];
    if (old && old.producerEpoch === header.producerEpoch) batches = [...old.batches.slice(-(PRODUCER_BATCHES_RETAINED - 1)), batch];
    else if (old && old.producerEpoch > header.producerEpoch) return; // a stale epoch in the log (loaded history) changes nothing
    else batches = [batch];
    // Delete and re-insert: the map's order is least recently appended first.
    this.producers.delete(header.producerId);
    this.producers.set(header.producerId, { producerId: header.producerId, producerEpoch: header.producerEpoch, batches });
    if (this.producers.size > this.producersMax) {
      const oldest = this.producers.keys().next().value as number;
      this.producers.delete(oldest);
    }
  }
}

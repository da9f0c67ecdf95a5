/**
 * The producer side of `flotilla perf produce` (like Kafka's kafka-producer-perf-test): one
 * Producer sends `numRecords` records of `recordSizeBytes` bytes, optionally capped at a
 * records/s rate, and measures each record's latency from the send() call that carried it
 * to the acknowledgement of that call.
 *
 * Latency granularity: Producer.send() takes a list of messages and settles once all of
 * them are acknowledged, so the tool sends `recordsPerSend` records per call (default 100,
 * fewer under a low throughput cap so pacing stays smooth) and counts that call's latency
 * for each of its records. The records of one call are appended together, so they normally
 * share one batch and one acknowledgement; when a call spans two batches, its records get
 * the later one's time (an upper bound). `--records-per-send 1` measures every record on
 * its own, at a higher client CPU cost per record.
 *
 * Overhead: one payload buffer and one message object are made up front and reused for
 * every record, and one array of `recordsPerSend` references to it for every call (the
 * producer copies what it needs at append), so the tool allocates per call, not per record.
 * As in Kafka's tool, every record carries the same random payload of uppercase letters,
 * which matters for compression ratios: identical records in a batch compress well.
 */
import { randomBytes } from "node:crypto";
import { Producer, type Acks, type ProducerMessage } from "@flotilla/client";
import type { Logger } from "@flotilla/common/logger";
import type { Compression } from "@flotilla/protocol";
import { LatencyHistogram, ProgressWindow, throughput, Throttle, type LatencySummary, type ThroughputFigures } from "./stats.js";

export interface ProducePerfOptions {
  bootstrapServers: string;
  topic: string;
  numRecords: number;
  recordSizeBytes: number;
  /** Records/s cap; <= 0 (the tool's -1) for none. */
  throughput: number;
  acks: Acks;
  batchSizeBytes: number;
  lingerMs: number;
  compression: Compression;
  /** Records per send() call (see the module comment). Default 100. */
  recordsPerSend?: number;
  /** Stop sending new records after this long (the records sent still count). Default: no limit. */
  maxDurationMs?: number;
  /** Kafka's buffer.memory. Default 32 MiB. */
  bufferMemoryBytes?: number;
  requestTimeoutMs?: number;
  /** How often onProgress is called. Default 5000. */
  progressIntervalMs?: number;
  onProgress?: (window: ProgressWindow, nowMs: number) => void;
  logger?: Logger;
  clientId?: string;
}

export interface ProducePerfResult {
  throughput: ThroughputFigures;
  latency: LatencySummary;
  histogram: LatencyHistogram;
  /** Records handed to send(). */
  sent: number;
  /** Records whose send() failed (not in the figures). */
  errors: number;
  firstError: string | undefined;
  /** Wall-clock bounds of the run (ms since the epoch), for aggregating processes. */
  startedAtEpochMs: number;
  endedAtEpochMs: number;
}

const DEFAULT_RECORDS_PER_SEND = 100;
const DEFAULT_BUFFER_MEMORY_BYTES = 32 * 1024 * 1024;
/**
 * Per-record bytes the producer's buffer check counts beyond the value: its upper bound for
 * a record with a null key and no headers (attributes, key, value length and header count,
 * timestamp and offset deltas at their largest, the record length). Counting fewer makes
 * the tool overrun the buffer, and every call that finds no room takes send()'s slower
 * waiting path.
 */
const RECORD_OVERHEAD_BYTES_ESTIMATE = 24;

/** `size` random uppercase letters, as Kafka's perf tool makes its payload. */
export function randomPayload(size: number): Buffer {
  const b = randomBytes(size);
  for (let i = 0; i < size; i++) b[i] = 65 + (b[i]! % 26);
  return b;
}

/**
 * Records per send() call for a rate cap: at most about 1 ms worth of records, so a capped
 * run sends smoothly instead of in bursts, and at least 1.
 */
export function recordsPerSendFor(requested: number, recordsPerSec: number): number {
  if (!(recordsPerSec > 0)) return requested;
  return Math.max(1, Math.min(requested, Math.floor(recordsPerSec / 1000)));
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The calls in flight and their completions. One object per send() call; its two
 * handlers are bound once here rather than made per call.
 */
class InflightSends {
  records = 0;
  acked = 0;
  ackedBytes = 0;
  errors = 0;
  firstError: string | undefined;
  private waiter: (() => void) | undefined;

  constructor(
    private readonly histogram: LatencyHistogram,
    private readonly window: ProgressWindow,
    private readonly recordSizeBytes: number,
  ) {}

  track(p: Promise<unknown>, count: number): void {
    this.records += count;
    const startMs = performance.now();
    p.then(
      () => this.done(count, performance.now() - startMs, true, undefined),
      (err: unknown) => this.done(count, 0, false, err),
    );
  }

  private done(count: number, latencyMs: number, ok: boolean, err: unknown): void {
    this.records -= count;
    if (ok) {
      this.acked += count;
      this.ackedBytes += count * this.recordSizeBytes;
      this.histogram.recordWithCount(latencyMs, count);
      this.window.add(count, count * this.recordSizeBytes, latencyMs);
    } else {
      this.errors += count;
      this.firstError ??= err instanceof Error ? err.message : String(err);
    }
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  /** Resolves at the next completion. */
  next(): Promise<void> {
    return new Promise<void>((r) => (this.waiter = r));
  }
}

/** Runs one producer to the end and returns its figures. Bounded by numRecords and delivery.timeout.ms per record. */
export async function runProducePerf(o: ProducePerfOptions): Promise<ProducePerfResult> {
  const recordsPerSend = recordsPerSendFor(o.recordsPerSend ?? DEFAULT_RECORDS_PER_SEND, o.throughput);
  const bufferMemoryBytes = o.bufferMemoryBytes ?? DEFAULT_BUFFER_MEMORY_BYTES;
  const requestTimeoutMs = o.requestTimeoutMs ?? 30_000;
  const producer = new Producer({
    bootstrapServers: o.bootstrapServers,
    clientId: o.clientId ?? "flotilla-perf",
    acks: o.acks,
    batchSizeBytes: o.batchSizeBytes,
    lingerMs: o.lingerMs,
    compression: o.compression,
    bufferMemoryBytes,
    requestTimeoutMs,
    deliveryTimeoutMs: Math.max(120_000, o.lingerMs + requestTimeoutMs),
    ...(o.logger ? { logger: o.logger } : {}),
  });
  const message: ProducerMessage = { value: randomPayload(o.recordSizeBytes) };
  const fullChunk: ProducerMessage[] = new Array<ProducerMessage>(recordsPerSend).fill(message);
  const histogram = new LatencyHistogram();
  const progressIntervalMs = o.progressIntervalMs ?? 5000;
  const window = new ProgressWindow(progressIntervalMs, performance.now());
  const inflight = new InflightSends(histogram, window, o.recordSizeBytes);
  // What the producer's buffer can hold: more in flight would only queue inside send().
  const inflightRecordsMax = Math.max(recordsPerSend, Math.floor(bufferMemoryBytes / (o.recordSizeBytes + RECORD_OVERHEAD_BYTES_ESTIMATE)));

  const startedAtEpochMs = Date.now();
  const startMs = performance.now();
  const throttle = new Throttle(o.throughput, startMs);
  const progress = o.onProgress ? setInterval(() => o.onProgress!(window, performance.now()), progressIntervalMs) : undefined;
  let sent = 0;
  try {
    // Bounded by numRecords: each turn sends one call's records or waits for a completion.
    const stopSendingAtMs = startMs + (o.maxDurationMs ?? Infinity);
    while (sent < o.numRecords && inflight.errors === 0 && performance.now() < stopSendingAtMs) {
      const count = Math.min(recordsPerSend, o.numRecords - sent);
      if (!throttle.unlimited) {
        const waitMs = throttle.delayMs(sent, performance.now());
        if (waitMs > 0) await sleep(waitMs);
      }
      if (inflight.records + count > inflightRecordsMax) {
        await inflight.next();
        continue;
      }
      inflight.track(producer.send({ topic: o.topic, messages: count === recordsPerSend ? fullChunk : fullChunk.slice(0, count) }), count);
      sent += count;
    }
    await producer.flush().catch(() => undefined);
    // flush() settles the batches; the send() promises settle in the microtasks after it.
    for (let i = 0; i < 1000 && inflight.records > 0; i++) await inflight.next();
  } finally {
    if (progress) clearInterval(progress);
    await producer.close({ timeoutMs: 5000 }).catch(() => undefined);
  }
  const elapsedMs = performance.now() - startMs;
  return {
    throughput: throughput(inflight.acked, inflight.ackedBytes, elapsedMs),
    latency: histogram.summary(),
    histogram,
    // Records not sent because of an error; not those a duration limit left out.
    errors: inflight.errors + (inflight.errors > 0 ? o.numRecords - sent : 0),
    sent,
    firstError: inflight.firstError,
    startedAtEpochMs,
    endedAtEpochMs: startedAtEpochMs + elapsedMs,
  };
}

export type { LatencySummary, ThroughputFigures };

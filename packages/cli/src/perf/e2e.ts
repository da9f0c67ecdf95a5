/**
 * `flotilla perf e2e`: end-to-end latency, from the send() call to the consumer's poll
 * returning the record, at a fixed rate (like Kafka's EndToEndLatency, which sends one
 * record at a time; here a Throttle paces records at `throughput`/s).
 *
 * Producer and consumer live in this one process, so both read the same monotonic clock
 * (performance.now()) and no clock skew enters the figure. Each record's value starts with
 * its send time:
 *
 *   value = [float64 LE: performance.now() at send][payload up to recordSizeBytes]
 *
 * A warm-up record (send time -1) goes first, so the first measured record does not pay for
 * connections, metadata and the producer id; the consumer skips it. The consumer is
 * positioned at the partitions' ends before anything is sent, and reads only up to the high
 * watermark, so with acks=all the latency includes replication to the in-sync replicas.
 * Records of one tick are sent in one call and carry the time of that call.
 */
import { Consumer, Producer, type Acks, type ProducerMessage } from "@flotilla/client";
import type { Logger } from "@flotilla/common/logger";
import { randomPayload } from "./produce.js";
import { LatencyHistogram, ProgressWindow, throughput, Throttle, type LatencySummary, type ThroughputFigures } from "./stats.js";

export interface E2ePerfOptions {
  bootstrapServers: string;
  topic: string;
  numRecords: number;
  /** Records/s; <= 0 sends as fast as it can (then the figure measures queueing, not latency). */
  throughput: number;
  /** At least 8 (the send time). */
  recordSizeBytes: number;
  acks: Acks;
  /** Default 0: a latency test should not wait for batches to fill. */
  lingerMs?: number;
  /** Stop when no record arrived for this long after the last send. Default 10000. */
  idleTimeoutMs?: number;
  requestTimeoutMs?: number;
  progressIntervalMs?: number;
  onProgress?: (window: ProgressWindow, nowMs: number) => void;
  logger?: Logger;
}

export interface E2ePerfResult {
  sent: number;
  received: number;
  errors: number;
  firstError: string | undefined;
  /** Received records over the run. */
  throughput: ThroughputFigures;
  latency: LatencySummary;
}

/** Bytes of the send-time stamp at the start of each value. */
export const E2E_STAMP_BYTES = 8;
/** Records in flight at most (a bound if the cluster stops answering). */
const INFLIGHT_RECORDS_MAX = 100_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function runE2ePerf(o: E2ePerfOptions): Promise<E2ePerfResult> {
  if (o.recordSizeBytes < E2E_STAMP_BYTES) throw new RangeError(`recordSizeBytes must be >= ${E2E_STAMP_BYTES} (the send time), got ${o.recordSizeBytes}`);
  const idleTimeoutMs = o.idleTimeoutMs ?? 10_000;
  const requestTimeoutMs = o.requestTimeoutMs ?? 30_000;
  const lingerMs = o.lingerMs ?? 0;
  const common = {
    bootstrapServers: o.bootstrapServers,
    clientId: "flotilla-perf-e2e",
    requestTimeoutMs,
    ...(o.logger ? { logger: o.logger } : {}),
  };
  const consumer = new Consumer({ ...common, autoOffsetReset: "latest", maxPollRecords: 10_000 });
  const producer = new Producer({ ...common, acks: o.acks, lingerMs, deliveryTimeoutMs: Math.max(120_000, lingerMs + requestTimeoutMs) });
  const payload = randomPayload(o.recordSizeBytes);
  const histogram = new LatencyHistogram();
  const window = new ProgressWindow(o.progressIntervalMs ?? 5000, performance.now());
  let progress: NodeJS.Timeout | undefined;
  let sent = 0;
  let acked = 0;
  let errors = 0;
  let firstError: string | undefined;
  let received = 0;
  let receivedBytes = 0;
  let sendingDone = false;
  let startMs = 0;
  let lastReceiveMs = 0;
  try {
    await consumer.assign([{ topic: o.topic }]);
    for (const tp of consumer.assignment()) consumer.seek(tp, "latest");
    // Resolve the positions now, so records sent from here on are all read.
    for (const tp of consumer.assignment()) await consumer.position(tp);
    const warmUp = Buffer.from(payload);
    warmUp.writeDoubleLE(-1, 0);
    await producer.send({ topic: o.topic, messages: [{ value: warmUp }] });

    startMs = performance.now();
    lastReceiveMs = startMs;
    if (o.onProgress) progress = setInterval(() => o.onProgress!(window, performance.now()), o.progressIntervalMs ?? 5000);

    const consumeLoop = async (): Promise<void> => {
      // Bounded by numRecords and by the idle timeout once sending is done.
      while (received < o.numRecords) {
        const records = await consumer.poll({ timeoutMs: 100, maxRecords: 10_000 });
        const nowMs = performance.now();
        for (let i = 0; i < records.length; i++) {
          const value = records[i]!.value;
          if (value === null || value.length < E2E_STAMP_BYTES) continue;
          const sentAtMs = value.readDoubleLE(0);
          if (sentAtMs < 0) continue; // the warm-up record
          histogram.record(nowMs - sentAtMs);
          window.add(1, value.length, nowMs - sentAtMs);
          received++;
          receivedBytes += value.length;
        }
        if (records.length > 0) lastReceiveMs = nowMs;
        else if (sendingDone && nowMs - lastReceiveMs >= idleTimeoutMs) break;
      }
    };
    const consuming = consumeLoop();
    // Awaited after sending; a failure meanwhile must not count as unhandled.
    consuming.catch(() => undefined);

    const throttle = new Throttle(o.throughput, startMs);
    const onAck = (n: number) => (): void => {
      acked += n;
    };
    const onError = (n: number) => (err: unknown): void => {
      errors += n;
      acked += n;
      firstError ??= err instanceof Error ? err.message : String(err);
    };
    try {
      // Bounded by numRecords; each turn sends the records due or sleeps until the next is.
      while (sent < o.numRecords && errors === 0) {
        const nowMs = performance.now();
        const due = Math.min(o.numRecords, throttle.allowed(nowMs), sent + 10_000, acked + INFLIGHT_RECORDS_MAX) - sent;
        if (due <= 0) {
          await sleep(Math.max(1, throttle.delayMs(sent, nowMs)));
          continue;
        }
        const messages: ProducerMessage[] = new Array<ProducerMessage>(due);
        const sendMs = performance.now();
        for (let i = 0; i < due; i++) {
          const value = Buffer.allocUnsafe(o.recordSizeBytes);
          payload.copy(value, E2E_STAMP_BYTES, E2E_STAMP_BYTES);
          value.writeDoubleLE(sendMs, 0);
          messages[i] = { value };
        }
        producer.send({ topic: o.topic, messages }).then(onAck(due), onError(due));
        sent += due;
        // Let the producer's sender and the consumer run between ticks.
        await sleep(0);
      }
    } finally {
      sendingDone = true;
      lastReceiveMs = Math.max(lastReceiveMs, performance.now());
    }
    await consuming;
  } finally {
    if (progress) clearInterval(progress);
    await producer.close({ timeoutMs: 5000 }).catch(() => undefined);
    await consumer.close();
  }
  return {
    sent,
    received,
    errors,
    firstError,
    throughput: throughput(received, receivedBytes, lastReceiveMs - startMs),
    latency: histogram.summary(),
  };
}

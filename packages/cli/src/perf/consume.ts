/**
 * `flotilla perf consume` (like Kafka's kafka-consumer-perf-test): reads a topic from the
 * start, alone (Consumer, every partition assigned) or as the one member of a fresh
 * consumer group (GroupConsumer, auto.offset.reset=earliest), until `messages` records
 * arrived or none arrived for `idleTimeoutMs`.
 *
 * Two rates, as Kafka prints them: over the whole run, from before assign/subscribe to the
 * last record, and over the fetch phase only, from the first record to the last, which
 * leaves out metadata lookups, the group join and the first fetch's round trip
 * (`startupMs`). Bytes are keys plus values, as Kafka counts them.
 *
 * It reads through pollBatches(), the consumer's batch API, and walks every record of every
 * batch with the batch's cursor, counting the record and its key and value bytes from the
 * record itself (never from the batch header's count), as kafka-consumer-perf-test counts
 * each record it is handed; it just does not ask for key and value views it would not use.
 */
import { Consumer, GroupConsumer, type ConsumerRecordBatches } from "@flotilla/client";
import type { Logger } from "@flotilla/common/logger";
import { ProgressWindow, throughput, type ThroughputFigures } from "./stats.js";

export interface ConsumePerfOptions {
  bootstrapServers: string;
  topic: string;
  /** Stop after this many records. */
  messages: number;
  /** Read as a member of this group; absent: alone. */
  group?: string;
  /** Stop when no record arrived for this long. Default 10000. */
  idleTimeoutMs?: number;
  /** Kafka's max.partition.fetch.bytes. Default: the client's (1 MiB). */
  maxPartitionFetchBytes?: number;
  requestTimeoutMs?: number;
  progressIntervalMs?: number;
  onProgress?: (window: ProgressWindow, nowMs: number) => void;
  logger?: Logger;
  clientId?: string;
}

export interface ConsumePerfResult {
  mode: "alone" | "group";
  /** From before assign/subscribe to the last record. */
  total: ThroughputFigures;
  /** From the first record to the last. */
  fetch: ThroughputFigures;
  /** From before assign/subscribe to the first record: metadata, offsets, the group join and the first fetch. */
  startupMs: number;
  /** True when it stopped on the idle timeout before `messages` records. */
  timedOut: boolean;
}

/** Records (and bytes) per poll: large, so the tool's loop is not what limits the rate. */
const POLL_RECORDS_MAX = 10_000;
const POLL_TIMEOUT_MS = 200;

/**
 * Walks every record of `result`, up to `recordsMax`, and counts records and key + value
 * bytes (a null key or value counts 0). Each record is read by the cursor, so a batch whose
 * header claims more records than it holds fails (CORRUPT_MESSAGE) rather than inflate the
 * count.
 */
export function countRecords(result: ConsumerRecordBatches, recordsMax: number): { records: number; bytes: number } {
  let records = 0;
  let bytes = 0;
  for (const p of result.partitions) {
    for (const batch of p.batches) {
      const c = batch.cursor();
      while (records < recordsMax && c.next()) {
        records++;
        if (c.keyLength > 0) bytes += c.keyLength;
        if (c.valueLength > 0) bytes += c.valueLength;
      }
    }
  }
  return { records, bytes };
}

export async function runConsumePerf(o: ConsumePerfOptions): Promise<ConsumePerfResult> {
  const idleTimeoutMs = o.idleTimeoutMs ?? 10_000;
  const common = {
    bootstrapServers: o.bootstrapServers,
    clientId: o.clientId ?? "flotilla-perf",
    autoOffsetReset: "earliest" as const,
    maxPollRecords: POLL_RECORDS_MAX,
    ...(o.maxPartitionFetchBytes !== undefined ? { maxPartitionFetchBytes: o.maxPartitionFetchBytes } : {}),
    ...(o.requestTimeoutMs !== undefined ? { requestTimeoutMs: o.requestTimeoutMs } : {}),
    ...(o.logger ? { logger: o.logger } : {}),
  };
  const startMs = performance.now();
  const window = new ProgressWindow(o.progressIntervalMs ?? 5000, startMs);
  const progress = o.onProgress ? setInterval(() => o.onProgress!(window, performance.now()), o.progressIntervalMs ?? 5000) : undefined;
  let consumer: Consumer | GroupConsumer;
  if (o.group !== undefined) {
    const g = new GroupConsumer({ ...common, groupId: o.group });
    g.subscribe({ topics: [o.topic] });
    consumer = g;
  } else {
    const c = new Consumer(common);
    consumer = c;
  }
  let records = 0;
  let bytes = 0;
  let firstMs: number | undefined;
  let lastMs = startMs;
  let timedOut = false;
  try {
    if (consumer instanceof Consumer) {
      await consumer.assign([{ topic: o.topic }]);
      for (const tp of consumer.assignment()) consumer.seek(tp, "earliest");
    }
    let lastRecordMs = performance.now();
    // Bounded by `messages` and by the idle timeout; each turn waits at most POLL_TIMEOUT_MS.
    while (records < o.messages) {
      const result = await consumer.pollBatches({ timeoutMs: POLL_TIMEOUT_MS, maxRecords: Math.min(POLL_RECORDS_MAX, o.messages - records) });
      const got = countRecords(result, o.messages - records);
      const nowMs = performance.now();
      if (got.records === 0) {
        if (nowMs - lastRecordMs >= idleTimeoutMs) {
          timedOut = true;
          break;
        }
        continue;
      }
      firstMs ??= nowMs;
      lastMs = lastRecordMs = nowMs;
      records += got.records;
      bytes += got.bytes;
      window.add(got.records, got.bytes, 0);
    }
  } finally {
    if (progress) clearInterval(progress);
    if (consumer instanceof Consumer) await consumer.close();
    else await consumer.disconnect();
  }
  const startupMs = (firstMs ?? lastMs) - startMs;
  return {
    mode: o.group !== undefined ? "group" : "alone",
    total: throughput(records, bytes, lastMs - startMs),
    fetch: throughput(records, bytes, firstMs === undefined ? 0 : lastMs - firstMs),
    startupMs,
    timedOut,
  };
}

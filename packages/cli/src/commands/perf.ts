import path from "node:path";
import { fileURLToPath } from "node:url";
import { Command } from "commander";
import { ErrorCodes, FlotillaError, type ErrorName } from "@flotilla/common";
import { Admin, type Acks } from "@flotilla/client";
import type { Compression } from "@flotilla/protocol";
import { parseIntFlag, UsageError } from "../format.js";
import { writeOut, type CliIo } from "../io.js";
import { runConsumePerf, type ConsumePerfResult } from "../perf/consume.js";
import { runE2ePerf, E2E_STAMP_BYTES, type E2ePerfResult } from "../perf/e2e.js";
import { runProducePerf, type ProducePerfOptions } from "../perf/produce.js";
import { formatProduceLine, formatWindowLine, type LatencySummary, type ProgressWindow, type ThroughputFigures } from "../perf/stats.js";
import { aggregateResults, WorkerPool, type AggregateResult } from "../perf/workers.js";
import { addClientOptions, clientLogger, type ClientFlags } from "./client-options.js";

const PRODUCE_WORKER_ENTRY = path.join(path.dirname(fileURLToPath(import.meta.url)), "../perf/produce-worker.ts");
const PROGRESS_INTERVAL_MS = 5000;

function parseAcks(value: string): Acks {
  if (value === "all" || value === "-1") return "all";
  if (value === "0") return 0;
  if (value === "1") return 1;
  throw new UsageError(`--acks must be 0, 1 or all, got "${value}"`);
}

function parseCompression(value: string): Compression {
  if (value === "none" || value === "gzip" || value === "snappy" || value === "lz4" || value === "zstd") return value;
  throw new UsageError(`--compression must be none, gzip, snappy, lz4 or zstd, got "${value}"`);
}

/** --throughput: records/s, or -1 (any negative) for no cap. */
function parseThroughput(value: string): number {
  const n = Number(value);
  if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw new UsageError(`--throughput expects an integer (records/s, -1 for no cap), got "${value}"`);
  return n <= 0 ? -1 : n;
}

/** Fails fast on a topic that does not exist (the clients would wait for it to appear). */
async function checkTopic(io: CliIo, bootstrapServers: string, topic: string, requestTimeoutMs: number): Promise<void> {
  const admin = new Admin({ bootstrapServers, clientId: "flotilla-perf", requestTimeoutMs, defaultApiTimeoutMs: Math.max(requestTimeoutMs, 15_000), logger: clientLogger(io) });
  try {
    const md = await admin.metadata({ topics: [topic] });
    if (!md.topics.some((t) => t.name === topic)) throw new FlotillaError("UNKNOWN_TOPIC_OR_PARTITION", `topic "${topic}" does not exist`);
  } finally {
    await admin.close();
  }
}

/**
 * The error a perf command exits with after records failed: the code of the first failure
 * when its message starts with one (FlotillaError messages read "<CODE>: <detail>"; worker
 * processes report only the message), else `fallback`.
 */
export function failedRecordsError(detail: string, firstError: string | undefined, fallback: ErrorName): FlotillaError {
  const name = firstError === undefined ? undefined : /^([A-Z_]+):/.exec(firstError)?.[1];
  const code = name !== undefined && name in ErrorCodes ? (name as ErrorName) : fallback;
  return new FlotillaError(code, `${detail}; first error: ${firstError ?? "none"}`);
}

/** Latency figures under the names the JSON output uses. */
export function latencyJson(l: LatencySummary): Record<string, number> {
  return { avg: l.avgMs, min: l.minMs, p50: l.p50Ms, p95: l.p95Ms, p99: l.p99Ms, p999: l.p999Ms, max: l.maxMs };
}

function throughputJson(t: ThroughputFigures): Record<string, number> {
  return { records: t.records, bytes: t.bytes, elapsedMs: t.elapsedMs, recordsPerSec: t.recordsPerSec, mbPerSec: t.mbPerSec };
}

interface ProducePerfFlags extends ClientFlags {
  topic?: string;
  numRecords?: string;
  recordSize: string;
  throughput: string;
  acks: string;
  batchSize: string;
  lingerMs: string;
  compression: string;
  producers: string;
  recordsPerSend: string;
  bufferMemory: string;
  json?: boolean;
}

function producePerfCommand(io: CliIo): Command {
  return addClientOptions(new Command("produce").description("producer throughput and latency, like kafka-producer-perf-test"))
    .option("--topic <name>", "topic to write to (must exist)")
    .option("--num-records <n>", "records to send")
    .option("--record-size <bytes>", "bytes per record value", "100")
    .option("--throughput <records/s>", "cap on records/s over the whole run, -1 for none", "-1")
    .option("--acks <0|1|all>", "acknowledgements to wait for", "all")
    .option("--batch-size <bytes>", "batch.size", "16384")
    .option("--linger-ms <ms>", "linger.ms", "5")
    .option("--compression <codec>", "none, gzip, snappy, lz4 or zstd", "none")
    .option("--producers <n>", "producers, each a separate process (one runs in this process)", "1")
    .option("--records-per-send <n>", "records per send() call; each record gets its call's latency", "100")
    .option("--buffer-memory <bytes>", "buffer.memory of each producer", String(32 * 1024 * 1024))
    .option("--json", "print one JSON object instead of the final line")
    .action(async (opts: ProducePerfFlags) => {
      if (!opts.topic) throw new UsageError("--topic is required");
      if (opts.numRecords === undefined) throw new UsageError("--num-records is required");
      const requestTimeoutMs = parseIntFlag(opts.requestTimeoutMs, "--request-timeout-ms", 1);
      const options: ProducePerfOptions = {
        bootstrapServers: opts.bootstrapServer,
        topic: opts.topic,
        numRecords: parseIntFlag(opts.numRecords, "--num-records", 1),
        recordSizeBytes: parseIntFlag(opts.recordSize, "--record-size", 0),
        throughput: parseThroughput(opts.throughput),
        acks: parseAcks(opts.acks),
        batchSizeBytes: parseIntFlag(opts.batchSize, "--batch-size", 1),
        lingerMs: parseIntFlag(opts.lingerMs, "--linger-ms", 0),
        compression: parseCompression(opts.compression),
        recordsPerSend: parseIntFlag(opts.recordsPerSend, "--records-per-send", 1),
        bufferMemoryBytes: parseIntFlag(opts.bufferMemory, "--buffer-memory", 1),
        requestTimeoutMs,
      };
      const producers = parseIntFlag(opts.producers, "--producers", 1);
      await checkTopic(io, opts.bootstrapServer, options.topic, requestTimeoutMs);
      const onProgress = (w: ProgressWindow, nowMs: number): void => void io.stderr.write(`${formatWindowLine(w.take(nowMs))}\n`);
      const result = await producePerf({ ...options, logger: clientLogger(io) }, producers, onProgress);
      if (opts.json) {
        await writeOut(io.stdout, `${JSON.stringify({ tool: "produce", ...options, producers, ...throughputJson(result.throughput), errors: result.errors, firstError: result.firstError, latencyMs: latencyJson(result.latency) })}\n`);
      } else {
        await writeOut(io.stdout, `${formatProduceLine(result.throughput, result.latency)}\n`);
      }
      if (result.errors > 0) throw failedRecordsError(`${result.errors} record(s) not acknowledged`, result.firstError, "UNKNOWN_SERVER_ERROR");
    });
}

/** The split of `total` records or records/s over `n` producers: producer i's share. */
export function shareOf(total: number, n: number, i: number): number {
  return Math.floor(total / n) + (i < total % n ? 1 : 0);
}

/**
 * Runs `producers` producers: in this process for one, else on a pool of worker
 * processes released together (see perf/workers.ts): `pool` if given (pnpm bench keeps one
 * for many runs), else one started for this run and closed after. Progress goes to
 * `onProgress` every 5 s.
 */
export async function producePerf(
  options: ProducePerfOptions,
  producers: number,
  onProgress: (w: ProgressWindow, nowMs: number) => void,
  pool?: WorkerPool,
): Promise<AggregateResult> {
  if (producers === 1 && !pool) {
    const r = await runProducePerf({ ...options, progressIntervalMs: PROGRESS_INTERVAL_MS, onProgress });
    return { throughput: r.throughput, latency: r.latency, errors: r.errors, firstError: r.firstError, workers: 1 };
  }
  const workers = pool ?? (await WorkerPool.start({ entry: PRODUCE_WORKER_ENTRY, count: producers }));
  try {
    const n = producers;
    const results = await workers.run({
      count: n,
      // Each producer sends its share of the records and of the cap; the logger stays here.
      job: (i) => ({
        ...options,
        logger: undefined,
        onProgress: undefined,
        numRecords: shareOf(options.numRecords, n, i),
        throughput: options.throughput > 0 ? Math.max(1, shareOf(options.throughput, n, i)) : -1,
        clientId: `flotilla-perf-${i}`,
      }),
      onProgress,
      progressIntervalMs: PROGRESS_INTERVAL_MS,
      // delivery.timeout.ms bounds every record; a run longer than an hour is not a benchmark.
      runTimeoutMs: 3600_000,
    });
    return aggregateResults(results);
  } finally {
    if (!pool) workers.close();
  }
}

/** Starts a pool of `count` producer processes for producePerf. */
export function startProducerPool(count: number, options: { stderr?: "inherit" | "ignore"; execArgv?: readonly string[] } = {}): Promise<WorkerPool> {
  return WorkerPool.start({ entry: PRODUCE_WORKER_ENTRY, count, ...options });
}

interface ConsumePerfFlags extends ClientFlags {
  topic?: string;
  messages?: string;
  group?: string;
  timeoutMs: string;
  fetchSize: string;
  json?: boolean;
}

export function formatConsumeLine(r: ConsumePerfResult): string {
  const f = (x: number, d: number): string => (Number.isFinite(x) ? x.toFixed(d) : "-");
  return (
    `${r.total.records} records consumed (${r.mode}), ${f(r.total.recordsPerSec, 1)} records/sec (${f(r.total.mbPerSec, 2)} MB/sec) overall; ` +
    `fetch ${f(r.fetch.recordsPerSec, 1)} records/sec (${f(r.fetch.mbPerSec, 2)} MB/sec) after ${f(r.startupMs, 0)} ms to the first record` +
    (r.timedOut ? "; stopped: no record within the timeout" : ".")
  );
}

function consumePerfCommand(io: CliIo): Command {
  return addClientOptions(new Command("consume").description("consumer throughput from the start of a topic, like kafka-consumer-perf-test"))
    .option("--topic <name>", "topic to read (must exist)")
    .option("--messages <n>", "records to read")
    .option("--group <id>", "read as the one member of this consumer group (default: alone, every partition assigned)")
    .option("--timeout-ms <ms>", "stop when no record arrived for this long", "10000")
    .option("--fetch-size <bytes>", "max.partition.fetch.bytes: bytes fetched per partition per request", String(1024 * 1024))
    .option("--json", "print one JSON object instead of the final line")
    .action(async (opts: ConsumePerfFlags) => {
      if (!opts.topic) throw new UsageError("--topic is required");
      if (opts.messages === undefined) throw new UsageError("--messages is required");
      const requestTimeoutMs = parseIntFlag(opts.requestTimeoutMs, "--request-timeout-ms", 1);
      const messages = parseIntFlag(opts.messages, "--messages", 1);
      const maxPartitionFetchBytes = parseIntFlag(opts.fetchSize, "--fetch-size", 1);
      await checkTopic(io, opts.bootstrapServer, opts.topic, requestTimeoutMs);
      const r = await runConsumePerf({
        bootstrapServers: opts.bootstrapServer,
        topic: opts.topic,
        messages,
        maxPartitionFetchBytes,
        ...(opts.group !== undefined ? { group: opts.group } : {}),
        idleTimeoutMs: parseIntFlag(opts.timeoutMs, "--timeout-ms", 1),
        requestTimeoutMs,
        logger: clientLogger(io),
        progressIntervalMs: PROGRESS_INTERVAL_MS,
        onProgress: (w, nowMs) => void io.stderr.write(`${formatWindowLine(w.take(nowMs), "consumed", false)}\n`),
      });
      if (opts.json) {
        await writeOut(io.stdout, `${JSON.stringify({ tool: "consume", topic: opts.topic, messages, mode: r.mode, ...throughputJson(r.total), fetch: throughputJson(r.fetch), startupMs: r.startupMs, timedOut: r.timedOut })}\n`);
      } else {
        await writeOut(io.stdout, `${formatConsumeLine(r)}\n`);
      }
    });
}

interface E2ePerfFlags extends ClientFlags {
  topic?: string;
  numRecords?: string;
  throughput: string;
  recordSize: string;
  acks: string;
  lingerMs: string;
  json?: boolean;
}

function e2ePerfCommand(io: CliIo): Command {
  return addClientOptions(new Command("e2e").description("end-to-end latency (send to receive) at a fixed rate"))
    .option("--topic <name>", "topic to write and read (must exist)")
    .option("--num-records <n>", "records to send")
    .option("--throughput <records/s>", "send rate", "1000")
    .option("--record-size <bytes>", `bytes per record value (>= ${E2E_STAMP_BYTES}: the send time)`, "100")
    .option("--acks <0|1|all>", "acknowledgements the producer waits for", "all")
    .option("--linger-ms <ms>", "linger.ms", "0")
    .option("--json", "print one JSON object instead of the final line")
    .action(async (opts: E2ePerfFlags) => {
      if (!opts.topic) throw new UsageError("--topic is required");
      if (opts.numRecords === undefined) throw new UsageError("--num-records is required");
      const requestTimeoutMs = parseIntFlag(opts.requestTimeoutMs, "--request-timeout-ms", 1);
      const numRecords = parseIntFlag(opts.numRecords, "--num-records", 1);
      const recordSizeBytes = parseIntFlag(opts.recordSize, "--record-size", E2E_STAMP_BYTES);
      const rate = parseThroughput(opts.throughput);
      await checkTopic(io, opts.bootstrapServer, opts.topic, requestTimeoutMs);
      const r: E2ePerfResult = await runE2ePerf({
        bootstrapServers: opts.bootstrapServer,
        topic: opts.topic,
        numRecords,
        throughput: rate,
        recordSizeBytes,
        acks: parseAcks(opts.acks),
        lingerMs: parseIntFlag(opts.lingerMs, "--linger-ms", 0),
        requestTimeoutMs,
        logger: clientLogger(io),
        progressIntervalMs: PROGRESS_INTERVAL_MS,
        onProgress: (w, nowMs) => void io.stderr.write(`${formatWindowLine(w.take(nowMs), "received")}\n`),
      });
      if (opts.json) {
        await writeOut(io.stdout, `${JSON.stringify({ tool: "e2e", topic: opts.topic, numRecords, throughput: rate, recordSizeBytes, sent: r.sent, received: r.received, errors: r.errors, firstError: r.firstError, ...throughputJson(r.throughput), latencyMs: latencyJson(r.latency) })}\n`);
      } else {
        await writeOut(io.stdout, `${formatProduceLine(r.throughput, r.latency, "received")} (end to end)\n`);
      }
      if (r.errors > 0 || r.received < r.sent) {
        // Records sent without error but never received: they did not arrive within the idle timeout.
        throw failedRecordsError(`${r.sent} sent, ${r.received} received, ${r.errors} send error(s)`, r.firstError, "REQUEST_TIMED_OUT");
      }
    });
}

/** `flotilla perf produce|consume|e2e`: Kafka-style performance tools. */
export function perfCommand(io: CliIo): Command {
  return new Command("perf")
    .description("performance tools: producer throughput and latency, consumer throughput, end-to-end latency")
    .addCommand(producePerfCommand(io))
    .addCommand(consumePerfCommand(io))
    .addCommand(e2ePerfCommand(io));
}

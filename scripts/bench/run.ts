/**
 * pnpm bench: a fixed matrix against a fresh local 3-broker cluster, and the same publish
 * workload against a 3-node NATS JetStream cluster when nats-server is installed.
 *
 * Matrix (issue 8): records of 100 B and 1 KiB x acks 1 and all x compression none and lz4
 * x 1 and 3 producers; consumer throughput alone and in a group for each record size; end
 * to end latency at 10,000 records/s. Every topic has 3 partitions, replication factor 3
 * and min.insync.replicas=2, and is created up front. Producer runs are bounded by time
 * (`durationMs` of sending, then the records in flight are waited for) as well as by a
 * record count, so the matrix takes about the same time whatever the data path's speed; a
 * 1 MiB buffer.memory keeps that drain short (at 32 MiB, Kafka's default, a data path doing
 * 5,000 records/s would queue a minute of 100-byte records, and latency would measure only
 * that queue). 1 MiB still holds 4 times what 3 partitions x 5 in-flight 16 KiB batches need.
 * Two more runs (100 B, acks=all, no compression, 1 and 3 producers) use the producer settings
 * Kafka's tuning guides give for throughput (a larger batch.size and linger.ms, and the
 * buffer.memory to keep them full): the default 16 KiB batch measures how Flotilla behaves
 * as configured out of the box, the large one what its data path carries per request.
 * A row's topic is deleted right after its run unless the consumer rows read it, and the
 * page cache is written back (`sync`) before the next row, so that each row starts with
 * nothing waiting for writeback, rather than the later rows paying for the earlier rows' data.
 * A short unreported warm-up run first lets the brokers' JIT compile the hot path, so the
 * first cell of the matrix is not also the cold one. Producers run in worker processes started once (a pool
 * of 3; one-producer runs use the first), so the bench process itself only samples memory.
 *
 * Nothing here fails on a time: a run that errors is recorded with its error and the
 * matrix goes on. Every process started is stopped by pid in `finally`, also on abort.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Admin } from "../../packages/client/src/index.js";
import type { Acks } from "../../packages/client/src/index.js";
import type { Compression } from "../../packages/protocol/src/index.js";
import { latencyJson, producePerf, startProducerPool } from "../../packages/cli/src/commands/perf.js";
import { runConsumePerf } from "../../packages/cli/src/perf/consume.js";
import { runE2ePerf } from "../../packages/cli/src/perf/e2e.js";
import { formatWindowLine, type LatencySummary, type ProgressWindow } from "../../packages/cli/src/perf/stats.js";
import { aggregateResults, WorkerPool, type AggregateResult } from "../../packages/cli/src/perf/workers.js";
import { silentLogger } from "../../packages/common/src/logger.js";
import { startCombinedCluster, type CombinedCluster } from "../../test/helpers/combined-cluster.js";
import { REPO_ROOT } from "../../test/helpers/processes.js";
import { findNatsServer, NATS_SUBJECT_PREFIX, natsServerVersion, startNatsCluster, type NatsCluster } from "./nats.js";
import { renderMarkdown } from "./report.js";
import { RssSampler } from "./rss.js";

export interface BenchOptions {
  quick: boolean;
  /** Directory of the reports. Default bench/results. */
  outDir?: string;
  /** Run the NATS comparison when nats-server is found. Default true. */
  nats?: boolean;
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
  signal?: AbortSignal;
  /**
   * Profile the brokers and producer processes with `node --cpu-prof`, writing .cpuprofile
   * files here. The brokers are then stopped with SIGTERM and the producers by closing their
   * stdin (a profile is written only on a normal exit) instead of SIGKILL.
   */
  cpuProfDir?: string;
}

export type Latency = Record<string, number>;

export interface ProduceRow {
  name: string;
  topic: string;
  /** The producer settings of the run (the defaults, or the throughput-tuned ones). */
  batchSizeBytes: number;
  lingerMs: number;
  bufferMemoryBytes: number;
  recordSizeBytes: number;
  acks: "1" | "all";
  compression: Compression;
  producers: number;
  records: number;
  recordsPerSec: number;
  mbPerSec: number;
  latencyMs: Latency;
  errors: number;
  error?: string;
  brokerRssMaxMiB: Record<string, number>;
}

export interface ConsumeRow {
  name: string;
  topic: string;
  recordSizeBytes: number;
  mode: "alone" | "group";
  /** The batch.size of the producer run that wrote the topic: the size of the stored batches. */
  producerBatchSizeBytes: number;
  records: number;
  recordsPerSec: number;
  mbPerSec: number;
  fetchRecordsPerSec: number;
  fetchMbPerSec: number;
  startupMs: number;
  error?: string;
  brokerRssMaxMiB: Record<string, number>;
}

export interface E2eRow {
  name: string;
  topic: string;
  recordSizeBytes: number;
  targetRecordsPerSec: number;
  sent: number;
  received: number;
  recordsPerSec: number;
  latencyMs: Latency;
  error?: string;
  brokerRssMaxMiB: Record<string, number>;
}

export interface NatsRow {
  name: string;
  recordSizeBytes: number;
  producers: number;
  records: number;
  recordsPerSec: number;
  mbPerSec: number;
  latencyMs: Latency;
  errors: number;
  error?: string;
  /** The Flotilla run with the same size and producers, acks=all, no compression, default batch.size. */
  flotillaRecordsPerSec: number | undefined;
  /** Flotilla records/s divided by JetStream's. */
  ratio: number | undefined;
  serverRssMaxMiB: Record<string, number>;
}

export interface TargetRow {
  target: string;
  goal: string;
  measured: string;
  met: boolean;
}

export interface BenchReport {
  startedAt: string;
  finishedAt: string;
  quick: boolean;
  machine: { cpus: number; cpuModel: string; memoryMiB: number; node: string; platform: string; loadAverageStart: number[]; loadAverageEnd: number[] };
  settings: {
    partitions: number;
    replicationFactor: number;
    minInsyncReplicas: number;
    produceDurationMs: number;
    batchSizeBytes: number;
    lingerMs: number;
    bufferMemoryBytes: number;
    recordsPerSend: number;
    e2eRecordsPerSec: number;
    brokerOverrides: string[];
  };
  produce: ProduceRow[];
  consume: ConsumeRow[];
  e2e: E2eRow[];
  nats: { available: boolean; version?: string; skipped?: string; rows: NatsRow[] };
  brokerRssMaxMiB: Record<string, number>;
  targets: TargetRow[];
}

const PARTITIONS = 3;
const BATCH_SIZE_BYTES = 16_384;
const LINGER_MS = 5;
const BUFFER_MEMORY_BYTES = 1024 * 1024;
const RECORDS_PER_SEND = 100;
/**
 * `sync`: the kernel writes every dirty page back now, bounded by 120 s. Between rows, so that
 * a row does not pay (in system CPU, on a 2-core machine) for writing back the previous rows'
 * data. Where there is no `sync` the bench goes on without it.
 */
function flushPageCache(log: (line: string) => void): void {
  const r = spawnSync("sync", [], { timeout: 120_000, stdio: "ignore" });
  if (r.error || r.status !== 0) log(`bench: sync between rows failed (${r.error?.message ?? `exit ${r.status}`}); going on`);
}

/** Runs `fn` with an Admin client of the bench cluster, closed afterwards. */
async function withAdmin<T>(bootstrap: string, fn: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = new Admin({ bootstrapServers: bootstrap, clientId: "bench", defaultApiTimeoutMs: 60_000, logger: silentLogger() });
  try {
    return await fn(admin);
  } finally {
    await admin.close();
  }
}

/** The throughput-tuned producer settings (see the header comment). */
const TUNED = { batchSizeBytes: 512 * 1024, lingerMs: 10, bufferMemoryBytes: 32 * 1024 * 1024 } as const;
const TUNED_PRODUCER_COUNTS = [1, 3] as const;
const E2E_RECORDS_PER_SEC = 10_000;
const NATS_INFLIGHT_MAX = 4096;
/**
 * Kafka's defaults for the timings the test helper shortens (it wants fast failure
 * detection): a benchmark on a loaded 2-core machine must not fence a busy broker or drop a
 * follower from the ISR because a GC pause or a full run queue delayed one heartbeat.
 */
const BROKER_OVERRIDES = ["broker.session.timeout.ms=9000", "broker.heartbeat.interval.ms=2000", "replica.lag.time.max.ms=30000"];

interface Sizes {
  produceDurationMs: number;
  /** Records per producer run at most, by record size. */
  produceRecordsMax: (recordSizeBytes: number) => number;
  e2eRecords: number;
  natsDurationMs: number;
}

/**
 * Full: 10 s of sending per producer run (16 runs), 10 s of e2e, 8 s per JetStream run; about
 * 6 minutes in all on the 2-core machine. Quick: a few thousand records each, for the smoke test.
 */
function sizesFor(quick: boolean): Sizes {
  return quick
    ? { produceDurationMs: 500, produceRecordsMax: (b) => (b <= 100 ? 1000 : 300), e2eRecords: 1000, natsDurationMs: 500 }
    : { produceDurationMs: 10_000, produceRecordsMax: (b) => (b <= 100 ? 50_000_000 : 10_000_000), e2eRecords: E2E_RECORDS_PER_SEC * 10, natsDurationMs: 8000 };
}

const RECORD_SIZES = [100, 1024] as const;
const ACKS: readonly ("1" | "all")[] = ["1", "all"];
const COMPRESSIONS: readonly Compression[] = ["none", "lz4"];
const PRODUCER_COUNTS = [1, 3] as const;
const PRODUCERS_MAX = 3;

const sizeName = (b: number): string => (b === 1024 ? "1KiB" : `${b}B`);
const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));
const round = (x: number, d = 1): number => (Number.isFinite(x) ? Math.round(x * 10 ** d) / 10 ** d : x);

function produceTopic(size: number, acks: string, compression: string, producers: number, tuned = false): string {
  return `bench-${sizeName(size)}-acks${acks}-${compression}-p${producers}${tuned ? "-tuned" : ""}`;
}

interface ProduceRun {
  size: number;
  acks: "1" | "all";
  compression: Compression;
  producers: number;
  tuned: boolean;
}

/**
 * What the consumer rows read: the one-producer acks=all uncompressed topic of each record
 * size, alone and in a group, and the one the tuned producer wrote (the same records in
 * batch.size 512 KiB batches), alone: a consumer's cost is per batch as much as per byte.
 */
function consumeSources(): { size: number; topic: string; producerBatchSizeBytes: number; modes: readonly ("alone" | "group")[] }[] {
  return [
    ...RECORD_SIZES.map((size) => ({ size, topic: produceTopic(size, "all", "none", 1), producerBatchSizeBytes: BATCH_SIZE_BYTES, modes: ["alone", "group"] as const })),
    { size: 100, topic: produceTopic(100, "all", "none", 1, true), producerBatchSizeBytes: TUNED.batchSizeBytes, modes: ["alone"] as const },
  ];
}

/** The producer matrix in run order: the default-settings runs, then the tuned ones. */
function produceRuns(): ProduceRun[] {
  const runs: ProduceRun[] = [];
  for (const size of RECORD_SIZES) for (const acks of ACKS) for (const compression of COMPRESSIONS) for (const producers of PRODUCER_COUNTS) runs.push({ size, acks, compression, producers, tuned: false });
  for (const producers of TUNED_PRODUCER_COUNTS) runs.push({ size: 100, acks: "all", compression: "none", producers, tuned: true });
  return runs;
}

/** The report's file name stem: an ISO time without ':' and '.'. */
export function reportStem(date: Date): string {
  return date.toISOString().replace(/[:.]/g, "-");
}

export async function runBench(options: BenchOptions): Promise<{ report: BenchReport; jsonPath: string; mdPath: string }> {
  const benchStartMs = performance.now();
  const write = options.log ?? ((line: string): void => void process.stderr.write(`${line}\n`));
  const log = (line: string): void => write(`[${((performance.now() - benchStartMs) / 1000).toFixed(1).padStart(6)} s] ${line}`);
  const sizes = sizesFor(options.quick);
  const started = new Date();
  const outDir = options.outDir ?? path.join(REPO_ROOT, "bench", "results");
  const checkAbort = (): void => {
    if (options.signal?.aborted) throw new Error("bench aborted");
  };
  const report: BenchReport = {
    startedAt: started.toISOString(),
    finishedAt: "",
    quick: options.quick,
    machine: {
      cpus: os.availableParallelism(),
      cpuModel: os.cpus()[0]?.model ?? "unknown",
      memoryMiB: Math.round(os.totalmem() / 2 ** 20),
      node: process.version,
      platform: `${os.type()} ${os.release()} ${os.arch()}`,
      loadAverageStart: os.loadavg().map((x) => round(x, 2)),
      loadAverageEnd: [],
    },
    settings: {
      partitions: PARTITIONS,
      replicationFactor: 3,
      minInsyncReplicas: 2,
      produceDurationMs: sizes.produceDurationMs,
      batchSizeBytes: BATCH_SIZE_BYTES,
      lingerMs: LINGER_MS,
      bufferMemoryBytes: BUFFER_MEMORY_BYTES,
      recordsPerSend: RECORDS_PER_SEND,
      e2eRecordsPerSec: E2E_RECORDS_PER_SEC,
      brokerOverrides: BROKER_OVERRIDES,
    },
    produce: [],
    consume: [],
    e2e: [],
    nats: { available: false, rows: [] },
    brokerRssMaxMiB: {},
    targets: [],
  };

  let cluster: CombinedCluster | undefined;
  let pool: WorkerPool | undefined;
  let natsCluster: NatsCluster | undefined;
  let natsPool: WorkerPool | undefined;
  const brokerPids = (): ReadonlyMap<string, number> => {
    const m = new Map<string, number>();
    for (const id of cluster?.nodeIds ?? []) {
      const pid = cluster?.handle(id)?.pid;
      if (pid !== undefined && cluster?.isRunning(id)) m.set(`broker-${id}`, pid);
    }
    return m;
  };
  const brokerRss = new RssSampler(brokerPids);
  const natsRss = new RssSampler(() => new Map((natsCluster?.pids ?? []).map((pid, i) => [`nats-${i + 1}`, pid])));
  const abort = (): void => {
    pool?.close();
    natsPool?.close();
  };
  options.signal?.addEventListener("abort", abort);
  const progress = (what: string) => (w: ProgressWindow, nowMs: number): void => log(`  [${what}] ${formatWindowLine(w.take(nowMs))}`);

  try {
    // Node refuses --cpu-prof in NODE_OPTIONS: the brokers get it through a shell that execs
    // node with it (so the pid stays the node's), the producers as node flags.
    const profFlags = options.cpuProfDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${path.resolve(options.cpuProfDir)}`];
    if (options.cpuProfDir !== undefined) fs.mkdirSync(options.cpuProfDir, { recursive: true });
    log(`bench: starting a 3-node cluster and ${PRODUCERS_MAX} producer processes${options.quick ? " (quick)" : ""}`);
    const clusterStart = startCombinedCluster({
      name: "bench",
      nodes: 3,
      overrides: BROKER_OVERRIDES,
      ...(profFlags.length > 0 ? { wrap: () => ["sh", "-c", `exec "$0" ${profFlags.map((f) => `'${f}'`).join(" ")} "$@"`] } : {}),
    });
    const poolStart = startProducerPool(PRODUCERS_MAX, { execArgv: profFlags });
    const [c, p] = await Promise.allSettled([clusterStart, poolStart]);
    if (c.status === "fulfilled") cluster = c.value;
    if (p.status === "fulfilled") pool = p.value;
    if (c.status === "rejected") throw c.reason;
    if (p.status === "rejected") throw p.reason;
    checkAbort();
    const bootstrap = cluster!.bootstrap();
    brokerRss.start();

    // Every topic up front, in one request: creation waits for leaders, once.
    const topics: string[] = [];
    for (const r of produceRuns()) topics.push(produceTopic(r.size, r.acks, r.compression, r.producers, r.tuned));
    const e2eTopic = "bench-e2e-100B";
    const warmUpTopic = "bench-warm-up";
    topics.push(e2eTopic, warmUpTopic);
    await withAdmin(bootstrap, async (admin) => {
      await admin.createTopics({ topics: topics.map((topic) => ({ topic, numPartitions: PARTITIONS, replicationFactor: 3, configs: { "min.insync.replicas": "2" } })), timeoutMs: 60_000 });
      await cluster!.waitFor(
        "leaders of the bench topics",
        async () => {
          const described = await admin.describeTopics({ topics });
          return described.every((t) => t.partitions.length === PARTITIONS && t.partitions.every((x) => x.leader >= 0 && x.isr.length === 3));
        },
        60_000,
      );
    });
    log(`bench: cluster ${bootstrap}, ${topics.length} topics (${PARTITIONS} partitions, RF 3, min.insync.replicas=2)`);

    // Warm-up, not reported.
    {
      log("bench: warm-up (not reported)");
      await producePerf(
        { bootstrapServers: bootstrap, topic: warmUpTopic, numRecords: sizes.produceRecordsMax(100), recordSizeBytes: 100, throughput: -1, acks: 1, batchSizeBytes: BATCH_SIZE_BYTES, lingerMs: LINGER_MS, compression: "none", recordsPerSend: RECORDS_PER_SEND, bufferMemoryBytes: BUFFER_MEMORY_BYTES, maxDurationMs: Math.min(3000, sizes.produceDurationMs) },
        1,
        () => undefined,
        pool,
      ).catch((err: unknown) => log(`bench: warm-up failed (${errorText(err)}); going on`));
    }

    // Producer matrix.
    for (const { size, acks, compression, producers, tuned } of produceRuns()) {
      checkAbort();
      const settings = tuned ? TUNED : { batchSizeBytes: BATCH_SIZE_BYTES, lingerMs: LINGER_MS, bufferMemoryBytes: BUFFER_MEMORY_BYTES };
      const topic = produceTopic(size, acks, compression, producers, tuned);
      const name = `produce ${sizeName(size)} acks=${acks} ${compression} x${producers}${tuned ? ` batch.size=${settings.batchSizeBytes / 1024}KiB` : ""}`;
      log(`bench: ${name}`);
      brokerRss.take();
      try {
        const r = await producePerf(
          {
            bootstrapServers: bootstrap,
            topic,
            numRecords: sizes.produceRecordsMax(size),
            recordSizeBytes: size,
            throughput: -1,
            acks: acks === "all" ? "all" : (1 as Acks),
            batchSizeBytes: settings.batchSizeBytes,
            lingerMs: settings.lingerMs,
            compression,
            recordsPerSend: RECORDS_PER_SEND,
            bufferMemoryBytes: settings.bufferMemoryBytes,
            maxDurationMs: sizes.produceDurationMs,
          },
          producers,
          progress(name),
          pool,
        );
        report.produce.push({
          name,
          topic,
          ...settings,
          recordSizeBytes: size,
          acks,
          compression,
          producers,
          ...runFigures(r),
          brokerRssMaxMiB: brokerRss.take(),
        });
      } catch (err) {
        report.produce.push({ name, topic, ...settings, recordSizeBytes: size, acks, compression, producers, records: 0, recordsPerSec: 0, mbPerSec: 0, latencyMs: {}, errors: 0, error: errorText(err), brokerRssMaxMiB: brokerRss.take() });
        log(`bench: ${name} failed: ${errorText(err)}`);
        // A failed pool job kills the pool: start a fresh one for the next runs.
        pool?.close();
        pool = await startProducerPool(PRODUCERS_MAX, { execArgv: profFlags });
      }
      // Each row starts from the same disk state: the data of a row the consumers do not read
      // goes at once. Left in place, several GB of it would still be in the page cache waiting
      // to be written back when later rows run, and the kernel's writeback (about 40 % of
      // this machine's CPU as system time) would be charged to whichever rows come last.
      const keep = consumeSources().some((c) => c.topic === topic);
      if (!keep) {
        await withAdmin(bootstrap, (admin) => admin.deleteTopics({ topics: [topic], timeoutMs: 60_000 })).catch((err: unknown) =>
          log(`bench: could not delete ${topic} after its run (${errorText(err)}); going on`),
        );
      }
      // What stays (the consumers' topics) is written back now, between rows, not during the next one.
      flushPageCache(log);
    }

    // Consumers read what the one-producer acks=all runs wrote.
    for (const { size, topic, producerBatchSizeBytes, modes } of consumeSources()) {
      const written = report.produce.find((r) => r.topic === topic)?.records ?? 0;
      for (const mode of modes) {
        checkAbort();
        const name = `consume ${sizeName(size)} ${mode}${producerBatchSizeBytes !== BATCH_SIZE_BYTES ? ` (written with batch.size=${producerBatchSizeBytes / 1024}KiB)` : ""}`;
        log(`bench: ${name} (${written} records)`);
        brokerRss.take();
        try {
          if (written === 0) throw new Error(`nothing to read: the producer run for ${topic} wrote no record`);
          const r = await runConsumePerf({
            bootstrapServers: bootstrap,
            topic,
            messages: written,
            ...(mode === "group" ? { group: `bench-${sizeName(size)}-${reportStem(started)}` } : {}),
            idleTimeoutMs: 15_000,
            logger: silentLogger(),
            progressIntervalMs: 5000,
            onProgress: progress(name),
          });
          report.consume.push({
            name,
            topic,
            recordSizeBytes: size,
            mode,
            producerBatchSizeBytes,
            records: r.total.records,
            recordsPerSec: round(r.total.recordsPerSec),
            mbPerSec: round(r.total.mbPerSec, 2),
            fetchRecordsPerSec: round(r.fetch.recordsPerSec),
            fetchMbPerSec: round(r.fetch.mbPerSec, 2),
            startupMs: round(r.startupMs),
            ...(r.timedOut ? { error: `read ${r.total.records} of ${written} records before the idle timeout` } : {}),
            brokerRssMaxMiB: brokerRss.take(),
          });
        } catch (err) {
          report.consume.push({ name, topic, recordSizeBytes: size, mode, producerBatchSizeBytes, records: 0, recordsPerSec: 0, mbPerSec: 0, fetchRecordsPerSec: 0, fetchMbPerSec: 0, startupMs: 0, error: errorText(err), brokerRssMaxMiB: brokerRss.take() });
          log(`bench: ${name} failed: ${errorText(err)}`);
        }
      }
    }

    // End-to-end latency at a fixed rate.
    {
      checkAbort();
      const name = `e2e 100B acks=all at ${E2E_RECORDS_PER_SEC} records/s`;
      log(`bench: ${name} (${sizes.e2eRecords} records)`);
      brokerRss.take();
      try {
        const r = await runE2ePerf({
          bootstrapServers: bootstrap,
          topic: e2eTopic,
          numRecords: sizes.e2eRecords,
          throughput: E2E_RECORDS_PER_SEC,
          recordSizeBytes: 100,
          acks: "all",
          lingerMs: 0,
          idleTimeoutMs: 15_000,
          logger: silentLogger(),
          progressIntervalMs: 5000,
          onProgress: progress(name),
        });
        report.e2e.push({
          name,
          topic: e2eTopic,
          recordSizeBytes: 100,
          targetRecordsPerSec: E2E_RECORDS_PER_SEC,
          sent: r.sent,
          received: r.received,
          recordsPerSec: round(r.throughput.recordsPerSec),
          latencyMs: roundLatency(r.latency),
          ...(r.errors > 0 || r.received < r.sent ? { error: `${r.sent} sent, ${r.received} received, ${r.errors} errors; first error: ${r.firstError ?? "none"}` } : {}),
          brokerRssMaxMiB: brokerRss.take(),
        });
      } catch (err) {
        report.e2e.push({ name, topic: e2eTopic, recordSizeBytes: 100, targetRecordsPerSec: E2E_RECORDS_PER_SEC, sent: 0, received: 0, recordsPerSec: 0, latencyMs: {}, error: errorText(err), brokerRssMaxMiB: brokerRss.take() });
        log(`bench: ${name} failed: ${errorText(err)}`);
      }
    }
    brokerRss.stop();
    report.brokerRssMaxMiB = brokerRss.overall();
    // The brokers are done: stop them before NATS runs, so both get the machine to themselves.
    if (options.cpuProfDir !== undefined) await pool?.closeGracefully(10_000);
    pool?.close();
    pool = undefined;
    if (options.cpuProfDir !== undefined) {
      log(`bench: stopping the brokers with SIGTERM so they write their profiles to ${options.cpuProfDir}`);
      await Promise.all(cluster!.nodeIds.map((id) => cluster!.stop(id, "SIGTERM", 30_000).catch(() => undefined)));
    }
    await cluster!.destroy();
    cluster = undefined;

    // The same publish workload on NATS JetStream.
    const natsBinary = options.nats === false ? undefined : findNatsServer();
    if (!natsBinary) {
      report.nats.skipped = options.nats === false ? "disabled (--no-nats)" : "nats-server not found on PATH or in /usr/sbin";
      log(`bench: NATS comparison skipped: ${report.nats.skipped}`);
    } else {
      report.nats.available = true;
      report.nats.version = natsServerVersion(natsBinary);
      checkAbort();
      log(`bench: starting a 3-node JetStream cluster (${report.nats.version})`);
      const [nc, np] = await Promise.allSettled([startNatsCluster(natsBinary), WorkerPool.start({ entry: path.join(REPO_ROOT, "scripts", "bench", "nats-publish-worker.ts"), count: PRODUCERS_MAX })]);
      if (nc.status === "fulfilled") natsCluster = nc.value;
      if (np.status === "fulfilled") natsPool = np.value;
      if (nc.status === "rejected") throw nc.reason;
      if (np.status === "rejected") throw np.reason;
      natsRss.start();
      for (const size of RECORD_SIZES) {
        for (const producers of PRODUCER_COUNTS) {
          checkAbort();
          const name = `jetstream ${sizeName(size)} R3 x${producers}`;
          log(`bench: ${name}`);
          const flotilla = report.produce.find((r) => r.recordSizeBytes === size && r.acks === "all" && r.compression === "none" && r.producers === producers && r.batchSizeBytes === BATCH_SIZE_BYTES && !r.error);
          natsRss.take();
          try {
            const results = await natsPool!.run({
              count: producers,
              job: (i) => ({
                servers: natsCluster!.servers,
                subject: `${NATS_SUBJECT_PREFIX}.${sizeName(size)}.p${producers}.${i}`,
                numRecords: sizes.produceRecordsMax(size),
                recordSizeBytes: size,
                maxDurationMs: sizes.natsDurationMs,
                inflightMax: NATS_INFLIGHT_MAX,
              }),
              onProgress: progress(name),
              runTimeoutMs: 600_000,
            });
            const r = aggregateResults(results);
            report.nats.rows.push({
              name,
              recordSizeBytes: size,
              producers,
              ...runFigures(r),
              flotillaRecordsPerSec: flotilla?.recordsPerSec,
              ratio: flotilla && r.throughput.recordsPerSec > 0 ? round(flotilla.recordsPerSec / r.throughput.recordsPerSec, 3) : undefined,
              serverRssMaxMiB: natsRss.take(),
            });
          } catch (err) {
            report.nats.rows.push({ name, recordSizeBytes: size, producers, records: 0, recordsPerSec: 0, mbPerSec: 0, latencyMs: {}, errors: 0, error: errorText(err), flotillaRecordsPerSec: flotilla?.recordsPerSec, ratio: undefined, serverRssMaxMiB: natsRss.take() });
            log(`bench: ${name} failed: ${errorText(err)}`);
            natsPool?.close();
            natsPool = await WorkerPool.start({ entry: path.join(REPO_ROOT, "scripts", "bench", "nats-publish-worker.ts"), count: PRODUCERS_MAX });
          }
        }
      }
    }
  } finally {
    options.signal?.removeEventListener("abort", abort);
    brokerRss.stop();
    natsRss.stop();
    pool?.close();
    natsPool?.close();
    await cluster?.destroy().catch(() => undefined);
    await natsCluster?.stop().catch(() => undefined);
  }

  report.finishedAt = new Date().toISOString();
  report.machine.loadAverageEnd = os.loadavg().map((x) => round(x, 2));
  report.targets = evaluateTargets(report);
  fs.mkdirSync(outDir, { recursive: true });
  const stem = path.join(outDir, reportStem(started));
  const jsonPath = `${stem}.json`;
  const mdPath = `${stem}.md`;
  fs.writeFileSync(jsonPath, `${JSON.stringify(report, null, 2)}\n`);
  fs.writeFileSync(mdPath, renderMarkdown(report));
  return { report, jsonPath, mdPath };
}

function roundLatency(l: LatencySummary): Latency {
  return Object.fromEntries(Object.entries(latencyJson(l)).map(([k, v]) => [k, round(v, 3)]));
}

/** The figures of a producer or publisher run, as a report row carries them. */
function runFigures(r: Pick<AggregateResult, "throughput" | "latency" | "errors" | "firstError">): { records: number; recordsPerSec: number; mbPerSec: number; latencyMs: Latency; errors: number; error?: string } {
  return {
    records: r.throughput.records,
    recordsPerSec: round(r.throughput.recordsPerSec),
    mbPerSec: round(r.throughput.mbPerSec, 2),
    latencyMs: roundLatency(r.latency),
    errors: r.errors,
    ...(r.firstError !== undefined ? { error: r.firstError } : {}),
  };
}

/** The issue's targets (100-byte records, acks=all, RF 3) against the best matching run. */
export function evaluateTargets(report: BenchReport): TargetRow[] {
  const fmt = (x: number | undefined, unit: string): string => (x === undefined || !Number.isFinite(x) ? "n/a" : `${Math.round(x).toLocaleString("en-US")} ${unit}`);
  const producerBest = Math.max(0, ...report.produce.filter((r) => r.recordSizeBytes === 100 && r.acks === "all" && !r.error).map((r) => r.recordsPerSec));
  const consumerBest = Math.max(0, ...report.consume.filter((r) => r.recordSizeBytes === 100 && !r.error).map((r) => r.recordsPerSec));
  const e2e = report.e2e.find((r) => !r.error);
  const p50 = e2e?.latencyMs.p50;
  const p99 = e2e?.latencyMs.p99;
  const rssMax = Math.max(0, ...Object.values(report.brokerRssMaxMiB));
  return [
    { target: "producer throughput, 100 B, acks=all, RF 3 (best run)", goal: ">= 1,000,000 records/s", measured: fmt(producerBest, "records/s"), met: producerBest >= 1_000_000 },
    { target: "consumer throughput, 100 B (best run)", goal: ">= 2,000,000 records/s", measured: fmt(consumerBest, "records/s"), met: consumerBest >= 2_000_000 },
    { target: "end-to-end latency p50 at 10,000 records/s", goal: "< 2 ms", measured: p50 === undefined ? "n/a" : `${p50} ms`, met: p50 !== undefined && p50 < 2 },
    { target: "end-to-end latency p99 at 10,000 records/s", goal: "< 10 ms", measured: p99 === undefined ? "n/a" : `${p99} ms`, met: p99 !== undefined && p99 < 10 },
    { target: "broker resident memory, max over the matrix", goal: "< 512 MiB each", measured: rssMax > 0 ? `${rssMax} MiB` : "n/a", met: rssMax > 0 && rssMax < 512 },
  ];
}

/**
 * Load generators as separate processes, started together, their figures merged.
 *
 * Several producers in one Node process would share one event loop and one core, so
 * `--producers N` runs N child processes (`node --import tsx <entry>`), each with its own
 * client and connections. The children speak newline-delimited JSON on stdout:
 *
 *   {"type":"ready"}                          set up (modules loaded, client made); waits
 *   -- the parent writes "go\n" to every child's stdin once all are ready --
 *   {"type":"progress","records":..,"bytes":..,"latencySumMs":..,"latencyMaxMs":..}
 *                                             about once a second: totals since the last one
 *   {"type":"result", ...WorkerResult}        the end; then the child exits
 *
 * The start barrier keeps one child's slow start-up (tsx compiling on a loaded machine) out of
 * the others' figures. Aggregate throughput is all acknowledged records over the span from
 * the first child's start to the last one's end; percentiles come from the merged histograms.
 * Children are killed by pid on error, on timeout and when the caller aborts.
 */
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";
import { LatencyHistogram, ProgressWindow, throughput, type LatencySummary, type ThroughputFigures } from "./stats.js";

/** The repository root, where `--import tsx` resolves. */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../..");

/** What a worker prints as its result line (besides "type"). */
export interface WorkerResult {
  records: number;
  bytes: number;
  errors: number;
  firstError?: string;
  startedAtEpochMs: number;
  endedAtEpochMs: number;
  /** LatencyHistogram.encode(). */
  histogram: string;
}

export interface AggregateResult {
  throughput: ThroughputFigures;
  latency: LatencySummary;
  errors: number;
  firstError: string | undefined;
  workers: number;
}

/** Merges the results of workers that ran side by side. */
export function aggregateResults(results: readonly WorkerResult[]): AggregateResult {
  const histogram = new LatencyHistogram();
  let records = 0;
  let bytes = 0;
  let errors = 0;
  let firstError: string | undefined;
  let startMs = Infinity;
  let endMs = -Infinity;
  for (const r of results) {
    histogram.merge(LatencyHistogram.decode(r.histogram));
    records += r.records;
    bytes += r.bytes;
    errors += r.errors;
    firstError ??= r.firstError;
    startMs = Math.min(startMs, r.startedAtEpochMs);
    endMs = Math.max(endMs, r.endedAtEpochMs);
  }
  const elapsedMs = results.length === 0 ? 0 : endMs - startMs;
  return { throughput: throughput(records, bytes, elapsedMs), latency: histogram.summary(), errors, firstError, workers: results.length };
}

export interface RunWorkersOptions {
  /** The worker's .ts entry, absolute. */
  entry: string;
  /** Arguments of worker i (0-based). */
  args: (i: number) => string[];
  count: number;
  /** Aggregated progress, every progressIntervalMs. */
  onProgress?: (window: ProgressWindow, nowMs: number) => void;
  progressIntervalMs?: number;
  /** Time for all workers to get ready. Default 120 s (tsx start-up on a loaded machine). */
  readyTimeoutMs?: number;
  /** Time for the run once started. */
  runTimeoutMs: number;
  /** Aborting kills the workers. */
  signal?: AbortSignal;
  /** Where the workers' stderr goes. Default: this process's stderr. */
  stderr?: "inherit" | "ignore";
}

interface Worker {
  child: ChildProcess;
  ready: Promise<void>;
  result: Promise<WorkerResult>;
}

function startWorker(o: RunWorkersOptions, i: number, window: ProgressWindow): Worker {
  const child = spawn(process.execPath, ["--import", "tsx", o.entry, ...o.args(i)], {
    cwd: REPO_ROOT,
    stdio: ["pipe", "pipe", o.stderr ?? "inherit"],
  });
  let onReady!: () => void;
  let onResult!: (r: WorkerResult) => void;
  let onFail!: (err: Error) => void;
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  const result = new Promise<WorkerResult>((resolve, reject) => {
    onResult = resolve;
    onFail = reject;
  });
  let gotResult = false;
  const fail = (why: string): void => onFail(new Error(`perf worker ${i} (pid ${child.pid}) ${why}`));
  readline.createInterface({ input: child.stdout! }).on("line", (line) => {
    let msg: { type?: string } & Record<string, unknown>;
    try {
      msg = JSON.parse(line) as typeof msg;
    } catch {
      return; // not a protocol line
    }
    if (msg.type === "ready") onReady();
    else if (msg.type === "progress") window.addTotals(msg as unknown as Parameters<ProgressWindow["addTotals"]>[0]);
    else if (msg.type === "result") {
      gotResult = true;
      onResult(msg as unknown as WorkerResult);
    }
  });
  child.once("error", (err) => fail(`could not start: ${err.message}`));
  child.once("exit", (code, signal) => {
    if (!gotResult) fail(`exited (code ${code}, signal ${signal}) without a result`);
  });
  // A failure before ready must also end the wait for ready.
  result.catch(() => onReady());
  return { child, ready, result };
}

function killChild(child: ChildProcess): void {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  try {
    process.kill(child.pid, "SIGKILL");
  } catch {
    // Already gone.
  }
}

function timeout(ms: number, what: string): { promise: Promise<never>; cancel: () => void } {
  let t: NodeJS.Timeout | undefined;
  const promise = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new Error(`perf workers: ${what} took more than ${ms} ms`)), ms);
  });
  promise.catch(() => undefined);
  return { promise, cancel: () => clearTimeout(t) };
}

/** Starts `count` workers, releases them together, returns their results. Kills every worker it started before returning or throwing. */
export async function runWorkers(o: RunWorkersOptions): Promise<WorkerResult[]> {
  const window = new ProgressWindow(o.progressIntervalMs ?? 5000, performance.now());
  const workers: Worker[] = [];
  let progress: NodeJS.Timeout | undefined;
  const abort = (): void => workers.forEach((w) => killChild(w.child));
  o.signal?.addEventListener("abort", abort);
  try {
    for (let i = 0; i < o.count; i++) workers.push(startWorker(o, i, window));
    const failed = Promise.race(workers.map((w) => w.result.then(() => new Promise<never>(() => undefined))));
    failed.catch(() => undefined);
    const readyWait = timeout(o.readyTimeoutMs ?? 120_000, "start-up");
    try {
      await Promise.race([Promise.all(workers.map((w) => w.ready)), readyWait.promise, failed]);
    } finally {
      readyWait.cancel();
    }
    if (o.signal?.aborted) throw new Error("perf workers: aborted");
    for (const w of workers) w.child.stdin!.end("go\n");
    if (o.onProgress) {
      window.take(performance.now());
      progress = setInterval(() => o.onProgress!(window, performance.now()), o.progressIntervalMs ?? 5000);
    }
    const runWait = timeout(o.runTimeoutMs, "the run");
    try {
      return await Promise.race([Promise.all(workers.map((w) => w.result)), runWait.promise]);
    } finally {
      runWait.cancel();
    }
  } finally {
    if (progress) clearInterval(progress);
    o.signal?.removeEventListener("abort", abort);
    abort();
  }
}

/**
 * The worker side of the protocol: prints ready, waits for "go" on stdin, runs, prints
 * progress about once a second and the result. Returns the exit code.
 */
export async function workerMain(run: (onProgress: (window: ProgressWindow, nowMs: number) => void) => Promise<WorkerResult>): Promise<number> {
  const out = (msg: object): void => void process.stdout.write(`${JSON.stringify(msg)}\n`);
  out({ type: "ready" });
  const go = await new Promise<boolean>((resolve) => {
    const lines = readline.createInterface({ input: process.stdin });
    lines.once("line", (line) => {
      // Before close(): close() emits "close" at once, which would resolve false first.
      resolve(line.trim() === "go");
      lines.close();
    });
    lines.once("close", () => resolve(false));
  });
  if (!go) return 1;
  const result = await run((window, nowMs) => {
    out({ type: "progress", ...window.totals() });
    window.take(nowMs);
  });
  out({ type: "result", ...result });
  return 0;
}

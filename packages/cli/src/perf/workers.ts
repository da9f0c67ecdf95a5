/**
 * Load generators as separate processes, released together, their figures merged.
 *
 * Several producers in one Node process would share one event loop and one core, so
 * `--producers N` runs N child processes (`node --import tsx <entry>`), each with its own
 * client and connections. Parent and children speak newline-delimited JSON:
 *
 *   child  -> {"type":"ready"}                  modules loaded; waits for jobs on stdin
 *   parent -> {"type":"job", ...options}        one line per child, written to all at once
 *   child  -> {"type":"progress","records":..,"bytes":..,"latencySumMs":..,"latencyMaxMs":..}
 *                                               about once a second: totals since the last one
 *   child  -> {"type":"result", ...WorkerResult} the job's end; the child waits for the next job
 *   parent closes stdin                         the child exits
 *
 * A pool is started once and runs many jobs (pnpm bench runs a matrix of them), so the
 * seconds tsx needs to start a child on a loaded machine are paid once, and never inside a
 * measurement: jobs are written only once every child is ready. Aggregate throughput is
 * all acknowledged records over the span from the first child's start to the last one's
 * end; percentiles come from the merged histograms. Children are killed by pid on close(),
 * on error and on timeout.
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

type ProgressTotals = Parameters<ProgressWindow["addTotals"]>[0];

interface Child {
  index: number;
  proc: ChildProcess;
  exited: boolean;
  /** Settles with the current job's result; replaced per job. */
  onResult: ((r: WorkerResult) => void) | undefined;
  onFailure: ((err: Error) => void) | undefined;
}

function killChild(proc: ChildProcess): void {
  if (proc.exitCode !== null || proc.signalCode !== null || proc.pid === undefined) return;
  try {
    process.kill(proc.pid, "SIGKILL");
  } catch {
    // Already gone.
  }
}

/** Rejects after `ms` naming `what`; cancel() stops the timer. */
function deadline(ms: number, what: string): { promise: Promise<never>; cancel: () => void } {
  let t: NodeJS.Timeout | undefined;
  const promise = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new Error(`perf workers: ${what} took more than ${ms} ms`)), ms);
  });
  promise.catch(() => undefined);
  return { promise, cancel: () => clearTimeout(t) };
}

export interface WorkerPoolOptions {
  /** The worker's .ts entry, absolute. */
  entry: string;
  count: number;
  /** Time for every worker to print ready. Default 120 s (tsx start-up on a loaded machine). */
  readyTimeoutMs?: number;
  /** Where the workers' stderr goes. Default: this process's stderr. */
  stderr?: "inherit" | "ignore";
  /** Extra node flags, e.g. ["--cpu-prof", "--cpu-prof-dir=/tmp/prof"]. */
  execArgv?: readonly string[];
}

export interface RunJobOptions {
  /** The job of worker i (0-based); written as one JSON line. */
  job: (i: number) => object;
  /** Time for the job once released. */
  runTimeoutMs: number;
  /** Aggregated progress every progressIntervalMs (default 5000). */
  onProgress?: (window: ProgressWindow, nowMs: number) => void;
  progressIntervalMs?: number;
  /** Aborting kills the workers. */
  signal?: AbortSignal;
  /** Run on the first `count` workers only. Default: all. */
  count?: number;
}

/** N worker processes that run jobs together. Always close() it (it kills the children by pid). */
export class WorkerPool {
  private readonly children: Child[] = [];
  private window: ProgressWindow | undefined;

  private constructor(readonly options: WorkerPoolOptions) {}

  /** Starts `count` workers and waits until each printed ready. Kills them if that fails. */
  static async start(options: WorkerPoolOptions): Promise<WorkerPool> {
    const pool = new WorkerPool(options);
    try {
      const readies = Array.from({ length: options.count }, (_, i) => pool.spawn(i));
      const wait = deadline(options.readyTimeoutMs ?? 120_000, "start-up");
      try {
        await Promise.race([Promise.all(readies), wait.promise]);
      } finally {
        wait.cancel();
      }
    } catch (err) {
      pool.close();
      throw err;
    }
    return pool;
  }

  get pids(): number[] {
    return this.children.map((c) => c.proc.pid ?? -1);
  }

  private spawn(index: number): Promise<void> {
    const proc = spawn(process.execPath, [...(this.options.execArgv ?? []), "--import", "tsx", this.options.entry], {
      cwd: REPO_ROOT,
      stdio: ["pipe", "pipe", this.options.stderr ?? "inherit"],
    });
    const child: Child = { index, proc, exited: false, onResult: undefined, onFailure: undefined };
    this.children.push(child);
    return new Promise<void>((resolveReady, rejectReady) => {
      const fail = (why: string): void => {
        const err = new Error(`perf worker ${index} (pid ${proc.pid}) ${why}`);
        rejectReady(err);
        child.onFailure?.(err);
      };
      readline.createInterface({ input: proc.stdout! }).on("line", (line) => {
        let msg: { type?: string } & Record<string, unknown>;
        try {
          msg = JSON.parse(line) as typeof msg;
        } catch {
          return; // not a protocol line
        }
        if (msg.type === "ready") resolveReady();
        else if (msg.type === "progress") this.window?.addTotals(msg as unknown as ProgressTotals);
        else if (msg.type === "result") child.onResult?.(msg as unknown as WorkerResult);
        else if (msg.type === "error") fail(`failed: ${String(msg.message)}`);
      });
      proc.stdin!.on("error", () => undefined); // a child that died; reported by "exit"
      proc.once("error", (err) => fail(`could not start: ${err.message}`));
      proc.once("exit", (code, signal) => {
        child.exited = true;
        fail(`exited (code ${code}, signal ${signal})`);
      });
    });
  }

  /** Runs one job on every worker at once and returns their results in worker order. */
  async run(o: RunJobOptions): Promise<WorkerResult[]> {
    const intervalMs = o.progressIntervalMs ?? 5000;
    this.window = new ProgressWindow(intervalMs, performance.now());
    const count = o.count ?? this.children.length;
    if (!(count >= 1 && count <= this.children.length)) throw new RangeError(`count must be in [1, ${this.children.length}], got ${count}`);
    const children = this.children.slice(0, count);
    const results = children.map(
      (c) =>
        new Promise<WorkerResult>((resolve, reject) => {
          if (c.exited) reject(new Error(`perf worker ${c.index} has exited`));
          c.onResult = resolve;
          c.onFailure = reject;
        }),
    );
    const abort = (): void => this.close();
    o.signal?.addEventListener("abort", abort);
    const progress = o.onProgress ? setInterval(() => o.onProgress!(this.window!, performance.now()), intervalMs) : undefined;
    const wait = deadline(o.runTimeoutMs, "the run");
    try {
      for (const c of children) c.proc.stdin!.write(`${JSON.stringify({ type: "job", ...o.job(c.index) })}\n`);
      return await Promise.race([Promise.all(results), wait.promise]);
    } catch (err) {
      // A failed or timed-out job leaves workers in an unknown state: stop them all.
      this.close();
      throw err;
    } finally {
      wait.cancel();
      if (progress) clearInterval(progress);
      o.signal?.removeEventListener("abort", abort);
      for (const c of this.children) {
        c.onResult = undefined;
        c.onFailure = undefined;
      }
    }
  }

  /**
   * Closes stdin and gives the workers up to `graceMs` to exit by themselves (a worker run
   * under --cpu-prof writes its profile only then), then close().
   */
  async closeGracefully(graceMs: number): Promise<void> {
    for (const c of this.children) c.proc.stdin?.end();
    const exits = this.children.map((c) => (c.exited ? Promise.resolve() : new Promise<void>((r) => c.proc.once("exit", () => r()))));
    const wait = deadline(graceMs, "exit");
    await Promise.race([Promise.all(exits), wait.promise]).catch(() => undefined);
    wait.cancel();
    this.close();
  }

  /** Ends every worker: stdin closed, then SIGKILL by pid (they hold no state worth a clean exit). */
  close(): void {
    for (const c of this.children) {
      c.proc.stdin?.end();
      killChild(c.proc);
    }
  }
}

/**
 * The worker side: prints ready, then runs each job line from stdin, printing progress
 * about once a second and the result. Exits the process when stdin closes.
 */
export async function workerMain<J>(run: (job: J, onProgress: (window: ProgressWindow, nowMs: number) => void) => Promise<WorkerResult>): Promise<void> {
  const out = (msg: object): void => void process.stdout.write(`${JSON.stringify(msg)}\n`);
  const onProgress = (window: ProgressWindow, nowMs: number): void => {
    out({ type: "progress", ...window.totals() });
    window.take(nowMs);
  };
  out({ type: "ready" });
  const lines = readline.createInterface({ input: process.stdin });
  // stdin closes when the parent closes the pool or dies (even by SIGKILL): nobody is left
  // to report to, so stop at once, also in the middle of a job.
  lines.once("close", () => process.exit(0));
  for await (const line of lines) {
    let job: { type?: string } & J;
    try {
      job = JSON.parse(line) as typeof job;
    } catch {
      continue;
    }
    if (job.type !== "job") continue;
    try {
      out({ type: "result", ...(await run(job, onProgress)) });
    } catch (err) {
      out({ type: "error", message: err instanceof Error ? err.message : String(err) });
    }
  }
}

/**
 * Resident memory of processes, sampled from /proc/<pid>/status (VmRSS) every
 * `intervalMs`, kept as the maximum per process: per run (take()) and over the whole bench.
 * A process that has exited or a system without /proc gives no sample (undefined).
 */
import fs from "node:fs";

/** VmRSS of `pid` in MiB, or undefined. */
export function rssMiB(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

export class RssSampler {
  private readonly runMax = new Map<string, number>();
  private readonly overallMax = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly pids: () => ReadonlyMap<string, number>,
    private readonly intervalMs = 250,
  ) {}

  start(): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  sample(): void {
    for (const [name, pid] of this.pids()) {
      const mib = rssMiB(pid);
      if (mib === undefined) continue;
      this.runMax.set(name, Math.max(this.runMax.get(name) ?? 0, mib));
      this.overallMax.set(name, Math.max(this.overallMax.get(name) ?? 0, mib));
    }
  }

  /** The maximum per process since the last take(), rounded to 0.1 MiB; starts the next run's maxima. */
  take(): Record<string, number> {
    this.sample();
    const out = Object.fromEntries([...this.runMax].map(([k, v]) => [k, Math.round(v * 10) / 10]));
    this.runMax.clear();
    return out;
  }

  overall(): Record<string, number> {
    return Object.fromEntries([...this.overallMax].map(([k, v]) => [k, Math.round(v * 10) / 10]));
  }
}

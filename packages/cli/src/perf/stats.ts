/**
 * Arithmetic of the perf tools: latency percentiles, rates, progress windows and the
 * records/s throttle. Pure: every function takes the time it needs as an argument.
 *
 * Percentiles come from an HdrHistogram (hdr-histogram-js) rather than a sorted array of
 * samples: it records each value in O(1) with fixed memory (a few tens of KiB whatever the
 * record count, where 10 million float samples would take 80 MB), records a whole send()
 * call's records with one `recordValueWithCount`, and encodes to a short compressed string,
 * so the histograms of several producer processes merge into exact aggregate percentiles
 * (percentiles cannot be averaged). Its bucket math is the reference implementation's port,
 * which is the part a hand-written log-linear histogram would most likely get wrong.
 *
 * Definitions:
 * - Values are recorded in whole microseconds with 3 significant digits, so a percentile
 *   is exact to 0.1% of its value (and to 1 µs below 1 ms).
 * - The p-th percentile is the nearest-rank value: the value of the sample of rank
 *   max(1, round(p/100 * count)) in ascending order (HdrHistogram's definition), reported as
 *   the upper end of its bucket but never above the exact maximum.
 * - avg, max and min are exact (kept beside the histogram, not read from its buckets).
 * - With no sample every figure is NaN (JSON.stringify writes null), never a made-up 0.
 */
import * as hdr from "hdr-histogram-js";

/** Latency figures in milliseconds, as the perf tools print them. */
export interface LatencySummary {
  count: number;
  avgMs: number;
  minMs: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
}

/** µs per ms: values are recorded as integer microseconds. */
const US_PER_MS = 1000;

function newHistogram(): hdr.Histogram {
  // 64-bit counts: a bucket may hold more than 2^31 records in a long run. The JS build,
  // not WebAssembly: recording is a few array operations, and no async init is needed.
  return hdr.build({ bitBucketSize: 64, numberOfSignificantValueDigits: 3, autoResize: true, useWebAssembly: false });
}

/** A latency histogram with exact count, sum, min and max beside it. Mergeable across processes via encode()/decode(). */
export class LatencyHistogram {
  private readonly histogram: hdr.Histogram;
  private countValue = 0;
  private sumMs = 0;
  private minValueMs = Infinity;
  private maxValueMs = -Infinity;

  constructor(histogram: hdr.Histogram = newHistogram()) {
    this.histogram = histogram;
  }

  get count(): number {
    return this.countValue;
  }

  /** Records one latency. Negative values (a clock step) count as 0. */
  record(latencyMs: number): void {
    this.recordWithCount(latencyMs, 1);
  }

  /** Records `count` samples of the same latency (e.g. all records of one send() call). */
  recordWithCount(latencyMs: number, count: number): void {
    if (count <= 0) return;
    const ms = latencyMs > 0 && Number.isFinite(latencyMs) ? latencyMs : 0;
    this.histogram.recordValueWithCount(Math.round(ms * US_PER_MS), count);
    this.countValue += count;
    this.sumMs += ms * count;
    if (ms < this.minValueMs) this.minValueMs = ms;
    if (ms > this.maxValueMs) this.maxValueMs = ms;
  }

  /** Adds every sample of `other` to this one. */
  merge(other: LatencyHistogram): void {
    if (other.countValue === 0) return;
    this.histogram.add(other.histogram);
    this.countValue += other.countValue;
    this.sumMs += other.sumMs;
    this.minValueMs = Math.min(this.minValueMs, other.minValueMs);
    this.maxValueMs = Math.max(this.maxValueMs, other.maxValueMs);
  }

  /** The nearest-rank percentile in ms (0 < p <= 100), NaN without samples. */
  percentileMs(p: number): number {
    if (!(p > 0 && p <= 100)) throw new RangeError(`percentile must be in (0, 100], got ${p}`);
    if (this.countValue === 0) return NaN;
    const ms = this.histogram.getValueAtPercentile(p) / US_PER_MS;
    // The histogram answers with its bucket's upper end; the exact bounds are known.
    return Math.min(Math.max(ms, this.minValueMs), this.maxValueMs);
  }

  summary(): LatencySummary {
    const n = this.countValue;
    return {
      count: n,
      avgMs: n === 0 ? NaN : this.sumMs / n,
      minMs: n === 0 ? NaN : this.minValueMs,
      p50Ms: this.percentileMs(50),
      p95Ms: this.percentileMs(95),
      p99Ms: this.percentileMs(99),
      p999Ms: this.percentileMs(99.9),
      maxMs: n === 0 ? NaN : this.maxValueMs,
    };
  }

  /** A compact string (compressed HdrHistogram V2 encoding plus the exact figures) for another process to merge. */
  encode(): string {
    const exact = [this.countValue, this.sumMs, this.minValueMs, this.maxValueMs].join(",");
    return `${exact};${hdr.encodeIntoCompressedBase64(this.histogram)}`;
  }

  static decode(text: string): LatencyHistogram {
    const i = text.indexOf(";");
    if (i < 0) throw new RangeError("not an encoded LatencyHistogram (no ';')");
    const exact = text.slice(0, i).split(",").map(Number);
    if (exact.length !== 4 || exact.some((x) => Number.isNaN(x))) throw new RangeError(`not an encoded LatencyHistogram: "${text.slice(0, i)}"`);
    const h = new LatencyHistogram(hdr.decodeFromCompressedBase64(text.slice(i + 1), 64, false));
    [h.countValue, h.sumMs, h.minValueMs, h.maxValueMs] = exact as [number, number, number, number];
    return h;
  }
}

/** Kafka's perf tools count MB as 2^20 bytes. */
export const BYTES_PER_MB = 1024 * 1024;

/** Events per second over `elapsedMs`; 0 when nothing happened or no time passed (never Infinity or NaN). */
export function perSecond(count: number, elapsedMs: number): number {
  if (count <= 0 || !(elapsedMs > 0)) return 0;
  return (count * 1000) / elapsedMs;
}

/** MB (2^20 bytes) per second over `elapsedMs`. */
export function mbPerSecond(bytes: number, elapsedMs: number): number {
  return perSecond(bytes, elapsedMs) / BYTES_PER_MB;
}

/** Records and bytes over a period, with the rates they make. */
export interface ThroughputFigures {
  records: number;
  bytes: number;
  elapsedMs: number;
  recordsPerSec: number;
  mbPerSec: number;
}

export function throughput(records: number, bytes: number, elapsedMs: number): ThroughputFigures {
  return { records, bytes, elapsedMs, recordsPerSec: perSecond(records, elapsedMs), mbPerSec: mbPerSecond(bytes, elapsedMs) };
}

/** One progress window, as printed every few seconds. */
export interface WindowReport extends ThroughputFigures {
  avgLatencyMs: number;
  maxLatencyMs: number;
}

/**
 * Counts for periodic progress lines (Kafka's producer perf test prints one per 5 s
 * window): add() per acknowledged send, take() once `windowMs` has passed since the window
 * opened. Only sums and a max per window, so adding costs a few arithmetic operations.
 */
export class ProgressWindow {
  private startMs: number;
  private records = 0;
  private bytes = 0;
  private latencySumMs = 0;
  private latencyMaxMs = 0;

  constructor(
    readonly windowMs: number,
    nowMs: number,
  ) {
    if (!(windowMs > 0)) throw new RangeError(`windowMs must be > 0, got ${windowMs}`);
    this.startMs = nowMs;
  }

  /** `records` records of `bytes` bytes in total, each with latency `latencyMs`. */
  add(records: number, bytes: number, latencyMs: number): void {
    this.records += records;
    this.bytes += bytes;
    this.latencySumMs += latencyMs * records;
    if (latencyMs > this.latencyMaxMs) this.latencyMaxMs = latencyMs;
  }

  /** Adds another window's totals (a child process's share of the same period). */
  addTotals(t: { records: number; bytes: number; latencySumMs: number; latencyMaxMs: number }): void {
    this.records += t.records;
    this.bytes += t.bytes;
    this.latencySumMs += t.latencySumMs;
    if (t.latencyMaxMs > this.latencyMaxMs) this.latencyMaxMs = t.latencyMaxMs;
  }

  /** The open window's raw totals. */
  totals(): { records: number; bytes: number; latencySumMs: number; latencyMaxMs: number } {
    return { records: this.records, bytes: this.bytes, latencySumMs: this.latencySumMs, latencyMaxMs: this.latencyMaxMs };
  }

  /** True once the window has lasted `windowMs`. */
  due(nowMs: number): boolean {
    return nowMs - this.startMs >= this.windowMs;
  }

  /** Closes the window at `nowMs`, returns its figures and opens the next one. */
  take(nowMs: number): WindowReport {
    const elapsedMs = nowMs - this.startMs;
    const report: WindowReport = {
      ...throughput(this.records, this.bytes, elapsedMs),
      avgLatencyMs: this.records === 0 ? NaN : this.latencySumMs / this.records,
      maxLatencyMs: this.records === 0 ? NaN : this.latencyMaxMs,
    };
    this.startMs = nowMs;
    this.records = 0;
    this.bytes = 0;
    this.latencySumMs = 0;
    this.latencyMaxMs = 0;
    return report;
  }
}

/**
 * A records/s cap, like Kafka's ThroughputThrottler but by schedule instead of sleeps:
 * record number n (counting from 0) is due at startMs + n * 1000 / recordsPerSec, so a
 * sender that fell behind catches up at once and one that is ahead waits exactly as
 * long as needed. recordsPerSec <= 0 (the tools' -1) means no cap.
 */
export class Throttle {
  constructor(
    readonly recordsPerSec: number,
    readonly startMs: number,
  ) {}

  get unlimited(): boolean {
    return !(this.recordsPerSec > 0);
  }

  /** How many records may have been sent by `nowMs` (Infinity without a cap). */
  allowed(nowMs: number): number {
    if (this.unlimited) return Infinity;
    const elapsedMs = nowMs - this.startMs;
    if (elapsedMs < 0) return 0;
    // +1: record 0 is due at startMs itself.
    return Math.floor((elapsedMs * this.recordsPerSec) / 1000) + 1;
  }

  /** Milliseconds to wait at `nowMs` before record number `sent` may go; 0 when it may go now. */
  delayMs(sent: number, nowMs: number): number {
    if (this.unlimited) return 0;
    const dueMs = this.startMs + (sent * 1000) / this.recordsPerSec;
    return dueMs > nowMs ? dueMs - nowMs : 0;
  }
}

const fmt = (x: number, digits: number): string => (Number.isFinite(x) ? x.toFixed(digits) : "-");

/** Kafka-style final line: "N records sent, R records/sec (M MB/sec), A ms avg latency, ...". */
export function formatProduceLine(t: ThroughputFigures, l: LatencySummary, verb = "sent"): string {
  return (
    `${t.records} records ${verb}, ${fmt(t.recordsPerSec, 1)} records/sec (${fmt(t.mbPerSec, 2)} MB/sec), ` +
    `${fmt(l.avgMs, 2)} ms avg latency, ${fmt(l.maxMs, 2)} ms max latency, ` +
    `${fmt(l.p50Ms, 2)} ms 50th, ${fmt(l.p95Ms, 2)} ms 95th, ${fmt(l.p99Ms, 2)} ms 99th, ${fmt(l.p999Ms, 2)} ms 99.9th.`
  );
}

/** Kafka-style progress line for one window. */
export function formatWindowLine(w: WindowReport, verb = "sent", withLatency = true): string {
  const rates = `${w.records} records ${verb}, ${fmt(w.recordsPerSec, 1)} records/sec (${fmt(w.mbPerSec, 2)} MB/sec)`;
  return withLatency ? `${rates}, ${fmt(w.avgLatencyMs, 2)} ms avg latency, ${fmt(w.maxLatencyMs, 2)} ms max latency.` : `${rates}.`;
}

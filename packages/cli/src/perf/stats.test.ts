import { describe, expect, it } from "vitest";
import { formatProduceLine, LatencyHistogram, mbPerSecond, perSecond, ProgressWindow, throughput, Throttle } from "./stats.js";

/** HdrHistogram keeps 3 significant digits: a percentile is exact to 0.1% of its value. */
const close = (actual: number, expected: number): void => {
  expect(Math.abs(actual - expected)).toBeLessThanOrEqual(Math.max(expected * 0.001, 0.001));
};

describe("LatencyHistogram", () => {
  it("with no sample reports count 0 and NaN figures, not zeros", () => {
    const s = new LatencyHistogram().summary();
    expect(s.count).toBe(0);
    for (const v of [s.avgMs, s.minMs, s.p50Ms, s.p95Ms, s.p99Ms, s.p999Ms, s.maxMs]) expect(v).toBeNaN();
    // JSON output shows the absence as null.
    expect(JSON.parse(JSON.stringify(s)).p99Ms).toBeNull();
  });

  it("with one sample reports that sample for every figure", () => {
    const h = new LatencyHistogram();
    h.record(3.25);
    const s = h.summary();
    expect(s).toEqual({ count: 1, avgMs: 3.25, minMs: 3.25, p50Ms: 3.25, p95Ms: 3.25, p99Ms: 3.25, p999Ms: 3.25, maxMs: 3.25 });
  });

  it("with all samples equal reports that value for every figure", () => {
    const h = new LatencyHistogram();
    for (let i = 0; i < 1000; i++) h.record(7);
    const s = h.summary();
    expect(s.count).toBe(1000);
    for (const v of [s.avgMs, s.minMs, s.p50Ms, s.p95Ms, s.p99Ms, s.p999Ms, s.maxMs]) expect(v).toBe(7);
  });

  it("gives nearest-rank percentiles of 1..1000 ms", () => {
    const h = new LatencyHistogram();
    // Recorded out of order: order must not matter.
    for (let i = 1000; i >= 1; i--) h.record(i);
    const s = h.summary();
    expect(s.count).toBe(1000);
    expect(s.avgMs).toBeCloseTo(500.5, 9);
    expect(s.minMs).toBe(1);
    expect(s.maxMs).toBe(1000);
    close(s.p50Ms, 500);
    close(s.p95Ms, 950);
    close(s.p99Ms, 990);
    close(s.p999Ms, 999);
  });

  it("gives nearest-rank percentiles of 1..100 (p99.9 rounds up to the largest)", () => {
    const h = new LatencyHistogram();
    for (let i = 1; i <= 100; i++) h.record(i);
    close(h.percentileMs(50), 50);
    close(h.percentileMs(95), 95);
    close(h.percentileMs(99), 99);
    expect(h.percentileMs(99.9)).toBe(100);
    expect(h.percentileMs(100)).toBe(100);
  });

  it("keeps sub-millisecond resolution", () => {
    const h = new LatencyHistogram();
    for (let i = 1; i <= 100; i++) h.record(i / 100); // 0.01 .. 1.00 ms
    close(h.percentileMs(50), 0.5);
    close(h.percentileMs(99), 0.99);
    expect(h.summary().minMs).toBe(0.01);
  });

  it("a huge outlier moves max, p99.9 of 1000 samples and avg, but not p50/p99", () => {
    const h = new LatencyHistogram();
    for (let i = 0; i < 999; i++) h.record(2);
    h.record(60_000); // one stall of a minute
    const s = h.summary();
    expect(s.p50Ms).toBe(2);
    expect(s.p99Ms).toBe(2);
    // rank round(0.999 * 1000) = 999: still a 2 ms sample.
    expect(s.p999Ms).toBe(2);
    expect(s.maxMs).toBe(60_000);
    expect(s.avgMs).toBeCloseTo((999 * 2 + 60_000) / 1000, 9);
    // One more outlier puts rank 999 on it.
    h.record(60_000);
    close(h.percentileMs(99.9), 60_000);
  });

  it("recordWithCount is the same as that many records", () => {
    const a = new LatencyHistogram();
    const b = new LatencyHistogram();
    a.recordWithCount(4, 300);
    a.recordWithCount(9, 700);
    a.recordWithCount(1, 0); // no records: ignored, does not touch min
    for (let i = 0; i < 300; i++) b.record(4);
    for (let i = 0; i < 700; i++) b.record(9);
    expect(a.summary()).toEqual(b.summary());
    expect(a.summary().minMs).toBe(4);
    close(a.percentileMs(30), 4);
    expect(a.percentileMs(31)).toBe(9);
  });

  it("counts negative and non-finite latencies as 0", () => {
    const h = new LatencyHistogram();
    h.record(-5);
    h.record(NaN);
    expect(h.summary()).toMatchObject({ count: 2, minMs: 0, maxMs: 0, p50Ms: 0, avgMs: 0 });
  });

  it("merges histograms encoded in other processes into exact aggregate percentiles", () => {
    const fast = new LatencyHistogram();
    const slow = new LatencyHistogram();
    for (let i = 0; i < 900; i++) fast.record(1);
    for (let i = 0; i < 100; i++) slow.record(100);
    const merged = new LatencyHistogram();
    merged.merge(LatencyHistogram.decode(fast.encode()));
    merged.merge(LatencyHistogram.decode(slow.encode()));
    merged.merge(new LatencyHistogram()); // an empty one changes nothing
    const s = merged.summary();
    expect(s.count).toBe(1000);
    expect(s.p50Ms).toBe(1);
    expect(s.p95Ms).toBe(100);
    expect(s.minMs).toBe(1);
    expect(s.maxMs).toBe(100);
    expect(s.avgMs).toBeCloseTo(10.9, 9);
    // Averaging the two p95s (1 and 100) would have said 50.5: merging is what is right.
  });

  it("round-trips an empty histogram and refuses garbage", () => {
    expect(LatencyHistogram.decode(new LatencyHistogram().encode()).summary().count).toBe(0);
    expect(() => LatencyHistogram.decode("nonsense")).toThrow(RangeError);
    expect(() => new LatencyHistogram().percentileMs(0)).toThrow(RangeError);
    expect(() => new LatencyHistogram().percentileMs(101)).toThrow(RangeError);
  });
});

describe("rates", () => {
  it("known answers", () => {
    expect(perSecond(1_000_000, 2_000)).toBe(500_000);
    expect(perSecond(3, 1.5)).toBe(2000);
    expect(mbPerSecond(10 * 1024 * 1024, 5_000)).toBe(2);
    expect(throughput(1000, 100_000, 500)).toEqual({ records: 1000, bytes: 100_000, elapsedMs: 500, recordsPerSec: 2000, mbPerSec: 200_000 / (1024 * 1024) });
  });

  it("is 0, never Infinity or NaN, for no records or no elapsed time", () => {
    expect(perSecond(0, 1000)).toBe(0);
    expect(perSecond(100, 0)).toBe(0);
    expect(perSecond(100, -3)).toBe(0);
    expect(perSecond(100, NaN)).toBe(0);
    expect(mbPerSecond(0, 0)).toBe(0);
  });
});

describe("ProgressWindow", () => {
  it("reports each window's records, rates and latency, then starts afresh", () => {
    const w = new ProgressWindow(5000, 1000);
    w.add(100, 10_000, 2);
    w.add(300, 30_000, 4);
    expect(w.due(5999)).toBe(false);
    expect(w.due(6000)).toBe(true);
    const r = w.take(6000);
    expect(r.records).toBe(400);
    expect(r.recordsPerSec).toBe(80);
    expect(r.mbPerSec).toBeCloseTo(8000 / (1024 * 1024), 12);
    expect(r.avgLatencyMs).toBe(3.5); // weighted by records: (100*2 + 300*4) / 400
    expect(r.maxLatencyMs).toBe(4);
    expect(w.due(10_999)).toBe(false);
    const empty = w.take(11_000);
    expect(empty.records).toBe(0);
    expect(empty.recordsPerSec).toBe(0);
    expect(empty.avgLatencyMs).toBeNaN();
  });

  it("adds child windows' totals", () => {
    const a = new ProgressWindow(1000, 0);
    a.add(10, 100, 1);
    const b = new ProgressWindow(1000, 0);
    b.add(30, 300, 9);
    const sum = new ProgressWindow(5000, 0);
    sum.addTotals(a.totals());
    sum.addTotals(b.totals());
    const r = sum.take(2000);
    expect(r.records).toBe(40);
    expect(r.avgLatencyMs).toBe(7);
    expect(r.maxLatencyMs).toBe(9);
  });

  it("refuses a window of 0 ms", () => {
    expect(() => new ProgressWindow(0, 0)).toThrow(RangeError);
  });
});

describe("Throttle", () => {
  it("spaces records at 1000/s one ms apart from the start", () => {
    const t = new Throttle(1000, 100);
    expect(t.unlimited).toBe(false);
    expect(t.delayMs(0, 100)).toBe(0);
    expect(t.delayMs(1, 100)).toBe(1);
    expect(t.delayMs(10, 105)).toBe(5);
    expect(t.allowed(99)).toBe(0);
    expect(t.allowed(100)).toBe(1);
    expect(t.allowed(100.999)).toBe(1);
    expect(t.allowed(101)).toBe(2);
    expect(t.allowed(1100)).toBe(1001);
  });

  it("lets a sender that fell behind catch up at once", () => {
    const t = new Throttle(10_000, 0);
    // 1 s in, 10,001 records are due; a sender at 5,000 does not wait.
    expect(t.delayMs(5000, 1000)).toBe(0);
    expect(t.allowed(1000)).toBe(10_001);
  });

  it("sustains the cap over a long run without drift", () => {
    const t = new Throttle(7, 0);
    expect(t.delayMs(7 * 3600, 0)).toBeCloseTo(3600_000, 6);
    expect(t.allowed(3600_000)).toBe(7 * 3600 + 1);
  });

  it("-1 or 0 means no cap", () => {
    for (const rate of [-1, 0]) {
      const t = new Throttle(rate, 0);
      expect(t.unlimited).toBe(true);
      expect(t.delayMs(1e9, 0)).toBe(0);
      expect(t.allowed(0)).toBe(Infinity);
    }
  });
});

describe("formatProduceLine", () => {
  it("prints Kafka's layout and '-' for missing figures", () => {
    const h = new LatencyHistogram();
    h.record(2);
    expect(formatProduceLine(throughput(10, 1000, 1000), h.summary())).toBe(
      "10 records sent, 10.0 records/sec (0.00 MB/sec), 2.00 ms avg latency, 2.00 ms max latency, 2.00 ms 50th, 2.00 ms 95th, 2.00 ms 99th, 2.00 ms 99.9th.",
    );
    expect(formatProduceLine(throughput(0, 0, 0), new LatencyHistogram().summary())).toContain("- ms avg latency");
  });
});

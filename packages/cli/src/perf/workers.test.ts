import { describe, expect, it } from "vitest";
import { failedRecordsError, shareOf } from "../commands/perf.js";
import { recordsPerSendFor } from "./produce.js";
import { LatencyHistogram } from "./stats.js";
import { aggregateResults, type WorkerResult } from "./workers.js";

function worker(records: number, startMs: number, endMs: number, latenciesMs: number[]): WorkerResult {
  const h = new LatencyHistogram();
  for (const l of latenciesMs) h.record(l);
  return { records, bytes: records * 100, errors: 0, startedAtEpochMs: startMs, endedAtEpochMs: endMs, histogram: h.encode() };
}

describe("aggregateResults", () => {
  it("rates are all records over the span from the first start to the last end, not a sum of per-worker rates", () => {
    // 1000 records in [0, 1000] ms and 1000 in [500, 2000] ms: 2000 records over 2 s.
    const r = aggregateResults([worker(1000, 1_000_000, 1_001_000, [1]), worker(1000, 1_000_500, 1_002_000, [3])]);
    expect(r.throughput.records).toBe(2000);
    expect(r.throughput.elapsedMs).toBe(2000);
    expect(r.throughput.recordsPerSec).toBe(1000);
    expect(r.throughput.mbPerSec).toBeCloseTo((200_000 / 2) / (1024 * 1024), 12);
    expect(r.workers).toBe(2);
    // Summing the workers' own rates would say 1000 + 666.7.
  });

  it("merges latencies and keeps the first error", () => {
    const a = worker(10, 0, 100, [1, 1, 1, 1, 1, 1, 1, 1, 1]);
    const b = { ...worker(1, 0, 100, [50]), errors: 4, firstError: "NOT_ENOUGH_REPLICAS: x" };
    const r = aggregateResults([a, b]);
    expect(r.latency.count).toBe(10);
    expect(r.latency.maxMs).toBe(50);
    expect(r.latency.p50Ms).toBe(1);
    expect(r.errors).toBe(4);
    expect(r.firstError).toBe("NOT_ENOUGH_REPLICAS: x");
  });

  it("of no worker is zeros and NaN latencies", () => {
    const r = aggregateResults([]);
    expect(r.throughput.recordsPerSec).toBe(0);
    expect(r.latency.count).toBe(0);
    expect(r.latency.p99Ms).toBeNaN();
  });
});

describe("shareOf", () => {
  it("splits records over producers with the remainder on the first ones, summing to the total", () => {
    expect([0, 1, 2].map((i) => shareOf(10, 3, i))).toEqual([4, 3, 3]);
    expect([0, 1, 2].map((i) => shareOf(2, 3, i))).toEqual([1, 1, 0]);
    expect(shareOf(7, 1, 0)).toBe(7);
  });
});

describe("recordsPerSendFor", () => {
  it("sends at most about 1 ms worth of records per call under a cap, at least 1", () => {
    expect(recordsPerSendFor(100, -1)).toBe(100);
    expect(recordsPerSendFor(100, 10_000)).toBe(10);
    expect(recordsPerSendFor(100, 500)).toBe(1);
    expect(recordsPerSendFor(100, 1_000_000)).toBe(100);
  });
});

describe("failedRecordsError", () => {
  it("takes the code of the first failure when its message names one, else the fallback", () => {
    const e = failedRecordsError("3 record(s) not acknowledged", "NOT_ENOUGH_REPLICAS: only 1 in sync", "UNKNOWN_SERVER_ERROR");
    expect(e.errorName).toBe("NOT_ENOUGH_REPLICAS");
    expect(e.message).toBe("NOT_ENOUGH_REPLICAS: 3 record(s) not acknowledged; first error: NOT_ENOUGH_REPLICAS: only 1 in sync");
    expect(failedRecordsError("x", "socket hang up", "UNKNOWN_SERVER_ERROR").errorName).toBe("UNKNOWN_SERVER_ERROR");
    expect(failedRecordsError("x", "NOT_A_CODE: y", "REQUEST_TIMED_OUT").errorName).toBe("REQUEST_TIMED_OUT");
    expect(failedRecordsError("x", undefined, "REQUEST_TIMED_OUT").message).toContain("first error: none");
  });
});

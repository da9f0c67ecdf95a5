/**
 * pnpm bench --quick end to end, through its runner: a fresh 3-node cluster, the whole
 * matrix with small record counts, the JetStream comparison when nats-server is installed,
 * and the reports. Checks that the report has every row with positive figures, not what
 * they are (a benchmark never fails on a time). runBench stops every process it started.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { findNatsServer } from "../../scripts/bench/nats.js";
import { runBench, type BenchReport } from "../../scripts/bench/run.js";
import { killAllProcesses } from "../helpers/processes.js";

const outDir = fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-bench-smoke-"));

afterAll(async () => {
  // runBench stops its processes itself; this catches any left by a crash of the test.
  await killAllProcesses();
  fs.rmSync(outDir, { recursive: true, force: true });
});

describe("pnpm bench --quick", () => {
  it("runs the whole matrix on a fresh cluster and writes a Markdown and a JSON report with every row", async () => {
    const lines: string[] = [];
    const { report, jsonPath, mdPath } = await runBench({ quick: true, outDir, log: (l) => lines.push(l) });

    expect(fs.existsSync(jsonPath)).toBe(true);
    expect(fs.existsSync(mdPath)).toBe(true);
    const fromDisk = JSON.parse(fs.readFileSync(jsonPath, "utf8")) as BenchReport;
    expect(fromDisk.produce).toHaveLength(18);

    // 2 sizes x 2 acks x 2 compressions x 2 producer counts with the default producer
    // settings, plus 100 B acks=all uncompressed x 1 and 3 producers with the tuned ones.
    const combos = new Set(report.produce.map((r) => `${r.recordSizeBytes}/${r.acks}/${r.compression}/${r.producers}/${r.batchSizeBytes}`));
    expect(combos.size).toBe(18);
    expect(report.produce.filter((r) => r.batchSizeBytes > report.settings.batchSizeBytes).map((r) => `${r.recordSizeBytes}/${r.acks}/${r.compression}/${r.producers}`)).toEqual(["100/all/none/1", "100/all/none/3"]);
    for (const r of report.produce) {
      expect(r.error, `${r.name}: ${r.error}`).toBeUndefined();
      expect(r.records).toBeGreaterThan(0);
      expect(r.recordsPerSec).toBeGreaterThan(0);
      expect(r.mbPerSec).toBeGreaterThan(0);
      for (const k of ["avg", "p50", "p95", "p99", "p999", "max"]) expect(r.latencyMs[k], `${r.name} ${k}`).toBeGreaterThan(0);
      expect(r.latencyMs.p50!).toBeLessThanOrEqual(r.latencyMs.p99!);
      expect(r.latencyMs.p99!).toBeLessThanOrEqual(r.latencyMs.max!);
      expect(Object.keys(r.brokerRssMaxMiB).sort()).toEqual(["broker-1", "broker-2", "broker-3"]);
    }

    // The default-settings topics of each size alone and in a group, and the tuned producer's topic alone.
    expect(report.consume.map((r) => `${r.recordSizeBytes}/${r.mode}/${r.producerBatchSizeBytes / 1024}KiB`).sort()).toEqual(["100/alone/16KiB", "100/alone/512KiB", "100/group/16KiB", "1024/alone/16KiB", "1024/group/16KiB"]);
    for (const r of report.consume) {
      expect(r.error, `${r.name}: ${r.error}`).toBeUndefined();
      // Each consumer read everything its producer run wrote.
      const written = report.produce.find((p) => p.topic === r.topic)!.records;
      expect(r.records).toBe(written);
      expect(r.recordsPerSec).toBeGreaterThan(0);
      expect(r.mbPerSec).toBeGreaterThan(0);
    }

    expect(report.e2e).toHaveLength(1);
    const e2e = report.e2e[0]!;
    expect(e2e.error, e2e.error).toBeUndefined();
    expect(e2e.received).toBe(e2e.sent);
    for (const k of ["p50", "p99", "p999", "max"]) expect(e2e.latencyMs[k]).toBeGreaterThan(0);

    const rss = Object.values(report.brokerRssMaxMiB);
    expect(rss).toHaveLength(3);
    for (const v of rss) expect(v).toBeGreaterThan(0);
    expect(report.targets.map((t) => t.goal)).toEqual([">= 1,000,000 records/s", ">= 2,000,000 records/s", "< 2 ms", "< 10 ms", "< 512 MiB each"]);

    if (findNatsServer()) {
      expect(report.nats.available).toBe(true);
      expect(report.nats.rows.map((r) => `${r.recordSizeBytes}/${r.producers}`)).toEqual(["100/1", "100/3", "1024/1", "1024/3"]);
      for (const r of report.nats.rows) {
        expect(r.error, `${r.name}: ${r.error}`).toBeUndefined();
        expect(r.recordsPerSec).toBeGreaterThan(0);
        expect(r.ratio).toBeGreaterThan(0);
      }
    } else {
      expect(report.nats.skipped).toMatch(/not found/);
    }

    const md = fs.readFileSync(mdPath, "utf8");
    for (const heading of ["## Targets", "## Producer", "## Consumer", "## End-to-end latency", "## NATS JetStream"]) expect(md).toContain(heading);
    expect(lines.some((l) => l.includes("produce 100B acks=all none x3"))).toBe(true);
  }, 600_000);
});

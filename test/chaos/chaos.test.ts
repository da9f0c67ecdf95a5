/**
 * The CI chaos run: the harness with a short fixed schedule (seed 20261123, about 35 s of
 * faults: one kill -9 of a partition leader, one of the active controller, one SIGSTOP pause
 * and one kill -9 of a random node, in a seeded order) against three combined nodes. The
 * checker's counts are printed; every safety count must be 0. The rolling SIGTERM restart
 * stays in `pnpm chaos` (test/integration/rolling-restart.test.ts covers it in the suite).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runChaos, summarize } from "./harness.js";

const reportDir = fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-chaos-report-"));

afterAll(() => {
  fs.rmSync(reportDir, { recursive: true, force: true });
});

describe("chaos: a short seeded schedule against 3 combined nodes", () => {
  it("loses, duplicates and reorders no acknowledged record, and leaves identical replicas", async () => {
    const result = await runChaos({
      name: "ci",
      seed: 20261123,
      faultMs: 35_000,
      events: 4,
      kinds: ["kill-leader", "kill-controller", "pause", "kill-random"],
      reportPath: path.join(reportDir, "ci"),
    });
    process.stdout.write(`${summarize(result)}\n`);
    const c = result.report.counts;
    expect(result.events.length, "nemesis events that ran").toBeGreaterThanOrEqual(3);
    expect(c.acked).toBeGreaterThan(1000);
    expect(c.replicasCompared, "3 replicas of 3 partitions compared").toBe(9);
    expect(result.report.lost.slice(0, 10), "acknowledged records lost").toEqual([]);
    expect(result.report.duplicates.slice(0, 10), "duplicates").toEqual([]);
    expect(result.report.orderViolations.slice(0, 10), "per-key order violations").toEqual([]);
    expect(result.report.replicaDisagreements, "replicas that disagree below the HW").toEqual([]);
    expect(fs.readFileSync(path.join(reportDir, "ci.md"), "utf8")).toContain("acknowledged records lost | 0 | 0");
  }, 420_000);
});

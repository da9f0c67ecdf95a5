/**
 * `pnpm chaos --minutes M --seed S [--report path] [--netns]`: a long chaos run (test/chaos/harness.ts)
 * against three combined nodes, faults drawn from the seeded PRNG for M minutes. Prints the
 * checker's counts and writes `<report>.json` and `<report>.md` (default
 * bench/results/chaos-<seed>-<time>). Exits 1 when a safety count (lost, duplicates, order,
 * replica disagreements) is not 0, so a failing seed replays with the same schedule draws.
 * `--netns` (root only) runs each node in its own network namespace and adds the
 * partition-leader nemesis (the leader of a partition cut off by downing its link) and the
 * partition-controller nemesis (the active controller cut off the same way).
 */
import path from "node:path";
import { parseArgs } from "node:util";
import { runChaos, summarize } from "../test/chaos/harness.js";
import { REPO_ROOT } from "../test/helpers/processes.js";

const { values } = parseArgs({
  options: {
    minutes: { type: "string", default: "5" },
    seed: { type: "string", default: String(Date.now() % 1_000_000) },
    report: { type: "string" },
    "unavailability-ms": { type: "string", default: "3000" },
    netns: { type: "boolean", default: false },
  },
});
const minutes = Number(values.minutes);
const seed = Number(values.seed);
if (!Number.isFinite(minutes) || minutes <= 0) throw new Error(`--minutes must be a positive number, got ${values.minutes}`);
if (!Number.isInteger(seed)) throw new Error(`--seed must be an integer, got ${values.seed}`);
const reportPath = values.report ?? path.join(REPO_ROOT, "bench", "results", `chaos-${seed}-${new Date().toISOString().replace(/[:.]/g, "-")}`);

const result = await runChaos({ name: `seed-${seed}`, seed, faultMs: minutes * 60_000, reportPath, unavailabilityThresholdMs: Number(values["unavailability-ms"]), netns: values.netns });
process.stdout.write(`${summarize(result)}\nreport: ${reportPath.replace(/\.(json|md)$/, "")}.{json,md}\n`);
const c = result.report.counts;
process.exit(c.lost + c.duplicates + c.orderViolations + c.replicaDisagreements === 0 ? 0 : 1);

/**
 * `pnpm bench [--quick] [--out <dir>] [--no-nats] [--cpu-prof <dir>]`: starts a fresh local 3-broker cluster,
 * runs the fixed producer / consumer / end-to-end matrix (scripts/bench/run.ts), runs the
 * same publish workload on a 3-node NATS JetStream cluster when nats-server is installed,
 * prints a summary and writes bench/results/<time>.md and .json. Never fails on a time:
 * exit 0 once the report is written, even when runs in it failed (they are in the report);
 * 1 when no report could be written (e.g. the cluster did not start); 130 on Ctrl-C, after
 * stopping every process it started.
 */
import { parseArgs } from "node:util";
import { renderSummary } from "./bench/report.js";
import { runBench } from "./bench/run.js";

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    out: { type: "string" },
    "no-nats": { type: "boolean", default: false },
    "cpu-prof": { type: "string" },
  },
});

const controller = new AbortController();
let signals = 0;
const onSignal = (): void => {
  signals++;
  // A second Ctrl-C exits at once; the test helpers' exit hook still SIGKILLs the nodes.
  if (signals > 1) process.exit(130);
  process.stderr.write("bench: stopping every process it started...\n");
  controller.abort();
};
process.on("SIGINT", onSignal);
process.on("SIGTERM", onSignal);

try {
  const { report, jsonPath, mdPath } = await runBench({ quick: values.quick, ...(values.out ? { outDir: values.out } : {}), nats: !values["no-nats"], ...(values["cpu-prof"] ? { cpuProfDir: values["cpu-prof"] } : {}), signal: controller.signal });
  process.stdout.write(`${renderSummary(report)}\nreport: ${mdPath}\n        ${jsonPath}\n`);
  process.exit(0);
} catch (err) {
  process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(controller.signal.aborted ? 130 : 1);
}

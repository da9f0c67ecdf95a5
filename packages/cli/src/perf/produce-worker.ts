/**
 * One producer of `flotilla perf produce --producers N`, as a child process (see workers.ts).
 * argv[2] is the JSON of ProducePerfOptions without callbacks.
 */
import { createLogger } from "@flotilla/common/logger";
import { runProducePerf, type ProducePerfOptions } from "./produce.js";
import { workerMain } from "./workers.js";

const options = JSON.parse(process.argv[2] ?? "{}") as ProducePerfOptions;
const logger = createLogger("flotilla-perf", { level: process.env.FLOTILLA_LOG_LEVEL ?? "warn" });
const code = await workerMain(async (onProgress) => {
  const r = await runProducePerf({ ...options, logger, progressIntervalMs: 1000, onProgress });
  return {
    records: r.throughput.records,
    bytes: r.throughput.bytes,
    errors: r.errors,
    ...(r.firstError !== undefined ? { firstError: r.firstError } : {}),
    startedAtEpochMs: r.startedAtEpochMs,
    endedAtEpochMs: r.endedAtEpochMs,
    histogram: r.histogram.encode(),
  };
});
process.exit(code);

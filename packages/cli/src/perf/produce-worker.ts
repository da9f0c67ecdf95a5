/**
 * One producer of `flotilla perf produce --producers N` or of pnpm bench, as a child
 * process (see workers.ts). Each job line is a ProducePerfOptions without callbacks.
 */
import { createLogger } from "@flotilla/common/logger";
import { runProducePerf, type ProducePerfOptions } from "./produce.js";
import { workerMain } from "./workers.js";

const logger = createLogger("flotilla-perf", { level: process.env.FLOTILLA_LOG_LEVEL ?? "warn" });
await workerMain<ProducePerfOptions>(async (options, onProgress) => {
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
process.exit(0);

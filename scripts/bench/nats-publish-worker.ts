/**
 * One JetStream publisher of pnpm bench, as a worker process (packages/cli/src/perf/workers.ts).
 * Publishes the same random payload to the stream's subject with up to `inflightMax`
 * publishes awaiting their PubAck, and measures each message from publish() to its PubAck.
 */
import { connect } from "nats";
import { randomPayload } from "../../packages/cli/src/perf/produce.js";
import { LatencyHistogram, ProgressWindow } from "../../packages/cli/src/perf/stats.js";
import { workerMain } from "../../packages/cli/src/perf/workers.js";

export interface NatsPublishJob {
  servers: string[];
  subject: string;
  numRecords: number;
  recordSizeBytes: number;
  maxDurationMs: number;
  inflightMax: number;
}

await workerMain<NatsPublishJob>(async (job, onProgress) => {
  const nc = await connect({ servers: job.servers });
  const js = nc.jetstream({ timeout: 60_000 });
  const payload = randomPayload(job.recordSizeBytes);
  const histogram = new LatencyHistogram();
  const window = new ProgressWindow(1000, performance.now());
  const progress = setInterval(() => onProgress(window, performance.now()), 1000);
  let inflight = 0;
  let acked = 0;
  let errors = 0;
  let firstError: string | undefined;
  let waiter: (() => void) | undefined;
  const settle = (): void => {
    inflight--;
    const w = waiter;
    waiter = undefined;
    w?.();
  };
  const startedAtEpochMs = Date.now();
  const startMs = performance.now();
  const stopAtMs = startMs + job.maxDurationMs;
  let sent = 0;
  try {
    // Bounded by numRecords and maxDurationMs; waits for an ack when inflightMax are out.
    while (sent < job.numRecords && errors === 0 && performance.now() < stopAtMs) {
      if (inflight >= job.inflightMax) {
        await new Promise<void>((r) => (waiter = r));
        continue;
      }
      const t0 = performance.now();
      inflight++;
      sent++;
      js.publish(job.subject, payload).then(
        () => {
          const latencyMs = performance.now() - t0;
          acked++;
          histogram.record(latencyMs);
          window.add(1, payload.length, latencyMs);
          settle();
        },
        (err: unknown) => {
          errors++;
          firstError ??= err instanceof Error ? err.message : String(err);
          settle();
        },
      );
    }
    for (let i = 0; i < 10_000_000 && inflight > 0; i++) await new Promise<void>((r) => (waiter = r));
  } finally {
    clearInterval(progress);
    await nc.close();
  }
  const elapsedMs = performance.now() - startMs;
  return {
    records: acked,
    bytes: acked * job.recordSizeBytes,
    errors,
    ...(firstError !== undefined ? { firstError } : {}),
    startedAtEpochMs,
    endedAtEpochMs: startedAtEpochMs + elapsedMs,
    histogram: histogram.encode(),
  };
});
process.exit(0);

/** Markdown and terminal renderings of a pnpm bench report. */
import type { BenchReport, Latency } from "./run.js";

const num = (x: number | undefined, digits = 0): string => (x === undefined || !Number.isFinite(x) ? "-" : x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits }));
const ms = (l: Latency, k: string): string => num(l[k], l[k] !== undefined && l[k]! < 10 ? 2 : 0);
const rss = (r: Record<string, number>): string => {
  const v = Object.values(r);
  return v.length === 0 ? "-" : num(Math.max(...v));
};

function table(header: string[], rows: string[][]): string {
  return [`| ${header.join(" | ")} |`, `| ${header.map(() => "---").join(" | ")} |`, ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n");
}

function produceTable(report: BenchReport): string {
  return table(
    ["record", "acks", "compression", "producers", "batch.size / linger.ms / buffer.memory", "records", "records/s", "MB/s", "avg ms", "p50 ms", "p95 ms", "p99 ms", "p99.9 ms", "max ms", "broker RSS max MiB", "error"],
    report.produce.map((r) => [
      `${r.recordSizeBytes} B`,
      r.acks,
      r.compression,
      String(r.producers),
      `${r.batchSizeBytes / 1024} KiB / ${r.lingerMs} ms / ${r.bufferMemoryBytes / 2 ** 20} MiB`,
      num(r.records),
      num(r.recordsPerSec),
      num(r.mbPerSec, 2),
      ms(r.latencyMs, "avg"),
      ms(r.latencyMs, "p50"),
      ms(r.latencyMs, "p95"),
      ms(r.latencyMs, "p99"),
      ms(r.latencyMs, "p999"),
      ms(r.latencyMs, "max"),
      rss(r.brokerRssMaxMiB),
      r.error ?? "",
    ]),
  );
}

function consumeTable(report: BenchReport): string {
  return table(
    ["record", "mode", "stored in batches of", "records", "records/s", "MB/s", "fetch records/s", "fetch MB/s", "to first record ms", "broker RSS max MiB", "error"],
    report.consume.map((r) => [`${r.recordSizeBytes} B`, r.mode, `${r.producerBatchSizeBytes / 1024} KiB`, num(r.records), num(r.recordsPerSec), num(r.mbPerSec, 2), num(r.fetchRecordsPerSec), num(r.fetchMbPerSec, 2), num(r.startupMs), rss(r.brokerRssMaxMiB), r.error ?? ""]),
  );
}

function e2eTable(report: BenchReport): string {
  return table(
    ["record", "rate records/s", "sent", "received", "avg ms", "p50 ms", "p95 ms", "p99 ms", "p99.9 ms", "max ms", "broker RSS max MiB", "error"],
    report.e2e.map((r) => [
      `${r.recordSizeBytes} B`,
      num(r.targetRecordsPerSec),
      num(r.sent),
      num(r.received),
      ms(r.latencyMs, "avg"),
      ms(r.latencyMs, "p50"),
      ms(r.latencyMs, "p95"),
      ms(r.latencyMs, "p99"),
      ms(r.latencyMs, "p999"),
      ms(r.latencyMs, "max"),
      rss(r.brokerRssMaxMiB),
      r.error ?? "",
    ]),
  );
}

function natsSection(report: BenchReport): string {
  if (!report.nats.available) return `NATS comparison skipped: ${report.nats.skipped ?? "unknown reason"}.`;
  return [
    `${report.nats.version ?? "nats-server"}, 3 nodes, R3 file stream; Flotilla's figure is acks=all, no compression, same record size and producer count.`,
    "",
    table(
      ["record", "publishers", "records", "records/s", "MB/s", "avg ms", "p50 ms", "p99 ms", "max ms", "Flotilla records/s", "Flotilla / JetStream", "server RSS max MiB", "error"],
      report.nats.rows.map((r) => [
        `${r.recordSizeBytes} B`,
        String(r.producers),
        num(r.records),
        num(r.recordsPerSec),
        num(r.mbPerSec, 2),
        ms(r.latencyMs, "avg"),
        ms(r.latencyMs, "p50"),
        ms(r.latencyMs, "p99"),
        ms(r.latencyMs, "max"),
        num(r.flotillaRecordsPerSec),
        r.ratio === undefined ? "-" : `${num(r.ratio, 3)}x`,
        rss(r.serverRssMaxMiB),
        r.error ?? "",
      ]),
    ),
  ].join("\n");
}

function targetsTable(report: BenchReport): string {
  return table(
    ["target", "goal", "measured", "met"],
    report.targets.map((t) => [t.target, t.goal, t.measured, t.met ? "yes" : "no"]),
  );
}

export function renderMarkdown(report: BenchReport): string {
  const m = report.machine;
  const s = report.settings;
  return `${[
    `# Flotilla benchmark, ${report.startedAt}${report.quick ? " (quick)" : ""}`,
    "",
    `Machine: ${m.cpus} CPUs (${m.cpuModel}), ${num(m.memoryMiB)} MiB memory, Node ${m.node}, ${m.platform}. Load average at start ${m.loadAverageStart.join(" / ")}, at end ${m.loadAverageEnd.join(" / ")}.`,
    "",
    `Cluster: 3 combined nodes on 127.0.0.1 (${s.brokerOverrides.join(", ")}); topics of ${s.partitions} partitions, RF ${s.replicationFactor}, min.insync.replicas=${s.minInsyncReplicas}. ` +
      `Producers: batch.size ${s.batchSizeBytes}, linger.ms ${s.lingerMs}, buffer.memory ${s.bufferMemoryBytes} (the rows marked with a larger batch.size use the throughput-tuned settings shown in their row), ${s.recordsPerSend} records per send(), ${s.produceDurationMs} ms of sending per run, each producer its own process.`,
    "",
    "## Targets",
    "",
    targetsTable(report),
    "",
    "## Producer",
    "",
    produceTable(report),
    "",
    "## Consumer",
    "",
    consumeTable(report),
    "",
    "## End-to-end latency",
    "",
    e2eTable(report),
    "",
    "## NATS JetStream, same publish workload",
    "",
    natsSection(report),
    "",
    `Broker resident memory, max over the whole run: ${Object.entries(report.brokerRssMaxMiB).map(([k, v]) => `${k} ${v} MiB`).join(", ") || "-"}.`,
  ].join("\n")}\n`;
}

/** The summary printed at the end of a run: the same tables. */
export function renderSummary(report: BenchReport): string {
  return ["", "Targets", targetsTable(report), "", "Producer", produceTable(report), "", "Consumer", consumeTable(report), "", "End to end", e2eTable(report), "", "NATS JetStream", natsSection(report), ""].join("\n");
}

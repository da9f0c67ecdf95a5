/**
 * Raft quorum benchmark: 3 real controller processes on loopback, each fsyncing its log
 * to LevelDB. Measures committed proposals per second and commit latency (propose ->
 * committed and applied on the leader), first one proposal at a time (no batching
 * possible), then with many proposals in flight (the driver folds them into shared
 * appends and fsyncs). Prints figures; never fails on a time.
 *
 *   pnpm bench:raft [--seconds 5] [--concurrency 256] [--payload-bytes 100]
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { RaftTestMachineClient } from "../packages/controller/src/raft/test-machine-client.js";
import { freePorts, killAllProcesses, startTsProcess } from "../test/helpers/processes.js";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "5" },
    concurrency: { type: "string", default: "256" },
    "payload-bytes": { type: "string", default: "100" },
  },
});
const seconds = Number(values.seconds);
const concurrency = Number(values.concurrency);
const payloadBytes = Number(values["payload-bytes"]);
for (const [name, v] of [["seconds", seconds], ["concurrency", concurrency], ["payload-bytes", payloadBytes]] as const) {
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number`);
}

interface PhaseResult {
  name: string;
  proposals: number;
  errors: number;
  elapsedMs: number;
  latenciesMs: number[];
  /** CPU time all three controllers used during the phase, when /proc is readable. */
  cpuMs: number | undefined;
}

/** User + system CPU time of a process in ms, from /proc (Linux); undefined elsewhere. */
function cpuTimeMs(pid: number): number | undefined {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    // utime and stime are fields 14 and 15 of stat(5), counted after "pid (comm)".
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return undefined;
  }
}

let nodePids: number[] = [];
function totalCpuMs(): number | undefined {
  let total = 0;
  for (const pid of nodePids) {
    const ms = cpuTimeMs(pid);
    if (ms === undefined) return undefined;
    total += ms;
  }
  return total;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function runPhase(client: RaftTestMachineClient, name: string, workers: number): Promise<PhaseResult> {
  const payload = new Uint8Array(payloadBytes).fill(0x61);
  const latenciesMs: number[] = [];
  let errors = 0;
  const cpuBefore = totalCpuMs();
  const started = performance.now();
  const endAt = started + seconds * 1000;
  const worker = async (): Promise<void> => {
    // Bounded by time, and by count as a backstop.
    for (let i = 0; i < 10_000_000 && performance.now() < endAt; i++) {
      const t0 = performance.now();
      try {
        await client.propose(payload, { attemptsMax: 5, deadlineMs: 5000 });
        latenciesMs.push(performance.now() - t0);
      } catch {
        errors += 1;
      }
    }
  };
  await Promise.all(Array.from({ length: workers }, worker));
  const elapsedMs = performance.now() - started;
  const cpuAfter = totalCpuMs();
  const cpuMs = cpuBefore !== undefined && cpuAfter !== undefined ? cpuAfter - cpuBefore : undefined;
  return { name, proposals: latenciesMs.length, errors, elapsedMs, latenciesMs: latenciesMs.sort((a, b) => a - b), cpuMs };
}

function describePhase(r: PhaseResult): { rate: number; p50: number; p99: number; max: number; cpuPerProposalMs: number } {
  return {
    cpuPerProposalMs: r.cpuMs === undefined || r.proposals === 0 ? NaN : r.cpuMs / r.proposals,
    rate: r.proposals / (r.elapsedMs / 1000),
    p50: percentile(r.latenciesMs, 50),
    p99: percentile(r.latenciesMs, 99),
    max: r.latenciesMs[r.latenciesMs.length - 1] ?? NaN,
  };
}

const dataRoot = fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-bench-raft-"));
let client: RaftTestMachineClient | undefined;

async function cleanup(): Promise<void> {
  try {
    client?.close();
    await killAllProcesses();
    fs.rmSync(dataRoot, { recursive: true, force: true, maxRetries: 3 });
  } catch (err) {
    console.error(`bench-raft: cleanup: ${err instanceof Error ? err.message : String(err)}`);
  }
}

process.on("SIGINT", () => {
  process.stderr.write("bench-raft: interrupted, stopping the controllers\n");
  void cleanup().finally(() => process.exit(130));
});

async function main(): Promise<void> {
  const ids = [1, 2, 3];
  const ports = await freePorts(ids.length);
  const addresses = ids.map((_, i) => `127.0.0.1:${ports[i]}`);
  const voters = ids.map((id, i) => `${id}@${addresses[i]}`).join(",");
  const nodes = await Promise.all(
    ids.map((id) =>
      startTsProcess({
        name: `bench-raft-node-${id}`,
        entry: "packages/controller/src/raft/node-main.ts",
        args: ["--node-id", String(id), "--voters", voters, "--data-dir", path.join(dataRoot, `node-${id}`)],
        env: { FLOTILLA_LOG_LEVEL: "warn" },
        readyLine: /"event":"ready"/,
      }),
    ),
  );
  nodePids = nodes.map((n) => n.pid);
  client = new RaftTestMachineClient(addresses);
  // Warm up: find the leader, open channels, let the JIT settle.
  await client.propose(new Uint8Array([0]), { deadlineMs: 20_000, attemptsMax: 400 });
  for (let i = 0; i < 50; i++) await client.propose(new Uint8Array([0]));

  console.log(`bench-raft: 3 controllers on loopback, LevelDB fsync per Ready, ${payloadBytes}-byte proposals, ${seconds} s per phase, load average ${os.loadavg()[0]!.toFixed(1)} on ${os.cpus().length} cores`);
  const results = [await runPhase(client, "sequential (1 in flight)", 1), await runPhase(client, `concurrent (${concurrency} in flight)`, concurrency)];
  console.log("phase                          proposals  errors  proposals/s  p50 ms  p99 ms  max ms  cpu ms/proposal (3 nodes)");
  for (const r of results) {
    const d = describePhase(r);
    console.log(
      `${r.name.padEnd(30)} ${String(r.proposals).padStart(9)} ${String(r.errors).padStart(7)} ${d.rate.toFixed(0).padStart(12)} ${d.p50.toFixed(1).padStart(7)} ${d.p99.toFixed(1).padStart(7)} ${d.max.toFixed(1).padStart(7)} ${d.cpuPerProposalMs.toFixed(2).padStart(8)}`,
    );
  }
  const [seq, conc] = results.map(describePhase);
  console.log(
    `bench-raft summary: sequential ${seq!.rate.toFixed(0)} proposals/s (p50 ${seq!.p50.toFixed(1)} ms, p99 ${seq!.p99.toFixed(1)} ms); ` +
      `concurrent x${concurrency} ${conc!.rate.toFixed(0)} proposals/s (p50 ${conc!.p50.toFixed(1)} ms, p99 ${conc!.p99.toFixed(1)} ms); ` +
      `batching gain x${(conc!.rate / seq!.rate).toFixed(1)}; cpu ${seq!.cpuPerProposalMs.toFixed(2)} -> ${conc!.cpuPerProposalMs.toFixed(2)} ms/proposal`,
  );
}

main()
  .catch((err: unknown) => {
    console.error(`bench-raft failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  })
  .finally(() => cleanup());

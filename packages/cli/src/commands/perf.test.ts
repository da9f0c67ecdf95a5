import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadServerConfig, startNode, type NodeHandle } from "@flotilla/broker";
import { silentLogger } from "@flotilla/common/logger";
import type { CliIo } from "../io.js";
import { runCli } from "../program.js";

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = "";
  let err = "";
  stdout.on("data", (d: Buffer) => (out += d.toString()));
  stderr.on("data", (d: Buffer) => (err += d.toString()));
  const io: CliIo = { stdin: new PassThrough(), stdout, stderr, env: {}, cwd: "/tmp", onShutdownSignal: () => () => undefined };
  return { code: await runCli(args, io), stdout: out, stderr: err };
}

interface Latency {
  avg: number;
  p50: number;
  p95: number;
  p99: number;
  p999: number;
  max: number;
}

describe("flotilla perf against an in-process node", () => {
  let dataDir: string;
  let node: NodeHandle | undefined;
  let bootstrap: string[];

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), "flotilla-cli-perf-"));
    const config = loadServerConfig({ env: {}, overrides: { "node.id": "1", listeners: "PLAINTEXT://127.0.0.1:0", "log.dirs": dataDir } });
    node = await startNode(config, { logger: silentLogger() });
    bootstrap = ["--bootstrap-server", node.address, "--request-timeout-ms", "10000"];
    expect((await run(["topics", "create", "--topic", "perf", "--partitions", "2", ...bootstrap])).code).toBe(0);
    expect((await run(["topics", "create", "--topic", "e2e", "--partitions", "1", ...bootstrap])).code).toBe(0);
  });
  afterAll(async () => {
    await node?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it("perf produce --json sends every record and reports rates and ordered latency percentiles", async () => {
    const r = await run(["perf", "produce", "--topic", "perf", "--num-records", "2500", "--record-size", "64", "--acks", "1", "--compression", "lz4", "--records-per-send", "50", "--json", ...bootstrap]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { records: number; bytes: number; recordsPerSec: number; mbPerSec: number; errors: number; latencyMs: Latency; producers: number };
    expect(out).toMatchObject({ records: 2500, bytes: 2500 * 64, errors: 0, producers: 1 });
    expect(out.recordsPerSec).toBeGreaterThan(0);
    expect(out.mbPerSec).toBeGreaterThan(0);
    const l = out.latencyMs;
    expect(l.p50).toBeGreaterThan(0);
    expect(l.p50).toBeLessThanOrEqual(l.p95);
    expect(l.p95).toBeLessThanOrEqual(l.p99);
    expect(l.p99).toBeLessThanOrEqual(l.p999);
    expect(l.p999).toBeLessThanOrEqual(l.max);
  });

  it("perf produce --producers 2 runs two processes whose records add up, in Kafka's final-line format", async () => {
    const r = await run(["perf", "produce", "--topic", "perf", "--num-records", "1001", "--record-size", "10", "--throughput", "5000", "--producers", "2", ...bootstrap]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^1001 records sent, [\d.]+ records\/sec \([\d.]+ MB\/sec\), [\d.]+ ms avg latency, [\d.]+ ms max latency, [\d.]+ ms 50th, [\d.]+ ms 95th, [\d.]+ ms 99th, [\d.]+ ms 99\.9th\.\n$/);
  }, 120_000);

  it("perf consume reads everything produced, alone and in a group", async () => {
    const alone = await run(["perf", "consume", "--topic", "perf", "--messages", "3501", "--json", ...bootstrap]);
    expect(alone.code, alone.stderr).toBe(0);
    const a = JSON.parse(alone.stdout) as { mode: string; records: number; bytes: number; recordsPerSec: number; fetch: { recordsPerSec: number } };
    expect(a).toMatchObject({ mode: "alone", records: 3501, bytes: 2500 * 64 + 1001 * 10 });
    expect(a.recordsPerSec).toBeGreaterThan(0);
    const group = await run(["perf", "consume", "--topic", "perf", "--messages", "3501", "--group", "perf-g", ...bootstrap]);
    expect(group.code, group.stderr).toBe(0);
    expect(group.stdout).toMatch(/^3501 records consumed \(group\), [\d.]+ records\/sec/);
  }, 60_000);

  it("perf e2e receives every record at the given rate and reports end-to-end percentiles", async () => {
    const r = await run(["perf", "e2e", "--topic", "e2e", "--num-records", "300", "--throughput", "1000", "--record-size", "32", "--json", ...bootstrap]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { sent: number; received: number; errors: number; latencyMs: Latency };
    expect(out).toMatchObject({ sent: 300, received: 300, errors: 0 });
    expect(out.latencyMs.p50).toBeGreaterThan(0);
    expect(out.latencyMs.p99).toBeLessThanOrEqual(out.latencyMs.max);
  }, 60_000);

  it("exits 2 on usage errors and 1 on an unknown topic", async () => {
    expect((await run(["perf", "produce", "--num-records", "1", ...bootstrap])).code).toBe(2);
    expect((await run(["perf", "produce", "--topic", "perf", ...bootstrap])).code).toBe(2);
    const badAcks = await run(["perf", "produce", "--topic", "perf", "--num-records", "1", "--acks", "2", ...bootstrap]);
    expect(badAcks.code).toBe(2);
    expect(badAcks.stderr).toMatch(/--acks/);
    expect((await run(["perf", "e2e", "--topic", "e2e", "--num-records", "1", "--record-size", "4", ...bootstrap])).code).toBe(2);
    const unknown = await run(["perf", "consume", "--topic", "nope", "--messages", "1", ...bootstrap]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/UNKNOWN_TOPIC_OR_PARTITION/);
  });
});

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

describe("flotilla topics alter against an in-process node", () => {
  let dataDir: string;
  let node: NodeHandle | undefined;
  let bootstrap: string[];

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), "flotilla-cli-topics-"));
    const config = loadServerConfig({ env: {}, overrides: { "node.id": "1", listeners: "PLAINTEXT://127.0.0.1:0", "log.dirs": dataDir } });
    node = await startNode(config, { logger: silentLogger() });
    bootstrap = ["--bootstrap-server", node.address, "--request-timeout-ms", "5000"];
  });
  afterAll(async () => {
    await node?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it("grows a topic to N partitions, which describe then shows", async () => {
    expect((await run(["topics", "create", "--topic", "t", "--partitions", "2", ...bootstrap])).code).toBe(0);
    const altered = await run(["topics", "alter", "--topic", "t", "--partitions", "5", ...bootstrap]);
    expect(altered).toMatchObject({ code: 0, stdout: "Topic t now has 5 partitions.\n" });
    const described = await run(["topics", "describe", "--topic", "t", "--format", "json", ...bootstrap]);
    expect(described.code).toBe(0);
    const topic = JSON.parse(described.stdout) as { partitions: { partition: number }[] };
    expect(topic.partitions.map((p) => p.partition)).toEqual([0, 1, 2, 3, 4]);
  });

  it("fails with INVALID_PARTITIONS naming both counts when N is not larger, and on an unknown topic", async () => {
    const smaller = await run(["topics", "alter", "--topic", "t", "--partitions", "3", ...bootstrap]);
    expect(smaller.code).not.toBe(0);
    expect(smaller.stderr).toMatch(/INVALID_PARTITIONS/);
    expect(smaller.stderr).toMatch(/5 partitions.*got 3/);
    const unknown = await run(["topics", "alter", "--topic", "nope", "--partitions", "3", ...bootstrap]);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/UNKNOWN_TOPIC_OR_PARTITION/);
  });

  it("exits 2 without --partitions or with a bad value, naming the flag", async () => {
    const missing = await run(["topics", "alter", "--topic", "t", ...bootstrap]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("--partitions");
    const bad = await run(["topics", "alter", "--topic", "t", "--partitions", "zero", ...bootstrap]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--partitions");
  });
});

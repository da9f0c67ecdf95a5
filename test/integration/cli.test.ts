/**
 * The `flotilla` command end to end: a real server process, and each CLI command as its
 * own process, checked by exit code, stdout and stderr as a script would.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { partitionForKey } from "../../packages/protocol/src/index.js";
import { runFlotilla, spawnFlotilla, type RunningCli } from "../helpers/cli.js";
import { freePorts, killAllProcesses, startTsProcess, type ChildHandle } from "../helpers/processes.js";

let dataDir: string;
let port: number;
let server: ChildHandle | undefined;
const started: RunningCli[] = [];

const bs = (): string[] => ["--bootstrap-server", `127.0.0.1:${port}`];

describe("the flotilla CLI", () => {
  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-cli-"));
    [port] = (await freePorts(1)) as [number];
    server = await startTsProcess({
      name: "cli-server",
      entry: "packages/cli/src/main.ts",
      args: ["server", "--override", "node.id=1", "--override", "process.roles=broker,controller", "--override", `listeners=127.0.0.1:${port}`, "--override", `log.dirs=${dataDir}`],
      readyLine: /"event":"ready"/,
      readyTimeoutMs: 30_000,
    });
  });

  afterAll(async () => {
    await Promise.all(started.map((c) => c.stop("SIGKILL").catch(() => undefined)));
    await server?.kill("SIGKILL").catch(() => undefined);
    await killAllProcesses();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it("creates a topic, produces keyed lines with a header, consumes them as JSON and describes the topic", async () => {
    const create = await runFlotilla(["topics", "create", "--topic", "orders", "--partitions", "3", "--replication-factor", "1", "--config", "retention.ms=3600000", ...bs()]);
    expect(create.stderr).toBe("");
    expect(create.code).toBe(0);
    expect(create.stdout).toBe("Created topic orders.\n");

    const lines = ["k1:first", "k2:second", "k1:third", "no separator here", "k3:a:b"];
    const [produce, list] = await Promise.all([
      runFlotilla(["produce", "--topic", "orders", "--key-separator", ":", "--header", "source=cli", ...bs()], { stdin: `${lines.join("\n")}\n` }),
      runFlotilla(["topics", "list", ...bs()]),
    ]);
    expect(list.code).toBe(0);
    expect(list.stdout.split("\n")).toContain("orders");
    expect(produce.code, produce.stderr).toBe(0);
    expect(produce.stdout).toBe("");
    expect(produce.stderr).toContain("produced 5 record(s) to topic orders");

    const consume = await runFlotilla(["consume", "--topic", "orders", "--from-beginning", "--format", "json", "--max-messages", "5", "--timeout-ms", "20000", ...bs()]);
    expect(consume.code, consume.stderr).toBe(0);
    expect(consume.stderr).toContain("Processed a total of 5 messages");
    const records = consume.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { topic: string; partition: number; offset: number; timestamp: number; key: string | null; value: string; headers: { key: string; value: string | null }[] });
    expect(records).toHaveLength(5);
    for (const r of records) {
      expect(r.topic).toBe("orders");
      expect(r.headers).toEqual([{ key: "source", value: "cli" }]);
      expect(typeof r.timestamp).toBe("number");
      if (r.key !== null) expect(r.partition).toBe(partitionForKey(Buffer.from(r.key), 3));
    }
    const pairs = records.map((r) => `${r.key}=${r.value}`).sort();
    expect(pairs).toEqual(["k1=first", "k1=third", "k2=second", "k3=a:b", "null=no separator here"].sort());
    // k1's two records are in one partition, first before third.
    const k1 = records.filter((r) => r.key === "k1").sort((a, b) => a.offset - b.offset);
    expect(k1.map((r) => r.value)).toEqual(["first", "third"]);

    // Without --from-beginning the consumer starts at the end: nothing old comes back.
    // One partition from an offset, text with keys. And the topic's description.
    const p = partitionForKey(Buffer.from("k1"), 3);
    const [latest, onePartition, describeOut] = await Promise.all([
      runFlotilla(["consume", "--topic", "orders", "--timeout-ms", "1500", ...bs()]),
      runFlotilla(["consume", "--topic", "orders", "--partition", String(p), "--offset", "0", "--print-key", "--max-messages", "2", "--timeout-ms", "20000", ...bs()]),
      runFlotilla(["topics", "describe", "--topic", "orders", ...bs()]),
    ]);
    expect(latest.code, latest.stderr).toBe(0);
    expect(latest.stdout).toBe("");
    expect(latest.stderr).toContain("Processed a total of 0 messages");
    expect(onePartition.code, onePartition.stderr).toBe(0);
    expect(onePartition.stdout).toBe("k1\tfirst\nk1\tthird\n");
    expect(describeOut.code, describeOut.stderr).toBe(0);
    const [head, ...partitionLines] = describeOut.stdout.trim().split("\n");
    expect(head).toMatch(/^Topic: orders\tTopicId: \S+\tPartitionCount: 3\tReplicationFactor: 1\tConfigs: .*retention\.ms=3600000/);
    expect(partitionLines).toHaveLength(3);
    partitionLines.forEach((line, i) => expect(line).toMatch(new RegExp(`^\\tTopic: orders\\tPartition: ${i}\\tLeader: 1\\tReplicas: 1\\tIsr: 1\\tLeaderEpoch: \\d+$`)));
  });

  it("consume stops on Ctrl-C with exit 0 and its summary", async () => {
    const consumer = spawnFlotilla(["consume", "--topic", "orders", "--from-beginning", ...bs()]);
    started.push(consumer);
    await consumer.waitForStdout(/third/);
    expect(await consumer.stop("SIGINT")).toEqual({ code: 0, signal: null });
    expect(consumer.stdout().trim().split("\n").sort()).toEqual(["a:b", "first", "no separator here", "second", "third"]);
    expect(consumer.stderr()).toContain("Processed a total of 5 messages");
  });

  it("fails with exit 1 and the error name on stderr for an unknown topic or an existing one", async () => {
    const [produce, consume, again] = await Promise.all([
      runFlotilla(["produce", "--topic", "no-such-topic", ...bs()], { stdin: "x\n" }),
      runFlotilla(["consume", "--topic", "no-such-topic", "--timeout-ms", "1000", ...bs()]),
      runFlotilla(["topics", "create", "--topic", "orders", "--partitions", "1", ...bs()]),
    ]);
    expect(produce.code).toBe(1);
    expect(produce.stderr).toMatch(/^error: UNKNOWN_TOPIC_OR_PARTITION: .*no-such-topic/m);
    expect(produce.stdout).toBe("");
    expect(consume.code).toBe(1);
    expect(consume.stderr).toMatch(/^error: UNKNOWN_TOPIC_OR_PARTITION: .*no-such-topic/m);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^error: TOPIC_ALREADY_EXISTS: /m);
  });

  it("exits 2 on usage errors", async () => {
    // The in-process tests (packages/cli/src/program.test.ts) cover each flag; this checks
    // that the process itself exits with the code.
    const [noTopic, unknownFlag] = await Promise.all([runFlotilla(["produce", ...bs()]), runFlotilla(["consume", "--topic", "orders", "--no-such-flag"])]);
    expect(noTopic.code).toBe(2);
    expect(noTopic.stderr).toContain("--topic is required");
    expect(unknownFlag.code).toBe(2);
    expect(unknownFlag.stderr).toContain("--no-such-flag");
  });

  it("exits 2 naming the key when the server configuration is bad", async () => {
    const bad = await runFlotilla(["server", "--override", "node.id=1", "--override", "listeners=127.0.0.1:0", "--override", "num.partitions=zero", "--override", `log.dirs=${dataDir}-bad`], {
      timeoutMs: 20_000,
    });
    expect(bad.timedOut).toBe(false);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^error: INVALID_CONFIG: .*num\.partitions/m);
  });

  it("`flotilla start` runs the local default in the current directory, says how to use it, and stops on Ctrl-C with exit 0", async () => {
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-start-"));
    try {
      const [startPort] = (await freePorts(1)) as [number];
      const node = spawnFlotilla(["start", "--override", `listeners=127.0.0.1:${startPort}`], { cwd });
      started.push(node);
      await node.waitForStdout(/Press Ctrl-C to stop/);
      expect(node.stdout()).toContain(`Flotilla is running on 127.0.0.1:${startPort}`);
      expect(node.stdout()).toContain("flotilla topics create --topic orders");
      expect(fs.existsSync(path.join(cwd, "data"))).toBe(true);
      const list = await runFlotilla(["topics", "list", "--bootstrap-server", `127.0.0.1:${startPort}`]);
      expect(list.code, list.stderr).toBe(0);
      expect(await node.stop("SIGINT")).toEqual({ code: 0, signal: null });
    } finally {
      fs.rmSync(cwd, { recursive: true, force: true });
    }
  });

  it("`flotilla server` stops on SIGTERM with exit 0", async () => {
    const status = await server!.kill("SIGTERM");
    expect(status).toEqual({ code: 0, signal: null });
  });
});

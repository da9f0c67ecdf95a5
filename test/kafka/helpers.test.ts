/**
 * The Kafka test helpers themselves: a kcat that overruns is killed and reported, kcat's
 * debug lines are read into per-API versions, and the doc table reader refuses a bad cell.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { freePorts } from "../helpers/processes.js";
import { kcatBrokerApiVersions, kcatSentVersions, readKafkaDocTable, runKcat } from "./helpers.js";

/** kcat processes that are children of this test process. */
function kcatChildren(): string[] {
  try {
    return execFileSync("ps", ["-o", "pid=,comm=", "--ppid", String(process.pid)], { encoding: "utf8" })
      .split("\n")
      .filter((l) => /\bkcat\b/.test(l));
  } catch {
    return []; // ps exits 1 when there are no children.
  }
}

describe("Kafka test helpers", () => {
  it("runKcat kills a kcat that overruns its timeout and says so", async () => {
    // Nothing listens on this port, so a consumer waits for metadata until killed.
    const [port] = await freePorts(1);
    const started = Date.now();
    await expect(runKcat(["-C", "-b", `127.0.0.1:${port}`, "-t", "nowhere", "-m", "60"], { timeoutMs: 1_000 })).rejects.toThrow(/did not exit within 1000 ms \(killed\)/);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(kcatChildren()).toEqual([]);
  });

  it("runKcat fails on a non-zero exit unless allowFailure, and returns stdout as bytes", async () => {
    await expect(runKcat(["-X", "no.such.property=1", "-L", "-b", "127.0.0.1:1"])).rejects.toThrow(/exited with code/);
    const r = await runKcat(["-X", "no.such.property=1", "-L", "-b", "127.0.0.1:1"], { allowFailure: true });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/no\.such\.property/);
    expect(Buffer.isBuffer(r.stdout)).toBe(true);
  });

  it("kcatSentVersions keeps the highest version sent per API and names ApiVersions as Kafka does", () => {
    const debug = [
      "%7|1.1|SEND|rdkafka#producer-1| [thrd:x]: x/1: Sent ApiVersionRequest (v3, 40 bytes @ 0, CorrId 1)",
      "%7|1.2|SEND|rdkafka#producer-1| [thrd:x]: x/1: Sent MetadataRequest (v4, 20 bytes @ 0, CorrId 2)",
      "%7|1.3|SEND|rdkafka#producer-1| [thrd:x]: x/1: Sent MetadataRequest (v2, 20 bytes @ 0, CorrId 3)",
      "%7|1.4|RECV|rdkafka#producer-1| [thrd:x]: x/1: Received ProduceResponse (v7, 50 bytes, CorrId 4, rtt 1.00ms)",
    ].join("\n");
    expect(Object.fromEntries(kcatSentVersions(debug))).toEqual({ ApiVersions: 3, Metadata: 4 });
  });

  it("kcatBrokerApiVersions reads the broker's ApiVersions answer from librdkafka's feature log", () => {
    const debug = [
      "%7|1.1|APIVERSION|rdkafka#producer-1| [thrd:x]: x/bootstrap:   ApiKey Produce (0) Versions 0..8",
      "%7|1.1|APIVERSION|rdkafka#producer-1| [thrd:x]: x/bootstrap:   ApiKey ApiVersion (18) Versions 0..3",
      "%7|1.1|APIVERSION|rdkafka#producer-1| [thrd:x]: x/bootstrap:  Feature MsgVer2: Produce (3..3) supported by broker",
    ].join("\n");
    expect(Object.fromEntries(kcatBrokerApiVersions(debug))).toEqual({ 0: { min: 0, max: 8 }, 18: { min: 0, max: 3 } });
  });

  it("readKafkaDocTable reads the marked table and refuses a cell that is not a version", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kafka-doc-"));
    try {
      const file = path.join(dir, "KAFKA.md");
      const table = (cell: string): string =>
        ["text", "<!-- kafka-api-table:begin -->", "| API | Key | Min | Max | kafkajs | kcat |", "| --- | --- | --- | --- | --- | --- |", `| Produce | 0 | 3 | 8 | 7 | ${cell} |`, "<!-- kafka-api-table:end -->"].join("\n");
      fs.writeFileSync(file, table("–"));
      expect(readKafkaDocTable(file)).toEqual([{ name: "Produce", key: 0, min: 3, max: 8, kafkajs: 7, kcat: undefined }]);
      fs.writeFileSync(file, table("7"));
      expect(readKafkaDocTable(file)[0]?.kcat).toBe(7);
      fs.writeFileSync(file, table("v7"));
      expect(() => readKafkaDocTable(file)).toThrow(/kcat of Produce is "v7"/);
      fs.writeFileSync(file, "no table here");
      expect(() => readKafkaDocTable(file)).toThrow(/lacks the kafka-api-table markers/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

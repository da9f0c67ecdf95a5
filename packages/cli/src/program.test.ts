import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { startTarget } from "./commands/consume.js";
import { localDefaults, startBanner } from "./commands/server.js";
import type { CliIo } from "./io.js";
import { runCli } from "./program.js";

/** Runs the CLI in-process with captured streams (only for commands that fail before any I/O). */
async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = "";
  let err = "";
  stdout.on("data", (d: Buffer) => (out += d.toString()));
  stderr.on("data", (d: Buffer) => (err += d.toString()));
  const io: CliIo = { stdin: new PassThrough(), stdout, stderr, env: {}, cwd: "/tmp", onShutdownSignal: () => () => undefined };
  const code = await runCli(args, io);
  return { code, stdout: out, stderr: err };
}

describe("flotilla command line", () => {
  it("prints help and exits 0", async () => {
    const r = await run(["--help"]);
    expect(r.code).toBe(0);
    for (const cmd of ["server", "start", "topics", "produce", "consume"]) expect(r.stdout).toContain(cmd);
  });

  it("exits 2 on an unknown command, an unknown flag or a missing required flag", async () => {
    expect((await run(["frobnicate"])).code).toBe(2);
    const unknownFlag = await run(["produce", "--topic", "t", "--bogus"]);
    expect(unknownFlag.code).toBe(2);
    expect(unknownFlag.stderr).toContain("--bogus");
    const missing = await run(["topics", "create"]);
    expect(missing).toMatchObject({ code: 2, stderr: "error: --topic is required\n" });
  });

  it("exits 2 on bad flag values, naming the flag", async () => {
    const cases: [string[], string][] = [
      [["topics", "create", "--topic", "t", "--partitions", "0"], "--partitions"],
      [["topics", "create", "--topic", "t", "--config", "novalue"], "--config"],
      [["produce", "--topic", "t", "--acks", "2"], "--acks"],
      [["produce", "--topic", "t", "--compression", "brotli"], "--compression"],
      [["consume", "--topic", "t", "--format", "xml"], "--format"],
      [["consume", "--topic", "t", "--offset", "5"], "--partition"],
      [["consume", "--topic", "t", "--max-messages", "x"], "--max-messages"],
      // The value is checked (not an unknown flag): perf consume takes Kafka's --fetch-size.
      [["perf", "consume", "--topic", "t", "--messages", "10", "--fetch-size", "0"], "--fetch-size must be an integer >= 1"],
    ];
    for (const [args, flag] of cases) {
      const r = await run(args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr, args.join(" ")).toContain(flag);
    }
  });

  it("starts the console consumer at the end unless told otherwise", () => {
    expect(startTarget({})).toBe("latest");
    expect(startTarget({ fromBeginning: true })).toBe("earliest");
    expect(startTarget({ offset: "earliest" })).toBe("earliest");
    expect(startTarget({ offset: "12", partition: "0" })).toEqual({ offset: 12 });
    expect(() => startTarget({ offset: "12" })).toThrow(/--partition/);
    expect(() => startTarget({ offset: "1", fromBeginning: true, partition: "0" })).toThrow(/exclude/);
  });

  it("runs the local default as node 1 on 127.0.0.1:9092 with data under the current directory", () => {
    expect(localDefaults("/home/me/project")).toEqual({
      "node.id": "1",
      "process.roles": "broker,controller",
      listeners: "127.0.0.1:9092",
      "log.dirs": "/home/me/project/data",
    });
    const banner = startBanner("127.0.0.1:9092");
    expect(banner).toContain("flotilla topics create --topic orders");
    expect(banner).not.toContain("--bootstrap-server");
    expect(startBanner("127.0.0.1:19092")).toContain("--bootstrap-server 127.0.0.1:19092");
  });
});

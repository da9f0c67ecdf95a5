import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import type { GroupDescription } from "@flotilla/client";
import type { CliIo } from "../io.js";
import { runCli } from "../program.js";
import { describeRows, formatTable, planReset, resetSpecFromFlags } from "./groups.js";

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

const k = (t: string, p: number): string => `${t}\u0000${p}`;

describe("groups describe rows", () => {
  const description: GroupDescription = {
    groupId: "g",
    state: "Stable",
    protocolType: "consumer",
    protocol: "range",
    coordinatorId: 1,
    members: [
      { memberId: "m-2", groupInstanceId: "", clientId: "c2", clientHost: "/127.0.0.1", subscribedTopics: ["t"], assignment: [{ topic: "t", partition: 1 }] },
      { memberId: "m-1", groupInstanceId: "", clientId: "c1", clientHost: "/127.0.0.1", subscribedTopics: ["t"], assignment: [{ topic: "t", partition: 0 }] },
      { memberId: "m-3", groupInstanceId: "", clientId: "c3", clientHost: "/10.0.0.1", subscribedTopics: ["t"], assignment: [] },
    ],
  };

  it("one row per partition with lag = log end - committed, members without partitions last", () => {
    const rows = describeRows(
      description,
      [
        { topic: "t", partition: 0, offset: 7, metadata: "" },
        { topic: "t", partition: 2, offset: 3, metadata: "" },
      ],
      new Map([
        [k("t", 0), 10],
        [k("t", 1), 4],
        [k("t", 2), 3],
      ]),
    );
    expect(rows.map((r) => [r.topic, r.partition, r.currentOffset, r.logEndOffset, r.lag, r.consumerId])).toEqual([
      ["t", 0, 7, 10, 3, "m-1"],
      ["t", 1, null, 4, null, "m-2"],
      ["t", 2, 3, 3, 0, null],
      ["", null, null, null, null, "m-3"],
    ]);
  });

  it("prints Kafka's columns with - for unknown values", () => {
    const text = formatTable(["GROUP", "TOPIC", "LAG"], [["g", "t", null], ["g", "topic-long", 12]]);
    expect(text).toBe("GROUP  TOPIC       LAG\ng      t           -\ng      topic-long  12\n");
  });
});

describe("groups reset-offsets plan", () => {
  const ranges = [
    { partition: 0, low: 2, high: 10 },
    { partition: 1, low: 0, high: 0 },
  ];
  it("earliest, latest, clamped offsets and datetime (the end when no record is that late)", () => {
    expect(planReset({ kind: "earliest" }, ranges, new Map())).toEqual([{ partition: 0, offset: 2 }, { partition: 1, offset: 0 }]);
    expect(planReset({ kind: "latest" }, ranges, new Map())).toEqual([{ partition: 0, offset: 10 }, { partition: 1, offset: 0 }]);
    expect(planReset({ kind: "offset", offset: 50 }, ranges, new Map())).toEqual([{ partition: 0, offset: 10 }, { partition: 1, offset: 0 }]);
    expect(planReset({ kind: "offset", offset: 1 }, ranges, new Map())).toEqual([{ partition: 0, offset: 2 }, { partition: 1, offset: 0 }]);
    expect(planReset({ kind: "datetime", timestampMs: 5 }, ranges, new Map([[0, 6], [1, -1]]))).toEqual([{ partition: 0, offset: 6 }, { partition: 1, offset: 0 }]);
  });

  it("needs exactly one target; a bad datetime names the flag", () => {
    expect(resetSpecFromFlags({ toOffset: "5" })).toEqual({ kind: "offset", offset: 5 });
    expect(resetSpecFromFlags({ toDatetime: "2024-01-31T12:00:00Z" })).toEqual({ kind: "datetime", timestampMs: Date.parse("2024-01-31T12:00:00Z") });
    expect(() => resetSpecFromFlags({})).toThrow(/exactly one/);
    expect(() => resetSpecFromFlags({ toEarliest: true, toLatest: true })).toThrow(/exactly one/);
    expect(() => resetSpecFromFlags({ toDatetime: "yesterday" })).toThrow(/--to-datetime/);
  });
});

describe("groups command line", () => {
  it("exits 2 on missing --group, a missing reset target, and --group with --partition", async () => {
    expect(await run(["groups", "describe"])).toMatchObject({ code: 2, stderr: "error: --group is required\n" });
    expect((await run(["groups", "reset-offsets", "--group", "g", "--topic", "t"])).code).toBe(2);
    const r = await run(["consume", "--topic", "t", "--group", "g", "--partition", "0"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--group excludes --partition");
  });
});

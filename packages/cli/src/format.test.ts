import { describe, expect, it } from "vitest";
import { FlotillaError } from "@flotilla/common";
import { describeError, formatRecord, formatTopicDescription, parseHeaderFlags, parseIntFlag, parseKeyValues, splitLine, UsageError } from "./format.js";

describe("splitLine", () => {
  it("splits at the first separator only", () => {
    expect(splitLine("k1:a:b", ":")).toEqual({ key: "k1", value: "a:b" });
    expect(splitLine("k\t\tv", "\t")).toEqual({ key: "k", value: "\tv" });
    expect(splitLine("key=>v", "=>")).toEqual({ key: "key", value: "v" });
  });
  it("leaves lines without the separator, or without a separator option, unkeyed", () => {
    expect(splitLine("no-sep", ":")).toEqual({ key: null, value: "no-sep" });
    expect(splitLine("a:b", undefined)).toEqual({ key: null, value: "a:b" });
  });
  it("allows an empty key or value", () => {
    expect(splitLine(":v", ":")).toEqual({ key: "", value: "v" });
    expect(splitLine("k:", ":")).toEqual({ key: "k", value: "" });
  });
});

describe("flag parsing", () => {
  it("parses key=value pairs, keeping '=' in values", () => {
    expect(parseKeyValues(["a=1", "b=x=y"], "--config")).toEqual({ a: "1", b: "x=y" });
    expect(() => parseKeyValues(["novalue"], "--config")).toThrow(UsageError);
    expect(() => parseKeyValues(["=v"], "--config")).toThrow(/--config expects key=value/);
  });
  it("keeps repeated headers in order", () => {
    expect(parseHeaderFlags(["h=1", "h=2"])).toEqual([
      { key: "h", value: "1" },
      { key: "h", value: "2" },
    ]);
  });
  it("parses integers and names the flag when it cannot", () => {
    expect(parseIntFlag("12", "--partitions")).toBe(12);
    expect(() => parseIntFlag("x", "--partitions")).toThrow(/--partitions expects an integer/);
    expect(() => parseIntFlag("0", "--partitions", 1)).toThrow(/--partitions must be an integer >= 1/);
  });
});

describe("describeError", () => {
  it("maps usage and config errors to exit 2, other FlotillaErrors to 1, with the code in the message", () => {
    expect(describeError(new UsageError("--topic is required"))).toEqual({ exitCode: 2, message: "error: --topic is required" });
    expect(describeError(new FlotillaError("INVALID_CONFIG", "log.dirs is empty"))).toEqual({ exitCode: 2, message: "error: INVALID_CONFIG: log.dirs is empty" });
    expect(describeError(new FlotillaError("UNKNOWN_TOPIC_OR_PARTITION", 'topic "x" does not exist'))).toEqual({
      exitCode: 1,
      message: 'error: UNKNOWN_TOPIC_OR_PARTITION: topic "x" does not exist',
    });
    expect(describeError(new Error("bug")).exitCode).toBe(1);
  });
});

describe("formatRecord", () => {
  const record = {
    topic: "t",
    partition: 2,
    offset: 7,
    timestamp: 1700000000000,
    key: Buffer.from("k"),
    value: Buffer.from("héllo"),
    headers: [
      { key: "h", value: Buffer.from("1") },
      { key: "h", value: null },
    ],
  };
  it("prints the value, or key TAB value, in text", () => {
    expect(formatRecord(record, "text", false)).toBe("héllo");
    expect(formatRecord(record, "text", true)).toBe("k\théllo");
    expect(formatRecord({ ...record, key: null, value: null }, "text", true)).toBe("null\tnull");
  });
  it("prints one JSON object with UTF-8 strings and a header list", () => {
    expect(JSON.parse(formatRecord(record, "json", false))).toEqual({
      topic: "t",
      partition: 2,
      offset: 7,
      timestamp: 1700000000000,
      key: "k",
      value: "héllo",
      headers: [
        { key: "h", value: "1" },
        { key: "h", value: null },
      ],
    });
    expect(JSON.parse(formatRecord({ ...record, key: null }, "json", false)).key).toBeNull();
  });
});

describe("formatTopicDescription", () => {
  const t = {
    name: "orders",
    topicId: "abc",
    replicationFactor: 1,
    partitions: [
      { partition: 0, leader: 1, leaderEpoch: 0, replicas: [1], isr: [1], offlineReplicas: [] },
      { partition: 1, leader: -1, leaderEpoch: 3, replicas: [1, 2], isr: [], offlineReplicas: [1] },
    ],
    configs: { "retention.ms": "1000", "segment.bytes": "1073741824" },
    overriddenConfigs: ["retention.ms"],
  };
  it("prints a topic line with the overrides and a line per partition", () => {
    expect(formatTopicDescription(t, false).split("\n")).toEqual([
      "Topic: orders\tTopicId: abc\tPartitionCount: 2\tReplicationFactor: 1\tConfigs: retention.ms=1000",
      "\tTopic: orders\tPartition: 0\tLeader: 1\tReplicas: 1\tIsr: 1\tLeaderEpoch: 0",
      "\tTopic: orders\tPartition: 1\tLeader: none\tReplicas: 1,2\tIsr: \tLeaderEpoch: 3\tOffline: 1",
    ]);
  });
  it("prints every effective config with allConfigs", () => {
    expect(formatTopicDescription(t, true).split("\n")[0]).toContain("Configs: retention.ms=1000,segment.bytes=1073741824");
  });
});

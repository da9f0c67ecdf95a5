import { describe, expect, it } from "vitest";
import { DEFAULT_TOPIC_CONFIG, parseLong, resolveTopicConfig, topicConfigProblem, topicConfigStrings } from "./topic-config.js";

describe("topic configuration", () => {
  it.each([
    ["retention.ms", "-1"],
    ["retention.ms", "86400000"],
    ["retention.bytes", "1073741824"],
    ["segment.bytes", "1024"],
    ["min.insync.replicas", "2"],
    ["message.timestamp.type", "LogAppendTime"],
    ["cleanup.policy", "delete"],
    ["cleanup.policy", "compact"],
    ["cleanup.policy", "compact,delete"],
    ["cleanup.policy", "delete,compact"],
    ["min.cleanable.dirty.ratio", "0.5"],
    ["min.cleanable.dirty.ratio", "1"],
    ["delete.retention.ms", "0"],
    ["min.compaction.lag.ms", "60000"],
    ["flush.messages", "9223372036854775807"],
  ])("accepts %s=%s", (name, value) => {
    expect(topicConfigProblem(name, value)).toBeUndefined();
  });

  it.each([
    ["retention.msx", "1", /unknown topic configuration key "retention.msx"/],
    ["retention.ms", "-2", /retention.ms=-2: -2 is below the minimum -1/],
    ["retention.ms", "1h", /retention.ms=1h: "1h" is not an integer/],
    ["segment.bytes", "100", /below the minimum 1024/],
    ["segment.bytes", "4294967296", /above the maximum 2147483647/],
    ["min.insync.replicas", "0", /below the minimum 1/],
    ["message.timestamp.type", "create", /not one of CreateTime, LogAppendTime/],
    ["cleanup.policy", "compacted", /"compacted" is not one of delete, compact, compact,delete/],
    ["cleanup.policy", "compact,compact", /is not one of/],
    ["cleanup.policy", "", /is not one of/],
    ["min.cleanable.dirty.ratio", "1.5", /outside \[0, 1\]/],
    ["min.cleanable.dirty.ratio", "half", /"half" is not a number/],
    ["delete.retention.ms", "-1", /below the minimum 0/],
    ["min.compaction.lag.ms", "-5", /below the minimum 0/],
    ["retention.bytes", "99999999999999999999", /outside the range of a 64-bit integer/],
  ])("rejects %s=%s naming the key", (name, value, pattern) => {
    expect(topicConfigProblem(name, value)).toMatch(pattern);
  });

  it("overrides win over defaults; unknown or invalid stored keys fall back to the default", () => {
    const cfg = resolveTopicConfig(new Map([["retention.ms", "5"], ["message.timestamp.type", "LogAppendTime"], ["bogus", "1"], ["segment.bytes", "x"]]), {
      ...DEFAULT_TOPIC_CONFIG,
      retentionBytes: 77,
    });
    expect(cfg.retentionMs).toBe(5);
    expect(cfg.retentionBytes).toBe(77);
    expect(cfg.messageTimestampType).toBe("LogAppendTime");
    expect(cfg.segmentBytes).toBe(DEFAULT_TOPIC_CONFIG.segmentBytes);
  });

  it("cleanup.policy in either order resolves to one policy; compaction keys have Kafka's defaults", () => {
    expect(resolveTopicConfig(new Map([["cleanup.policy", "delete, compact"]])).cleanupPolicy).toBe("compact,delete");
    expect(resolveTopicConfig(new Map([["cleanup.policy", "compact"]])).cleanupPolicy).toBe("compact");
    const strings = topicConfigStrings(resolveTopicConfig(new Map([["min.cleanable.dirty.ratio", "0.25"]])));
    expect(strings["min.cleanable.dirty.ratio"]).toBe("0.25");
    expect(strings["delete.retention.ms"]).toBe("86400000");
    expect(strings["min.compaction.lag.ms"]).toBe("0");
  });

  it("formats the effective config with Kafka's names, Long.MAX_VALUE for never", () => {
    const strings = topicConfigStrings(DEFAULT_TOPIC_CONFIG);
    expect(strings["retention.ms"]).toBe("604800000");
    expect(strings["flush.messages"]).toBe("9223372036854775807");
    expect(strings["cleanup.policy"]).toBe("delete");
  });

  it("parseLong clamps Java longs past 2^53 and checks bounds", () => {
    expect(parseLong("9223372036854775807", 0)).toBe(Number.MAX_SAFE_INTEGER);
    expect(parseLong(" 42 ", 0)).toBe(42);
    expect(parseLong("5", 10)).toEqual({ problem: "5 is below the minimum 10" });
  });
});

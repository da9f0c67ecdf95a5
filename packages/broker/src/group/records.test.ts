import { describe, expect, it } from "vitest";
import { decodeGroupValue, decodeKey, decodeOffsetValue, encodeGroupKey, encodeGroupValue, encodeOffsetKey, encodeOffsetValue, type GroupValue } from "./records.js";

describe("__consumer_offsets record formats", () => {
  it("offset keys and values round-trip, with Kafka's byte layout", () => {
    const key = encodeOffsetKey("g", "t", 7);
    // version 1, "g", "t", partition 7
    expect(key.toString("hex")).toBe("0001" + "0001" + "67" + "0001" + "74" + "00000007");
    expect(decodeKey(key)).toEqual({ kind: "offset", group: "g", topic: "t", partition: 7 });
    const value = { offset: 2 ** 40 + 5, leaderEpoch: -1, metadata: "héllo", commitTimestampMs: 1_700_000_000_123 };
    const bytes = encodeOffsetValue(value);
    expect(bytes.readInt16BE(0)).toBe(3);
    expect(decodeOffsetValue(bytes)).toEqual(value);
  });

  it("group keys and values round-trip, including null protocol, leader and instance ids", () => {
    expect(decodeKey(encodeGroupKey("grp"))).toEqual({ kind: "group", group: "grp" });
    expect(encodeGroupKey("grp").readInt16BE(0)).toBe(2);
    const value: GroupValue = {
      protocolType: "consumer",
      generation: 12,
      protocol: "range",
      leader: "m-1",
      currentStateTimestampMs: 1_700_000_000_000,
      members: [
        { memberId: "m-1", groupInstanceId: null, clientId: "c1", clientHost: "/127.0.0.1", rebalanceTimeoutMs: 300_000, sessionTimeoutMs: 45_000, subscription: Buffer.from([0, 1, 2]), assignment: Buffer.alloc(0) },
        { memberId: "m-2", groupInstanceId: "host-2", clientId: "c2", clientHost: "/10.0.0.2", rebalanceTimeoutMs: 1, sessionTimeoutMs: 2, subscription: Buffer.alloc(0), assignment: Buffer.from("xyz") },
      ],
    };
    expect(decodeGroupValue(encodeGroupValue(value))).toEqual(value);
    const empty: GroupValue = { protocolType: "", generation: 0, protocol: null, leader: null, currentStateTimestampMs: -1, members: [] };
    expect(decodeGroupValue(encodeGroupValue(empty))).toEqual(empty);
  });

  it("rejects truncated and unknown-version records with STORAGE_CORRUPT", () => {
    const bytes = encodeOffsetValue({ offset: 1, leaderEpoch: 0, metadata: "", commitTimestampMs: 0 });
    expect(() => decodeOffsetValue(bytes.subarray(0, bytes.length - 1))).toThrow(/STORAGE_CORRUPT.*commitTimestamp/);
    expect(() => decodeKey(Buffer.from([0, 9, 0, 0]))).toThrow(/unknown key version 9/);
    expect(() => decodeGroupValue(Buffer.from([0, 1]))).toThrow(/unsupported version 1/);
  });
});

import { describe, expect, it } from "vitest";
import { FlotillaError } from "@flotilla/common";
import { decodeAssignment, decodeSubscription, encodeAssignment, encodeSubscription, groupByTopic } from "./consumer-protocol.js";

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ""), "hex");

// Expected bytes are written out field by field from Kafka's ConsumerProtocolSubscription.json
// and ConsumerProtocolAssignment.json (non-flexible versions: int16/int32 lengths).
describe("ConsumerProtocol Subscription", () => {
  it("v0 is version, topics, user data", () => {
    const bytes = encodeSubscription({ version: 0, topics: ["foo", "ba"], userData: null, ownedPartitions: [], generationId: -1, rackId: null });
    expect(bytes).toEqual(
      hex(`0000
           00000002 0003 666f6f 0002 6261
           ffffffff`),
    );
    expect(decodeSubscription(bytes)).toEqual({ version: 0, topics: ["foo", "ba"], userData: null, ownedPartitions: [], generationId: -1, rackId: null });
  });

  it("v1 adds owned partitions; user data bytes are length-prefixed", () => {
    const bytes = encodeSubscription({
      version: 1,
      topics: ["t"],
      userData: Buffer.from([0xab, 0xcd]),
      ownedPartitions: [{ topic: "t", partitions: [0, 5] }],
      generationId: -1,
      rackId: null,
    });
    expect(bytes).toEqual(
      hex(`0001
           00000001 0001 74
           00000002 abcd
           00000001 0001 74 00000002 00000000 00000005`),
    );
    const back = decodeSubscription(bytes);
    expect(back.ownedPartitions).toEqual([{ topic: "t", partitions: [0, 5] }]);
    expect(back.userData).toEqual(Buffer.from([0xab, 0xcd]));
    expect(back.generationId).toBe(-1);
  });

  it("v3 adds generation id and a nullable rack id", () => {
    const bytes = encodeSubscription({ version: 3, topics: [], userData: null, ownedPartitions: [], generationId: 7, rackId: "r1" });
    expect(bytes).toEqual(hex(`0003 00000000 ffffffff 00000000 00000007 0002 7231`));
    expect(decodeSubscription(bytes)).toMatchObject({ version: 3, generationId: 7, rackId: "r1" });
    const nullRack = encodeSubscription({ version: 3, topics: [], userData: null, ownedPartitions: [], generationId: -1, rackId: null });
    expect(nullRack.subarray(nullRack.length - 2)).toEqual(hex("ffff"));
    expect(decodeSubscription(nullRack).rackId).toBeNull();
  });

  it("a newer version is read by its known fields, trailing bytes ignored", () => {
    const v3 = encodeSubscription({ version: 3, topics: ["a"], userData: null, ownedPartitions: [], generationId: 2, rackId: null });
    const v9 = Buffer.concat([hex("0009"), v3.subarray(2), hex("deadbeef")]);
    expect(decodeSubscription(v9)).toMatchObject({ version: 9, topics: ["a"], generationId: 2 });
  });

  it("a truncated buffer or an impossible count is INVALID_REQUEST, not a crash or a huge loop", () => {
    const ok = encodeSubscription({ version: 1, topics: ["abc"], userData: null, ownedPartitions: [], generationId: -1, rackId: null });
    for (let cut = 0; cut < ok.length; cut++) {
      expect(() => decodeSubscription(ok.subarray(0, cut))).toThrow(FlotillaError);
    }
    expect(() => decodeSubscription(hex("0000 7fffffff"))).toThrow(/count/);
  });
});

describe("ConsumerProtocol Assignment", () => {
  it("is version, assigned partitions, user data", () => {
    const bytes = encodeAssignment({ version: 0, assignedPartitions: [{ topic: "foo", partitions: [1, 2] }], userData: null });
    expect(bytes).toEqual(hex(`0000 00000001 0003 666f6f 00000002 00000001 00000002 ffffffff`));
    expect(decodeAssignment(bytes)).toEqual({ version: 0, assignedPartitions: [{ topic: "foo", partitions: [1, 2] }], userData: null });
  });

  it("zero bytes are an empty assignment", () => {
    expect(decodeAssignment(Buffer.alloc(0)).assignedPartitions).toEqual([]);
  });

  it("groupByTopic sorts topics and partitions", () => {
    expect(
      groupByTopic([
        { topic: "b", partition: 2 },
        { topic: "a", partition: 1 },
        { topic: "b", partition: 0 },
      ]),
    ).toEqual([
      { topic: "a", partitions: [1] },
      { topic: "b", partitions: [0, 2] },
    ]);
  });
});

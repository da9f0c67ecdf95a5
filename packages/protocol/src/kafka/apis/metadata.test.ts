import { describe, expect, it } from "vitest";
import { KafkaReader, KafkaWriter } from "../wire.js";
import { KAFKA_AUTHORIZED_OPERATIONS_OMITTED, metadataApi, type KafkaMetadataResponse } from "./metadata.js";

function decode(body: Buffer, version: number) {
  const r = new KafkaReader(body);
  const req = metadataApi.decodeRequest(r, version);
  expect(r.remaining).toBe(0);
  return req;
}

const response: KafkaMetadataResponse = {
  throttleTimeMs: 0,
  brokers: [
    { nodeId: 1, host: "127.0.0.1", port: 9092, rack: null },
    { nodeId: 2, host: "h2", port: 9093, rack: "r2" },
  ],
  clusterId: "c-1",
  controllerId: 1,
  topics: [
    {
      errorCode: 0,
      name: "orders",
      isInternal: false,
      partitions: [{ errorCode: 0, partitionIndex: 0, leaderId: 2, leaderEpoch: 5, replicaNodes: [2, 1], isrNodes: [2], offlineReplicas: [1] }],
      topicAuthorizedOperations: KAFKA_AUTHORIZED_OPERATIONS_OMITTED,
    },
  ],
  clusterAuthorizedOperations: KAFKA_AUTHORIZED_OPERATIONS_OMITTED,
};

describe("Metadata codec", () => {
  it("v0: an empty topic list means every topic; allow_auto_topic_creation defaults to true", () => {
    expect(decode(new KafkaWriter().int32(0).toBuffer(), 0)).toEqual({ topics: null, allowAutoTopicCreation: true, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false });
  });

  it("v1+: a null list means every topic and an empty one means none", () => {
    expect(decode(new KafkaWriter().int32(-1).toBuffer(), 1).topics).toBeNull();
    expect(decode(new KafkaWriter().int32(0).toBuffer(), 1).topics).toEqual([]);
  });

  it("v4 reads allow_auto_topic_creation and v8 the authorized-operations flags", () => {
    expect(decode(new KafkaWriter().int32(1).string("a").boolean(false).toBuffer(), 4)).toMatchObject({ topics: ["a"], allowAutoTopicCreation: false });
    expect(decode(new KafkaWriter().int32(2).string("a").string("b").boolean(true).boolean(true).boolean(false).toBuffer(), 8)).toEqual({
      topics: ["a", "b"],
      allowAutoTopicCreation: true,
      includeClusterAuthorizedOperations: true,
      includeTopicAuthorizedOperations: false,
    });
  });

  it("writes v0 exactly as the protocol guide lays it out", () => {
    const w = new KafkaWriter();
    metadataApi.encodeResponse(w, 0, { ...response, brokers: [response.brokers[0]!] });
    const expected = Buffer.concat([
      Buffer.from([0, 0, 0, 1, 0, 0, 0, 1, 0, 9]), Buffer.from("127.0.0.1"), Buffer.from([0, 0, 0x23, 0x84]),
      Buffer.from([0, 0, 0, 1, 0, 0, 0, 6]), Buffer.from("orders"),
      Buffer.from([0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]),
      Buffer.from([0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 1]),
      Buffer.from([0, 0, 0, 1, 0, 0, 0, 2]),
    ]);
    expect(w.toBuffer().toString("hex")).toBe(expected.toString("hex"));
  });

  for (const version of [1, 2, 3, 5, 7, 8]) {
    it(`writes a v${version} response with the fields of that version`, () => {
      const w = new KafkaWriter();
      metadataApi.encodeResponse(w, version, response);
      const r = new KafkaReader(w.toBuffer());
      if (version >= 3) expect(r.int32()).toBe(0);
      expect(r.array((b) => [b.int32(), b.string(), b.int32(), b.nullableString()])).toEqual([
        [1, "127.0.0.1", 9092, null],
        [2, "h2", 9093, "r2"],
      ]);
      if (version >= 2) expect(r.nullableString()).toBe("c-1");
      expect(r.int32()).toBe(1);
      expect(r.int32()).toBe(1);
      expect([r.int16(), r.string(), r.boolean()]).toEqual([0, "orders", false]);
      expect(r.int32()).toBe(1);
      expect([r.int16(), r.int32(), r.int32()]).toEqual([0, 0, 2]);
      if (version >= 7) expect(r.int32()).toBe(5);
      expect(r.array((x) => x.int32())).toEqual([2, 1]);
      expect(r.array((x) => x.int32())).toEqual([2]);
      if (version >= 5) expect(r.array((x) => x.int32())).toEqual([1]);
      if (version >= 8) expect([r.int32(), r.int32()]).toEqual([-2147483648, -2147483648]);
      expect(r.remaining).toBe(0);
    });
  }
});

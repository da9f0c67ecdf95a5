import { describe, expect, it } from "vitest";
import { FlotillaError } from "@flotilla/common";
import { decodeRecord, encodeRecord } from "./codec.js";
import type { MetadataRecord } from "./records.js";

const samples: MetadataRecord[] = [
  { type: "RegisterBroker", brokerId: 1, incarnationId: "abc", endpoints: [{ name: "PLAINTEXT", host: "h", port: 9092 }], rack: null },
  { type: "RegisterBroker", brokerId: 2, incarnationId: "def", endpoints: [{ name: "A", host: "h1", port: 1 }, { name: "B", host: "h2", port: 2 }], rack: "eu-1a" },
  { type: "FenceBroker", brokerId: 1, brokerEpoch: 7 },
  { type: "UnfenceBroker", brokerId: 1, brokerEpoch: 7 },
  { type: "Topic", name: "orders", topicId: "AAAAAAAAAAAAAAAAAAAAAA" },
  { type: "Partition", topicId: "T", partition: 3, replicas: [1, 2, 3], isr: [1, 2], leader: 1, leaderEpoch: 4, partitionEpoch: 5 },
  { type: "PartitionChange", topicId: "T", partition: 3, leader: 2 },
  { type: "PartitionChange", topicId: "T", partition: 3, isr: [2, 3], replicas: [2, 3, 4] },
  { type: "Config", resourceType: "topic", resourceName: "orders", name: "retention.ms", value: "100" },
  { type: "Config", resourceType: "broker", resourceName: "", name: "log.retention.ms", value: null },
  { type: "RemoveTopic", topicId: "T" },
  { type: "ProducerIds", brokerId: 1, brokerEpoch: 0, nextProducerId: 2 ** 40 },
];

const bytes = (s: string) => Buffer.from(s, "utf8");

describe("metadata record encoding", () => {
  it.each(samples.map((r) => [r.type, r] as const))("round-trips a %s record", (_type, record) => {
    expect(decodeRecord(encodeRecord(record))).toEqual(record);
  });

  it("writes version 1 JSON with the type and fields", () => {
    expect(Buffer.from(encodeRecord({ type: "RemoveTopic", topicId: "T" })).toString()).toBe('{"v":1,"type":"RemoveTopic","topicId":"T"}');
  });

  it("ignores keys it does not know", () => {
    expect(decodeRecord(bytes('{"v":1,"type":"RemoveTopic","topicId":"T","futureField":3}'))).toEqual({ type: "RemoveTopic", topicId: "T" });
  });

  it.each([
    ["not JSON", "{oops", /not valid JSON/],
    ["an array", "[1]", /not a JSON object/],
    ["a newer version", '{"v":2,"type":"RemoveTopic","topicId":"T"}', /version 2.*reads version 1/],
    ["an unknown type", '{"v":1,"type":"Nope"}', /unknown record type "Nope"/],
    ["a missing field", '{"v":1,"type":"Topic","name":"x"}', /bad topicId/],
    ["a fractional int", '{"v":1,"type":"FenceBroker","brokerId":1.5,"brokerEpoch":0}', /bad brokerId/],
    ["a bad resource type", '{"v":1,"type":"Config","resourceType":"group","resourceName":"g","name":"k","value":"v"}', /bad resourceType/],
  ])("reports %s as STORAGE_CORRUPT naming the problem", (_name, text, pattern) => {
    let err: unknown;
    try {
      decodeRecord(bytes(text), "record at offset 9");
    } catch (e) {
      err = e;
    }
    expect(FlotillaError.is(err, "STORAGE_CORRUPT")).toBe(true);
    expect((err as Error).message).toMatch(/record at offset 9/);
    expect((err as Error).message).toMatch(pattern);
  });
});

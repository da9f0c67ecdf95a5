import { describe, expect, it } from "vitest";
import { AssertionError } from "@flotilla/common";
import { EMPTY_IMAGE, liveBrokers, type MetadataImage } from "./image.js";
import { MetadataDelta, diffImages, replay, replayAll } from "./delta.js";
import type { CommittedRecord, MetadataRecord } from "./records.js";

const endpoint = { name: "PLAINTEXT", host: "127.0.0.1", port: 9092 };

function committed(records: MetadataRecord[], baseOffset = 0): CommittedRecord[] {
  return records.map((record, i) => ({ record, offset: baseOffset + i }));
}

/** Broker 1 registered and unfenced, topic "orders" (id T1) with two partitions on it. */
function clusterRecords(): MetadataRecord[] {
  return [
    { type: "RegisterBroker", brokerId: 1, incarnationId: "inc-a", endpoints: [endpoint], rack: null },
    { type: "UnfenceBroker", brokerId: 1, brokerEpoch: 0 },
    { type: "Topic", name: "orders", topicId: "T1" },
    { type: "Partition", topicId: "T1", partition: 0, replicas: [1], isr: [1], leader: 1, leaderEpoch: 0, partitionEpoch: 0 },
    { type: "Partition", topicId: "T1", partition: 1, replicas: [1], isr: [1], leader: 1, leaderEpoch: 0, partitionEpoch: 0 },
    { type: "Config", resourceType: "topic", resourceName: "orders", name: "retention.ms", value: "1000" },
  ];
}

function build(records: MetadataRecord[]): MetadataImage {
  return replayAll(EMPTY_IMAGE, committed(records)).image;
}

describe("metadata replay", () => {
  it("builds brokers, topics, partitions and configs and tracks the last offset", () => {
    const image = build(clusterRecords());
    expect(image.offset).toBe(5);
    expect(image.brokers.get(1)).toMatchObject({ brokerId: 1, brokerEpoch: 0, fenced: false, incarnationId: "inc-a" });
    expect(liveBrokers(image).map((b) => b.brokerId)).toEqual([1]);
    const topic = image.topicsByName.get("orders");
    expect(topic?.topicId).toBe("T1");
    expect(image.topicsById.get("T1")).toBe(topic);
    expect([...topic!.partitions.keys()]).toEqual([0, 1]);
    expect(image.configs.topic.get("orders")?.get("retention.ms")).toBe("1000");
  });

  it("a registered broker starts fenced and its epoch is the record's offset", () => {
    const image = replay(EMPTY_IMAGE, { type: "RegisterBroker", brokerId: 3, incarnationId: "x", endpoints: [endpoint], rack: "r1" }, 41);
    expect(image.brokers.get(3)).toMatchObject({ fenced: true, brokerEpoch: 41, rack: "r1" });
    expect(liveBrokers(image)).toEqual([]);
  });

  it("re-registration gives a new epoch, and a fence with the old epoch is an assert failure", () => {
    const image = build(clusterRecords());
    const again = replay(image, { type: "RegisterBroker", brokerId: 1, incarnationId: "inc-b", endpoints: [endpoint], rack: null }, 6);
    expect(again.brokers.get(1)).toMatchObject({ brokerEpoch: 6, fenced: true, incarnationId: "inc-b" });
    expect(() => replay(again, { type: "FenceBroker", brokerId: 1, brokerEpoch: 0 }, 7)).toThrow(AssertionError);
    expect(replay(again, { type: "UnfenceBroker", brokerId: 1, brokerEpoch: 6 }, 7).brokers.get(1)?.fenced).toBe(false);
  });

  it("PartitionChange bumps the partition epoch always and the leader epoch only with a leader", () => {
    let image = build([...clusterRecords(), { type: "RegisterBroker", brokerId: 2, incarnationId: "b2", endpoints: [endpoint], rack: null }]);
    image = replay(image, { type: "PartitionChange", topicId: "T1", partition: 0, replicas: [1, 2], isr: [1, 2] }, 7);
    expect(image.topicsById.get("T1")?.partitions.get(0)).toEqual({ replicas: [1, 2], isr: [1, 2], leader: 1, leaderEpoch: 0, partitionEpoch: 1 });
    image = replay(image, { type: "PartitionChange", topicId: "T1", partition: 0, leader: 2, isr: [2] }, 8);
    expect(image.topicsById.get("T1")?.partitions.get(0)).toEqual({ replicas: [1, 2], isr: [2], leader: 2, leaderEpoch: 1, partitionEpoch: 2 });
  });

  it("RemoveTopic drops the topic, its partitions and its configs", () => {
    const image = replay(build(clusterRecords()), { type: "RemoveTopic", topicId: "T1" }, 6);
    expect(image.topicsByName.has("orders")).toBe(false);
    expect(image.topicsById.has("T1")).toBe(false);
    expect(image.configs.topic.has("orders")).toBe(false);
    // The name is free again.
    const recreated = replay(image, { type: "Topic", name: "orders", topicId: "T2" }, 7);
    expect(recreated.topicsByName.get("orders")?.topicId).toBe("T2");
  });

  it("a Config record with a null value removes the key", () => {
    const image = replay(build(clusterRecords()), { type: "Config", resourceType: "topic", resourceName: "orders", name: "retention.ms", value: null }, 6);
    expect(image.configs.topic.has("orders")).toBe(false);
    const broker = replay(image, { type: "Config", resourceType: "broker", resourceName: "", name: "log.retention.ms", value: "5" }, 7);
    expect(broker.configs.broker.get("")?.get("log.retention.ms")).toBe("5");
  });

  it("ProducerIds only moves forward", () => {
    const image = replay(EMPTY_IMAGE, { type: "ProducerIds", brokerId: 1, brokerEpoch: 0, nextProducerId: 1000 }, 0);
    expect(image.producerIds).toEqual({ brokerId: 1, brokerEpoch: 0, nextProducerId: 1000 });
    expect(() => replay(image, { type: "ProducerIds", brokerId: 1, brokerEpoch: 0, nextProducerId: 1000 }, 1)).toThrow(AssertionError);
  });

  it.each<[string, MetadataRecord]>([
    ["a partition of an unknown topic", { type: "Partition", topicId: "nope", partition: 0, replicas: [1], isr: [1], leader: 1, leaderEpoch: 0, partitionEpoch: 0 }],
    ["a duplicate partition", { type: "Partition", topicId: "T1", partition: 0, replicas: [1], isr: [1], leader: 1, leaderEpoch: 0, partitionEpoch: 0 }],
    ["a leader outside the isr", { type: "Partition", topicId: "T1", partition: 2, replicas: [1, 2], isr: [1], leader: 2, leaderEpoch: 0, partitionEpoch: 0 }],
    ["an isr outside the replicas", { type: "PartitionChange", topicId: "T1", partition: 0, isr: [1, 5] }],
    ["a topic name taken", { type: "Topic", name: "orders", topicId: "T9" }],
    ["a topic id taken", { type: "Topic", name: "other", topicId: "T1" }],
    ["removing an unknown topic", { type: "RemoveTopic", topicId: "T9" }],
    ["config of an unknown topic", { type: "Config", resourceType: "topic", resourceName: "nope", name: "retention.ms", value: "1" }],
    ["unfencing an unregistered broker", { type: "UnfenceBroker", brokerId: 9, brokerEpoch: 0 }],
  ])("rejects %s with an assert failure", (_name, record) => {
    const image = build(clusterRecords());
    expect(() => replay(image, record, 100)).toThrow(AssertionError);
  });

  it("refuses offsets that do not increase", () => {
    const image = build(clusterRecords());
    expect(() => replay(image, { type: "Topic", name: "x", topicId: "X" }, 5)).toThrow(/not after 5/);
  });
});

describe("image immutability", () => {
  it("replay leaves the old image as it was and shares what did not change", () => {
    const before = build(clusterRecords());
    const snapshot = JSON.stringify(dump(before));
    const after = replayAll(before, committed([
      { type: "Topic", name: "payments", topicId: "T2" },
      { type: "Partition", topicId: "T2", partition: 0, replicas: [1], isr: [1], leader: 1, leaderEpoch: 0, partitionEpoch: 0 },
      { type: "FenceBroker", brokerId: 1, brokerEpoch: 0 },
    ], 6)).image;
    expect(JSON.stringify(dump(before))).toBe(snapshot);
    expect(after.topicsByName.get("orders")).toBe(before.topicsByName.get("orders"));
    expect(after.brokers.get(1)).not.toBe(before.brokers.get(1));
    expect(after.configs).toBe(before.configs);
  });

  it("objects and arrays in an image are frozen", () => {
    const image = build(clusterRecords());
    const p = image.topicsByName.get("orders")!.partitions.get(0)!;
    expect(Object.isFrozen(image)).toBe(true);
    expect(Object.isFrozen(p)).toBe(true);
    expect(Object.isFrozen(p.replicas)).toBe(true);
    expect(Object.isFrozen(image.brokers.get(1)!.endpoints[0])).toBe(true);
    expect(() => (p.replicas as number[]).push(2)).toThrow(TypeError);
  });
});

describe("delta changes", () => {
  it("reports created and deleted topics, changed partitions and configs", () => {
    const base = build(clusterRecords());
    const delta = new MetadataDelta(base).replayAll(committed([
      { type: "RemoveTopic", topicId: "T1" },
      { type: "Topic", name: "orders", topicId: "T2" },
      { type: "Partition", topicId: "T2", partition: 0, replicas: [1], isr: [1], leader: 1, leaderEpoch: 0, partitionEpoch: 0 },
    ], 6));
    const changes = delta.changes();
    expect([...changes.createdTopics]).toEqual(["T2"]);
    expect([...changes.deletedTopics.keys()]).toEqual(["T1"]);
    expect(changes.deletedTopics.get("T1")?.partitions.size).toBe(2);
    expect([...changes.changedPartitions.get("T2")!]).toEqual([0]);
    expect(changes.changedPartitions.has("T1")).toBe(false);
    expect([...changes.topicConfigs]).toEqual(["orders"]);
  });

  it("a topic created and removed in one delta shows in neither list", () => {
    const delta = new MetadataDelta(EMPTY_IMAGE).replayAll(committed([
      { type: "Topic", name: "tmp", topicId: "X" },
      { type: "RemoveTopic", topicId: "X" },
    ]));
    expect(delta.changes().createdTopics.size).toBe(0);
    expect(delta.changes().deletedTopics.size).toBe(0);
  });

  it("diffImages from the empty image reports everything, and matches the delta", () => {
    const { image, changes } = replayAll(EMPTY_IMAGE, committed(clusterRecords()));
    expect(diffImages(EMPTY_IMAGE, image)).toEqual(changes);
  });

  it("replaying a batch all at once equals replaying record by record", () => {
    const records = committed(clusterRecords());
    let oneByOne = EMPTY_IMAGE;
    for (const { record, offset } of records) oneByOne = replay(oneByOne, record, offset);
    expect(dump(oneByOne)).toEqual(dump(replayAll(EMPTY_IMAGE, records).image));
  });
});

/** A plain-object view of an image for comparisons. */
function dump(image: MetadataImage): unknown {
  return {
    offset: image.offset,
    brokers: [...image.brokers.values()],
    topics: [...image.topicsById.values()].map((t) => ({ name: t.name, topicId: t.topicId, partitions: [...t.partitions] })),
    byName: [...image.topicsByName.keys()],
    topicConfigs: [...image.configs.topic].map(([k, m]) => [k, [...m]]),
    brokerConfigs: [...image.configs.broker].map(([k, m]) => [k, [...m]]),
    producerIds: image.producerIds,
  };
}

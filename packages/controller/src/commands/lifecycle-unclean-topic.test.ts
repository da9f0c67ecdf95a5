import { describe, expect, it } from "vitest";
import { ErrorCodes, SeededRandom } from "@flotilla/common";
import { EMPTY_IMAGE, type MetadataImage, type MetadataRecord, type PartitionRegistration } from "@flotilla/metadata";
import { registerBroker } from "./brokers.js";
import { applyAhead, electLeaderless, fenceBroker, type ElectionContext } from "./lifecycle.js";
import { createTopics } from "./topics.js";

// The per-topic unclean.leader.election.enable override, mirroring lifecycle.test.ts's
// broker-level case: the sole ISR member (broker 1) of a 3-replica partition is fenced.

const endpoints = [{ name: "PLAINTEXT", host: "127.0.0.1", port: 9092 }];
const TOPIC = "BBBBBBBBBBBBBBBBBBBBBB";
const brokerOff: ElectionContext = { shuttingDown: new Set(), uncleanLeaderElectionEnable: false };
const brokerOn: ElectionContext = { ...brokerOff, uncleanLeaderElectionEnable: true };

/** Brokers 1..3 unfenced; topic "t" with one partition, replicas [1, 2, 3], ISR [1], led by 1; `unclean` as the topic override. */
function cluster(unclean: "true" | "false" | undefined): MetadataImage {
  let image = EMPTY_IMAGE;
  for (let id = 1; id <= 3; id++) {
    image = applyAhead(image, registerBroker(image, { brokerId: id, incarnationId: `i${id}`, endpoints, rack: null }).records);
    image = applyAhead(image, [{ type: "UnfenceBroker", brokerId: id, brokerEpoch: image.brokers.get(id)!.brokerEpoch }]);
  }
  const records: MetadataRecord[] = [
    { type: "Topic", name: "t", topicId: TOPIC },
    { type: "Partition", topicId: TOPIC, partition: 0, replicas: [1, 2, 3], isr: [1], leader: 1, leaderEpoch: 0, partitionEpoch: 0 },
  ];
  if (unclean !== undefined) records.push({ type: "Config", resourceType: "topic", resourceName: "t", name: "unclean.leader.election.enable", value: unclean });
  return applyAhead(image, records);
}

const part = (image: MetadataImage): PartitionRegistration => image.topicsById.get(TOPIC)!.partitions.get(0)!;

describe("per-topic unclean.leader.election.enable when the only ISR member is fenced", () => {
  it("true on the topic (broker default false) elects a live replica outside the ISR, with a new leader epoch", () => {
    let image = cluster("true");
    image = applyAhead(image, fenceBroker(image, 1, brokerOff).records);
    expect(part(image)).toMatchObject({ leader: 2, isr: [2], leaderEpoch: 1 });
  });

  it("unset on the topic with the broker default false leaves the partition leaderless, broker 1 still its ISR", () => {
    let image = cluster(undefined);
    image = applyAhead(image, fenceBroker(image, 1, brokerOff).records);
    expect(part(image)).toMatchObject({ leader: -1, isr: [1] });
    expect(electLeaderless(image, brokerOff)).toEqual([]);
  });

  it("false on the topic wins over a broker default of true", () => {
    let image = cluster("false");
    image = applyAhead(image, fenceBroker(image, 1, brokerOn).records);
    expect(part(image)).toMatchObject({ leader: -1, isr: [1] });
    expect(electLeaderless(image, brokerOn)).toEqual([]);
  });

  it("a leaderless partition gets an out-of-ISR leader from electLeaderless once the topic says true", () => {
    let image = cluster(undefined);
    image = applyAhead(image, fenceBroker(image, 1, brokerOff).records);
    image = applyAhead(image, [{ type: "Config", resourceType: "topic", resourceName: "t", name: "unclean.leader.election.enable", value: "true" }]);
    const changes = electLeaderless(image, brokerOff);
    expect(changes).toEqual([{ type: "PartitionChange", topicId: TOPIC, partition: 0, leader: 2, isr: [2] }]);
    expect(part(applyAhead(image, changes))).toMatchObject({ leader: 2, isr: [2] });
  });
});

describe("CreateTopics with unclean.leader.election.enable", () => {
  const create = (value: string) =>
    createTopics(
      cluster(undefined),
      { topics: [{ name: "u", numPartitions: 1, replicationFactor: 3, configs: { "unclean.leader.election.enable": value } }], timeoutMs: 1000, validateOnly: false },
      { numPartitions: 1, replicationFactor: 1 },
      new SeededRandom(7),
    );

  it("stores true as a topic Config record", () => {
    const { response, records } = create("true");
    expect(response.topics[0]).toMatchObject({ name: "u", errorCode: 0 });
    expect(records).toContainEqual({ type: "Config", resourceType: "topic", resourceName: "u", name: "unclean.leader.election.enable", value: "true" });
  });

  it("refuses a value that is not true or false with INVALID_CONFIG naming the key", () => {
    const { response, records } = create("maybe");
    expect(response.topics[0]!.errorCode).toBe(ErrorCodes.INVALID_CONFIG.code);
    expect(response.topics[0]!.errorMessage).toContain("unclean.leader.election.enable");
    expect(records).toEqual([]);
  });
});

import { describe, expect, it } from "vitest";
import { ErrorCodes, SeededRandom } from "@flotilla/common";
import { EMPTY_IMAGE, replayAll, type MetadataImage, type MetadataRecord } from "@flotilla/metadata";
import type { CreatableTopic, CreateTopicsRequest } from "@flotilla/protocol";
import { createPartitions, createTopics, deleteTopics, newTopicId } from "./topics.js";

const defaults = { numPartitions: 2, replicationFactor: 1 };
const endpoint = { name: "PLAINTEXT", host: "127.0.0.1", port: 9092 };

/** Brokers 1..n registered; all but `fenced` unfenced. */
function imageWithBrokers(n: number, fenced: number[] = []): MetadataImage {
  const records: MetadataRecord[] = [];
  for (let id = 1; id <= n; id++) {
    records.push({ type: "RegisterBroker", brokerId: id, incarnationId: `inc-${id}`, endpoints: [endpoint], rack: null });
  }
  for (let id = 1; id <= n; id++) {
    if (!fenced.includes(id)) records.push({ type: "UnfenceBroker", brokerId: id, brokerEpoch: id - 1 });
  }
  return apply(EMPTY_IMAGE, records);
}

function apply(image: MetadataImage, records: readonly MetadataRecord[]): MetadataImage {
  return replayAll(image, records.map((record, i) => ({ record, offset: image.offset + 1 + i }))).image;
}

function topic(name: string, overrides: Partial<CreatableTopic> = {}): CreatableTopic {
  return { name, numPartitions: 3, replicationFactor: 1, configs: {}, ...overrides };
}

function request(topics: CreatableTopic[], validateOnly = false): CreateTopicsRequest {
  return { topics, timeoutMs: 1000, validateOnly };
}

describe("createTopics", () => {
  it("emits a Topic record, one Partition record per partition and the config records; replay gives the topic", () => {
    const image = imageWithBrokers(3);
    const { records, response } = createTopics(image, request([topic("orders", { numPartitions: 3, replicationFactor: 2, configs: { "retention.ms": "1000" } })]), defaults, new SeededRandom(1));
    expect(response.topics).toHaveLength(1);
    const result = response.topics[0]!;
    expect(result).toMatchObject({ name: "orders", errorCode: 0, numPartitions: 3, replicationFactor: 2 });
    expect(result.topicId).toMatch(/^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/);
    expect(records.map((r) => r.type)).toEqual(["Topic", "Partition", "Partition", "Partition", "Config"]);
    const next = apply(image, records);
    const t = next.topicsByName.get("orders")!;
    expect(t.topicId).toBe(result.topicId);
    for (const p of t.partitions.values()) {
      expect(p.replicas).toHaveLength(2);
      expect(p.isr).toEqual(p.replicas);
      expect(p.leader).toBe(p.replicas[0]);
      expect(p.leaderEpoch).toBe(0);
    }
    expect(next.configs.topic.get("orders")?.get("retention.ms")).toBe("1000");
  });

  it("-1 means the broker defaults num.partitions and default.replication.factor", () => {
    const { response, records } = createTopics(imageWithBrokers(1), request([topic("t", { numPartitions: -1, replicationFactor: -1 })]), defaults, new SeededRandom(2));
    expect(response.topics[0]).toMatchObject({ errorCode: 0, numPartitions: 2, replicationFactor: 1 });
    expect(records.filter((r) => r.type === "Partition")).toHaveLength(2);
  });

  it("refuses a replication factor above the live brokers, naming both numbers", () => {
    const image = imageWithBrokers(3, [3]);
    const { response, records } = createTopics(image, request([topic("t", { replicationFactor: 3 })]), defaults, new SeededRandom(3));
    expect(records).toEqual([]);
    expect(response.topics[0]!.errorCode).toBe(ErrorCodes.INVALID_REPLICATION_FACTOR.code);
    expect(response.topics[0]!.errorMessage).toMatch(/replication factor 3 .* larger than the 2 available/);
  });

  it.each([
    ["an invalid name", topic("bad name!"), "INVALID_TOPIC_EXCEPTION", /characters other than/],
    ["an empty name", topic(""), "INVALID_TOPIC_EXCEPTION", /empty/],
    ["zero partitions", topic("t", { numPartitions: 0 }), "INVALID_PARTITIONS", /must be positive or -1.*got 0/],
    ["too many partitions", topic("t", { numPartitions: 20_000 }), "INVALID_PARTITIONS", /above the limit of 10000/],
    ["replication factor 0", topic("t", { replicationFactor: 0 }), "INVALID_REPLICATION_FACTOR", /got 0/],
    ["an unknown config", topic("t", { configs: { "retention.msec": "1" } }), "INVALID_CONFIG", /"retention.msec"/],
    ["a bad config value", topic("t", { configs: { "retention.ms": "soon" } }), "INVALID_CONFIG", /retention.ms=soon/],
  ] as const)("refuses %s", (_what, t, code, pattern) => {
    const { response, records } = createTopics(imageWithBrokers(1), request([t]), defaults, new SeededRandom(4));
    expect(records).toEqual([]);
    expect(response.topics[0]!.errorCode).toBe(ErrorCodes[code].code);
    expect(response.topics[0]!.errorMessage).toMatch(pattern);
  });

  it("refuses an existing topic and one colliding by '.' and '_', but creates the others of the request", () => {
    const image = apply(imageWithBrokers(1), createTopics(imageWithBrokers(1), request([topic("a.b")]), defaults, new SeededRandom(5)).records);
    const { response, records } = createTopics(image, request([topic("a.b"), topic("a_b"), topic("c")]), defaults, new SeededRandom(6));
    expect(response.topics.map((t) => t.errorCode)).toEqual([ErrorCodes.TOPIC_ALREADY_EXISTS.code, ErrorCodes.INVALID_TOPIC_EXCEPTION.code, 0]);
    expect(response.topics[1]!.errorMessage).toMatch(/collides with existing topic "a.b"/);
    expect(records.filter((r) => r.type === "Topic").map((r) => (r as { name: string }).name)).toEqual(["c"]);
  });

  it("refuses every copy of a name given twice in one request", () => {
    const { response, records } = createTopics(imageWithBrokers(1), request([topic("x"), topic("x")]), defaults, new SeededRandom(7));
    expect(response.topics.map((t) => t.errorCode)).toEqual([ErrorCodes.INVALID_REQUEST.code, ErrorCodes.INVALID_REQUEST.code]);
    expect(records).toEqual([]);
  });

  it("validateOnly checks and answers but writes nothing", () => {
    const { response, records } = createTopics(imageWithBrokers(1), request([topic("x")], true), defaults, new SeededRandom(8));
    expect(response.topics[0]).toMatchObject({ errorCode: 0, numPartitions: 3, topicId: "" });
    expect(records).toEqual([]);
  });

  it("is deterministic for a given random seed", () => {
    const image = imageWithBrokers(4);
    const a = createTopics(image, request([topic("x", { replicationFactor: 2 })]), defaults, new SeededRandom(9));
    const b = createTopics(image, request([topic("x", { replicationFactor: 2 })]), defaults, new SeededRandom(9));
    expect(a).toEqual(b);
  });
});

describe("newTopicId", () => {
  it("skips ids in use and ids starting with '-'", () => {
    // A random source that first gives all-0xFB bytes (base64url "-_-_..."), then zeros.
    let calls = 0;
    const random = { next: () => 0, int: (lo: number) => (calls++ < 16 ? 0xfb : lo) };
    const zeroId = Buffer.alloc(16).toString("base64url");
    expect(newTopicId(EMPTY_IMAGE, random)).toBe(zeroId);
  });
});

describe("deleteTopics", () => {
  it("removes existing topics and reports unknown and repeated names", () => {
    const base = imageWithBrokers(1);
    const image = apply(base, createTopics(base, request([topic("a"), topic("b")]), defaults, new SeededRandom(10)).records);
    const { response, records } = deleteTopics(image, { names: ["a", "zzz", "b", "b"], timeoutMs: 0 });
    expect(response.results.map((r) => r.errorCode)).toEqual([0, ErrorCodes.UNKNOWN_TOPIC_OR_PARTITION.code, ErrorCodes.INVALID_REQUEST.code, ErrorCodes.INVALID_REQUEST.code]);
    expect(records).toEqual([{ type: "RemoveTopic", topicId: image.topicsByName.get("a")!.topicId }]);
  });
});

describe("createPartitions", () => {
  it("adds partitions after the existing ones with the topic's replication factor", () => {
    const base = imageWithBrokers(3);
    const image = apply(base, createTopics(base, request([topic("a", { numPartitions: 2, replicationFactor: 2 })]), defaults, new SeededRandom(11)).records);
    const { response, records } = createPartitions(image, { topics: [{ name: "a", count: 5 }, { name: "a2", count: 3 }], validateOnly: false }, new SeededRandom(12));
    expect(response.results.map((r) => r.errorCode)).toEqual([0, ErrorCodes.UNKNOWN_TOPIC_OR_PARTITION.code]);
    const next = apply(image, records);
    expect([...next.topicsByName.get("a")!.partitions.keys()]).toEqual([0, 1, 2, 3, 4]);
    expect(next.topicsByName.get("a")!.partitions.get(4)!.replicas).toHaveLength(2);
  });

  it("refuses a count that does not grow the topic", () => {
    const base = imageWithBrokers(1);
    const image = apply(base, createTopics(base, request([topic("a")]), defaults, new SeededRandom(13)).records);
    const { response } = createPartitions(image, { topics: [{ name: "a", count: 3 }], validateOnly: false }, new SeededRandom(14));
    expect(response.results[0]!.errorMessage).toMatch(/has 3 partitions; the new count must be larger, got 3/);
  });
});

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCodes } from "@flotilla/common";
import { decodeBatches, encodeBatch, type CreatePartitionsRequest, type CreatePartitionsResponse } from "@flotilla/protocol";
import { makeDataDir, startTestNode, type TestNode } from "./test-client.js";

const enc = (s: string) => Buffer.from(s, "utf8");

describe("CreatePartitions on a single combined node over gRPC", () => {
  let data: { dir: string; remove: () => Promise<void> };
  let t: TestNode;

  beforeAll(async () => {
    data = await makeDataDir();
    t = await startTestNode(data.dir);
    const created = await t.client.createTopics({ topics: [{ name: "grow", numPartitions: 2, replicationFactor: 1, configs: {} }], timeoutMs: 1000, validateOnly: false });
    expect(created.topics[0]!.errorCode).toBe(0);
  });
  afterAll(async () => {
    await t?.stop();
    await data?.remove();
  });

  const createPartitions = (r: Partial<CreatePartitionsRequest> & Pick<CreatePartitionsRequest, "topics">) =>
    t.client.call<CreatePartitionsRequest, CreatePartitionsResponse>("CreatePartitions", { timeoutMs: 1000, validateOnly: false, ...r });
  const partitionsOf = async (topic: string) => (await t.client.metadata({ topics: [topic], allowAutoTopicCreation: false })).topics[0]!.partitions.map((p) => p.partition).sort((a, b) => a - b);

  it("validate_only checks the request and changes nothing", async () => {
    const res = await createPartitions({ topics: [{ name: "grow", count: 4 }], validateOnly: true });
    expect(res.results).toEqual([{ name: "grow", errorCode: 0, errorMessage: "" }]);
    expect(await partitionsOf("grow")).toEqual([0, 1]);
  });

  it("grows a topic from 2 to 4 partitions; the new ones take records and serve them back", async () => {
    const res = await createPartitions({ topics: [{ name: "grow", count: 4 }] });
    expect(res.results).toEqual([{ name: "grow", errorCode: 0, errorMessage: "" }]);
    const md = await t.client.metadata({ topics: ["grow"], allowAutoTopicCreation: false });
    expect(md.topics[0]!.partitions.map((p) => [p.partition, p.leaderId, p.replicas]).sort((a, b) => (a[0] as number) - (b[0] as number))).toEqual([
      [0, 1, [1]],
      [1, 1, [1]],
      [2, 1, [1]],
      [3, 1, [1]],
    ]);
    for (const partition of [2, 3]) {
      const produced = await t.client.produce({
        acks: -1,
        timeoutMs: 2000,
        topics: [{ name: "grow", partitions: [{ partition, records: encodeBatch([{ key: enc("k"), value: enc(`p${partition}-a`), timestamp: 1 }, { key: enc("k"), value: enc(`p${partition}-b`), timestamp: 2 }]) }] }],
      });
      expect(produced.topics[0]!.partitions[0]).toMatchObject({ partition, errorCode: 0, baseOffset: 0 });
      const fetched = await t.client.fetch({
        replicaId: -1,
        maxWaitMs: 0,
        minBytes: 0,
        maxBytes: 1 << 20,
        topics: [{ name: "grow", partitions: [{ partition, fetchOffset: 0, partitionMaxBytes: 1 << 20, currentLeaderEpoch: -1 }] }],
      });
      const p = fetched.topics[0]!.partitions[0]!;
      expect(p.errorCode).toBe(0);
      expect(decodeBatches(p.records).flatMap((b) => b.records.map((r) => r.value?.toString("utf8")))).toEqual([`p${partition}-a`, `p${partition}-b`]);
    }
  });

  it("refuses a count not above the current one with INVALID_PARTITIONS naming both counts", async () => {
    const res = await createPartitions({ topics: [{ name: "grow", count: 3 }, { name: "grow-same", count: 1 }] });
    expect(res.results[0]!.errorCode).toBe(ErrorCodes.INVALID_PARTITIONS.code);
    expect(res.results[0]!.errorMessage).toMatch(/4 partitions.*got 3/);
    expect(await partitionsOf("grow")).toEqual([0, 1, 2, 3]);
  });

  it("answers UNKNOWN_TOPIC_OR_PARTITION for a missing topic, INVALID_REQUEST for a name given twice, INVALID_REPLICA_ASSIGNMENT for manual assignments, each per topic", async () => {
    const res = await createPartitions({
      topics: [
        { name: "missing", count: 3 },
        { name: "twice", count: 3 },
        { name: "twice", count: 4 },
        { name: "grow", count: 5, assignments: [{ brokerIds: [1] }] },
      ],
    });
    expect(res.results.map((r) => [r.name, r.errorCode])).toEqual([
      ["missing", ErrorCodes.UNKNOWN_TOPIC_OR_PARTITION.code],
      ["twice", ErrorCodes.INVALID_REQUEST.code],
      ["twice", ErrorCodes.INVALID_REQUEST.code],
      ["grow", ErrorCodes.INVALID_REPLICA_ASSIGNMENT.code],
    ]);
    expect(res.results[0]!.errorMessage).toContain('"missing"');
    expect(await partitionsOf("grow")).toEqual([0, 1, 2, 3]);
  });

  it("fails a request with no topics as a whole with INVALID_REQUEST", async () => {
    await expect(createPartitions({ topics: [] })).rejects.toMatchObject({ errorName: "INVALID_REQUEST" });
  });
});

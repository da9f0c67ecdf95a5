import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ErrorCodes, FlotillaError } from "@flotilla/common";
import { ATTR_TIMESTAMP_TYPE, decodeBatches, encodeBatch, type FetchRequest } from "@flotilla/protocol";
import { makeDataDir, startTestNode, type TestNode } from "./test-client.js";

const enc = (s: string) => Buffer.from(s, "utf8");

function batch(values: string[], timestamp = 1_700_000_000_000): Buffer {
  return encodeBatch(values.map((v, i) => ({ key: enc(`k${i}`), value: enc(v), timestamp: timestamp + i })));
}

function fetchRequest(topic: string, partition: number, fetchOffset: number, extra: Partial<FetchRequest> = {}): FetchRequest {
  return {
    replicaId: -1,
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes: 1024 * 1024,
    topics: [{ name: topic, partitions: [{ partition, fetchOffset, partitionMaxBytes: 1024 * 1024, currentLeaderEpoch: -1 }] }],
    ...extra,
  };
}

function values(records: Buffer): string[] {
  return decodeBatches(records).flatMap((b) => b.records.map((r) => r.value?.toString("utf8") ?? ""));
}

async function rejected(p: Promise<unknown>): Promise<FlotillaError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof FlotillaError) return err;
    throw err;
  }
  throw new Error("expected the call to fail");
}

describe("a single combined node over gRPC", () => {
  let data: { dir: string; remove: () => Promise<void> };
  let t: TestNode;

  beforeAll(async () => {
    data = await makeDataDir();
    t = await startTestNode(data.dir);
  });
  afterAll(async () => {
    await t?.stop();
    await data?.remove();
  });

  const produce = (topic: string, partition: number, records: Buffer, acks = 1) =>
    t.client.produce({ acks, timeoutMs: 1000, topics: [{ name: topic, partitions: [{ partition, records }] }] }).then((r) => r.topics[0]!.partitions[0]!);
  const latest = async (topic: string, partition: number) =>
    (await t.client.listOffsets({ replicaId: -1, topics: [{ name: topic, partitions: [{ partition, timestamp: -1 }] }] })).topics[0]!.partitions[0]!.offset;

  it("registers itself: Metadata lists this broker, unfenced, at its real port", async () => {
    const md = await t.client.metadata({ topics: [], allowAutoTopicCreation: false });
    expect(md.controllerId).toBe(1);
    expect(md.clusterId).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(md.brokers).toEqual([{ nodeId: 1, host: "127.0.0.1", port: t.node.port, rack: "", fenced: false }]);
  });

  it("creates a topic with 3 partitions that Metadata and DescribeTopics show led by this broker", async () => {
    const created = await t.client.createTopics({ topics: [{ name: "orders", numPartitions: 3, replicationFactor: 1, configs: { "retention.ms": "3600000" } }], timeoutMs: 1000, validateOnly: false });
    expect(created.topics[0]).toMatchObject({ name: "orders", errorCode: 0, numPartitions: 3, replicationFactor: 1 });
    const md = await t.client.metadata({ topics: ["orders"], allowAutoTopicCreation: false });
    expect(md.topics[0]!.partitions.map((p) => [p.partition, p.leaderId, p.replicas, p.isr])).toEqual([
      [0, 1, [1], [1]],
      [1, 1, [1], [1]],
      [2, 1, [1], [1]],
    ]);
    const described = await t.client.describeTopics({ names: ["orders"] });
    expect(described.topics[0]!.configs["retention.ms"]).toBe("3600000");
    expect(described.topics[0]!.configs["segment.bytes"]).toBe("1073741824");
    expect(described.topics[0]!.overriddenConfigs).toEqual(["retention.ms"]);
  });

  it("produces batches and fetches them back with broker-assigned offsets", async () => {
    const first = await produce("orders", 1, batch(["a", "b", "c"]));
    expect(first).toMatchObject({ errorCode: 0, baseOffset: 0, logStartOffset: 0, logAppendTimeMs: -1 });
    const second = await produce("orders", 1, batch(["d"]));
    expect(second.baseOffset).toBe(3);
    const fetched = (await t.client.fetch(fetchRequest("orders", 1, 0))).topics[0]!.partitions[0]!;
    expect(fetched).toMatchObject({ errorCode: 0, highWatermark: 4, logStartOffset: 0 });
    expect(values(fetched.records)).toEqual(["a", "b", "c", "d"]);
    expect(decodeBatches(fetched.records).map((b) => b.header.baseOffset)).toEqual([0, 3]);
    // From the middle: the whole batch holding offset 3 only.
    expect(values((await t.client.fetch(fetchRequest("orders", 1, 3))).topics[0]!.partitions[0]!.records)).toEqual(["d"]);
  });

  it("a long-poll fetch on an empty partition returns as soon as a produce arrives", async () => {
    const started = performance.now();
    const waiting = t.client.fetch(fetchRequest("orders", 2, 0, { maxWaitMs: 5000, minBytes: 1 }));
    await new Promise((r) => setTimeout(r, 150));
    await produce("orders", 2, batch(["late"]));
    const fetched = (await waiting).topics[0]!.partitions[0]!;
    const elapsed = performance.now() - started;
    expect(values(fetched.records)).toEqual(["late"]);
    expect(elapsed).toBeGreaterThanOrEqual(140);
    expect(elapsed).toBeLessThan(4000);
  });

  it("a long-poll fetch with nothing to read answers empty after max_wait_ms", async () => {
    const started = performance.now();
    const fetched = (await t.client.fetch(fetchRequest("orders", 0, 0, { maxWaitMs: 300, minBytes: 1 }))).topics[0]!.partitions[0]!;
    const elapsed = performance.now() - started;
    expect(fetched.errorCode).toBe(0);
    expect(fetched.records.length).toBe(0);
    expect(elapsed).toBeGreaterThanOrEqual(280);
    expect(elapsed).toBeLessThan(3000);
  });

  it("max_bytes still returns one whole batch, and bounds the rest", async () => {
    await t.client.createTopics({ topics: [{ name: "sized", numPartitions: 1, replicationFactor: 1, configs: {} }], timeoutMs: 0, validateOnly: false });
    for (let i = 0; i < 3; i++) await produce("sized", 0, batch([`v${i}`.repeat(50)]));
    const one = (await t.client.fetch(fetchRequest("sized", 0, 0, { maxBytes: 10 }))).topics[0]!.partitions[0]!;
    expect(values(one.records)).toHaveLength(1);
    const all = (await t.client.fetch(fetchRequest("sized", 0, 0))).topics[0]!.partitions[0]!;
    expect(values(all.records)).toHaveLength(3);
  });

  it("lists earliest, latest, by-timestamp and max-timestamp offsets", async () => {
    await t.client.createTopics({ topics: [{ name: "times", numPartitions: 1, replicationFactor: 1, configs: {} }], timeoutMs: 0, validateOnly: false });
    await produce("times", 0, batch(["a", "b"], 1000)); // offsets 0-1, timestamps 1000-1001
    await produce("times", 0, batch(["c"], 5000)); // offset 2
    await produce("times", 0, batch(["d"], 3000)); // offset 3
    const res = await t.client.listOffsets({
      replicaId: -1,
      topics: [{ name: "times", partitions: [-2, -1, -3, 2000, 9999].map((timestamp) => ({ partition: 0, timestamp })) }],
    });
    expect(res.topics[0]!.partitions.map((p) => [p.errorCode, p.offset, p.timestamp])).toEqual([
      [0, 0, -1],
      [0, 4, -1],
      [0, 2, 5000],
      [0, 2, 5000],
      [0, -1, -1],
    ]);
  });

  it("stamps LogAppendTime on topics that ask for it", async () => {
    await t.client.createTopics({ topics: [{ name: "stamped", numPartitions: 1, replicationFactor: 1, configs: { "message.timestamp.type": "LogAppendTime" } }], timeoutMs: 0, validateOnly: false });
    const before = Date.now();
    const res = await produce("stamped", 0, batch(["x"], 42));
    expect(res.logAppendTimeMs).toBeGreaterThanOrEqual(before);
    const fetched = (await t.client.fetch(fetchRequest("stamped", 0, 0))).topics[0]!.partitions[0]!;
    const [decoded] = decodeBatches(fetched.records);
    expect(decoded!.header.attributes & ATTR_TIMESTAMP_TYPE).toBe(ATTR_TIMESTAMP_TYPE);
    expect(decoded!.records[0]!.timestamp).toBe(res.logAppendTimeMs);
  });

  it("deletes a topic and removes its partition directories", async () => {
    await t.client.createTopics({ topics: [{ name: "doomed", numPartitions: 2, replicationFactor: 1, configs: {} }], timeoutMs: 0, validateOnly: false });
    await produce("doomed", 0, batch(["x"]));
    expect(existsSync(path.join(data.dir, "doomed-0"))).toBe(true);
    const res = await t.client.deleteTopics({ names: ["doomed"], timeoutMs: 1000 });
    expect(res.results).toEqual([{ name: "doomed", errorCode: 0, errorMessage: "" }]);
    expect(readdirSync(data.dir).filter((n) => n.startsWith("doomed"))).toEqual([]);
    const md = await t.client.metadata({ topics: ["doomed"], allowAutoTopicCreation: false });
    expect(md.topics[0]!.errorCode).toBe(ErrorCodes.UNKNOWN_TOPIC_OR_PARTITION.code);
    expect((await produce("doomed", 0, batch(["y"]))).errorCode).toBe(ErrorCodes.UNKNOWN_TOPIC_OR_PARTITION.code);
  });

  it("auto-creates a topic named in Metadata when the client allows it", async () => {
    const md = await t.client.metadata({ topics: ["auto-made"], allowAutoTopicCreation: true });
    expect(md.topics[0]).toMatchObject({ name: "auto-made", errorCode: 0 });
    expect(md.topics[0]!.partitions).toHaveLength(1);
    const without = await t.client.metadata({ topics: ["not-made"], allowAutoTopicCreation: false });
    expect(without.topics[0]!.errorCode).toBe(ErrorCodes.UNKNOWN_TOPIC_OR_PARTITION.code);
  });

  describe("errors", () => {
    it("unknown topic or partition on produce, fetch and list offsets", async () => {
      expect((await produce("nope", 0, batch(["x"]))).errorCode).toBe(ErrorCodes.UNKNOWN_TOPIC_OR_PARTITION.code);
      expect((await produce("orders", 9, batch(["x"]))).errorMessage).toMatch(/partition 9 of topic "orders"/);
      expect((await t.client.fetch(fetchRequest("nope", 0, 0))).topics[0]!.partitions[0]!.errorCode).toBe(ErrorCodes.UNKNOWN_TOPIC_OR_PARTITION.code);
      const lo = await t.client.listOffsets({ replicaId: -1, topics: [{ name: "nope", partitions: [{ partition: 0, timestamp: -1 }] }] });
      expect(lo.topics[0]!.partitions[0]!.errorCode).toBe(ErrorCodes.UNKNOWN_TOPIC_OR_PARTITION.code);
    });

    it("an invalid topic name", async () => {
      const res = await t.client.createTopics({ topics: [{ name: "bad/name", numPartitions: 1, replicationFactor: 1, configs: {} }], timeoutMs: 0, validateOnly: false });
      expect(res.topics[0]!.errorCode).toBe(ErrorCodes.INVALID_TOPIC_EXCEPTION.code);
    });

    it("a replication factor larger than the brokers, naming both numbers", async () => {
      const res = await t.client.createTopics({ topics: [{ name: "wide", numPartitions: 1, replicationFactor: 3, configs: {} }], timeoutMs: 0, validateOnly: false });
      expect(res.topics[0]!.errorCode).toBe(ErrorCodes.INVALID_REPLICATION_FACTOR.code);
      expect(res.topics[0]!.errorMessage).toMatch(/replication factor 3 .*the 1 available/);
    });

    it("an oversized batch is refused naming both sizes and leaves the log unchanged", async () => {
      await t.client.createTopics({ topics: [{ name: "small", numPartitions: 1, replicationFactor: 1, configs: { "max.message.bytes": "200" } }], timeoutMs: 0, validateOnly: false });
      await produce("small", 0, batch(["ok"]));
      const big = batch(["x".repeat(500)]);
      const res = await produce("small", 0, big);
      expect(res.errorCode).toBe(ErrorCodes.MESSAGE_TOO_LARGE.code);
      expect(res.errorMessage).toContain(`record batch of ${big.length} bytes`);
      expect(res.errorMessage).toContain("max.message.bytes 200");
      expect(await latest("small", 0)).toBe(1);
    });

    it("a corrupt or truncated batch is refused and leaves the log unchanged", async () => {
      const before = await latest("orders", 0);
      const corrupt = batch(["a", "b"]);
      corrupt.writeUInt8(corrupt.readUInt8(corrupt.length - 1) ^ 0xff, corrupt.length - 1);
      const res = await produce("orders", 0, corrupt);
      expect(res.errorCode).toBe(ErrorCodes.CORRUPT_MESSAGE.code);
      expect(res.errorMessage).toMatch(/CRC32C/);
      // A good batch followed by a cut-short one: nothing of the request is appended.
      const good = batch(["good"]);
      const res2 = await produce("orders", 0, Buffer.concat([good, batch(["c"]).subarray(0, 40)]));
      expect(res2.errorCode).toBe(ErrorCodes.BATCH_TRUNCATED.code);
      expect(await latest("orders", 0)).toBe(before);
    });

    it("acks other than 0, 1 and -1", async () => {
      expect((await produce("orders", 0, batch(["x"]), 2)).errorCode).toBe(ErrorCodes.INVALID_REQUIRED_ACKS.code);
    });

    it("a fetch offset outside the log", async () => {
      const res = (await t.client.fetch(fetchRequest("orders", 1, 100))).topics[0]!.partitions[0]!;
      expect(res.errorCode).toBe(ErrorCodes.OFFSET_OUT_OF_RANGE.code);
      expect(res.errorMessage).toMatch(/fetch offset 100 of orders-1 is outside \[0, 4\]/);
    });

    it("malformed requests fail as a whole with INVALID_REQUEST naming the field", async () => {
      expect((await rejected(t.client.fetch(fetchRequest("orders", 0, 0, { maxBytes: -1 })))).message).toMatch(/INVALID_REQUEST.*max_bytes must be a non-negative integer/);
      expect((await rejected(t.client.fetch({ ...fetchRequest("orders", 0, 0), topics: [] }))).message).toMatch(/topics is empty/);
      const err = await rejected(t.client.produce({ acks: 1, timeoutMs: 0, topics: [] }));
      expect(err.errorName).toBe("INVALID_REQUEST");
      expect(err.message).toMatch(/topics is empty/);
      expect((await rejected(t.client.deleteTopics({ names: [], timeoutMs: 0 }))).message).toMatch(/names is empty/);
    });
  });
});

describe("restarting a node", () => {
  const stops: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const stop of stops.splice(0).reverse()) await stop();
  });

  it("keeps topics and data on the same dirs", async () => {
    const data = await makeDataDir();
    stops.push(data.remove);
    const first = await startTestNode(data.dir);
    stops.push(first.stop);
    await first.client.createTopics({ topics: [{ name: "kept", numPartitions: 2, replicationFactor: 1, configs: { "retention.ms": "86400000" } }], timeoutMs: 0, validateOnly: false });
    await first.client.produce({ acks: -1, timeoutMs: 0, topics: [{ name: "kept", partitions: [{ partition: 1, records: batch(["one", "two"]) }] }] });
    const clusterId = first.node.clusterId;
    const topicId = (await first.client.metadata({ topics: ["kept"], allowAutoTopicCreation: false })).topics[0]!.topicId;
    await first.stop();
    expect(existsSync(path.join(data.dir, "kept-1", ".clean-shutdown"))).toBe(true);

    const second = await startTestNode(data.dir);
    stops.push(second.stop);
    expect(second.node.clusterId).toBe(clusterId);
    const md = await second.client.metadata({ topics: ["kept"], allowAutoTopicCreation: false });
    expect(md.topics[0]).toMatchObject({ errorCode: 0, topicId });
    expect(md.brokers[0]).toMatchObject({ nodeId: 1, port: second.node.port, fenced: false });
    const fetched = (await second.client.fetch(fetchRequest("kept", 1, 0))).topics[0]!.partitions[0]!;
    expect(values(fetched.records)).toEqual(["one", "two"]);
    expect(fetched.highWatermark).toBe(2);
    const produced = await second.client.produce({ acks: 1, timeoutMs: 0, topics: [{ name: "kept", partitions: [{ partition: 1, records: batch(["three"]) }] }] });
    expect(produced.topics[0]!.partitions[0]!.baseOffset).toBe(2);
    expect((await second.client.describeTopics({ names: ["kept"] })).topics[0]!.configs["retention.ms"]).toBe("86400000");
  });

  it("refuses log dirs that belong to another node", async () => {
    const data = await makeDataDir();
    stops.push(data.remove);
    const first = await startTestNode(data.dir);
    await first.stop();
    await expect(startTestNode(data.dir, { "node.id": "2" })).rejects.toThrow(/belongs to node 1 .*node.id is 2/);
  });
});

describe("auto-creation", () => {
  it("answers with the reason a topic could not be auto-created", async () => {
    const data = await makeDataDir();
    const t = await startTestNode(data.dir, { "default.replication.factor": "3" });
    try {
      const md = await t.client.metadata({ topics: ["wanted"], allowAutoTopicCreation: true });
      expect(md.topics[0]!.errorCode).toBe(ErrorCodes.INVALID_REPLICATION_FACTOR.code);
      expect(md.topics[0]!.errorMessage).toMatch(/replication factor 3/);
    } finally {
      await t.stop();
      await data.remove();
    }
  });

  it("creates nothing when auto.create.topics.enable is false", async () => {
    const data = await makeDataDir();
    const t = await startTestNode(data.dir, { "auto.create.topics.enable": "false" });
    try {
      const md = await t.client.metadata({ topics: ["wanted"], allowAutoTopicCreation: true });
      expect(md.topics[0]!.errorCode).toBe(ErrorCodes.UNKNOWN_TOPIC_OR_PARTITION.code);
      expect((await t.client.describeTopics({ names: [] })).topics).toEqual([]);
    } finally {
      await t.stop();
      await data.remove();
    }
  });
});

describe("retention", () => {
  it("runs every log.retention.check.interval.ms and moves the log start offset", async () => {
    const data = await makeDataDir();
    const t = await startTestNode(data.dir, { "log.retention.check.interval.ms": "100" });
    try {
      await t.client.createTopics({
        topics: [{ name: "short", numPartitions: 1, replicationFactor: 1, configs: { "segment.bytes": "1024", "retention.bytes": "1024" } }],
        timeoutMs: 0,
        validateOnly: false,
      });
      // Batches of ~600 bytes: each fills a segment of its own.
      for (let i = 0; i < 5; i++) {
        const res = await t.client.produce({ acks: 1, timeoutMs: 0, topics: [{ name: "short", partitions: [{ partition: 0, records: batch(["x".repeat(520)]) }] }] });
        expect(res.topics[0]!.partitions[0]!.errorCode).toBe(0);
      }
      const earliest = async () =>
        (await t.client.listOffsets({ replicaId: -1, topics: [{ name: "short", partitions: [{ partition: 0, timestamp: -2 }] }] })).topics[0]!.partitions[0]!.offset;
      let start = await earliest();
      for (let i = 0; i < 50 && start === 0; i++) {
        await new Promise((r) => setTimeout(r, 100));
        start = await earliest();
      }
      expect(start).toBeGreaterThan(0);
      const fetched = (await t.client.fetch(fetchRequest("short", 0, 0))).topics[0]!.partitions[0]!;
      expect(fetched.errorCode).toBe(ErrorCodes.OFFSET_OUT_OF_RANGE.code);
      expect(fetched.logStartOffset).toBe(start);
    } finally {
      await t.stop();
      await data.remove();
    }
  });
});

describe("closing a node", () => {
  it("answers a parked fetch at once and finishes well within the grace period", async () => {
    const data = await makeDataDir();
    try {
      const t = await startTestNode(data.dir);
      try {
        await t.client.createTopics({ topics: [{ name: "idle", numPartitions: 1, replicationFactor: 1, configs: {} }], timeoutMs: 0, validateOnly: false });
        const parked = t.client.fetch(fetchRequest("idle", 0, 0, { maxWaitMs: 20_000, minBytes: 1 }));
        await new Promise((r) => setTimeout(r, 100));
        const started = performance.now();
        await t.node.close();
        const fetched = (await parked).topics[0]!.partitions[0]!;
        expect(fetched.errorCode).toBe(0);
        expect(fetched.records.length).toBe(0);
        expect(performance.now() - started).toBeLessThan(3000);
        expect(existsSync(path.join(data.dir, "idle-0", ".clean-shutdown"))).toBe(true);
      } finally {
        await t.stop();
      }
    } finally {
      await data.remove();
    }
  });
});

/**
 * The data-path Kafka handlers against a real combined node (controller, broker, partition
 * logs in a temp dir), reached through its gRPC Broker service: the same BrokerApi calls
 * the gRPC edge serves, so these tests see the real validation, idempotence and errors.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "@flotilla/common/logger";
import { decodeBatches, encodeBatch, type BrokerApi, type CreatePartitionsRequest, type CreatePartitionsResponse, type InitProducerIdRequest, type InitProducerIdResponse } from "@flotilla/protocol";
import {
  KafkaConfigResourceType,
  KafkaConfigSource,
  KafkaConfigType,
  type KafkaApiSpec,
  type KafkaCreateTopicsRequest,
  type KafkaCreateTopicsResponse,
  type KafkaDeleteTopicsResponse,
  type KafkaDescribeConfigsRequest,
  type KafkaDescribeConfigsResponse,
  type KafkaFetchRequest,
  type KafkaFetchResponse,
  type KafkaInitProducerIdResponse,
  type KafkaListOffsetsResponse,
  type KafkaMetadataResponse,
  type KafkaProduceRequest,
  type KafkaProduceResponse,
} from "@flotilla/protocol/kafka";
import { makeDataDir, startTestNode, type TestNode } from "../../test-client.js";
import type { KafkaHandler, KafkaRequestContext } from "../handler.js";
import { dataHandlers } from "./data.js";

const enc = (s: string) => Buffer.from(s, "utf8");
const BROKER_CONFIGS = { "log.retention.hours": "168", "log.retention.ms": "604800000", "log.segment.bytes": "1073741824", "num.partitions": "1", "ssl.keystore.password": "hunter2" };

describe("Kafka data-path handlers on a combined node", () => {
  let data: { dir: string; remove: () => Promise<void> };
  let t: TestNode;
  let handlers: Map<string, KafkaHandler>;

  beforeAll(async () => {
    data = await makeDataDir();
    t = await startTestNode(data.dir);
    const c = t.client;
    const broker: BrokerApi = {
      produce: c.produce,
      fetch: c.fetch,
      listOffsets: c.listOffsets,
      metadata: c.metadata,
      createTopics: c.createTopics,
      deleteTopics: c.deleteTopics,
      describeTopics: c.describeTopics,
      createPartitions: (r) => c.call<CreatePartitionsRequest, CreatePartitionsResponse>("CreatePartitions", r),
      initProducerId: (r) => c.call<InitProducerIdRequest, InitProducerIdResponse>("InitProducerId", r),
    };
    handlers = new Map(dataHandlers({ broker, brokerConfigs: () => BROKER_CONFIGS, nodeId: t.node.nodeId, logger: silentLogger() }).map((h) => [h.spec.name, h]));
    const created = await c.createTopics({ topics: [{ name: "orders", numPartitions: 2, replicationFactor: 1, configs: { "retention.ms": "3600000" } }], timeoutMs: 5000, validateOnly: false });
    expect(created.topics[0]!.errorCode).toBe(0);
  }, 30_000);
  afterAll(async () => {
    await t?.stop();
    await data?.remove();
  });

  const ctx = (apiVersion: number): KafkaRequestContext => ({ apiVersion, correlationId: 1, clientId: "test", clientHost: "/127.0.0.1", signal: new AbortController().signal });
  async function call<Req, Res>(spec: KafkaApiSpec<Req, Res>, version: number, req: Req): Promise<Res | undefined> {
    const h = handlers.get(spec.name) as KafkaHandler<Req, Res> | undefined;
    if (!h) throw new Error(`no handler for ${spec.name}`);
    expect(version).toBeGreaterThanOrEqual(h.spec.minVersion);
    expect(version).toBeLessThanOrEqual(h.spec.maxVersion);
    return h.handle(req, ctx(version));
  }
  const spec = <Req, Res>(name: string) => handlers.get(name)!.spec as KafkaApiSpec<Req, Res>;
  const produceSpec = () => spec<KafkaProduceRequest, KafkaProduceResponse>("Produce");
  const fetchSpec = () => spec<KafkaFetchRequest, KafkaFetchResponse>("Fetch");

  const produce = (partition: number, records: Buffer | null, extra: Partial<KafkaProduceRequest> = {}) =>
    call(produceSpec(), 8, { transactionalId: null, acks: 1, timeoutMs: 5000, topics: [{ name: "orders", partitions: [{ index: partition, records }] }], ...extra });
  const fetchReq = (partition: number, fetchOffset: number, extra: Partial<KafkaFetchRequest> = {}): KafkaFetchRequest => ({
    replicaId: -1,
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes: 1 << 20,
    isolationLevel: 0,
    sessionId: 0,
    sessionEpoch: -1,
    topics: [{ topic: "orders", partitions: [{ partition, currentLeaderEpoch: -1, fetchOffset, logStartOffset: -1, partitionMaxBytes: 1 << 20 }] }],
    forgottenTopics: [],
    rackId: "",
    ...extra,
  });

  it("serves one handler per data-path API", () => {
    expect([...handlers.keys()].sort()).toEqual(["CreateTopics", "DeleteTopics", "DescribeConfigs", "Fetch", "InitProducerId", "ListOffsets", "Metadata", "Produce"]);
  });

  it("Metadata: null = all topics, [] = none, brokers with the node's address, controller and cluster ids", async () => {
    const m = spec<{ topics: string[] | null; allowAutoTopicCreation: boolean; includeClusterAuthorizedOperations: boolean; includeTopicAuthorizedOperations: boolean }, KafkaMetadataResponse>("Metadata");
    const all = (await call(m, 8, { topics: null, allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false }))!;
    expect(all.brokers).toEqual([{ nodeId: t.node.nodeId, host: "127.0.0.1", port: t.node.port, rack: null }]);
    expect(all.controllerId).toBe(t.node.nodeId);
    expect(all.clusterId).toBe(t.node.clusterId);
    const orders = all.topics.find((x) => x.name === "orders")!;
    expect(orders.errorCode).toBe(0);
    expect(orders.isInternal).toBe(false);
    expect(orders.topicAuthorizedOperations).toBe(-2147483648);
    expect(orders.partitions.map((p) => [p.partitionIndex, p.errorCode, p.leaderId, p.leaderEpoch, p.replicaNodes, p.isrNodes, p.offlineReplicas])).toEqual([
      [0, 0, 1, 0, [1], [1], []],
      [1, 0, 1, 0, [1], [1], []],
    ]);
    const none = (await call(m, 8, { topics: [], allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false }))!;
    expect(none.topics).toEqual([]);
    expect(none.brokers).toHaveLength(1);
  });

  it("Metadata: an unknown topic is UNKNOWN_TOPIC_OR_PARTITION without auto-creation and is created with it", async () => {
    const m = spec<{ topics: string[] | null; allowAutoTopicCreation: boolean; includeClusterAuthorizedOperations: boolean; includeTopicAuthorizedOperations: boolean }, KafkaMetadataResponse>("Metadata");
    const missing = (await call(m, 4, { topics: ["nope"], allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false }))!;
    expect(missing.topics.map((x) => [x.name, x.errorCode, x.partitions.length])).toEqual([["nope", 3, 0]]);
    const auto = (await call(m, 4, { topics: ["auto-made"], allowAutoTopicCreation: true, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false }))!;
    expect(auto.topics.map((x) => [x.name, x.errorCode, x.partitions.length])).toEqual([["auto-made", 0, 1]]);
  });

  it("Produce acks=1 appends the client's batch unchanged; Fetch returns those bytes with HW = last stable offset", async () => {
    const batch = encodeBatch([
      { key: enc("k1"), value: enc("v1"), timestamp: 1000, headers: [{ key: "h", value: enc("x") }] },
      { key: enc("k2"), value: enc("v2"), timestamp: 1001 },
    ]);
    const res = (await produce(0, batch))!;
    expect(res.topics).toEqual([{ name: "orders", partitions: [{ index: 0, errorCode: 0, baseOffset: 0, logAppendTimeMs: -1, logStartOffset: 0, recordErrors: [], errorMessage: null }] }]);
    const f = (await call(fetchSpec(), 11, fetchReq(0, 0, { isolationLevel: 1 })))!;
    expect(f.errorCode).toBe(0);
    expect(f.sessionId).toBe(0);
    const p = f.topics[0]!.partitions[0]!;
    expect([p.partitionIndex, p.errorCode, p.highWatermark, p.lastStableOffset, p.logStartOffset, p.preferredReadReplica]).toEqual([0, 0, 2, 2, 0, -1]);
    expect(p.abortedTransactions).toEqual([]);
    // The stored batch differs from the client's only where the broker stamps it: base offset 0
    // and the leader epoch; payload and records are the client's bytes.
    const [stored] = decodeBatches(p.records!);
    expect(stored!.records.map((r) => [r.key?.toString(), r.value?.toString(), r.headers.map((h) => h.key)])).toEqual([
      ["k1", "v1", ["h"]],
      ["k2", "v2", []],
    ]);
    expect(p.records!.subarray(61).equals(batch.subarray(61))).toBe(true);
  });

  it("Produce acks=0 answers nothing and still appends", async () => {
    const before = (await call(fetchSpec(), 11, fetchReq(1, 0)))!.topics[0]!.partitions[0]!.highWatermark;
    expect(await produce(1, encodeBatch([{ key: null, value: enc("fire-and-forget"), timestamp: 5 }]), { acks: 0 })).toBeUndefined();
    const after = (await call(fetchSpec(), 11, fetchReq(1, 0)))!.topics[0]!.partitions[0]!;
    expect(after.highWatermark).toBe(before + 1);
    expect(await produce(1, null, { acks: 0 })).toBeUndefined();
  });

  it("Produce acks=0 closes the connection when a partition fails (as Kafka, so the producer refreshes metadata) and not when it succeeds", async () => {
    const closes: string[] = [];
    const h = handlers.get("Produce") as KafkaHandler<KafkaProduceRequest, KafkaProduceResponse>;
    const withClose = { ...ctx(8), closeConnection: (reason: string) => closes.push(reason) };
    const ok: KafkaProduceRequest = { transactionalId: null, acks: 0, timeoutMs: 5000, topics: [{ name: "orders", partitions: [{ index: 1, records: encodeBatch([{ key: null, value: enc("ok"), timestamp: 5 }]) }] }] };
    expect(await h.handle(ok, withClose)).toBeUndefined();
    expect(closes).toEqual([]);
    const unknownPartition: KafkaProduceRequest = { ...ok, topics: [{ name: "orders", partitions: [{ index: 9, records: encodeBatch([{ key: null, value: enc("x"), timestamp: 5 }]) }] }] };
    expect(await h.handle(unknownPartition, withClose)).toBeUndefined();
    expect(closes).toHaveLength(1);
    expect(closes[0]).toMatch(/orders-9/);
  });

  it("Produce acks=0 answers nothing even when the broker call fails as a whole (acks=1 then throws for the error response)", async () => {
    const failing = { produce: () => Promise.reject(new Error("broker gone")) } as unknown as BrokerApi;
    const [h] = dataHandlers({ broker: failing, brokerConfigs: () => ({}), nodeId: 1, logger: silentLogger() }).filter((x) => x.spec.name === "Produce");
    const req: KafkaProduceRequest = { transactionalId: null, acks: 0, timeoutMs: 1, topics: [{ name: "t", partitions: [{ index: 0, records: Buffer.alloc(1) }] }] };
    const closes: string[] = [];
    expect(await h!.handle(req, { ...ctx(8), closeConnection: (reason) => closes.push(reason) })).toBeUndefined();
    expect(closes).toEqual([expect.stringMatching(/broker gone/)]);
    await expect(h!.handle({ ...req, acks: 1 }, ctx(8))).rejects.toThrow(/broker gone/);
  });

  it("Produce refuses a transactional producer, a corrupt batch and an unknown partition, per partition, with Kafka codes", async () => {
    const tx = (await produce(0, encodeBatch([{ key: null, value: enc("x"), timestamp: 1 }]), { transactionalId: "tx-1" }))!;
    expect(tx.topics[0]!.partitions[0]!.errorCode).toBe(42);
    expect(tx.topics[0]!.partitions[0]!.errorMessage).toMatch(/transactional/);
    const corrupt = encodeBatch([{ key: null, value: enc("x"), timestamp: 1 }]);
    corrupt.writeUInt8(corrupt.readUInt8(corrupt.length - 1) ^ 0xff, corrupt.length - 1);
    expect((await produce(0, corrupt))!.topics[0]!.partitions[0]!.errorCode).toBe(2); // CORRUPT_MESSAGE
    expect((await produce(7, encodeBatch([{ key: null, value: enc("x"), timestamp: 1 }])))!.topics[0]!.partitions[0]!.errorCode).toBe(3);
    expect((await produce(0, null))!.topics[0]!.partitions[0]!.errorCode).not.toBe(0);
  });

  it("Produce v0-v2 (advertised for librdkafka's compression check) answers UNSUPPORTED_FOR_MESSAGE_FORMAT and appends nothing", async () => {
    const before = (await call(fetchSpec(), 11, fetchReq(0, 0)))!.topics[0]!.partitions[0]!.highWatermark;
    for (const version of [0, 1, 2]) {
      const res = (await call(produceSpec(), version, { transactionalId: null, acks: 1, timeoutMs: 5000, topics: [{ name: "orders", partitions: [{ index: 0, records: encodeBatch([{ key: null, value: enc("old"), timestamp: 1 }]) }] }] }))!;
      expect(res.topics[0]!.partitions[0]!.errorCode).toBe(43);
    }
    expect((await call(fetchSpec(), 11, fetchReq(0, 0)))!.topics[0]!.partitions[0]!.highWatermark).toBe(before);
  });

  it("InitProducerId gives an idempotent producer an id whose retried batch is deduplicated; a transactional id is refused", async () => {
    const ip = spec<{ transactionalId: string | null; transactionTimeoutMs: number }, KafkaInitProducerIdResponse>("InitProducerId");
    const got = (await call(ip, 1, { transactionalId: null, transactionTimeoutMs: 60000 }))!;
    expect(got.errorCode).toBe(0);
    expect(got.producerId).toBeGreaterThanOrEqual(0);
    expect(got.producerEpoch).toBe(0);
    const batch = encodeBatch([{ key: enc("a"), value: enc("once"), timestamp: 1 }], { producerId: got.producerId, producerEpoch: 0, baseSequence: 0 });
    const first = (await produce(1, Buffer.from(batch)))!.topics[0]!.partitions[0]!;
    const retry = (await produce(1, Buffer.from(batch)))!.topics[0]!.partitions[0]!;
    expect(first.errorCode).toBe(0);
    expect(retry).toMatchObject({ errorCode: 0, baseOffset: first.baseOffset });
    const tx = (await call(ip, 0, { transactionalId: "tx", transactionTimeoutMs: 60000 }))!;
    expect(tx).toMatchObject({ errorCode: 42, producerId: -1 });
  });

  it("Fetch: declines sessions (id 0 for a new one, 70 for an unknown id, 71 for a bad epoch), answers out-of-range offsets, and long-polls up to max_wait_ms", async () => {
    const fresh = (await call(fetchSpec(), 7, fetchReq(0, 0, { sessionEpoch: 0 })))!;
    expect([fresh.errorCode, fresh.sessionId, fresh.topics[0]!.partitions[0]!.errorCode]).toEqual([0, 0, 0]);
    expect(await call(fetchSpec(), 7, fetchReq(0, 0, { sessionId: 5, sessionEpoch: 1 }))).toMatchObject({ errorCode: 70, topics: [] });
    expect(await call(fetchSpec(), 7, fetchReq(0, 0, { sessionEpoch: 3 }))).toMatchObject({ errorCode: 71, topics: [] });
    const far = (await call(fetchSpec(), 11, fetchReq(0, 1000)))!.topics[0]!.partitions[0]!;
    expect([far.errorCode, far.records!.length]).toEqual([1, 0]);
    const hw = (await call(fetchSpec(), 11, fetchReq(0, 0)))!.topics[0]!.partitions[0]!.highWatermark;
    const started = performance.now();
    const waited = (await call(fetchSpec(), 11, fetchReq(0, hw, { maxWaitMs: 300, minBytes: 1 })))!.topics[0]!.partitions[0]!;
    expect(performance.now() - started).toBeGreaterThanOrEqual(250);
    expect([waited.errorCode, waited.records!.length]).toEqual([0, 0]);
    expect(await call(fetchSpec(), 11, fetchReq(0, 0, { topics: [] }))).toEqual({ throttleTimeMs: 0, errorCode: 0, sessionId: 0, topics: [] });
    // current_leader_epoch goes to the broker, which fences a newer one than its own (0).
    const epochReq = fetchReq(0, 0);
    epochReq.topics[0]!.partitions[0]!.currentLeaderEpoch = 4;
    expect((await call(fetchSpec(), 11, epochReq))!.topics[0]!.partitions[0]!.errorCode).toBe(75);
    epochReq.topics[0]!.partitions[0]!.currentLeaderEpoch = 0;
    expect((await call(fetchSpec(), 11, epochReq))!.topics[0]!.partitions[0]!.errorCode).toBe(0);
  });

  it("ListOffsets: earliest, latest (the HW) and the leader epoch; a newer current_leader_epoch is UNKNOWN_LEADER_EPOCH", async () => {
    const lo = spec<{ replicaId: number; isolationLevel: number; topics: { name: string; partitions: { partitionIndex: number; currentLeaderEpoch: number; timestamp: number }[] }[] }, KafkaListOffsetsResponse>("ListOffsets");
    const hw = (await call(fetchSpec(), 11, fetchReq(0, 0)))!.topics[0]!.partitions[0]!.highWatermark;
    const res = (await call(lo, 5, { replicaId: -1, isolationLevel: 1, topics: [{ name: "orders", partitions: [{ partitionIndex: 0, currentLeaderEpoch: 0, timestamp: -2 }, { partitionIndex: 0, currentLeaderEpoch: -1, timestamp: -1 }, { partitionIndex: 0, currentLeaderEpoch: 4, timestamp: -1 }] }] }))!;
    expect(res.topics[0]!.partitions).toEqual([
      { partitionIndex: 0, errorCode: 0, timestamp: -1, offset: 0, leaderEpoch: 0 },
      { partitionIndex: 0, errorCode: 0, timestamp: -1, offset: hw, leaderEpoch: 0 },
      { partitionIndex: 0, errorCode: 75, timestamp: -1, offset: -1, leaderEpoch: -1 },
    ]);
  });

  it("CreateTopics: broker defaults for -1, validate_only creates nothing, per-topic errors for duplicates, assignments, null configs and existing topics", async () => {
    const ct = spec<KafkaCreateTopicsRequest, KafkaCreateTopicsResponse>("CreateTopics");
    const topic = (name: string, extra: Partial<KafkaCreateTopicsRequest["topics"][number]> = {}) => ({ name, numPartitions: -1, replicationFactor: -1, assignments: [], configs: [], ...extra });
    const dry = (await call(ct, 4, { topics: [topic("dry")], timeoutMs: 5000, validateOnly: true }))!;
    expect(dry.topics).toEqual([{ name: "dry", errorCode: 0, errorMessage: null }]);
    const res = (await call(ct, 4, {
      topics: [
        topic("made", { configs: [{ name: "cleanup.policy", value: "compact" }] }),
        topic("twice"),
        topic("twice"),
        topic("placed", { assignments: [{ partitionIndex: 0, brokerIds: [1] }] }),
        topic("nulled", { configs: [{ name: "retention.ms", value: null }] }),
        topic("orders"),
        topic("bad", { configs: [{ name: "no.such.key", value: "1" }] }),
      ],
      timeoutMs: 5000,
      validateOnly: false,
    }))!;
    expect(res.topics.map((x) => [x.name, x.errorCode])).toEqual([
      ["made", 0],
      ["twice", 42],
      ["twice", 42],
      ["placed", 39],
      ["nulled", 40],
      ["orders", 36],
      ["bad", 40],
    ]);
    expect(res.topics[5]!.errorMessage).toContain("orders");
    const md = await t.client.metadata({ topics: [], allowAutoTopicCreation: false });
    const names = md.topics.map((x) => x.name);
    expect(names).toContain("made");
    expect(names).not.toContain("dry");
    expect(names).not.toContain("twice");
  });

  it("DeleteTopics deletes, answers UNKNOWN_TOPIC_OR_PARTITION for a missing topic and INVALID_REQUEST for a name given twice", async () => {
    await t.client.createTopics({ topics: [{ name: "doomed", numPartitions: 1, replicationFactor: 1, configs: {} }], timeoutMs: 5000, validateOnly: false });
    const dt = spec<{ topicNames: string[]; timeoutMs: number }, KafkaDeleteTopicsResponse>("DeleteTopics");
    const res = (await call(dt, 3, { topicNames: ["doomed", "ghost", "x2", "x2"], timeoutMs: 5000 }))!;
    expect(res.responses).toEqual([
      { name: "doomed", errorCode: 0 },
      { name: "ghost", errorCode: 3 },
      { name: "x2", errorCode: 42 },
      { name: "x2", errorCode: 42 },
    ]);
    const md = await t.client.metadata({ topics: [], allowAutoTopicCreation: false });
    expect(md.topics.map((x) => x.name)).not.toContain("doomed");
  });

  it("DescribeConfigs: topic overrides are DYNAMIC_TOPIC_CONFIG, the rest DEFAULT_CONFIG; broker configs are static, read-only, sensitive ones hidden", async () => {
    const dc = spec<KafkaDescribeConfigsRequest, KafkaDescribeConfigsResponse>("DescribeConfigs");
    const res = (await call(dc, 3, {
      resources: [
        { resourceType: KafkaConfigResourceType.TOPIC, resourceName: "orders", configurationKeys: ["retention.ms", "segment.bytes"] },
        { resourceType: KafkaConfigResourceType.BROKER, resourceName: String(t.node.nodeId), configurationKeys: null },
        { resourceType: KafkaConfigResourceType.BROKER, resourceName: "99", configurationKeys: null },
        { resourceType: KafkaConfigResourceType.TOPIC, resourceName: "ghost", configurationKeys: null },
        { resourceType: 16, resourceName: "x", configurationKeys: null },
      ],
      includeSynonyms: true,
      includeDocumentation: true,
    }))!;
    const [topic, broker, otherBroker, ghost, other] = res.results;
    expect(topic!.errorCode).toBe(0);
    expect(topic!.configs).toEqual([
      { name: "retention.ms", value: "3600000", readOnly: false, isDefault: false, configSource: KafkaConfigSource.DYNAMIC_TOPIC_CONFIG, isSensitive: false, synonyms: [{ name: "retention.ms", value: "3600000", source: 1 }, { name: "log.retention.ms", value: "604800000", source: KafkaConfigSource.DEFAULT_CONFIG }], configType: KafkaConfigType.LONG, documentation: null },
      {
        name: "segment.bytes",
        value: "1073741824",
        readOnly: false,
        isDefault: true,
        configSource: KafkaConfigSource.DEFAULT_CONFIG,
        isSensitive: false,
        synonyms: [{ name: "log.segment.bytes", value: "1073741824", source: KafkaConfigSource.DEFAULT_CONFIG }],
        configType: KafkaConfigType.INT,
        documentation: null,
      },
    ]);
    expect(broker!.errorCode).toBe(0);
    expect(broker!.configs.map((c) => [c.name, c.value, c.readOnly, c.configSource, c.isSensitive, c.configType])).toEqual([
      ["log.retention.hours", "168", true, 4, false, KafkaConfigType.INT],
      ["log.retention.ms", "604800000", true, 4, false, KafkaConfigType.LONG],
      ["log.segment.bytes", "1073741824", true, 4, false, KafkaConfigType.INT],
      ["num.partitions", "1", true, 4, false, KafkaConfigType.INT],
      ["ssl.keystore.password", null, true, 4, true, KafkaConfigType.UNKNOWN],
    ]);
    expect([otherBroker!.errorCode, ghost!.errorCode, other!.errorCode]).toEqual([42, 3, 42]);
    expect(ghost!.errorMessage).toBe('UNKNOWN_TOPIC_OR_PARTITION: topic "ghost" does not exist');
  });
});

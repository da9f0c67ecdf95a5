/**
 * The data-path codecs against an independent implementation of the same wire format:
 * kafkajs's own per-version request encoders and response decoders (a real client's code,
 * used here as a reference). Every version kafkajs implements inside our served ranges is
 * checked: a request kafkajs encodes decodes to what it meant, and a response we encode
 * decodes in kafkajs to what we meant. Real clients only ever negotiate the highest common
 * version; this covers the others.
 */
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { decodeBatches, encodeBatch } from "../../batch/records.js";
import { KafkaReader, KafkaWriter } from "../wire.js";
import type { KafkaApiSpec } from "../api.js";
import { createTopicsApi } from "./create-topics.js";
import { deleteTopicsApi } from "./delete-topics.js";
import { describeConfigsApi } from "./describe-configs.js";
import { fetchApi } from "./fetch.js";
import { initProducerIdApi } from "./init-producer-id.js";
import { listOffsetsApi } from "./list-offsets.js";
import { KAFKA_AUTHORIZED_OPERATIONS_OMITTED, metadataApi } from "./metadata.js";
import { produceApi } from "./produce.js";

const require = createRequire(import.meta.url);

interface KjsRequest {
  apiKey: number;
  apiVersion: number;
  encode(): Promise<{ buffer: Buffer }>;
}
interface KjsModule {
  request: (args: Record<string, unknown>) => KjsRequest;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  decode: (raw: Buffer) => Promise<any>;
}

function kafkajs(api: string, version: number): KjsModule {
  const request = require(`kafkajs/src/protocol/requests/${api}/v${version}/request`) as KjsModule["request"];
  const response = require(`kafkajs/src/protocol/requests/${api}/v${version}/response`) as { decode: KjsModule["decode"] };
  return { request, decode: response.decode };
}

/** A request kafkajs encodes, decoded by our codec (which must consume it exactly). */
async function decodeTheirs<Req>(spec: KafkaApiSpec<Req, unknown>, m: KjsModule, version: number, args: Record<string, unknown>): Promise<Req> {
  const req = m.request(args);
  expect([req.apiKey, req.apiVersion]).toEqual([spec.apiKey, version]);
  const r = new KafkaReader((await req.encode()).buffer);
  const decoded = spec.decodeRequest(r, version);
  expect(r.remaining).toBe(0);
  return decoded;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function encodeOurs<Res>(spec: KafkaApiSpec<unknown, Res>, m: KjsModule, version: number, res: Res): Promise<any> {
  const w = new KafkaWriter();
  spec.encodeResponse(w, version, res);
  return m.decode(w.toBuffer());
}

const range = (lo: number, hi: number) => Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);

describe("data-path codecs against kafkajs's encoders and decoders", () => {
  for (const v of range(3, 7)) {
    it(`Produce v${v}`, async () => {
      const m = kafkajs("produce", v);
      const req = await decodeTheirs(produceApi, m, v, {
        acks: -1,
        timeout: 30000,
        topicData: [{ topic: "orders", partitions: [{ partition: 2, firstSequence: 0, messages: [{ key: "k1", value: "v1", headers: { h: "x" }, timestamp: 1700000000000 }] }] }],
      });
      expect([req.transactionalId, req.acks, req.timeoutMs, req.topics[0]!.name, req.topics[0]!.partitions[0]!.index]).toEqual([null, -1, 30000, "orders", 2]);
      const [batch] = decodeBatches(req.topics[0]!.partitions[0]!.records!);
      expect(batch!.records.map((r) => [r.key?.toString(), r.value?.toString(), r.headers.map((h) => [h.key, h.value?.toString()]), r.timestamp])).toEqual([["k1", "v1", [["h", "x"]], 1700000000000]]);

      const decoded = await encodeOurs(produceApi, m, v, {
        throttleTimeMs: 0,
        topics: [{ name: "orders", partitions: [{ index: 2, errorCode: 0, baseOffset: 42, logAppendTimeMs: -1, logStartOffset: 7, recordErrors: [], errorMessage: null }] }],
      });
      expect(decoded.topics).toEqual([{ topicName: "orders", partitions: [{ partition: 2, errorCode: 0, baseOffset: "42", logAppendTime: "-1", ...(v >= 5 ? { logStartOffset: "7" } : {}) }] }]);
      expect(decoded.throttleTime).toBe(0);
    });
  }

  for (const v of range(4, 11)) {
    it(`Fetch v${v}`, async () => {
      const m = kafkajs("fetch", v);
      const req = await decodeTheirs(fetchApi, m, v, {
        replicaId: -1,
        maxWaitTime: 500,
        minBytes: 1,
        maxBytes: 10485760,
        isolationLevel: 1,
        topics: [{ topic: "orders", partitions: [{ partition: 1, fetchOffset: "17", maxBytes: 1048576, currentLeaderEpoch: 3, logStartOffset: "-1" }] }],
      });
      expect(req).toMatchObject({ replicaId: -1, maxWaitMs: 500, minBytes: 1, maxBytes: 10485760, isolationLevel: 1, sessionId: 0, sessionEpoch: -1 });
      expect(req.topics).toEqual([{ topic: "orders", partitions: [{ partition: 1, currentLeaderEpoch: v >= 9 ? 3 : -1, fetchOffset: 17, logStartOffset: -1, partitionMaxBytes: 1048576 }] }]);

      const records = encodeBatch([{ key: Buffer.from("k"), value: Buffer.from("v".repeat(2000)), timestamp: 1700000000000 }], { baseOffset: 17 });
      const decoded = await encodeOurs(fetchApi, m, v, {
        throttleTimeMs: 0,
        errorCode: 0,
        sessionId: 0,
        topics: [{ topic: "orders", partitions: [{ partitionIndex: 1, errorCode: 0, highWatermark: 18, lastStableOffset: 18, logStartOffset: 3, abortedTransactions: [], preferredReadReplica: -1, records }] }],
      });
      if (v >= 7) expect([decoded.errorCode, decoded.sessionId]).toEqual([0, 0]);
      const p = decoded.responses[0].partitions[0];
      expect(decoded.responses[0].topicName).toBe("orders");
      expect([p.partition, p.errorCode, p.highWatermark, p.lastStableOffset, p.abortedTransactions]).toEqual([1, 0, "18", "18", []]);
      if (v >= 11) expect(p.preferredReadReplica).toBe(-1);
      expect(p.messages.map((x: { offset: string; key: Buffer; value: Buffer }) => [x.offset, x.key.toString(), x.value.length])).toEqual([["17", "k", 2000]]);
    });
  }

  for (const v of range(1, 3)) {
    it(`ListOffsets v${v}`, async () => {
      const m = kafkajs("listOffsets", v);
      const req = await decodeTheirs(listOffsetsApi, m, v, { replicaId: -1, isolationLevel: 1, topics: [{ topic: "orders", partitions: [{ partition: 0, timestamp: -2 }] }] });
      expect(req).toEqual({ replicaId: -1, isolationLevel: v >= 2 ? 1 : 0, topics: [{ name: "orders", partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp: -2 }] }] });
      const decoded = await encodeOurs(listOffsetsApi, m, v, { throttleTimeMs: 0, topics: [{ name: "orders", partitions: [{ partitionIndex: 0, errorCode: 0, timestamp: -1, offset: 5, leaderEpoch: 2 }] }] });
      expect(decoded.responses).toEqual([{ topic: "orders", partitions: [{ partition: 0, errorCode: 0, timestamp: "-1", offset: "5" }] }]);
    });
  }

  for (const v of range(0, 6)) {
    it(`Metadata v${v}`, async () => {
      const m = kafkajs("metadata", v);
      const req = await decodeTheirs(metadataApi, m, v, { topics: ["a", "b"], allowAutoTopicCreation: false });
      expect(req.topics).toEqual(["a", "b"]);
      expect(req.allowAutoTopicCreation).toBe(v >= 4 ? false : true);
      const decoded = await encodeOurs(metadataApi, m, v, {
        throttleTimeMs: 0,
        brokers: [{ nodeId: 1, host: "127.0.0.1", port: 9092, rack: "r1" }],
        clusterId: "cluster",
        controllerId: 1,
        topics: [{ errorCode: 0, name: "a", isInternal: false, partitions: [{ errorCode: 0, partitionIndex: 0, leaderId: 1, leaderEpoch: 4, replicaNodes: [1, 2], isrNodes: [1], offlineReplicas: [2] }], topicAuthorizedOperations: KAFKA_AUTHORIZED_OPERATIONS_OMITTED }],
        clusterAuthorizedOperations: KAFKA_AUTHORIZED_OPERATIONS_OMITTED,
      });
      expect(decoded.brokers).toEqual([{ nodeId: 1, host: "127.0.0.1", port: 9092, ...(v >= 1 ? { rack: "r1" } : {}) }]);
      if (v >= 1) expect(decoded.controllerId).toBe(1);
      if (v >= 2) expect(decoded.clusterId).toBe("cluster");
      expect(decoded.topicMetadata).toEqual([
        {
          topicErrorCode: 0,
          topic: "a",
          ...(v >= 1 ? { isInternal: false } : {}),
          partitionMetadata: [{ partitionErrorCode: 0, partitionId: 0, leader: 1, replicas: [1, 2], isr: [1], ...(v >= 5 ? { offlineReplicas: [2] } : {}) }],
        },
      ]);
    });
  }

  for (const v of range(0, 3)) {
    it(`CreateTopics v${v}`, async () => {
      const m = kafkajs("createTopics", v);
      const req = await decodeTheirs(createTopicsApi, m, v, {
        topics: [{ topic: "t", numPartitions: 3, replicationFactor: 2, replicaAssignment: [], configEntries: [{ name: "retention.ms", value: "1000" }] }],
        validateOnly: true,
        timeout: 5000,
      });
      expect(req).toEqual({
        topics: [{ name: "t", numPartitions: 3, replicationFactor: 2, assignments: [], configs: [{ name: "retention.ms", value: "1000" }] }],
        timeoutMs: 5000,
        validateOnly: v >= 1,
      });
      const decoded = await encodeOurs(createTopicsApi, m, v, { throttleTimeMs: 0, topics: [{ name: "t", errorCode: 36, errorMessage: "exists" }] });
      expect(decoded.topicErrors).toEqual([{ topic: "t", errorCode: 36, ...(v >= 1 ? { errorMessage: "exists" } : {}) }]);
    });
  }

  for (const v of range(0, 1)) {
    it(`DeleteTopics v${v}`, async () => {
      const m = kafkajs("deleteTopics", v);
      expect(await decodeTheirs(deleteTopicsApi, m, v, { topics: ["a", "b"], timeout: 3000 })).toEqual({ topicNames: ["a", "b"], timeoutMs: 3000 });
      const decoded = await encodeOurs(deleteTopicsApi, m, v, { throttleTimeMs: 0, responses: [{ name: "a", errorCode: 0 }, { name: "b", errorCode: 3 }] });
      expect(decoded.topicErrors).toEqual([
        { topic: "a", errorCode: 0 },
        { topic: "b", errorCode: 3 },
      ]);
    });
  }

  for (const v of range(0, 1)) {
    it(`InitProducerId v${v}`, async () => {
      const m = kafkajs("initProducerId", v);
      expect(await decodeTheirs(initProducerIdApi, m, v, { transactionTimeout: 60000 })).toEqual({ transactionalId: null, transactionTimeoutMs: 60000 });
      const decoded = await encodeOurs(initProducerIdApi, m, v, { throttleTimeMs: 0, errorCode: 0, producerId: 4096, producerEpoch: 0 });
      expect(decoded).toMatchObject({ throttleTime: 0, errorCode: 0, producerId: "4096", producerEpoch: 0 });
    });
  }

  for (const v of range(0, 2)) {
    it(`DescribeConfigs v${v}`, async () => {
      const m = kafkajs("describeConfigs", v);
      const req = await decodeTheirs(describeConfigsApi, m, v, {
        resources: [
          { type: 2, name: "orders", configNames: ["retention.ms"] },
          // kafkajs writes an empty list as a null array ("every key").
          { type: 4, name: "1", configNames: [] },
        ],
        includeSynonyms: true,
      });
      expect(req).toEqual({
        resources: [
          { resourceType: 2, resourceName: "orders", configurationKeys: ["retention.ms"] },
          { resourceType: 4, resourceName: "1", configurationKeys: null },
        ],
        includeSynonyms: v >= 1,
        includeDocumentation: false,
      });
      const decoded = await encodeOurs(describeConfigsApi, m, v, {
        throttleTimeMs: 0,
        results: [
          {
            errorCode: 0,
            errorMessage: null,
            resourceType: 2,
            resourceName: "orders",
            configs: [{ name: "retention.ms", value: "1000", readOnly: false, isDefault: false, configSource: 1, isSensitive: false, synonyms: [{ name: "retention.ms", value: "1000", source: 1 }], configType: 5, documentation: null }],
          },
        ],
      });
      expect(decoded.resources).toHaveLength(1);
      const r = decoded.resources[0];
      expect([r.errorCode, r.resourceType, r.resourceName]).toEqual([0, 2, "orders"]);
      expect(r.configEntries).toHaveLength(1);
      expect(r.configEntries[0]).toMatchObject({ configName: "retention.ms", configValue: "1000", readOnly: false, isSensitive: false, ...(v >= 1 ? { configSource: 1 } : { isDefault: false }) });
      if (v >= 1) expect(r.configEntries[0].configSynonyms).toEqual([{ configName: "retention.ms", configValue: "1000", configSource: 1 }]);
    });
  }
});

/**
 * kafkajs (a real, unmodified Kafka client) against a 3-node Flotilla cluster over the Kafka
 * wire protocol on the brokers' ordinary client port:
 * - the admin creates a topic (partitions, replication factor, a config entry), lists it,
 *   fetches its metadata and its config, and deletes it; leaders are spread over the nodes,
 *   so the producers below must route each partition's batch to its own leader from the
 *   Metadata answer;
 * - an idempotent producer gets a producer id and writes each record once, in order;
 * - the producer sends keyed records with headers with acks -1, with acks 1 and as a gzip
 *   batch; a consumer group reads every record back with its key, value, headers, timestamp
 *   and offset intact, and each key sits in the partition Kafka's murmur2 partitioner names;
 *   the admin's ListOffsets (latest, and by timestamp) agrees with what was written;
 * - an idempotent producer keeps writing, each record once, across the SIGKILL of a
 *   partition leader.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CompressionTypes, ConfigResourceTypes, Partitioners, type IHeaders, type Kafka, type RecordMetadata } from "kafkajs";
import { Consumer } from "../../packages/client/src/index.js";
import { partitionForKey } from "../../packages/protocol/src/index.js";
import { startCombinedCluster, type CombinedCluster } from "../helpers/combined-cluster.js";
import { consumeWithKafkajs, newKafkajs } from "./helpers.js";

const PARTITIONS = 3;
const REPLICATION_FACTOR = 3;

let cluster: CombinedCluster | undefined;
let kafka: Kafka;

beforeAll(async () => {
  cluster = await startCombinedCluster({ name: "kafkajs", nodes: 3 });
  kafka = newKafkajs(cluster.bootstrap(), "flotilla-kafkajs-test");
}, 180_000);

afterAll(async () => {
  await cluster?.destroy();
}, 60_000);

function theCluster(): CombinedCluster {
  if (!cluster) throw new Error("cluster did not start");
  return cluster;
}

/**
 * Creates the test topic with kafkajs and waits until every partition's leader serves it.
 * kafkajs's waitForLeaders only waits for the Metadata answer to name leaders, which can run
 * ahead of the leader itself taking the partition (as in Kafka); a produce in that window
 * gets UNKNOWN_TOPIC_OR_PARTITION for one partition, and kafkajs's non-idempotent producer
 * then resends the broker's whole request, duplicating the partitions that had succeeded.
 * A successful ListOffsets (sent to each leader) closes the window.
 */
async function createTopicWithKafkajs(topic: string): Promise<boolean> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const created = await admin.createTopics({
      waitForLeaders: true,
      timeout: 30_000,
      topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: REPLICATION_FACTOR, configEntries: [{ name: "retention.ms", value: "3600000" }] }],
    });
    await theCluster().waitFor("every partition leader to serve the new topic", async () => (await admin.fetchTopicOffsets(topic)).length === PARTITIONS, 30_000);
    return created;
  } finally {
    await admin.disconnect();
  }
}

describe("kafkajs against a 3-node Flotilla cluster", () => {
  it("admin creates a topic with partitions, replication factor and a config entry, then lists, describes and reads its config", async () => {
    const c = theCluster();
    const topic = "kafkajs-admin";
    expect(await createTopicWithKafkajs(topic)).toBe(true);
    // kafkajs answers false (not an error) for a topic that already exists; it also logs the
    // TOPIC_ALREADY_EXISTS response at error level, which shows in the test output.
    expect(await createTopicWithKafkajs(topic)).toBe(false);

    const admin = kafka.admin();
    await admin.connect();
    try {
      expect(await admin.listTopics()).toContain(topic);

      // The ISR fills as followers catch up; the metadata must show all three replicas in it soon.
      const meta = await c.waitFor(
        "every replica in the ISR",
        async () => {
          const m = await admin.fetchTopicMetadata({ topics: [topic] });
          const t = m.topics[0];
          return t && t.partitions.every((p) => p.isr.length === REPLICATION_FACTOR) ? t : undefined;
        },
        30_000,
      );
      expect(meta.name).toBe(topic);
      const partitions = [...meta.partitions].sort((a, b) => a.partitionId - b.partitionId);
      expect(partitions.map((p) => p.partitionId)).toEqual([0, 1, 2]);
      for (const p of partitions) {
        expect(p.partitionErrorCode).toBe(0);
        expect([...p.replicas].sort()).toEqual([1, 2, 3]);
        expect(p.replicas).toContain(p.leader);
      }
      // Placement spreads leaders over the brokers, so clients must route by partition.
      expect(new Set(partitions.map((p) => p.leader)).size).toBeGreaterThan(1);

      // The same topic as the gRPC side sees it: same leaders, same factor, the config entry applied.
      const described = await c.describeTopic(topic);
      expect(described.replicationFactor).toBe(REPLICATION_FACTOR);
      expect(described.configs["retention.ms"]).toBe("3600000");
      expect(described.partitions.map((p) => p.leader)).toEqual(partitions.map((p) => p.leader));

      const configs = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ["retention.ms"] }],
      });
      const resource = configs.resources[0];
      expect(resource?.errorCode).toBe(0);
      expect(resource?.configEntries.find((e) => e.configName === "retention.ms")?.configValue).toBe("3600000");

      await admin.deleteTopics({ topics: [topic], timeout: 30_000 });
      await c.waitFor("the deleted topic to leave the topic list", async () => !(await admin.listTopics()).includes(topic), 30_000);
    } finally {
      await admin.disconnect();
    }
  }, 120_000);

  it("an idempotent producer (InitProducerId, producer id and sequences) writes each record once, in order", async () => {
    const topic = "kafkajs-idempotent";
    expect(await createTopicWithKafkajs(topic)).toBe(true);
    // kafkajs warns that bounded retries may break exactly-once; they stay bounded so a
    // broken broker fails the test instead of hanging it.
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
    await producer.connect();
    const sends = 4;
    const perSend = 6;
    try {
      for (let s = 0; s < sends; s++) {
        const metas = await producer.send({
          topic,
          // kafkajs requires acks -1 with idempotence.
          acks: -1,
          messages: Array.from({ length: perSend }, (_, i) => ({ key: `same-key-${i % 2}`, value: `send ${s} record ${i}` })),
        });
        for (const m of metas) expect(m.errorCode).toBe(0);
      }
    } finally {
      await producer.disconnect();
    }
    const consumed = await consumeWithKafkajs(kafka, { topic, groupId: "kafkajs-idempotent-readers", count: sends * perSend, timeoutMs: 60_000 });
    const values = consumed.map((c) => c.message.value?.toString());
    expect(new Set(values).size).toBe(sends * perSend);
    // Per key (one partition each), records come back in send order.
    for (const key of ["same-key-0", "same-key-1"]) {
      const ofKey = consumed.filter((c) => c.message.key?.toString() === key).sort((a, b) => Number(a.message.offset) - Number(b.message.offset));
      const expected: string[] = [];
      for (let s = 0; s < sends; s++) for (let i = 0; i < perSend; i++) if (`same-key-${i % 2}` === key) expected.push(`send ${s} record ${i}`);
      expect(ofKey.map((c) => c.message.value?.toString())).toEqual(expected);
      expect(new Set(ofKey.map((c) => c.partition)).size).toBe(1);
    }
  }, 120_000);

  it("producer sends keyed records with headers (acks -1, acks 1, a gzip batch) and a consumer group reads them back intact", async () => {
    const topic = "kafkajs-roundtrip";
    expect(await createTopicWithKafkajs(topic)).toBe(true);

    interface Sent {
      id: string;
      send: number;
      key: Buffer | null;
      value: Buffer | null;
      headers: Record<string, Buffer>;
      timestamp: string;
    }
    const baseTimestampMs = Date.now() - 60_000;
    const sent: Sent[] = [];
    const make = (send: number, i: number, key: string | null, value: string | Buffer | null, extra: Record<string, Buffer> = {}): Sent => {
      const id = `${send}-${i}`;
      const s: Sent = {
        id,
        send,
        key: key === null ? null : Buffer.from(key, "utf8"),
        value: value === null ? null : Buffer.isBuffer(value) ? value : Buffer.from(value, "utf8"),
        headers: { id: Buffer.from(id), ...extra },
        timestamp: String(baseTimestampMs + send * 1000 + i),
      };
      sent.push(s);
      return s;
    };
    const sends: { acks: number; compression: CompressionTypes; messages: Sent[] }[] = [
      {
        acks: -1,
        compression: CompressionTypes.None,
        messages: Array.from({ length: 12 }, (_, i) => make(0, i, `key-${i}`, `value ${i} ✓`, { source: Buffer.from("acks-all") })),
      },
      {
        acks: 1,
        compression: CompressionTypes.None,
        messages: [
          ...Array.from({ length: 10 }, (_, i) => make(1, i, `leader-only-${i}`, Buffer.from([0, 1, 2, 0xff, 0xfe, i]), { bin: Buffer.from([0xc3, 0x28, 0x00, i]) })),
          make(1, 10, null, "no key"),
          make(1, 11, "tombstone", null),
          make(1, 12, "", ""),
        ],
      },
      {
        acks: -1,
        compression: CompressionTypes.GZIP,
        messages: Array.from({ length: 30 }, (_, i) => make(2, i, `gz-${i % 4}`, `compressible ${"abc".repeat(50)} ${i}`, { codec: Buffer.from("gzip") })),
      },
    ];

    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
    await producer.connect();
    const acked: RecordMetadata[][] = [];
    try {
      for (const s of sends) {
        acked.push(
          await producer.send({
            topic,
            acks: s.acks,
            compression: s.compression,
            timeout: 30_000,
            messages: s.messages.map((m) => ({ key: m.key, value: m.value, headers: m.headers as IHeaders, timestamp: m.timestamp })),
          }),
        );
      }
    } finally {
      await producer.disconnect();
    }
    for (const metas of acked) for (const m of metas) expect(m.errorCode).toBe(0);

    const consumed = await consumeWithKafkajs(kafka, { topic, groupId: "kafkajs-roundtrip-readers", count: sent.length, timeoutMs: 60_000 });
    const byId = new Map(consumed.map((c) => [c.message.headers?.id?.toString(), c]));
    expect(byId.size).toBe(sent.length);

    for (const s of sent) {
      const got = byId.get(s.id);
      expect(got, `record ${s.id}`).toBeDefined();
      if (!got) continue;
      expect(got.topic).toBe(topic);
      expect(got.message.key, `key of ${s.id}`).toEqual(s.key);
      expect(got.message.value, `value of ${s.id}`).toEqual(s.value);
      expect(got.message.timestamp, `timestamp of ${s.id}`).toBe(s.timestamp);
      expect(got.message.headers, `headers of ${s.id}`).toEqual(s.headers);
      // Kafka's murmur2 partitioner (kafkajs's DefaultPartitioner) placed every keyed record.
      if (s.key !== null) expect(got.partition, `partition of ${s.id}`).toBe(partitionForKey(s.key, PARTITIONS));
    }

    // Offsets: within one send, the records of a partition sit at the acknowledged base
    // offset and after it, in send order.
    sends.forEach((s, sendIndex) => {
      for (const meta of acked[sendIndex] ?? []) {
        const inPartition = s.messages.filter((m) => byId.get(m.id)?.partition === meta.partition);
        expect(inPartition.length).toBeGreaterThan(0);
        const offsets = inPartition.map((m) => Number(byId.get(m.id)?.message.offset));
        const base = Number(meta.baseOffset);
        expect(offsets, `offsets of send ${sendIndex} in partition ${meta.partition}`).toEqual(inPartition.map((_, i) => base + i));
      }
      const partitionsAcked = new Set((acked[sendIndex] ?? []).map((m) => m.partition));
      for (const m of s.messages) expect(partitionsAcked.has(byId.get(m.id)?.partition ?? -1)).toBe(true);
    });

    // ListOffsets through the admin agrees: every partition's high watermark counts its records.
    const admin = kafka.admin();
    await admin.connect();
    try {
      const offsets = await admin.fetchTopicOffsets(topic);
      const total = offsets.reduce((n, o) => n + Number(o.high) - Number(o.low), 0);
      expect(total).toBe(sent.length);
      for (const o of offsets) expect(Number(o.high)).toBe(consumed.filter((c) => c.partition === o.partition).length);

      // ListOffsets by timestamp: the first record at or after the second send's first
      // timestamp is, in each partition, where the second send's batch begins.
      const byTime = await admin.fetchTopicOffsetsByTimestamp(topic, baseTimestampMs + 1000);
      for (const meta of acked[1] ?? []) {
        expect(byTime.find((o) => o.partition === meta.partition)?.offset, `offset at time in partition ${meta.partition}`).toBe(String(meta.baseOffset));
      }
    } finally {
      await admin.disconnect();
    }
  }, 180_000);

  // Runs last: it kills a node (the cluster is destroyed after it).
  it("an idempotent producer rides through the SIGKILL of a partition leader: new leaders from Metadata, every record once", async () => {
    const c = theCluster();
    const topic = "kafkajs-failover";
    expect(await createTopicWithKafkajs(topic)).toBe(true);
    // Its own client, silent: the refused connections to the dead node are expected. Retries
    // cover about 40 s, well past the 3 s broker session timeout that moves the leaders.
    const producer = newKafkajs(c.bootstrap(), "flotilla-kafkajs-failover", { silent: true }).producer({
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
      allowAutoTopicCreation: false,
      retry: { retries: 16, initialRetryTime: 200, maxRetryTime: 3_000 },
    });
    await producer.connect();
    const keys = Array.from({ length: 12 }, (_, i) => `failover-${i}`);
    const values: string[] = [];
    try {
      const send = async (round: number): Promise<void> => {
        const messages = keys.map((key) => ({ key, value: `${key} round ${round}` }));
        values.push(...messages.map((m) => m.value));
        const metas = await producer.send({ topic, acks: -1, timeout: 30_000, messages });
        for (const m of metas) expect(m.errorCode).toBe(0);
      };
      await send(0);
      const before = await c.describeTopic(topic);
      const victim = before.partitions[0]!.leader;
      await c.stop(victim, "SIGKILL");
      // The dead node's partitions get new leaders once its session times out; kafkajs sees
      // connection errors and NOT_LEADER_OR_FOLLOWER, refreshes metadata and resends.
      await send(1);
      await send(2);
      const after = await c.describeTopic(topic);
      for (const p of after.partitions) expect(p.leader, `leader of partition ${p.partition} after the kill`).not.toBe(victim);
    } finally {
      await producer.disconnect();
    }
    // Read back with Flotilla's consumer (no group coordinator involved), from the survivors.
    const consumer = new Consumer({ bootstrapServers: c.nodeIds.filter((id) => c.isRunning(id)).map((id) => c.address(id)).join(","), autoOffsetReset: "earliest", fetchMaxWaitMs: 200 });
    const got: string[] = [];
    try {
      await consumer.assign([{ topic }]);
      const deadline = Date.now() + 30_000;
      while (got.length < values.length && Date.now() < deadline) got.push(...(await consumer.poll({ timeoutMs: 500 })).map((r) => r.value?.toString() ?? "null"));
      got.push(...(await consumer.poll({ timeoutMs: 300 })).map((r) => r.value?.toString() ?? "null"));
    } finally {
      await consumer.close();
    }
    expect([...got].sort()).toEqual([...values].sort());
  }, 150_000);
});

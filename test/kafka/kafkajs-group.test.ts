/**
 * kafkajs consumer groups (a real, unmodified Kafka client) against a real Flotilla node:
 *
 * 1. Two `consumer.run({ eachMessage })` members of one group split a 4-partition topic:
 *    once the group settles, each member's assignment (kafkajs's GROUP_JOIN event) is
 *    non-empty, the two are disjoint and together cover every partition, and kafkajs's
 *    admin.describeGroups shows the group Stable with both members.
 * 2. 40 records produced after that (10 per partition) are all consumed, each by the member
 *    that owns its partition, with its own value.
 * 3. Offsets are committed after every message (autoCommitThreshold 1); the test waits
 *    until admin.fetchOffsets shows the end of every partition, then both members leave.
 * 4. The node restarts (SIGTERM, start on the same data). admin.fetchOffsets still shows
 *    them; 8 records produced now (2 per partition) are the only ones a new member of the
 *    same group reads (fromBeginning applies only where nothing is committed), so no record
 *    from before the restart is read again.
 *
 * And one group mixing both kinds of client: a kafkajs member and Flotilla's GroupConsumer
 * (gRPC) share a group, with a kafkajs leader assigning to the Flotilla member and then a
 * Flotilla leader assigning to a kafkajs member. This works because the broker passes
 * subscriptions and assignments through as opaque bytes and both clients write Kafka's
 * consumer protocol layouts; they need an assignor name in common, so the kafkajs members
 * offer kafkajs's round-robin assignor under Kafka's name "roundrobin".
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PartitionAssigners, Partitioners, type Consumer, type Kafka, type PartitionAssigner } from "kafkajs";
import { GroupConsumer } from "../../packages/client/src/index.js";
import { startCombinedCluster, type CombinedCluster } from "../helpers/combined-cluster.js";
import { newKafkajs } from "./helpers.js";

const TOPIC = "kafkajs-group";
const GROUP = "kafkajs-group-g";
const PARTITIONS = 4;
const PER_PARTITION_BEFORE = 10;
const PER_PARTITION_AFTER = 2;
const WAIT_MS = 60_000;

let cluster: CombinedCluster | undefined;
const consumers: Consumer[] = [];
const flotillaConsumers: GroupConsumer[] = [];

beforeAll(async () => {
  cluster = await startCombinedCluster({
    name: "kafkajs-group",
    nodes: 1,
    overrides: ["default.replication.factor=1", "offsets.topic.num.partitions=3", "offsets.topic.replication.factor=1", "group.initial.rebalance.delay.ms=0"],
  });
}, 120_000);

afterAll(async () => {
  await Promise.all([...consumers, ...flotillaConsumers].map((c) => c.disconnect().catch(() => undefined)));
  await cluster?.destroy();
}, 60_000);

function theCluster(): CombinedCluster {
  if (!cluster) throw new Error("cluster did not start");
  return cluster;
}

interface Consumed {
  member: string;
  partition: number;
  offset: number;
  value: string;
}

/** A group member that records what it consumes and its latest assignment. */
async function startMember(
  kafka: Kafka,
  member: string,
  consumed: Consumed[],
  assignments: Map<string, number[]>,
  options: { groupId?: string; topic?: string; partitionAssigners?: PartitionAssigner[] } = {},
): Promise<Consumer> {
  const topic = options.topic ?? TOPIC;
  const consumer = kafka.consumer({
    groupId: options.groupId ?? GROUP,
    sessionTimeout: 10_000,
    rebalanceTimeout: 10_000,
    heartbeatInterval: 500,
    maxWaitTimeInMs: 200,
    ...(options.partitionAssigners ? { partitionAssigners: options.partitionAssigners } : {}),
  });
  consumers.push(consumer);
  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    assignments.set(member, [...(e.payload.memberAssignment[topic] ?? [])].sort((a, b) => a - b));
  });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    autoCommitThreshold: 1,
    eachMessage: async ({ partition, message }) => {
      consumed.push({ member, partition, offset: Number(message.offset), value: message.value?.toString("utf8") ?? "" });
    },
  });
  return consumer;
}

async function produce(kafka: Kafka, perPartition: number, tag: string, topic = TOPIC): Promise<void> {
  const producer = kafka.producer({ allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  try {
    const messages = [];
    for (let p = 0; p < PARTITIONS; p++) for (let i = 0; i < perPartition; i++) messages.push({ partition: p, key: `k-${p}-${i}`, value: `${tag}-${p}-${i}` });
    await producer.send({ topic, acks: -1, messages });
  } finally {
    await producer.disconnect();
  }
}

async function committedOffsets(kafka: Kafka): Promise<Map<number, number>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [t] = await admin.fetchOffsets({ groupId: GROUP, topics: [TOPIC] });
    return new Map((t?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
  } finally {
    await admin.disconnect();
  }
}

describe("kafkajs consumer group against Flotilla", () => {
  it("two members split the partitions, consume everything, and committed offsets survive a broker restart", async () => {
    const c = theCluster();
    let kafka = newKafkajs(c.bootstrap(), "flotilla-kafkajs-group");
    const admin = kafka.admin();
    await admin.connect();
    try {
      await admin.createTopics({ waitForLeaders: true, timeout: 30_000, topics: [{ topic: TOPIC, numPartitions: PARTITIONS, replicationFactor: 1 }] });
    } finally {
      await admin.disconnect();
    }

    const consumed: Consumed[] = [];
    const assignments = new Map<string, number[]>();
    const a = await startMember(kafka, "a", consumed, assignments);
    await c.waitFor("member a's first assignment", async () => (assignments.get("a")?.length ?? 0) > 0, WAIT_MS);
    const b = await startMember(kafka, "b", consumed, assignments);
    const all = Array.from({ length: PARTITIONS }, (_, p) => p);
    await c.waitFor(
      "both members to hold disjoint, non-empty shares of every partition",
      async () => {
        const sa = assignments.get("a") ?? [];
        const sb = assignments.get("b") ?? [];
        return sa.length > 0 && sb.length > 0 && [...sa, ...sb].sort((x, y) => x - y).join() === all.join();
      },
      WAIT_MS,
    );
    const describeAdmin = kafka.admin();
    await describeAdmin.connect();
    try {
      const { groups } = await describeAdmin.describeGroups([GROUP]);
      expect(groups[0]?.state).toBe("Stable");
      expect(groups[0]?.protocolType).toBe("consumer");
      expect(groups[0]?.members).toHaveLength(2);
    } finally {
      await describeAdmin.disconnect();
    }

    await produce(kafka, PER_PARTITION_BEFORE, "before");
    const total = PARTITIONS * PER_PARTITION_BEFORE;
    await c.waitFor("every record consumed", async () => new Set(consumed.map((r) => `${r.partition}@${r.offset}`)).size >= total, WAIT_MS);
    const shareA = assignments.get("a") ?? [];
    const shareB = assignments.get("b") ?? [];
    for (const r of consumed) {
      expect(r.value).toBe(`before-${r.partition}-${r.offset}`);
      expect(r.member === "a" ? shareA : shareB).toContain(r.partition);
    }
    expect(new Set(consumed.filter((r) => r.member === "a").map((r) => r.partition))).toEqual(new Set(shareA));
    expect(new Set(consumed.filter((r) => r.member === "b").map((r) => r.partition))).toEqual(new Set(shareB));

    const end = new Map(all.map((p) => [p, PER_PARTITION_BEFORE]));
    await c.waitFor("offsets committed to the end of every partition", async () => {
      const committed = await committedOffsets(kafka);
      return all.every((p) => committed.get(p) === end.get(p));
    }, WAIT_MS);
    await a.disconnect();
    await b.disconnect();

    await c.stop(1, "SIGTERM");
    await c.start(1);
    kafka = newKafkajs(c.bootstrap(), "flotilla-kafkajs-group-after");
    const after = await c.waitFor("committed offsets readable after the restart", async () => {
      const committed = await committedOffsets(kafka);
      return committed.size > 0 ? committed : undefined;
    }, WAIT_MS);
    expect(after).toEqual(end);

    await produce(kafka, PER_PARTITION_AFTER, "after");
    const resumed: Consumed[] = [];
    await startMember(kafka, "c", resumed, new Map());
    const expected = PARTITIONS * PER_PARTITION_AFTER;
    await c.waitFor("the records produced after the restart", async () => resumed.length >= expected, WAIT_MS);
    // A short grace period in which a wrongly re-read old record would show up too.
    await new Promise((r) => setTimeout(r, 1_000));
    expect(resumed.map((r) => `${r.partition}@${r.offset}:${r.value}`).sort()).toEqual(
      all.flatMap((p) => Array.from({ length: PER_PARTITION_AFTER }, (_, i) => `${p}@${PER_PARTITION_BEFORE + i}:after-${p}-${i}`)).sort(),
    );
  }, 300_000);

  it("mixes kafkajs and Flotilla's GroupConsumer in one group, with either kind as the leader", async () => {
    const c = theCluster();
    const topic = "mixed-group";
    const groupId = "mixed-group-g";
    const kafka = newKafkajs(c.bootstrap(), "flotilla-kafkajs-mixed");
    const admin = kafka.admin();
    await admin.connect();
    try {
      await admin.createTopics({ waitForLeaders: true, timeout: 30_000, topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }] });
    } finally {
      await admin.disconnect();
    }
    // kafkajs's round-robin assignor under the name Kafka's and Flotilla's clients use.
    const roundrobin: PartitionAssigner = (config) => ({ ...PartitionAssigners.roundRobin(config), name: "roundrobin" });
    const all = Array.from({ length: PARTITIONS }, (_, p) => p);
    const consumed: Consumed[] = [];
    const assignments = new Map<string, number[]>();
    const shareOfFlotilla = (): number[] => flotilla.assignment().map((tp) => tp.partition).sort((a, b) => a - b);
    const splitBetween = (kafkajsMember: string) => async (): Promise<boolean> => {
      const k = assignments.get(kafkajsMember) ?? [];
      const f = shareOfFlotilla();
      return k.length > 0 && f.length > 0 && [...k, ...f].sort((x, y) => x - y).join() === all.join();
    };
    const checkOwners = (tag: string, kafkajsMember: string): void => {
      const mine = consumed.filter((r) => r.value.startsWith(`${tag}-`));
      expect(new Set(mine.map((r) => `${r.partition}@${r.offset}`)).size).toBe(PARTITIONS * 5);
      for (const r of mine) expect(r.member === "flotilla" ? shareOfFlotilla() : assignments.get(kafkajsMember)).toContain(r.partition);
      expect(new Set(mine.map((r) => r.member))).toEqual(new Set(["flotilla", kafkajsMember]));
    };

    // 1. A kafkajs leader assigns to the Flotilla member.
    const k1 = await startMember(kafka, "k1", consumed, assignments, { groupId, topic, partitionAssigners: [roundrobin] });
    await c.waitFor("the kafkajs member's first assignment", async () => (assignments.get("k1")?.length ?? 0) === PARTITIONS, WAIT_MS);
    const flotilla = new GroupConsumer({
      bootstrapServers: c.bootstrap(),
      clientId: "flotilla-mixed",
      groupId,
      partitionAssigners: ["roundrobin"],
      autoOffsetReset: "earliest",
      sessionTimeoutMs: 10_000,
      heartbeatIntervalMs: 500,
      fetchMaxWaitMs: 200,
    });
    flotillaConsumers.push(flotilla);
    flotilla.subscribe({ topics: [topic] });
    const flotillaRun = flotilla.run({
      eachMessage: (r) => {
        consumed.push({ member: "flotilla", partition: r.partition, offset: r.offset, value: r.value?.toString("utf8") ?? "" });
      },
    });
    await c.waitFor("kafkajs (leader) and Flotilla members to split the partitions", splitBetween("k1"), WAIT_MS);
    await produce(kafka, 5, "first", topic);
    await c.waitFor("the first records consumed", async () => consumed.filter((r) => r.value.startsWith("first-")).length >= PARTITIONS * 5, WAIT_MS);
    checkOwners("first", "k1");

    // 2. The kafkajs member leaves; the Flotilla member leads and assigns to a new kafkajs member.
    await k1.disconnect();
    await c.waitFor("the Flotilla member to hold every partition", async () => shareOfFlotilla().length === PARTITIONS, WAIT_MS);
    await startMember(kafka, "k2", consumed, assignments, { groupId, topic, partitionAssigners: [roundrobin] });
    await c.waitFor("Flotilla (leader) and kafkajs members to split the partitions", splitBetween("k2"), WAIT_MS);
    await produce(kafka, 5, "second", topic);
    await c.waitFor("the second records consumed", async () => new Set(consumed.filter((r) => r.value.startsWith("second-")).map((r) => `${r.partition}@${r.offset}`)).size >= PARTITIONS * 5, WAIT_MS);
    checkOwners("second", "k2");

    await flotilla.disconnect();
    // run() resolves once the consumer is disconnected; an error it ended with fails the test.
    await flotillaRun;
  }, 300_000);
});

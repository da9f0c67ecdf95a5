/**
 * The idempotent producer through a leader failover, with real processes on loopback: node 1
 * runs the (single) controller and a broker, nodes 2 and 3 are brokers only, so a broker can
 * die without taking the metadata quorum with it. An idempotent acks=all producer (the
 * default) keeps several send() calls in flight while the leader of a busy partition is
 * killed with SIGKILL. Retries after the lost answers go to the new leader with their
 * original sequences, and retries of batches other leaders appended but could not commit in
 * time (their ISR still held the dead broker) are recognised as such; afterwards every record is in the topic exactly once (nothing
 * duplicated, nothing missing) and the records of each key are in send order.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Admin, Producer } from "../../packages/client/src/index.js";
import { BrokerConnection } from "../../packages/client/src/connection.js";
import { startCombinedCluster, type CombinedCluster } from "../helpers/combined-cluster.js";

const TOPIC = "idempotent";
const PARTITIONS = 3;
const RECORDS = 4000;
const CHUNK = 50;
/** send() calls in flight at once, so batches pipeline and some are in flight at the kill. */
const SENDS_IN_FLIGHT = 4;
const KEYS = 61;
/** Empty; `{ idempotent: false }` here shows the test catches duplicates. */
const PRODUCER_OVERRIDES = {};

let cluster: CombinedCluster | undefined;

beforeAll(async () => {
  cluster = await startCombinedCluster({
    name: "idempotence",
    nodes: 3,
    roles: (id) => (id === 1 ? "broker,controller" : "broker"),
    overrides: ["offsets.topic.replication.factor=1"],
    readyTimeoutMs: 40_000,
  });
}, 90_000);

afterAll(async () => {
  await cluster?.destroy();
});

describe("idempotent producer across a leader failover (3 broker processes)", () => {
  it("writes every keyed record exactly once and in per-key order while the leader of a busy partition is killed", async () => {
    const c = cluster!;
    await c.waitForBrokersUnfenced(30_000);
    // Every broker hands out producer ids, from its own controller block (brokers 2 and 3
    // reach the controller remotely): no two are alike.
    const producerIds: number[] = [];
    for (const id of c.brokerIds) {
      const connection = new BrokerConnection(c.address(id), "idempotence-test");
      try {
        const r = await connection.initProducerId({ transactionalId: "" }, { timeoutMs: 10_000 });
        expect(r.errorCode, r.errorMessage).toBe(0);
        expect(r.producerEpoch).toBe(0);
        producerIds.push(r.producerId);
      } finally {
        connection.close();
      }
    }
    expect(new Set(producerIds).size).toBe(3);

    const admin = new Admin({ bootstrapServers: c.bootstrap() });
    await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: PARTITIONS, replicationFactor: 3, configs: { "min.insync.replicas": "2" } }] });
    await admin.close();
    const victim = (await c.describeTopic(TOPIC)).partitions.find((p) => p.leader !== 1)!;
    expect(victim).toBeDefined();

    // Defaults: acks "all", idempotent, up to 5 requests in flight per broker. A short request
    // timeout makes lost answers certain: until the dead broker leaves the ISRs
    // (replica.lag.time.max.ms), the other leaders append but cannot reach the high watermark
    // and answer REQUEST_TIMED_OUT, and the retries of those appended batches must not be
    // written again. (The same run with idempotent: false stores duplicates.)
    const producer = new Producer({ bootstrapServers: c.bootstrap(), lingerMs: 2, requestTimeoutMs: 1000, ...PRODUCER_OVERRIDES });
    const inFlight = new Set<Promise<unknown>>();
    let killedAtChunk = -1;
    try {
      for (let chunk = 0; chunk < RECORDS / CHUNK; chunk++) {
        if (chunk === 20) {
          killedAtChunk = chunk;
          // Killed while earlier sends are still in flight.
          await c.stop(victim.leader, "SIGKILL");
        }
        const messages = Array.from({ length: CHUNK }, (_, j) => {
          const n = chunk * CHUNK + j;
          return { key: `key-${n % KEYS}`, value: String(n) };
        });
        const sent = producer.send({ topic: TOPIC, messages });
        inFlight.add(sent);
        void sent.finally(() => inFlight.delete(sent)).catch(() => undefined);
        if (inFlight.size >= SENDS_IN_FLIGHT) await Promise.race(inFlight);
      }
      await Promise.all(inFlight);
    } finally {
      await producer.close();
    }
    expect(killedAtChunk).toBe(20);
    const after = await c.describeTopic(TOPIC);
    expect(after.partitions.find((p) => p.partition === victim.partition)!.leader).not.toBe(victim.leader);

    const read = await c.readAll(TOPIC, RECORDS, 30_000);
    // A record without a value (NaN) matches none of the sent numbers, so it shows as a missing one.
    const values = read.map((r) => Number(r.value ?? NaN));
    const counts = new Map<number, number>();
    for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
    const duplicated = [...counts].filter(([, c]) => c > 1).map(([v]) => v);
    const missing = Array.from({ length: RECORDS }, (_, n) => n).filter((n) => !counts.has(n));
    expect(duplicated, "records stored more than once").toEqual([]);
    expect(missing, "records missing").toEqual([]);
    expect(read).toHaveLength(RECORDS);
    // Per key, in offset order, values grow: send order held through the retries.
    const byPartition = new Map<number, typeof read>();
    for (const r of read) byPartition.set(r.partition, [...(byPartition.get(r.partition) ?? []), r]);
    const lastOfKey = new Map<string | null, number>();
    for (const records of byPartition.values()) {
      records.sort((a, b) => a.offset - b.offset);
      for (const r of records) {
        expect(Number(r.value), `key ${r.key} out of order at ${r.partition}/${r.offset}`).toBeGreaterThan(lastOfKey.get(r.key) ?? -1);
        lastOfKey.set(r.key, Number(r.value));
      }
    }
    expect(read.some((r) => r.partition === victim.partition && r.offset > 0)).toBe(true);
  }, 180_000);
});

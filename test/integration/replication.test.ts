/**
 * Leader/follower replication with real processes on loopback: node 1 runs the (single)
 * controller and a broker, nodes 2 and 3 are brokers only, so that brokers can die without
 * taking the metadata quorum with them. A topic with replication factor 3 and
 * min.insync.replicas=2:
 * - an acks=all producer keeps writing while the leader of one partition (not node 1) is
 *   killed with SIGKILL and later restarted; every acknowledged record is then found at
 *   the offset it was acknowledged with, in send order per partition;
 * - with brokers 2 and 3 killed, acks=all fails with NOT_ENOUGH_REPLICAS while acks=1
 *   still succeeds; once they return, nothing acknowledged is lost;
 * - after a clean stop of all three, every replica's log is byte-identical up to the
 *   smallest checkpointed high watermark, which covers every acknowledged record.
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FlotillaError } from "../../packages/common/src/index.js";
import { Producer, type RecordMetadata } from "../../packages/client/src/index.js";
import { startCombinedCluster, type CombinedCluster } from "../helpers/combined-cluster.js";

const NODES = [1, 2, 3];
const TOPIC = "replicated";
const PARTITIONS = 3;
const SESSION_TIMEOUT_MS = 3000;
const RECORDS = 3000;
const CHUNK = 100;

let cluster: CombinedCluster | undefined;

/** Every record of every partition, from the earliest offset to the high watermark at the time of the call. */
async function readAll(c: CombinedCluster, expectedAtLeast: number): Promise<Map<number, Map<number, string | null>>> {
  const out = new Map<number, Map<number, string | null>>();
  for (const r of await c.readAll(TOPIC, expectedAtLeast, 30_000)) {
    let m = out.get(r.partition);
    if (!m) out.set(r.partition, (m = new Map()));
    expect(m.has(r.offset)).toBe(false); // each offset is read once
    m.set(r.offset, r.value);
  }
  return out;
}

/** Checks that every acknowledged record sits at its acknowledged offset, and offsets grow in send order per partition. */
function checkAcknowledged(acked: { value: string; meta: RecordMetadata }[], read: Map<number, Map<number, string | null>>): void {
  const lastOffset = new Map<number, number>();
  for (const { value, meta } of acked) {
    expect(read.get(meta.partition)?.get(meta.offset), `record ${value} acknowledged at ${meta.partition}/${meta.offset}`).toBe(value);
    expect(meta.offset).toBeGreaterThan(lastOffset.get(meta.partition) ?? -1);
    lastOffset.set(meta.partition, meta.offset);
  }
}

function checkpointedHighWatermark(c: CombinedCluster, id: number, partition: number): number {
  const text = fs.readFileSync(path.join(c.logDirOf(id), "replication-offset-checkpoint"), "utf8");
  const line = text.split("\n").find((l) => l.startsWith(`${TOPIC} ${partition} `));
  return line ? Number(line.split(" ")[2]) : -1;
}

beforeAll(async () => {
  cluster = await startCombinedCluster({
    name: "replication",
    nodes: NODES.length,
    // Node 1 is the single voter; brokers 2 and 3 can die without taking the quorum with them.
    roles: (id) => (id === 1 ? "broker,controller" : "broker"),
    overrides: [`broker.session.timeout.ms=${SESSION_TIMEOUT_MS}`, "leader.imbalance.check.interval.seconds=1", "offsets.topic.replication.factor=1"],
    readyTimeoutMs: 40_000,
  });
}, 90_000);

afterAll(async () => {
  await cluster?.destroy();
});

describe("replication across 3 broker processes", () => {
  it("keeps every acks=all record through a leader's kill -9 and restart, refuses acks=all with two brokers down, and ends with identical replicas", async () => {
    const c = cluster!;
    const acked: { value: string; meta: RecordMetadata }[] = [];
    await c.waitForBrokersUnfenced(30_000);
    await c.createTopic(TOPIC, { partitions: PARTITIONS, configs: { "min.insync.replicas": "2" } }, 30_000);
    const initial = await c.describeTopic(TOPIC);
    const victimPartition = initial.partitions.find((p) => p.leader !== 1)!;
    expect(victimPartition).toBeDefined();
    const victim = victimPartition.leader;

    // 1. acks=all while the leader of a busy partition dies and returns.
    const producer = new Producer({ bootstrapServers: c.bootstrap(), acks: "all", lingerMs: 2 });
    try {
      for (let chunk = 0; chunk < RECORDS / CHUNK; chunk++) {
        if (chunk === 8) await c.stop(victim, "SIGKILL");
        if (chunk === 20) await c.start(victim);
        const messages = Array.from({ length: CHUNK }, (_, j) => {
          const n = chunk * CHUNK + j;
          return { key: `key-${n % 97}`, value: `value-${n}` };
        });
        const metas = await producer.send({ topic: TOPIC, messages });
        metas.forEach((meta, j) => acked.push({ value: messages[j]!.value, meta }));
      }
    } finally {
      await producer.close();
    }
    expect(acked).toHaveLength(RECORDS);
    expect(acked.some((a) => a.meta.partition === victimPartition.partition)).toBe(true);
    await c.waitFor("the restarted broker back in every ISR", () => c.hasFullIsr(TOPIC, PARTITIONS), 30_000);
    checkAcknowledged(acked, await readAll(c, RECORDS));

    // 2. Two brokers down: the ISR shrinks to broker 1 and acks=all is refused.
    await Promise.all([c.stop(2, "SIGKILL"), c.stop(3, "SIGKILL")]);
    await c.waitFor("broker 1 leading everything alone", async () => {
      const t = await c.describeTopic(TOPIC, 1);
      return t.partitions.every((p) => p.leader === 1 && p.isr.length === 1);
    }, SESSION_TIMEOUT_MS + 15_000);
    const strict = new Producer({ bootstrapServers: c.address(1), acks: "all", retries: 0 });
    try {
      const err = await strict.send({ topic: TOPIC, messages: [{ key: "strict", value: "refused" }] }).catch((e: unknown) => e);
      expect(FlotillaError.is(err) && err.errorName).toBe("NOT_ENOUGH_REPLICAS");
    } finally {
      await strict.close();
    }
    const relaxed = new Producer({ bootstrapServers: c.address(1), acks: 1 });
    try {
      const messages = Array.from({ length: 30 }, (_, j) => ({ key: `key-${j}`, value: `acks1-${j}` }));
      const metas = await relaxed.send({ topic: TOPIC, messages });
      metas.forEach((meta, j) => acked.push({ value: messages[j]!.value, meta }));
    } finally {
      await relaxed.close();
    }
    await Promise.all([c.start(2), c.start(3)]);
    await c.waitFor("all brokers back in every ISR", () => c.hasFullIsr(TOPIC, PARTITIONS), 30_000);
    checkAcknowledged(acked, await readAll(c, acked.length));

    // 3. Clean stop (brokers first, the controller's node last), then compare the replicas' files.
    await new Promise((r) => setTimeout(r, 1500)); // followers learn the final HW on their next fetch
    for (const id of [3, 2, 1]) expect((await c.stop(id, "SIGTERM", 30_000)).code).toBe(0);
    for (let p = 0; p < PARTITIONS; p++) {
      const hw = Math.min(...NODES.map((id) => checkpointedHighWatermark(c, id, p)));
      const lastAcked = Math.max(-1, ...acked.filter((a) => a.meta.partition === p).map((a) => a.meta.offset));
      expect(hw, `partition ${p}: smallest checkpointed HW covers every acknowledged record`).toBeGreaterThan(lastAcked);
      const reference = (await c.logBytes(1, TOPIC, p, hw)).bytes;
      expect(reference.length).toBeGreaterThan(0);
      for (const id of [2, 3]) expect((await c.logBytes(id, TOPIC, p, hw)).bytes.equals(reference), `partition ${p}: node ${id} equals node 1 up to ${hw}`).toBe(true);
    }
  }, 240_000);
});

/**
 * Issue 4's first proof, with three combined nodes (broker and controller voter each) as real
 * processes on loopback. A topic with replication factor 3 and min.insync.replicas=2; an acks=all
 * producer (idempotent, the default) writes 20,000 keyed records, several send() calls in
 * flight, while the leader of a busy partition is killed with SIGKILL and later restarted.
 * Afterwards:
 * - every acknowledged record is read exactly once (none missing, none duplicated), at the
 *   offset it was acknowledged with, offsets growing in send order per partition and per key;
 * - after the restarted node is back in every ISR and all three stop cleanly (SIGTERM), every
 *   replica's log of every partition ends at the high watermark the consumer saw and is
 *   byte-identical to the others.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Producer, type RecordMetadata } from "../../packages/client/src/index.js";
import { startCombinedCluster, type CombinedCluster } from "../helpers/combined-cluster.js";
import type { ChildHandle } from "../helpers/processes.js";

const TOPIC = "acks-all";
const PARTITIONS = 3;
const RECORDS = 20_000;
const CHUNK = 100;
const KEYS = 101;
/** send() calls in flight at once: batches pipeline, and some are in flight at the kill. */
const SENDS_IN_FLIGHT = 4;
const KILL_AT_CHUNK = 50;
const RESTART_AT_CHUNK = 100;

let cluster: CombinedCluster | undefined;

beforeAll(async () => {
  cluster = await startCombinedCluster({
    name: "acks-all",
    nodes: 3,
    // Preferred-leader moves would add leader changes the test does not control.
    overrides: ["auto.leader.rebalance.enable=false"],
  });
}, 120_000);

afterAll(async () => {
  await cluster?.destroy();
}, 30_000);

describe("acks=all through a leader's kill -9 and restart (3 combined nodes)", () => {
  it("reads every acknowledged record exactly once and in order, and all replicas end byte-identical", async () => {
    const c = cluster!;
    await c.createTopic(TOPIC, { partitions: PARTITIONS, configs: { "min.insync.replicas": "2" } }, 60_000);
    await c.waitFor("leaders with full ISRs", () => c.hasFullIsr(TOPIC, PARTITIONS), 60_000);
    const initial = await c.describeTopic(TOPIC);
    // Every partition gets records (101 keys over 3 partitions), so partition 0 is busy.
    const victimPartition = initial.partitions.find((p) => p.partition === 0)!;
    const victim = victimPartition.leader;

    const producer = new Producer({ bootstrapServers: c.bootstrap(), lingerMs: 5 });
    const acked: { n: number; meta: RecordMetadata }[] = [];
    const failures: unknown[] = [];
    const inFlight = new Set<Promise<unknown>>();
    let restarted: Promise<ChildHandle> | undefined;
    try {
      for (let chunk = 0; chunk < RECORDS / CHUNK; chunk++) {
        if (chunk === KILL_AT_CHUNK) await c.stop(victim, "SIGKILL");
        // Started in the background: the producer keeps writing while the node boots and catches up.
        if (chunk === RESTART_AT_CHUNK) restarted = c.start(victim);
        const ns = Array.from({ length: CHUNK }, (_, j) => chunk * CHUNK + j);
        const sent = producer
          .send({ topic: TOPIC, messages: ns.map((n) => ({ key: `key-${n % KEYS}`, value: String(n) })) })
          .then((metas) => metas.forEach((meta, j) => acked.push({ n: ns[j]!, meta })))
          .catch((err: unknown) => void failures.push(err));
        inFlight.add(sent);
        void sent.finally(() => inFlight.delete(sent));
        if (inFlight.size >= SENDS_IN_FLIGHT) await Promise.race(inFlight);
      }
      await Promise.all(inFlight);
    } finally {
      await producer.close();
      await restarted?.catch(() => undefined);
    }
    expect(failures.map(String), "sends that failed").toEqual([]);
    expect(acked).toHaveLength(RECORDS);
    expect(restarted).toBeDefined();
    await restarted;

    await c.waitFor("the restarted node back in every ISR", () => c.hasFullIsr(TOPIC, PARTITIONS), 90_000);
    const after = await c.describeTopic(TOPIC);
    expect(after.partitions.find((p) => p.partition === victimPartition.partition)!.leaderEpoch).toBeGreaterThan(victimPartition.leaderEpoch);

    // Exactly once: each acknowledged record sits at its acknowledged offset, and nothing else is there.
    const read = await c.readAll(TOPIC, RECORDS, 60_000);
    const counts = new Map<string | null, number>();
    for (const r of read) counts.set(r.value, (counts.get(r.value) ?? 0) + 1);
    expect([...counts].filter(([, k]) => k > 1).map(([v]) => v), "records read more than once").toEqual([]);
    expect(acked.filter((a) => !counts.has(String(a.n))).map((a) => a.n), "acknowledged records missing").toEqual([]);
    expect(read).toHaveLength(RECORDS);
    const at = new Map(read.map((r) => [`${r.partition}/${r.offset}`, r]));
    for (const { n, meta } of acked) expect(at.get(`${meta.partition}/${meta.offset}`)?.value, `record ${n} acknowledged at ${meta.partition}/${meta.offset}`).toBe(String(n));
    // Per partition and per key, offsets follow send order.
    const lastOffsetOfPartition = new Map<number, number>();
    for (const { meta } of [...acked].sort((a, b) => a.n - b.n)) {
      expect(meta.offset, `partition ${meta.partition} order`).toBeGreaterThan(lastOffsetOfPartition.get(meta.partition) ?? -1);
      lastOffsetOfPartition.set(meta.partition, meta.offset);
    }
    const lastOfKey = new Map<string | null, number>();
    for (const r of [...read].sort((a, b) => a.partition - b.partition || a.offset - b.offset)) {
      expect(Number(r.value), `key ${r.key} out of order at ${r.partition}/${r.offset}`).toBeGreaterThan(lastOfKey.get(r.key) ?? -1);
      lastOfKey.set(r.key, Number(r.value));
    }

    // The high watermark of each partition, as the consumer saw it: nothing is produced any more.
    const endOffsets = new Map<number, number>();
    for (const r of read) endOffsets.set(r.partition, Math.max(endOffsets.get(r.partition) ?? 0, r.offset + 1));
    expect(endOffsets.size).toBe(PARTITIONS);
    // Followers learn the final high watermark on their next fetch; then a clean stop of all
    // three at once (as `flotilla start` does), while the quorum is still up for their controlled shutdowns.
    await new Promise((r) => setTimeout(r, 1500));
    const exits = await Promise.all(c.nodeIds.map((id) => c.stop(id, "SIGTERM", 60_000)));
    expect(exits.map((e) => e.code)).toEqual([0, 0, 0]);
    for (const [partition, end] of endOffsets) {
      const logs = [];
      for (const id of c.nodeIds) logs.push({ id, ...(await c.logBytes(id, TOPIC, partition, end)) });
      for (const log of logs) {
        expect(log.logEndOffset, `node ${log.id} partition ${partition} log end`).toBe(end);
        expect(log.bytes.equals(logs[0]!.bytes), `partition ${partition}: node ${log.id} equals node ${logs[0]!.id} up to ${end}`).toBe(true);
      }
      expect(logs[0]!.bytes.length).toBeGreaterThan(0);
    }
  }, 300_000);
});

/**
 * Issue 4's rolling-restart proof, with three combined nodes (broker and controller voter
 * each) as real processes on loopback. A keyed, idempotent acks=all producer and a consumer
 * run without pause while each node in turn gets SIGTERM (a controlled shutdown: leadership
 * moves away before it exits), is started again, and is back in every ISR before the next one
 * goes. Afterwards:
 * - neither application saw an error: every send() resolved and every poll() returned (the
 *   client retried leader moves and lost connections underneath);
 * - the consumer saw every acknowledged record exactly once, at its acknowledged offset, in
 *   offset order per partition and in send order per key.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Consumer, Producer, type RecordMetadata } from "../../packages/client/src/index.js";
import { startCombinedCluster, type CombinedCluster } from "../helpers/combined-cluster.js";

const TOPIC = "rolling";
const PARTITIONS = 3;
const CHUNK = 20;
const KEYS = 31;
const SENDS_IN_FLIGHT = 2;
/** Records acknowledged between restarts, so each one happens under traffic. */
const PROGRESS_RECORDS = 300;
/** A bound on the producer loop, far above what the test's duration allows. */
const CHUNKS_MAX = 100_000;

let cluster: CombinedCluster | undefined;

beforeAll(async () => {
  cluster = await startCombinedCluster({ name: "rolling", nodes: 3 });
}, 120_000);

afterAll(async () => {
  await cluster?.destroy();
}, 30_000);

interface Seen {
  partition: number;
  offset: number;
  key: string;
  value: string;
}

describe("rolling restart with SIGTERM under a running producer and consumer (3 combined nodes)", () => {
  it("surfaces no error to either application and loses or duplicates no record", async () => {
    const c = cluster!;
    await c.createTopic(TOPIC, { partitions: PARTITIONS, configs: { "min.insync.replicas": "2" } }, 60_000);
    const fullIsr = (): Promise<boolean> => c.hasFullIsr(TOPIC, PARTITIONS);
    await c.waitFor("leaders with full ISRs", fullIsr, 60_000);

    const appErrors: string[] = [];
    const acked: { n: number; meta: RecordMetadata }[] = [];
    const seen: Seen[] = [];
    let producing = true;
    let consuming = true;

    const producer = new Producer({ bootstrapServers: c.bootstrap(), lingerMs: 5 });
    const produceLoop = (async () => {
      const inFlight = new Set<Promise<unknown>>();
      for (let chunk = 0; chunk < CHUNKS_MAX && producing; chunk++) {
        const ns = Array.from({ length: CHUNK }, (_, j) => chunk * CHUNK + j);
        const sent = producer
          .send({ topic: TOPIC, messages: ns.map((n) => ({ key: `key-${n % KEYS}`, value: String(n) })) })
          .then((metas) => metas.forEach((meta, j) => acked.push({ n: ns[j]!, meta })))
          .catch((err: unknown) => void appErrors.push(`send: ${String(err)}`));
        inFlight.add(sent);
        void sent.finally(() => inFlight.delete(sent));
        if (inFlight.size >= SENDS_IN_FLIGHT) await Promise.race(inFlight);
      }
      await Promise.all(inFlight);
    })();

    const consumer = new Consumer({ bootstrapServers: c.bootstrap(), autoOffsetReset: "earliest" });
    await consumer.assign([{ topic: TOPIC }]);
    const consumeLoop = (async () => {
      for (let i = 0; i < 1_000_000 && consuming; i++) {
        try {
          const records = await consumer.poll({ timeoutMs: 500 });
          for (const r of records) seen.push({ partition: r.partition, offset: r.offset, key: r.key!.toString(), value: r.value!.toString() });
        } catch (err) {
          appErrors.push(`poll: ${String(err)}`);
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    })();

    /** Leaderships the stopped nodes held: the restarts must move live traffic, not idle followers. */
    let leadersStopped = 0;
    try {
      const progress = async (what: string): Promise<void> => {
        const from = acked.length;
        await c.waitFor(what, async () => acked.length >= from + PROGRESS_RECORDS, 90_000);
      };
      await progress("records acknowledged before the first restart");
      for (const id of c.nodeIds) {
        const led = (await c.describeTopic(TOPIC)).partitions.filter((p) => p.leader === id).map((p) => p.partition);
        leadersStopped += led.length;
        const exit = await c.stop(id, "SIGTERM", 60_000);
        // Code 0: the node shut down by itself (a fallback SIGKILL would show as a signal).
        expect(exit, `node ${id} exit after SIGTERM`).toEqual({ code: 0, signal: null });
        const moved = await c.describeTopic(TOPIC);
        for (const p of led) expect(moved.partitions.find((q) => q.partition === p)!.leader, `partition ${p} led by stopped node ${id}`).not.toBe(id);
        await progress(`records acknowledged while node ${id} is down`);
        await c.start(id);
        await c.waitFor(`node ${id} back in every ISR`, fullIsr, 90_000);
        await progress(`records acknowledged after node ${id} returned`);
      }
    } finally {
      producing = false;
      await produceLoop;
      await producer.close();
    }

    // The consumer reads on until it holds the last acknowledged offset of every partition.
    const lastAcked = new Map<number, number>();
    for (const { meta } of acked) lastAcked.set(meta.partition, Math.max(lastAcked.get(meta.partition) ?? -1, meta.offset));
    const caughtUp = (): boolean => [...lastAcked].every(([p, o]) => seen.some((s) => s.partition === p && s.offset >= o));
    try {
      await c.waitFor("the consumer at the last acknowledged offsets", async () => caughtUp(), 60_000);
      // A little longer, so a duplicate or a record past the acknowledged ones would show.
      await new Promise((r) => setTimeout(r, 1500));
    } finally {
      consuming = false;
      await consumeLoop;
      await consumer.close();
    }

    expect(appErrors, "errors the applications saw").toEqual([]);
    expect(leadersStopped).toBeGreaterThan(0);
    expect(acked.length).toBeGreaterThanOrEqual(PROGRESS_RECORDS * 7);
    // Exactly once: no value twice, every acknowledged one present at its offset, nothing else.
    const counts = new Map<string, number>();
    for (const s of seen) counts.set(s.value, (counts.get(s.value) ?? 0) + 1);
    expect([...counts].filter(([, k]) => k > 1).map(([v]) => v), "records seen more than once").toEqual([]);
    const at = new Map(seen.map((s) => [`${s.partition}/${s.offset}`, s.value]));
    expect(acked.filter(({ n, meta }) => at.get(`${meta.partition}/${meta.offset}`) !== String(n)).map((a) => a.n), "acknowledged records not seen at their offsets").toEqual([]);
    expect(seen).toHaveLength(acked.length);
    // In the order the consumer saw them: offsets grow per partition, values grow per key.
    const lastOffset = new Map<number, number>();
    const lastOfKey = new Map<string, number>();
    for (const s of seen) {
      expect(s.offset, `partition ${s.partition} order`).toBeGreaterThan(lastOffset.get(s.partition) ?? -1);
      lastOffset.set(s.partition, s.offset);
      expect(Number(s.value), `key ${s.key} order at ${s.partition}/${s.offset}`).toBeGreaterThan(lastOfKey.get(s.key) ?? -1);
      lastOfKey.set(s.key, Number(s.value));
    }
  }, 400_000);
});

/**
 * A former leader that accepted records it could not replicate (KIP-101/279), with three
 * combined nodes as real processes on loopback:
 * 1. a partition's two followers are frozen (SIGSTOP), so the leader's acks=1 records
 *    reach no other replica (and the controller quorum cannot change the ISR);
 * 2. the leader is killed (SIGKILL), the followers resume (SIGCONT), the controller fences
 *    the dead broker and elects a follower in a new leader epoch; acks=all records go on;
 * 3. the former leader restarts, asks the new leader where its epoch ends, truncates the
 *    unreplicated records and follows. Every replica's log then ends at the high
 *    watermark and is byte-identical to the others, and the unreplicated records are gone
 *    from all of them.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Consumer, Producer } from "../../packages/client/src/index.js";
import { startCombinedCluster, type CombinedCluster } from "../helpers/combined-cluster.js";

const NODES = [1, 2, 3];
const TOPIC = "divergent";
const SESSION_TIMEOUT_MS = 3000;

let cluster: CombinedCluster | undefined;

/** Node `id`'s stored batches of the partition up to `end`, checking that its log ends exactly there. */
async function logBytes(c: CombinedCluster, id: number, end: number): Promise<Buffer> {
  const { bytes, logEndOffset } = await c.logBytes(id, TOPIC, 0, end);
  expect(logEndOffset, `node ${id} log end`).toBe(end);
  return bytes;
}

beforeAll(async () => {
  cluster = await startCombinedCluster({
    name: "divergence",
    nodes: NODES.length,
    overrides: [
      `broker.session.timeout.ms=${SESSION_TIMEOUT_MS}`,
      "offsets.topic.replication.factor=1",
      // Keep leadership where the test put it: no preferred-leader moves mid-test.
      "auto.leader.rebalance.enable=false",
    ],
    readyTimeoutMs: 40_000,
  });
}, 90_000);

afterAll(async () => {
  await cluster?.destroy();
});

describe("a former leader with an unreplicated suffix", () => {
  it("truncates the records only it had after a new leader was elected, and ends byte-identical to the other replicas", async () => {
    const c = cluster!;
    await c.createTopic(TOPIC, { partitions: 1, configs: { "min.insync.replicas": "2" } }, 30_000);
    await c.waitFor("a leader with the full ISR", () => c.hasFullIsr(TOPIC, 1), 20_000);
    const initial = (await c.describeTopic(TOPIC)).partitions[0]!;
    const oldLeader = initial.leader;
    const followers = NODES.filter((id) => id !== oldLeader);

    const committed = new Producer({ bootstrapServers: c.address(oldLeader), acks: "all" });
    const first = await committed.send({ topic: TOPIC, messages: Array.from({ length: 50 }, (_, i) => ({ key: `k${i}`, value: `committed-${i}` })) });
    await committed.close();
    const committedEnd = first[first.length - 1]!.offset + 1;
    // Followers learn the HW on their next fetch; let them, so their logs hold the batch.
    await new Promise((r) => setTimeout(r, 500));

    // 1. Freeze both followers; the leader takes acks=1 records nobody copies.
    for (const id of followers) c.pause(id);
    // Fetches they had parked at the leader answer (empty) within replica.fetch.wait.max.ms
    // (500 ms); after that no fetch of theirs is open to carry new records to them.
    await new Promise((r) => setTimeout(r, 1500));
    const lonely = new Producer({ bootstrapServers: c.address(oldLeader), acks: 1 });
    const unreplicated = await lonely.send({ topic: TOPIC, messages: Array.from({ length: 20 }, (_, i) => ({ key: `u${i}`, value: `unreplicated-${i}` })) });
    await lonely.close();
    expect(unreplicated[0]!.offset).toBe(committedEnd);

    // 2. The leader dies; the followers resume and one of them is elected in a new epoch.
    await c.stop(oldLeader, "SIGKILL");
    for (const id of followers) c.resume(id);
    const next = await c.waitFor("a new leader among the followers", async () => {
      const p = (await c.describeTopic(TOPIC, followers[0]!)).partitions[0]!;
      return followers.includes(p.leader) && p.leaderEpoch > initial.leaderEpoch ? p : undefined;
    }, SESSION_TIMEOUT_MS + 20_000);
    const after = new Producer({ bootstrapServers: followers.map(c.address).join(","), acks: "all" });
    const later = await after.send({ topic: TOPIC, messages: Array.from({ length: 30 }, (_, i) => ({ key: `k${i}`, value: `after-${i}` })) });
    await after.close();
    expect(later[0]!.offset).toBe(committedEnd); // the new leader never had the unreplicated records

    // 3. The former leader returns, truncates and follows.
    await c.start(oldLeader);
    await c.waitFor("the former leader back in the ISR", async () => (await c.describeTopic(TOPIC, next.leader)).partitions[0]!.isr.length === 3, 30_000);
    const end = later[later.length - 1]!.offset + 1;
    const consumer = new Consumer({ bootstrapServers: c.bootstrap(), autoOffsetReset: "earliest" });
    const values: string[] = [];
    try {
      await consumer.assign([{ topic: TOPIC }]);
      const deadline = Date.now() + 20_000;
      while (values.length < end && Date.now() < deadline) values.push(...(await consumer.poll({ timeoutMs: 500 })).map((r) => r.value!.toString()));
    } finally {
      await consumer.close();
    }
    expect(values).toEqual([...first.map((_, i) => `committed-${i}`), ...later.map((_, i) => `after-${i}`)]);

    // Every ISR member holds everything up to the HW, and nothing was produced past `end`:
    // each log ends exactly there. SIGKILL loses nothing the kernel has (the logs recover).
    for (const id of NODES) await c.stop(id, "SIGKILL");
    const reference = await logBytes(c, next.leader, end);
    for (const id of NODES) {
      const bytes = await logBytes(c, id, end);
      expect(bytes.equals(reference), `node ${id} equals the new leader`).toBe(true);
      expect(bytes.includes(Buffer.from("unreplicated-"))).toBe(false);
    }
  }, 240_000);
});

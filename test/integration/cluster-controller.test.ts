/**
 * Three combined nodes (broker + controller voter) as real processes on loopback: the
 * controller quorum, broker registration and fencing, leader elections after a crash,
 * unfencing on return, preferred-leader rebalancing and controlled shutdown.
 */
import fs from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Admin } from "../../packages/client/src/index.js";
import { ControllerQuorumClient } from "../../packages/controller/src/index.js";
import { runFlotilla } from "../helpers/cli.js";
import { startCombinedCluster, type CombinedCluster } from "../helpers/combined-cluster.js";

const NODES = [1, 2, 3];
const SESSION_TIMEOUT_MS = 4000;

let cluster: CombinedCluster | undefined;

function admin(id: number): Admin {
  return new Admin({ bootstrapServers: cluster!.address(id) });
}

async function controllerIdVia(id: number): Promise<number> {
  const a = admin(id);
  try {
    return (await a.metadata({ topics: [] })).controllerId;
  } finally {
    await a.close();
  }
}

beforeAll(async () => {
  cluster = await startCombinedCluster({
    name: "cluster",
    nodes: NODES.length,
    overrides: [
      `broker.session.timeout.ms=${SESSION_TIMEOUT_MS}`,
      "leader.imbalance.check.interval.seconds=1",
      // Kept at the server default, as this test always ran: its checks are about sessions and
      // fencing, and ISR shrinks by lag on a loaded machine would add leader moves it does not expect.
      "replica.lag.time.max.ms=30000",
    ],
    readyTimeoutMs: 40_000,
  });
}, 60_000);

afterAll(async () => {
  await cluster?.destroy();
});

describe("a 3-node cluster of combined nodes", () => {
  it("elects a new active controller after kill -9, moves the dead broker's leaderships, unfences it on return, and moves leaderships away on SIGTERM", async () => {
    const c = cluster!;
    const quorum = new ControllerQuorumClient({ addresses: c.controllerAddresses(), totalTimeoutMs: 10_000 });
    try {
      const registered = await c.waitForBrokersUnfenced(20_000);
      expect(registered.brokers.map((b) => b.brokerId)).toEqual([1, 2, 3]);
      const described = await runFlotilla(["cluster", "describe", "--bootstrap-controller", c.controllerAddresses().join(",")]);
      expect(described.code, described.stderr).toBe(0);
      expect(described.stdout).toMatch(new RegExp(`^1 +PLAINTEXT://${c.address(1)} +alive`, "m"));
      expect(described.stdout).toMatch(/^Quorum: leader [123], term \d+/m);
      expect(described.stdout.match(/^\d+ +127\.0\.0\.1:\d+ +(leader|follower) /gm)).toHaveLength(3);

      // A topic with RF 3: every broker leads some of its partitions.
      const a1 = admin(1);
      await a1.createTopics({ topics: [{ topic: "orders", numPartitions: 6, replicationFactor: 3 }] });
      await a1.close();
      const orders = await c.describeTopic("orders", 2);
      expect(orders.partitions).toHaveLength(6);
      for (const p of orders.partitions) expect([...p.replicas].sort()).toEqual([1, 2, 3]);
      expect(new Set(orders.partitions.map((p) => p.leader))).toEqual(new Set([1, 2, 3]));

      // kill -9 the active controller.
      const q = await quorum.describeQuorum();
      // Metadata names the active controller (the quorum's Raft leader), on every node.
      await c.waitFor("every node's Metadata naming the Raft leader as controller", async () => {
        const ids = await Promise.all(NODES.map((id) => controllerIdVia(id)));
        return ids.every((x) => x === q.leaderId) ? true : undefined;
      }, 10_000);
      const leaderAddress = c.controllerAddress(q.leaderId);
      const lead = await quorum.describeQuorum(leaderAddress);
      expect(lead.leaderId).toBe(q.leaderId);
      expect(lead.voters.every((v) => v.lag >= 0)).toBe(true);
      const dead = q.leaderId;
      await c.stop(dead, "SIGKILL");
      const alive = NODES.filter((id) => id !== dead);

      const next = await c.waitFor("a new active controller", async () => {
        const d = await quorum.describeQuorum(c.controllerAddress(alive[0]!));
        return d.leaderId !== 0 && d.leaderId !== dead ? d : undefined;
      }, 15_000);
      expect(alive).toContain(next.leaderId);
      await c.waitFor("the surviving nodes' Metadata naming the new active controller", async () => {
        const ids = await Promise.all(alive.map((id) => controllerIdVia(id)));
        return ids.every((x) => x === next.leaderId) ? true : undefined;
      }, 10_000);

      // Topic creation still works, through a surviving broker.
      const a2 = admin(alive[0]!);
      const [created] = await a2.createTopics({ topics: [{ topic: "after-failover", numPartitions: 2, replicationFactor: 2 }] });
      await a2.close();
      expect(created?.topic).toBe("after-failover");

      // Once its session expires the dead broker is fenced and leads nothing.
      await c.waitFor("the dead broker fenced and its partitions re-led", async () => {
        const state = await quorum.describeCluster();
        const t = await c.describeTopic("orders", alive[0]!);
        return state.brokers.find((b) => b.brokerId === dead)?.fenced && t.partitions.every((p) => p.leader !== dead && p.leader !== -1) ? true : undefined;
      }, SESSION_TIMEOUT_MS + 10_000);
      const afterKill = await c.describeTopic("orders", alive[1]!);
      for (const p of afterKill.partitions) expect(p.isr).not.toContain(dead);

      // It comes back: registered again, caught up, unfenced; preferred leadership returns to it.
      // Its stored metadata is stale (its partitions changed leaders while it was down): it must
      // not act on that image, so no partition of it takes a role in an epoch older than now.
      const epochsAtRestart = new Map((await c.describeTopic("orders", alive[0]!)).partitions.map((p) => [p.partition, p.leaderEpoch]));
      const restarted = await c.start(dead);
      await c.waitFor("the returned broker unfenced", async () => {
        const state = await quorum.describeCluster();
        return state.brokers.find((b) => b.brokerId === dead)?.fenced === false ? true : undefined;
      }, 20_000);
      await c.waitFor("the returned broker leading its preferred partitions again", async () => {
        const t = await c.describeTopic("orders", dead);
        return t.partitions.some((p) => p.leader === dead) ? true : undefined;
      }, 20_000);
      const roles = fs
        .readFileSync(restarted.stderrPath, "utf8")
        .split("\n")
        .filter((line) => line.includes('"topic":"orders"') && /"msg":"became (leader|follower)"/.test(line))
        .map((line) => JSON.parse(line) as { partition: number; leaderEpoch: number; msg: string });
      expect(roles.length, "the restarted node took roles for its partitions").toBeGreaterThan(0);
      for (const r of roles) expect(r.leaderEpoch, `${r.msg} of orders-${r.partition} after the restart`).toBeGreaterThanOrEqual(epochsAtRestart.get(r.partition)!);

      // SIGTERM: a controlled shutdown moves its leaderships away before the process exits,
      // long before its session could expire.
      const victim = dead;
      const before = await c.describeTopic("orders", alive[0]!);
      expect(before.partitions.some((p) => p.leader === victim)).toBe(true);
      const exited = await c.stop(victim, "SIGTERM", 30_000);
      expect(exited.code).toBe(0);
      const after = await c.describeTopic("orders", alive[0]!);
      for (const p of after.partitions) {
        expect(p.leader).not.toBe(victim);
        expect(p.leader).not.toBe(-1);
      }
      const state = await quorum.describeCluster();
      expect(state.brokers.find((b) => b.brokerId === victim)?.fenced).toBe(true);
    } finally {
      quorum.close();
    }
  }, 120_000);
});

/**
 * Three combined nodes (broker + controller voter) as real processes on loopback: the
 * controller quorum, broker registration and fencing, leader elections after a crash,
 * unfencing on return, preferred-leader rebalancing and controlled shutdown.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Admin, type TopicDescription } from "../../packages/client/src/index.js";
import { ControllerQuorumClient } from "../../packages/controller/src/index.js";
import { runFlotilla } from "../helpers/cli.js";
import { freePorts, killAllProcesses, startTsProcess, type ChildHandle } from "../helpers/processes.js";

const NODES = [1, 2, 3];
const SESSION_TIMEOUT_MS = 4000;

let dataDir: string;
let clientPorts: number[];
let controllerPorts: number[];
const procs = new Map<number, ChildHandle>();

const voters = () => NODES.map((id, i) => `${id}@127.0.0.1:${controllerPorts[i]}`).join(",");
const controllerAddresses = () => controllerPorts.map((p) => `127.0.0.1:${p}`);

async function startNodeProcess(id: number): Promise<ChildHandle> {
  const i = id - 1;
  const child = await startTsProcess({
    name: `cluster-node-${id}`,
    entry: "packages/cli/src/main.ts",
    args: [
      "server",
      ...["node.id=" + id, "process.roles=broker,controller", `controller.quorum.voters=${voters()}`].flatMap((o) => ["--override", o]),
      ...[
        `listeners=PLAINTEXT://127.0.0.1:${clientPorts[i]},CONTROLLER://127.0.0.1:${controllerPorts[i]}`,
        `log.dirs=${path.join(dataDir, `node-${id}`)}`,
        `broker.session.timeout.ms=${SESSION_TIMEOUT_MS}`,
        "broker.heartbeat.interval.ms=300",
        "controller.quorum.election.timeout.ms=1000",
        "leader.imbalance.check.interval.seconds=1",
        "default.replication.factor=3",
      ].flatMap((o) => ["--override", o]),
    ],
    env: { FLOTILLA_LOG_LEVEL: "info" },
    readyLine: /"event":"ready"/,
    readyTimeoutMs: 40_000,
  });
  procs.set(id, child);
  return child;
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ""}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function admin(id: number): Admin {
  return new Admin({ bootstrapServers: `127.0.0.1:${clientPorts[id - 1]}` });
}

async function describe1(id: number, topic: string): Promise<TopicDescription> {
  const a = admin(id);
  try {
    const [t] = await a.describeTopics({ topics: [topic] });
    return t!;
  } finally {
    await a.close();
  }
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
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-cluster-"));
  const ports = await freePorts(6);
  clientPorts = ports.slice(0, 3);
  controllerPorts = ports.slice(3);
  await Promise.all(NODES.map((id) => startNodeProcess(id)));
}, 60_000);

afterAll(async () => {
  await killAllProcesses();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe("a 3-node cluster of combined nodes", () => {
  it("elects a new active controller after kill -9, moves the dead broker's leaderships, unfences it on return, and moves leaderships away on SIGTERM", async () => {
    const quorum = new ControllerQuorumClient({ addresses: controllerAddresses(), totalTimeoutMs: 10_000 });
    try {
      const cluster = await waitFor("three unfenced brokers", async () => {
        const c = await quorum.describeCluster();
        return c.brokers.length === 3 && c.brokers.every((b) => !b.fenced) ? c : undefined;
      }, 20_000);
      expect(cluster.brokers.map((b) => b.brokerId)).toEqual([1, 2, 3]);
      const described = await runFlotilla(["cluster", "describe", "--bootstrap-controller", controllerAddresses().join(",")]);
      expect(described.code, described.stderr).toBe(0);
      expect(described.stdout).toMatch(new RegExp(`^1 +PLAINTEXT://127.0.0.1:${clientPorts[0]} +alive`, "m"));
      expect(described.stdout).toMatch(/^Quorum: leader [123], term \d+/m);
      expect(described.stdout.match(/^\d+ +127\.0\.0\.1:\d+ +(leader|follower) /gm)).toHaveLength(3);

      // A topic with RF 3: every broker leads some of its partitions.
      const a1 = admin(1);
      await a1.createTopics({ topics: [{ topic: "orders", numPartitions: 6, replicationFactor: 3 }] });
      await a1.close();
      const orders = await describe1(2, "orders");
      expect(orders.partitions).toHaveLength(6);
      for (const p of orders.partitions) expect([...p.replicas].sort()).toEqual([1, 2, 3]);
      expect(new Set(orders.partitions.map((p) => p.leader))).toEqual(new Set([1, 2, 3]));

      // kill -9 the active controller.
      const q = await quorum.describeQuorum();
      // Metadata names the active controller (the quorum's Raft leader), on every node.
      await waitFor("every node's Metadata naming the Raft leader as controller", async () => {
        const ids = await Promise.all(NODES.map((id) => controllerIdVia(id)));
        return ids.every((x) => x === q.leaderId) ? true : undefined;
      }, 10_000);
      const leaderAddress = controllerAddresses()[q.leaderId - 1]!;
      const lead = await quorum.describeQuorum(leaderAddress);
      expect(lead.leaderId).toBe(q.leaderId);
      expect(lead.voters.every((v) => v.lag >= 0)).toBe(true);
      const dead = q.leaderId;
      await procs.get(dead)!.kill("SIGKILL");
      const alive = NODES.filter((id) => id !== dead);

      const next = await waitFor("a new active controller", async () => {
        const d = await quorum.describeQuorum(controllerAddresses()[alive[0]! - 1]);
        return d.leaderId !== 0 && d.leaderId !== dead ? d : undefined;
      }, 15_000);
      expect(alive).toContain(next.leaderId);
      await waitFor("the surviving nodes' Metadata naming the new active controller", async () => {
        const ids = await Promise.all(alive.map((id) => controllerIdVia(id)));
        return ids.every((x) => x === next.leaderId) ? true : undefined;
      }, 10_000);

      // Topic creation still works, through a surviving broker.
      const a2 = admin(alive[0]!);
      const [created] = await a2.createTopics({ topics: [{ topic: "after-failover", numPartitions: 2, replicationFactor: 2 }] });
      await a2.close();
      expect(created?.topic).toBe("after-failover");

      // Once its session expires the dead broker is fenced and leads nothing.
      await waitFor("the dead broker fenced and its partitions re-led", async () => {
        const c = await quorum.describeCluster();
        const t = await describe1(alive[0]!, "orders");
        return c.brokers.find((b) => b.brokerId === dead)?.fenced && t.partitions.every((p) => p.leader !== dead && p.leader !== -1) ? true : undefined;
      }, SESSION_TIMEOUT_MS + 10_000);
      const afterKill = await describe1(alive[1]!, "orders");
      for (const p of afterKill.partitions) expect(p.isr).not.toContain(dead);

      // It comes back: registered again, caught up, unfenced; preferred leadership returns to it.
      // Its stored metadata is stale (its partitions changed leaders while it was down): it must
      // not act on that image, so no partition of it takes a role in an epoch older than now.
      const epochsAtRestart = new Map((await describe1(alive[0]!, "orders")).partitions.map((p) => [p.partition, p.leaderEpoch]));
      const restarted = await startNodeProcess(dead);
      await waitFor("the returned broker unfenced", async () => {
        const c = await quorum.describeCluster();
        return c.brokers.find((b) => b.brokerId === dead)?.fenced === false ? true : undefined;
      }, 20_000);
      await waitFor("the returned broker leading its preferred partitions again", async () => {
        const t = await describe1(dead, "orders");
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
      const before = await describe1(alive[0]!, "orders");
      expect(before.partitions.some((p) => p.leader === victim)).toBe(true);
      const exited = await procs.get(victim)!.kill("SIGTERM", 30_000);
      expect(exited.code).toBe(0);
      const after = await describe1(alive[0]!, "orders");
      for (const p of after.partitions) {
        expect(p.leader).not.toBe(victim);
        expect(p.leader).not.toBe(-1);
      }
      const c = await quorum.describeCluster();
      expect(c.brokers.find((b) => b.brokerId === victim)?.fenced).toBe(true);
    } finally {
      quorum.close();
    }
  }, 120_000);
});

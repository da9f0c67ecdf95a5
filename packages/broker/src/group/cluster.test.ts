/**
 * Coordinator failover in a replicated cluster: three combined nodes in this process (a
 * Raft quorum of 3, every broker a replica of __consumer_offsets). A group commits
 * offsets on its coordinator; the coordinator's node shuts down (controlled shutdown moves
 * the partition's leadership to an in-sync follower); the new leader loads the group from
 * its replica and serves the same generation and offsets.
 */
import net from "node:net";
import * as grpc from "@grpc/grpc-js";
import { ErrorCodes } from "@flotilla/common";
import { silentLogger } from "@flotilla/common/logger";
import {
  GRPC_CHANNEL_OPTIONS,
  GROUP_PROTO,
  GROUP_SERVICE,
  fromServiceError,
  serviceClientCtor,
  type DescribeGroupsResponse,
  type FindCoordinatorResponse,
  type HeartbeatResponse,
  type JoinGroupResponse,
  type OffsetCommitResponse,
  type OffsetFetchResponse,
  type SyncGroupResponse,
} from "@flotilla/protocol";
import { afterAll, describe, expect, it } from "vitest";
import { loadServerConfig } from "../config.js";
import { startNode, type NodeHandle } from "../node.js";
import { makeDataDir } from "../test-client.js";

const code = (name: keyof typeof ErrorCodes) => ErrorCodes[name].code;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

class RawGroupClient {
  private readonly client: grpc.Client & Record<string, unknown>;
  constructor(address: string) {
    const Ctor = serviceClientCtor(GROUP_PROTO, GROUP_SERVICE);
    this.client = new Ctor(address, grpc.credentials.createInsecure(), GRPC_CHANNEL_OPTIONS) as grpc.Client & Record<string, unknown>;
  }
  call<Res>(method: string, request: unknown, deadlineMs = 10_000): Promise<Res> {
    const fn = this.client[method] as (req: unknown, meta: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: Res) => void) => void;
    return new Promise((resolve, reject) => {
      fn.call(this.client, request, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (err, res) => (err ? reject(fromServiceError(err, method)) : resolve(res)));
    });
  }
  close(): void {
    this.client.close();
  }
}

/** Calls `fn` until `done` holds (bounded by count and time); returns the last answer. */
async function until<T>(fn: () => Promise<T>, done: (r: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  for (let i = 0; i < 1000; i++) {
    try {
      last = await fn();
      if (done(last)) return last;
    } catch {
      // A node that is starting or stopping refuses calls; ask again.
    }
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`condition not met in ${timeoutMs} ms; last answer ${JSON.stringify(last)}`);
}

const nodes = new Map<number, NodeHandle>();
const clients: RawGroupClient[] = [];
const dirs: (() => Promise<void>)[] = [];

afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all([...nodes.values()].map((n) => n.close()));
  for (const remove of dirs) await remove();
});

describe("group coordinator in a 3-node cluster", () => {
  it("after the coordinator's node shuts down, the new leader of the offsets partition serves the group and its offsets", { timeout: 90_000 }, async () => {
    const ids = [1, 2, 3];
    const clientPorts = await Promise.all(ids.map(() => freePort()));
    const controllerPorts = await Promise.all(ids.map(() => freePort()));
    const voters = ids.map((id, i) => `${id}@127.0.0.1:${controllerPorts[i]}`).join(",");
    const started = await Promise.all(
      ids.map(async (id, i) => {
        const data = await makeDataDir();
        dirs.push(data.remove);
        const config = loadServerConfig({
          env: {},
          overrides: {
            "node.id": String(id),
            "process.roles": "broker,controller",
            "controller.quorum.voters": voters,
            "controller.listener.names": "CONTROLLER",
            listeners: `PLAINTEXT://127.0.0.1:${clientPorts[i]},CONTROLLER://127.0.0.1:${controllerPorts[i]}`,
            "log.dirs": data.dir,
            "offsets.topic.num.partitions": "1",
            "offsets.topic.replication.factor": "3",
            "group.initial.rebalance.delay.ms": "0",
          },
        });
        const node = await startNode(config, { logger: silentLogger() });
        nodes.set(id, node);
        return node;
      }),
    );
    const clientOf = new Map(started.map((n) => [n.nodeId, new RawGroupClient(n.address)]));
    clients.push(...clientOf.values());

    // The offsets topic needs three live brokers for RF 3: ask until the answer names a coordinator.
    const found = await until(
      () => clientOf.get(1)!.call<FindCoordinatorResponse>("FindCoordinator", { key: "g", keyType: 0 }),
      (r) => r.errorCode === 0,
    );
    const coordinatorId = found.nodeId;
    const coordinator = clientOf.get(coordinatorId)!;
    const join = (memberId: string) =>
      coordinator.call<JoinGroupResponse>("JoinGroup", { groupId: "g", sessionTimeoutMs: 30_000, rebalanceTimeoutMs: 10_000, memberId, protocolType: "consumer", protocols: [{ name: "range", metadata: Buffer.from("s") }], clientId: "c" });
    const first = await until(() => join(""), (r) => r.errorCode === code("MEMBER_ID_REQUIRED"));
    const joined = await join(first.memberId);
    expect(joined).toMatchObject({ errorCode: 0, generationId: 1, leader: first.memberId });
    const synced = await coordinator.call<SyncGroupResponse>("SyncGroup", { groupId: "g", generationId: 1, memberId: first.memberId, assignments: [{ memberId: first.memberId, assignment: Buffer.from("all") }] });
    expect(synced.errorCode).toBe(0);
    const committed = await coordinator.call<OffsetCommitResponse>("OffsetCommit", {
      groupId: "g",
      generationId: 1,
      memberId: first.memberId,
      topics: [{ name: "t", partitions: [{ partition: 0, committedOffset: 42, committedLeaderEpoch: 0, committedMetadata: "" }] }],
    });
    expect(committed.errorCode).toBe(0);

    // The coordinator's node goes away; another broker takes over the partition.
    await nodes.get(coordinatorId)!.close();
    nodes.delete(coordinatorId);
    const survivor = clientOf.get(ids.find((id) => id !== coordinatorId)!)!;
    const moved = await until(
      () => survivor.call<FindCoordinatorResponse>("FindCoordinator", { key: "g", keyType: 0 }),
      (r) => r.errorCode === 0 && r.nodeId !== coordinatorId,
    );
    const next = clientOf.get(moved.nodeId)!;
    const fetched = await until(
      () => next.call<OffsetFetchResponse>("OffsetFetch", { groupId: "g", topics: [{ name: "t", partitions: [0] }] }),
      (r) => r.errorCode === 0,
    );
    expect(fetched.topics[0]?.partitions[0]?.committedOffset).toBe(42);
    const described = await next.call<DescribeGroupsResponse>("DescribeGroups", { groupIds: ["g"] });
    expect(described.groups[0]).toMatchObject({ groupState: "Stable", protocolData: "range" });
    expect(described.groups[0]?.members.map((m) => m.memberId)).toEqual([first.memberId]);
    expect((await next.call<HeartbeatResponse>("Heartbeat", { groupId: "g", generationId: 1, memberId: first.memberId })).errorCode).toBe(0);
  });
});

/**
 * The group coordinator through a real node over gRPC (in process, 127.0.0.1 port 0):
 * two raw clients run a full join/sync/commit/fetch cycle, then the node restarts on the
 * same data and the group and its offsets come back from __consumer_offsets.
 */
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
  type JoinGroupRequest,
  type JoinGroupResponse,
  type ListGroupsResponse,
  type OffsetCommitResponse,
  type OffsetFetchResponse,
  type SyncGroupResponse,
} from "@flotilla/protocol";
import { afterEach, describe, expect, it } from "vitest";
import { loadServerConfig } from "../config.js";
import { startNode, type NodeHandle } from "../node.js";
import { RawBrokerClient, makeDataDir } from "../test-client.js";
import { clientHostOf } from "./grpc.js";

const code = (name: keyof typeof ErrorCodes) => ErrorCodes[name].code;

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

function joinRequest(memberId: string, clientId: string): Partial<JoinGroupRequest> {
  return { groupId: "g", sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000, memberId, protocolType: "consumer", protocols: [{ name: "range", metadata: Buffer.from(`sub-${clientId}`) }], clientId };
}

const started: { node: NodeHandle; clients: RawGroupClient[] }[] = [];
const dirs: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const s of started.splice(0)) {
    for (const c of s.clients) c.close();
    await s.node.close();
  }
  for (const remove of dirs.splice(0)) await remove();
});

async function start(dataDir: string): Promise<{ node: NodeHandle; a: RawGroupClient; b: RawGroupClient }> {
  const config = loadServerConfig({
    env: {},
    overrides: {
      "node.id": "1",
      listeners: "PLAINTEXT://127.0.0.1:0",
      "log.dirs": dataDir,
      "offsets.topic.num.partitions": "3",
      "group.initial.rebalance.delay.ms": "0",
    },
  });
  const node = await startNode(config, { logger: silentLogger() });
  const a = new RawGroupClient(node.address);
  const b = new RawGroupClient(node.address);
  started.push({ node, clients: [a, b] });
  return { node, a, b };
}

/** Retries a call while the coordinator loads (bounded by count and time). */
async function whileLoading<T extends { errorCode: number }>(fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (let i = 0; i < 200; i++) {
    const r = await fn();
    if (r.errorCode !== code("COORDINATOR_LOAD_IN_PROGRESS") && r.errorCode !== code("NOT_COORDINATOR")) return r;
    if (Date.now() > deadline) return r;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error("coordinator did not finish loading");
}

describe("group coordinator over gRPC", () => {
  it("shows client hosts the way Kafka does", () => {
    expect(clientHostOf("127.0.0.1:5555")).toBe("/127.0.0.1");
    expect(clientHostOf("ipv4:10.0.0.2:1")).toBe("/10.0.0.2");
    expect(clientHostOf("[::1]:5555")).toBe("/::1");
  });

  it("two members join, sync, commit and fetch; after a node restart the group and offsets come back from __consumer_offsets", { timeout: 30_000 }, async () => {
    const data = await makeDataDir();
    dirs.push(data.remove);
    const { node, a, b } = await start(data.dir);

    const found = await a.call<FindCoordinatorResponse>("FindCoordinator", { key: "g", keyType: 0 });
    expect(found).toMatchObject({ errorCode: 0, nodeId: 1, host: "127.0.0.1", port: node.port });
    // The first FindCoordinator created the internal topic: 3 partitions, RF capped to the 1 live broker, no retention.
    const admin = new RawBrokerClient(node.address);
    try {
      const topic = (await admin.describeTopics({ names: ["__consumer_offsets"] })).topics[0];
      expect(topic).toMatchObject({ errorCode: 0, replicationFactor: 1 });
      expect(topic?.partitions).toHaveLength(3);
      expect(topic?.configs["retention.ms"]).toBe("-1");
      expect(topic?.configs["retention.bytes"]).toBe("-1");
    } finally {
      admin.close();
    }

    // A joins alone: MEMBER_ID_REQUIRED, then generation 1 with A as leader.
    const a0 = await whileLoading(() => a.call<JoinGroupResponse>("JoinGroup", joinRequest("", "a")));
    expect(a0.errorCode).toBe(code("MEMBER_ID_REQUIRED"));
    const a1 = await a.call<JoinGroupResponse>("JoinGroup", joinRequest(a0.memberId, "a"));
    expect(a1).toMatchObject({ errorCode: 0, generationId: 1, leader: a0.memberId });
    const as1 = await a.call<SyncGroupResponse>("SyncGroup", { groupId: "g", generationId: 1, memberId: a0.memberId, assignments: [{ memberId: a0.memberId, assignment: Buffer.from("all") }] });
    expect(as1.assignment.toString()).toBe("all");

    // B joins: A is told to rejoin; both land in generation 2.
    const b0 = await b.call<JoinGroupResponse>("JoinGroup", joinRequest("", "b"));
    expect(b0.errorCode).toBe(code("MEMBER_ID_REQUIRED"));
    const b1 = b.call<JoinGroupResponse>("JoinGroup", joinRequest(b0.memberId, "b"));
    const hb = await whileLoading(async () => {
      const r = await a.call<HeartbeatResponse>("Heartbeat", { groupId: "g", generationId: 1, memberId: a0.memberId });
      // Until B's join has reached the coordinator the heartbeat is fine: ask again.
      return r.errorCode === 0 ? { ...r, errorCode: code("COORDINATOR_LOAD_IN_PROGRESS") } : r;
    });
    expect(hb.errorCode).toBe(code("REBALANCE_IN_PROGRESS"));
    const a2 = await a.call<JoinGroupResponse>("JoinGroup", joinRequest(a0.memberId, "a"));
    const b2 = await b1;
    expect(a2).toMatchObject({ errorCode: 0, generationId: 2, leader: a0.memberId });
    expect(b2).toMatchObject({ errorCode: 0, generationId: 2, leader: a0.memberId, members: [] });
    expect(a2.members.map((m) => m.memberId).sort()).toEqual([a0.memberId, b0.memberId].sort());

    const bSync = b.call<SyncGroupResponse>("SyncGroup", { groupId: "g", generationId: 2, memberId: b0.memberId });
    const aSync = await a.call<SyncGroupResponse>("SyncGroup", {
      groupId: "g",
      generationId: 2,
      memberId: a0.memberId,
      assignments: [
        { memberId: a0.memberId, assignment: Buffer.from("t-0") },
        { memberId: b0.memberId, assignment: Buffer.from("t-1") },
      ],
    });
    expect(aSync).toMatchObject({ errorCode: 0, protocolName: "range" });
    expect(aSync.assignment.toString()).toBe("t-0");
    expect((await bSync).assignment.toString()).toBe("t-1");

    const commit = (client: RawGroupClient, memberId: string, generationId: number, partition: number, offset: number) =>
      client.call<OffsetCommitResponse>("OffsetCommit", { groupId: "g", generationId, memberId, topics: [{ name: "t", partitions: [{ partition, committedOffset: offset, committedLeaderEpoch: 0, committedMetadata: "" }] }] });
    expect((await commit(a, a0.memberId, 2, 0, 5)).topics[0]?.partitions[0]?.errorCode).toBe(0);
    expect((await commit(b, b0.memberId, 2, 1, 7)).errorCode).toBe(0);
    expect((await commit(a, a0.memberId, 1, 0, 99)).errorCode).toBe(code("ILLEGAL_GENERATION"));

    const fetchAll = (client: RawGroupClient) => client.call<OffsetFetchResponse>("OffsetFetch", { groupId: "g", topics: [{ name: "t", partitions: [0, 1, 2] }] });
    const fetched = await fetchAll(b);
    expect(fetched.topics[0]?.partitions.map((p) => p.committedOffset)).toEqual([5, 7, -1]);

    const described = await a.call<DescribeGroupsResponse>("DescribeGroups", { groupIds: ["g"] });
    expect(described.groups[0]).toMatchObject({ errorCode: 0, groupState: "Stable", protocolType: "consumer", protocolData: "range" });
    expect(described.groups[0]?.members.map((m) => [m.clientId, m.clientHost, m.memberAssignment.toString()]).sort()).toEqual([
      ["a", "/127.0.0.1", "t-0"],
      ["b", "/127.0.0.1", "t-1"],
    ]);
    expect((await a.call<ListGroupsResponse>("ListGroups", {})).groups).toEqual([{ groupId: "g", protocolType: "consumer", groupState: "Stable" }]);

    // Restart on the same data.
    const first = started.pop()!;
    for (const c of first.clients) c.close();
    await first.node.close();
    const again = await start(data.dir);
    const refound = await whileLoading(() => again.a.call<FindCoordinatorResponse>("FindCoordinator", { key: "g", keyType: 0 }));
    expect(refound).toMatchObject({ errorCode: 0, nodeId: 1, port: again.node.port });
    const refetched = await whileLoading(() => fetchAll(again.a));
    expect(refetched.topics[0]?.partitions.map((p) => p.committedOffset)).toEqual([5, 7, -1]);
    const redescribed = await again.a.call<DescribeGroupsResponse>("DescribeGroups", { groupIds: ["g"] });
    expect(redescribed.groups[0]).toMatchObject({ groupState: "Stable", protocolData: "range" });
    expect(redescribed.groups[0]?.members.map((m) => m.memberId).sort()).toEqual([a0.memberId, b0.memberId].sort());
    // The members carry on in generation 2 with the restarted coordinator.
    expect((await again.a.call<HeartbeatResponse>("Heartbeat", { groupId: "g", generationId: 2, memberId: a0.memberId })).errorCode).toBe(0);
    const bAgain = await again.b.call<SyncGroupResponse>("SyncGroup", { groupId: "g", generationId: 2, memberId: b0.memberId });
    expect(bAgain.assignment.toString()).toBe("t-1");
    expect((await commit(again.b, b0.memberId, 2, 1, 8)).errorCode).toBe(0);
    expect((await fetchAll(again.a)).topics[0]?.partitions.map((p) => p.committedOffset)).toEqual([5, 8, -1]);

    // Deleting topic t deletes the group's offsets of it (the topic must exist to be deleted).
    const topicsAdmin = new RawBrokerClient(again.node.address);
    try {
      await topicsAdmin.createTopics({ topics: [{ name: "t", numPartitions: 1, replicationFactor: 1, configs: {} }], timeoutMs: 5000, validateOnly: false });
      expect((await commit(again.b, b0.memberId, 2, 1, 9)).errorCode).toBe(0);
      expect((await topicsAdmin.deleteTopics({ names: ["t"], timeoutMs: 5000 })).results[0]?.errorCode).toBe(0);
    } finally {
      topicsAdmin.close();
    }
    const afterDelete = await whileLoading(async () => {
      const r = await fetchAll(again.a);
      // The image change reaches the coordinator asynchronously: ask until it did.
      return r.topics[0]?.partitions.some((p) => p.committedOffset >= 0) ? { ...r, errorCode: code("COORDINATOR_LOAD_IN_PROGRESS") } : r;
    });
    expect(afterDelete.topics[0]?.partitions.map((p) => p.committedOffset)).toEqual([-1, -1, -1]);
  });

  it("a node that shuts down answers parked joins NOT_COORDINATOR at once instead of holding its shutdown", { timeout: 30_000 }, async () => {
    const data = await makeDataDir();
    dirs.push(data.remove);
    const { node, a, b } = await start(data.dir);
    expect((await a.call<FindCoordinatorResponse>("FindCoordinator", { key: "g", keyType: 0 })).errorCode).toBe(0);
    const a0 = await whileLoading(() => a.call<JoinGroupResponse>("JoinGroup", joinRequest("", "a")));
    const a1 = await a.call<JoinGroupResponse>("JoinGroup", joinRequest(a0.memberId, "a"));
    expect(a1.errorCode).toBe(0);
    await a.call<SyncGroupResponse>("SyncGroup", { groupId: "g", generationId: 1, memberId: a0.memberId, assignments: [] });
    // B's join parks: A has not rejoined, and the rebalance timeout is 10 s.
    const b0 = await b.call<JoinGroupResponse>("JoinGroup", joinRequest("", "b"));
    const parked = b.call<JoinGroupResponse>("JoinGroup", joinRequest(b0.memberId, "b"));
    await new Promise((r) => setTimeout(r, 200));
    const startedMs = Date.now();
    started.pop();
    await node.close();
    expect(Date.now() - startedMs).toBeLessThan(3000);
    expect((await parked).errorCode).toBe(code("NOT_COORDINATOR"));
    a.close();
    b.close();
  });
});

import { ErrorCodes } from "@flotilla/common";
import { silentLogger } from "@flotilla/common/logger";
import type { FindCoordinatorRequest, GroupCoordinatorApi } from "@flotilla/protocol";
import { ApiKey, KafkaReader, KafkaWriter } from "@flotilla/protocol/kafka";
import { describe, expect, it } from "vitest";
import { DEFAULT_GROUP_COORDINATOR_CONFIG } from "../../group/config.js";
import { GroupCoordinatorEngine } from "../../group/coordinator.js";
import { MemoryOffsetsLog } from "../../group/memory-offsets-log.js";
import { ManualTimer } from "../../group/timer.js";
import type { KafkaBackends, KafkaHandler } from "../handler.js";
import { groupHandlers } from "./groups.js";

const code = (name: keyof typeof ErrorCodes): number => ErrorCodes[name].code;
const NUM_PARTITIONS = 3;
const SESSION_MS = 10_000;

/** Kafka's ConsumerProtocolSubscription v0 for `topics`: opaque to the broker, compared byte for byte. */
function subscription(...topics: string[]): Buffer {
  return new KafkaWriter()
    .int16(0)
    .array(topics, (w, t) => w.string(t))
    .nullableBytes(null)
    .toBuffer();
}

/** Kafka's ConsumerProtocolAssignment v0: one topic with `partitions`. */
function assignment(topic: string, partitions: number[]): Buffer {
  return new KafkaWriter()
    .int16(0)
    .array([topic], (w, t) => w.string(t).array(partitions, (w, p) => w.int32(p)))
    .nullableBytes(null)
    .toBuffer();
}

/** Lets the memory log's appends and the promise callbacks after them run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

/**
 * Group handlers over a real coordinator engine (in-memory __consumer_offsets, manual
 * time). Requests are written as a client writes them and go through the codec, the
 * handler and back through the codec, as on a connection.
 */
class Harness {
  readonly timer = new ManualTimer();
  readonly engine = new GroupCoordinatorEngine({
    config: { ...DEFAULT_GROUP_COORDINATOR_CONFIG, offsetsTopicNumPartitions: NUM_PARTITIONS, groupInitialRebalanceDelayMs: 0 },
    log: new MemoryOffsetsLog(),
    clock: this.timer,
    timer: this.timer,
    logger: silentLogger(),
  });
  readonly findCalls: FindCoordinatorRequest[] = [];
  readonly handlers: Map<number, KafkaHandler>;

  constructor(withCoordinator = true) {
    const e = this.engine;
    const api: GroupCoordinatorApi = {
      // The engine has no FindCoordinator (the service answers it from the metadata image).
      findCoordinator: (r) => {
        this.findCalls.push(r);
        return Promise.resolve({ errorCode: 0, errorMessage: "", nodeId: 2, host: "127.0.0.1", port: 19092 });
      },
      joinGroup: (r, c) => e.joinGroup(r, c),
      syncGroup: (r, c) => e.syncGroup(r, c),
      heartbeat: (r) => e.heartbeat(r),
      leaveGroup: (r) => e.leaveGroup(r),
      offsetCommit: (r) => e.offsetCommit(r),
      offsetFetch: (r) => e.offsetFetch(r),
      listGroups: (r) => e.listGroups(r),
      describeGroups: (r) => e.describeGroups(r),
      deleteGroups: (r) => e.deleteGroups(r),
    };
    const backends: KafkaBackends = {
      broker: {} as KafkaBackends["broker"],
      ...(withCoordinator ? { groups: api } : {}),
      brokerConfigs: () => ({}),
      nodeId: 1,
      logger: silentLogger(),
    };
    this.handlers = new Map(groupHandlers(backends).map((h) => [h.spec.apiKey, h]));
  }

  async loadAll(): Promise<void> {
    for (let p = 0; p < NUM_PARTITIONS; p++) await this.engine.loadPartition(p);
  }

  /** Decodes `body`, handles it, encodes the response and returns it decoded-as-written (the handler's object) plus its bytes. */
  async call<Res>(apiKey: number, version: number, body: Buffer, clientId = "rdkafka"): Promise<Res> {
    const h = this.handlers.get(apiKey);
    if (!h) throw new Error(`no handler for API key ${apiKey}`);
    const reader = new KafkaReader(body);
    const req = h.spec.decodeRequest(reader, version);
    expect(reader.remaining).toBe(0);
    const res = await h.handle(req, { apiVersion: version, correlationId: 1, clientId, clientHost: "/127.0.0.9", signal: new AbortController().signal });
    expect(res).toBeDefined();
    const w = new KafkaWriter();
    h.spec.encodeResponse(w, version, res);
    expect(w.length).toBeGreaterThan(0);
    return res as Res;
  }

  join(version: number, group: string, memberId: string, metadata: Buffer, clientId = "rdkafka", instanceId: string | null = null): Promise<JoinRes> {
    const w = new KafkaWriter().string(group).int32(SESSION_MS);
    if (version >= 1) w.int32(SESSION_MS * 3);
    w.string(memberId);
    if (version >= 5) w.nullableString(instanceId);
    w.string("consumer").array(["range"], (w, name) => w.string(name).bytes(metadata));
    return this.call<JoinRes>(ApiKey.JoinGroup, version, w.toBuffer(), clientId);
  }

  sync(version: number, group: string, generation: number, memberId: string, assignments: [string, Buffer][] = []): Promise<{ errorCode: number; assignment: Buffer }> {
    const w = new KafkaWriter().string(group).int32(generation).string(memberId);
    if (version >= 3) w.nullableString(null);
    w.array(assignments, (w, [id, a]) => w.string(id).bytes(a));
    return this.call(ApiKey.SyncGroup, version, w.toBuffer());
  }

  heartbeat(version: number, group: string, generation: number, memberId: string): Promise<{ errorCode: number }> {
    const w = new KafkaWriter().string(group).int32(generation).string(memberId);
    if (version >= 3) w.nullableString(null);
    return this.call(ApiKey.Heartbeat, version, w.toBuffer());
  }

  commit(version: number, group: string, generation: number, memberId: string, topic: string, offsets: [number, number][], leaderEpoch = 7): Promise<CommitRes> {
    const w = new KafkaWriter().string(group);
    if (version >= 1) w.int32(generation).string(memberId);
    if (version >= 7) w.nullableString(null);
    if (version >= 2 && version <= 4) w.int64(-1);
    w.array([topic], (w, t) =>
      w.string(t).array(offsets, (w, [p, o]) => {
        w.int32(p).int64(o);
        if (version >= 6) w.int32(leaderEpoch);
        if (version === 1) w.int64(-1);
        w.nullableString(null);
      }),
    );
    return this.call(ApiKey.OffsetCommit, version, w.toBuffer());
  }

  fetchOffsets(version: number, group: string, topics: [string, number[]][] | null): Promise<FetchRes> {
    const w = new KafkaWriter().string(group);
    if (topics === null) w.int32(-1);
    else w.array(topics, (w, [t, ps]) => w.string(t).array(ps, (w, p) => w.int32(p)));
    return this.call(ApiKey.OffsetFetch, version, w.toBuffer());
  }
}

interface JoinRes {
  errorCode: number;
  generationId: number;
  protocolName: string;
  leader: string;
  memberId: string;
  members: { memberId: string; groupInstanceId: string | null; metadata: Buffer }[];
}
interface CommitRes {
  topics: { name: string; partitions: { partitionIndex: number; errorCode: number }[] }[];
}
interface FetchRes {
  errorCode: number;
  topics: { name: string; partitions: { partitionIndex: number; committedOffset: number; committedLeaderEpoch: number; metadata: string | null; errorCode: number }[] }[];
}

describe("Kafka group handlers", () => {
  it("answer COORDINATOR_NOT_AVAILABLE for every group API on a broker without a coordinator", async () => {
    const h = new Harness(false);
    const bodies: [number, number, Buffer][] = [
      [ApiKey.FindCoordinator, 2, new KafkaWriter().string("g").int8(0).toBuffer()],
      [ApiKey.JoinGroup, 5, new KafkaWriter().string("g").int32(SESSION_MS).int32(SESSION_MS).string("").nullableString(null).string("consumer").array([], () => {}).toBuffer()],
      [ApiKey.SyncGroup, 3, new KafkaWriter().string("g").int32(1).string("m").nullableString(null).array([], () => {}).toBuffer()],
      [ApiKey.Heartbeat, 3, new KafkaWriter().string("g").int32(1).string("m").nullableString(null).toBuffer()],
      [ApiKey.LeaveGroup, 3, new KafkaWriter().string("g").array(["m"], (w, m) => w.string(m).nullableString(null)).toBuffer()],
      [ApiKey.OffsetCommit, 7, new KafkaWriter().string("g").int32(1).string("m").nullableString(null).array(["t"], (w, t) => w.string(t).array([0], (w, p) => w.int32(p).int64(1).int32(-1).nullableString(null))).toBuffer()],
      [ApiKey.OffsetFetch, 5, new KafkaWriter().string("g").int32(-1).toBuffer()],
      [ApiKey.DescribeGroups, 4, new KafkaWriter().array(["g"], (w, g) => w.string(g)).boolean(false).toBuffer()],
      [ApiKey.ListGroups, 2, Buffer.alloc(0)],
    ];
    expect(h.handlers.size).toBe(bodies.length);
    for (const [apiKey, version, body] of bodies) {
      const res = await h.call<Record<string, unknown>>(apiKey, version, body);
      const codes = JSON.stringify(res).match(/"errorCode":(-?\d+)/g) ?? [];
      expect(codes.length, `API ${apiKey}`).toBeGreaterThan(0);
      for (const c of codes) expect(c, `API ${apiKey}`).toBe(`"errorCode":${code("COORDINATOR_NOT_AVAILABLE")}`);
    }
  });

  it("FindCoordinator answers the coordinator of a group and refuses transactional keys without asking the coordinator", async () => {
    const h = new Harness();
    const v0 = await h.call(ApiKey.FindCoordinator, 0, new KafkaWriter().string("orders").toBuffer());
    expect(v0).toEqual({ throttleTimeMs: 0, errorCode: 0, errorMessage: null, nodeId: 2, host: "127.0.0.1", port: 19092 });
    expect(h.findCalls).toEqual([{ key: "orders", keyType: 0 }]);
    const txn = await h.call<{ errorCode: number; errorMessage: string; nodeId: number }>(ApiKey.FindCoordinator, 1, new KafkaWriter().string("tx-1").int8(1).toBuffer());
    expect(txn.errorCode).toBe(code("INVALID_REQUEST"));
    expect(txn.errorMessage).toMatch(/key type 1/);
    expect(txn.nodeId).toBe(-1);
    expect(h.findCalls).toHaveLength(1);
  });

  it("admits a new JoinGroup v0-v3 member in one round trip, but answers v4+ MEMBER_ID_REQUIRED first (KIP-394)", async () => {
    const h = new Harness();
    await h.loadAll();
    const meta = subscription("t1");
    const old = await h.join(3, "g-old", "", meta, "legacy-client");
    expect(old.errorCode).toBe(0);
    expect(old.memberId).toMatch(/^legacy-client-/);
    expect(old.leader).toBe(old.memberId);
    expect(old.generationId).toBe(1);
    expect(old.members.map((m) => [m.memberId, m.groupInstanceId, m.metadata.equals(meta)])).toEqual([[old.memberId, null, true]]);

    const first = await h.join(4, "g-new", "", meta);
    expect(first.errorCode).toBe(code("MEMBER_ID_REQUIRED"));
    expect(first.memberId).not.toBe("");
    const second = await h.join(4, "g-new", first.memberId, meta);
    expect(second).toMatchObject({ errorCode: 0, memberId: first.memberId, leader: first.memberId, generationId: 1 });
    // The pre-KIP-394 path left no pending member behind: the group has exactly the one member.
    expect(h.engine.inspect("g-old")?.members.map((m) => [m.memberId, m.clientId, m.clientHost])).toEqual([[old.memberId, "legacy-client", "/127.0.0.9"]]);
  });

  it("runs a two-member rebalance across versions, passing subscriptions and assignments through byte for byte", async () => {
    const h = new Harness();
    await h.loadAll();
    const subA = subscription("t1");
    const subB = Buffer.concat([subscription("t1"), Buffer.from("user-data")]);
    const a1 = await h.join(5, "g", "", subA);
    const a = await h.join(5, "g", a1.memberId, subA);
    expect(a.generationId).toBe(1);
    const asgA1 = assignment("t1", [0, 1, 2, 3]);
    expect((await h.sync(3, "g", 1, a.memberId, [[a.memberId, asgA1]])).assignment.equals(asgA1)).toBe(true);
    await settle();
    expect((await h.heartbeat(3, "g", 1, a.memberId)).errorCode).toBe(0);

    // B joins with an old version: parked until A rejoins, which A learns from its heartbeat.
    const bJoin = h.join(1, "g", "", subB, "kafkajs");
    await settle();
    expect((await h.heartbeat(0, "g", 1, a.memberId)).errorCode).toBe(code("REBALANCE_IN_PROGRESS"));
    const aRejoin = await h.join(5, "g", a.memberId, subA);
    const b = await bJoin;
    expect([aRejoin.errorCode, b.errorCode, aRejoin.generationId, b.generationId]).toEqual([0, 0, 2, 2]);
    expect(aRejoin.leader).toBe(a.memberId);
    expect(b.members).toEqual([]);
    const seen = new Map(aRejoin.members.map((m) => [m.memberId, m.metadata]));
    expect(seen.get(a.memberId)?.equals(subA)).toBe(true);
    expect(seen.get(b.memberId)?.equals(subB)).toBe(true);

    const asgA = assignment("t1", [0, 1]);
    const asgB = assignment("t1", [2, 3]);
    const bSync = h.sync(0, "g", 2, b.memberId);
    const aSync = await h.sync(3, "g", 2, a.memberId, [
      [a.memberId, asgA],
      [b.memberId, asgB],
    ]);
    expect(aSync.assignment.equals(asgA)).toBe(true);
    expect((await bSync).assignment.equals(asgB)).toBe(true);

    const described = await h.call<{ groups: { errorCode: number; groupState: string; protocolData: string; authorizedOperations: number; members: { memberId: string; clientId: string; clientHost: string; memberMetadata: Buffer; memberAssignment: Buffer }[] }[] }>(
      ApiKey.DescribeGroups,
      4,
      new KafkaWriter().array(["g"], (w, g) => w.string(g)).boolean(true).toBuffer(),
    );
    const g = described.groups[0]!;
    expect([g.errorCode, g.groupState, g.protocolData]).toEqual([0, "Stable", "range"]);
    expect(g.authorizedOperations).toBe((1 << 3) | (1 << 6) | (1 << 8));
    const bDesc = g.members.find((m) => m.memberId === b.memberId)!;
    expect([bDesc.clientId, bDesc.clientHost, bDesc.memberMetadata.equals(subB), bDesc.memberAssignment.equals(asgB)]).toEqual(["kafkajs", "/127.0.0.9", true, true]);

    const listed = await h.call<{ errorCode: number; groups: { groupId: string; protocolType: string }[] }>(ApiKey.ListGroups, 2, Buffer.alloc(0));
    expect(listed).toEqual({ throttleTimeMs: 0, errorCode: 0, groups: [{ groupId: "g", protocolType: "consumer" }] });

    // LeaveGroup v0 (single member) and v3 (batch, one unknown member).
    const left = await h.call<{ errorCode: number }>(ApiKey.LeaveGroup, 0, new KafkaWriter().string("g").string(b.memberId).toBuffer());
    expect(left.errorCode).toBe(0);
    const again = await h.call<{ errorCode: number }>(ApiKey.LeaveGroup, 1, new KafkaWriter().string("g").string(b.memberId).toBuffer());
    expect(again.errorCode).toBe(code("UNKNOWN_MEMBER_ID"));
    const batch = await h.call<{ errorCode: number; members: { memberId: string; errorCode: number }[] }>(
      ApiKey.LeaveGroup,
      3,
      new KafkaWriter()
        .string("g")
        .array([a.memberId, "nobody"], (w, m) => w.string(m).nullableString(null))
        .toBuffer(),
    );
    expect(batch.errorCode).toBe(0);
    expect(batch.members.map((m) => [m.memberId, m.errorCode])).toEqual([
      [a.memberId, 0],
      ["nobody", code("UNKNOWN_MEMBER_ID")],
    ]);
    expect(h.engine.inspect("g")?.state).toBe("Empty");
  });

  it("commits and fetches offsets in every version's shape, including the v0 standalone commit and v2+ fetch of all", async () => {
    const h = new Harness();
    await h.loadAll();
    // v0 has no generation: a standalone commit, accepted for a group without members.
    const v0 = await h.commit(0, "offsets-only", -1, "", "t1", [[0, 10]]);
    expect(v0.topics).toEqual([{ name: "t1", partitions: [{ partitionIndex: 0, errorCode: 0 }] }]);
    const v6 = await h.commit(6, "offsets-only", -1, "", "t2", [
      [1, 20],
      [2, 30],
    ]);
    expect(v6.topics[0]!.partitions.map((p) => p.errorCode)).toEqual([0, 0]);
    const bad = await h.commit(2, "offsets-only", -1, "", "t1", [[3, -5]]);
    expect(bad.topics[0]!.partitions[0]!.errorCode).toBe(code("INVALID_REQUEST"));

    const named = await h.fetchOffsets(1, "offsets-only", [
      ["t1", [0, 1]],
      ["t2", [2]],
    ]);
    expect(named.topics).toEqual([
      {
        name: "t1",
        partitions: [
          { partitionIndex: 0, committedOffset: 10, committedLeaderEpoch: -1, metadata: "", errorCode: 0 },
          { partitionIndex: 1, committedOffset: -1, committedLeaderEpoch: -1, metadata: "", errorCode: 0 },
        ],
      },
      { name: "t2", partitions: [{ partitionIndex: 2, committedOffset: 30, committedLeaderEpoch: 7, metadata: "", errorCode: 0 }] },
    ]);
    const all = await h.fetchOffsets(5, "offsets-only", null);
    expect(all.errorCode).toBe(0);
    expect(all.topics.map((t) => [t.name, t.partitions.map((p) => [p.partitionIndex, p.committedOffset, p.committedLeaderEpoch])])).toEqual([
      ["t1", [[0, 10, -1]]],
      [
        "t2",
        [
          [1, 20, 7],
          [2, 30, 7],
        ],
      ],
    ]);
    expect((await h.fetchOffsets(2, "offsets-only", [])).topics).toEqual([]);
  });

  it("checks member and generation on a group commit, as Kafka does", async () => {
    const h = new Harness();
    await h.loadAll();
    const first = await h.join(5, "g", "", subscription("t1"));
    const m = await h.join(5, "g", first.memberId, subscription("t1"));
    await h.sync(3, "g", m.generationId, m.memberId, [[m.memberId, assignment("t1", [0])]]);
    await settle();
    expect((await h.commit(7, "g", m.generationId, m.memberId, "t1", [[0, 5]])).topics[0]!.partitions[0]!.errorCode).toBe(0);
    expect((await h.commit(7, "g", m.generationId + 1, m.memberId, "t1", [[0, 6]])).topics[0]!.partitions[0]!.errorCode).toBe(code("ILLEGAL_GENERATION"));
    expect((await h.commit(0, "g", -1, "", "t1", [[0, 7]])).topics[0]!.partitions[0]!.errorCode).toBe(code("UNKNOWN_MEMBER_ID"));
    expect((await h.fetchOffsets(3, "g", [["t1", [0]]])).topics[0]!.partitions[0]!.committedOffset).toBe(5);
  });

  it("reports NOT_COORDINATOR from a broker that does not hold the group's partition", async () => {
    const h = new Harness();
    const join = await h.join(2, "g", "", subscription("t1"));
    expect(join.errorCode).toBe(code("NOT_COORDINATOR"));
    const fetched = await h.fetchOffsets(1, "g", [["t1", [0]]]);
    expect(fetched.topics[0]!.partitions[0]!.errorCode).toBe(code("NOT_COORDINATOR"));
    expect((await h.fetchOffsets(2, "g", null)).errorCode).toBe(code("NOT_COORDINATOR"));
  });
});

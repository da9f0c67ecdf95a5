import { ErrorCodes } from "@flotilla/common";
import { silentLogger } from "@flotilla/common/logger";
import type { JoinGroupRequest, JoinGroupResponse, OffsetCommitRequest } from "@flotilla/protocol";
import { describe, expect, it } from "vitest";
import { DEFAULT_GROUP_COORDINATOR_CONFIG, type GroupCoordinatorConfig } from "./config.js";
import { GroupCoordinatorEngine } from "./coordinator.js";
import { MemoryOffsetsLog } from "./memory-offsets-log.js";
import { ManualTimer } from "./timer.js";

const NUM_PARTITIONS = 3;
const SESSION_MS = 10_000;
const REBALANCE_MS = 30_000;
const CTX = { clientHost: "/127.0.0.1" };
const code = (name: keyof typeof ErrorCodes) => ErrorCodes[name].code;

/** Lets appends and the promise callbacks after them run (the memory log resolves at once). */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

function sub(topics: string): Buffer {
  return Buffer.from(`sub:${topics}`);
}

class Harness {
  readonly timer = new ManualTimer();
  readonly engine: GroupCoordinatorEngine;
  readonly config: GroupCoordinatorConfig;

  constructor(
    readonly log = new MemoryOffsetsLog(),
    overrides: Partial<GroupCoordinatorConfig> = {},
  ) {
    this.config = { ...DEFAULT_GROUP_COORDINATOR_CONFIG, offsetsTopicNumPartitions: NUM_PARTITIONS, groupInitialRebalanceDelayMs: 0, ...overrides };
    this.engine = new GroupCoordinatorEngine({ config: this.config, log, clock: this.timer, timer: this.timer, logger: silentLogger() });
  }

  async loadAll(): Promise<void> {
    for (let p = 0; p < NUM_PARTITIONS; p++) await this.engine.loadPartition(p);
  }

  joinRequest(group: string, memberId: string, extra: Partial<JoinGroupRequest> = {}): JoinGroupRequest {
    return {
      groupId: group,
      sessionTimeoutMs: SESSION_MS,
      rebalanceTimeoutMs: REBALANCE_MS,
      memberId,
      groupInstanceId: "",
      protocolType: "consumer",
      protocols: [{ name: "range", metadata: sub("t") }],
      clientId: "client",
      reason: "",
      ...extra,
    };
  }

  join(group: string, memberId: string, extra: Partial<JoinGroupRequest> = {}): Promise<JoinGroupResponse> {
    return this.engine.joinGroup(this.joinRequest(group, memberId, extra), CTX);
  }

  /** A dynamic member's two-step first join (MEMBER_ID_REQUIRED, then join with the id); returns the parked join. */
  async newMember(group: string, extra: Partial<JoinGroupRequest> = {}): Promise<{ memberId: string; joined: Promise<JoinGroupResponse> }> {
    const first = await this.join(group, "", extra);
    expect(first.errorCode).toBe(code("MEMBER_ID_REQUIRED"));
    expect(first.memberId).not.toBe("");
    return { memberId: first.memberId, joined: this.join(group, first.memberId, extra) };
  }

  sync(group: string, generationId: number, memberId: string, assignments: Record<string, string> = {}) {
    return this.engine.syncGroup(
      { groupId: group, generationId, memberId, groupInstanceId: "", protocolType: "consumer", protocolName: "", assignments: Object.entries(assignments).map(([m, a]) => ({ memberId: m, assignment: Buffer.from(a) })) },
      CTX,
    );
  }

  heartbeat(group: string, generationId: number, memberId: string, groupInstanceId = "") {
    return this.engine.heartbeat({ groupId: group, generationId, memberId, groupInstanceId });
  }

  commit(group: string, generationId: number, memberId: string, offsets: Record<string, number>, groupInstanceId = ""): ReturnType<GroupCoordinatorEngine["offsetCommit"]> {
    const byTopic = new Map<string, { partition: number; committedOffset: number; committedLeaderEpoch: number; committedMetadata: string }[]>();
    for (const [tp, offset] of Object.entries(offsets)) {
      const [topic, p] = tp.split(":") as [string, string];
      if (!byTopic.has(topic)) byTopic.set(topic, []);
      byTopic.get(topic)!.push({ partition: Number(p), committedOffset: offset, committedLeaderEpoch: 3, committedMetadata: "m" });
    }
    const request: OffsetCommitRequest = { groupId: group, generationId, memberId, groupInstanceId, topics: [...byTopic].map(([name, partitions]) => ({ name, partitions })) };
    return this.engine.offsetCommit(request);
  }

  async fetchOffset(group: string, topic: string, partition: number): Promise<number> {
    const r = await this.engine.offsetFetch({ groupId: group, topics: [{ name: topic, partitions: [partition] }] });
    expect(r.errorCode).toBe(0);
    return r.topics[0]!.partitions[0]!.committedOffset;
  }

  /** One member through join and sync to a Stable generation. */
  async stableSingle(group: string): Promise<{ memberId: string; generationId: number }> {
    const { memberId, joined } = await this.newMember(group);
    const j = await joined;
    expect(j.errorCode).toBe(0);
    const s = this.sync(group, j.generationId, memberId, { [memberId]: "all" });
    await settle();
    expect((await s).errorCode).toBe(0);
    return { memberId, generationId: j.generationId };
  }
}

describe("group coordinator: join, sync, heartbeat", () => {
  it("a first join asks for a member id; the joined member leads generation 1 and gets its assignment", async () => {
    const h = new Harness();
    await h.loadAll();
    const { memberId, joined } = await h.newMember("g");
    const j = await joined;
    expect(j).toMatchObject({ errorCode: 0, generationId: 1, protocolType: "consumer", protocolName: "range", leader: memberId, memberId });
    expect(j.members).toEqual([{ memberId, groupInstanceId: "", metadata: sub("t") }]);
    expect(h.engine.inspect("g")?.state).toBe("CompletingRebalance");
    const s = h.sync("g", 1, memberId, { [memberId]: "p0,p1" });
    await settle();
    expect(await s).toMatchObject({ errorCode: 0, protocolName: "range", assignment: Buffer.from("p0,p1") });
    expect(h.engine.inspect("g")?.state).toBe("Stable");
    expect((await h.heartbeat("g", 1, memberId)).errorCode).toBe(0);
  });

  it("a second member triggers a rebalance: the leader's heartbeat says REBALANCE_IN_PROGRESS, both rejoin into generation 2 with the first member still leader", async () => {
    const h = new Harness();
    await h.loadAll();
    const a = await h.stableSingle("g");
    const b = await h.newMember("g");
    expect(h.engine.inspect("g")?.state).toBe("PreparingRebalance");
    expect((await h.heartbeat("g", 1, a.memberId)).errorCode).toBe(code("REBALANCE_IN_PROGRESS"));
    const ja = await h.join("g", a.memberId);
    const jb = await b.joined;
    expect(ja).toMatchObject({ errorCode: 0, generationId: 2, leader: a.memberId });
    expect(jb).toMatchObject({ errorCode: 0, generationId: 2, leader: a.memberId, members: [] });
    expect(ja.members.map((m) => m.memberId).sort()).toEqual([a.memberId, b.memberId].sort());
    // The follower's sync waits for the leader's.
    const sb = h.sync("g", 2, b.memberId);
    await settle();
    let followerDone = false;
    void sb.then(() => (followerDone = true));
    await settle();
    expect(followerDone).toBe(false);
    const sa = h.sync("g", 2, a.memberId, { [a.memberId]: "A", [b.memberId]: "B" });
    await settle();
    expect((await sa).assignment.toString()).toBe("A");
    expect((await sb).assignment.toString()).toBe("B");
    expect((await h.heartbeat("g", 1, a.memberId)).errorCode).toBe(code("ILLEGAL_GENERATION"));
  });

  it("a member whose session expires is removed and the group rebalances without it", async () => {
    const h = new Harness();
    await h.loadAll();
    const a = await h.stableSingle("g");
    const b = await h.newMember("g");
    const ja = await h.join("g", a.memberId);
    await b.joined;
    const sa = h.sync("g", ja.generationId, a.memberId, { [a.memberId]: "A", [b.memberId]: "B" });
    const sb = h.sync("g", ja.generationId, b.memberId);
    await settle();
    await Promise.all([sa, sb]);
    // A heartbeats, B goes silent: once B's session (10 s) ends, A is told to rejoin.
    for (let i = 0; i < 3; i++) {
      h.timer.advance(3000);
      expect((await h.heartbeat("g", 2, a.memberId)).errorCode).toBe(0);
    }
    h.timer.advance(3000);
    expect((await h.heartbeat("g", 2, a.memberId)).errorCode).toBe(code("REBALANCE_IN_PROGRESS"));
    expect(h.engine.inspect("g")?.members.map((m) => m.memberId)).toEqual([a.memberId]);
    expect(h.engine.inspect("g")?.state).toBe("PreparingRebalance");
    expect((await h.heartbeat("g", 2, b.memberId)).errorCode).toBe(code("UNKNOWN_MEMBER_ID"));
    const ja3 = await h.join("g", a.memberId);
    expect(ja3).toMatchObject({ errorCode: 0, generationId: 3, leader: a.memberId });
    expect(ja3.members.map((m) => m.memberId)).toEqual([a.memberId]);
  });

  it("a member that does not rejoin within the rebalance timeout is dropped from the next generation", async () => {
    const h = new Harness();
    await h.loadAll();
    const a = await h.stableSingle("g");
    const b = await h.newMember("g");
    const ja = await h.join("g", a.memberId);
    await b.joined;
    const sa = h.sync("g", 2, a.memberId, { [a.memberId]: "A", [b.memberId]: "B" });
    const sb = h.sync("g", 2, b.memberId);
    await settle();
    await Promise.all([sa, sb]);
    expect(ja.generationId).toBe(2);
    // A asks for a rebalance (the leader rejoins); B keeps heartbeating but never rejoins.
    const ja3 = h.join("g", a.memberId);
    for (let t = 0; t < REBALANCE_MS; t += 5000) {
      expect((await h.heartbeat("g", 2, b.memberId)).errorCode).toBe(code("REBALANCE_IN_PROGRESS"));
      h.timer.advance(5000);
    }
    const r = await ja3;
    expect(r).toMatchObject({ errorCode: 0, generationId: 3 });
    expect(r.members.map((m) => m.memberId)).toEqual([a.memberId]);
  });

  it("LeaveGroup removes the member at once and the leader role passes on", async () => {
    const h = new Harness();
    await h.loadAll();
    const a = await h.stableSingle("g");
    const b = await h.newMember("g");
    await h.join("g", a.memberId);
    await b.joined;
    const sa = h.sync("g", 2, a.memberId, { [a.memberId]: "A", [b.memberId]: "B" });
    const sb = h.sync("g", 2, b.memberId);
    await settle();
    await Promise.all([sa, sb]);
    const left = await h.engine.leaveGroup({ groupId: "g", members: [{ memberId: a.memberId, groupInstanceId: "", reason: "shutdown" }, { memberId: "nobody", groupInstanceId: "", reason: "" }] });
    expect(left.members.map((m) => m.errorCode)).toEqual([0, code("UNKNOWN_MEMBER_ID")]);
    expect(h.engine.inspect("g")?.state).toBe("PreparingRebalance");
    const jb = await h.join("g", b.memberId);
    expect(jb).toMatchObject({ errorCode: 0, generationId: 3, leader: b.memberId });
    // The last member leaves: the group is Empty with a new generation, written to the log.
    const s = h.sync("g", 3, b.memberId, { [b.memberId]: "all" });
    await settle();
    await s;
    await h.engine.leaveGroup({ groupId: "g", members: [{ memberId: b.memberId, groupInstanceId: "", reason: "" }] });
    await settle();
    expect(h.engine.inspect("g")).toMatchObject({ state: "Empty", generationId: 4, leaderId: null });
  });

  it("group.initial.rebalance.delay.ms gathers members that join an empty group into one generation", async () => {
    const h = new Harness(undefined, { groupInitialRebalanceDelayMs: 3000 });
    await h.loadAll();
    const a = await h.newMember("g");
    h.timer.advance(2000);
    const b = await h.newMember("g");
    h.timer.advance(2000);
    let done = false;
    void a.joined.then(() => (done = true));
    await settle();
    expect(done).toBe(false);
    h.timer.advance(3000);
    const [ja, jb] = await Promise.all([a.joined, b.joined]);
    expect(ja).toMatchObject({ errorCode: 0, generationId: 1, leader: a.memberId });
    expect(jb).toMatchObject({ errorCode: 0, generationId: 1, leader: a.memberId });
    expect(ja.members).toHaveLength(2);
  });

  it("selects the protocol most members prefer among those all support; none in common is INCONSISTENT_GROUP_PROTOCOL", async () => {
    const h = new Harness(undefined, { groupInitialRebalanceDelayMs: 1000 });
    await h.loadAll();
    const p = (...names: string[]) => names.map((name) => ({ name, metadata: sub(name) }));
    const a = await h.newMember("g", { protocols: p("range", "roundrobin") });
    const b = await h.newMember("g", { protocols: p("roundrobin", "range") });
    const c = await h.newMember("g", { protocols: p("roundrobin", "cooperative-sticky", "range") });
    const bad = await h.join("g", "", { protocols: p("sticky") });
    expect(bad.errorCode).toBe(code("INCONSISTENT_GROUP_PROTOCOL"));
    const badType = await h.join("g", "", { protocolType: "connect" });
    expect(badType.errorCode).toBe(code("INCONSISTENT_GROUP_PROTOCOL"));
    h.timer.advance(REBALANCE_MS);
    const [ja, jb, jc] = await Promise.all([a.joined, b.joined, c.joined]);
    for (const j of [ja, jb, jc]) expect(j).toMatchObject({ errorCode: 0, protocolName: "roundrobin" });
    expect(ja.members.find((m) => m.memberId === c.memberId)?.metadata).toEqual(sub("roundrobin"));
  });

  it("rejects session timeouts outside group.min/max.session.timeout.ms and unknown member ids", async () => {
    const h = new Harness();
    await h.loadAll();
    expect((await h.join("g", "", { sessionTimeoutMs: 1000 })).errorCode).toBe(code("INVALID_SESSION_TIMEOUT"));
    expect((await h.join("g", "", { sessionTimeoutMs: 3_600_000 })).errorCode).toBe(code("INVALID_SESSION_TIMEOUT"));
    expect((await h.join("g", "made-up")).errorCode).toBe(code("UNKNOWN_MEMBER_ID"));
    expect((await h.join("", "")).errorCode).toBe(code("INVALID_GROUP_ID"));
  });

  it("a pending member id expires when the member does not come back within its session timeout", async () => {
    const h = new Harness();
    await h.loadAll();
    const first = await h.join("g", "");
    expect(first.errorCode).toBe(code("MEMBER_ID_REQUIRED"));
    h.timer.advance(SESSION_MS + 1);
    expect((await h.join("g", first.memberId)).errorCode).toBe(code("UNKNOWN_MEMBER_ID"));
  });

  it("group.max.size bounds the members of a group", async () => {
    const h = new Harness(undefined, { groupMaxSize: 2 });
    await h.loadAll();
    await h.join("g", "");
    await h.join("g", "");
    const third = await h.join("g", "");
    expect(third.errorCode).toBe(code("GROUP_MAX_SIZE_REACHED"));
    expect(third.errorMessage).toContain("group.max.size");
  });
});

describe("group coordinator: static membership", () => {
  async function stableStatic(h: Harness, instance: string) {
    const j = await h.join("g", "", { groupInstanceId: instance });
    expect(j.errorCode).toBe(0);
    const s = h.sync("g", j.generationId, j.memberId, { [j.memberId]: `assign-${instance}` });
    await settle();
    expect((await s).errorCode).toBe(0);
    return j;
  }

  it("a restarted static member with the same subscription keeps its slot and assignment without a rebalance; the old id is fenced", async () => {
    const h = new Harness();
    await h.loadAll();
    const j1 = await stableStatic(h, "host-1");
    const again = h.join("g", "", { groupInstanceId: "host-1" });
    await settle();
    const j2 = await again;
    expect(j2).toMatchObject({ errorCode: 0, generationId: j1.generationId, leader: j2.memberId });
    expect(j2.memberId).not.toBe(j1.memberId);
    expect(h.engine.inspect("g")?.state).toBe("Stable");
    const s = await h.sync("g", j2.generationId, j2.memberId);
    expect(s.assignment.toString()).toBe("assign-host-1");
    expect((await h.heartbeat("g", j1.generationId, j1.memberId, "host-1")).errorCode).toBe(code("FENCED_INSTANCE_ID"));
    expect((await h.heartbeat("g", j2.generationId, j2.memberId, "host-1")).errorCode).toBe(0);
  });

  it("a static member rejoining with another subscription triggers a rebalance", async () => {
    const h = new Harness();
    await h.loadAll();
    const j1 = await stableStatic(h, "host-1");
    const j2 = await h.join("g", "", { groupInstanceId: "host-1", protocols: [{ name: "range", metadata: sub("t,u") }] });
    expect(j2).toMatchObject({ errorCode: 0, generationId: j1.generationId + 1 });
    expect(j2.members[0]?.metadata).toEqual(sub("t,u"));
  });

  it("a static member that leaves by instance id is removed; a wrong member id for the instance is FENCED_INSTANCE_ID", async () => {
    const h = new Harness();
    await h.loadAll();
    const j1 = await stableStatic(h, "host-1");
    const wrong = await h.engine.leaveGroup({ groupId: "g", members: [{ memberId: "other", groupInstanceId: "host-1", reason: "" }] });
    expect(wrong.members[0]?.errorCode).toBe(code("FENCED_INSTANCE_ID"));
    const ok = await h.engine.leaveGroup({ groupId: "g", members: [{ memberId: "", groupInstanceId: "host-1", reason: "" }] });
    expect(ok.members[0]?.errorCode).toBe(0);
    await settle();
    expect(h.engine.inspect("g")?.members).toEqual([]);
    expect((await h.heartbeat("g", j1.generationId, j1.memberId, "host-1")).errorCode).toBe(code("UNKNOWN_MEMBER_ID"));
  });
});

describe("group coordinator: offsets", () => {
  it("commits from the current generation are stored after the append is durable; stale generations and unknown members are rejected", async () => {
    const h = new Harness();
    await h.loadAll();
    const a = await h.stableSingle("g");
    h.log.hold();
    const pending = h.commit("g", a.generationId, a.memberId, { "t:0": 42, "t:1": 7 });
    await settle();
    expect(await h.fetchOffset("g", "t", 0)).toBe(-1);
    h.log.release();
    const r = await pending;
    expect(r.errorCode).toBe(0);
    expect(r.topics[0]?.partitions.map((p) => p.errorCode)).toEqual([0, 0]);
    expect(await h.fetchOffset("g", "t", 0)).toBe(42);
    expect(await h.fetchOffset("g", "t", 1)).toBe(7);
    expect(await h.fetchOffset("g", "t", 2)).toBe(-1);

    const stale = await h.commit("g", a.generationId - 1, a.memberId, { "t:0": 100 });
    expect(stale.errorCode).toBe(code("ILLEGAL_GENERATION"));
    expect(stale.topics[0]?.partitions[0]?.errorCode).toBe(code("ILLEGAL_GENERATION"));
    expect((await h.commit("g", a.generationId, "stranger", { "t:0": 100 })).errorCode).toBe(code("UNKNOWN_MEMBER_ID"));
    // A standalone commit is refused while the group has members.
    expect((await h.commit("g", -1, "", { "t:0": 100 })).errorCode).toBe(code("UNKNOWN_MEMBER_ID"));
    expect(await h.fetchOffset("g", "t", 0)).toBe(42);

    const all = await h.engine.offsetFetch({ groupId: "g", topics: [] });
    expect(all.topics).toEqual([{ name: "t", partitions: [expect.objectContaining({ partition: 0, committedOffset: 42, committedLeaderEpoch: 3, metadata: "m" }), expect.objectContaining({ partition: 1, committedOffset: 7 })] }]);
  });

  it("commits during CompletingRebalance answer REBALANCE_IN_PROGRESS; a failed append answers an error and stores nothing", async () => {
    const h = new Harness();
    await h.loadAll();
    const { memberId, joined } = await h.newMember("g");
    const j = await joined;
    expect((await h.commit("g", j.generationId, memberId, { "t:0": 1 })).errorCode).toBe(code("REBALANCE_IN_PROGRESS"));
    const s = h.sync("g", j.generationId, memberId, { [memberId]: "x" });
    await settle();
    await s;
    const { FlotillaError } = await import("@flotilla/common");
    h.log.failWith = new FlotillaError("NOT_LEADER_OR_FOLLOWER", "moved");
    expect((await h.commit("g", j.generationId, memberId, { "t:0": 5 })).errorCode).toBe(code("NOT_COORDINATOR"));
    expect(await h.fetchOffset("g", "t", 0)).toBe(-1);
  });

  it("standalone commits (generation -1) work for unknown and empty groups; positive generations of unknown groups are ILLEGAL_GENERATION", async () => {
    const h = new Harness();
    await h.loadAll();
    expect((await h.commit("tool", 5, "", { "t:0": 1 })).errorCode).toBe(code("ILLEGAL_GENERATION"));
    expect((await h.commit("tool", -1, "", { "t:0": 9 })).errorCode).toBe(0);
    expect(await h.fetchOffset("tool", "t", 0)).toBe(9);
    expect((await h.engine.listGroups({ statesFilter: [] })).groups).toEqual([{ groupId: "tool", protocolType: "", groupState: "Empty" }]);
  });

  it("offsets of a group without members expire after offsets.retention.minutes, and stay expired after a reload", async () => {
    const h = new Harness(undefined, { offsetsRetentionMs: 60_000 });
    await h.loadAll();
    const a = await h.stableSingle("g");
    await h.commit("g", a.generationId, a.memberId, { "t:0": 5 });
    expect((await h.commit("solo", -1, "", { "t:0": 3 })).errorCode).toBe(0);
    await h.engine.leaveGroup({ groupId: "g", members: [{ memberId: a.memberId, groupInstanceId: "", reason: "" }] });
    await settle();
    h.timer.advance(30_000);
    expect(await h.engine.expireOffsets()).toBe(0);
    h.timer.advance(30_000);
    expect(await h.engine.expireOffsets()).toBe(2);
    expect(await h.fetchOffset("g", "t", 0)).toBe(-1);
    expect(h.engine.inspect("g")).toBeUndefined();
    expect(h.engine.inspect("solo")).toBeUndefined();
    const reloaded = new Harness(h.log);
    await reloaded.loadAll();
    expect(await reloaded.fetchOffset("g", "t", 0)).toBe(-1);
    expect(reloaded.engine.inspect("g")).toBeUndefined();
  });

  it("offsets of deleted topics are removed from every group, and stay removed after a reload", async () => {
    const h = new Harness();
    await h.loadAll();
    await h.commit("g1", -1, "", { "gone:0": 1, "kept:0": 2 });
    await h.commit("g2", -1, "", { "gone:3": 4 });
    expect(await h.engine.deleteOffsetsOfTopics(new Set(["gone"]))).toBe(2);
    expect(await h.fetchOffset("g1", "gone", 0)).toBe(-1);
    expect(await h.fetchOffset("g1", "kept", 0)).toBe(2);
    const reloaded = new Harness(h.log);
    await reloaded.loadAll();
    expect(await reloaded.fetchOffset("g2", "gone", 3)).toBe(-1);
    expect(await reloaded.fetchOffset("g1", "kept", 0)).toBe(2);
  });

  it("DeleteGroups refuses groups with members and deletes empty ones with their offsets", async () => {
    const h = new Harness();
    await h.loadAll();
    const a = await h.stableSingle("g");
    await h.commit("g", a.generationId, a.memberId, { "t:0": 5 });
    const busy = await h.engine.deleteGroups({ groupIds: ["g", "missing"] });
    expect(busy.results.map((r) => r.errorCode)).toEqual([code("NON_EMPTY_GROUP"), code("GROUP_ID_NOT_FOUND")]);
    await h.engine.leaveGroup({ groupId: "g", members: [{ memberId: a.memberId, groupInstanceId: "", reason: "" }] });
    await settle();
    expect((await h.engine.deleteGroups({ groupIds: ["g"] })).results[0]?.errorCode).toBe(0);
    expect(await h.fetchOffset("g", "t", 0)).toBe(-1);
    const reloaded = new Harness(h.log);
    await reloaded.loadAll();
    expect(reloaded.engine.inspect("g")).toBeUndefined();
  });
});

describe("group coordinator: load and unload", () => {
  it("loading the partition from its log rebuilds the same groups, members, assignments and offsets", async () => {
    const h = new Harness(undefined, { groupInitialRebalanceDelayMs: 1000 });
    await h.loadAll();
    const a = await h.newMember("g1");
    const b = await h.newMember("g1");
    h.timer.advance(5000);
    const [ja, jb] = await Promise.all([a.joined, b.joined]);
    const sa = h.sync("g1", ja.generationId, a.memberId, { [a.memberId]: "A", [b.memberId]: "B" });
    const sb = h.sync("g1", jb.generationId, b.memberId);
    await settle();
    await Promise.all([sa, sb]);
    await h.commit("g1", ja.generationId, a.memberId, { "t:0": 10, "u:3": 4 });
    await h.commit("g1", ja.generationId, b.memberId, { "t:0": 11 });
    await h.commit("solo", -1, "", { "t:1": 2 });
    const joining = h.join("g2", "", { groupInstanceId: "i-1" });
    h.timer.advance(1000);
    const s = await joining;
    expect(s.errorCode).toBe(0);
    const ss = h.sync("g2", s.generationId, s.memberId, { [s.memberId]: "S" });
    await settle();
    await ss;

    const reloaded = new Harness(h.log);
    // Sessions restart at load: keep the clocks comparable.
    await reloaded.loadAll();
    for (const g of ["g1", "g2", "solo"]) expect(reloaded.engine.inspect(g)).toEqual(h.engine.inspect(g));
    expect(reloaded.engine.inspect("g1")).toMatchObject({ state: "Stable", generationId: ja.generationId, leaderId: a.memberId, protocolName: "range" });
    expect(await reloaded.fetchOffset("g1", "t", 0)).toBe(11);
    // The members carry on with their generation on the new coordinator.
    expect((await reloaded.heartbeat("g1", ja.generationId, b.memberId)).errorCode).toBe(0);
    expect((await reloaded.sync("g1", ja.generationId, b.memberId)).assignment.toString()).toBe("B");
    expect((await reloaded.heartbeat("g2", s.generationId, s.memberId, "i-1")).errorCode).toBe(0);
  });

  it("answers NOT_COORDINATOR for partitions it does not hold and COORDINATOR_LOAD_IN_PROGRESS while loading; unloading answers parked joins", async () => {
    const log = new MemoryOffsetsLog();
    const seed = new Harness(log);
    await seed.loadAll();
    expect((await seed.commit("g", -1, "", { "t:0": 1 })).errorCode).toBe(0);
    const h = new Harness(log);
    const p = h.engine.partitionFor("g");
    expect((await h.join("g", "")).errorCode).toBe(code("NOT_COORDINATOR"));
    log.hold();
    const loading = h.engine.loadPartition(p);
    expect((await h.join("g", "")).errorCode).toBe(code("COORDINATOR_LOAD_IN_PROGRESS"));
    expect((await h.engine.offsetFetch({ groupId: "g", topics: [] })).errorCode).toBe(code("COORDINATOR_LOAD_IN_PROGRESS"));
    log.release();
    await loading;
    const first = await h.join("g", "", { groupInstanceId: "" });
    const parked = h.join("g", first.memberId);
    const other = await h.join("g", "");
    const parked2 = h.join("g", other.memberId);
    h.engine.unloadPartition(p);
    expect((await parked).errorCode).toBe(0);
    expect((await parked2).errorCode).toBe(code("NOT_COORDINATOR"));
    expect((await h.heartbeat("g", 1, first.memberId)).errorCode).toBe(code("NOT_COORDINATOR"));
    expect(h.timer.pending).toBe(0);
  });
});

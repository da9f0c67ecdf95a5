import { AssertionError, FlotillaError, SeededRandom } from "@flotilla/common";
import { describe, expect, it } from "vitest";
import { RaftCore } from "./core.js";
import { data, drain, entry, loneNode, msg, TestCluster } from "./test-cluster.js";
import type { Message } from "./types.js";

const only = (messages: Message[], type: Message["type"]) => messages.filter((m) => m.type === type);

/** Drives a lone node with log `logTerms` to leadership of `term` via pre-vote and vote. */
function leaderOf(o: Parameters<typeof loneNode>[0]): RaftCore {
  const node = loneNode(o);
  for (let k = 0; k < 40 && node.status().role === "follower"; k++) node.tick();
  expect(node.status().role).toBe("pre-candidate");
  const preVotes = only(drain(node), "PreVote");
  for (const pv of preVotes) node.step(msg({ type: "PreVoteResp", from: pv.to, to: node.id, term: pv.term }));
  expect(node.status().role).toBe("candidate");
  const votes = only(drain(node), "Vote");
  for (const v of votes) node.step(msg({ type: "VoteResp", from: v.to, to: node.id, term: v.term }));
  expect(node.status().role).toBe("leader");
  return node;
}

describe("configuration", () => {
  it("rejects a config without the node, with duplicate ids or with electionTicks <= heartbeatTicks", () => {
    const base = { id: 1, voters: [1, 2, 3], electionTicks: 10, heartbeatTicks: 1, random: new SeededRandom(1) };
    expect(() => new RaftCore({ ...base, id: 4 })).toThrow(FlotillaError);
    expect(() => new RaftCore({ ...base, observers: [3] })).toThrow(/twice/);
    expect(() => new RaftCore({ ...base, electionTicks: 1 })).toThrow(/electionTicks/);
    expect(() => new RaftCore({ ...base, voters: [] })).toThrow(/empty/);
    expect(() => new RaftCore(base)).not.toThrow();
  });
});

describe("votes (§5.2, §5.4.1)", () => {
  it("a voter grants one vote per term, first come first served, and persists it with the answer", () => {
    const node = loneNode({ id: 1, voters: [1, 2, 3], term: 1, logTerms: [1] });
    node.step(msg({ type: "Vote", from: 2, to: 1, term: 2, logIndex: 1, logTerm: 1 }));
    node.step(msg({ type: "Vote", from: 3, to: 1, term: 2, logIndex: 1, logTerm: 1 }));
    // A duplicate of the first request gets the same answer.
    node.step(msg({ type: "Vote", from: 2, to: 1, term: 2, logIndex: 1, logTerm: 1 }));
    const rd = node.ready();
    expect(rd.hardState).toEqual({ term: 2, vote: 2, commit: 0 });
    expect(rd.messages.map((m) => [m.to, m.type, m.term, m.reject])).toEqual([
      [2, "VoteResp", 2, false],
      [3, "VoteResp", 2, true],
      [2, "VoteResp", 2, false],
    ]);
    node.advance(rd);
  });

  it("a voter rejects a candidate whose log is less up to date", () => {
    const cases: Array<[number, number, boolean]> = [
      [5, 1, true], // longer, but older last term
      [2, 2, true], // same last term, shorter
      [3, 2, false], // same last term and length
      [1, 3, false], // newer last term wins even if shorter
    ];
    for (const [logIndex, logTerm, reject] of cases) {
      const node = loneNode({ id: 1, voters: [1, 2, 3], term: 2, logTerms: [1, 1, 2] });
      node.step(msg({ type: "Vote", from: 2, to: 1, term: 3, logIndex, logTerm }));
      const [resp] = drain(node);
      expect({ logIndex, logTerm, reject: resp?.reject }).toEqual({ logIndex, logTerm, reject });
      // The term moved to 3 either way (§5.1); only the vote depends on the log.
      expect(node.status().term).toBe(3);
    }
  });

  it("an observer never grants a vote", () => {
    const node = loneNode({ id: 4, voters: [1, 2, 3], observers: [4] });
    node.step(msg({ type: "Vote", from: 2, to: 4, term: 1 }));
    expect(drain(node).map((m) => m.reject)).toEqual([true]);
  });

  it("a candidate that gathers a majority becomes leader and appends a no-op of its term", () => {
    const node = leaderOf({ id: 1, voters: [1, 2, 3], term: 3, logTerms: [1, 3] });
    expect(node.status()).toMatchObject({ role: "leader", term: 4, lastIndex: 3 });
    const appends = only(drain(node), "Append");
    expect(appends.map((m) => [m.to, m.logIndex, m.logTerm, m.entries.map((e) => `${e.index}/${e.term}/${e.type}`)])).toEqual([
      [2, 2, 3, ["3/4/noop"]],
      [3, 2, 3, ["3/4/noop"]],
    ]);
  });

  it("a candidate rejected by a majority goes back to follower", () => {
    const node = loneNode({ id: 1, voters: [1, 2, 3], term: 1, preVote: false });
    for (let k = 0; k < 40 && node.status().role === "follower"; k++) node.tick();
    expect(node.status()).toMatchObject({ role: "candidate", term: 2 });
    drain(node);
    node.step(msg({ type: "VoteResp", from: 2, to: 1, term: 2, reject: true }));
    node.step(msg({ type: "VoteResp", from: 3, to: 1, term: 2, reject: true }));
    expect(node.status()).toMatchObject({ role: "follower", term: 2 });
  });
});

describe("terms (§5.1)", () => {
  it("a leader that sees a higher term steps down to follower", () => {
    const node = leaderOf({ id: 1, voters: [1, 2, 3], term: 1 });
    drain(node);
    node.step(msg({ type: "AppendResp", from: 2, to: 1, term: 7 }));
    expect(node.status()).toMatchObject({ role: "follower", term: 7, leader: 0 });
  });

  it("a stale leader's Append is answered with the newer term, so that it steps down", () => {
    const node = loneNode({ id: 2, voters: [1, 2, 3], term: 5 });
    node.step(msg({ type: "Append", from: 1, to: 2, term: 3, logIndex: 0, logTerm: 0, entries: [entry(1, 3)] }));
    const [resp] = drain(node);
    expect(resp).toMatchObject({ type: "AppendResp", term: 5 });
    expect(node.status()).toMatchObject({ term: 5, lastIndex: 0 });
    const stale = leaderOf({ id: 1, voters: [1, 2, 3], term: 2 });
    drain(stale);
    stale.step(resp!);
    expect(stale.status()).toMatchObject({ role: "follower", term: 5 });
  });

  it("a vote request with a stale term is ignored", () => {
    const node = loneNode({ id: 1, voters: [1, 2, 3], term: 5 });
    node.step(msg({ type: "Vote", from: 2, to: 1, term: 4, logIndex: 9, logTerm: 4 }));
    expect(drain(node)).toEqual([]);
    expect(node.status().term).toBe(5);
  });
});

describe("pre-vote (thesis §9.6) and the leader lease (thesis §4.2.3)", () => {
  it("a pre-candidate does not increase its term until a majority grants the pre-vote", () => {
    const node = loneNode({ id: 1, voters: [1, 2, 3], term: 3 });
    for (let k = 0; k < 40 && node.status().role === "follower"; k++) node.tick();
    expect(node.status()).toMatchObject({ role: "pre-candidate", term: 3 });
    const pre = only(drain(node), "PreVote");
    expect(pre.map((m) => [m.to, m.term])).toEqual([
      [2, 4],
      [3, 4],
    ]);
    node.step(msg({ type: "PreVoteResp", from: 2, to: 1, term: 3, reject: true }));
    node.step(msg({ type: "PreVoteResp", from: 3, to: 1, term: 3, reject: true }));
    expect(node.status()).toMatchObject({ role: "follower", term: 3 });
  });

  it("a pre-vote does not change the receiver's term or vote", () => {
    const node = loneNode({ id: 2, voters: [1, 2, 3], term: 3, logTerms: [1] });
    node.step(msg({ type: "PreVote", from: 1, to: 2, term: 4, logIndex: 1, logTerm: 1 }));
    const rd = node.ready();
    expect(rd.hardState).toBeUndefined();
    expect(rd.messages).toMatchObject([{ type: "PreVoteResp", term: 4, reject: false }]);
    node.advance(rd);
    expect(node.status().term).toBe(3);
  });

  it("a follower that heard from its leader within the election timeout ignores (pre-)votes", () => {
    const node = loneNode({ id: 2, voters: [1, 2, 3], term: 3 });
    node.step(msg({ type: "Heartbeat", from: 1, to: 2, term: 3 }));
    drain(node);
    node.step(msg({ type: "PreVote", from: 3, to: 2, term: 4 }));
    node.step(msg({ type: "Vote", from: 3, to: 2, term: 4 }));
    expect(drain(node)).toEqual([]);
    expect(node.status()).toMatchObject({ term: 3, leader: 1 });
    // Once the election timeout passed without the leader, it listens again.
    for (let k = 0; k < 10; k++) node.tick();
    drain(node);
    node.step(msg({ type: "Vote", from: 3, to: 2, term: 5 }));
    expect(node.status()).toMatchObject({ term: 5 });
  });

  it("a partitioned node that rejoins does not disrupt the leader", () => {
    const c = new TestCluster({ voters: [1, 2, 3] });
    c.elect(1);
    c.propose(1, "a");
    c.stabilize();
    c.isolate(3);
    c.tick(3, 100); // many election timeouts of campaigning alone
    c.stabilize();
    expect(c.node(3).status()).toMatchObject({ term: 1 });
    expect(["follower", "pre-candidate"]).toContain(c.node(3).status().role);
    c.heal();
    for (let k = 0; k < 30; k++) {
      c.tickAll();
      c.stabilize();
    }
    expect(c.node(1).status()).toMatchObject({ role: "leader", term: 1 });
    expect(c.node(3).status()).toMatchObject({ role: "follower", term: 1, leader: 1 });
    expect(c.applied.get(3)).toEqual(c.applied.get(1));
  });

  it("without pre-vote the same rejoining node forces a new term (the problem pre-vote solves)", () => {
    const c = new TestCluster({ voters: [1, 2, 3], preVote: false, checkQuorum: false });
    c.elect(1);
    c.isolate(3);
    c.tick(3, 100);
    c.stabilize();
    expect(c.node(3).status().term).toBeGreaterThan(1);
    c.heal();
    for (let k = 0; k < 30; k++) {
      c.tickAll();
      c.stabilize();
    }
    expect(c.node(1).status().term).toBeGreaterThan(1);
  });
});

describe("log replication (§5.3)", () => {
  it("a follower rejects an Append whose previous entry it lacks and hints its last index", () => {
    const node = loneNode({ id: 2, voters: [1, 2, 3], term: 4, logTerms: [1, 1, 2] });
    node.step(msg({ type: "Append", from: 1, to: 2, term: 4, logIndex: 9, logTerm: 4, entries: [entry(10, 4)] }));
    expect(drain(node)).toMatchObject([{ type: "AppendResp", reject: true, logIndex: 9, hintIndex: 3, hintTerm: 2 }]);
  });

  it("a follower hints past a whole conflicting term in one round trip", () => {
    // Follower: terms 1 1 3 3 3 3 (indexes 1-6). The leader's entry 6 has term 2.
    const node = loneNode({ id: 2, voters: [1, 2, 3], term: 4, logTerms: [1, 1, 3, 3, 3, 3] });
    node.step(msg({ type: "Append", from: 1, to: 2, term: 4, logIndex: 6, logTerm: 2 }));
    // Entries 3-6 (term 3 > 2) cannot match the leader's entries (terms <= 2 there).
    expect(drain(node)).toMatchObject([{ reject: true, logIndex: 6, hintIndex: 2, hintTerm: 1 }]);
  });

  it("a conflicting suffix is truncated and replaced; a stale duplicate does not truncate", () => {
    const node = loneNode({ id: 2, voters: [1, 2, 3], term: 4, logTerms: [1, 1, 2, 2] });
    node.step(msg({ type: "Append", from: 1, to: 2, term: 4, logIndex: 2, logTerm: 1, entries: [entry(3, 4), entry(4, 4), entry(5, 4)], commit: 3 }));
    let rd = node.ready();
    expect(rd.entries.map((e) => `${e.index}/${e.term}`)).toEqual(["3/4", "4/4", "5/4"]);
    expect(rd.messages).toMatchObject([{ type: "AppendResp", reject: false, hintIndex: 5 }]);
    expect(rd.hardState).toMatchObject({ commit: 3 });
    node.advance(rd);
    // A delayed copy of an earlier, shorter Append must not cut entries 4 and 5.
    node.step(msg({ type: "Append", from: 1, to: 2, term: 4, logIndex: 2, logTerm: 1, entries: [entry(3, 4)], commit: 3 }));
    rd = node.ready();
    expect(rd.entries).toEqual([]);
    expect(rd.messages).toMatchObject([{ type: "AppendResp", reject: false, hintIndex: 3 }]);
    node.advance(rd);
    expect(node.status().lastIndex).toBe(5);
  });

  it("acknowledgements of entries replaced before they reached the disk are withdrawn", () => {
    const node = loneNode({ id: 2, voters: [1, 2, 3], term: 6, logTerms: [1] });
    // Leader 1 of term 6 sends 2-3; the acknowledgement waits for the next Ready.
    node.step(msg({ type: "Append", from: 1, to: 2, term: 6, logIndex: 1, logTerm: 1, entries: [entry(2, 6), entry(3, 6)] }));
    // Before that Ready, leader 3 of term 8 replaces them.
    node.step(msg({ type: "Append", from: 3, to: 2, term: 8, logIndex: 1, logTerm: 1, entries: [entry(2, 8)] }));
    const rd = node.ready();
    expect(rd.entries.map((e) => `${e.index}/${e.term}`)).toEqual(["2/8"]);
    // Leader 1 must not hear "I hold 3" from a node whose disk never held 2/6 and 3/6.
    expect(rd.messages.map((m) => [m.to, m.type, m.term, m.hintIndex])).toEqual([[3, "AppendResp", 8, 2]]);
    node.advance(rd);
  });

  it("an Append below the commit index is answered with the commit index", () => {
    const node = loneNode({ id: 2, voters: [1, 2, 3], term: 4, logTerms: [1, 1, 2], commit: 3 });
    node.step(msg({ type: "Append", from: 1, to: 2, term: 4, logIndex: 1, logTerm: 1, entries: [entry(2, 1)] }));
    expect(drain(node)).toMatchObject([{ type: "AppendResp", reject: false, hintIndex: 3 }]);
  });

  it("a deposed leader's divergent suffix is repaired in few round trips (fast back-off)", () => {
    const c = new TestCluster({ voters: [1, 2, 3], maxEntriesPerAppend: 100 });
    c.elect(1);
    c.isolate(1);
    for (let k = 0; k < 30; k++) c.propose(1, `lost-${k}`); // term 1, never committed
    c.stabilize();
    c.tick(3, 10); // 3's lease on leader 1 runs out, so it will vote for 2
    c.elect(2);
    for (let k = 0; k < 5; k++) c.propose(2, `kept-${k}`);
    c.stabilize();
    c.heal();
    c.trace.length = 0;
    for (let k = 0; k < 10; k++) {
      c.tickAll();
      c.stabilize();
    }
    const rejections = c.trace.filter((line) => line.startsWith("1->2 AppendResp") && line.includes("rejected"));
    expect(rejections.length).toBeLessThanOrEqual(2);
    expect(c.applied.get(1)).toEqual(c.applied.get(2));
    expect(c.applied.get(1)!.some((s) => s.includes("lost"))).toBe(false);
    expect(c.applied.get(1)!.filter((s) => s.includes("kept"))).toHaveLength(5);
  });

  it("pipelines Appends up to maxInflightAppends and batches up to maxEntriesPerAppend", () => {
    const c = new TestCluster({ voters: [1, 2], maxEntriesPerAppend: 2, maxInflightAppends: 3 });
    c.elect(1);
    c.stabilize();
    c.take();
    for (let k = 0; k < 20; k++) c.propose(1, `p${k}`);
    const appends = c.take((m) => m.type === "Append");
    expect(appends.length).toBe(3); // the window, then nothing until acknowledgements
    // Each proposal went out alone while the window had room; the rest wait.
    expect(c.node(1).status().progress?.[2]).toMatchObject({ match: 1, next: 5 });
    // Lose those three; the heartbeat answer frees the window, the gap makes 2 reject, the
    // leader probes and then streams batches of two.
    c.tick(1);
    c.stabilize();
    expect(c.node(2).status().commit).toBe(21);
    expect(c.applied.get(2)).toEqual(c.applied.get(1));
  });

  it("bounds the uncommitted proposals", () => {
    const c = new TestCluster({ voters: [1, 2, 3], maxUncommittedEntries: 3 });
    c.elect(1);
    c.isolate(1);
    const results = [0, 1, 2, 3].map((k) => c.node(1).propose(data(`p${k}`)));
    expect(results.map((r) => r.ok)).toEqual([true, true, true, false]);
    expect(results[3]).toMatchObject({ reason: "too-many-uncommitted", leader: 1 });
  });

  it("a follower refuses proposals and names the leader", () => {
    const c = new TestCluster({ voters: [1, 2, 3] });
    c.elect(1);
    expect(c.node(2).propose(data("x"))).toEqual({ ok: false, reason: "not-leader", leader: 1 });
  });
});

describe("commitment (§5.4.2, Figure 8)", () => {
  it("a leader does not commit an entry of an earlier term by counting replicas", () => {
    // Index 2 is from term 2 and uncommitted; the node leads term 4 with its no-op at 3.
    const node = leaderOf({ id: 1, voters: [1, 2, 3, 4, 5], term: 3, logTerms: [1, 2], commit: 1 });
    drain(node);
    for (const from of [2, 3]) node.step(msg({ type: "AppendResp", from, to: 1, term: 4, logIndex: 1, hintIndex: 2 }));
    // Index 2 is on 3 of 5 nodes, but is not of term 4: not committed.
    expect(node.status().commit).toBe(1);
    node.step(msg({ type: "AppendResp", from: 2, to: 1, term: 4, logIndex: 2, hintIndex: 3 }));
    expect(node.status().commit).toBe(1);
    node.step(msg({ type: "AppendResp", from: 3, to: 1, term: 4, logIndex: 2, hintIndex: 3 }));
    // The no-op of term 4 is on a majority: it commits, and index 2 with it.
    expect(node.status().commit).toBe(3);
  });

  it("a follower never commits beyond what it holds and what the leader sent", () => {
    const node = loneNode({ id: 2, voters: [1, 2, 3], term: 2, logTerms: [1, 1, 1] });
    // Entries 2-3 of ours may be stale: the leader only vouched for index 1.
    node.step(msg({ type: "Append", from: 1, to: 2, term: 2, logIndex: 1, logTerm: 1, commit: 3 }));
    expect(node.status().commit).toBe(1);
  });
});

describe("check-quorum (thesis §6.2)", () => {
  it("a leader isolated from a 3-node quorum steps down within an election timeout", () => {
    const c = new TestCluster({ voters: [1, 2, 3], electionTicks: 10 });
    c.elect(1);
    c.isolate(1);
    c.tick(1, 9);
    expect(c.node(1).status().role).toBe("leader");
    c.tick(1, 11);
    expect(c.node(1).status()).toMatchObject({ role: "follower", term: 1, leader: 0 });
  });

  it("a leader that hears from a quorum keeps leading", () => {
    const c = new TestCluster({ voters: [1, 2, 3] });
    c.elect(1);
    c.isolate(3);
    for (let k = 0; k < 50; k++) {
      c.tick(1);
      c.tick(2);
      c.stabilize();
    }
    expect(c.node(1).status()).toMatchObject({ role: "leader", term: 1 });
  });
});

describe("leadership transfer (thesis §3.10)", () => {
  it("catches the target up, sends TimeoutNow, and the target wins the next term at once", () => {
    const c = new TestCluster({ voters: [1, 2, 3] });
    c.elect(1);
    c.isolate(3);
    c.propose(1, "a");
    c.propose(1, "b");
    c.stabilize();
    c.heal();
    expect(c.node(1).transferLeadership(3)).toBe(true);
    expect(c.node(1).propose(data("refused"))).toMatchObject({ ok: false, reason: "transferring" });
    c.stabilize();
    expect(c.trace.some((l) => l.startsWith("1->3 TimeoutNow"))).toBe(true);
    expect(c.node(3).status()).toMatchObject({ role: "leader", term: 2 });
    expect(c.node(1).status()).toMatchObject({ role: "follower", term: 2, leader: 3 });
    c.propose(3, "c");
    c.stabilize();
    expect(c.applied.get(1)!.map((s) => s.split(":")[1])).toEqual(["noop", "a", "b", "noop", "c"]);
  });

  it("a transfer that does not finish within an election timeout is aborted", () => {
    const c = new TestCluster({ voters: [1, 2, 3], electionTicks: 10 });
    c.elect(1);
    c.isolate(3);
    c.propose(1, "a");
    expect(c.node(1).transferLeadership(3)).toBe(true);
    for (let k = 0; k < 10; k++) {
      c.tick(1);
      c.tick(2);
      c.stabilize();
    }
    expect(c.node(1).transferee()).toBe(0);
    expect(c.node(1).status().role).toBe("leader");
    expect(c.node(1).propose(data("b")).ok).toBe(true);
  });

  it("refuses to transfer to itself, to an observer or from a follower", () => {
    const c = new TestCluster({ voters: [1, 2, 3], observers: [4] });
    c.elect(1);
    expect(c.node(1).transferLeadership(1)).toBe(false);
    expect(c.node(1).transferLeadership(4)).toBe(false);
    expect(c.node(2).transferLeadership(3)).toBe(false);
  });
});

describe("snapshots (§7)", () => {
  it("a follower whose next entry is compacted away gets an InstallSnapshot and catches up", () => {
    const c = new TestCluster({ voters: [1, 2, 3] });
    c.elect(1);
    c.isolate(3);
    for (let k = 0; k < 5; k++) c.propose(1, `p${k}`);
    c.stabilize();
    const snap = c.compact(1);
    expect(snap?.meta).toMatchObject({ index: 6, term: 1, voters: [1, 2, 3] });
    c.propose(1, "after");
    c.stabilize();
    c.heal();
    c.tick(1);
    c.stabilize();
    expect(c.trace).toContain("3: installed snapshot 6/1");
    expect(c.node(3).status()).toMatchObject({ commit: 7, applied: 7, lastIndex: 7 });
    expect(c.applied.get(3)).toEqual(c.applied.get(1));
    // The installed snapshot replaced the follower's log on disk.
    expect(c.disks.get(3)!.snapshot?.meta.index).toBe(6);
    expect(c.disks.get(3)!.entries.map((e) => e.index)).toEqual([7]);
  });

  it("a snapshot the follower already covers is not installed; the answer is its commit index", () => {
    const node = loneNode({ id: 2, voters: [1, 2, 3], term: 2, logTerms: [1, 1, 2], commit: 3 });
    node.step(msg({ type: "InstallSnapshot", from: 1, to: 2, term: 2, snapshot: { meta: { index: 2, term: 1, voters: [1, 2, 3], observers: [] }, data: data("") } }));
    const rd = node.ready();
    expect(rd.snapshot).toBeUndefined();
    expect(rd.messages).toMatchObject([{ type: "InstallSnapshotResp", hintIndex: 3 }]);
    node.advance(rd);
  });

  it("a restarted node recovers its snapshot and the entries after it", () => {
    const c = new TestCluster({ voters: [1, 2, 3] });
    c.elect(1);
    c.propose(1, "a");
    c.stabilize();
    c.compact(2);
    c.propose(1, "b");
    c.stabilize();
    c.restart(2);
    c.processAll();
    expect(c.node(2).status()).toMatchObject({ term: 1, commit: 3, applied: 3, lastIndex: 3 });
    expect(c.applied.get(2)).toEqual(c.applied.get(1));
  });

  it("compaction below the applied index is an assert", () => {
    const c = new TestCluster({ voters: [1] });
    c.elect(1);
    expect(() => c.node(1).compact(5, data(""))).toThrow(AssertionError);
  });
});

describe("observers", () => {
  it("an observer receives and applies the log but never counts for the quorum nor campaigns", () => {
    const c = new TestCluster({ voters: [1, 2, 3], observers: [4] });
    c.elect(1);
    c.propose(1, "a");
    c.stabilize();
    expect(c.applied.get(4)).toEqual(c.applied.get(1));
    expect(c.node(4).status()).toMatchObject({ role: "observer", leader: 1 });
    // Leader plus observer is not a quorum of voters.
    c.cut(1, 2);
    c.cut(1, 3);
    c.propose(1, "b");
    c.stabilize();
    expect(c.node(1).status().progress?.[4]?.match).toBe(3);
    expect(c.node(1).status().commit).toBe(2);
    // An observer never campaigns, however long it hears nothing.
    c.isolate(4);
    c.tick(4, 200);
    expect(c.node(4).status()).toMatchObject({ role: "observer", term: 1 });
  });
});

describe("read index (thesis §6.4)", () => {
  it("confirms leadership with a heartbeat round, then releases the commit index at request time", () => {
    const c = new TestCluster({ voters: [1, 2, 3] });
    c.elect(1);
    c.propose(1, "a");
    c.stabilize();
    expect(c.node(1).readIndex("r1")).toMatchObject({ ok: true, index: 2 });
    c.processAll();
    expect(c.readStates.get(1)).toEqual([]);
    const heartbeats = c.queue.filter((m) => m.type === "Heartbeat");
    expect(heartbeats.map((m) => m.context)).toEqual(["r1", "r1"]);
    c.stabilize();
    expect(c.readStates.get(1)).toEqual([{ context: "r1", index: 2 }]);
  });

  it("a leader cut off from the quorum never releases a read", () => {
    const c = new TestCluster({ voters: [1, 2, 3] });
    c.elect(1);
    c.isolate(1);
    expect(c.node(1).readIndex("r1").ok).toBe(true);
    for (let k = 0; k < 30; k++) {
      c.tick(1);
      c.stabilize();
    }
    expect(c.readStates.get(1)).toEqual([]);
    expect(c.node(1).status().role).toBe("follower");
  });

  it("a new leader waits for its first commit in its term before answering reads", () => {
    const c = new TestCluster({ voters: [1, 2, 3] });
    c.campaign(1);
    c.stabilize((m) => m.type !== "AppendResp"); // elected, but the no-op is not acknowledged
    expect(c.node(1).status()).toMatchObject({ role: "leader", commit: 0 });
    expect(c.node(1).readIndex("r1")).toMatchObject({ ok: true, index: 0 });
    c.stabilize();
    expect(c.readStates.get(1)).toEqual([{ context: "r1", index: 1 }]);
  });

  it("a follower refuses and names the leader; a single voter answers at once", () => {
    const c = new TestCluster({ voters: [1, 2, 3] });
    c.elect(1);
    expect(c.node(2).readIndex("r")).toEqual({ ok: false, reason: "not-leader", leader: 1 });
    const solo = new TestCluster({ voters: [1] });
    solo.elect(1);
    expect(solo.node(1).readIndex("r").ok).toBe(true);
    solo.processAll();
    expect(solo.readStates.get(1)).toEqual([{ context: "r", index: 1 }]);
  });
});

describe("the Ready contract", () => {
  it("one Ready is outstanding at a time; the next one holds only what is new", () => {
    const node = loneNode({ id: 1, voters: [1] });
    for (let k = 0; k < 40 && node.status().role !== "leader"; k++) node.tick();
    const rd1 = node.ready();
    expect(rd1.entries.map((e) => e.type)).toEqual(["noop"]);
    expect(node.hasReady()).toBe(false);
    expect(() => node.ready()).toThrow(AssertionError);
    node.propose(data("x"));
    expect(node.hasReady()).toBe(false);
    node.advance(rd1);
    expect(node.hasReady()).toBe(true);
    const rd2 = node.ready();
    expect(rd2.entries.map((e) => e.index)).toEqual([2]);
    expect(rd2.committedEntries.map((e) => e.index)).toEqual([2]);
    node.advance(rd2);
    expect(node.status()).toMatchObject({ commit: 2, applied: 2 });
  });

  it("a restarted node keeps its term, vote and log, and re-applies committed entries after its snapshot", () => {
    const c = new TestCluster({ voters: [1, 2, 3] });
    c.elect(1);
    c.propose(1, "a");
    c.stabilize();
    const before = c.node(2).status();
    c.restart(2);
    expect(c.node(2).status()).toMatchObject({ term: before.term, lastIndex: before.lastIndex, role: "follower", leader: 0 });
    c.processAll();
    expect(c.applied.get(2)).toEqual(c.applied.get(1));
  });
});

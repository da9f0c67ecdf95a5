import { describe, expect, it } from "vitest";
import { SeededRandom } from "@flotilla/common";
import type { TopicPartition } from "../accumulator.js";
import { assignorsByName, cooperativeStickyAssignor, rangeAssignor, roundRobinAssignor, stickyAssign, type GroupAssignment, type MemberSubscription } from "./assignors.js";

const member = (memberId: string, topics: string[], owned: string[] = [], generationId = 1, groupInstanceId = ""): MemberSubscription => ({
  memberId,
  groupInstanceId,
  topics,
  ownedPartitions: owned.map(parse),
  generationId,
});
/** "t0p1" -> { topic: "t0", partition: 1 } */
function parse(s: string): TopicPartition {
  const m = /^(.+)p(\d+)$/.exec(s);
  if (!m) throw new Error(`bad tp ${s}`);
  return { topic: m[1] as string, partition: Number(m[2]) };
}
const show = (a: GroupAssignment): Record<string, string[]> => Object.fromEntries([...a].map(([m, tps]) => [m, tps.map((tp) => `${tp.topic}p${tp.partition}`)]));
const counts = (entries: [string, number][]): Map<string, number> => new Map(entries);

describe("range assignor", () => {
  it("Kafka's documented example: C0 gets t0p0,t0p1,t1p0,t1p1 and C1 gets t0p2,t1p2", () => {
    const a = rangeAssignor.assign({ members: [member("C1", ["t0", "t1"]), member("C0", ["t0", "t1"])], partitionsPerTopic: counts([["t0", 3], ["t1", 3]]) });
    expect(show(a)).toEqual({ C1: ["t0p2", "t1p2"], C0: ["t0p0", "t0p1", "t1p0", "t1p1"] });
  });

  it("splits 6 partitions over 3 members in contiguous pairs, 7 over 3 gives the first an extra", () => {
    const ms = [member("c", ["t"]), member("a", ["t"]), member("b", ["t"])];
    expect(show(rangeAssignor.assign({ members: ms, partitionsPerTopic: counts([["t", 6]]) }))).toEqual({ a: ["tp0", "tp1"], b: ["tp2", "tp3"], c: ["tp4", "tp5"] });
    expect(show(rangeAssignor.assign({ members: ms, partitionsPerTopic: counts([["t", 7]]) }))).toEqual({ a: ["tp0", "tp1", "tp2"], b: ["tp3", "tp4"], c: ["tp5", "tp6"] });
  });

  it("static members sort first by instance id; members of other topics and unknown topics get nothing", () => {
    const a = rangeAssignor.assign({
      members: [member("a", ["t"]), member("z", ["t"], [], 1, "i1"), member("x", ["other"])],
      partitionsPerTopic: counts([["t", 3]]),
    });
    expect(show(a)).toEqual({ a: ["tp2"], z: ["tp0", "tp1"], x: [] });
  });
});

describe("roundrobin assignor", () => {
  it("Kafka's documented example with equal subscriptions", () => {
    const a = roundRobinAssignor.assign({ members: [member("C0", ["t0", "t1"]), member("C1", ["t0", "t1"])], partitionsPerTopic: counts([["t0", 3], ["t1", 3]]) });
    expect(show(a)).toEqual({ C0: ["t0p0", "t0p2", "t1p1"], C1: ["t0p1", "t1p0", "t1p2"] });
  });

  it("Kafka's documented example with unequal subscriptions", () => {
    const a = roundRobinAssignor.assign({
      members: [member("C0", ["t0"]), member("C1", ["t0", "t1"]), member("C2", ["t0", "t1", "t2"])],
      partitionsPerTopic: counts([["t0", 1], ["t1", 2], ["t2", 3]]),
    });
    expect(show(a)).toEqual({ C0: ["t0p0"], C1: ["t1p0"], C2: ["t1p1", "t2p0", "t2p1", "t2p2"] });
  });
});

describe("sticky assignment", () => {
  it("Kafka's StickyAssignor example: after C1 leaves, C0 and C2 keep what they had and split C1's", () => {
    const a = stickyAssign({
      members: [member("C0", ["t0", "t1", "t2", "t3"], ["t0p0", "t1p1", "t3p0"]), member("C2", ["t0", "t1", "t2", "t3"], ["t1p0", "t2p1"])],
      partitionsPerTopic: counts([["t0", 2], ["t1", 2], ["t2", 2], ["t3", 2]]),
    });
    expect(show(a)).toEqual({ C0: ["t0p0", "t1p1", "t2p0", "t3p0"], C2: ["t0p1", "t1p0", "t2p1", "t3p1"] });
  });

  it("a new member takes one partition from each of the fuller members, the rest stay", () => {
    const a = stickyAssign({
      members: [member("m1", ["t"], ["tp0", "tp1", "tp2"]), member("m2", ["t"], ["tp3", "tp4", "tp5"]), member("m3", ["t"])],
      partitionsPerTopic: counts([["t", 6]]),
    });
    expect(show(a)).toEqual({ m1: ["tp0", "tp1"], m2: ["tp3", "tp4"], m3: ["tp2", "tp5"] });
  });

  it("a partition claimed by two members goes to the newer generation", () => {
    const a = stickyAssign({ members: [member("a", ["t"], ["tp0"], 3), member("b", ["t"], ["tp0"], 5)], partitionsPerTopic: counts([["t", 2]]) });
    expect(show(a)).toEqual({ a: ["tp1"], b: ["tp0"] });
  });

  it("random inputs: every partition exactly once, counts within one among equal subscriptions, valid owned partitions kept when balanced", () => {
    const rnd = new SeededRandom(42);
    for (let round = 0; round < 200; round++) {
      const n = rnd.int(1, 6);
      const partitions = rnd.int(0, 13);
      const ids = Array.from({ length: n }, (_, i) => `m${i}`);
      // Previous owners: each partition owned by a random member or nobody.
      const owned = new Map<string, string[]>(ids.map((id) => [id, []]));
      for (let p = 0; p < partitions; p++) if (rnd.bool(0.7)) owned.get(rnd.pick(ids))?.push(`tp${p}`);
      const members = ids.map((id) => member(id, ["t"], owned.get(id)));
      const a = stickyAssign({ members, partitionsPerTopic: counts([["t", partitions]]) });
      const flat = [...a.values()].flat().map((tp) => tp.partition).sort((x, y) => x - y);
      expect(flat).toEqual(Array.from({ length: partitions }, (_, i) => i));
      const sizes = [...a.values()].map((l) => l.length);
      expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
      // Stickiness: a member keeps min(owned, its final count) of its owned partitions.
      for (const id of ids) {
        const mine = new Set((a.get(id) ?? []).map((tp) => `tp${tp.partition}`));
        const kept = (owned.get(id) ?? []).filter((x) => mine.has(x)).length;
        expect(kept).toBe(Math.min((owned.get(id) ?? []).length, mine.size));
      }
    }
  });
});

describe("cooperative-sticky assignor", () => {
  it("two-phase: a new member gets moved partitions only after their owners gave them up", () => {
    const ptt = counts([["t", 6]]);
    // Round 1: m3 joins; m1 and m2 own everything. Moving partitions are withheld.
    const first = cooperativeStickyAssignor.assign({
      members: [member("m1", ["t"], ["tp0", "tp1", "tp2"]), member("m2", ["t"], ["tp3", "tp4", "tp5"]), member("m3", ["t"])],
      partitionsPerTopic: ptt,
    });
    expect(show(first)).toEqual({ m1: ["tp0", "tp1"], m2: ["tp3", "tp4"], m3: [] });
    // Round 2: m1 and m2 revoked tp2 and tp5 and rejoined owning only what they kept.
    const second = cooperativeStickyAssignor.assign({
      members: [member("m1", ["t"], ["tp0", "tp1"], 2), member("m2", ["t"], ["tp3", "tp4"], 2), member("m3", ["t"], [], 2)],
      partitionsPerTopic: ptt,
    });
    expect(show(second)).toEqual({ m1: ["tp0", "tp1"], m2: ["tp3", "tp4"], m3: ["tp2", "tp5"] });
  });

  it("a member that left frees its partitions at once (nobody owns them any more)", () => {
    const a = cooperativeStickyAssignor.assign({ members: [member("m1", ["t"], ["tp0", "tp1"]), member("m3", ["t"], ["tp2", "tp3"])], partitionsPerTopic: counts([["t", 6]]) });
    expect(show(a)).toEqual({ m1: ["tp0", "tp1", "tp4"], m3: ["tp2", "tp3", "tp5"] });
  });
});

describe("assignorsByName", () => {
  it("knows the built-in names and rejects others with INVALID_CONFIG", () => {
    expect(assignorsByName(["range", "cooperative-sticky"]).map((a) => a.name)).toEqual(["range", "cooperative-sticky"]);
    expect(() => assignorsByName(["sticky-ish"])).toThrow(/INVALID_CONFIG.*sticky-ish/);
    expect(() => assignorsByName([])).toThrow(/INVALID_CONFIG/);
  });
});

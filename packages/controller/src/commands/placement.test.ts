import { describe, expect, it } from "vitest";
import { SeededRandom } from "@flotilla/common";
import { placeReplicas, randomPlacementStart } from "./placement.js";

function countBy(values: number[]): Map<number, number> {
  const m = new Map<number, number>();
  for (const v of values) m.set(v, (m.get(v) ?? 0) + 1);
  return m;
}

describe("replica placement", () => {
  it("follows Kafka's round-robin layout for a fixed start", () => {
    // Five brokers, start 0, shift 0: leaders go round; the follower sits one further on,
    // then two further once every broker has led one partition.
    const placement = placeReplicas({ brokers: [0, 1, 2, 3, 4], numPartitions: 10, replicationFactor: 2 }, { startIndex: 0, nextReplicaShift: 0 });
    expect(placement).toEqual([
      [0, 1], [1, 2], [2, 3], [3, 4], [4, 0],
      [0, 2], [1, 3], [2, 4], [3, 0], [4, 1],
    ]);
  });

  it.each([
    [3, 6, 3],
    [5, 20, 3],
    [4, 12, 2],
    [7, 70, 3],
  ])("with %i brokers and %i partitions at RF %i, leaders and replicas are spread evenly and never repeat in a partition", (n, partitions, rf) => {
    const brokers = Array.from({ length: n }, (_, i) => i + 1);
    const random = new SeededRandom(n * 1000 + partitions);
    const placement = placeReplicas({ brokers, numPartitions: partitions, replicationFactor: rf }, randomPlacementStart(n, random));
    expect(placement).toHaveLength(partitions);
    for (const replicas of placement) {
      expect(replicas).toHaveLength(rf);
      expect(new Set(replicas).size).toBe(rf);
    }
    const leaders = countBy(placement.map((r) => r[0] as number));
    expect([...leaders.values()].every((c) => c === partitions / n)).toBe(true);
    const all = countBy(placement.flat());
    expect([...all.values()].every((c) => c === (partitions * rf) / n)).toBe(true);
  });

  it("placing from firstPartition continues the same layout", () => {
    const start = { startIndex: 2, nextReplicaShift: 1 };
    const whole = placeReplicas({ brokers: [1, 2, 3, 4], numPartitions: 9, replicationFactor: 3 }, start);
    const tail = placeReplicas({ brokers: [1, 2, 3, 4], numPartitions: 4, replicationFactor: 3, firstPartition: 5 }, start);
    expect(tail).toEqual(whole.slice(5));
  });

  it("a single broker holds every replica", () => {
    expect(placeReplicas({ brokers: [7], numPartitions: 3, replicationFactor: 1 }, { startIndex: 0, nextReplicaShift: 0 })).toEqual([[7], [7], [7]]);
  });
});

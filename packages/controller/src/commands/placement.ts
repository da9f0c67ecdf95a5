/**
 * Replica placement, rack-unaware: Kafka's round-robin assignment with a random start
 * (AdminUtils.assignReplicasToBrokersRackUnaware, as described in KIP-36).
 *
 * With brokers b[0..n) and a start index s, partition i's first replica (its preferred
 * leader) is b[(i + s) % n], so leaders go round the brokers. The other replicas follow
 * the first at a distance 1 + (shift + j) % (n - 1); `shift` grows by one after every n
 * partitions, so the followers of a broker's partitions are spread over the others
 * instead of always being its neighbour. A random start and shift keep topics from
 * piling their partition 0 leaders on the same broker.
 */
import { assert, type Random } from "@flotilla/common";

export interface PlacementInput {
  /** Live broker ids, sorted ascending. */
  readonly brokers: readonly number[];
  readonly numPartitions: number;
  readonly replicationFactor: number;
  /** First partition index to place (for adding partitions to a topic). */
  readonly firstPartition?: number;
}

export interface PlacementStart {
  readonly startIndex: number;
  readonly nextReplicaShift: number;
}

export function randomPlacementStart(brokerCount: number, random: Random): PlacementStart {
  return { startIndex: random.int(0, brokerCount), nextReplicaShift: random.int(0, brokerCount) };
}

function replicaIndex(first: number, shift: number, j: number, n: number): number {
  return (first + 1 + ((shift + j) % (n - 1))) % n;
}

/** Replica lists for partitions firstPartition .. firstPartition + numPartitions - 1. */
export function placeReplicas(input: PlacementInput, start: PlacementStart): number[][] {
  const { brokers, numPartitions, replicationFactor } = input;
  const n = brokers.length;
  assert(replicationFactor >= 1 && replicationFactor <= n, `replication factor ${replicationFactor} with ${n} brokers`);
  assert(numPartitions >= 0, `placing ${numPartitions} partitions`);
  const firstPartition = input.firstPartition ?? 0;
  const out: number[][] = [];
  let shift = start.nextReplicaShift;
  for (let i = 0; i < firstPartition + numPartitions; i++) {
    if (i > 0 && i % n === 0) shift++;
    if (i < firstPartition) continue;
    const first = (i + start.startIndex) % n;
    const replicas = [brokers[first] as number];
    for (let j = 0; j < replicationFactor - 1; j++) replicas.push(brokers[replicaIndex(first, shift, j, n)] as number);
    out.push(replicas);
  }
  return out;
}

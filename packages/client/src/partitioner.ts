import { FlotillaError, type Random } from "@flotilla/common";
import { partitionForKey } from "@flotilla/protocol";

/** A user partitioner: returns a partition in [0, numPartitions). */
export type PartitionerFn = (args: { topic: string; key: Buffer | null; value: Buffer | null; numPartitions: number }) => number;

/**
 * How records without a key are spread:
 * - "sticky": Kafka's built-in partitioner (KIP-480 / KIP-794, the default since Kafka 2.4 /
 *   3.3): stick to one partition until about `batchSizeBytes` of unkeyed records went to it,
 *   then switch to another, chosen at random. Records then fill batches instead of
 *   scattering one record per partition per request, which is what makes linger.ms pay off.
 *   (Kafka also weighs the switch by each broker's queue; Flotilla does not.)
 * - "round-robin": one record per partition in turn; even spread, smaller batches.
 */
export type UnkeyedPartitioning = "sticky" | "round-robin";

export interface ChooseArgs {
  topic: string;
  key: Buffer | null;
  value: Buffer | null;
  /** A partition given by the caller; always wins. */
  partition?: number | undefined;
  numPartitions: number;
  /** Estimated bytes of the record, counted against the sticky partition's budget. */
  recordSizeBytes: number;
}

/**
 * Picks the partition of each record: an explicit partition wins; then a custom
 * partitioner if given; then keyed records go to `toPositive(murmur2(key)) % numPartitions`
 * (bit-identical to Kafka's Java client, so a key lands on the same partition whichever
 * client wrote it); unkeyed records follow `unkeyed`.
 */
export class PartitionChooser {
  private readonly sticky = new Map<string, { partition: number; bytes: number }>();
  private readonly roundRobin = new Map<string, number>();

  constructor(
    private readonly options: { unkeyed: UnkeyedPartitioning; custom?: PartitionerFn | undefined; batchSizeBytes: number },
    private readonly random: Random,
  ) {}

  choose(args: ChooseArgs): number {
    const { topic, numPartitions } = args;
    if (numPartitions < 1) throw new FlotillaError("UNKNOWN_TOPIC_OR_PARTITION", `topic "${topic}" has no partitions`);
    if (args.partition !== undefined) return checkPartition(topic, args.partition, numPartitions, "given");
    if (this.options.custom) {
      const p = this.options.custom({ topic, key: args.key, value: args.value, numPartitions });
      return checkPartition(topic, p, numPartitions, "returned by the custom partitioner");
    }
    if (args.key !== null) return partitionForKey(args.key, numPartitions);
    return this.options.unkeyed === "round-robin" ? this.nextRoundRobin(topic, numPartitions) : this.nextSticky(topic, numPartitions, args.recordSizeBytes);
  }

  private nextRoundRobin(topic: string, numPartitions: number): number {
    const n = this.roundRobin.get(topic) ?? this.random.int(0, numPartitions);
    this.roundRobin.set(topic, n + 1);
    return n % numPartitions;
  }

  private nextSticky(topic: string, numPartitions: number, recordSizeBytes: number): number {
    let s = this.sticky.get(topic);
    if (!s || s.partition >= numPartitions || s.bytes >= this.options.batchSizeBytes) {
      let next = this.random.int(0, numPartitions);
      // Switch to a different partition when there is one, so the load actually moves.
      if (s && numPartitions > 1 && next === s.partition) next = (next + 1 + this.random.int(0, numPartitions - 1)) % numPartitions;
      s = { partition: next, bytes: 0 };
      this.sticky.set(topic, s);
    }
    s.bytes += recordSizeBytes;
    return s.partition;
  }
}

function checkPartition(topic: string, partition: number, numPartitions: number, what: string): number {
  if (!Number.isInteger(partition) || partition < 0 || partition >= numPartitions) {
    throw new FlotillaError("UNKNOWN_TOPIC_OR_PARTITION", `partition ${partition} ${what} for topic "${topic}" is not in [0, ${numPartitions})`);
  }
  return partition;
}

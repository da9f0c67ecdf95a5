/**
 * The group coordinator's settings, with Kafka's property names (read and checked by
 * ../config.ts). Differences from Kafka:
 * - group.max.size defaults to 1000 (Kafka: Integer.MAX_VALUE): every member holds a
 *   parked JoinGroup and SyncGroup call and a session timer, so the bound is a resource
 *   limit. A join past it answers GROUP_MAX_SIZE_REACHED naming the limit.
 */
export interface GroupCoordinatorConfig {
  /** offsets.topic.num.partitions: partitions of __consumer_offsets (fixed once created). */
  readonly offsetsTopicNumPartitions: number;
  /** offsets.topic.replication.factor, capped to the live brokers when the topic is created. */
  readonly offsetsTopicReplicationFactor: number;
  /** group.min.session.timeout.ms / group.max.session.timeout.ms: allowed session.timeout.ms. */
  readonly groupMinSessionTimeoutMs: number;
  readonly groupMaxSessionTimeoutMs: number;
  /** group.initial.rebalance.delay.ms: how long the first rebalance of an empty group waits for more members. */
  readonly groupInitialRebalanceDelayMs: number;
  /** group.max.size: most members per group. */
  readonly groupMaxSize: number;
  /** offsets.retention.minutes: offsets of a group without members live this long after it emptied. */
  readonly offsetsRetentionMs: number;
  /** offsets.retention.check.interval.ms: how often expired offsets are looked for. */
  readonly offsetsRetentionCheckIntervalMs: number;
  /** offsets.commit.timeout.ms: longest an offset commit (or group write) waits to be durable. */
  readonly offsetsCommitTimeoutMs: number;
  /** offsets.load.buffer.size: bytes read per step while loading a partition of __consumer_offsets. */
  readonly offsetsLoadBufferBytes: number;
  /** offset.metadata.max.bytes: longest metadata string stored with an offset. */
  readonly offsetMetadataMaxBytes: number;
}

/** Kafka's defaults, except group.max.size (see above). */
export const DEFAULT_GROUP_COORDINATOR_CONFIG: GroupCoordinatorConfig = Object.freeze({
  offsetsTopicNumPartitions: 50,
  offsetsTopicReplicationFactor: 3,
  groupMinSessionTimeoutMs: 6000,
  groupMaxSessionTimeoutMs: 1_800_000,
  groupInitialRebalanceDelayMs: 3000,
  groupMaxSize: 1000,
  offsetsRetentionMs: 10080 * 60_000,
  offsetsRetentionCheckIntervalMs: 600_000,
  offsetsCommitTimeoutMs: 5000,
  offsetsLoadBufferBytes: 5 * 1024 * 1024,
  offsetMetadataMaxBytes: 4096,
});

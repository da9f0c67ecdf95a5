import type { MetadataRecord } from "@flotilla/metadata";

/**
 * What a controller command decided (Kafka's ControllerResult): the records to commit
 * and the response to send once they are committed. Commands change nothing; only
 * replaying the committed records does.
 */
export interface ControllerResult<R> {
  readonly records: readonly MetadataRecord[];
  readonly response: R;
}

/** Defaults the controller applies when a request says -1 (Kafka's broker settings). */
export interface TopicCreationDefaults {
  /** num.partitions */
  readonly numPartitions: number;
  /** default.replication.factor */
  readonly replicationFactor: number;
}

/** Most partitions one topic may have, and most records one command may produce. */
export const PARTITIONS_PER_TOPIC_MAX = 10_000;

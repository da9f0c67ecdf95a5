/**
 * Topic config key -> the broker property that sets its default (Kafka's synonyms, by
 * Kafka's names). DescribeConfigs(BROKER) reports broker values under these names and
 * DescribeConfigs(TOPIC) lists them as the synonym behind each topic key.
 */
export const BROKER_KEY_OF_TOPIC_KEY: Readonly<Record<string, string>> = Object.freeze({
  "retention.ms": "log.retention.ms",
  "retention.bytes": "log.retention.bytes",
  "segment.bytes": "log.segment.bytes",
  "segment.ms": "log.roll.ms",
  "min.insync.replicas": "min.insync.replicas",
  "max.message.bytes": "message.max.bytes",
  "message.timestamp.type": "log.message.timestamp.type",
  "cleanup.policy": "log.cleanup.policy",
  "min.cleanable.dirty.ratio": "log.cleaner.min.cleanable.ratio",
  "delete.retention.ms": "log.cleaner.delete.retention.ms",
  "min.compaction.lag.ms": "log.cleaner.min.compaction.lag.ms",
  "index.interval.bytes": "log.index.interval.bytes",
  "segment.index.bytes": "log.index.size.max.bytes",
  "flush.messages": "log.flush.interval.messages",
  "flush.ms": "log.flush.interval.ms",
  "unclean.leader.election.enable": "unclean.leader.election.enable",
});

/** The reverse: broker property -> the topic key it is the default of. */
export const TOPIC_KEY_OF_BROKER_KEY: ReadonlyMap<string, string> = new Map(Object.entries(BROKER_KEY_OF_TOPIC_KEY).map(([topicKey, brokerKey]) => [brokerKey, topicKey]));

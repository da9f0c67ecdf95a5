/**
 * Metadata records: the entries of the cluster metadata log (Kafka KRaft's
 * `metadata/src/main/resources/common/metadata/*Record.json`, reduced to what Flotilla
 * needs). Records are facts that a controller command decided; replaying them in log
 * order (./delta.ts) rebuilds the metadata image on every node. The byte encoding is in
 * ./codec.ts.
 *
 * Sentinels follow Kafka: leader -1 = no leader; brokerEpoch is the log offset of the
 * broker's RegisterBroker record.
 */

/** A listener a broker advertises to clients: `PLAINTEXT://host:port` becomes {name, host, port}. */
export interface Endpoint {
  readonly name: string;
  readonly host: string;
  readonly port: number;
}

export const NO_LEADER = -1;

/** A broker (re)joins the cluster. It starts fenced; the controller unfences it once it has caught up. */
export interface RegisterBrokerRecord {
  readonly type: "RegisterBroker";
  readonly brokerId: number;
  /** A random id chosen by the broker process at start, so a restarted broker is told apart from a retry. */
  readonly incarnationId: string;
  readonly endpoints: readonly Endpoint[];
  readonly rack: string | null;
}

/** The broker may no longer lead or be in an ISR (missed heartbeats, or it asked to be). */
export interface FenceBrokerRecord {
  readonly type: "FenceBroker";
  readonly brokerId: number;
  readonly brokerEpoch: number;
}

export interface UnfenceBrokerRecord {
  readonly type: "UnfenceBroker";
  readonly brokerId: number;
  readonly brokerEpoch: number;
}

export interface TopicRecord {
  readonly type: "Topic";
  readonly name: string;
  /** 22 characters: 16 random bytes in unpadded base64url, like Kafka's Uuid.toString(). */
  readonly topicId: string;
}

export interface PartitionRecord {
  readonly type: "Partition";
  readonly topicId: string;
  readonly partition: number;
  /** Broker ids; the first is the preferred leader. */
  readonly replicas: readonly number[];
  readonly isr: readonly number[];
  readonly leader: number;
  readonly leaderEpoch: number;
  readonly partitionEpoch: number;
}

/**
 * A change to an existing partition. Absent fields do not change. Replay bumps the
 * partition epoch always and the leader epoch whenever `leader` is present (Kafka's
 * PartitionChangeRecord: every leader election starts a new epoch).
 */
export interface PartitionChangeRecord {
  readonly type: "PartitionChange";
  readonly topicId: string;
  readonly partition: number;
  readonly leader?: number;
  readonly isr?: readonly number[];
  readonly replicas?: readonly number[];
}

export type ConfigResourceType = "topic" | "broker";

/**
 * Sets (value) or removes (null) one configuration key of a topic (resourceName = topic
 * name) or a broker (resourceName = broker id, "" = the cluster-wide broker default).
 */
export interface ConfigRecord {
  readonly type: "Config";
  readonly resourceType: ConfigResourceType;
  readonly resourceName: string;
  readonly name: string;
  readonly value: string | null;
}

/** Removes a topic, its partitions and its configuration. */
export interface RemoveTopicRecord {
  readonly type: "RemoveTopic";
  readonly topicId: string;
}

/** A block of producer ids handed to a broker: ids below nextProducerId are taken. */
export interface ProducerIdsRecord {
  readonly type: "ProducerIds";
  readonly brokerId: number;
  readonly brokerEpoch: number;
  readonly nextProducerId: number;
}

export type MetadataRecord =
  | RegisterBrokerRecord
  | FenceBrokerRecord
  | UnfenceBrokerRecord
  | TopicRecord
  | PartitionRecord
  | PartitionChangeRecord
  | ConfigRecord
  | RemoveTopicRecord
  | ProducerIdsRecord;

export type MetadataRecordType = MetadataRecord["type"];

/** A record with the metadata-log offset it was committed at. */
export interface CommittedRecord {
  readonly offset: number;
  readonly record: MetadataRecord;
}

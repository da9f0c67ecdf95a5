/**
 * @flotilla/client: Producer, Consumer and Admin for a Flotilla cluster. See README.md for
 * options, defaults and units.
 */
export { Producer, type ProducerOptions, type ProducerMessage, type SendRequest, type RecordMetadata, type Acks } from "./producer.js";
export {
  Consumer,
  type ConsumerOptions,
  type ConsumerRecord,
  type ConsumerBatch,
  type SeekTarget,
  type AssignmentInput,
  type RunOptions,
  type OffsetResetStrategy,
} from "./consumer.js";
export { ConsumerRecordBatch, type PartitionBatches, type ConsumerRecordBatches } from "./consumer.js";
export {
  Admin,
  type AdminOptions,
  type NewTopic,
  type CreatedTopic,
  type TopicDescription,
  type PartitionDescription,
  type ClusterMetadata,
  type OffsetSpec,
  type PartitionOffset,
} from "./admin.js";
export type { CommonClientOptions } from "./config.js";
export type { TopicPartition } from "./accumulator.js";
export type { Bytes, HeadersInput, MessageHeaderInput, RecordHeader } from "./records.js";
export type { PartitionerFn, UnkeyedPartitioning } from "./partitioner.js";
export { parseBootstrapServers } from "./connection.js";
export {
  GroupConsumer,
  CONSUMER_PROTOCOL_TYPE,
  type GroupConsumerOptions,
  type SubscribeOptions,
  type RebalanceListener,
  type GroupRunOptions,
  type GroupBatch,
  type CommittedOffset,
} from "./group/group-consumer.js";
export { GroupAdmin, type GroupAdminOptions, type ListedGroupInfo, type GroupDescription, type GroupMemberDescription, type GroupOffset } from "./group/group-admin.js";
export {
  rangeAssignor,
  roundRobinAssignor,
  cooperativeStickyAssignor,
  type PartitionAssignor,
  type AssignorInput,
  type MemberSubscription,
  type GroupAssignment,
  type RebalanceProtocol,
} from "./group/assignors.js";
export { encodeSubscription, decodeSubscription, encodeAssignment, decodeAssignment, type Subscription, type Assignment, type TopicPartitions } from "./group/consumer-protocol.js";

/**
 * TypeScript shapes of proto/flotilla/broker/v1/broker.proto as loaded by
 * @grpc/proto-loader with the options in ./grpc.ts (camelCase fields, int64 as number,
 * bytes as Buffer, defaults filled in). Keep in step with the .proto file.
 */
export interface ProduceRequest {
  acks: number;
  timeoutMs: number;
  topics: { name: string; partitions: { partition: number; records: Buffer }[] }[];
}
export interface PartitionProduceResponse {
  partition: number;
  errorCode: number;
  errorMessage: string;
  baseOffset: number;
  logAppendTimeMs: number;
  logStartOffset: number;
}
export interface ProduceResponse {
  topics: { name: string; partitions: PartitionProduceResponse[] }[];
}

export interface FetchPartition {
  partition: number;
  fetchOffset: number;
  partitionMaxBytes: number;
  currentLeaderEpoch: number;
}
export interface FetchRequest {
  replicaId: number;
  maxWaitMs: number;
  minBytes: number;
  maxBytes: number;
  topics: { name: string; partitions: FetchPartition[] }[];
}
export interface FetchPartitionResponse {
  partition: number;
  errorCode: number;
  errorMessage: string;
  highWatermark: number;
  logStartOffset: number;
  records: Buffer;
}
export interface FetchResponse {
  topics: { name: string; partitions: FetchPartitionResponse[] }[];
}

export interface ListOffsetsRequest {
  replicaId: number;
  topics: { name: string; partitions: { partition: number; timestamp: number }[] }[];
}
export interface ListOffsetsPartitionResponse {
  partition: number;
  errorCode: number;
  errorMessage: string;
  timestamp: number;
  offset: number;
  leaderEpoch: number;
}
export interface ListOffsetsResponse {
  topics: { name: string; partitions: ListOffsetsPartitionResponse[] }[];
}
/** ListOffsets timestamp sentinels (Kafka's). */
export const LATEST_TIMESTAMP = -1;
export const EARLIEST_TIMESTAMP = -2;
export const MAX_TIMESTAMP = -3;

export interface MetadataRequest {
  topics: string[];
  allowAutoTopicCreation: boolean;
}
export interface BrokerInfo {
  nodeId: number;
  host: string;
  port: number;
  rack: string;
  fenced: boolean;
}
export interface PartitionMetadata {
  errorCode: number;
  partition: number;
  leaderId: number;
  leaderEpoch: number;
  replicas: number[];
  isr: number[];
  offlineReplicas: number[];
}
export interface TopicMetadata {
  errorCode: number;
  errorMessage: string;
  name: string;
  topicId: string;
  isInternal: boolean;
  partitions: PartitionMetadata[];
}
export interface MetadataResponse {
  clusterId: string;
  controllerId: number;
  brokers: BrokerInfo[];
  topics: TopicMetadata[];
}

export interface CreatableTopic {
  name: string;
  numPartitions: number;
  replicationFactor: number;
  configs: Record<string, string>;
}
export interface CreateTopicsRequest {
  topics: CreatableTopic[];
  timeoutMs: number;
  validateOnly: boolean;
}
export interface CreatableTopicResult {
  name: string;
  errorCode: number;
  errorMessage: string;
  topicId: string;
  numPartitions: number;
  replicationFactor: number;
}
export interface CreateTopicsResponse {
  topics: CreatableTopicResult[];
}

export interface DeleteTopicsRequest {
  names: string[];
  timeoutMs: number;
}
export interface DeleteTopicsResponse {
  results: { name: string; errorCode: number; errorMessage: string }[];
}

export interface CreatePartitionsTopic {
  name: string;
  /** The new total number of partitions; must be larger than the current one. */
  count: number;
  /** Manual placement of the new partitions; not supported yet (non-empty fails with INVALID_REPLICA_ASSIGNMENT). */
  assignments?: { brokerIds: number[] }[];
}
export interface CreatePartitionsRequest {
  topics: CreatePartitionsTopic[];
  timeoutMs: number;
  validateOnly: boolean;
}
export interface CreatePartitionsResponse {
  results: { name: string; errorCode: number; errorMessage: string }[];
}

export interface DescribeTopicsRequest {
  names: string[];
}
export interface TopicDescription {
  name: string;
  errorCode: number;
  errorMessage: string;
  topicId: string;
  replicationFactor: number;
  partitions: PartitionMetadata[];
  configs: Record<string, string>;
  overriddenConfigs: string[];
}
export interface DescribeTopicsResponse {
  topics: TopicDescription[];
}

export interface OffsetForLeaderPartition {
  partition: number;
  currentLeaderEpoch: number;
  leaderEpoch: number;
}
export interface OffsetForLeaderEpochRequest {
  replicaId: number;
  topics: { name: string; partitions: OffsetForLeaderPartition[] }[];
}
export interface EpochEndOffset {
  partition: number;
  errorCode: number;
  errorMessage: string;
  /** -1 with endOffset -1 when the leader knows no epoch at or below the one asked for. */
  leaderEpoch: number;
  endOffset: number;
}
export interface OffsetForLeaderEpochResponse {
  topics: { name: string; partitions: EpochEndOffset[] }[];
}

export interface InitProducerIdRequest {
  /** Must be "" (no transactions). */
  transactionalId: string;
}
export interface InitProducerIdResponse {
  errorCode: number;
  errorMessage: string;
  /** -1 on error. */
  producerId: number;
  producerEpoch: number;
}

/** The server side of the Broker service: one async function per RPC. */
export interface BrokerApi {
  produce(req: ProduceRequest): Promise<ProduceResponse>;
  fetch(req: FetchRequest, signal?: AbortSignal): Promise<FetchResponse>;
  listOffsets(req: ListOffsetsRequest): Promise<ListOffsetsResponse>;
  metadata(req: MetadataRequest): Promise<MetadataResponse>;
  createTopics(req: CreateTopicsRequest): Promise<CreateTopicsResponse>;
  deleteTopics(req: DeleteTopicsRequest): Promise<DeleteTopicsResponse>;
  describeTopics(req: DescribeTopicsRequest): Promise<DescribeTopicsResponse>;
  /** Optional so that partial test doubles and proxies need not serve it; the gRPC edge answers UNSUPPORTED_VERSION without it. */
  createPartitions(req: CreatePartitionsRequest): Promise<CreatePartitionsResponse>;
  initProducerId(req: InitProducerIdRequest): Promise<InitProducerIdResponse>;
}

/** The Broker service's replication calls (served by brokers, not by client-side test doubles). */
export interface ReplicationApi {
  offsetForLeaderEpoch(req: OffsetForLeaderEpochRequest): Promise<OffsetForLeaderEpochResponse>;
}

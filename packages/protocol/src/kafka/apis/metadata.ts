import type { KafkaApiSpec } from "../api.js";
import { ApiKey } from "../api.js";
import type { KafkaReader, KafkaWriter } from "../wire.js";

/**
 * Metadata (API key 3), versions 0-8; v9 is the first flexible version.
 *
 *   Request  => [topics: name:STRING] (null = all topics from v1; in v0 an empty array means all)
 *               allow_auto_topic_creation:BOOLEAN (v4+; older versions behave as true)
 *               include_cluster_authorized_operations:BOOLEAN (v8+)
 *               include_topic_authorized_operations:BOOLEAN (v8+)
 *   Response => throttle_time_ms:INT32 (v3+)
 *               [brokers: node_id:INT32 host:STRING port:INT32 rack:NULLABLE_STRING (v1+)]
 *               cluster_id:NULLABLE_STRING (v2+) controller_id:INT32 (v1+)
 *               [topics: error_code:INT16 name:STRING is_internal:BOOLEAN (v1+)
 *                  [partitions: error_code:INT16 partition_index:INT32 leader_id:INT32
 *                     leader_epoch:INT32 (v7+) [replica_nodes:INT32] [isr_nodes:INT32]
 *                     [offline_replicas:INT32] (v5+)]
 *                  topic_authorized_operations:INT32 (v8+)]
 *               cluster_authorized_operations:INT32 (v8+)
 */
export interface KafkaMetadataRequest {
  /** null = every topic. Decoding a v0 request turns its empty array into null. */
  topics: string[] | null;
  allowAutoTopicCreation: boolean;
  includeClusterAuthorizedOperations: boolean;
  includeTopicAuthorizedOperations: boolean;
}

export interface KafkaMetadataPartition {
  errorCode: number;
  partitionIndex: number;
  leaderId: number;
  leaderEpoch: number;
  replicaNodes: number[];
  isrNodes: number[];
  offlineReplicas: number[];
}

export interface KafkaMetadataTopic {
  errorCode: number;
  name: string;
  isInternal: boolean;
  partitions: KafkaMetadataPartition[];
  topicAuthorizedOperations: number;
}

export interface KafkaMetadataResponse {
  throttleTimeMs: number;
  brokers: { nodeId: number; host: string; port: number; rack: string | null }[];
  clusterId: string | null;
  controllerId: number;
  topics: KafkaMetadataTopic[];
  clusterAuthorizedOperations: number;
}

/** Kafka's "authorized operations not requested / not known" value (INT32 min). */
export const KAFKA_AUTHORIZED_OPERATIONS_OMITTED = -2147483648;

export const metadataApi: KafkaApiSpec<KafkaMetadataRequest, KafkaMetadataResponse> = {
  apiKey: ApiKey.Metadata,
  name: "Metadata",
  minVersion: 0,
  maxVersion: 8,
  decodeRequest(r: KafkaReader, version: number): KafkaMetadataRequest {
    // The array reader maps a null array to []; peek at the count to tell them apart.
    const countAt = r.offset;
    const isNull = r.int32("topics count") < 0;
    r.offset = countAt;
    const names = r.array((t) => t.string("topic name"), "topics");
    const topics = isNull || (version === 0 && names.length === 0) ? null : names;
    const allowAutoTopicCreation = version >= 4 ? r.boolean("allow_auto_topic_creation") : true;
    const includeClusterAuthorizedOperations = version >= 8 ? r.boolean("include_cluster_authorized_operations") : false;
    const includeTopicAuthorizedOperations = version >= 8 ? r.boolean("include_topic_authorized_operations") : false;
    return { topics, allowAutoTopicCreation, includeClusterAuthorizedOperations, includeTopicAuthorizedOperations };
  },
  encodeResponse(w: KafkaWriter, version: number, res: KafkaMetadataResponse): void {
    if (version >= 3) w.int32(res.throttleTimeMs);
    w.array(res.brokers, (w, b) => {
      w.int32(b.nodeId).string(b.host).int32(b.port);
      if (version >= 1) w.nullableString(b.rack);
    });
    if (version >= 2) w.nullableString(res.clusterId);
    if (version >= 1) w.int32(res.controllerId);
    w.array(res.topics, (w, t) => {
      w.int16(t.errorCode).string(t.name);
      if (version >= 1) w.boolean(t.isInternal);
      w.array(t.partitions, (w, p) => {
        w.int16(p.errorCode).int32(p.partitionIndex).int32(p.leaderId);
        if (version >= 7) w.int32(p.leaderEpoch);
        w.array(p.replicaNodes, (w, n) => w.int32(n));
        w.array(p.isrNodes, (w, n) => w.int32(n));
        if (version >= 5) w.array(p.offlineReplicas, (w, n) => w.int32(n));
      });
      if (version >= 8) w.int32(t.topicAuthorizedOperations);
    });
    if (version >= 8) w.int32(res.clusterAuthorizedOperations);
  },
  errorResponse(req: KafkaMetadataRequest, _version: number, errorCode: number, _errorMessage: string): KafkaMetadataResponse {
    return {
      throttleTimeMs: 0,
      brokers: [],
      clusterId: null,
      controllerId: -1,
      topics: (req.topics ?? []).map((name) => ({ errorCode, name, isInternal: false, partitions: [], topicAuthorizedOperations: KAFKA_AUTHORIZED_OPERATIONS_OMITTED })),
      clusterAuthorizedOperations: KAFKA_AUTHORIZED_OPERATIONS_OMITTED,
    };
  },
};

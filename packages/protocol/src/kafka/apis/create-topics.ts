import type { KafkaApiSpec } from "../api.js";
import { ApiKey } from "../api.js";
import type { KafkaReader, KafkaWriter } from "../wire.js";

/**
 * CreateTopics (API key 19), versions 0-4; v5 is the first flexible version. From v4 a
 * num_partitions or replication_factor of -1 means the broker default (KIP-464).
 *
 *   Request  => [topics: name:STRING num_partitions:INT32 replication_factor:INT16
 *                  [assignments: partition_index:INT32 [broker_ids:INT32]]
 *                  [configs: name:STRING value:NULLABLE_STRING]]
 *               timeout_ms:INT32 validate_only:BOOLEAN (v1+)
 *   Response => throttle_time_ms:INT32 (v2+)
 *               [topics: name:STRING error_code:INT16 error_message:NULLABLE_STRING (v1+)]
 */
export interface KafkaCreatableTopic {
  name: string;
  numPartitions: number;
  replicationFactor: number;
  assignments: { partitionIndex: number; brokerIds: number[] }[];
  configs: { name: string; value: string | null }[];
}

export interface KafkaCreateTopicsRequest {
  topics: KafkaCreatableTopic[];
  timeoutMs: number;
  validateOnly: boolean;
}

export interface KafkaCreateTopicsResponse {
  throttleTimeMs: number;
  topics: { name: string; errorCode: number; errorMessage: string | null }[];
}

export const createTopicsApi: KafkaApiSpec<KafkaCreateTopicsRequest, KafkaCreateTopicsResponse> = {
  apiKey: ApiKey.CreateTopics,
  name: "CreateTopics",
  minVersion: 0,
  maxVersion: 4,
  decodeRequest(r: KafkaReader, version: number): KafkaCreateTopicsRequest {
    const topics = r.array(
      (t): KafkaCreatableTopic => ({
        name: t.string("topic name"),
        numPartitions: t.int32("num_partitions"),
        replicationFactor: t.int16("replication_factor"),
        assignments: t.array((a) => ({ partitionIndex: a.int32("partition_index"), brokerIds: a.array((b) => b.int32("broker id"), "broker_ids") }), "assignments"),
        configs: t.array((c) => ({ name: c.string("config name"), value: c.nullableString("config value") }), "configs"),
      }),
      "topics",
    );
    const timeoutMs = r.int32("timeout_ms");
    const validateOnly = version >= 1 ? r.boolean("validate_only") : false;
    return { topics, timeoutMs, validateOnly };
  },
  encodeResponse(w: KafkaWriter, version: number, res: KafkaCreateTopicsResponse): void {
    if (version >= 2) w.int32(res.throttleTimeMs);
    w.array(res.topics, (w, t) => {
      w.string(t.name).int16(t.errorCode);
      if (version >= 1) w.nullableString(t.errorMessage);
    });
  },
  errorResponse(req: KafkaCreateTopicsRequest, _version: number, errorCode: number, errorMessage: string): KafkaCreateTopicsResponse {
    return { throttleTimeMs: 0, topics: req.topics.map((t) => ({ name: t.name, errorCode, errorMessage })) };
  },
};

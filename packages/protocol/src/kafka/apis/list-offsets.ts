import type { KafkaApiSpec } from "../api.js";
import { ApiKey } from "../api.js";
import type { KafkaReader, KafkaWriter } from "../wire.js";

/**
 * ListOffsets (API key 2), versions 1-5: v0 answers a list of "old style" offsets, which
 * no current client asks for; v6 is the first flexible version.
 *
 *   Request  => replica_id:INT32 isolation_level:INT8 (v2+)
 *               [topics: name:STRING
 *                  [partitions: partition_index:INT32 current_leader_epoch:INT32 (v4+) timestamp:INT64]]
 *   Response => throttle_time_ms:INT32 (v2+)
 *               [topics: name:STRING
 *                  [partitions: partition_index:INT32 error_code:INT16 timestamp:INT64 offset:INT64
 *                     leader_epoch:INT32 (v4+)]]
 *
 * timestamp -1 asks for the latest offset, -2 for the earliest, -3 for the max timestamp.
 */
export interface KafkaListOffsetsRequest {
  replicaId: number;
  isolationLevel: number;
  topics: { name: string; partitions: { partitionIndex: number; currentLeaderEpoch: number; timestamp: number }[] }[];
}

export interface KafkaListOffsetsPartitionResponse {
  partitionIndex: number;
  errorCode: number;
  timestamp: number;
  offset: number;
  leaderEpoch: number;
}

export interface KafkaListOffsetsResponse {
  throttleTimeMs: number;
  topics: { name: string; partitions: KafkaListOffsetsPartitionResponse[] }[];
}

export const listOffsetsApi: KafkaApiSpec<KafkaListOffsetsRequest, KafkaListOffsetsResponse> = {
  apiKey: ApiKey.ListOffsets,
  name: "ListOffsets",
  minVersion: 1,
  maxVersion: 5,
  decodeRequest(r: KafkaReader, version: number): KafkaListOffsetsRequest {
    const replicaId = r.int32("replica_id");
    const isolationLevel = version >= 2 ? r.int8("isolation_level") : 0;
    const topics = r.array(
      (t) => ({
        name: t.string("topic name"),
        partitions: t.array((p) => {
          const partitionIndex = p.int32("partition_index");
          const currentLeaderEpoch = version >= 4 ? p.int32("current_leader_epoch") : -1;
          const timestamp = p.int64("timestamp");
          return { partitionIndex, currentLeaderEpoch, timestamp };
        }, "partitions"),
      }),
      "topics",
    );
    return { replicaId, isolationLevel, topics };
  },
  encodeResponse(w: KafkaWriter, version: number, res: KafkaListOffsetsResponse): void {
    if (version >= 2) w.int32(res.throttleTimeMs);
    w.array(res.topics, (w, t) => {
      w.string(t.name);
      w.array(t.partitions, (w, p) => {
        w.int32(p.partitionIndex).int16(p.errorCode).int64(p.timestamp).int64(p.offset);
        if (version >= 4) w.int32(p.leaderEpoch);
      });
    });
  },
  errorResponse(req: KafkaListOffsetsRequest, _version: number, errorCode: number, _errorMessage: string): KafkaListOffsetsResponse {
    return {
      throttleTimeMs: 0,
      topics: req.topics.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode, timestamp: -1, offset: -1, leaderEpoch: -1 })) })),
    };
  },
};

import type { KafkaApiSpec } from "../api.js";
import { ApiKey } from "../api.js";
import type { KafkaReader, KafkaWriter } from "../wire.js";

/**
 * OffsetCommit (API key 8), versions 0-7. v8 is the first flexible version.
 *
 *   Request  => group_id:STRING generation_id:INT32 (v1+) member_id:STRING (v1+)
 *               group_instance_id:NULLABLE_STRING (v7+) retention_time_ms:INT64 (v2-v4)
 *               [topics: name:STRING
 *                  [partitions: partition_index:INT32 committed_offset:INT64
 *                     committed_leader_epoch:INT32 (v6+) commit_timestamp:INT64 (v1 only)
 *                     committed_metadata:NULLABLE_STRING]]
 *   Response => throttle_time_ms:INT32 (v3+)
 *               [topics: name:STRING [partitions: partition_index:INT32 error_code:INT16]]
 *
 * A v0 request has no generation: it reads as generation -1 with member "", the
 * "standalone commit" of a client that uses the group only to store offsets. The v1
 * per-partition commit_timestamp and the v2-v4 retention_time_ms are read (so the fields
 * after them line up) but the coordinator applies its own offsets.retention.minutes, as
 * Kafka has done since KIP-211 for a retention of -1. (Kafka kept v0 commits in ZooKeeper;
 * here every version goes to the group coordinator and __consumer_offsets.)
 */
export interface KafkaOffsetCommitPartition {
  partitionIndex: number;
  committedOffset: number;
  /** -1 = unknown (and below v6). */
  committedLeaderEpoch: number;
  /** v1 only; -1 otherwise. */
  commitTimestamp: number;
  committedMetadata: string | null;
}

export interface KafkaOffsetCommitRequest {
  groupId: string;
  /** -1 below v1. */
  generationId: number;
  /** "" below v1. */
  memberId: string;
  groupInstanceId: string | null;
  /** v2-v4; -1 otherwise (= the broker's retention). */
  retentionTimeMs: number;
  topics: { name: string; partitions: KafkaOffsetCommitPartition[] }[];
}

export interface KafkaOffsetCommitResponse {
  throttleTimeMs: number;
  topics: { name: string; partitions: { partitionIndex: number; errorCode: number }[] }[];
}

export const offsetCommitApi: KafkaApiSpec<KafkaOffsetCommitRequest, KafkaOffsetCommitResponse> = {
  apiKey: ApiKey.OffsetCommit,
  name: "OffsetCommit",
  minVersion: 0,
  maxVersion: 7,
  decodeRequest(r: KafkaReader, version: number): KafkaOffsetCommitRequest {
    const groupId = r.string("group_id");
    const generationId = version >= 1 ? r.int32("generation_id") : -1;
    const memberId = version >= 1 ? r.string("member_id") : "";
    const groupInstanceId = version >= 7 ? r.nullableString("group_instance_id") : null;
    const retentionTimeMs = version >= 2 && version <= 4 ? r.int64("retention_time_ms") : -1;
    const topics = r.array(
      (t) => ({
        name: t.string("topic name"),
        partitions: t.array((p): KafkaOffsetCommitPartition => {
          const partitionIndex = p.int32("partition_index");
          const committedOffset = p.int64("committed_offset");
          const committedLeaderEpoch = version >= 6 ? p.int32("committed_leader_epoch") : -1;
          const commitTimestamp = version === 1 ? p.int64("commit_timestamp") : -1;
          const committedMetadata = p.nullableString("committed_metadata");
          return { partitionIndex, committedOffset, committedLeaderEpoch, commitTimestamp, committedMetadata };
        }, "partitions"),
      }),
      "topics",
    );
    return { groupId, generationId, memberId, groupInstanceId, retentionTimeMs, topics };
  },
  encodeResponse(w: KafkaWriter, version: number, res: KafkaOffsetCommitResponse): void {
    if (version >= 3) w.int32(res.throttleTimeMs);
    w.array(res.topics, (w, t) => {
      w.string(t.name);
      w.array(t.partitions, (w, p) => w.int32(p.partitionIndex).int16(p.errorCode));
    });
  },
  errorResponse(req: KafkaOffsetCommitRequest, _version: number, errorCode: number, _errorMessage: string): KafkaOffsetCommitResponse {
    return { throttleTimeMs: 0, topics: req.topics.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode })) })) };
  },
};

import { FlotillaError } from "@flotilla/common";
import type { KafkaApiSpec } from "../api.js";
import { ApiKey } from "../api.js";
import type { KafkaReader, KafkaWriter } from "../wire.js";

/**
 * OffsetFetch (API key 9), versions 0-5: v2 allows topics = null (every partition the
 * group has committed) and adds the top-level error_code, v3 throttle_time_ms, v5
 * committed_leader_epoch. v6 is the first flexible version.
 *
 *   Request  => group_id:STRING [topics: name:STRING [partition_indexes:INT32]]  (null array = all, v2+)
 *   Response => throttle_time_ms:INT32 (v3+)
 *               [topics: name:STRING
 *                  [partitions: partition_index:INT32 committed_offset:INT64
 *                     committed_leader_epoch:INT32 (v5+) metadata:NULLABLE_STRING error_code:INT16]]
 *               error_code:INT16 (v2+)
 *
 * committed_offset -1 means nothing is committed for the partition. Below v2 a group-level
 * error can only be reported per partition. (Kafka read v0 offsets from ZooKeeper; here
 * every version reads the group coordinator's offsets.)
 */
export interface KafkaOffsetFetchRequest {
  groupId: string;
  /** null = every committed partition (v2+); [] = none. */
  topics: { name: string; partitionIndexes: number[] }[] | null;
}

export interface KafkaOffsetFetchPartition {
  partitionIndex: number;
  committedOffset: number;
  committedLeaderEpoch: number;
  metadata: string | null;
  errorCode: number;
}

export interface KafkaOffsetFetchResponse {
  throttleTimeMs: number;
  topics: { name: string; partitions: KafkaOffsetFetchPartition[] }[];
  /** Written for v2+ only. */
  errorCode: number;
}

export const offsetFetchApi: KafkaApiSpec<KafkaOffsetFetchRequest, KafkaOffsetFetchResponse> = {
  apiKey: ApiKey.OffsetFetch,
  name: "OffsetFetch",
  minVersion: 0,
  maxVersion: 5,
  decodeRequest(r: KafkaReader, version: number): KafkaOffsetFetchRequest {
    const groupId = r.string("group_id");
    // KafkaReader.array reads a null array as []; peek at the count to tell the two apart.
    const countAt = r.offset;
    if (r.int32("topics count") < 0) {
      if (version < 2) throw new FlotillaError("INVALID_REQUEST", `OffsetFetch v${version} topics is null; a null list (all partitions) needs v2+`);
      return { groupId, topics: null };
    }
    r.offset = countAt;
    const topics = r.array((t) => ({ name: t.string("topic name"), partitionIndexes: t.array((p) => p.int32("partition_index"), "partition_indexes") }), "topics");
    return { groupId, topics };
  },
  encodeResponse(w: KafkaWriter, version: number, res: KafkaOffsetFetchResponse): void {
    if (version >= 3) w.int32(res.throttleTimeMs);
    w.array(res.topics, (w, t) => {
      w.string(t.name);
      w.array(t.partitions, (w, p) => {
        w.int32(p.partitionIndex).int64(p.committedOffset);
        if (version >= 5) w.int32(p.committedLeaderEpoch);
        w.nullableString(p.metadata).int16(p.errorCode);
      });
    });
    if (version >= 2) w.int16(res.errorCode);
  },
  errorResponse(req: KafkaOffsetFetchRequest, _version: number, errorCode: number, _errorMessage: string): KafkaOffsetFetchResponse {
    return {
      throttleTimeMs: 0,
      errorCode,
      topics: (req.topics ?? []).map((t) => ({
        name: t.name,
        partitions: t.partitionIndexes.map((partitionIndex) => ({ partitionIndex, committedOffset: -1, committedLeaderEpoch: -1, metadata: null, errorCode })),
      })),
    };
  },
};

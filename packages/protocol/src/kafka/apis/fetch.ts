import type { KafkaApiSpec } from "../api.js";
import { ApiKey } from "../api.js";
import type { KafkaReader, KafkaWriter } from "../wire.js";

/**
 * Fetch (API key 1), versions 4-11: v4 is the first whose reader must handle RecordBatch
 * v2 (all we store) and brings isolation_level; v12 is the first flexible version.
 *
 *   Request  => replica_id:INT32 max_wait_ms:INT32 min_bytes:INT32 max_bytes:INT32
 *               isolation_level:INT8 session_id:INT32 (v7+) session_epoch:INT32 (v7+)
 *               [topics: topic:STRING
 *                  [partitions: partition:INT32 current_leader_epoch:INT32 (v9+)
 *                     fetch_offset:INT64 log_start_offset:INT64 (v5+) partition_max_bytes:INT32]]
 *               [forgotten_topics_data: topic:STRING [partitions:INT32]] (v7+)
 *               rack_id:STRING (v11+)
 *   Response => throttle_time_ms:INT32 error_code:INT16 (v7+) session_id:INT32 (v7+)
 *               [responses: topic:STRING
 *                  [partitions: partition_index:INT32 error_code:INT16 high_watermark:INT64
 *                     last_stable_offset:INT64 log_start_offset:INT64 (v5+)
 *                     [aborted_transactions: producer_id:INT64 first_offset:INT64]
 *                     preferred_read_replica:INT32 (v11+) records:RECORDS]]
 *
 * Records in a response are written with `chunkedBytes`: the stored batch bytes go to the
 * socket without a copy.
 */
export interface KafkaFetchPartition {
  partition: number;
  /** -1 when the client does not know it (and always before v9). */
  currentLeaderEpoch: number;
  fetchOffset: number;
  logStartOffset: number;
  partitionMaxBytes: number;
}

export interface KafkaFetchRequest {
  replicaId: number;
  maxWaitMs: number;
  minBytes: number;
  maxBytes: number;
  /** 0 READ_UNCOMMITTED, 1 READ_COMMITTED. */
  isolationLevel: number;
  /** KIP-227 fetch session; 0 with epoch -1 (the defaults before v7) is a full, sessionless fetch. */
  sessionId: number;
  sessionEpoch: number;
  topics: { topic: string; partitions: KafkaFetchPartition[] }[];
  forgottenTopics: { topic: string; partitions: number[] }[];
  rackId: string;
}

export interface KafkaFetchPartitionResponse {
  partitionIndex: number;
  errorCode: number;
  highWatermark: number;
  lastStableOffset: number;
  logStartOffset: number;
  /** null writes a null array. */
  abortedTransactions: { producerId: number; firstOffset: number }[] | null;
  preferredReadReplica: number;
  records: Buffer | null;
}

export interface KafkaFetchResponse {
  throttleTimeMs: number;
  /** Top-level error (v7+): fetch-session errors. */
  errorCode: number;
  sessionId: number;
  topics: { topic: string; partitions: KafkaFetchPartitionResponse[] }[];
}

/** Kafka's fetch-session error codes (KIP-227), answered at the top level of a v7+ response. */
/** Empty RECORDS (length 0, not null): what Kafka sends with a partition error; some clients refuse a null. */
const EMPTY_RECORDS: Buffer = Buffer.alloc(0);

export const KAFKA_FETCH_SESSION_ID_NOT_FOUND = 70;
export const KAFKA_INVALID_FETCH_SESSION_EPOCH = 71;

export const fetchApi: KafkaApiSpec<KafkaFetchRequest, KafkaFetchResponse> = {
  apiKey: ApiKey.Fetch,
  name: "Fetch",
  minVersion: 4,
  maxVersion: 11,
  decodeRequest(r: KafkaReader, version: number): KafkaFetchRequest {
    const replicaId = r.int32("replica_id");
    const maxWaitMs = r.int32("max_wait_ms");
    const minBytes = r.int32("min_bytes");
    const maxBytes = r.int32("max_bytes");
    const isolationLevel = r.int8("isolation_level");
    const sessionId = version >= 7 ? r.int32("session_id") : 0;
    const sessionEpoch = version >= 7 ? r.int32("session_epoch") : -1;
    const topics = r.array(
      (t) => ({
        topic: t.string("topic"),
        partitions: t.array((p): KafkaFetchPartition => {
          const partition = p.int32("partition");
          const currentLeaderEpoch = version >= 9 ? p.int32("current_leader_epoch") : -1;
          const fetchOffset = p.int64("fetch_offset");
          const logStartOffset = version >= 5 ? p.int64("log_start_offset") : -1;
          const partitionMaxBytes = p.int32("partition_max_bytes");
          return { partition, currentLeaderEpoch, fetchOffset, logStartOffset, partitionMaxBytes };
        }, "partitions"),
      }),
      "topics",
    );
    const forgottenTopics =
      version >= 7 ? r.array((t) => ({ topic: t.string("forgotten topic"), partitions: t.array((p) => p.int32("forgotten partition"), "forgotten partitions") }), "forgotten_topics_data") : [];
    const rackId = version >= 11 ? r.string("rack_id") : "";
    return { replicaId, maxWaitMs, minBytes, maxBytes, isolationLevel, sessionId, sessionEpoch, topics, forgottenTopics, rackId };
  },
  encodeResponse(w: KafkaWriter, version: number, res: KafkaFetchResponse): void {
    w.int32(res.throttleTimeMs);
    if (version >= 7) w.int16(res.errorCode).int32(res.sessionId);
    w.array(res.topics, (w, t) => {
      w.string(t.topic);
      w.array(t.partitions, (w, p) => {
        w.int32(p.partitionIndex).int16(p.errorCode).int64(p.highWatermark).int64(p.lastStableOffset);
        if (version >= 5) w.int64(p.logStartOffset);
        w.nullableArray(p.abortedTransactions, (w, a) => w.int64(a.producerId).int64(a.firstOffset));
        if (version >= 11) w.int32(p.preferredReadReplica);
        w.chunkedBytes(p.records);
      });
    });
  },
  errorResponse(req: KafkaFetchRequest, _version: number, errorCode: number, _errorMessage: string): KafkaFetchResponse {
    return {
      throttleTimeMs: 0,
      errorCode,
      sessionId: 0,
      topics: req.topics.map((t) => ({
        topic: t.topic,
        partitions: t.partitions.map((p) => ({
          partitionIndex: p.partition,
          errorCode,
          highWatermark: -1,
          lastStableOffset: -1,
          logStartOffset: -1,
          abortedTransactions: null,
          preferredReadReplica: -1,
          records: EMPTY_RECORDS,
        })),
      })),
    };
  },
};

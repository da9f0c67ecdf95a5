import type { KafkaApiSpec } from "../api.js";
import { ApiKey } from "../api.js";
import type { KafkaReader, KafkaWriter } from "../wire.js";

/**
 * Produce (API key 0), versions 0-8; v9 is the first flexible version. Only v3+ carries
 * RecordBatch v2 (magic 2), the one format Flotilla stores, so the handler answers v0-v2
 * with UNSUPPORTED_FOR_MESSAGE_FORMAT. They are advertised all the same because librdkafka
 * (up to 2.11) decides whether it may compress with gzip, snappy or lz4 by asking whether
 * the broker supports Produce v0: with a minimum of 3 it silently sends those codecs
 * uncompressed. It still sends v3+ (the highest common version).
 *
 *   Request  => transactional_id:NULLABLE_STRING (v3+) acks:INT16 timeout_ms:INT32
 *               [topic_data: name:STRING [partition_data: index:INT32 records:RECORDS]]
 *   Response => [responses: name:STRING
 *                  [partition_responses: index:INT32 error_code:INT16 base_offset:INT64
 *                     log_append_time_ms:INT64 (v2+) log_start_offset:INT64 (v5+)
 *                     [record_errors: batch_index:INT32 batch_index_error_message:NULLABLE_STRING] (v8+)
 *                     error_message:NULLABLE_STRING (v8+)]]
 *               throttle_time_ms:INT32 (v1+)
 *
 * RECORDS is NULLABLE_BYTES holding the client's record batches; the decoder keeps a view
 * of the request buffer (no copy) because the broker appends those bytes as they are.
 */
export interface KafkaProduceRequest {
  transactionalId: string | null;
  acks: number;
  timeoutMs: number;
  topics: { name: string; partitions: { index: number; records: Buffer | null }[] }[];
}

export interface KafkaProducePartitionResponse {
  index: number;
  errorCode: number;
  baseOffset: number;
  /** -1 unless the topic uses LogAppendTime. */
  logAppendTimeMs: number;
  logStartOffset: number;
  recordErrors: { batchIndex: number; batchIndexErrorMessage: string | null }[];
  errorMessage: string | null;
}

export interface KafkaProduceResponse {
  topics: { name: string; partitions: KafkaProducePartitionResponse[] }[];
  throttleTimeMs: number;
}

export const produceApi: KafkaApiSpec<KafkaProduceRequest, KafkaProduceResponse> = {
  apiKey: ApiKey.Produce,
  name: "Produce",
  minVersion: 0,
  maxVersion: 8,
  decodeRequest(r: KafkaReader, version: number): KafkaProduceRequest {
    const transactionalId = version >= 3 ? r.nullableString("transactional_id") : null;
    const acks = r.int16("acks");
    const timeoutMs = r.int32("timeout_ms");
    const topics = r.array(
      (t) => ({
        name: t.string("topic name"),
        partitions: t.array((p) => ({ index: p.int32("partition index"), records: p.nullableBytes("records") }), "partition_data"),
      }),
      "topic_data",
    );
    return { transactionalId, acks, timeoutMs, topics };
  },
  encodeResponse(w: KafkaWriter, version: number, res: KafkaProduceResponse): void {
    w.array(res.topics, (w, t) => {
      w.string(t.name);
      w.array(t.partitions, (w, p) => {
        w.int32(p.index).int16(p.errorCode).int64(p.baseOffset);
        if (version >= 2) w.int64(p.logAppendTimeMs);
        if (version >= 5) w.int64(p.logStartOffset);
        if (version >= 8) {
          w.array(p.recordErrors, (w, e) => w.int32(e.batchIndex).nullableString(e.batchIndexErrorMessage));
          w.nullableString(p.errorMessage);
        }
      });
    });
    if (version >= 1) w.int32(res.throttleTimeMs);
  },
  errorResponse(req: KafkaProduceRequest, _version: number, errorCode: number, errorMessage: string): KafkaProduceResponse {
    return {
      topics: req.topics.map((t) => ({
        name: t.name,
        partitions: t.partitions.map((p) => ({ index: p.index, errorCode, baseOffset: -1, logAppendTimeMs: -1, logStartOffset: -1, recordErrors: [], errorMessage })),
      })),
      throttleTimeMs: 0,
    };
  },
};

import type { KafkaApiSpec } from "../api.js";
import { ApiKey } from "../api.js";
import type { KafkaReader, KafkaWriter } from "../wire.js";

/**
 * InitProducerId (API key 22), versions 0-1; v2 is the first flexible version. Flotilla
 * serves idempotent producers only: transactional_id must be null.
 *
 *   Request  => transactional_id:NULLABLE_STRING transaction_timeout_ms:INT32
 *   Response => throttle_time_ms:INT32 error_code:INT16 producer_id:INT64 producer_epoch:INT16
 */
export interface KafkaInitProducerIdRequest {
  transactionalId: string | null;
  transactionTimeoutMs: number;
}

export interface KafkaInitProducerIdResponse {
  throttleTimeMs: number;
  errorCode: number;
  producerId: number;
  producerEpoch: number;
}

export const initProducerIdApi: KafkaApiSpec<KafkaInitProducerIdRequest, KafkaInitProducerIdResponse> = {
  apiKey: ApiKey.InitProducerId,
  name: "InitProducerId",
  minVersion: 0,
  maxVersion: 1,
  decodeRequest(r: KafkaReader, _version: number): KafkaInitProducerIdRequest {
    const transactionalId = r.nullableString("transactional_id");
    const transactionTimeoutMs = r.int32("transaction_timeout_ms");
    return { transactionalId, transactionTimeoutMs };
  },
  encodeResponse(w: KafkaWriter, _version: number, res: KafkaInitProducerIdResponse): void {
    w.int32(res.throttleTimeMs).int16(res.errorCode).int64(res.producerId).int16(res.producerEpoch);
  },
  errorResponse(_req: KafkaInitProducerIdRequest, _version: number, errorCode: number, _errorMessage: string): KafkaInitProducerIdResponse {
    return { throttleTimeMs: 0, errorCode, producerId: -1, producerEpoch: -1 };
  },
};

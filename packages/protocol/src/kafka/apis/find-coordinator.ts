import type { KafkaApiSpec } from "../api.js";
import { ApiKey } from "../api.js";
import type { KafkaReader, KafkaWriter } from "../wire.js";

/**
 * FindCoordinator (API key 10), versions 0-2: v1 adds key_type (0 = group, 1 =
 * transaction) and the error message; v2 only changes throttling semantics; v3 is the
 * first flexible version and v4 batches keys (KIP-699), which no client needs from us.
 *
 *   Request  => key:STRING key_type:INT8 (v1+)
 *   Response => throttle_time_ms:INT32 (v1+) error_code:INT16
 *               error_message:NULLABLE_STRING (v1+) node_id:INT32 host:STRING port:INT32
 */
export interface KafkaFindCoordinatorRequest {
  key: string;
  /** 0 = group (the only kind a v0 request can ask for), 1 = transaction. */
  keyType: number;
}

export interface KafkaFindCoordinatorResponse {
  throttleTimeMs: number;
  errorCode: number;
  errorMessage: string | null;
  /** -1 with an error. */
  nodeId: number;
  host: string;
  port: number;
}

export const findCoordinatorApi: KafkaApiSpec<KafkaFindCoordinatorRequest, KafkaFindCoordinatorResponse> = {
  apiKey: ApiKey.FindCoordinator,
  name: "FindCoordinator",
  minVersion: 0,
  maxVersion: 2,
  decodeRequest(r: KafkaReader, version: number): KafkaFindCoordinatorRequest {
    const key = r.string("key");
    const keyType = version >= 1 ? r.int8("key_type") : 0;
    return { key, keyType };
  },
  encodeResponse(w: KafkaWriter, version: number, res: KafkaFindCoordinatorResponse): void {
    if (version >= 1) w.int32(res.throttleTimeMs);
    w.int16(res.errorCode);
    if (version >= 1) w.nullableString(res.errorMessage);
    w.int32(res.nodeId).string(res.host).int32(res.port);
  },
  errorResponse(_req: KafkaFindCoordinatorRequest, _version: number, errorCode: number, errorMessage: string): KafkaFindCoordinatorResponse {
    return { throttleTimeMs: 0, errorCode, errorMessage, nodeId: -1, host: "", port: -1 };
  },
};

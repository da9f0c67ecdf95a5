import type { KafkaApiSpec } from "../api.js";
import { ApiKey } from "../api.js";
import type { KafkaReader, KafkaWriter } from "../wire.js";

/**
 * Heartbeat (API key 12), versions 0-3: v1 adds throttle_time_ms, v3 group_instance_id;
 * v4 is the first flexible version.
 *
 *   Request  => group_id:STRING generation_id:INT32 member_id:STRING
 *               group_instance_id:NULLABLE_STRING (v3+)
 *   Response => throttle_time_ms:INT32 (v1+) error_code:INT16
 */
export interface KafkaHeartbeatRequest {
  groupId: string;
  generationId: number;
  memberId: string;
  groupInstanceId: string | null;
}

export interface KafkaHeartbeatResponse {
  throttleTimeMs: number;
  errorCode: number;
}

export const heartbeatApi: KafkaApiSpec<KafkaHeartbeatRequest, KafkaHeartbeatResponse> = {
  apiKey: ApiKey.Heartbeat,
  name: "Heartbeat",
  minVersion: 0,
  maxVersion: 3,
  decodeRequest(r: KafkaReader, version: number): KafkaHeartbeatRequest {
    const groupId = r.string("group_id");
    const generationId = r.int32("generation_id");
    const memberId = r.string("member_id");
    const groupInstanceId = version >= 3 ? r.nullableString("group_instance_id") : null;
    return { groupId, generationId, memberId, groupInstanceId };
  },
  encodeResponse(w: KafkaWriter, version: number, res: KafkaHeartbeatResponse): void {
    if (version >= 1) w.int32(res.throttleTimeMs);
    w.int16(res.errorCode);
  },
  errorResponse(_req: KafkaHeartbeatRequest, _version: number, errorCode: number, _errorMessage: string): KafkaHeartbeatResponse {
    return { throttleTimeMs: 0, errorCode };
  },
};

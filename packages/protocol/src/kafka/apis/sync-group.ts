import type { KafkaApiSpec } from "../api.js";
import { ApiKey } from "../api.js";
import type { KafkaReader, KafkaWriter } from "../wire.js";

/**
 * SyncGroup (API key 14), versions 0-3: v1 adds throttle_time_ms, v3 group_instance_id;
 * v4 is the first flexible version (v5's protocol_type/protocol_name are flexible only).
 *
 *   Request  => group_id:STRING generation_id:INT32 member_id:STRING
 *               group_instance_id:NULLABLE_STRING (v3+)
 *               [assignments: member_id:STRING assignment:BYTES]
 *   Response => throttle_time_ms:INT32 (v1+) error_code:INT16 assignment:BYTES
 *
 * Only the leader sends assignments; they are opaque bytes to the broker.
 */
export interface KafkaSyncGroupRequest {
  groupId: string;
  generationId: number;
  memberId: string;
  groupInstanceId: string | null;
  assignments: { memberId: string; assignment: Buffer }[];
}

export interface KafkaSyncGroupResponse {
  throttleTimeMs: number;
  errorCode: number;
  assignment: Buffer;
}

export const syncGroupApi: KafkaApiSpec<KafkaSyncGroupRequest, KafkaSyncGroupResponse> = {
  apiKey: ApiKey.SyncGroup,
  name: "SyncGroup",
  minVersion: 0,
  maxVersion: 3,
  decodeRequest(r: KafkaReader, version: number): KafkaSyncGroupRequest {
    const groupId = r.string("group_id");
    const generationId = r.int32("generation_id");
    const memberId = r.string("member_id");
    const groupInstanceId = version >= 3 ? r.nullableString("group_instance_id") : null;
    const assignments = r.array((a) => ({ memberId: a.string("assignment member_id"), assignment: a.bytes("assignment") }), "assignments");
    return { groupId, generationId, memberId, groupInstanceId, assignments };
  },
  encodeResponse(w: KafkaWriter, version: number, res: KafkaSyncGroupResponse): void {
    if (version >= 1) w.int32(res.throttleTimeMs);
    w.int16(res.errorCode).bytes(res.assignment);
  },
  errorResponse(_req: KafkaSyncGroupRequest, _version: number, errorCode: number, _errorMessage: string): KafkaSyncGroupResponse {
    return { throttleTimeMs: 0, errorCode, assignment: Buffer.alloc(0) };
  },
};

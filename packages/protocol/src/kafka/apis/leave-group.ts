import type { KafkaApiSpec } from "../api.js";
import { ApiKey } from "../api.js";
import type { KafkaReader, KafkaWriter } from "../wire.js";

/**
 * LeaveGroup (API key 13), versions 0-3: v1 adds throttle_time_ms; v3 replaces the single
 * member_id by a batch of members, each with its group_instance_id, and answers per member
 * (KIP-345). v4 is the first flexible version.
 *
 *   Request v0-v2 => group_id:STRING member_id:STRING
 *   Request v3    => group_id:STRING [members: member_id:STRING group_instance_id:NULLABLE_STRING]
 *   Response      => throttle_time_ms:INT32 (v1+) error_code:INT16
 *                    [members: member_id:STRING group_instance_id:NULLABLE_STRING error_code:INT16] (v3+)
 *
 * Decoding normalizes both shapes to `members` (one member below v3).
 */
export interface KafkaLeaveGroupMember {
  memberId: string;
  groupInstanceId: string | null;
}

export interface KafkaLeaveGroupRequest {
  groupId: string;
  members: KafkaLeaveGroupMember[];
}

export interface KafkaLeaveGroupMemberResponse {
  memberId: string;
  groupInstanceId: string | null;
  errorCode: number;
}

export interface KafkaLeaveGroupResponse {
  throttleTimeMs: number;
  errorCode: number;
  /** Written for v3+ only. */
  members: KafkaLeaveGroupMemberResponse[];
}

export const leaveGroupApi: KafkaApiSpec<KafkaLeaveGroupRequest, KafkaLeaveGroupResponse> = {
  apiKey: ApiKey.LeaveGroup,
  name: "LeaveGroup",
  minVersion: 0,
  maxVersion: 3,
  decodeRequest(r: KafkaReader, version: number): KafkaLeaveGroupRequest {
    const groupId = r.string("group_id");
    if (version < 3) return { groupId, members: [{ memberId: r.string("member_id"), groupInstanceId: null }] };
    const members = r.array((m) => ({ memberId: m.string("member_id"), groupInstanceId: m.nullableString("group_instance_id") }), "members");
    return { groupId, members };
  },
  encodeResponse(w: KafkaWriter, version: number, res: KafkaLeaveGroupResponse): void {
    if (version >= 1) w.int32(res.throttleTimeMs);
    w.int16(res.errorCode);
    if (version >= 3) w.array(res.members, (w, m) => w.string(m.memberId).nullableString(m.groupInstanceId).int16(m.errorCode));
  },
  errorResponse(req: KafkaLeaveGroupRequest, _version: number, errorCode: number, _errorMessage: string): KafkaLeaveGroupResponse {
    return { throttleTimeMs: 0, errorCode, members: req.members.map((m) => ({ ...m, errorCode })) };
  },
};

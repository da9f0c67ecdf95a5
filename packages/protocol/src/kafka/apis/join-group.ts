import type { KafkaApiSpec } from "../api.js";
import { ApiKey } from "../api.js";
import type { KafkaReader, KafkaWriter } from "../wire.js";

/**
 * JoinGroup (API key 11), versions 0-5: v1 adds rebalance_timeout_ms (v0 rebalances within
 * the session timeout), v2 throttle_time_ms, v4 lets the coordinator answer a new member
 * MEMBER_ID_REQUIRED (KIP-394; older versions must be admitted in one round trip), v5
 * group_instance_id (static membership, KIP-345). v6 is the first flexible version.
 *
 *   Request  => group_id:STRING session_timeout_ms:INT32 rebalance_timeout_ms:INT32 (v1+)
 *               member_id:STRING group_instance_id:NULLABLE_STRING (v5+) protocol_type:STRING
 *               [protocols: name:STRING metadata:BYTES]
 *   Response => throttle_time_ms:INT32 (v2+) error_code:INT16 generation_id:INT32
 *               protocol_name:STRING leader:STRING member_id:STRING
 *               [members: member_id:STRING group_instance_id:NULLABLE_STRING (v5+) metadata:BYTES]
 *
 * Protocol metadata is opaque here (for "consumer" groups it is the client's subscription,
 * see packages/client); it is passed to the coordinator as read. `members` is non-empty
 * only in the leader's response.
 */
export interface KafkaJoinGroupProtocol {
  name: string;
  /** A view into the request buffer. */
  metadata: Buffer;
}

export interface KafkaJoinGroupRequest {
  groupId: string;
  sessionTimeoutMs: number;
  /** v0: the session timeout, as Kafka does for that version. */
  rebalanceTimeoutMs: number;
  /** "" for a member joining for the first time. */
  memberId: string;
  /** null for a dynamic member (and below v5). */
  groupInstanceId: string | null;
  protocolType: string;
  protocols: KafkaJoinGroupProtocol[];
}

export interface KafkaJoinGroupMember {
  memberId: string;
  groupInstanceId: string | null;
  metadata: Buffer;
}

export interface KafkaJoinGroupResponse {
  throttleTimeMs: number;
  errorCode: number;
  generationId: number;
  protocolName: string;
  leader: string;
  memberId: string;
  members: KafkaJoinGroupMember[];
}

export const joinGroupApi: KafkaApiSpec<KafkaJoinGroupRequest, KafkaJoinGroupResponse> = {
  apiKey: ApiKey.JoinGroup,
  name: "JoinGroup",
  minVersion: 0,
  maxVersion: 5,
  decodeRequest(r: KafkaReader, version: number): KafkaJoinGroupRequest {
    const groupId = r.string("group_id");
    const sessionTimeoutMs = r.int32("session_timeout_ms");
    const rebalanceTimeoutMs = version >= 1 ? r.int32("rebalance_timeout_ms") : sessionTimeoutMs;
    const memberId = r.string("member_id");
    const groupInstanceId = version >= 5 ? r.nullableString("group_instance_id") : null;
    const protocolType = r.string("protocol_type");
    const protocols = r.array((p) => ({ name: p.string("protocol name"), metadata: p.bytes("protocol metadata") }), "protocols");
    return { groupId, sessionTimeoutMs, rebalanceTimeoutMs, memberId, groupInstanceId, protocolType, protocols };
  },
  encodeResponse(w: KafkaWriter, version: number, res: KafkaJoinGroupResponse): void {
    if (version >= 2) w.int32(res.throttleTimeMs);
    w.int16(res.errorCode).int32(res.generationId).string(res.protocolName).string(res.leader).string(res.memberId);
    w.array(res.members, (w, m) => {
      w.string(m.memberId);
      if (version >= 5) w.nullableString(m.groupInstanceId);
      w.bytes(m.metadata);
    });
  },
  errorResponse(req: KafkaJoinGroupRequest, _version: number, errorCode: number, _errorMessage: string): KafkaJoinGroupResponse {
    return { throttleTimeMs: 0, errorCode, generationId: -1, protocolName: "", leader: "", memberId: req.memberId, members: [] };
  },
};

import type { KafkaApiSpec } from "../api.js";
import { ApiKey } from "../api.js";
import { KAFKA_AUTHORIZED_OPERATIONS_OMITTED } from "./metadata.js";
import type { KafkaReader, KafkaWriter } from "../wire.js";

/**
 * DescribeGroups (API key 15), versions 0-4: v1 adds throttle_time_ms, v3
 * include_authorized_operations / authorized_operations (KIP-430), v4 the members'
 * group_instance_id. v5 is the first flexible version.
 *
 *   Request  => [groups:STRING] include_authorized_operations:BOOLEAN (v3+)
 *   Response => throttle_time_ms:INT32 (v1+)
 *               [groups: error_code:INT16 group_id:STRING group_state:STRING protocol_type:STRING
 *                  protocol_data:STRING
 *                  [members: member_id:STRING group_instance_id:NULLABLE_STRING (v4+)
 *                     client_id:STRING client_host:STRING member_metadata:BYTES member_assignment:BYTES]
 *                  authorized_operations:INT32 (v3+)]
 *
 * authorized_operations is a bit set of ACL operations (bit n = operation code n);
 * INT32 min (-2^31, KAFKA_AUTHORIZED_OPERATIONS_OMITTED) means "not requested".
 */
export interface KafkaDescribeGroupsRequest {
  groups: string[];
  includeAuthorizedOperations: boolean;
}

export interface KafkaDescribedGroupMember {
  memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  memberMetadata: Buffer;
  memberAssignment: Buffer;
}

export interface KafkaDescribedGroup {
  errorCode: number;
  groupId: string;
  groupState: string;
  protocolType: string;
  protocolData: string;
  members: KafkaDescribedGroupMember[];
  authorizedOperations: number;
}

export interface KafkaDescribeGroupsResponse {
  throttleTimeMs: number;
  groups: KafkaDescribedGroup[];
}

export const describeGroupsApi: KafkaApiSpec<KafkaDescribeGroupsRequest, KafkaDescribeGroupsResponse> = {
  apiKey: ApiKey.DescribeGroups,
  name: "DescribeGroups",
  minVersion: 0,
  maxVersion: 4,
  decodeRequest(r: KafkaReader, version: number): KafkaDescribeGroupsRequest {
    const groups = r.array((g) => g.string("group id"), "groups");
    const includeAuthorizedOperations = version >= 3 ? r.boolean("include_authorized_operations") : false;
    return { groups, includeAuthorizedOperations };
  },
  encodeResponse(w: KafkaWriter, version: number, res: KafkaDescribeGroupsResponse): void {
    if (version >= 1) w.int32(res.throttleTimeMs);
    w.array(res.groups, (w, g) => {
      w.int16(g.errorCode).string(g.groupId).string(g.groupState).string(g.protocolType).string(g.protocolData);
      w.array(g.members, (w, m) => {
        w.string(m.memberId);
        if (version >= 4) w.nullableString(m.groupInstanceId);
        w.string(m.clientId).string(m.clientHost).bytes(m.memberMetadata).bytes(m.memberAssignment);
      });
      if (version >= 3) w.int32(g.authorizedOperations);
    });
  },
  errorResponse(req: KafkaDescribeGroupsRequest, _version: number, errorCode: number, _errorMessage: string): KafkaDescribeGroupsResponse {
    return {
      throttleTimeMs: 0,
      groups: req.groups.map((groupId) => ({ errorCode, groupId, groupState: "", protocolType: "", protocolData: "", members: [], authorizedOperations: KAFKA_AUTHORIZED_OPERATIONS_OMITTED })),
    };
  },
};

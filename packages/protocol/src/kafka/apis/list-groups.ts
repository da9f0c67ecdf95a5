import type { KafkaApiSpec } from "../api.js";
import { ApiKey } from "../api.js";
import type { KafkaReader, KafkaWriter } from "../wire.js";

/**
 * ListGroups (API key 16), versions 0-2: v1 adds throttle_time_ms, v2 changes only
 * throttling semantics; v3 is the first flexible version and v4 adds states_filter.
 *
 *   Request  => (empty)
 *   Response => throttle_time_ms:INT32 (v1+) error_code:INT16
 *               [groups: group_id:STRING protocol_type:STRING]
 *
 * Like Kafka, a broker lists the groups it coordinates; clients ask every broker.
 */
export type KafkaListGroupsRequest = Record<string, never>;

export interface KafkaListGroupsResponse {
  throttleTimeMs: number;
  errorCode: number;
  groups: { groupId: string; protocolType: string }[];
}

export const listGroupsApi: KafkaApiSpec<KafkaListGroupsRequest, KafkaListGroupsResponse> = {
  apiKey: ApiKey.ListGroups,
  name: "ListGroups",
  minVersion: 0,
  maxVersion: 2,
  decodeRequest(_r: KafkaReader, _version: number): KafkaListGroupsRequest {
    return {};
  },
  encodeResponse(w: KafkaWriter, version: number, res: KafkaListGroupsResponse): void {
    if (version >= 1) w.int32(res.throttleTimeMs);
    w.int16(res.errorCode);
    w.array(res.groups, (w, g) => w.string(g.groupId).string(g.protocolType));
  },
  errorResponse(_req: KafkaListGroupsRequest, _version: number, errorCode: number, _errorMessage: string): KafkaListGroupsResponse {
    return { throttleTimeMs: 0, errorCode, groups: [] };
  },
};

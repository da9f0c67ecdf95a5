import type { KafkaApiSpec } from "../api.js";
import { ApiKey } from "../api.js";
import type { KafkaReader, KafkaWriter } from "../wire.js";

/**
 * DeleteTopics (API key 20), versions 0-3; v4 is the first flexible version.
 *
 *   Request  => [topic_names:STRING] timeout_ms:INT32
 *   Response => throttle_time_ms:INT32 (v1+) [responses: name:STRING error_code:INT16]
 */
export interface KafkaDeleteTopicsRequest {
  topicNames: string[];
  timeoutMs: number;
}

export interface KafkaDeleteTopicsResponse {
  throttleTimeMs: number;
  responses: { name: string; errorCode: number }[];
}

export const deleteTopicsApi: KafkaApiSpec<KafkaDeleteTopicsRequest, KafkaDeleteTopicsResponse> = {
  apiKey: ApiKey.DeleteTopics,
  name: "DeleteTopics",
  minVersion: 0,
  maxVersion: 3,
  decodeRequest(r: KafkaReader, _version: number): KafkaDeleteTopicsRequest {
    const topicNames = r.array((t) => t.string("topic name"), "topic_names");
    const timeoutMs = r.int32("timeout_ms");
    return { topicNames, timeoutMs };
  },
  encodeResponse(w: KafkaWriter, version: number, res: KafkaDeleteTopicsResponse): void {
    if (version >= 1) w.int32(res.throttleTimeMs);
    w.array(res.responses, (w, t) => w.string(t.name).int16(t.errorCode));
  },
  errorResponse(req: KafkaDeleteTopicsRequest, _version: number, errorCode: number, _errorMessage: string): KafkaDeleteTopicsResponse {
    return { throttleTimeMs: 0, responses: req.topicNames.map((name) => ({ name, errorCode })) };
  },
};

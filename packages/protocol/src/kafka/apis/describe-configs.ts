import type { KafkaApiSpec } from "../api.js";
import { ApiKey } from "../api.js";
import type { KafkaReader, KafkaWriter } from "../wire.js";

/**
 * DescribeConfigs (API key 32), versions 0-3; v4 is the first flexible version.
 *
 *   Request  => [resources: resource_type:INT8 resource_name:STRING
 *                  configuration_keys:[STRING] (nullable: null = every key)]
 *               include_synonyms:BOOLEAN (v1+) include_documentation:BOOLEAN (v3+)
 *   Response => throttle_time_ms:INT32
 *               [results: error_code:INT16 error_message:NULLABLE_STRING resource_type:INT8
 *                  resource_name:STRING
 *                  [configs: name:STRING value:NULLABLE_STRING read_only:BOOLEAN
 *                     is_default:BOOLEAN (v0 only) config_source:INT8 (v1+) is_sensitive:BOOLEAN
 *                     [synonyms: name:STRING value:NULLABLE_STRING source:INT8] (v1+)
 *                     config_type:INT8 (v3+) documentation:NULLABLE_STRING (v3+)]]
 */
export interface KafkaDescribeConfigsResource {
  resourceType: number;
  resourceName: string;
  /** null = every key. */
  configurationKeys: string[] | null;
}

export interface KafkaDescribeConfigsRequest {
  resources: KafkaDescribeConfigsResource[];
  includeSynonyms: boolean;
  includeDocumentation: boolean;
}

export interface KafkaDescribeConfigsEntry {
  name: string;
  /** null for sensitive values. */
  value: string | null;
  readOnly: boolean;
  /** v0's flag; later versions say the same with configSource. */
  isDefault: boolean;
  configSource: number;
  isSensitive: boolean;
  synonyms: { name: string; value: string | null; source: number }[];
  configType: number;
  documentation: string | null;
}

export interface KafkaDescribeConfigsResult {
  errorCode: number;
  errorMessage: string | null;
  resourceType: number;
  resourceName: string;
  configs: KafkaDescribeConfigsEntry[];
}

export interface KafkaDescribeConfigsResponse {
  throttleTimeMs: number;
  results: KafkaDescribeConfigsResult[];
}

/** Kafka's ConfigResource.Type codes. */
export const KafkaConfigResourceType = { UNKNOWN: 0, TOPIC: 2, BROKER: 4, BROKER_LOGGER: 8 } as const;

/** Kafka's DescribeConfigsResponse.ConfigSource codes. */
export const KafkaConfigSource = {
  UNKNOWN: 0,
  DYNAMIC_TOPIC_CONFIG: 1,
  DYNAMIC_BROKER_CONFIG: 2,
  DYNAMIC_DEFAULT_BROKER_CONFIG: 3,
  STATIC_BROKER_CONFIG: 4,
  DEFAULT_CONFIG: 5,
  DYNAMIC_BROKER_LOGGER_CONFIG: 6,
} as const;

/** Kafka's DescribeConfigsResponse.ConfigType codes (v3+). */
export const KafkaConfigType = { UNKNOWN: 0, BOOLEAN: 1, STRING: 2, INT: 3, SHORT: 4, LONG: 5, DOUBLE: 6, LIST: 7, CLASS: 8, PASSWORD: 9 } as const;

export const describeConfigsApi: KafkaApiSpec<KafkaDescribeConfigsRequest, KafkaDescribeConfigsResponse> = {
  apiKey: ApiKey.DescribeConfigs,
  name: "DescribeConfigs",
  minVersion: 0,
  maxVersion: 3,
  decodeRequest(r: KafkaReader, version: number): KafkaDescribeConfigsRequest {
    const resources = r.array((x): KafkaDescribeConfigsResource => {
      const resourceType = x.int8("resource_type");
      const resourceName = x.string("resource_name");
      // The array reader maps a null array to []; peek at the count to tell them apart.
      const countAt = x.offset;
      const isNull = x.int32("configuration_keys count") < 0;
      x.offset = countAt;
      const keys = x.array((k) => k.string("configuration key"), "configuration_keys");
      return { resourceType, resourceName, configurationKeys: isNull ? null : keys };
    }, "resources");
    const includeSynonyms = version >= 1 ? r.boolean("include_synonyms") : false;
    const includeDocumentation = version >= 3 ? r.boolean("include_documentation") : false;
    return { resources, includeSynonyms, includeDocumentation };
  },
  encodeResponse(w: KafkaWriter, version: number, res: KafkaDescribeConfigsResponse): void {
    w.int32(res.throttleTimeMs);
    w.array(res.results, (w, x) => {
      w.int16(x.errorCode).nullableString(x.errorMessage).int8(x.resourceType).string(x.resourceName);
      w.array(x.configs, (w, c) => {
        w.string(c.name).nullableString(c.value).boolean(c.readOnly);
        if (version === 0) w.boolean(c.isDefault);
        else w.int8(c.configSource);
        w.boolean(c.isSensitive);
        if (version >= 1) w.array(c.synonyms, (w, s) => w.string(s.name).nullableString(s.value).int8(s.source));
        if (version >= 3) w.int8(c.configType).nullableString(c.documentation);
      });
    });
  },
  errorResponse(req: KafkaDescribeConfigsRequest, _version: number, errorCode: number, errorMessage: string): KafkaDescribeConfigsResponse {
    return { throttleTimeMs: 0, results: req.resources.map((x) => ({ errorCode, errorMessage, resourceType: x.resourceType, resourceName: x.resourceName, configs: [] })) };
  },
};

import { ApiKey, type KafkaApiSpec } from "../api.js";
import type { KafkaReader, KafkaWriter } from "../wire.js";

/**
 * ApiVersions (key 18), versions 0-3; v3 is flexible (KIP-511) and is what current clients
 * send first.
 *
 *   ApiVersionsRequest v0-v2: empty body
 *   ApiVersionsRequest v3:
 *     client_software_name     COMPACT_STRING
 *     client_software_version  COMPACT_STRING
 *     TAGGED_FIELDS
 *
 *   ApiVersionsResponse:
 *     error_code               INT16
 *     api_keys                 ARRAY (COMPACT_ARRAY in v3) of
 *       api_key                INT16
 *       min_version            INT16
 *       max_version            INT16
 *       TAGGED_FIELDS          v3
 *     throttle_time_ms         INT32  v1+
 *     TAGGED_FIELDS            v3 (SupportedFeatures, FinalizedFeatures... : we send none)
 *
 * The response always goes out with response header v0 (see ../request-header.ts). A
 * request for a version above 3 is answered by the listener with UNSUPPORTED_VERSION in a
 * v0 body that still lists our versions, so the client retries with one we know.
 */
export interface KafkaApiVersionsRequest {
  /** v3+; "" before. */
  readonly clientSoftwareName: string;
  /** v3+; "" before. */
  readonly clientSoftwareVersion: string;
}

export interface KafkaApiVersionRange {
  readonly apiKey: number;
  readonly minVersion: number;
  readonly maxVersion: number;
}

export interface KafkaApiVersionsResponse {
  readonly errorCode: number;
  readonly apiKeys: readonly KafkaApiVersionRange[];
  /** v1+. */
  readonly throttleTimeMs: number;
}

const FIRST_FLEXIBLE = 3;

export const apiVersionsApi: KafkaApiSpec<KafkaApiVersionsRequest, KafkaApiVersionsResponse> = {
  apiKey: ApiKey.ApiVersions,
  name: "ApiVersions",
  minVersion: 0,
  maxVersion: 3,
  firstFlexibleVersion: FIRST_FLEXIBLE,

  decodeRequest(reader: KafkaReader, version: number): KafkaApiVersionsRequest {
    if (version < FIRST_FLEXIBLE) return { clientSoftwareName: "", clientSoftwareVersion: "" };
    const clientSoftwareName = reader.compactString("client_software_name");
    const clientSoftwareVersion = reader.compactString("client_software_version");
    reader.taggedFields("ApiVersions request tagged fields");
    return { clientSoftwareName, clientSoftwareVersion };
  },

  encodeResponse(writer: KafkaWriter, version: number, response: KafkaApiVersionsResponse): void {
    writer.int16(response.errorCode);
    if (version >= FIRST_FLEXIBLE) {
      writer.compactArray(response.apiKeys, (w, k) => w.int16(k.apiKey).int16(k.minVersion).int16(k.maxVersion).taggedFields());
    } else {
      writer.array(response.apiKeys, (w, k) => w.int16(k.apiKey).int16(k.minVersion).int16(k.maxVersion));
    }
    if (version >= 1) writer.int32(response.throttleTimeMs);
    if (version >= FIRST_FLEXIBLE) writer.taggedFields();
  },

  errorResponse(_request: KafkaApiVersionsRequest, _version: number, errorCode: number): KafkaApiVersionsResponse {
    return { errorCode, apiKeys: [], throttleTimeMs: 0 };
  },
};

/** Writes an ApiVersions v3 request body (what a client sends; tests and the fuzzer). */
export function encodeApiVersionsRequest(writer: KafkaWriter, version: number, request: KafkaApiVersionsRequest): void {
  if (version < FIRST_FLEXIBLE) return;
  writer.compactString(request.clientSoftwareName).compactString(request.clientSoftwareVersion).taggedFields();
}

/** Reads an ApiVersions response body (what a client reads; tests). */
export function decodeApiVersionsResponse(reader: KafkaReader, version: number): KafkaApiVersionsResponse {
  const errorCode = reader.int16("error_code");
  const readKey = (r: KafkaReader): KafkaApiVersionRange => {
    const k = { apiKey: r.int16("api_key"), minVersion: r.int16("min_version"), maxVersion: r.int16("max_version") };
    if (version >= FIRST_FLEXIBLE) r.taggedFields("api_keys entry tagged fields");
    return k;
  };
  const apiKeys = version >= FIRST_FLEXIBLE ? reader.compactArray(readKey, "api_keys") : reader.array(readKey, "api_keys");
  const throttleTimeMs = version >= 1 ? reader.int32("throttle_time_ms") : 0;
  if (version >= FIRST_FLEXIBLE) reader.taggedFields("ApiVersions response tagged fields");
  return { errorCode, apiKeys, throttleTimeMs };
}

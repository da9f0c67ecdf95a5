import { FlotillaError } from "@flotilla/common";
import { ApiKey } from "./api.js";
import { KafkaWriter, type KafkaReader } from "./wire.js";

/**
 * Kafka request and response headers (the protocol guide's "Headers" section).
 *
 * Every request travels as a size-prefixed frame:
 *
 *   size               INT32   bytes that follow (the header and the body)
 *   request header v1  (non-flexible API versions)
 *     api_key          INT16
 *     api_version      INT16
 *     correlation_id   INT32
 *     client_id        NULLABLE_STRING
 *   request header v2  (flexible API versions, KIP-482) = v1, then
 *     tagged_fields    TAGGED_FIELDS
 *   body               the API's request at api_version
 *
 * and every response as:
 *
 *   size               INT32
 *   response header v0 (non-flexible API versions, and ApiVersions at every version)
 *     correlation_id   INT32   copied from the request
 *   response header v1 (flexible API versions) = v0, then
 *     tagged_fields    TAGGED_FIELDS
 *   body
 *
 * ApiVersions always answers with response header v0: a client that sent a version the
 * broker does not know must still be able to read the error in the answer (KIP-511).
 * Header v0 of requests (no client_id) belongs to the long-gone ControlledShutdown v0 and
 * is not supported.
 */
export interface KafkaRequestHeader {
  readonly apiKey: number;
  readonly apiVersion: number;
  readonly correlationId: number;
  readonly clientId: string | null;
}

/** What decides a header's version: the API's first flexible version, if it has one. */
export interface FlexibleVersions {
  readonly firstFlexibleVersion?: number;
}

/** Bytes of the fixed part of a request header (api_key, api_version, correlation_id). */
export const REQUEST_HEADER_FIXED_BYTES = 8;

/** Whether `version` of an API is flexible (compact types and tagged fields, KIP-482). */
export function isFlexibleVersion(spec: FlexibleVersions, version: number): boolean {
  return spec.firstFlexibleVersion !== undefined && version >= spec.firstFlexibleVersion;
}

/** Request header version for `version` of an API: 2 when flexible, else 1. */
export function requestHeaderVersion(spec: FlexibleVersions, version: number): 1 | 2 {
  return isFlexibleVersion(spec, version) ? 2 : 1;
}

/** Response header version for `version` of API `apiKey`: 1 when flexible, else 0; ApiVersions is always 0. */
export function responseHeaderVersion(apiKey: number, spec: FlexibleVersions, version: number): 0 | 1 {
  if (apiKey === ApiKey.ApiVersions) return 0;
  return isFlexibleVersion(spec, version) ? 1 : 0;
}

/** The fixed start of every request header, read so the caller can pick the API (and so the header version). */
export function readRequestHeaderStart(reader: KafkaReader): { apiKey: number; apiVersion: number; correlationId: number } {
  const apiKey = reader.int16("request api_key");
  const apiVersion = reader.int16("request api_version");
  const correlationId = reader.int32("request correlation_id");
  return { apiKey, apiVersion, correlationId };
}

/** The rest of a request header after `readRequestHeaderStart`: client_id, and the tagged fields of header v2. */
export function readRequestHeaderRest(reader: KafkaReader, headerVersion: 1 | 2): { clientId: string | null } {
  const clientId = reader.nullableString("request client_id");
  if (headerVersion === 2) reader.taggedFields("request header tagged fields");
  return { clientId };
}

/** Reads a whole request header of a known version (tests, tools). */
export function decodeRequestHeader(reader: KafkaReader, headerVersion: 1 | 2): KafkaRequestHeader {
  const start = readRequestHeaderStart(reader);
  const { clientId } = readRequestHeaderRest(reader, headerVersion);
  return { ...start, clientId };
}

/** Writes a request header (what a client sends; used by tests and the fuzzer). */
export function encodeRequestHeader(writer: KafkaWriter, header: KafkaRequestHeader, headerVersion: 1 | 2): void {
  writer.int16(header.apiKey).int16(header.apiVersion).int32(header.correlationId).nullableString(header.clientId);
  if (headerVersion === 2) writer.taggedFields();
}

/** Writes a response header. */
export function encodeResponseHeader(writer: KafkaWriter, correlationId: number, headerVersion: 0 | 1): void {
  writer.int32(correlationId);
  if (headerVersion === 1) writer.taggedFields();
}

/** Reads a response header (what a client reads; used by tests). */
export function decodeResponseHeader(reader: KafkaReader, headerVersion: 0 | 1): { correlationId: number } {
  const correlationId = reader.int32("response correlation_id");
  if (headerVersion === 1) reader.taggedFields("response header tagged fields");
  return { correlationId };
}

/**
 * A whole request frame as a client builds it: size prefix, header, then the body the
 * callback writes. For tests, the fuzzer and tools; the broker never sends requests.
 */
export function encodeRequestFrame(header: KafkaRequestHeader, spec: FlexibleVersions, writeBody: (w: KafkaWriter) => void = () => {}): Buffer {
  const w = new KafkaWriter();
  encodeRequestHeader(w, header, requestHeaderVersion(spec, header.apiVersion));
  writeBody(w);
  const body = w.toBuffer();
  if (body.length > 0x7fffffff) throw new FlotillaError("INVALID_REQUEST", `request of ${body.length} bytes exceeds the INT32 size prefix`);
  const size = Buffer.allocUnsafe(4);
  size.writeInt32BE(body.length, 0);
  return Buffer.concat([size, body]);
}

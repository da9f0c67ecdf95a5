import type { KafkaReader, KafkaWriter } from "./wire.js";

/**
 * One Kafka API as the listener serves it: its key, the versions we accept, and the codec
 * for the request body and response body (the request header and the size prefix are the
 * listener's business, see request-header.ts).
 *
 * Types are Kafka-shaped (field names from Kafka's JSON message specs, camelCase), one
 * request and one response interface per API covering every supported version; fields a
 * version lacks are read as their Kafka default and skipped when writing.
 *
 * Flexible versions (KIP-482: compact strings/arrays and tagged fields) are supported only
 * where a spec says so with `firstFlexibleVersion`; we serve non-flexible versions of every
 * API (the clients we test negotiate down to them) plus ApiVersions v3, which clients send
 * first.
 */
export interface KafkaApiSpec<Req, Res> {
  readonly apiKey: number;
  /** Kafka's name of the API, e.g. "Produce". */
  readonly name: string;
  readonly minVersion: number;
  readonly maxVersion: number;
  /** First flexible version, if any supported version is flexible. */
  readonly firstFlexibleVersion?: number;
  /** Reads the request body (after the header). Throws FlotillaError("INVALID_REQUEST") on malformed input. */
  decodeRequest(reader: KafkaReader, version: number): Req;
  /** Writes the response body (after the response header). */
  encodeResponse(writer: KafkaWriter, version: number, response: Res): void;
  /**
   * The response that answers `request` with `errorCode` in every error field (top level
   * and per item), for when the handler fails as a whole. Kafka clients expect such a
   * response rather than a closed connection for an error they can act on.
   */
  errorResponse(request: Req, version: number, errorCode: number, errorMessage: string): Res;
}

/** Any spec, for registries holding specs of different request and response types. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyKafkaApiSpec = KafkaApiSpec<any, any>;

/** Kafka's API keys for the APIs Flotilla serves. */
export const ApiKey = {
  Produce: 0,
  Fetch: 1,
  ListOffsets: 2,
  Metadata: 3,
  OffsetCommit: 8,
  OffsetFetch: 9,
  FindCoordinator: 10,
  JoinGroup: 11,
  Heartbeat: 12,
  LeaveGroup: 13,
  SyncGroup: 14,
  DescribeGroups: 15,
  ListGroups: 16,
  ApiVersions: 18,
  CreateTopics: 19,
  DeleteTopics: 20,
  InitProducerId: 22,
  DescribeConfigs: 32,
} as const;

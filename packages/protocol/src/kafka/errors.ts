import { ErrorCodes, FlotillaError, type ErrorName } from "@flotilla/common";

/**
 * Flotilla's error table uses Kafka's numeric codes, so most errors cross to the Kafka
 * protocol unchanged. Flotilla's own codes (>= 1000) have no Kafka number; each maps to
 * the Kafka error a Kafka client handles the same way.
 */
const OWN_TO_KAFKA: Partial<Record<ErrorName, ErrorName>> = {
  BATCH_TRUNCATED: "CORRUPT_MESSAGE",
  INVALID_BATCH: "CORRUPT_MESSAGE",
  STORAGE_CORRUPT: "KAFKA_STORAGE_ERROR",
  // Retriable on both sides: the client refreshes metadata and tries another broker.
  SHUTTING_DOWN: "NOT_LEADER_OR_FOLLOWER",
};

/** The Kafka error code for a Flotilla error name. */
export function kafkaCodeOfName(name: ErrorName): number {
  const mapped = OWN_TO_KAFKA[name] ?? name;
  const code = ErrorCodes[mapped].code;
  return code >= 1000 ? ErrorCodes.UNKNOWN_SERVER_ERROR.code : code;
}

/** The Kafka error code for a numeric code from Flotilla's table (as carried in gRPC responses). */
export function kafkaCodeOf(code: number): number {
  if (code < 1000) return code;
  for (const [name, spec] of Object.entries(ErrorCodes)) if (spec.code === code) return kafkaCodeOfName(name as ErrorName);
  return ErrorCodes.UNKNOWN_SERVER_ERROR.code;
}

/** The Kafka error code for anything thrown: a FlotillaError's mapped code, else UNKNOWN_SERVER_ERROR (-1). */
export function kafkaCodeOfError(err: unknown): number {
  return err instanceof FlotillaError ? kafkaCodeOfName(err.errorName) : ErrorCodes.UNKNOWN_SERVER_ERROR.code;
}

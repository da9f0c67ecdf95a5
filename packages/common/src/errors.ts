/**
 * The one error table of Flotilla. Names and numeric codes follow Apache Kafka's
 * protocol error codes where Kafka has the case, so the gRPC API, the clients and a
 * later Kafka-protocol listener all speak the same language. Codes >= 1000 are
 * Flotilla's own. `retriable` is the only thing a retrier may look at.
 */
export const ErrorCodes = {
  NONE: { code: 0, retriable: false, message: "no error" },
  UNKNOWN_SERVER_ERROR: { code: -1, retriable: false, message: "unexpected server error" },
  OFFSET_OUT_OF_RANGE: { code: 1, retriable: false, message: "offset is outside the log's range" },
  CORRUPT_MESSAGE: { code: 2, retriable: true, message: "record batch failed its CRC or size check" },
  UNKNOWN_TOPIC_OR_PARTITION: { code: 3, retriable: true, message: "unknown topic or partition" },
  INVALID_FETCH_SIZE: { code: 4, retriable: false, message: "invalid fetch size" },
  LEADER_NOT_AVAILABLE: { code: 5, retriable: true, message: "partition has no leader right now" },
  NOT_LEADER_OR_FOLLOWER: { code: 6, retriable: true, message: "this broker is not the leader or follower of the partition" },
  REQUEST_TIMED_OUT: { code: 7, retriable: true, message: "request timed out" },
  BROKER_NOT_AVAILABLE: { code: 8, retriable: false, message: "broker not available" },
  REPLICA_NOT_AVAILABLE: { code: 9, retriable: true, message: "replica not available" },
  MESSAGE_TOO_LARGE: { code: 10, retriable: false, message: "record batch is larger than message.max.bytes" },
  OFFSET_METADATA_TOO_LARGE: { code: 12, retriable: false, message: "offset commit metadata is longer than offset.metadata.max.bytes" },
  STALE_CONTROLLER_EPOCH: { code: 11, retriable: false, message: "stale controller epoch" },
  NETWORK_EXCEPTION: { code: 13, retriable: true, message: "network error" },
  COORDINATOR_LOAD_IN_PROGRESS: { code: 14, retriable: true, message: "coordinator is loading" },
  COORDINATOR_NOT_AVAILABLE: { code: 15, retriable: true, message: "coordinator not available" },
  NOT_COORDINATOR: { code: 16, retriable: true, message: "this broker is not the coordinator" },
  INVALID_TOPIC_EXCEPTION: { code: 17, retriable: false, message: "invalid topic name" },
  RECORD_LIST_TOO_LARGE: { code: 18, retriable: false, message: "record list too large" },
  NOT_ENOUGH_REPLICAS: { code: 19, retriable: true, message: "fewer in-sync replicas than min.insync.replicas" },
  NOT_ENOUGH_REPLICAS_AFTER_APPEND: { code: 20, retriable: true, message: "written, but fewer in-sync replicas than min.insync.replicas" },
  INVALID_REQUIRED_ACKS: { code: 21, retriable: false, message: "acks must be -1, 0 or 1" },
  ILLEGAL_GENERATION: { code: 22, retriable: false, message: "illegal generation" },
  INCONSISTENT_GROUP_PROTOCOL: { code: 23, retriable: false, message: "inconsistent group protocol" },
  INVALID_GROUP_ID: { code: 24, retriable: false, message: "invalid group id" },
  UNKNOWN_MEMBER_ID: { code: 25, retriable: false, message: "unknown member id" },
  INVALID_SESSION_TIMEOUT: { code: 26, retriable: false, message: "invalid session timeout" },
  REBALANCE_IN_PROGRESS: { code: 27, retriable: false, message: "rebalance in progress" },
  INVALID_COMMIT_OFFSET_SIZE: { code: 28, retriable: false, message: "invalid commit offset size" },
  INVALID_TIMESTAMP: { code: 32, retriable: false, message: "invalid timestamp" },
  UNSUPPORTED_VERSION: { code: 35, retriable: false, message: "unsupported version" },
  TOPIC_ALREADY_EXISTS: { code: 36, retriable: false, message: "topic already exists" },
  INVALID_PARTITIONS: { code: 37, retriable: false, message: "invalid number of partitions" },
  INVALID_REPLICATION_FACTOR: { code: 38, retriable: false, message: "invalid replication factor" },
  INVALID_REPLICA_ASSIGNMENT: { code: 39, retriable: false, message: "invalid replica assignment" },
  INVALID_CONFIG: { code: 40, retriable: false, message: "invalid configuration" },
  NOT_CONTROLLER: { code: 41, retriable: true, message: "this node is not the active controller" },
  INVALID_REQUEST: { code: 42, retriable: false, message: "invalid request" },
  UNSUPPORTED_FOR_MESSAGE_FORMAT: { code: 43, retriable: false, message: "unsupported for message format" },
  POLICY_VIOLATION: { code: 44, retriable: false, message: "policy violation" },
  OUT_OF_ORDER_SEQUENCE_NUMBER: { code: 45, retriable: false, message: "out of order sequence number" },
  DUPLICATE_SEQUENCE_NUMBER: { code: 46, retriable: false, message: "duplicate sequence number" },
  INVALID_PRODUCER_EPOCH: { code: 47, retriable: false, message: "producer epoch is stale" },
  KAFKA_STORAGE_ERROR: { code: 56, retriable: true, message: "storage error" },
  UNKNOWN_PRODUCER_ID: { code: 59, retriable: false, message: "unknown producer id" },
  FENCED_LEADER_EPOCH: { code: 74, retriable: true, message: "leader epoch in the request is older than the broker's" },
  UNKNOWN_LEADER_EPOCH: { code: 75, retriable: true, message: "leader epoch in the request is newer than the broker's" },
  OFFSET_NOT_AVAILABLE: { code: 78, retriable: true, message: "offset not available" },
  MEMBER_ID_REQUIRED: { code: 79, retriable: false, message: "member id required" },
  GROUP_ID_NOT_FOUND: { code: 69, retriable: false, message: "group id not found" },
  NON_EMPTY_GROUP: { code: 68, retriable: false, message: "group is not empty" },
  GROUP_MAX_SIZE_REACHED: { code: 81, retriable: false, message: "the group has reached group.max.size" },
  FENCED_INSTANCE_ID: { code: 82, retriable: false, message: "static member was fenced by a newer instance" },
  UNSTABLE_OFFSET_COMMIT: { code: 88, retriable: true, message: "unstable offset commit" },
  INCONSISTENT_CLUSTER_ID: { code: 104, retriable: false, message: "inconsistent cluster id" },
  // Flotilla's own codes.
  BATCH_TRUNCATED: { code: 1000, retriable: false, message: "record batch is truncated" },
  INVALID_BATCH: { code: 1001, retriable: false, message: "record batch is malformed" },
  STORAGE_CORRUPT: { code: 1002, retriable: false, message: "stored data is corrupt" },
  SHUTTING_DOWN: { code: 1003, retriable: true, message: "node is shutting down" },
} as const satisfies Record<string, { code: number; retriable: boolean; message: string }>;

export type ErrorName = keyof typeof ErrorCodes;

const byCode = new Map<number, ErrorName>();
for (const [name, spec] of Object.entries(ErrorCodes)) byCode.set(spec.code, name as ErrorName);

/** Name of a numeric code, or UNKNOWN_SERVER_ERROR for codes this build does not know. */
export function errorNameOf(code: number): ErrorName {
  return byCode.get(code) ?? "UNKNOWN_SERVER_ERROR";
}

export function isRetriable(name: ErrorName): boolean {
  return ErrorCodes[name].retriable;
}

export interface FlotillaErrorOptions {
  /** A hint where the leader/controller/coordinator is, e.g. "127.0.0.1:9093". */
  leaderHint?: string;
  cause?: unknown;
}

/**
 * An expected, operating error: something a caller handles (not leader, unknown topic,
 * timeout). Programmer errors are `assert` failures instead.
 */
export class FlotillaError extends Error {
  readonly errorName: ErrorName;
  readonly code: number;
  readonly retriable: boolean;
  readonly leaderHint: string | undefined;

  constructor(name: ErrorName, detail?: string, options: FlotillaErrorOptions = {}) {
    const spec = ErrorCodes[name];
    super(detail ? `${name}: ${detail}` : `${name}: ${spec.message}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "FlotillaError";
    this.errorName = name;
    this.code = spec.code;
    this.retriable = spec.retriable;
    this.leaderHint = options.leaderHint;
  }

  static is(err: unknown, name?: ErrorName): err is FlotillaError {
    return err instanceof FlotillaError && (name === undefined || err.errorName === name);
  }
}

/** A broken invariant: a programmer error. Crash loudly rather than diverge. */
export class AssertionError extends Error {
  constructor(message: string) {
    super(`assertion failed: ${message}`);
    this.name = "AssertionError";
  }
}

export function assert(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) throw new AssertionError(typeof message === "function" ? message() : message);
}

export function unreachable(value: never, what = "value"): never {
  throw new AssertionError(`unreachable ${what}: ${String(value)}`);
}

/**
 * The reason handed to `AbortController.abort()` when a caller cancels a call or a loop is
 * interrupted on purpose. `abort()` without a reason builds a DOMException, stack trace
 * included, every time; broker profiles showed that at 2.7 % of CPU, because long-polls are
 * cancelled and re-issued all the time. A shared reason costs nothing. Nothing reads it.
 */
export const CALL_CANCELLED: Error = new Error("call cancelled by its caller");

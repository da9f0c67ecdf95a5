import * as grpc from "@grpc/grpc-js";
import { ErrorCodes, FlotillaError, errorNameOf, type ErrorName } from "@flotilla/common";

/**
 * The one place where Flotilla errors become gRPC statuses and back. The error name
 * travels in the `flotilla-error` metadata key, the leader hint in `flotilla-leader`.
 */
const ERROR_KEY = "flotilla-error";
const LEADER_KEY = "flotilla-leader";

function statusFor(name: ErrorName): grpc.status {
  switch (name) {
    case "UNKNOWN_TOPIC_OR_PARTITION":
    case "GROUP_ID_NOT_FOUND":
      return grpc.status.NOT_FOUND;
    case "TOPIC_ALREADY_EXISTS":
      return grpc.status.ALREADY_EXISTS;
    case "REQUEST_TIMED_OUT":
      return grpc.status.DEADLINE_EXCEEDED;
    case "NOT_LEADER_OR_FOLLOWER":
    case "NOT_CONTROLLER":
    case "NOT_COORDINATOR":
    case "LEADER_NOT_AVAILABLE":
    case "SHUTTING_DOWN":
    case "COORDINATOR_NOT_AVAILABLE":
    case "COORDINATOR_LOAD_IN_PROGRESS":
      return grpc.status.UNAVAILABLE;
    case "UNKNOWN_SERVER_ERROR":
      return grpc.status.INTERNAL;
    default:
      return ErrorCodes[name].retriable ? grpc.status.UNAVAILABLE : grpc.status.INVALID_ARGUMENT;
  }
}

/** Server side: any thrown value to a gRPC ServiceError. Unknown errors become UNKNOWN_SERVER_ERROR. */
export function toServiceError(err: unknown): Partial<grpc.ServiceError> {
  const fe = err instanceof FlotillaError ? err : new FlotillaError("UNKNOWN_SERVER_ERROR", err instanceof Error ? err.message : String(err));
  const metadata = new grpc.Metadata();
  metadata.set(ERROR_KEY, fe.errorName);
  if (fe.leaderHint) metadata.set(LEADER_KEY, fe.leaderHint);
  return { code: statusFor(fe.errorName), details: fe.message, metadata };
}

/** Client side: a gRPC error to a FlotillaError, with the gRPC error kept as `cause`. */
export function fromServiceError(err: unknown, context?: string): FlotillaError {
  if (err instanceof FlotillaError) return err;
  const se = err as Partial<grpc.ServiceError>;
  const where = context ? `${context}: ` : "";
  const nameValue = se?.metadata?.get(ERROR_KEY)?.[0];
  if (typeof nameValue === "string" && nameValue in ErrorCodes) {
    const leader = se.metadata?.get(LEADER_KEY)?.[0];
    const detail = (se.details ?? "").replace(new RegExp(`^${nameValue}: `), "");
    return new FlotillaError(nameValue as ErrorName, where + detail, {
      cause: err,
      ...(typeof leader === "string" ? { leaderHint: leader } : {}),
    });
  }
  switch (se?.code) {
    case grpc.status.UNAVAILABLE:
    case grpc.status.CANCELLED:
      return new FlotillaError("NETWORK_EXCEPTION", `${where}${se.details ?? "connection unavailable"}`, { cause: err });
    case grpc.status.DEADLINE_EXCEEDED:
      return new FlotillaError("REQUEST_TIMED_OUT", `${where}${se.details ?? "deadline exceeded"}`, { cause: err });
    case grpc.status.RESOURCE_EXHAUSTED:
      return new FlotillaError("MESSAGE_TOO_LARGE", `${where}${se.details ?? "message too large for the connection"}`, { cause: err });
    default:
      return new FlotillaError("UNKNOWN_SERVER_ERROR", `${where}${se?.details ?? (err instanceof Error ? err.message : String(err))}`, { cause: err });
  }
}

/** Per-item error fields from a thrown value. */
export function errorFields(err: unknown): { errorCode: number; errorMessage: string } {
  if (err instanceof FlotillaError) return { errorCode: err.code, errorMessage: err.message };
  return { errorCode: ErrorCodes.UNKNOWN_SERVER_ERROR.code, errorMessage: err instanceof Error ? err.message : String(err) };
}

/** Turns a per-item error code back into a FlotillaError, or undefined for NONE. */
export function errorFromFields(errorCode: number, errorMessage: string): FlotillaError | undefined {
  if (errorCode === 0) return undefined;
  const name = errorNameOf(errorCode);
  return new FlotillaError(name, errorMessage.replace(new RegExp(`^${name}: `), "") || undefined);
}

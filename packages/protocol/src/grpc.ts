import { fileURLToPath } from "node:url";
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { Limits } from "@flotilla/common";

/** Root of the .proto files (the repository's proto/ folder). */
export const PROTO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../proto");

/** Loader options every side uses, so that shapes match ./broker-api.ts. */
export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  bytes: Buffer,
  defaults: true,
  arrays: true,
  objects: true,
  oneofs: true,
  includeDirs: [PROTO_ROOT],
};

const cache = new Map<string, grpc.GrpcObject>();

/** Loads a .proto file (relative to proto/) as a gRPC package object, cached. */
export function loadProto(relativePath: string): grpc.GrpcObject {
  let pkg = cache.get(relativePath);
  if (!pkg) {
    const def = protoLoader.loadSync(path.join(PROTO_ROOT, relativePath), PROTO_LOADER_OPTIONS);
    pkg = grpc.loadPackageDefinition(def);
    cache.set(relativePath, pkg);
  }
  return pkg;
}

/** Looks up a service constructor such as "flotilla.broker.v1.Broker". */
export function serviceClientCtor(relativePath: string, fullName: string): grpc.ServiceClientConstructor {
  let obj: unknown = loadProto(relativePath);
  for (const part of fullName.split(".")) obj = (obj as Record<string, unknown>)[part];
  if (typeof obj !== "function") throw new Error(`service ${fullName} not found in ${relativePath}`);
  return obj as grpc.ServiceClientConstructor;
}

export const BROKER_PROTO = "flotilla/broker/v1/broker.proto";
export const BROKER_SERVICE = "flotilla.broker.v1.Broker";

/** Channel options for large batches and long-lived connections. */
export const GRPC_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  "grpc.max_receive_message_length": Limits.grpcMessageBytesMax,
  "grpc.max_send_message_length": Limits.grpcMessageBytesMax,
  "grpc.keepalive_time_ms": 30_000,
  "grpc.keepalive_timeout_ms": 10_000,
};

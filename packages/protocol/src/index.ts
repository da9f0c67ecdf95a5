export * from "./batch/header.js";
export * from "./broker-api.js";
export * from "./grpc.js";
export * from "./grpc-errors.js";
export * from "./batch/records.js";
export * from "./batch/compression.js";
export * from "./partitioner.js";
export * from "./group-api.js";

export * from "./batch/header.js";
export * from "./broker-api.js";
export * from "./grpc.js";
export * from "./grpc-errors.js";

export * from "./records.js";
export * from "./image.js";
export * from "./delta.js";
export * from "./codec.js";
export * from "./topic-config.js";

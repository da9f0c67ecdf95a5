export * from "./errors.js";
export * from "./time.js";
export * from "./limits.js";

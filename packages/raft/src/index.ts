export * from "./types.js";
export { RaftCore } from "./core.js";
export { RAFT_DEFAULTS, TRANSFER_CONTEXT, validateConfig } from "./config.js";
export { formatEntry, formatEntries, formatMessage, formatReady } from "./format.js";

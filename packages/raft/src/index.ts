export * from "./types.js";
export { RaftCore, RAFT_DEFAULTS, TRANSFER_CONTEXT } from "./core.js";
export { formatEntry, formatEntries, formatMessage, formatReady } from "./format.js";

export * from "./metadata-log.js";
export * from "./level-metadata-log.js";
export * from "./controller.js";
export * from "./commands/result.js";
export * from "./commands/placement.js";
export * from "./commands/topics.js";
export * from "./commands/brokers.js";
export * from "./channel.js";

/**
 * Per-topic configuration: Kafka's topic-level keys, their checks and how overrides
 * combine with broker defaults. Pure; shared by the controller (CreateTopics validates
 * with it) and the broker (effective config of a partition log, DescribeTopics).
 *
 * Values travel and are stored as strings, as in Kafka's ConfigRecord; they are parsed
 * into a typed `TopicConfig` when used. Longs larger than 2^53 (Kafka writes
 * Long.MAX_VALUE, 9223372036854775807, for "never") parse to Number.MAX_SAFE_INTEGER.
 */
import { Limits } from "@flotilla/common";

export type TimestampType = "CreateTime" | "LogAppendTime";
export type CleanupPolicy = "delete" | "compact" | "compact,delete";

export interface TopicConfig {
  /** retention.ms: -1 = keep forever. */
  readonly retentionMs: number;
  /** retention.bytes: -1 = no size limit. */
  readonly retentionBytes: number;
  readonly segmentBytes: number;
  /** segment.ms: roll a segment older than this. */
  readonly segmentMs: number;
  readonly minInsyncReplicas: number;
  /** max.message.bytes: largest record batch accepted. */
  readonly maxMessageBytes: number;
  readonly messageTimestampType: TimestampType;
  /**
   * cleanup.policy: "delete" removes old segments by retention.ms/retention.bytes; "compact"
   * keeps the latest record per key (the log cleaner) and ignores time/size retention;
   * "compact,delete" does both. Kafka's list order does not matter, so "delete,compact"
   * parses to "compact,delete".
   */
  readonly cleanupPolicy: CleanupPolicy;
  /** min.cleanable.dirty.ratio: the cleaner takes a log once dirty bytes / all closed bytes reach this. */
  readonly minCleanableDirtyRatio: number;
  /** delete.retention.ms: how long a tombstone (null value) outlives the cleaning that could drop it. */
  readonly deleteRetentionMs: number;
  /** min.compaction.lag.ms: records younger than this are never compacted away. */
  readonly minCompactionLagMs: number;
  readonly indexIntervalBytes: number;
  readonly segmentIndexBytes: number;
  /** flush.messages: fsync after this many messages; MAX_SAFE_INTEGER = leave it to the OS. */
  readonly flushMessages: number;
  /** flush.ms: fsync at least this often; MAX_SAFE_INTEGER = leave it to the OS. */
  readonly flushMs: number;
  /**
   * unclean.leader.election.enable: when no in-sync replica can lead, may an out-of-sync
   * one (losing what it lacks)? The controller reads the override (see
   * controller/src/commands/lifecycle.ts); the default is the broker's own setting.
   */
  readonly uncleanLeaderElectionEnable: boolean;
}

/** Kafka's topic defaults (the broker's own defaults feed these; see broker config). */
export const DEFAULT_TOPIC_CONFIG: TopicConfig = Object.freeze({
  retentionMs: 7 * 24 * 3600 * 1000,
  retentionBytes: -1,
  segmentBytes: 1024 * 1024 * 1024,
  segmentMs: 7 * 24 * 3600 * 1000,
  minInsyncReplicas: 1,
  maxMessageBytes: Limits.messageMaxBytesDefault,
  messageTimestampType: "CreateTime",
  cleanupPolicy: "delete",
  minCleanableDirtyRatio: 0.5,
  deleteRetentionMs: 86_400_000,
  minCompactionLagMs: 0,
  indexIntervalBytes: 4096,
  segmentIndexBytes: 10 * 1024 * 1024,
  flushMessages: Number.MAX_SAFE_INTEGER,
  flushMs: Number.MAX_SAFE_INTEGER,
  uncleanLeaderElectionEnable: false,
});

interface TopicConfigDef {
  readonly field: keyof TopicConfig;
  /** Parses a string value or returns the reason it is invalid. */
  readonly parse: (value: string) => number | string | boolean | { problem: string };
  readonly format: (value: number | string | boolean) => string;
}

/** Parses a Java long in [min, max]; values past 2^53 clamp to MAX_SAFE_INTEGER. */
export function parseLong(value: string, min: number, max = Number.MAX_SAFE_INTEGER): number | { problem: string } {
  const s = value.trim();
  if (!/^[-+]?\d+$/.test(s)) return { problem: `"${value}" is not an integer` };
  const big = BigInt(s);
  if (big > 9223372036854775807n || big < -9223372036854775808n) return { problem: `"${value}" is outside the range of a 64-bit integer` };
  const n = big > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(big);
  if (n < min) return { problem: `${value} is below the minimum ${min}` };
  if (n > max) return { problem: `${value} is above the maximum ${max}` };
  return n;
}

const INT32_MAX = 2147483647;

function long(field: keyof TopicConfig, min: number, max?: number): TopicConfigDef {
  return {
    field,
    parse: (v) => parseLong(v, min, max),
    format: (v) => (v === Number.MAX_SAFE_INTEGER ? "9223372036854775807" : String(v)),
  };
}

function oneOf(field: keyof TopicConfig, allowed: readonly string[], note = ""): TopicConfigDef {
  return {
    field,
    parse: (v) => (allowed.includes(v) ? v : { problem: `"${v}" is not one of ${allowed.join(", ")}${note}` }),
    format: (v) => String(v),
  };
}

/** A comma list of "delete" and "compact" (each at most once, any order, not empty). */
function cleanupPolicy(field: keyof TopicConfig): TopicConfigDef {
  return {
    field,
    parse: (v) => {
      const parts = v.split(",").map((p) => p.trim().toLowerCase());
      const known = new Set(parts);
      if (parts.length === 0 || known.size !== parts.length || [...known].some((p) => p !== "delete" && p !== "compact")) {
        return { problem: `"${v}" is not one of delete, compact, compact,delete` };
      }
      return known.has("compact") ? (known.has("delete") ? "compact,delete" : "compact") : "delete";
    },
    format: (v) => String(v),
  };
}

/**
 * "true" or "false", exactly: the controller compares the stored string with "true", so a
 * spelling it would read differently (e.g. "TRUE", which Java's parser accepts) is refused.
 */
function bool(field: keyof TopicConfig): TopicConfigDef {
  return {
    field,
    parse: (v) => (v === "true" ? true : v === "false" ? false : { problem: `"${v}" is not true or false` }),
    format: (v) => String(v),
  };
}

/** A Java double in [min, max]. */
function ratio(field: keyof TopicConfig, min: number, max: number): TopicConfigDef {
  return {
    field,
    parse: (v) => {
      const s = v.trim();
      const n = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s) ? Number(s) : NaN;
      if (!Number.isFinite(n)) return { problem: `"${v}" is not a number` };
      if (n < min || n > max) return { problem: `${v} is outside [${min}, ${max}]` };
      return n;
    },
    format: (v) => String(v),
  };
}

/**
 * The topic keys Flotilla knows, with Kafka's names and bounds. segment.bytes may go
 * down to 1 KiB (Kafka 4 asks for 1 MiB) so that tests can roll segments cheaply;
 * segment.index.bytes must hold two index entries of either kind (24 bytes; Kafka: 4).
 */
export const TOPIC_CONFIG_DEFS = {
  "retention.ms": long("retentionMs", -1),
  "retention.bytes": long("retentionBytes", -1),
  "segment.bytes": long("segmentBytes", 1024, INT32_MAX),
  "segment.ms": long("segmentMs", 1),
  "min.insync.replicas": long("minInsyncReplicas", 1, INT32_MAX),
  "max.message.bytes": long("maxMessageBytes", 0, INT32_MAX),
  "message.timestamp.type": oneOf("messageTimestampType", ["CreateTime", "LogAppendTime"]),
  "cleanup.policy": cleanupPolicy("cleanupPolicy"),
  "min.cleanable.dirty.ratio": ratio("minCleanableDirtyRatio", 0, 1),
  "delete.retention.ms": long("deleteRetentionMs", 0),
  "min.compaction.lag.ms": long("minCompactionLagMs", 0),
  "index.interval.bytes": long("indexIntervalBytes", 0, INT32_MAX),
  "segment.index.bytes": long("segmentIndexBytes", 24, INT32_MAX),
  "flush.messages": long("flushMessages", 1),
  "flush.ms": long("flushMs", 0),
  "unclean.leader.election.enable": bool("uncleanLeaderElectionEnable"),
} as const satisfies Record<string, TopicConfigDef>;

export type TopicConfigKey = keyof typeof TOPIC_CONFIG_DEFS;

export function isTopicConfigKey(name: string): name is TopicConfigKey {
  return Object.hasOwn(TOPIC_CONFIG_DEFS, name);
}

/** Why `name=value` is not a valid topic configuration, or undefined when it is. */
export function topicConfigProblem(name: string, value: string): string | undefined {
  if (!isTopicConfigKey(name)) return `unknown topic configuration key "${name}" (known: ${Object.keys(TOPIC_CONFIG_DEFS).join(", ")})`;
  const parsed = TOPIC_CONFIG_DEFS[name].parse(value);
  if (typeof parsed === "object" && parsed !== null) return `${name}=${value}: ${parsed.problem}`;
  return undefined;
}

/**
 * The effective configuration: `defaults` with the topic's overrides applied. Overrides
 * were validated when written; an invalid one here is ignored in favour of the default
 * rather than taking a partition offline (a newer node may know a key we do not).
 */
export function resolveTopicConfig(overrides: ReadonlyMap<string, string> | undefined, defaults: TopicConfig = DEFAULT_TOPIC_CONFIG): TopicConfig {
  const out: Record<string, unknown> = { ...defaults };
  for (const [name, value] of overrides ?? []) {
    if (!isTopicConfigKey(name)) continue;
    const def = TOPIC_CONFIG_DEFS[name];
    const parsed = def.parse(value);
    if (typeof parsed === "object" && parsed !== null) continue;
    out[def.field] = parsed;
  }
  return Object.freeze(out as unknown as TopicConfig);
}

/** A TopicConfig as Kafka-named strings, for DescribeTopics. */
export function topicConfigStrings(config: TopicConfig): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, def] of Object.entries(TOPIC_CONFIG_DEFS)) {
    out[name] = def.format(config[def.field]);
  }
  return out;
}

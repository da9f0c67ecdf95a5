/**
 * Server configuration with Kafka's property names. `loadServerConfig` merges the
 * sources (./config-sources.ts), checks every value and relationship, and returns a
 * typed `ServerConfig`; anything wrong stops start-up with INVALID_CONFIG naming the
 * key, the value and where it came from. Unknown keys are kept in `unknownKeys` and
 * logged as warnings at start (Kafka warns too: a typo should be visible, not fatal).
 *
 * Choices that differ from, or are not spelled out by, Kafka:
 * - process.roles defaults to "broker,controller"; node.id is required, as in Kafka's
 *   KRaft mode. controller.quorum.voters empty means the single-node mode: this node is
 *   the only controller and keeps the metadata log in LevelDB (no Raft, no controller
 *   listener needed). With voters listed, the node is a voter iff it has the controller
 *   role (its id must then be among the voters, and a broker-only node's must not), and
 *   a controller needs a listener named in controller.listener.names whose port is its
 *   voter entry's port.
 * - controller.quorum.election.timeout.ms (Kafka: 1000) is rounded to 50 ms Raft ticks.
 * - auto.create.topics.enable defaults to true, Kafka's default: a Metadata request with
 *   allow_auto_topic_creation creates unknown topics with the broker defaults.
 * - log.dirs defaults to /tmp/flotilla-logs (Kafka: /tmp/kafka-logs).
 * - log.segment.bytes may go down to 1 KiB, so tests can roll segments cheaply.
 */
import os from "node:os";
import path from "node:path";
import { FlotillaError, Limits } from "@flotilla/common";
import { DEFAULT_TOPIC_CONFIG, TOPIC_CONFIG_DEFS, parseLong, type CleanupPolicy, type TimestampType, type TopicConfig } from "@flotilla/metadata";
import { collectProperties, envNameOfProperty, type ConfigSources, type PropertyValue, type RawProperties } from "./config-sources.js";
import type { GroupCoordinatorConfig } from "./group/config.js";

export interface Listener {
  /** Listener name, e.g. PLAINTEXT; "PLAINTEXT" when the value had no scheme. */
  readonly name: string;
  /** "" when the value left it out (bind every interface). */
  readonly host: string;
  readonly port: number;
}

export interface QuorumVoter {
  readonly id: number;
  readonly host: string;
  readonly port: number;
}

export type ProcessRole = "broker" | "controller";

export interface ServerConfig {
  readonly nodeId: number;
  readonly processRoles: readonly ProcessRole[];
  /** controller.quorum.voters; empty means "this node alone". */
  readonly controllerQuorumVoters: readonly QuorumVoter[];
  readonly controllerListenerNames: readonly string[];
  readonly listeners: readonly Listener[];
  /** advertised.listeners, else listeners. */
  readonly advertisedListeners: readonly Listener[];
  readonly logDirs: readonly string[];
  /** metadata.log.dir, else the first of log.dirs. */
  readonly metadataLogDir: string;
  readonly numPartitions: number;
  readonly defaultReplicationFactor: number;
  readonly autoCreateTopicsEnable: boolean;
  readonly logRetentionCheckIntervalMs: number;
  /** Upper bound on a Fetch response (fetch.max.bytes). */
  readonly fetchMaxBytes: number;
  /** socket.request.max.bytes: the largest Kafka-protocol request frame; a larger one closes the connection. */
  readonly socketRequestMaxBytes: number;
  /** connections.max.idle.ms: a Kafka-protocol connection idle this long is closed. */
  readonly connectionsMaxIdleMs: number;
  readonly brokerSessionTimeoutMs: number;
  readonly brokerHeartbeatIntervalMs: number;
  readonly replicaLagTimeMaxMs: number;
  readonly brokerRack: string | null;
  /** unclean.leader.election.enable */
  readonly uncleanLeaderElectionEnable: boolean;
  /** auto.leader.rebalance.enable */
  readonly autoLeaderRebalanceEnable: boolean;
  /** leader.imbalance.check.interval.seconds, in ms */
  readonly leaderImbalanceCheckIntervalMs: number;
  /** controller.quorum.election.timeout.ms */
  readonly controllerQuorumElectionTimeoutMs: number;
  readonly clusterId: string | null;
  /** Topic defaults from the broker's log.* keys, message.max.bytes and min.insync.replicas. */
  readonly topicDefaults: TopicConfig;
  /** offsets.* and group.* keys (./group/config.ts). */
  readonly groups: GroupCoordinatorConfig;
  /** http.listener: host:port of the HTTP admin endpoint (/healthz, /readyz, /metrics); null = off. */
  readonly httpListener: Listener | null;
  /** Keys set that this build does not know, with their source. */
  readonly unknownKeys: readonly { key: string; source: string }[];
}

type Kind = "int" | "long" | "string" | "list" | "boolean";

interface Def {
  readonly kind: Kind;
  /** Kafka's default as a string; undefined = no default (null). */
  readonly default?: string;
  readonly min?: number;
  readonly max?: number;
  readonly oneOf?: readonly string[];
}

const INT_MAX = 2147483647;

/** Every key this build reads. */
export const SERVER_CONFIG_DEFS: Readonly<Record<string, Def>> = {
  "node.id": { kind: "int", min: 0 },
  "process.roles": { kind: "list", default: "broker,controller" },
  "controller.quorum.voters": { kind: "list", default: "" },
  "controller.listener.names": { kind: "list", default: "CONTROLLER" },
  listeners: { kind: "list", default: "PLAINTEXT://:9092" },
  "advertised.listeners": { kind: "list" },
  "log.dirs": { kind: "list" },
  "log.dir": { kind: "string", default: "/tmp/flotilla-logs" },
  "metadata.log.dir": { kind: "string" },
  "num.partitions": { kind: "int", default: "1", min: 1, max: 10_000 },
  "default.replication.factor": { kind: "int", default: "1", min: 1, max: 32767 },
  "min.insync.replicas": { kind: "int", default: "1", min: 1 },
  "log.retention.hours": { kind: "int", default: "168", min: -1 },
  "log.retention.minutes": { kind: "int", min: -1 },
  "log.retention.ms": { kind: "long", min: -1 },
  "log.retention.bytes": { kind: "long", default: "-1", min: -1 },
  "log.segment.bytes": { kind: "int", default: "1073741824", min: 1024 },
  "log.roll.hours": { kind: "int", default: "168", min: 1 },
  "log.roll.ms": { kind: "long", min: 1 },
  "log.retention.check.interval.ms": { kind: "long", default: "300000", min: 1, max: INT_MAX },
  "log.index.interval.bytes": { kind: "int", default: "4096", min: 0 },
  "log.index.size.max.bytes": { kind: "int", default: "10485760", min: 24 },
  "log.flush.interval.messages": { kind: "long", default: "9223372036854775807", min: 1 },
  "log.flush.interval.ms": { kind: "long", min: 0 },
  "log.message.timestamp.type": { kind: "string", default: "CreateTime", oneOf: ["CreateTime", "LogAppendTime"] },
  "log.cleanup.policy": { kind: "list", default: "delete" },
  "message.max.bytes": { kind: "int", default: String(Limits.messageMaxBytesDefault), min: 0 },
  "fetch.max.bytes": { kind: "int", default: "57671680", min: 1024 },
  "socket.request.max.bytes": { kind: "int", default: "104857600", min: 1024 },
  "connections.max.idle.ms": { kind: "long", default: "600000", min: 1, max: INT_MAX },
  "broker.session.timeout.ms": { kind: "int", default: "9000", min: 1 },
  "broker.heartbeat.interval.ms": { kind: "int", default: "2000", min: 1 },
  "replica.lag.time.max.ms": { kind: "long", default: "30000", min: 1 },
  "broker.rack": { kind: "string" },
  "unclean.leader.election.enable": { kind: "boolean", default: "false" },
  "auto.leader.rebalance.enable": { kind: "boolean", default: "true" },
  "leader.imbalance.check.interval.seconds": { kind: "long", default: "300", min: 1, max: 86_400 },
  "controller.quorum.election.timeout.ms": { kind: "int", default: "1000", min: 100, max: 60_000 },
  "cluster.id": { kind: "string" },
  "auto.create.topics.enable": { kind: "boolean", default: "true" },
  "offsets.topic.num.partitions": { kind: "int", default: "50", min: 1, max: 10_000 },
  "offsets.topic.replication.factor": { kind: "int", default: "3", min: 1, max: 32767 },
  "group.min.session.timeout.ms": { kind: "int", default: "6000", min: 1 },
  "group.max.session.timeout.ms": { kind: "int", default: "1800000", min: 1 },
  "group.initial.rebalance.delay.ms": { kind: "int", default: "3000", min: 0 },
  "group.max.size": { kind: "int", default: "1000", min: 1, max: 100_000 },
  "offsets.retention.minutes": { kind: "int", default: "10080", min: 1 },
  "offsets.retention.check.interval.ms": { kind: "long", default: "600000", min: 1, max: INT_MAX },
  "offsets.commit.timeout.ms": { kind: "int", default: "5000", min: 1 },
  "offsets.load.buffer.size": { kind: "int", default: "5242880", min: 1 },
  "offset.metadata.max.bytes": { kind: "int", default: "4096", min: 0 },
  // Not a Kafka key (Kafka has no HTTP listener): Flotilla's probes and metrics, ./http-admin.ts.
  "http.listener": { kind: "string" },
};

function bad(key: string, pv: PropertyValue | undefined, problem: string): FlotillaError {
  const where = pv ? ` (from ${pv.source})` : "";
  const shown = pv ? `${key}=${pv.value}` : key;
  return new FlotillaError("INVALID_CONFIG", `${shown}${where}: ${problem}`);
}

/** Typed access to the merged properties, checking each value against its definition. */
class PropertyReader {
  constructor(private readonly raw: RawProperties) {}

  has(key: string): boolean {
    return this.raw.has(key);
  }

  private value(key: string): { pv: PropertyValue | undefined; text: string | undefined } {
    const pv = this.raw.get(key);
    const def = SERVER_CONFIG_DEFS[key];
    if (!def) throw new Error(`config key ${key} has no definition`);
    return { pv, text: pv?.value ?? def.default };
  }

  number(key: string): number | undefined {
    const def = SERVER_CONFIG_DEFS[key]!;
    const { pv, text } = this.value(key);
    if (text === undefined) return undefined;
    const max = def.kind === "int" ? Math.min(def.max ?? INT_MAX, INT_MAX) : def.max;
    const parsed = parseLong(text, def.min ?? Number.MIN_SAFE_INTEGER, max);
    if (typeof parsed === "object") throw bad(key, pv, parsed.problem);
    return parsed;
  }

  requiredNumber(key: string): number {
    const n = this.number(key);
    if (n === undefined) throw new FlotillaError("INVALID_CONFIG", `${key} is required (set it in the config file, as ${envNameOfProperty(key)}, or as an override)`);
    return n;
  }

  string(key: string): string | undefined {
    const def = SERVER_CONFIG_DEFS[key]!;
    const { pv, text } = this.value(key);
    if (text === undefined) return undefined;
    if (text === "") return def.default === undefined || def.default === "" ? undefined : def.default;
    if (def.oneOf && !def.oneOf.includes(text)) throw bad(key, pv, `must be one of ${def.oneOf.join(", ")}`);
    return text;
  }

  list(key: string): string[] | undefined {
    const { text } = this.value(key);
    if (text === undefined) return undefined;
    return text.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
  }

  boolean(key: string): boolean {
    const { pv, text } = this.value(key);
    const lower = (text ?? "").toLowerCase();
    if (lower !== "true" && lower !== "false") throw bad(key, pv, "must be true or false");
    return lower === "true";
  }

  source(key: string): PropertyValue | undefined {
    return this.raw.get(key);
  }
}

/** Parses `NAME://host:port` or `host:port` (IPv6 hosts in brackets). */
export function parseListener(text: string, key: string, pv?: PropertyValue): Listener {
  const m = /^(?:([A-Za-z][A-Za-z0-9_]*):\/\/)?(\[[0-9a-fA-F:.]+\]|[^:/\s]*):(\d+)$/.exec(text);
  if (!m) throw bad(key, pv, `"${text}" is not NAME://host:port or host:port`);
  const port = Number(m[3]);
  if (port > 65535) throw bad(key, pv, `port ${port} in "${text}" is above 65535`);
  const host = (m[2] ?? "").replace(/^\[(.*)\]$/, "$1");
  return { name: (m[1] ?? "PLAINTEXT").toUpperCase(), host, port };
}

/** Parses controller.quorum.voters: `id@host:port,...`. */
export function parseVoters(items: readonly string[], pv?: PropertyValue): QuorumVoter[] {
  const key = "controller.quorum.voters";
  const voters = items.map((item) => {
    const m = /^(\d+)@(\[[0-9a-fA-F:.]+\]|[^:@\s]+):(\d+)$/.exec(item);
    if (!m) throw bad(key, pv, `"${item}" is not id@host:port`);
    const port = Number(m[3]);
    if (port < 1 || port > 65535) throw bad(key, pv, `port ${port} in "${item}" is outside 1..65535`);
    return { id: Number(m[1]), host: (m[2] as string).replace(/^\[(.*)\]$/, "$1"), port };
  });
  const ids = new Set<number>();
  for (const v of voters) {
    if (ids.has(v.id)) throw bad(key, pv, `voter id ${v.id} appears twice`);
    ids.add(v.id);
  }
  return voters;
}

function parseRoles(r: PropertyReader): ProcessRole[] {
  const items = r.list("process.roles") ?? [];
  const roles = new Set<ProcessRole>();
  for (const item of items) {
    if (item !== "broker" && item !== "controller") throw bad("process.roles", r.source("process.roles"), `"${item}" is not broker or controller`);
    roles.add(item);
  }
  if (roles.size === 0) throw bad("process.roles", r.source("process.roles"), "names no role");
  return [...roles].sort();
}

function retentionMs(r: PropertyReader): number {
  // Kafka's precedence: log.retention.ms, then minutes, then hours. Any negative = unlimited.
  const ms = r.number("log.retention.ms");
  if (ms !== undefined) return ms < 0 ? -1 : ms;
  const minutes = r.number("log.retention.minutes");
  if (minutes !== undefined) return minutes < 0 ? -1 : minutes * 60_000;
  const hours = r.requiredNumber("log.retention.hours");
  return hours < 0 ? -1 : hours * 3_600_000;
}

function topicDefaults(r: PropertyReader): TopicConfig {
  // The broker default goes through the same rule as the topic config cleanup.policy.
  const policyValue = (r.list("log.cleanup.policy") ?? []).join(",");
  const policy = TOPIC_CONFIG_DEFS["cleanup.policy"].parse(policyValue);
  if (typeof policy === "object") throw bad("log.cleanup.policy", r.source("log.cleanup.policy"), policy.problem);
  const flushMs = r.number("log.flush.interval.ms");
  const retention = retentionMs(r);
  if (retention === 0) throw bad("log.retention.ms", r.source("log.retention.ms"), "must be -1 (unlimited) or at least 1");
  return Object.freeze({
    ...DEFAULT_TOPIC_CONFIG,
    retentionMs: retention,
    retentionBytes: r.requiredNumber("log.retention.bytes"),
    segmentBytes: r.requiredNumber("log.segment.bytes"),
    segmentMs: r.number("log.roll.ms") ?? r.requiredNumber("log.roll.hours") * 3_600_000,
    minInsyncReplicas: r.requiredNumber("min.insync.replicas"),
    maxMessageBytes: r.requiredNumber("message.max.bytes"),
    messageTimestampType: r.string("log.message.timestamp.type") as TimestampType,
    cleanupPolicy: policy as CleanupPolicy,
    uncleanLeaderElectionEnable: r.boolean("unclean.leader.election.enable"),
    indexIntervalBytes: r.requiredNumber("log.index.interval.bytes"),
    segmentIndexBytes: r.requiredNumber("log.index.size.max.bytes"),
    flushMessages: r.requiredNumber("log.flush.interval.messages"),
    flushMs: flushMs ?? Number.MAX_SAFE_INTEGER,
  });
}

function groupConfig(r: PropertyReader): GroupCoordinatorConfig {
  const groupMinSessionTimeoutMs = r.requiredNumber("group.min.session.timeout.ms");
  const groupMaxSessionTimeoutMs = r.requiredNumber("group.max.session.timeout.ms");
  if (groupMaxSessionTimeoutMs < groupMinSessionTimeoutMs) {
    throw bad("group.max.session.timeout.ms", r.source("group.max.session.timeout.ms") ?? { value: String(groupMaxSessionTimeoutMs), source: "default" }, `must be at least group.min.session.timeout.ms (${groupMinSessionTimeoutMs})`);
  }
  return Object.freeze({
    offsetsTopicNumPartitions: r.requiredNumber("offsets.topic.num.partitions"),
    offsetsTopicReplicationFactor: r.requiredNumber("offsets.topic.replication.factor"),
    groupMinSessionTimeoutMs,
    groupMaxSessionTimeoutMs,
    groupInitialRebalanceDelayMs: r.requiredNumber("group.initial.rebalance.delay.ms"),
    groupMaxSize: r.requiredNumber("group.max.size"),
    offsetsRetentionMs: r.requiredNumber("offsets.retention.minutes") * 60_000,
    offsetsRetentionCheckIntervalMs: r.requiredNumber("offsets.retention.check.interval.ms"),
    offsetsCommitTimeoutMs: r.requiredNumber("offsets.commit.timeout.ms"),
    offsetsLoadBufferBytes: r.requiredNumber("offsets.load.buffer.size"),
    offsetMetadataMaxBytes: r.requiredNumber("offset.metadata.max.bytes"),
  });
}

function httpListenerOf(r: PropertyReader): Listener | null {
  const text = r.string("http.listener");
  if (text === undefined) return null;
  const l = parseListener(text, "http.listener", r.source("http.listener"));
  if (/^[A-Za-z][A-Za-z0-9_]*:\/\//.test(text)) throw bad("http.listener", r.source("http.listener"), "takes host:port, without a listener name");
  return l;
}

/** Reads and checks the server configuration; see the module comment for precedence. */
export function loadServerConfig(sources: ConfigSources = {}): ServerConfig {
  const raw = collectProperties(sources);
  const r = new PropertyReader(raw);
  const unknownKeys = [...raw].filter(([key]) => !Object.hasOwn(SERVER_CONFIG_DEFS, key)).map(([key, pv]) => ({ key, source: pv.source }));

  const nodeId = r.requiredNumber("node.id");
  const processRoles = parseRoles(r);
  const controllerListenerNames = (r.list("controller.listener.names") ?? []).map((n) => n.toUpperCase());

  const listeners = (r.list("listeners") ?? []).map((t) => parseListener(t, "listeners", r.source("listeners")));
  const clientListeners = listeners.filter((l) => !controllerListenerNames.includes(l.name));
  const isBroker = processRoles.includes("broker");
  const isController = processRoles.includes("controller");
  if (isBroker && clientListeners.length === 0) throw bad("listeners", r.source("listeners"), "has no listener for clients (every listener is a controller listener)");
  if (clientListeners.length > 1) throw bad("listeners", r.source("listeners"), "this build serves clients on one listener; name exactly one besides the controller listeners");
  const names = new Set<string>();
  for (const l of listeners) {
    if (names.has(l.name)) throw bad("listeners", r.source("listeners"), `listener name ${l.name} appears twice`);
    names.add(l.name);
  }
  const advertisedRaw = r.list("advertised.listeners");
  const advertisedListeners = advertisedRaw === undefined || advertisedRaw.length === 0
    ? listeners
    : advertisedRaw.map((t) => parseListener(t, "advertised.listeners", r.source("advertised.listeners")));
  for (const a of advertisedListeners) {
    if (!names.has(a.name)) throw bad("advertised.listeners", r.source("advertised.listeners"), `advertises listener ${a.name}, which listeners does not define`);
  }

  const voters = parseVoters(r.list("controller.quorum.voters") ?? [], r.source("controller.quorum.voters"));
  const votersPv = r.source("controller.quorum.voters");
  if (voters.length === 0) {
    if (!isController || !isBroker) {
      throw bad("controller.quorum.voters", votersPv, `is empty, which is the single-node mode of a combined node; process.roles=${processRoles.join(",")} needs the voters listed`);
    }
  } else {
    const self = voters.find((v) => v.id === nodeId);
    if (isController && !self) throw bad("controller.quorum.voters", votersPv, `node.id ${nodeId} has the controller role but is not among the voters`);
    if (!isController && self) throw bad("controller.quorum.voters", votersPv, `node.id ${nodeId} is a voter but process.roles=${processRoles.join(",")} has no controller role`);
    if (isController && self) {
      const controllerListener = listeners.find((l) => controllerListenerNames.includes(l.name));
      if (!controllerListener) {
        throw bad("listeners", r.source("listeners"), `has no controller listener (one named in controller.listener.names=${controllerListenerNames.join(",")}), which a controller needs`);
      }
      if (controllerListener.port !== self.port) {
        throw bad("listeners", r.source("listeners"), `controller listener ${controllerListener.name} is on port ${controllerListener.port}, but controller.quorum.voters puts node ${nodeId} on port ${self.port}`);
      }
    }
  }
  const logDirsList = r.list("log.dirs");
  const logDirs = (logDirsList && logDirsList.length > 0 ? logDirsList : [r.string("log.dir") as string]).map((d) => path.resolve(d));
  if (new Set(logDirs).size !== logDirs.length) throw bad("log.dirs", r.source("log.dirs"), "names a directory twice");
  const metadataLogDir = path.resolve(r.string("metadata.log.dir") ?? (logDirs[0] as string));

  const brokerSessionTimeoutMs = r.requiredNumber("broker.session.timeout.ms");
  const brokerHeartbeatIntervalMs = r.requiredNumber("broker.heartbeat.interval.ms");
  if (brokerHeartbeatIntervalMs >= brokerSessionTimeoutMs) {
    throw bad("broker.heartbeat.interval.ms", r.source("broker.heartbeat.interval.ms") ?? { value: String(brokerHeartbeatIntervalMs), source: "default" }, `must be below broker.session.timeout.ms (${brokerSessionTimeoutMs})`);
  }
  const defaults = topicDefaults(r);
  const fetchMaxBytes = r.requiredNumber("fetch.max.bytes");
  const clusterId = r.string("cluster.id") ?? null;
  if (clusterId !== null && !/^[A-Za-z0-9_-]{1,64}$/.test(clusterId)) {
    throw bad("cluster.id", r.source("cluster.id"), "must be 1 to 64 characters of letters, digits, '_' and '-'");
  }

  return Object.freeze({
    nodeId,
    processRoles,
    controllerQuorumVoters: voters,
    controllerListenerNames,
    listeners,
    advertisedListeners,
    logDirs,
    metadataLogDir,
    numPartitions: r.requiredNumber("num.partitions"),
    defaultReplicationFactor: r.requiredNumber("default.replication.factor"),
    autoCreateTopicsEnable: r.boolean("auto.create.topics.enable"),
    logRetentionCheckIntervalMs: r.requiredNumber("log.retention.check.interval.ms"),
    fetchMaxBytes,
    socketRequestMaxBytes: r.requiredNumber("socket.request.max.bytes"),
    connectionsMaxIdleMs: r.requiredNumber("connections.max.idle.ms"),
    brokerSessionTimeoutMs,
    brokerHeartbeatIntervalMs,
    replicaLagTimeMaxMs: r.requiredNumber("replica.lag.time.max.ms"),
    brokerRack: r.string("broker.rack") ?? null,
    uncleanLeaderElectionEnable: r.boolean("unclean.leader.election.enable"),
    autoLeaderRebalanceEnable: r.boolean("auto.leader.rebalance.enable"),
    leaderImbalanceCheckIntervalMs: r.requiredNumber("leader.imbalance.check.interval.seconds") * 1000,
    controllerQuorumElectionTimeoutMs: r.requiredNumber("controller.quorum.election.timeout.ms"),
    clusterId,
    topicDefaults: defaults,
    groups: groupConfig(r),
    httpListener: httpListenerOf(r),
    unknownKeys,
  });
}

/** The controller listener (named in controller.listener.names), if any. */
export function controllerListener(config: ServerConfig): Listener | undefined {
  return config.listeners.find((x) => config.controllerListenerNames.includes(x.name));
}

/** The listener the broker serves clients on (the one not named in controller.listener.names). */
export function clientListener(config: ServerConfig): Listener {
  const l = config.listeners.find((x) => !config.controllerListenerNames.includes(x.name));
  if (!l) throw new FlotillaError("INVALID_CONFIG", "listeners has no listener for clients");
  return l;
}

/**
 * The host to advertise for a listener: its advertised host, else its own; an empty or
 * wildcard host advertises this machine's host name (Kafka uses the canonical host name).
 */
export function advertisedHost(host: string): string {
  return host === "" || host === "0.0.0.0" || host === "::" ? os.hostname() : host;
}

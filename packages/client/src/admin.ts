import { FlotillaError, type ErrorName } from "@flotilla/common";
import { EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, MAX_TIMESTAMP, errorFromFields, type MetadataResponse } from "@flotilla/protocol";
import type { Cluster } from "./cluster.js";
import { checkInt, makeCluster, resolveCommon, type CommonClientOptions, type ResolvedCommon } from "./config.js";
import type { BrokerConnection } from "./connection.js";
import { withRetries } from "./retry.js";

export interface AdminOptions extends CommonClientOptions {
  /** Kafka's default.api.timeout.ms: bound of one admin call, retries included. Default 60000. */
  defaultApiTimeoutMs?: number;
}

export interface NewTopic {
  topic: string;
  /** -1 or absent: the broker's num.partitions. */
  numPartitions?: number;
  /** -1 or absent: the broker's default.replication.factor. */
  replicationFactor?: number;
  /** Per-topic overrides with Kafka's names (retention.ms, segment.bytes, ...). */
  configs?: Record<string, string>;
}

export interface CreatedTopic {
  topic: string;
  topicId: string;
  numPartitions: number;
  replicationFactor: number;
}

export interface PartitionDescription {
  partition: number;
  /** Broker id of the leader, -1 when there is none. */
  leader: number;
  leaderEpoch: number;
  replicas: number[];
  isr: number[];
  offlineReplicas: number[];
}

export interface TopicDescription {
  name: string;
  topicId: string;
  replicationFactor: number;
  partitions: PartitionDescription[];
  /** Effective configuration: topic overrides, then broker defaults. */
  configs: Record<string, string>;
  /** Keys of `configs` set on the topic itself. */
  overriddenConfigs: string[];
}

export interface ClusterMetadata {
  clusterId: string;
  controllerId: number;
  brokers: { nodeId: number; host: string; port: number; rack: string; fenced: boolean }[];
  topics: { name: string; topicId: string; isInternal: boolean; partitions: PartitionDescription[] }[];
}

/** Which offset listOffsets() asks for. */
export type OffsetSpec = "earliest" | "latest" | "max-timestamp" | { timestamp: number };

export interface PartitionOffset {
  partition: number;
  /** -1 when no record has a timestamp at or after the one asked for. */
  offset: number;
  timestamp: number;
  leaderEpoch: number;
}

/** Retriable per-item errors an admin call retries; every other per-item error is its answer. */
const ITEM_RETRIABLE = new Set<ErrorName>(["NOT_CONTROLLER", "LEADER_NOT_AVAILABLE", "NOT_LEADER_OR_FOLLOWER", "REQUEST_TIMED_OUT", "FENCED_LEADER_EPOCH", "UNKNOWN_LEADER_EPOCH", "SHUTTING_DOWN", "NETWORK_EXCEPTION"]);
/** A topic that does not exist is an answer for an admin call, not something to wait out. */
const FINAL = new Set<ErrorName>(["UNKNOWN_TOPIC_OR_PARTITION"]);

/**
 * Topic management and cluster inspection. Each call is retried on retriable errors
 * (NOT_CONTROLLER, network errors, ...) against the next broker, within
 * default.api.timeout.ms; a per-topic error such as TOPIC_ALREADY_EXISTS or
 * UNKNOWN_TOPIC_OR_PARTITION is thrown as a FlotillaError with that code.
 */
export class Admin {
  private readonly common: ResolvedCommon;
  private readonly cluster: Cluster;
  private readonly defaultApiTimeoutMs: number;

  constructor(options: AdminOptions) {
    this.common = resolveCommon(options, "admin");
    this.defaultApiTimeoutMs = checkInt("defaultApiTimeoutMs", options.defaultApiTimeoutMs ?? 60_000, 1);
    this.cluster = makeCluster(this.common);
  }

  /**
   * Creates topics; resolves once the controller has committed them. Throws the first
   * per-topic error (e.g. TOPIC_ALREADY_EXISTS, INVALID_PARTITIONS, INVALID_CONFIG); topics
   * before it in the list may have been created.
   */
  async createTopics(request: { topics: NewTopic[]; validateOnly?: boolean; timeoutMs?: number }): Promise<CreatedTopic[]> {
    const timeoutMs = request.timeoutMs ?? this.common.requestTimeoutMs;
    const results = new Map<string, CreatedTopic>();
    let remaining = [...request.topics];
    await this.call(async (conn) => {
      const res = await conn.createTopics(
        {
          topics: remaining.map((t) => ({ name: t.topic, numPartitions: t.numPartitions ?? -1, replicationFactor: t.replicationFactor ?? -1, configs: t.configs ?? {} })),
          timeoutMs,
          validateOnly: request.validateOnly ?? false,
        },
        { timeoutMs: timeoutMs + 1000 },
      );
      let retry: FlotillaError | undefined;
      for (const r of res.topics) {
        const err = errorFromFields(r.errorCode, r.errorMessage);
        if (err && ITEM_RETRIABLE.has(err.errorName)) {
          retry ??= named(err, r.name);
          continue;
        }
        if (err) throw named(err, r.name);
        results.set(r.name, { topic: r.name, topicId: r.topicId, numPartitions: r.numPartitions, replicationFactor: r.replicationFactor });
      }
      // Only the topics that failed retriably go again: the others are done.
      remaining = remaining.filter((t) => !results.has(t.topic));
      if (retry) throw retry;
    });
    this.cluster.markStale();
    return request.topics.map((t) => results.get(t.topic)).filter((t): t is CreatedTopic => t !== undefined);
  }

  /** Deletes topics. Throws UNKNOWN_TOPIC_OR_PARTITION for a topic that does not exist. */
  async deleteTopics(request: { topics: string[]; timeoutMs?: number }): Promise<void> {
    const timeoutMs = request.timeoutMs ?? this.common.requestTimeoutMs;
    let remaining = [...request.topics];
    await this.call(async (conn) => {
      const res = await conn.deleteTopics({ names: remaining, timeoutMs }, { timeoutMs: timeoutMs + 1000 });
      const done = new Set<string>();
      let retry: FlotillaError | undefined;
      for (const r of res.results) {
        const err = errorFromFields(r.errorCode, r.errorMessage);
        if (err && ITEM_RETRIABLE.has(err.errorName)) {
          retry ??= named(err, r.name);
          continue;
        }
        if (err) throw named(err, r.name);
        done.add(r.name);
      }
      remaining = remaining.filter((n) => !done.has(n));
      if (retry) throw retry;
    });
    this.cluster.markStale();
  }

  /**
   * Grows topics to `count` partitions in total (Kafka's createPartitions,
   * `kafka-topics --alter --partitions N`); the controller places the new partitions.
   * Existing data stays where it is; keyed records may map to other partitions from now
   * on. Throws the first per-topic error: INVALID_PARTITIONS when `count` is not above
   * the current number, UNKNOWN_TOPIC_OR_PARTITION for a topic that does not exist;
   * topics before it in the list may have grown.
   */
  async createPartitions(topics: { topic: string; count: number }[], options: { validateOnly?: boolean; timeoutMs?: number } = {}): Promise<void> {
    if (topics.length === 0) throw new FlotillaError("INVALID_REQUEST", "createPartitions needs at least one topic");
    for (const t of topics) {
      if (!Number.isInteger(t.count) || t.count < 1) throw new FlotillaError("INVALID_PARTITIONS", `topic "${t.topic}": count must be a positive integer, got ${String(t.count)}`);
    }
    const timeoutMs = options.timeoutMs ?? this.common.requestTimeoutMs;
    let remaining = [...topics];
    await this.call(async (conn) => {
      const res = await conn.createPartitions(
        { topics: remaining.map((t) => ({ name: t.topic, count: t.count, assignments: [] })), timeoutMs, validateOnly: options.validateOnly ?? false },
        { timeoutMs: timeoutMs + 1000 },
      );
      const done = new Set<string>();
      let retry: FlotillaError | undefined;
      for (const r of res.results) {
        const err = errorFromFields(r.errorCode, r.errorMessage);
        if (err && ITEM_RETRIABLE.has(err.errorName)) {
          retry ??= named(err, r.name);
          continue;
        }
        if (err) throw named(err, r.name);
        done.add(r.name);
      }
      // Only the topics that failed retriably go again: growing one twice would fail.
      remaining = remaining.filter((t) => !done.has(t.topic));
      if (retry) throw retry;
    });
    this.cluster.markStale();
  }

  /** Names of the topics in the cluster, sorted; internal topics only when asked. */
  async listTopics(options: { includeInternal?: boolean } = {}): Promise<string[]> {
    const md = await this.metadata();
    return md.topics
      .filter((t) => options.includeInternal || !t.isInternal)
      .map((t) => t.name)
      .sort();
  }

  /** Partitions (leader, replicas, ISR, leader epoch) and configs of topics; all topics when none given. */
  async describeTopics(request: { topics?: string[] } = {}): Promise<TopicDescription[]> {
    return this.call(async (conn) => {
      const res = await conn.describeTopics({ names: request.topics ?? [] }, { timeoutMs: this.common.requestTimeoutMs });
      return res.topics.map((t) => {
        const err = errorFromFields(t.errorCode, t.errorMessage);
        if (err) throw named(err, t.name);
        return {
          name: t.name,
          topicId: t.topicId,
          replicationFactor: t.replicationFactor,
          partitions: [...t.partitions].sort((a, b) => a.partition - b.partition).map(toPartitionDescription),
          configs: { ...t.configs },
          overriddenConfigs: [...t.overriddenConfigs],
        };
      });
    });
  }

  /** The cluster as one broker sees it: brokers, controller and topics (all topics when none given). */
  async metadata(request: { topics?: string[] } = {}): Promise<ClusterMetadata> {
    const res: MetadataResponse = await this.call((conn) => conn.metadata({ topics: request.topics ?? [], allowAutoTopicCreation: false }, { timeoutMs: this.common.requestTimeoutMs }));
    for (const t of res.topics) {
      const err = errorFromFields(t.errorCode, t.errorMessage);
      if (err) throw named(err, t.name);
    }
    return {
      clusterId: res.clusterId,
      controllerId: res.controllerId,
      brokers: res.brokers.map((b) => ({ nodeId: b.nodeId, host: b.host, port: b.port, rack: b.rack, fenced: b.fenced })).sort((a, b) => a.nodeId - b.nodeId),
      topics: res.topics.map((t) => ({
        name: t.name,
        topicId: t.topicId,
        isInternal: t.isInternal,
        partitions: [...t.partitions].sort((a, b) => a.partition - b.partition).map(toPartitionDescription),
      })),
    };
  }

  /** Offsets of every partition of `topic` (or the given partitions) for `spec`, asked of each leader. */
  async listOffsets(topic: string, spec: OffsetSpec, partitions?: number[]): Promise<PartitionOffset[]> {
    const timestamp = spec === "earliest" ? EARLIEST_TIMESTAMP : spec === "latest" ? LATEST_TIMESTAMP : spec === "max-timestamp" ? MAX_TIMESTAMP : spec.timestamp;
    const deadlineMs = this.common.clock.monotonicMs() + this.defaultApiTimeoutMs;
    const out = new Map<number, PartitionOffset>();
    await withRetries(
      async () => {
        const info = await this.cluster.topic(topic, deadlineMs);
        const wanted = (partitions ?? info.partitions.map((p) => p.partition)).filter((p) => !out.has(p));
        const byLeader = new Map<number, number[]>();
        for (const p of wanted) {
          const { nodeId } = this.cluster.leaderOf(topic, p);
          byLeader.set(nodeId, [...(byLeader.get(nodeId) ?? []), p]);
        }
        const errors: FlotillaError[] = [];
        await Promise.all(
          [...byLeader].map(async ([nodeId, ps]) => {
            const res = await this.cluster
              .connectionTo(nodeId)
              .listOffsets({ replicaId: -1, topics: [{ name: topic, partitions: ps.map((partition) => ({ partition, timestamp })) }] }, { timeoutMs: this.common.requestTimeoutMs });
            for (const t of res.topics) {
              for (const p of t.partitions) {
                const err = errorFromFields(p.errorCode, p.errorMessage);
                if (err) errors.push(new FlotillaError(err.errorName, `${topic}-${p.partition}: ${p.errorMessage || err.message}`));
                else out.set(p.partition, { partition: p.partition, offset: p.offset, timestamp: p.timestamp, leaderEpoch: p.leaderEpoch });
              }
            }
          }),
        );
        const final = errors.find((e) => !e.retriable);
        if (final) throw final;
        if (errors[0]) throw errors[0];
      },
      this.common.retry,
      this.common,
      { deadlineMs, finalErrors: FINAL, onRetriableError: () => this.cluster.markStale() },
    );
    return [...out.values()].sort((a, b) => a.partition - b.partition);
  }

  /** Per partition: the log start offset (`low`) and the high watermark (`high`). */
  async fetchTopicOffsets(topic: string): Promise<{ partition: number; low: number; high: number }[]> {
    const [low, high] = await Promise.all([this.listOffsets(topic, "earliest"), this.listOffsets(topic, "latest")]);
    const lows = new Map(low.map((o) => [o.partition, o.offset]));
    return high.map((h) => ({ partition: h.partition, low: lows.get(h.partition) ?? -1, high: h.offset }));
  }

  async close(): Promise<void> {
    this.cluster.close();
  }

  /** Runs a request against any broker, retrying retriable errors on the next one. */
  private call<T>(fn: (conn: BrokerConnection) => Promise<T>): Promise<T> {
    const deadlineMs = this.common.clock.monotonicMs() + this.defaultApiTimeoutMs;
    return withRetries(
      async () => {
        const conn = this.cluster.anyConnection();
        try {
          return await fn(conn);
        } catch (err) {
          if (err instanceof FlotillaError && err.retriable) this.cluster.rotate();
          throw err;
        }
      },
      this.common.retry,
      this.common,
      { deadlineMs, finalErrors: FINAL },
    );
  }
}

function named(err: FlotillaError, topic: string): FlotillaError {
  const detail = err.message.replace(new RegExp(`^${err.errorName}: `), "");
  // Name the topic unless the broker's message already quotes it (a bare substring test
  // would take the "t" in "got" for topic "t").
  return new FlotillaError(err.errorName, detail.includes(`"${topic}"`) ? detail : `topic "${topic}": ${detail}`);
}

function toPartitionDescription(p: { partition: number; leaderId: number; leaderEpoch: number; replicas: number[]; isr: number[]; offlineReplicas: number[] }): PartitionDescription {
  return { partition: p.partition, leader: p.leaderId, leaderEpoch: p.leaderEpoch, replicas: [...p.replicas], isr: [...p.isr], offlineReplicas: [...p.offlineReplicas] };
}

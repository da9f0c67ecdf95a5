import { FlotillaError, type Clock, type Random } from "@flotilla/common";
import type { Logger } from "@flotilla/common/logger";
import { errorFromFields, type MetadataResponse } from "@flotilla/protocol";
import { ConnectionPool, type BrokerConnection } from "./connection.js";
import { withRetries, type RetryOptions } from "./retry.js";

/** A broker as the cluster metadata describes it. */
export interface BrokerNode {
  nodeId: number;
  host: string;
  port: number;
  rack: string;
  fenced: boolean;
}

/** One partition in the client's metadata cache. leaderId -1 means no leader right now. */
export interface PartitionInfo {
  partition: number;
  leaderId: number;
  leaderEpoch: number;
  replicas: number[];
  isr: number[];
  offlineReplicas: number[];
  /** Error the broker reported for this partition, if any (e.g. LEADER_NOT_AVAILABLE). */
  error: FlotillaError | undefined;
}

export interface TopicInfo {
  name: string;
  topicId: string;
  isInternal: boolean;
  /** Sorted by partition number; partitions[i].partition === i. */
  partitions: PartitionInfo[];
}

export interface ClusterDeps {
  bootstrapServers: string[];
  clientId: string;
  requestTimeoutMs: number;
  /** Kafka's metadata.max.age.ms: cached metadata older than this is refreshed on next use. */
  metadataMaxAgeMs: number;
  retry: RetryOptions;
  clock: Clock;
  random: Random;
  sleepMs: (ms: number) => Promise<void>;
  logger: Logger;
}

/**
 * The client's view of the cluster: brokers, topics, partitions and their leaders, learnt
 * from Metadata responses. It is refreshed on demand (a topic the cache does not know),
 * when it is older than metadata.max.age.ms, and after a retriable error that says the view
 * is wrong (callers call `markStale()`, e.g. on NOT_LEADER_OR_FOLLOWER). Refreshes are
 * coalesced: concurrent callers share one Metadata request.
 */
export class Cluster {
  readonly pool: ConnectionPool;
  private readonly brokers = new Map<number, BrokerNode>();
  private readonly topics = new Map<string, TopicInfo>();
  private readonly topicErrors = new Map<string, FlotillaError>();
  /** Topics this client uses; each refresh asks for all of them. */
  private readonly wanted = new Set<string>();
  private clusterIdValue = "";
  private controllerIdValue = -1;
  private refreshedAtMs = -Infinity;
  private stale = true;
  private inflight: Promise<void> | undefined;
  /** Round-robin cursor over bootstrap + known broker addresses for Metadata requests. */
  private cursor = 0;

  constructor(private readonly deps: ClusterDeps) {
    this.pool = new ConnectionPool(deps.clientId);
  }

  get clusterId(): string {
    return this.clusterIdValue;
  }
  get controllerId(): number {
    return this.controllerIdValue;
  }
  brokerList(): BrokerNode[] {
    return [...this.brokers.values()].sort((a, b) => a.nodeId - b.nodeId);
  }

  /** Forces the next lookup to fetch fresh metadata. */
  markStale(): void {
    this.stale = true;
  }

  /**
   * Any broker, for requests that any broker can answer (Metadata, CreateTopics, ...).
   * Rotates over the known brokers and the bootstrap list, so that a dead address is left
   * behind on the next attempt.
   */
  anyConnection(): BrokerConnection {
    const addresses = this.candidateAddresses();
    const address = addresses[this.cursor % addresses.length] as string;
    return this.pool.get(address);
  }

  /** Moves the rotation on, after a failure talking to `anyConnection()`. */
  rotate(): void {
    this.cursor++;
  }

  /** Connection to broker `nodeId`, or LEADER_NOT_AVAILABLE when the metadata does not know it. */
  connectionTo(nodeId: number): BrokerConnection {
    const b = this.brokers.get(nodeId);
    if (!b) throw new FlotillaError("LEADER_NOT_AVAILABLE", `broker ${nodeId} is not in the cluster metadata`);
    return this.pool.get(`${b.host}:${b.port}`);
  }

  /**
   * Fetches fresh metadata for the wanted topics plus `topics`, once for all concurrent
   * callers, trying brokers in turn on retriable errors until `deadlineMs` (monotonic).
   */
  async refresh(deadlineMs: number, topics: readonly string[] = []): Promise<void> {
    const before = this.wanted.size;
    for (const t of topics) this.wanted.add(t);
    // A refresh already under way that asked for every wanted topic is good enough.
    if (this.inflight && this.wanted.size === before) return this.inflight;
    if (this.inflight) await this.inflight.catch(() => undefined);
    const p = withRetries(
      async () => {
        const conn = this.anyConnection();
        try {
          const res = await conn.metadata({ topics: [...this.wanted], allowAutoTopicCreation: false }, { timeoutMs: this.deps.requestTimeoutMs });
          this.apply(res);
        } catch (err) {
          this.rotate();
          throw err;
        }
      },
      this.deps.retry,
      this.deps,
      {
        deadlineMs,
        onRetriableError: (err) => this.deps.logger.debug({ err: err.message }, "metadata request failed; trying another broker"),
      },
    );
    this.inflight = p;
    try {
      await p;
    } finally {
      if (this.inflight === p) this.inflight = undefined;
    }
  }

  /**
   * The topic's metadata, refreshing when the cache does not know it, is stale, or is older
   * than metadata.max.age.ms. Throws the broker's error for the topic (UNKNOWN_TOPIC_OR_PARTITION
   * is retriable: a topic just created may not have reached every broker yet).
   */
  async topic(name: string, deadlineMs: number): Promise<TopicInfo> {
    const age = this.deps.clock.monotonicMs() - this.refreshedAtMs;
    if (this.stale || !this.wanted.has(name) || age > this.deps.metadataMaxAgeMs || !this.topics.has(name)) {
      await this.refresh(deadlineMs, [name]);
    }
    const t = this.topics.get(name);
    if (t) return t;
    throw this.topicErrors.get(name) ?? new FlotillaError("UNKNOWN_TOPIC_OR_PARTITION", `topic "${name}" is not in the cluster metadata`);
  }

  /** Cached topic metadata without a request (undefined when unknown). */
  cachedTopic(name: string): TopicInfo | undefined {
    return this.topics.get(name);
  }

  /** Leader of a partition from the cache; throws a retriable error when there is none. */
  leaderOf(topic: string, partition: number): { nodeId: number; leaderEpoch: number; connection: BrokerConnection } {
    const t = this.topics.get(topic);
    if (!t) throw this.topicErrors.get(topic) ?? new FlotillaError("UNKNOWN_TOPIC_OR_PARTITION", `topic "${topic}" is not in the cluster metadata`);
    const p = t.partitions[partition];
    if (!p) throw new FlotillaError("UNKNOWN_TOPIC_OR_PARTITION", `topic "${topic}" has no partition ${partition} (it has ${t.partitions.length})`);
    if (p.leaderId < 0) throw new FlotillaError("LEADER_NOT_AVAILABLE", `partition ${topic}-${partition} has no leader right now`);
    return { nodeId: p.leaderId, leaderEpoch: p.leaderEpoch, connection: this.connectionTo(p.leaderId) };
  }

  close(): void {
    this.pool.closeAll();
  }

  private candidateAddresses(): string[] {
    const known = this.brokerList()
      .filter((b) => !b.fenced)
      .map((b) => `${b.host}:${b.port}`);
    const all = [...known];
    for (const a of this.deps.bootstrapServers) if (!all.includes(a)) all.push(a);
    return all;
  }

  private apply(res: MetadataResponse): void {
    this.clusterIdValue = res.clusterId;
    this.controllerIdValue = res.controllerId;
    this.brokers.clear();
    for (const b of res.brokers) this.brokers.set(b.nodeId, { nodeId: b.nodeId, host: b.host, port: b.port, rack: b.rack, fenced: b.fenced });
    for (const t of res.topics) {
      const err = errorFromFields(t.errorCode, t.errorMessage);
      if (err) {
        this.topics.delete(t.name);
        this.topicErrors.set(t.name, new FlotillaError(err.errorName, `topic "${t.name}": ${t.errorMessage || err.message}`));
        continue;
      }
      this.topicErrors.delete(t.name);
      const partitions = [...t.partitions]
        .sort((a, b) => a.partition - b.partition)
        .map((p) => ({
          partition: p.partition,
          leaderId: p.leaderId,
          leaderEpoch: p.leaderEpoch,
          replicas: p.replicas,
          isr: p.isr,
          offlineReplicas: p.offlineReplicas,
          error: errorFromFields(p.errorCode, ""),
        }));
      partitions.forEach((p, i) => {
        if (p.partition !== i) throw new FlotillaError("UNKNOWN_SERVER_ERROR", `metadata for topic "${t.name}" lists partition ${p.partition} at position ${i}; partitions must be numbered 0..n-1`);
      });
      this.topics.set(t.name, { name: t.name, topicId: t.topicId, isInternal: t.isInternal, partitions });
    }
    // Topics asked for but absent from the answer are unknown to the cluster.
    const answered = new Set(res.topics.map((t) => t.name));
    for (const name of this.wanted) {
      if (!answered.has(name)) {
        this.topics.delete(name);
        this.topicErrors.set(name, new FlotillaError("UNKNOWN_TOPIC_OR_PARTITION", `topic "${name}" does not exist`));
      }
    }
    this.refreshedAtMs = this.deps.clock.monotonicMs();
    this.stale = false;
  }
}

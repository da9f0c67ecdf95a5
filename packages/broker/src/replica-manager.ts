/**
 * The partitions this broker hosts, kept in step with the metadata image (Kafka's
 * ReplicaManager + the broker's metadata publisher). Images are applied one at a time,
 * in offset order: deleted topics first (their logs closed and their directories
 * removed), then new and changed partitions (logs opened or created), then config
 * changes. `appliedOffset` says how far it got; request handlers that changed metadata
 * wait on it so that their caller sees the change here too. Retention runs in the
 * storage's LogManager.
 *
 * Replication (Kafka's pull model). For each partition of the image that lists this
 * broker as a replica, Partition.applyRegistration decides the role; a follower is handed
 * to the ReplicaFetcherManager (one fetcher per leader broker), a leader is taken from it.
 * As leader, a timer every replica.lag.time.max.ms / 2 shrinks ISRs of lagging followers
 * through the controller channel. High watermarks are checkpointed to each log dir's
 * replication-offset-checkpoint every highWatermarkCheckpointIntervalMs and at close, and
 * read back when a partition is first opened.
 */
import { dirname } from "node:path";
import { FlotillaError, type Clock } from "@flotilla/common";
import type { Logger } from "@flotilla/common/logger";
import { systemClock } from "@flotilla/common/node";
import { EMPTY_IMAGE, resolveTopicConfig, type MetadataChanges, type MetadataImage, type TopicConfig } from "@flotilla/metadata";
import type { LogConfig, PartitionLog } from "@flotilla/storage";
import type { ControllerChannel } from "./controller-channel.js";
import { FetchPurgatory } from "./fetch-purgatory.js";
import { REPLICA_WAKE_SUFFIX } from "./fetch.js";
import { readOffsetCheckpoint, writeOffsetCheckpoint } from "./offset-checkpoint.js";
import { Partition, type PartitionListener } from "./partition.js";
import { ProducePurgatory } from "./produce-purgatory.js";
import { REPLICA_FETCHER_DEFAULTS, ReplicaFetcherManager, grpcReplicaClientFactory, type LeaderEndpoint, type ReplicaClientFactory, type ReplicaFetcherConfig } from "./replica-fetcher.js";

/** What the broker needs from the storage's LogManager (which satisfies it). */
export interface PartitionLogStore {
  /** Opens the partition's log, creating its directory if needed. */
  getOrCreate(topic: string, partition: number, config: LogConfig): Promise<PartitionLog>;
  /** Closes the log and removes its directory; a no-op if it is not there. */
  delete(topic: string, partition: number): Promise<unknown>;
  /** Every open log, including those found on disk at start-up. */
  all(): PartitionLog[];
  closeAll(): Promise<void>;
}

/** The storage settings of a topic's partitions. */
export function toLogConfig(t: TopicConfig): LogConfig {
  // "Never" (Long.MAX_VALUE) becomes undefined: the storage then leaves fsync to the OS.
  const never = (v: number) => (v >= Number.MAX_SAFE_INTEGER ? undefined : v);
  const config: LogConfig = {
    segmentBytes: t.segmentBytes,
    segmentMs: t.segmentMs,
    retentionMs: t.retentionMs,
    retentionBytes: t.retentionBytes,
    indexIntervalBytes: t.indexIntervalBytes,
    segmentIndexBytes: t.segmentIndexBytes,
    cleanupPolicy: t.cleanupPolicy,
    minCleanableDirtyRatio: t.minCleanableDirtyRatio,
    deleteRetentionMs: t.deleteRetentionMs,
    minCompactionLagMs: t.minCompactionLagMs,
  };
  const flushMessages = never(t.flushMessages);
  const flushMs = never(t.flushMs);
  if (flushMessages !== undefined) config.flushIntervalMessages = flushMessages;
  if (flushMs !== undefined) config.flushIntervalMs = flushMs;
  return config;
}

export interface ReplicaManagerOptions {
  readonly nodeId: number;
  readonly logs: PartitionLogStore;
  /** Broker defaults under the topic overrides. */
  readonly topicDefaults: TopicConfig;
  readonly logger: Logger;
  /** Most fetches parked at once. */
  readonly parkedFetchesMax: number;
  /** Most acks=all produces waiting for replication at once. Default 1000. */
  readonly parkedProducesMax?: number;
  /**
   * The channel to the active controller, for AlterPartition (ISR changes). Without it the
   * ISR never changes (a single node).
   */
  readonly controllerChannel?: Pick<ControllerChannel, "alterPartition">;
  /** This broker's epoch from its registration (read at each AlterPartition; -1 before). */
  readonly brokerEpoch?: () => number;
  /** replica.lag.time.max.ms (Kafka's default 30000). */
  readonly replicaLagTimeMaxMs?: number;
  /** replica.fetch.* settings; Kafka's defaults for those left out. */
  readonly replicaFetch?: Partial<ReplicaFetcherConfig>;
  /** How followers reach leaders; gRPC to the leader's advertised endpoint by default. */
  readonly replicaClientFactory?: ReplicaClientFactory;
  /** Listener whose endpoint followers connect to (the first a broker registered when absent). */
  readonly listenerName?: string;
  /** replica.high.watermark.checkpoint.interval.ms (Kafka's default 5000). */
  readonly highWatermarkCheckpointIntervalMs?: number;
  /** Real clock by default. */
  readonly clock?: Clock;
}

export const REPLICA_LAG_TIME_MAX_MS_DEFAULT = 30_000;
export const HIGH_WATERMARK_CHECKPOINT_INTERVAL_MS_DEFAULT = 5000;
export const PARKED_PRODUCES_MAX_DEFAULT = 1000;

interface LocalTopic {
  readonly topicId: string;
  readonly partitions: Map<number, Partition>;
}

export class ReplicaManager {
  readonly purgatory: FetchPurgatory;
  readonly producePurgatory: ProducePurgatory;
  readonly fetchers: ReplicaFetcherManager;
  private readonly topics = new Map<string, LocalTopic>();
  private applyChain: Promise<void> = Promise.resolve();
  private applied = -1;
  private offsetWaiters: { offset: number; resolve: () => void }[] = [];
  private closed = false;
  private image: MetadataImage = EMPTY_IMAGE;
  private readonly clock: Clock;
  private readonly listener: PartitionListener;
  /** Log dir -> its high-watermark checkpoint as read at first use. */
  private readonly checkpoints = new Map<string, Promise<Map<string, number>>>();
  private readonly timers: ReturnType<typeof setInterval>[] = [];
  private checkpointing: Promise<void> = Promise.resolve();

  constructor(private readonly options: ReplicaManagerOptions) {
    this.purgatory = new FetchPurgatory(options.parkedFetchesMax);
    this.producePurgatory = new ProducePurgatory(options.parkedProducesMax ?? PARKED_PRODUCES_MAX_DEFAULT);
    this.clock = options.clock ?? systemClock;
    const channel = options.controllerChannel;
    const replicaLagTimeMaxMs = options.replicaLagTimeMaxMs ?? REPLICA_LAG_TIME_MAX_MS_DEFAULT;
    this.listener = {
      onHighWatermark: (p) => {
        this.purgatory.wake(p.key);
        this.producePurgatory.check(p);
      },
      onLeaderAppend: (p) => this.purgatory.wake(p.key + REPLICA_WAKE_SUFFIX),
      onStateChange: (p) => {
        this.producePurgatory.check(p);
        // Fetches parked on a partition that changed role answer now (NOT_LEADER_OR_FOLLOWER).
        this.purgatory.wake(p.key);
        this.purgatory.wake(p.key + REPLICA_WAKE_SUFFIX);
      },
      alterPartition: channel
        ? (request) => channel.alterPartition({ ...request, brokerId: options.nodeId, brokerEpoch: options.brokerEpoch?.() ?? -1 })
        : undefined,
      replicaLagTimeMaxMs,
      nowMs: () => this.clock.monotonicMs(),
      logger: options.logger,
    };
    this.fetchers = new ReplicaFetcherManager({
      nodeId: options.nodeId,
      config: { ...REPLICA_FETCHER_DEFAULTS, ...options.replicaFetch },
      clientFactory: options.replicaClientFactory ?? grpcReplicaClientFactory,
      resolveEndpoint: (brokerId) => this.endpointOf(brokerId),
      monotonicMs: () => this.clock.monotonicMs(),
      logger: options.logger.child({ component: "replica-fetcher" }),
    });
    // Kafka checks ISR lag every replica.lag.time.max.ms / 2.
    this.timers.push(setInterval(() => this.maybeShrinkIsrs(), Math.max(10, Math.floor(replicaLagTimeMaxMs / 2))));
    this.timers.push(setInterval(() => void this.checkpointHighWatermarks(), options.highWatermarkCheckpointIntervalMs ?? HIGH_WATERMARK_CHECKPOINT_INTERVAL_MS_DEFAULT));
    for (const t of this.timers) t.unref?.();
  }

  private endpointOf(brokerId: number): LeaderEndpoint | undefined {
    const b = this.image.brokers.get(brokerId);
    if (!b || b.endpoints.length === 0) return undefined;
    const e = (this.options.listenerName ? b.endpoints.find((x) => x.name === this.options.listenerName) : undefined) ?? b.endpoints[0]!;
    return { brokerId, host: e.host, port: e.port };
  }

  /** Leader partitions drop followers that lag more than replica.lag.time.max.ms. */
  maybeShrinkIsrs(): void {
    if (this.closed) return;
    for (const p of this.allPartitions()) if (p.isLeader) p.maybeShrinkIsr();
  }

  /** Writes every log dir's replication-offset-checkpoint (one write at a time). */
  checkpointHighWatermarks(): Promise<void> {
    const run = this.checkpointing.then(async () => {
      const byDir = new Map<string, { topic: string; partition: number; offset: number }[]>();
      for (const p of this.allPartitions()) {
        const dir = dirname(p.log.dir);
        const list = byDir.get(dir) ?? [];
        list.push({ topic: p.topic, partition: p.partition, offset: p.highWatermark });
        byDir.set(dir, list);
      }
      for (const [dir, entries] of byDir) {
        try {
          await writeOffsetCheckpoint(dir, entries);
        } catch (err) {
          this.options.logger.warn({ err, dir }, "writing the high-watermark checkpoint failed");
        }
      }
    });
    this.checkpointing = run;
    return run;
  }

  private async checkpointedHighWatermark(log: PartitionLog): Promise<number | undefined> {
    const dir = dirname(log.dir);
    let loaded = this.checkpoints.get(dir);
    if (!loaded) {
      loaded = readOffsetCheckpoint(dir).catch((err: unknown) => {
        // Only a starting point: the HW is recomputed from the ISR.
        this.options.logger.warn({ err, dir }, "ignoring an unreadable high-watermark checkpoint");
        return new Map<string, number>();
      });
      this.checkpoints.set(dir, loaded);
    }
    return (await loaded).get(`${log.topic}-${log.partition}`);
  }

  get nodeId(): number {
    return this.options.nodeId;
  }

  /** Offset of the last metadata image fully applied here. */
  get appliedOffset(): number {
    return this.applied;
  }

  /** The partition hosted here, or UNKNOWN_TOPIC_OR_PARTITION naming what is missing. */
  partition(topic: string, partition: number): Partition {
    const t = this.topics.get(topic);
    if (!t) throw new FlotillaError("UNKNOWN_TOPIC_OR_PARTITION", `topic "${topic}" is not hosted on broker ${this.options.nodeId}`);
    const p = t.partitions.get(partition);
    if (!p) throw new FlotillaError("UNKNOWN_TOPIC_OR_PARTITION", `partition ${partition} of topic "${topic}" is not hosted on broker ${this.options.nodeId}`);
    return p;
  }

  allPartitions(): Partition[] {
    return [...this.topics.values()].flatMap((t) => [...t.partitions.values()]);
  }

  /** Queues an image for application; images must arrive in offset order. */
  applyImage(image: MetadataImage, changes: MetadataChanges): Promise<void> {
    const run = this.applyChain.then(async () => {
      if (this.closed || image.offset <= this.applied) return;
      try {
        await this.apply(image, changes);
      } catch (err) {
        // A partition that cannot open stays offline; the rest of the image still applies.
        this.options.logger.error({ err, offset: image.offset }, "applying metadata image failed");
      }
      this.applied = image.offset;
      const ready = this.offsetWaiters.filter((w) => w.offset <= this.applied);
      this.offsetWaiters = this.offsetWaiters.filter((w) => w.offset > this.applied);
      for (const w of ready) w.resolve();
    });
    this.applyChain = run;
    return run;
  }

  /** Resolves once every image up to `offset` has been applied here. */
  waitForOffset(offset: number): Promise<void> {
    if (this.applied >= offset) return Promise.resolve();
    return new Promise((resolve) => this.offsetWaiters.push({ offset, resolve }));
  }

  private topicConfigOf(image: MetadataImage, name: string): TopicConfig {
    return resolveTopicConfig(image.configs.topic.get(name), this.options.topicDefaults);
  }

  private async apply(image: MetadataImage, changes: MetadataChanges): Promise<void> {
    this.image = image;
    for (const [topicId, old] of changes.deletedTopics) await this.removeTopic(old.name, topicId);

    for (const [topicId, partitionIds] of changes.changedPartitions) {
      const topic = image.topicsById.get(topicId);
      if (!topic) continue;
      const config = this.topicConfigOf(image, topic.name);
      for (const partitionId of [...partitionIds].sort((a, b) => a - b)) {
        const registration = topic.partitions.get(partitionId);
        if (!registration || !registration.replicas.includes(this.options.nodeId)) {
          // Moved off this broker (reassignment): stop following it. Its log stays until
          // the next start deletes strays.
          const gone = this.topics.get(topic.name)?.partitions.get(partitionId);
          if (gone && gone.topicId === topicId && registration) {
            this.fetchers.unfollow(gone);
            gone.applyRegistration(registration);
          }
          continue;
        }
        let local = this.topics.get(topic.name);
        if (local && local.topicId !== topicId) {
          // A topic of the same name that this broker missed the deletion of.
          await this.removeTopic(topic.name, local.topicId);
          local = undefined;
        }
        const existing = local?.partitions.get(partitionId);
        if (existing) {
          existing.applyRegistration(registration);
          this.reconcileFetcher(existing);
          continue;
        }
        const log = await this.options.logs.getOrCreate(topic.name, partitionId, toLogConfig(config));
        const checkpointed = await this.checkpointedHighWatermark(log);
        const p = new Partition(topic.name, topicId, partitionId, log, this.options.nodeId, registration, config, this.listener, checkpointed);
        if (!local) this.topics.set(topic.name, (local = { topicId, partitions: new Map() }));
        local.partitions.set(partitionId, p);
        this.options.logger.info({ topic: topic.name, partition: partitionId, leaderEpoch: registration.leaderEpoch, logEndOffset: log.logEndOffset, highWatermark: p.highWatermark, role: p.role }, "hosting partition");
        this.reconcileFetcher(p);
      }
    }

    // A leader that re-registered (a restart) may have a new endpoint; the fetchers
    // re-resolve it on their next connection. Nothing else to do for broker changes.

    for (const name of changes.topicConfigs) {
      const local = this.topics.get(name);
      if (!local) continue;
      const config = this.topicConfigOf(image, name);
      for (const p of local.partitions.values()) p.updateConfig(config, toLogConfig(config));
    }
  }

  /** A follower fetches from its leader in its epoch; anything else fetches from nobody. */
  private reconcileFetcher(p: Partition): void {
    if (this.closed) return;
    if (p.role === "follower") this.fetchers.follow(p);
    else this.fetchers.unfollow(p);
  }

  private async removeTopic(name: string, topicId: string): Promise<void> {
    const local = this.topics.get(name);
    if (!local || local.topicId !== topicId) return;
    // Unlist first, so that requests stop finding it, then wake its fetches to answer.
    this.topics.delete(name);
    for (const p of local.partitions.values()) {
      this.fetchers.unfollow(p);
      p.markRemoved();
    }
    for (const p of local.partitions.values()) {
      await this.options.logs.delete(name, p.partition);
      this.options.logger.info({ topic: name, partition: p.partition }, "deleted partition");
    }
  }

  /**
   * Deletes logs on disk that the image does not give this broker (a topic deleted while
   * the broker was down, or before a crash finished removing it), as Kafka removes stray
   * logs. Call after the first image has been applied.
   */
  async deleteStrayLogs(image: MetadataImage): Promise<void> {
    for (const log of this.options.logs.all()) {
      const topic = image.topicsByName.get(log.topic);
      const registration = topic?.partitions.get(log.partition);
      if (registration && registration.replicas.includes(this.options.nodeId)) continue;
      this.options.logger.warn({ topic: log.topic, partition: log.partition }, "deleting a partition log the metadata does not assign to this broker");
      await this.options.logs.delete(log.topic, log.partition);
    }
  }

  /** Answers parked fetches and produces; requests may still run. */
  beginShutdown(): void {
    this.purgatory.close();
    this.producePurgatory.close();
  }

  /**
   * Waits for metadata work, stops the replica fetchers, checkpoints the high watermarks,
   * then closes every log (each writes its clean-shutdown marker).
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.beginShutdown();
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    await this.applyChain;
    await this.fetchers.close();
    await this.checkpointHighWatermarks();
    this.topics.clear();
    await this.options.logs.closeAll();
  }
}

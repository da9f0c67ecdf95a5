/**
 * The partitions this broker hosts, kept in step with the metadata image (Kafka's
 * ReplicaManager + the broker's metadata publisher). Images are applied one at a time,
 * in offset order: deleted topics first (their logs closed and their directories
 * removed), then new and changed partitions (logs opened or created), then config
 * changes. `appliedOffset` says how far it got; request handlers that changed metadata
 * wait on it so that their caller sees the change here too. Retention runs in the
 * storage's LogManager.
 */
import { FlotillaError } from "@flotilla/common";
import type { Logger } from "@flotilla/common/logger";
import { resolveTopicConfig, type MetadataChanges, type MetadataImage, type TopicConfig } from "@flotilla/metadata";
import type { LogConfig, PartitionLog } from "@flotilla/storage";
import { FetchPurgatory } from "./fetch-purgatory.js";
import { Partition } from "./partition.js";

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
}

interface LocalTopic {
  readonly topicId: string;
  readonly partitions: Map<number, Partition>;
}

export class ReplicaManager {
  readonly purgatory: FetchPurgatory;
  private readonly topics = new Map<string, LocalTopic>();
  private applyChain: Promise<void> = Promise.resolve();
  private applied = -1;
  private offsetWaiters: { offset: number; resolve: () => void }[] = [];
  private closed = false;

  constructor(private readonly options: ReplicaManagerOptions) {
    this.purgatory = new FetchPurgatory(options.parkedFetchesMax);
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
    for (const [topicId, old] of changes.deletedTopics) await this.removeTopic(old.name, topicId);

    for (const [topicId, partitionIds] of changes.changedPartitions) {
      const topic = image.topicsById.get(topicId);
      if (!topic) continue;
      const config = this.topicConfigOf(image, topic.name);
      for (const partitionId of [...partitionIds].sort((a, b) => a - b)) {
        const registration = topic.partitions.get(partitionId);
        if (!registration || !registration.replicas.includes(this.options.nodeId)) continue;
        let local = this.topics.get(topic.name);
        if (local && local.topicId !== topicId) {
          // A topic of the same name that this broker missed the deletion of.
          await this.removeTopic(topic.name, local.topicId);
          local = undefined;
        }
        const existing = local?.partitions.get(partitionId);
        if (existing) {
          existing.updateRegistration(registration);
          continue;
        }
        const log = await this.options.logs.getOrCreate(topic.name, partitionId, toLogConfig(config));
        const p = new Partition(topic.name, topicId, partitionId, log, this.options.nodeId, registration, config, (x) => this.purgatory.wake(x.key));
        if (!local) this.topics.set(topic.name, (local = { topicId, partitions: new Map() }));
        local.partitions.set(partitionId, p);
        this.options.logger.info({ topic: topic.name, partition: partitionId, leaderEpoch: registration.leaderEpoch, logEndOffset: log.logEndOffset, leader: registration.leader === this.options.nodeId }, "hosting partition");
      }
    }

    for (const name of changes.topicConfigs) {
      const local = this.topics.get(name);
      if (!local) continue;
      const config = this.topicConfigOf(image, name);
      for (const p of local.partitions.values()) p.updateConfig(config, toLogConfig(config));
    }
  }

  private async removeTopic(name: string, topicId: string): Promise<void> {
    const local = this.topics.get(name);
    if (!local || local.topicId !== topicId) return;
    // Unlist first, so that requests stop finding it, then wake its fetches to answer.
    this.topics.delete(name);
    for (const p of local.partitions.values()) this.purgatory.wake(p.key);
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

  /** Answers parked fetches; requests may still run. */
  beginShutdown(): void {
    this.purgatory.close();
  }

  /** Waits for metadata work, then closes every log (each writes its clean-shutdown marker). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.beginShutdown();
    this.closed = true;
    await this.applyChain;
    this.topics.clear();
    await this.options.logs.closeAll();
  }
}

/**
 * One partition replica hosted by this broker: its log, its role from the metadata
 * image, and (as leader) its high watermark.
 *
 * High watermark (Kafka's model): the smallest log end offset over the in-sync replicas.
 * The leader knows its own log end offset and, once followers fetch, theirs
 * (`followerLogEndOffsets`); with an ISR of the leader alone the high watermark is the
 * log end offset right after each append. It never moves back. Every move bumps
 * `hwVersion` and calls `onHighWatermark`, which wakes fetches parked on the partition.
 */
import { FlotillaError } from "@flotilla/common";
import type { PartitionRegistration, TopicConfig } from "@flotilla/metadata";
import { setLogAppendTime, validateBatches } from "@flotilla/protocol";
import type { PartitionLog } from "@flotilla/storage";

export interface AppendResult {
  readonly baseOffset: number;
  readonly lastOffset: number;
  /** The append time stamped into LogAppendTime batches, else -1. */
  readonly logAppendTimeMs: number;
  readonly logStartOffset: number;
}

export class Partition {
  private hw: number;
  /** Incremented whenever the high watermark moves (fetches compare it to spot missed wakes). */
  hwVersion = 0;
  /** Log end offsets reported by followers, by broker id (empty until replication exists). */
  private readonly followerLogEndOffsets = new Map<number, number>();

  constructor(
    readonly topic: string,
    readonly topicId: string,
    readonly partition: number,
    readonly log: PartitionLog,
    readonly nodeId: number,
    private registration: PartitionRegistration,
    private topicConfig: TopicConfig,
    private readonly onHighWatermark: (p: Partition) => void,
  ) {
    // A leader whose ISR is itself alone has every record it holds committed. Otherwise
    // start at the log start and let follower fetches move it (Kafka checkpoints the HW;
    // a new leader recomputes it from the ISR the same way).
    this.hw = this.isrIsLeaderAlone() ? log.logEndOffset : log.logStartOffset;
  }

  get key(): string {
    return `${this.topic}-${this.partition}`;
  }

  get highWatermark(): number {
    return this.hw;
  }

  get leaderEpoch(): number {
    return this.registration.leaderEpoch;
  }

  get isLeader(): boolean {
    return this.registration.leader === this.nodeId;
  }

  get isr(): readonly number[] {
    return this.registration.isr;
  }

  get config(): TopicConfig {
    return this.topicConfig;
  }

  private isrIsLeaderAlone(): boolean {
    return this.registration.leader === this.nodeId && this.registration.isr.length === 1 && this.registration.isr[0] === this.nodeId;
  }

  /** A new registration from the metadata image (leader, ISR, epochs). */
  updateRegistration(registration: PartitionRegistration): void {
    this.registration = registration;
    this.maybeIncrementHighWatermark();
  }

  updateConfig(config: TopicConfig, logConfig: Parameters<PartitionLog["updateConfig"]>[0]): void {
    this.topicConfig = config;
    this.log.updateConfig(logConfig);
  }

  /** Recomputes the high watermark as min LEO over the ISR; moves it forward only. */
  maybeIncrementHighWatermark(): void {
    if (!this.isLeader) return;
    let candidate = this.log.logEndOffset;
    for (const id of this.registration.isr) {
      if (id === this.nodeId) continue;
      candidate = Math.min(candidate, this.followerLogEndOffsets.get(id) ?? this.hw);
    }
    if (candidate > this.hw) {
      this.hw = candidate;
      this.hwVersion++;
      this.onHighWatermark(this);
    }
  }

  /**
   * Leader append of a produce request's bytes: checks each batch (whole, CRC, at most
   * max.message.bytes), stamps LogAppendTime when the topic asks for it, appends, and
   * moves the high watermark. Nothing is written when any check fails.
   */
  async appendAsLeader(records: Buffer, options: { acks: number; nowMs: number }): Promise<AppendResult> {
    if (!this.isLeader) throw new FlotillaError("NOT_LEADER_OR_FOLLOWER", `broker ${this.nodeId} is not the leader of ${this.key} (leader ${this.registration.leader})`);
    if (records.length === 0) throw new FlotillaError("INVALID_REQUEST", `produce to ${this.key} carries no record batch`);
    const batches = validateBatches(records);
    const maxMessageBytes = this.topicConfig.maxMessageBytes;
    for (const b of batches) {
      if (b.size > maxMessageBytes) {
        throw new FlotillaError("MESSAGE_TOO_LARGE", `record batch of ${b.size} bytes at byte ${b.pos} is larger than max.message.bytes ${maxMessageBytes} of topic ${this.topic}`);
      }
    }
    if (options.acks === -1 && this.registration.isr.length < this.topicConfig.minInsyncReplicas) {
      throw new FlotillaError("NOT_ENOUGH_REPLICAS", `${this.key} has ${this.registration.isr.length} in-sync replicas, fewer than min.insync.replicas ${this.topicConfig.minInsyncReplicas}`);
    }
    let logAppendTimeMs = -1;
    if (this.topicConfig.messageTimestampType === "LogAppendTime") {
      logAppendTimeMs = options.nowMs;
      for (const b of batches) setLogAppendTime(records, b.pos, logAppendTimeMs);
    }
    const info = await this.log.appendAsLeader(records, { leaderEpoch: this.registration.leaderEpoch });
    this.maybeIncrementHighWatermark();
    return { baseOffset: info.baseOffset, lastOffset: info.lastOffset, logAppendTimeMs, logStartOffset: this.log.logStartOffset };
  }

  /** Checks a client's leader epoch against ours (-1 = not checked), Kafka's fencing rule. */
  checkLeaderEpoch(currentLeaderEpoch: number): void {
    if (currentLeaderEpoch < 0) return;
    if (currentLeaderEpoch < this.leaderEpoch) {
      throw new FlotillaError("FENCED_LEADER_EPOCH", `leader epoch ${currentLeaderEpoch} in the request is older than ${this.leaderEpoch} of ${this.key}`);
    }
    if (currentLeaderEpoch > this.leaderEpoch) {
      throw new FlotillaError("UNKNOWN_LEADER_EPOCH", `leader epoch ${currentLeaderEpoch} in the request is newer than ${this.leaderEpoch} of ${this.key}`);
    }
  }

  /**
   * Offset of the first batch holding the largest timestamp (ListOffsets -3), from the
   * segments' largest timestamps and the time index; undefined for an empty log.
   */
  async maxTimestampOffset(): Promise<{ offset: number; timestamp: number } | undefined> {
    let maxTimestamp = -1;
    for (const s of this.log.segmentInfos()) maxTimestamp = Math.max(maxTimestamp, s.maxTimestamp);
    if (maxTimestamp < 0) return undefined;
    return this.log.offsetForTimestamp(maxTimestamp);
  }
}

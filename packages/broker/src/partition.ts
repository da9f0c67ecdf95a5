/**
 * One partition replica hosted by this broker: its log, its role from the metadata image
 * (leader or follower, Kafka's makeLeader / makeFollower), and as leader the replication
 * state of its followers.
 *
 * Roles. `applyRegistration` takes the partition's registration from each image. A higher
 * leader epoch starts a new role even if the leader id is the same; a higher partition
 * epoch in the same leader epoch only changes the ISR or replicas; an older registration
 * (the image lags an AlterPartition answer already applied) is ignored.
 *
 * High watermark (Kafka's model): as leader, the smallest log end offset over the ISR,
 * where followers report theirs with each fetch (fetch_offset = their log end offset).
 * While an ISR change is in flight the HW is taken over the larger of the two sets
 * (Kafka's "maximal ISR"), so that it is safe whichever way the controller decides. It
 * never moves back. As follower, min(leader's HW, own log end offset). Every move bumps
 * `hwVersion` and calls `listener.onHighWatermark`.
 *
 * ISR (leader only). A follower whose fetch reached the leader's log end offset is "caught
 * up" at that time (or, if it reached the end as of its previous fetch, at that fetch's
 * time). One that has not been caught up for replica.lag.time.max.ms is removed; one whose
 * log end offset reached the HW and the start of the current epoch is added back. Both go
 * through the controller (AlterPartition, a compare-and-set on leader and partition
 * epoch), one request at a time; a refused change waits for the next image.
 */
import { FlotillaError } from "@flotilla/common";
import type { Logger } from "@flotilla/common/logger";
import type { PartitionRegistration, TopicConfig } from "@flotilla/metadata";
import { setLogAppendTime, validateBatchRecords, validateBatches } from "@flotilla/protocol";
import type { PartitionLog } from "@flotilla/storage";
import type { AlterPartitionCall, AlterPartitionReply } from "./controller-channel.js";
import { ProducerStateManager } from "./producer-state.js";

export interface AppendResult {
  readonly baseOffset: number;
  readonly lastOffset: number;
  /** The append time stamped into LogAppendTime batches, else -1. */
  readonly logAppendTimeMs: number;
  readonly logStartOffset: number;
}

/** What a partition tells its owner and asks of it. */
export interface PartitionListener {
  /** The high watermark moved: wake consumer fetches, complete acks=all produces. */
  onHighWatermark(p: Partition): void;
  /** The leader's log end offset moved: wake replica fetches. */
  onLeaderAppend(p: Partition): void;
  /** Role, leader epoch or ISR changed: parked produces re-check their outcome. */
  onStateChange(p: Partition): void;
  /** AlterPartition at the controller; undefined when this broker has no controller channel. */
  readonly alterPartition: ((request: Omit<AlterPartitionCall, "brokerId" | "brokerEpoch">) => Promise<AlterPartitionReply>) | undefined;
  readonly replicaLagTimeMaxMs: number;
  nowMs(): number;
  readonly logger: Logger;
}

export type PartitionRole = "leader" | "follower" | "none";

/** What the leader knows of one follower (Kafka's Replica state). */
interface FollowerState {
  /** -1 until the follower's first fetch in this leader epoch. */
  logEndOffset: number;
  lastCaughtUpTimeMs: number;
  /** The leader's log end offset and the time at the follower's previous fetch. */
  lastFetchLeaderLogEndOffset: number;
  lastFetchTimeMs: number;
}

/** After a failed AlterPartition call (controller unreachable), wait this long before another. */
export const ISR_CHANGE_RETRY_BACKOFF_MS = 1000;
/**
 * After the controller refused an ISR change, retry it this long later even if the partition
 * epoch has not moved: some refusals end without a partition change (a follower that was still
 * fenced is unfenced by a broker record), as Kafka retries after INELIGIBLE_REPLICA.
 */
export const ISR_CHANGE_REFUSED_RETRY_MS = 2000;
/**
 * How long an idempotent batch that arrived ahead of its producer's sequence waits for the
 * earlier batches (see appendAsLeader) before it is answered OUT_OF_ORDER_SEQUENCE_NUMBER.
 * Reordered calls arrive within milliseconds of each other; a batch whose predecessor was
 * lost for good pays this once, and a predecessor's retry within it still lets it through.
 */
export const SEQUENCE_GAP_WAIT_MS = 500;
/** Bound on the re-checks of one such wait (each follows an append of the same producer). */
const SEQUENCE_GAP_WAKEUPS_MAX = 64;

export class Partition {
  private hw: number;
  /** Incremented whenever the high watermark moves (fetches compare it to spot missed wakes). */
  hwVersion = 0;
  /** Idempotent producers' sequences in this log (./producer-state.ts); loaded on first use. */
  readonly producerState: ProducerStateManager;
  private currentRole: PartitionRole = "none";
  private readonly followers = new Map<number, FollowerState>();
  /** The log end offset when this broker became leader in the current epoch. */
  private leaderEpochStartOffset = 0;
  /** ISR proposed to the controller and not yet answered. */
  private pendingIsr: readonly number[] | undefined;
  /** After a refused AlterPartition: no new one until the partition epoch moves past this, or until isrChangeBlockedUntilMs. */
  private isrChangeBlockedAtPartitionEpoch = -1;
  private isrChangeBlockedUntilMs = 0;
  private isrChangeRetryAtMs = 0;
  private removed = false;

  constructor(
    readonly topic: string,
    readonly topicId: string,
    readonly partition: number,
    readonly log: PartitionLog,
    readonly nodeId: number,
    private registration: PartitionRegistration,
    private topicConfig: TopicConfig,
    private readonly listener: PartitionListener,
    /** The high watermark from this broker's checkpoint, if it has one for this partition. */
    checkpointedHighWatermark?: number,
  ) {
    this.producerState = new ProducerStateManager(`${topic}-${partition}`);
    // A leader whose ISR is itself alone has every record it holds committed. Otherwise
    // start from the checkpoint (Kafka's replication-offset-checkpoint), else from the log
    // start, and let fetches move it.
    if (registration.leader === nodeId && registration.isr.length === 1 && registration.isr[0] === nodeId) this.hw = log.logEndOffset;
    else this.hw = Math.min(log.logEndOffset, Math.max(log.logStartOffset, checkpointedHighWatermark ?? log.logStartOffset));
    this.becomeRole();
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

  /**
   * Leader: whether the high watermark is known in this leader epoch, i.e. it has reached
   * the log end offset this broker had when it became leader. Until then it may be the
   * stale value a follower carried over (Kafka's leaderEpochStartOffset check), so
   * ListOffsets answers OFFSET_NOT_AVAILABLE rather than an offset that is too old.
   */
  get highWatermarkKnown(): boolean {
    return this.hw >= this.leaderEpochStartOffset;
  }

  get partitionEpoch(): number {
    return this.registration.partitionEpoch;
  }

  get leaderId(): number {
    return this.registration.leader;
  }

  get role(): PartitionRole {
    return this.currentRole;
  }

  get isLeader(): boolean {
    return this.currentRole === "leader";
  }

  get isr(): readonly number[] {
    return this.registration.isr;
  }

  get replicas(): readonly number[] {
    return this.registration.replicas;
  }

  get config(): TopicConfig {
    return this.topicConfig;
  }

  /** The follower's log end offset as the leader last heard it, -1 if unknown (tests, diagnostics). */
  followerLogEndOffset(replicaId: number): number {
    return this.followers.get(replicaId)?.logEndOffset ?? -1;
  }

  /** The ISR the high watermark is computed over: the current one plus any proposed addition. */
  private maximalIsr(): readonly number[] {
    if (!this.pendingIsr) return this.registration.isr;
    return [...new Set([...this.registration.isr, ...this.pendingIsr])];
  }

  /**
   * A registration from the metadata image. Returns "new-role" when this broker must
   * (re)start as leader or follower (a new leader epoch or the first registration),
   * "updated" for an ISR/replica change within the epoch, "stale" when ignored.
   */
  applyRegistration(registration: PartitionRegistration): "new-role" | "updated" | "stale" {
    const current = this.registration;
    if (registration.leaderEpoch < current.leaderEpoch || (registration.leaderEpoch === current.leaderEpoch && registration.partitionEpoch < current.partitionEpoch)) {
      return "stale";
    }
    this.registration = registration;
    if (registration.partitionEpoch !== current.partitionEpoch) this.pendingIsr = undefined;
    const hostedHere = registration.replicas.includes(this.nodeId) && !this.removed;
    if (registration.leaderEpoch > current.leaderEpoch || registration.leader !== current.leader || (this.currentRole === "none") === hostedHere) {
      this.becomeRole();
      this.listener.onStateChange(this);
      return "new-role";
    }
    if (this.isLeader) {
      // Followers that joined the replicas get a state; ones that left lose theirs.
      for (const id of registration.replicas) if (id !== this.nodeId && !this.followers.has(id)) this.followers.set(id, this.freshFollowerState(false));
      for (const id of [...this.followers.keys()]) if (!registration.replicas.includes(id)) this.followers.delete(id);
      this.maybeIncrementHighWatermark();
    }
    this.listener.onStateChange(this);
    return "updated";
  }

  private freshFollowerState(inIsr: boolean): FollowerState {
    // Kafka's makeLeader: ISR members count as caught up now, so none is dropped before it
    // had replica.lag.time.max.ms to fetch from the new leader.
    const now = this.listener.nowMs();
    return { logEndOffset: -1, lastCaughtUpTimeMs: inIsr ? now : 0, lastFetchLeaderLogEndOffset: -1, lastFetchTimeMs: 0 };
  }

  private becomeRole(): void {
    const r = this.registration;
    this.followers.clear();
    this.pendingIsr = undefined;
    this.isrChangeBlockedAtPartitionEpoch = -1;
    // Appends waiting for a producer's earlier batches re-check now (and fail fast if no longer leader).
    this.producerState.wakeAll();
    if (this.removed || !r.replicas.includes(this.nodeId) || r.leader < 0) {
      this.currentRole = "none";
      return;
    }
    if (r.leader === this.nodeId) {
      this.currentRole = "leader";
      this.leaderEpochStartOffset = this.log.logEndOffset;
      // Queued behind any append still running; a failure takes the log offline (the log logs it).
      this.log.assignEpochStartOffset(r.leaderEpoch).catch((err: unknown) => this.listener.logger.warn({ err, topic: this.topic, partition: this.partition }, "recording the new leader epoch failed"));
      for (const id of r.replicas) if (id !== this.nodeId) this.followers.set(id, this.freshFollowerState(r.isr.includes(id)));
      this.listener.logger.info({ topic: this.topic, partition: this.partition, leaderEpoch: r.leaderEpoch, isr: r.isr, logEndOffset: this.log.logEndOffset, highWatermark: this.hw }, "became leader");
      this.maybeIncrementHighWatermark();
    } else {
      this.currentRole = "follower";
      this.listener.logger.info({ topic: this.topic, partition: this.partition, leader: r.leader, leaderEpoch: r.leaderEpoch, logEndOffset: this.log.logEndOffset, highWatermark: this.hw }, "became follower");
    }
  }

  /** The partition left this broker (topic deleted): it leads and follows nothing any more. */
  markRemoved(): void {
    this.removed = true;
    this.currentRole = "none";
    this.followers.clear();
    this.producerState.wakeAll();
    this.listener.onStateChange(this);
  }

  updateConfig(config: TopicConfig, logConfig: Parameters<PartitionLog["updateConfig"]>[0]): void {
    this.topicConfig = config;
    this.log.updateConfig(logConfig);
    this.listener.onStateChange(this);
  }

  private setHighWatermark(hw: number): void {
    if (hw === this.hw) return;
    this.hw = hw;
    this.hwVersion++;
    this.listener.onHighWatermark(this);
  }

  /** Leader: recomputes the high watermark as min LEO over the (maximal) ISR; moves it forward only. */
  maybeIncrementHighWatermark(): void {
    if (!this.isLeader) return;
    let candidate = this.log.logEndOffset;
    for (const id of this.maximalIsr()) {
      if (id === this.nodeId) continue;
      const leo = this.followers.get(id)?.logEndOffset ?? -1;
      // A follower not heard from in this epoch holds the HW where it is.
      candidate = Math.min(candidate, leo < 0 ? this.hw : leo);
    }
    if (candidate > this.hw) this.setHighWatermark(candidate);
  }

  /**
   * Leader append of a produce request's bytes: checks each batch (whole, CRC, at most
   * max.message.bytes, records well formed) and, for acks=all, that the ISR has min.insync.replicas members
   * (before writing anything); stamps LogAppendTime when the topic asks for it, appends
   * with the leader epoch, and moves the high watermark.
   */
  async appendAsLeader(records: Buffer, options: { acks: number; nowMs: number }): Promise<AppendResult> {
    this.requireLeader();
    if (records.length === 0) throw new FlotillaError("INVALID_REQUEST", `produce to ${this.key} carries no record batch`);
    const batches = validateBatches(records);
    const maxMessageBytes = this.topicConfig.maxMessageBytes;
    for (const b of batches) {
      if (b.size > maxMessageBytes) {
        throw new FlotillaError("MESSAGE_TOO_LARGE", `record batch of ${b.size} bytes at byte ${b.pos} is larger than max.message.bytes ${maxMessageBytes} of topic ${this.topic}`);
      }
    }
    // A right CRC says the producer's bytes arrived intact, not that they are readable
    // records: check the records (as Kafka's LogValidator does) so no consumer is handed a
    // batch it cannot decode.
    for (const b of batches) validateBatchRecords(records, b.pos, b.size, b.header);
    if (options.acks === -1 && this.registration.isr.length < this.topicConfig.minInsyncReplicas) {
      throw new FlotillaError("NOT_ENOUGH_REPLICAS", `${this.key} has ${this.registration.isr.length} in-sync replicas (${this.registration.isr.join(",")}), fewer than min.insync.replicas ${this.topicConfig.minInsyncReplicas}`);
    }
    let logAppendTimeMs = -1;
    if (this.topicConfig.messageTimestampType === "LogAppendTime") {
      logAppendTimeMs = options.nowMs;
      for (const b of batches) setLogAppendTime(records, b.pos, logAppendTimeMs);
    }
    if (!batches.some((b) => b.header.producerId >= 0)) return this.appendToLog(records, logAppendTimeMs);
    // Idempotent batches: check sequences, append and record them with no other request in
    // between; a retry of a batch already in the log gets its original offsets back.
    // A producer pipelines up to 5 requests, each its own gRPC call, and HTTP/2 may complete
    // a later call first (its frames interleave with an earlier, larger one). A batch that
    // arrives ahead of its producer's sequence therefore waits, outside the exclusive
    // section, for that producer's next append (bounded by SEQUENCE_GAP_WAIT_MS) and checks
    // again, instead of failing OUT_OF_ORDER_SEQUENCE_NUMBER into a client retry backoff.
    const state = this.producerState;
    const headers = batches.map((b) => b.header);
    const waitUntilMs = performance.now() + SEQUENCE_GAP_WAIT_MS;
    for (let pass = 0; ; pass++) {
      const leftMs = waitUntilMs - performance.now();
      const mayWait = leftMs > 0 && pass < SEQUENCE_GAP_WAKEUPS_MAX;
      const outcome = await state.runExclusive(async (): Promise<AppendResult | { aheadOf: number }> => {
        await state.ensureLoaded(this.log);
        this.requireLeader();
        const check = state.checkLeaderAppend(headers, { waitForEarlier: mayWait });
        if (check.kind === "ahead") return { aheadOf: check.producerId };
        if (check.kind === "duplicate") {
          this.listener.logger.debug({ topic: this.topic, partition: this.partition, baseOffset: check.firstOffset }, "duplicate idempotent batch answered with its original offsets");
          return { baseOffset: check.firstOffset, lastOffset: check.lastOffset, logAppendTimeMs: -1, logStartOffset: this.log.logStartOffset };
        }
        const result = await this.appendToLog(records, logAppendTimeMs);
        state.applyBatches(records); // the log rewrote each baseOffset in place
        return result;
      });
      if (!("aheadOf" in outcome)) return outcome;
      await state.waitForAppend(outcome.aheadOf, leftMs);
    }
  }

  private async appendToLog(records: Buffer, logAppendTimeMs: number): Promise<AppendResult> {
    const leaderEpoch = this.registration.leaderEpoch;
    const info = await this.log.appendAsLeader(records, { leaderEpoch });
    this.listener.onLeaderAppend(this);
    this.maybeIncrementHighWatermark();
    return { baseOffset: info.baseOffset, lastOffset: info.lastOffset, logAppendTimeMs, logStartOffset: this.log.logStartOffset };
  }

  requireLeader(): void {
    if (!this.isLeader) throw new FlotillaError("NOT_LEADER_OR_FOLLOWER", `broker ${this.nodeId} is not the leader of ${this.key} (leader ${this.registration.leader}, epoch ${this.registration.leaderEpoch})`);
  }

  /**
   * Outcome of an acks=all produce that needs the HW at `requiredOffset`, appended in
   * `leaderEpoch`: undefined while it must wait, "ok", or the error to answer.
   */
  produceOutcome(requiredOffset: number, leaderEpoch: number): "ok" | FlotillaError | undefined {
    if (!this.isLeader || this.registration.leaderEpoch !== leaderEpoch) {
      return new FlotillaError("NOT_LEADER_OR_FOLLOWER", `broker ${this.nodeId} lost the leadership of ${this.key} (epoch ${leaderEpoch}) before the records were replicated`);
    }
    if (this.hw < requiredOffset) return undefined;
    // Kafka's checkEnoughReplicasReachOffset: replicated, but by too few.
    if (this.registration.isr.length < this.topicConfig.minInsyncReplicas) {
      return new FlotillaError("NOT_ENOUGH_REPLICAS_AFTER_APPEND", `${this.key} has ${this.registration.isr.length} in-sync replicas, fewer than min.insync.replicas ${this.topicConfig.minInsyncReplicas}, after the append`);
    }
    return "ok";
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

  // ---------------------------------------------------------------------------------------
  // Leader: follower progress and the ISR.

  /**
   * A follower fetched at `fetchOffset` (its log end offset). Updates its caught-up time
   * (Kafka's rule, see the class comment), may add it back to the ISR and moves the HW.
   */
  updateFollowerFetchState(replicaId: number, fetchOffset: number): void {
    if (!this.isLeader) return;
    const st = this.followers.get(replicaId);
    if (!st) return; // not a replica of this partition
    const nowMs = this.listener.nowMs();
    const leaderLogEndOffset = this.log.logEndOffset;
    if (fetchOffset >= leaderLogEndOffset) st.lastCaughtUpTimeMs = Math.max(st.lastCaughtUpTimeMs, nowMs);
    else if (fetchOffset >= st.lastFetchLeaderLogEndOffset) st.lastCaughtUpTimeMs = Math.max(st.lastCaughtUpTimeMs, st.lastFetchTimeMs);
    st.logEndOffset = fetchOffset;
    st.lastFetchLeaderLogEndOffset = leaderLogEndOffset;
    st.lastFetchTimeMs = nowMs;
    this.maybeExpandIsr(replicaId);
    this.maybeIncrementHighWatermark();
  }

  private canChangeIsr(): boolean {
    return (
      this.isLeader &&
      this.listener.alterPartition !== undefined &&
      this.pendingIsr === undefined &&
      (this.isrChangeBlockedAtPartitionEpoch !== this.registration.partitionEpoch || this.listener.nowMs() >= this.isrChangeBlockedUntilMs) &&
      this.listener.nowMs() >= this.isrChangeRetryAtMs
    );
  }

  private maybeExpandIsr(replicaId: number): void {
    if (this.registration.isr.includes(replicaId) || !this.canChangeIsr()) return;
    const st = this.followers.get(replicaId);
    if (!st) return;
    // Kafka's isFollowerInSync: caught up to the HW, and holding the current epoch's start
    // (so it truncated whatever the previous epochs left behind).
    if (st.logEndOffset >= this.hw && st.logEndOffset >= this.leaderEpochStartOffset) {
      void this.proposeIsr([...this.registration.isr, replicaId].sort((a, b) => a - b), "expand");
    }
  }

  /** Leader: removes followers that have not caught up within replica.lag.time.max.ms. */
  maybeShrinkIsr(): void {
    if (!this.canChangeIsr()) return;
    const nowMs = this.listener.nowMs();
    const lagging = this.registration.isr.filter((id) => {
      if (id === this.nodeId) return false;
      const st = this.followers.get(id);
      return !st || nowMs - st.lastCaughtUpTimeMs > this.listener.replicaLagTimeMaxMs;
    });
    if (lagging.length === 0) return;
    void this.proposeIsr(
      this.registration.isr.filter((id) => !lagging.includes(id)),
      "shrink",
    );
  }

  private async proposeIsr(newIsr: readonly number[], kind: "expand" | "shrink"): Promise<void> {
    const alter = this.listener.alterPartition;
    if (!alter) return;
    const { leaderEpoch, partitionEpoch, isr } = this.registration;
    const log = this.listener.logger;
    this.pendingIsr = newIsr;
    log.info({ topic: this.topic, partition: this.partition, kind, isr, newIsr, leaderEpoch, partitionEpoch }, "asking the controller to change the ISR");
    let reply: AlterPartitionReply;
    try {
      reply = await alter({ topicId: this.topicId, partition: this.partition, leaderEpoch, partitionEpoch, newIsr: [...newIsr] });
    } catch (err) {
      if (this.pendingIsr === newIsr) this.pendingIsr = undefined;
      this.isrChangeRetryAtMs = this.listener.nowMs() + ISR_CHANGE_RETRY_BACKOFF_MS;
      log.warn({ err, topic: this.topic, partition: this.partition, kind }, "AlterPartition failed; will retry");
      return;
    }
    if (this.pendingIsr !== newIsr) return; // a new image or role overtook the call
    this.pendingIsr = undefined;
    if (reply.errorCode !== 0) {
      // Stale epochs and the like: the image is the source of truth; try again after it moves,
      // or after a delay, for refusals that no partition change ends (a fenced follower).
      this.isrChangeBlockedAtPartitionEpoch = this.registration.partitionEpoch;
      this.isrChangeBlockedUntilMs = this.listener.nowMs() + ISR_CHANGE_REFUSED_RETRY_MS;
      log.warn({ topic: this.topic, partition: this.partition, kind, errorCode: reply.errorCode, error: reply.errorMessage, retryInMs: ISR_CHANGE_REFUSED_RETRY_MS }, "controller refused the ISR change; retrying after the next metadata image or the retry delay");
      return;
    }
    if (reply.leaderEpoch === this.registration.leaderEpoch && reply.partitionEpoch > this.registration.partitionEpoch && reply.leader === this.registration.leader) {
      // Kafka applies the controller's answer at once; the image later carries the same epochs.
      this.registration = { ...this.registration, isr: [...reply.isr], partitionEpoch: reply.partitionEpoch };
      log.info({ topic: this.topic, partition: this.partition, isr: reply.isr, partitionEpoch: reply.partitionEpoch }, "ISR changed");
      this.maybeIncrementHighWatermark();
      this.listener.onStateChange(this);
    }
  }

  // ---------------------------------------------------------------------------------------
  // Follower.

  /** Appends batches fetched from the leader and moves the HW to min(leader's HW, own LEO). */
  async appendAsFollower(records: Buffer, leaderHighWatermark: number): Promise<void> {
    if (this.currentRole !== "follower") throw new FlotillaError("NOT_LEADER_OR_FOLLOWER", `broker ${this.nodeId} no longer follows ${this.key}`);
    if (records.length > 0) {
      // Followers keep the producer state current, so that as leader they dedupe retries of
      // batches the old leader appended.
      const state = this.producerState;
      await state.runExclusive(async () => {
        await this.log.appendAsFollower(records);
        if (state.isLoaded) state.applyBatches(records);
      });
    }
    this.updateFollowerHighWatermark(leaderHighWatermark);
  }

  updateFollowerHighWatermark(leaderHighWatermark: number): void {
    if (this.currentRole !== "follower") return;
    const hw = Math.min(leaderHighWatermark, this.log.logEndOffset);
    if (hw > this.hw) this.setHighWatermark(hw);
  }

  /** Drops the log from `offset` (a divergent suffix); the HW follows it down if it must. */
  async truncateTo(offset: number): Promise<void> {
    await this.log.truncateTo(offset);
    this.producerState.invalidate();
    if (this.hw > this.log.logEndOffset) this.setHighWatermark(this.log.logEndOffset);
  }

  async truncateFullyAndStartAt(offset: number): Promise<void> {
    await this.log.truncateFullyAndStartAt(offset);
    this.producerState.invalidate();
    this.setHighWatermark(offset);
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

import { FlotillaError, type ErrorName } from "@flotilla/common";
import { errorFromFields, type JoinGroupResponse } from "@flotilla/protocol";
import { tpKey, type TopicPartition } from "../accumulator.js";
import type { Cluster } from "../cluster.js";
import { checkInt, makeCluster, resolveCommon, type ResolvedCommon } from "../config.js";
import { Consumer, type ConsumerBatch, type ConsumerOptions, type ConsumerRecord, type ConsumerRecordBatches, type SeekTarget } from "../consumer.js";
import { assignorsByName, compareTopicPartitions, type PartitionAssignor, type RebalanceProtocol } from "./assignors.js";
import { decodeAssignment, decodeSubscription, encodeAssignment, encodeSubscription, flattenTopicPartitions, groupByTopic } from "./consumer-protocol.js";
import { CoordinatorPool } from "./coordinator-connection.js";
import { CoordinatorLocator } from "./coordinator.js";

/** The JoinGroup protocol type of consumer groups. */
export const CONSUMER_PROTOCOL_TYPE = "consumer";

export interface GroupConsumerOptions extends ConsumerOptions {
  /** Kafka's group.id. */
  groupId: string;
  /** Kafka's group.instance.id: a static member (KIP-345), which keeps its partitions across restarts within the session timeout. */
  groupInstanceId?: string;
  /** Kafka's session.timeout.ms: without a heartbeat for this long the coordinator removes the member. Default 45000. */
  sessionTimeoutMs?: number;
  /** How long the coordinator waits for members to rejoin in a rebalance. Kafka's consumer sends max.poll.interval.ms. Default maxPollIntervalMs. */
  rebalanceTimeoutMs?: number;
  /** Kafka's heartbeat.interval.ms. Default 3000; must be below sessionTimeoutMs. */
  heartbeatIntervalMs?: number;
  /** Kafka's max.poll.interval.ms: a member whose handler keeps it from polling this long leaves the group. Default 300000. */
  maxPollIntervalMs?: number;
  /** Kafka's partition.assignment.strategy, in order of preference. Default ["range", "cooperative-sticky"] (Kafka 3.x). */
  partitionAssigners?: (string | PartitionAssignor)[];
  /** Kafka's enable.auto.commit. Default true. */
  autoCommit?: boolean;
  /** Kafka's auto.commit.interval.ms. Default 5000. */
  autoCommitIntervalMs?: number;
  /** Called after every successful offset commit (manual or automatic), e.g. for metrics or tests. */
  onOffsetsCommitted?: (offsets: CommittedOffset[]) => void;
}

export interface CommittedOffset {
  topic: string;
  partition: number;
  /** The next offset to consume (last processed + 1). */
  offset: number;
  metadata?: string;
}

/** Kafka's ConsumerRebalanceListener; every callback is awaited before consumption goes on. */
export interface RebalanceListener {
  /** Partitions newly given to this member, after their starting positions are set (seek() here overrides them). */
  onPartitionsAssigned?: (partitions: TopicPartition[]) => Promise<void> | void;
  /** Partitions this member gives up, after their consumed offsets were committed (auto-commit) and before another member reads them. */
  onPartitionsRevoked?: (partitions: TopicPartition[]) => Promise<void> | void;
  /** Partitions this member lost without a chance to commit (its membership was fenced). Default: onPartitionsRevoked. */
  onPartitionsLost?: (partitions: TopicPartition[]) => Promise<void> | void;
}

export interface SubscribeOptions extends RebalanceListener {
  topics: string[];
}

export interface GroupBatch extends ConsumerBatch {
  /** Marks records up to and including `offset` as processed, for the next commit. */
  resolveOffset(offset: number): void;
}

export type GroupRunOptions = { eachMessage: (message: ConsumerRecord) => Promise<void> | void } | { eachBatch: (batch: GroupBatch) => Promise<void> | void };

type MemberState = "unjoined" | "rebalancing" | "stable";

const FATAL_JOIN_ERRORS = new Set<ErrorName>(["FENCED_INSTANCE_ID", "INCONSISTENT_GROUP_PROTOCOL", "INVALID_SESSION_TIMEOUT", "INVALID_GROUP_ID", "GROUP_ID_NOT_FOUND", "INVALID_REQUEST"]);
const RESET_ERRORS = new Set<ErrorName>(["UNKNOWN_MEMBER_ID", "ILLEGAL_GENERATION", "FENCED_INSTANCE_ID"]);
/** Join attempts in one poll before giving up with the last error; each waits a backoff. */
const JOIN_ATTEMPTS_MAX = 100;

/**
 * A member of a consumer group (Kafka's classic group protocol): the coordinator splits the
 * subscribed topics' partitions over the members, the group leader computes the split with
 * an assignor on the client, and committed offsets tell a member where to start.
 *
 * Fetching is the plain Consumer's (manual assignment underneath: each rebalance assigns
 * the member's partitions to it and seeks them to their committed offsets), so there is one
 * fetch loop. Group work happens in two places, as in Kafka's Java consumer:
 * - in the poll loop (`run`, the async iterator, `poll`): joining and syncing, the
 *   rebalance callbacks, auto-commit, and the metadata check for new partitions;
 * - in a background heartbeat loop every heartbeatIntervalMs, which only learns things (a
 *   rebalance began, the membership was fenced) and leaves the group when the poll loop has
 *   been stuck longer than maxPollIntervalMs.
 *
 * "Consumed positions" are the offsets after the records the application has processed:
 * after `eachMessage` resolves, after `eachBatch` resolves (or `resolveOffset`), after the
 * iterator moves past a record, or at once for `poll()`. Commits send these positions.
 */
export class GroupConsumer implements AsyncIterable<ConsumerRecord> {
  private readonly common: ResolvedCommon;
  private readonly consumer: Consumer;
  private readonly cluster: Cluster;
  private readonly pool: CoordinatorPool;
  private readonly coordinator: CoordinatorLocator;
  private readonly groupId: string;
  private readonly groupInstanceId: string;
  private readonly sessionTimeoutMs: number;
  private readonly rebalanceTimeoutMs: number;
  private readonly heartbeatIntervalMs: number;
  private readonly maxPollIntervalMs: number;
  private readonly assignors: PartitionAssignor[];
  private readonly protocol: RebalanceProtocol;
  private readonly autoCommit: boolean;
  private readonly autoCommitIntervalMs: number;
  private readonly autoOffsetReset: "earliest" | "latest" | "none";
  private readonly defaultApiTimeoutMs: number;
  private readonly maxPollRecords: number;
  private readonly onOffsetsCommitted: ((offsets: CommittedOffset[]) => void) | undefined;

  private topics: string[] = [];
  private listener: RebalanceListener = {};
  private memberId = "";
  private generationId = -1;
  private state: MemberState = "unjoined";
  private isLeader = false;
  private rejoinNeeded = false;
  private rejoinReason = "";
  /** Set when the membership was fenced: owned partitions are lost, handled in the poll loop. */
  private partitionsLost = false;
  /** Eager protocol: the revocation before a join already happened. */
  private joinPrepared = false;
  private owned: TopicPartition[] = [];
  /** tpKey of every owned partition, for the per-record check in markConsumed. */
  private ownedKeys = new Set<string>();
  private readonly positions = new Map<string, { tp: TopicPartition; offset: number }>();
  private readonly committed = new Map<string, number>();
  /** Partition counts the current assignment was computed from (the leader's: every group topic). */
  private metadataSnapshot = new Map<string, number>();
  private nextMetadataCheckMs = 0;
  private nextAutoCommitMs = 0;
  private lastPollMs = 0;
  private heartbeatToken = 0;
  private heartbeatTimer: ReturnType<typeof setTimeout> | undefined;
  private lastHeartbeatOkMs = 0;
  private commitChain: Promise<unknown> = Promise.resolve();
  private fatal: FlotillaError | undefined;
  private closing = false;
  private closed = false;
  private loopRunning: Promise<void> | undefined;
  /** Aborted by disconnect(): a JoinGroup or SyncGroup parked at the coordinator is pointless then. */
  private readonly closeSignal = new AbortController();
  private disconnecting: Promise<void> | undefined;

  constructor(options: GroupConsumerOptions) {
    this.common = resolveCommon(options, "group-consumer");
    if (typeof options.groupId !== "string" || options.groupId.length === 0) throw new FlotillaError("INVALID_CONFIG", "groupId is required (Kafka's group.id)");
    this.groupId = options.groupId;
    this.groupInstanceId = options.groupInstanceId ?? "";
    this.sessionTimeoutMs = checkInt("sessionTimeoutMs", options.sessionTimeoutMs ?? 45_000, 1);
    this.maxPollIntervalMs = checkInt("maxPollIntervalMs", options.maxPollIntervalMs ?? 300_000, 1);
    this.rebalanceTimeoutMs = checkInt("rebalanceTimeoutMs", options.rebalanceTimeoutMs ?? this.maxPollIntervalMs, 1);
    this.heartbeatIntervalMs = checkInt("heartbeatIntervalMs", options.heartbeatIntervalMs ?? 3_000, 1);
    if (this.heartbeatIntervalMs >= this.sessionTimeoutMs) {
      throw new FlotillaError("INVALID_CONFIG", `heartbeatIntervalMs (${this.heartbeatIntervalMs}) must be lower than sessionTimeoutMs (${this.sessionTimeoutMs})`);
    }
    this.assignors = assignorsByName(options.partitionAssigners ?? ["range", "cooperative-sticky"]);
    // Kafka: the member rebalances cooperatively only when every assignor it offers can.
    this.protocol = this.assignors.every((a) => a.rebalanceProtocol === "cooperative") ? "cooperative" : "eager";
    this.autoCommit = options.autoCommit ?? true;
    this.autoCommitIntervalMs = checkInt("autoCommitIntervalMs", options.autoCommitIntervalMs ?? 5_000, 1);
    this.defaultApiTimeoutMs = checkInt("defaultApiTimeoutMs", options.defaultApiTimeoutMs ?? 60_000, 1);
    this.maxPollRecords = checkInt("maxPollRecords", options.maxPollRecords ?? 500, 1);
    this.autoOffsetReset = options.autoOffsetReset ?? "latest";
    this.onOffsetsCommitted = options.onOffsetsCommitted;
    // The inner consumer gets the fetch options and the same logger and clock.
    this.consumer = new Consumer({ ...options, logger: this.common.logger, clock: this.common.clock, random: this.common.random });
    this.cluster = makeCluster(this.common);
    this.pool = new CoordinatorPool(this.common.clientId);
    this.coordinator = new CoordinatorLocator(this.groupId, this.common, this.cluster, this.pool);
  }

  /** This member's id in the group ("" until the first join). */
  get currentMemberId(): string {
    return this.memberId;
  }
  /** The generation of the current assignment (-1 outside a group). */
  get currentGenerationId(): number {
    return this.generationId;
  }
  /** The rebalance protocol this member speaks (cooperative only when every assignor can). */
  get rebalanceProtocol(): RebalanceProtocol {
    return this.protocol;
  }

  /** Sets the topics to read and the rebalance callbacks; the group is joined on the next poll. */
  subscribe(options: SubscribeOptions): void {
    this.checkOpen();
    const topics = [...new Set(options.topics)].sort();
    if (topics.length === 0 || topics.some((t) => typeof t !== "string" || t.length === 0)) {
      throw new FlotillaError("INVALID_REQUEST", "subscribe needs at least one topic name");
    }
    const { onPartitionsAssigned, onPartitionsRevoked, onPartitionsLost } = options;
    this.listener = { ...(onPartitionsAssigned ? { onPartitionsAssigned } : {}), ...(onPartitionsRevoked ? { onPartitionsRevoked } : {}), ...(onPartitionsLost ? { onPartitionsLost } : {}) };
    const changed = topics.join("\0") !== this.topics.join("\0");
    this.topics = topics;
    if (changed) this.requestRejoin("subscription changed");
  }

  /** Partitions assigned to this member now, sorted. */
  assignment(): TopicPartition[] {
    return [...this.owned];
  }

  /**
   * Returns records of the member's partitions, joining or rejoining the group first when
   * needed, running auto-commit when due. The returned records count as consumed at once
   * (Kafka's poll semantics).
   */
  async poll(options: { timeoutMs?: number; maxRecords?: number } = {}): Promise<ConsumerRecord[]> {
    const records = await this.pollInternal(options.timeoutMs ?? 1000, options.maxRecords ?? this.maxPollRecords);
    for (const r of records) this.markConsumed(r, r.offset + 1);
    return records;
  }

  /**
   * Like poll(), but returns the fetched batches themselves, by partition (see
   * Consumer.pollBatches): no object per record. Every batch returned counts as consumed at
   * once, so a commit sends each partition's `nextOffset` (the offset after its last batch).
   */
  async pollBatches(options: { timeoutMs?: number; maxRecords?: number } = {}): Promise<ConsumerRecordBatches> {
    const maxRecords = options.maxRecords ?? this.maxPollRecords;
    const result = await this.pollInternalWith(options.timeoutMs ?? 1000, (timeoutMs) => this.consumer.pollBatches({ timeoutMs, maxRecords }), { count: 0, partitions: [] });
    for (const p of result.partitions) this.markConsumed(p, p.nextOffset);
    return result;
  }

  /** Yields records one by one; a record counts as consumed once the loop moves past it. */
  async *[Symbol.asyncIterator](): AsyncGenerator<ConsumerRecord, void, undefined> {
    while (!this.closing) {
      const [record] = await this.pollInternal(500, 1);
      if (!record) continue;
      try {
        yield record;
      } finally {
        this.markConsumed(record, record.offset + 1);
      }
    }
  }

  /**
   * Calls `eachMessage` for every record (or `eachBatch` per partition and poll), awaiting
   * each, until disconnect(). Resolves when disconnected; rejects with the first error a
   * callback or the group throws (the record that failed is not marked consumed).
   */
  async run(options: GroupRunOptions): Promise<void> {
    let done!: () => void;
    this.loopRunning = new Promise<void>((r) => (done = r));
    try {
      while (!this.closing) {
        const records = await this.pollInternal(500, this.maxPollRecords);
        if ("eachMessage" in options) {
          for (const r of records) {
            // A fenced member stops processing at once: its partitions belong to others now.
            if (this.closing || this.partitionsLost) break;
            await options.eachMessage(r);
            this.markConsumed(r, r.offset + 1);
          }
        } else {
          for (const batch of this.batches(records)) {
            if (this.closing || this.partitionsLost) break;
            await options.eachBatch(batch);
            const last = batch.messages[batch.messages.length - 1];
            if (last) this.markConsumed(last, last.offset + 1);
          }
        }
      }
    } finally {
      done();
      this.loopRunning = undefined;
    }
  }

  /**
   * Commits offsets and waits for the answer: the given ones, or else every consumed
   * position not committed yet. Throws REBALANCE_IN_PROGRESS (the member rejoins on the
   * next poll; commit again after it) or ILLEGAL_GENERATION / UNKNOWN_MEMBER_ID (the member
   * was fenced: its partitions are lost and its uncommitted positions dropped).
   */
  async commitOffsets(offsets?: readonly CommittedOffset[]): Promise<void> {
    this.checkOpen();
    await this.enqueueCommit(offsets);
  }

  /** Commits like commitOffsets without waiting; the outcome goes to `callback` (errors are logged otherwise). */
  commitOffsetsAsync(offsets?: readonly CommittedOffset[], callback?: (err: FlotillaError | undefined) => void): void {
    this.checkOpen();
    this.enqueueCommit(offsets).then(
      () => callback?.(undefined),
      (err: unknown) => {
        const fe = err instanceof FlotillaError ? err : new FlotillaError("UNKNOWN_SERVER_ERROR", String(err), { cause: err });
        if (callback) callback(fe);
        else this.common.logger.warn({ groupId: this.groupId, err: fe.message }, "asynchronous offset commit failed");
      },
    );
  }

  /** Committed offsets of the member's partitions (or of `partitions`), from the coordinator; -1 = none. */
  async committedOffsets(partitions: readonly TopicPartition[] = this.owned): Promise<(TopicPartition & { offset: number })[]> {
    const m = await this.fetchCommitted(partitions);
    return partitions.map((tp) => ({ ...tp, offset: m.get(tpKey(tp)) ?? -1 }));
  }

  /** Moves an assigned partition (see Consumer.seek); an offset also becomes its consumed position. */
  seek(tp: TopicPartition, target: SeekTarget): void {
    this.checkOpen();
    this.consumer.seek(tp, target);
    if (typeof target === "object" && "offset" in target) this.positions.set(tpKey(tp), { tp: { topic: tp.topic, partition: tp.partition }, offset: target.offset });
    else this.positions.delete(tpKey(tp));
  }

  pause(tps: readonly TopicPartition[]): void {
    this.consumer.pause(tps);
  }
  resume(tps: readonly TopicPartition[]): void {
    this.consumer.resume(tps);
  }
  paused(): TopicPartition[] {
    return this.consumer.paused();
  }

  /**
   * Leaves cleanly: waits for the record being handled by run(), commits consumed
   * positions (auto-commit), calls onPartitionsRevoked, sends LeaveGroup (a static member
   * does not: it keeps its place for a restart within the session timeout, KIP-345), and
   * closes the connections.
   */
  disconnect(): Promise<void> {
    // Idempotent: a second call (e.g. a signal handler and a finally block) waits for the first.
    this.disconnecting ??= this.leaveAndClose();
    return this.disconnecting;
  }

  private async leaveAndClose(): Promise<void> {
    this.closing = true;
    this.closeSignal.abort();
    const waitLoop = this.loopRunning;
    if (waitLoop) {
      // Bounded: the handler of one record or batch; after maxPollIntervalMs we go on anyway.
      await Promise.race([waitLoop, new Promise<void>((r) => setTimeout(r, this.maxPollIntervalMs).unref())]);
    }
    this.stopHeartbeat();
    try {
      if (this.state === "stable" && !this.partitionsLost) {
        if (this.autoCommit) await this.commitBestEffort("disconnect");
        if (this.owned.length > 0) await this.listener.onPartitionsRevoked?.([...this.owned]);
      }
      if (this.memberId !== "" && this.groupInstanceId === "") await this.leaveGroup("the consumer is closing");
    } finally {
      this.closed = true;
      this.setOwned([]);
      await this.consumer.close();
      this.cluster.close();
      this.pool.closeAll();
    }
  }

  // --- poll loop ---------------------------------------------------------------------------

  /** Returns [] once disconnect() began (also when it begins during this call: a signal handler may call it). */
  private pollInternal(timeoutMs: number, maxRecords: number): Promise<ConsumerRecord[]> {
    return this.pollInternalWith(timeoutMs, (t) => this.consumer.poll({ timeoutMs: t, maxRecords }), []);
  }

  /** The group work of a poll around `fetch` (the plain consumer's poll or pollBatches); `empty` once disconnect() began. */
  private async pollInternalWith<T>(timeoutMs: number, fetch: (timeoutMs: number) => Promise<T>, empty: T): Promise<T> {
    if (this.closing || this.closed) return empty;
    if (this.topics.length === 0) throw new FlotillaError("INVALID_REQUEST", "subscribe() before polling");
    this.lastPollMs = this.common.clock.monotonicMs();
    if (this.fatal) throw this.fatal;
    try {
      await this.ensureActive();
      if (this.closing) return empty;
      await this.maybeAutoCommit();
      await this.maybeCheckMetadata();
      // Short fetch waits, so that a rebalance the heartbeat learns of is acted on soon.
      const records = await fetch(Math.min(timeoutMs, this.heartbeatIntervalMs));
      this.lastPollMs = this.common.clock.monotonicMs();
      return this.closing ? empty : records;
    } catch (err) {
      // disconnect() aborted a join or closed the consumer under us: not an error of the poll.
      if (this.closing) return empty;
      throw err;
    }
  }

  private setOwned(tps: TopicPartition[]): void {
    this.owned = tps;
    this.ownedKeys = new Set(tps.map(tpKey));
  }

  private markConsumed(tp: TopicPartition, offset: number): void {
    const key = tpKey(tp);
    if (!this.ownedKeys.has(key)) return; // revoked meanwhile
    this.positions.set(key, { tp: { topic: tp.topic, partition: tp.partition }, offset });
  }

  private *batches(records: ConsumerRecord[]): Generator<GroupBatch> {
    const groups = new Map<string, ConsumerRecord[]>();
    for (const r of records) groups.set(tpKey(r), [...(groups.get(tpKey(r)) ?? []), r]);
    for (const messages of groups.values()) {
      const first = messages[0] as ConsumerRecord;
      yield {
        topic: first.topic,
        partition: first.partition,
        highWatermark: -1,
        messages,
        resolveOffset: (offset: number) => this.markConsumed(first, offset + 1),
      };
    }
  }

  private requestRejoin(reason: string): void {
    if (!this.rejoinNeeded) this.common.logger.info({ groupId: this.groupId, memberId: this.memberId, reason }, "rejoining the group");
    this.rejoinNeeded = true;
    this.rejoinReason = reason;
  }

  /** The member lost its place: forget the generation; partitions are lost, handled in the poll loop. */
  private resetGeneration(err: FlotillaError): void {
    this.common.logger.warn({ groupId: this.groupId, memberId: this.memberId, generationId: this.generationId, err: err.message }, "membership reset; partitions lost");
    if (err.errorName === "UNKNOWN_MEMBER_ID" || err.errorName === "FENCED_INSTANCE_ID") this.memberId = "";
    this.generationId = -1;
    this.state = "unjoined";
    if (this.owned.length > 0) this.partitionsLost = true;
    this.stopHeartbeat();
    this.requestRejoin(err.errorName);
  }

  private async ensureActive(): Promise<void> {
    if (this.partitionsLost) await this.losePartitions();
    for (let attempt = 1; this.rejoinNeeded && !this.closing; attempt++) {
      try {
        if (attempt > JOIN_ATTEMPTS_MAX) {
          throw new FlotillaError("REBALANCE_IN_PROGRESS", `group "${this.groupId}" did not settle after ${JOIN_ATTEMPTS_MAX} join attempts (last reason: ${this.rejoinReason})`);
        }
        // A second round (after MEMBER_ID_REQUIRED, a cooperative follow-up, ...) waits a little.
        if (attempt > 1) await this.common.sleepMs(this.common.retry.retryBackoffMs);
        await this.joinAndSync();
      } catch (err) {
        const fe = err instanceof FlotillaError ? err : undefined;
        if (!fe || !fe.retriable || attempt >= JOIN_ATTEMPTS_MAX) throw err;
        this.common.logger.info({ groupId: this.groupId, err: fe.message, attempt }, "joining the group failed; retrying");
        await this.common.sleepMs(this.common.retry.retryBackoffMs);
      }
      if (this.partitionsLost) await this.losePartitions();
    }
  }

  /** Partitions taken away without a chance to commit: drop them and their uncommitted positions. */
  private async losePartitions(): Promise<void> {
    const lost = this.owned;
    this.partitionsLost = false;
    this.setOwned([]);
    this.positions.clear();
    this.committed.clear();
    await this.consumer.assign([]);
    if (lost.length > 0) await (this.listener.onPartitionsLost ?? this.listener.onPartitionsRevoked)?.([...lost]);
  }

  private joinDeadlineMs(): number {
    // Kafka: a JoinGroup may be held for the whole rebalance timeout, plus the request timeout.
    return this.common.clock.monotonicMs() + this.rebalanceTimeoutMs + this.common.requestTimeoutMs;
  }

  /** One JoinGroup + SyncGroup round, with retries of the coordinator's transient answers. */
  private async joinAndSync(): Promise<void> {
    const deadlineMs = this.joinDeadlineMs();
    await this.coordinator.connection(this.common.clock.monotonicMs() + this.defaultApiTimeoutMs);
    if (!this.joinPrepared) {
      await this.prepareJoin();
      this.joinPrepared = true;
    }
    this.stopHeartbeat();
    this.state = "rebalancing";
    const subscription = encodeSubscription({
      topics: this.topics,
      userData: null,
      ownedPartitions: this.protocol === "cooperative" ? groupByTopic(this.owned) : [],
      generationId: this.protocol === "cooperative" ? this.generationId : -1,
      rackId: null,
    });
    const join = await this.coordinator.call(
      "JoinGroup",
      (conn) =>
        conn.joinGroup(
          {
            groupId: this.groupId,
            sessionTimeoutMs: this.sessionTimeoutMs,
            rebalanceTimeoutMs: this.rebalanceTimeoutMs,
            memberId: this.memberId,
            groupInstanceId: this.groupInstanceId,
            protocolType: CONSUMER_PROTOCOL_TYPE,
            protocols: this.assignors.map((a) => ({ name: a.name, metadata: subscription })),
            clientId: this.common.clientId,
            reason: this.rejoinReason,
          },
          { timeoutMs: this.rebalanceTimeoutMs + this.common.requestTimeoutMs + 5_000, signal: this.closeSignal.signal },
        ),
      deadlineMs,
      this.closeSignal.signal,
    );
    const joinErr = errorFromFields(join.errorCode, join.errorMessage);
    if (joinErr) {
      const detail = new FlotillaError(joinErr.errorName, `JoinGroup of group "${this.groupId}": ${join.errorMessage || joinErr.message}`);
      switch (joinErr.errorName) {
        case "MEMBER_ID_REQUIRED":
          // KIP-394: the coordinator names our id; join again with it at once.
          this.memberId = join.memberId;
          return;
        case "UNKNOWN_MEMBER_ID":
          this.memberId = "";
          this.generationId = -1;
          return;
        case "ILLEGAL_GENERATION":
          this.generationId = -1;
          return;
        case "REBALANCE_IN_PROGRESS":
          return;
        default:
          if (FATAL_JOIN_ERRORS.has(joinErr.errorName)) {
            this.fatal = detail;
            throw detail;
          }
          throw detail;
      }
    }
    this.memberId = join.memberId;
    this.generationId = join.generationId;
    this.isLeader = join.leader === join.memberId;
    const assignments = this.isLeader ? await this.computeAssignment(join) : [];
    const sync = await this.coordinator.call(
      "SyncGroup",
      (conn) =>
        conn.syncGroup(
          {
            groupId: this.groupId,
            generationId: this.generationId,
            memberId: this.memberId,
            groupInstanceId: this.groupInstanceId,
            protocolType: CONSUMER_PROTOCOL_TYPE,
            protocolName: join.protocolName,
            assignments,
          },
          { timeoutMs: this.rebalanceTimeoutMs + this.common.requestTimeoutMs + 5_000, signal: this.closeSignal.signal },
        ),
      deadlineMs,
      this.closeSignal.signal,
    );
    const syncErr = errorFromFields(sync.errorCode, sync.errorMessage);
    if (syncErr) {
      const detail = new FlotillaError(syncErr.errorName, `SyncGroup of group "${this.groupId}": ${sync.errorMessage || syncErr.message}`);
      if (syncErr.errorName === "REBALANCE_IN_PROGRESS") return;
      if (RESET_ERRORS.has(syncErr.errorName)) {
        if (syncErr.errorName === "FENCED_INSTANCE_ID") this.fatal = detail;
        this.resetGeneration(detail);
        return;
      }
      throw detail;
    }
    this.rejoinNeeded = false;
    this.joinPrepared = false;
    this.state = "stable";
    this.common.logger.info({ groupId: this.groupId, memberId: this.memberId, generationId: this.generationId, leader: this.isLeader, protocol: join.protocolName }, "joined the group");
    this.startHeartbeat();
    await this.completeJoin(decodeAssignment(sync.assignment).assignedPartitions, join.protocolName);
  }

  /**
   * Before a join. Eager: commit, then give up every partition (onPartitionsRevoked).
   * Cooperative: commit only; partitions are given up after the assignment says which.
   */
  private async prepareJoin(): Promise<void> {
    if (this.state === "stable" && this.autoCommit) await this.commitBestEffort("before rejoining");
    if (this.protocol === "eager" && this.owned.length > 0) {
      const revoked = this.owned;
      this.setOwned([]);
      await this.consumer.assign([]);
      for (const tp of revoked) this.positions.delete(tpKey(tp));
      await this.listener.onPartitionsRevoked?.([...revoked]);
    }
  }

  private async completeJoin(assigned: { topic: string; partitions: number[] }[], protocolName: string): Promise<void> {
    const next = flattenTopicPartitions(assigned)
      .filter((tp) => this.topics.includes(tp.topic))
      .sort(compareTopicPartitions);
    const nextKeys = new Set(next.map(tpKey));
    const ownedKeys = new Set(this.owned.map(tpKey));
    const revoked = this.owned.filter((tp) => !nextKeys.has(tpKey(tp)));
    const added = next.filter((tp) => !ownedKeys.has(tpKey(tp)));
    if (revoked.length > 0) {
      // Cooperative: give up only what moved, then rejoin so it can be handed out (KIP-429).
      if (this.autoCommit) await this.commitBestEffort("revoking partitions", revoked);
      for (const tp of revoked) {
        this.positions.delete(tpKey(tp));
        this.committed.delete(tpKey(tp));
      }
      this.setOwned(this.owned.filter((tp) => nextKeys.has(tpKey(tp))));
      await this.consumer.assign(this.owned);
      await this.listener.onPartitionsRevoked?.([...revoked]);
      this.requestRejoin(`revoked ${revoked.length} partition(s) for the ${protocolName} follow-up rebalance`);
    }
    this.setOwned(next);
    await this.consumer.assign(next);
    if (added.length > 0) {
      let committed: Map<string, number>;
      try {
        committed = await this.fetchCommitted(added);
      } catch (err) {
        // Without their committed offsets the new partitions must not be read (the fetcher
        // would start them at auto.offset.reset): drop them and join again.
        const addedKeys = new Set(added.map(tpKey));
        this.setOwned(next.filter((tp) => !addedKeys.has(tpKey(tp))));
        await this.consumer.assign(this.owned);
        this.requestRejoin(`fetching committed offsets failed: ${(err as Error).message}`);
        throw err;
      }
      for (const tp of added) {
        const offset = committed.get(tpKey(tp)) ?? -1;
        if (offset >= 0) {
          this.consumer.seek(tp, { offset });
          this.committed.set(tpKey(tp), offset);
        } else if (this.autoOffsetReset === "none") {
          this.fatal = new FlotillaError("OFFSET_OUT_OF_RANGE", `${tp.topic}-${tp.partition} has no committed offset in group "${this.groupId}" and autoOffsetReset is "none"`);
          throw this.fatal;
        } else {
          this.consumer.seek(tp, this.autoOffsetReset);
        }
      }
      await this.listener.onPartitionsAssigned?.([...added]);
    }
    this.nextAutoCommitMs = this.common.clock.monotonicMs() + this.autoCommitIntervalMs;
    this.nextMetadataCheckMs = this.common.clock.monotonicMs() + this.common.metadataMaxAgeMs;
    if (!this.isLeader) this.metadataSnapshot = await this.partitionCounts(this.topics);
  }

  /** The leader's work: decode every subscription, read partition counts, run the chosen assignor. */
  private async computeAssignment(join: JoinGroupResponse): Promise<{ memberId: string; assignment: Buffer }[]> {
    const assignor = this.assignors.find((a) => a.name === join.protocolName);
    if (!assignor) throw new FlotillaError("INCONSISTENT_GROUP_PROTOCOL", `the group chose assignor "${join.protocolName}", which this member did not offer`);
    const members = join.members.map((m) => {
      const sub = decodeSubscription(m.metadata);
      return { memberId: m.memberId, groupInstanceId: m.groupInstanceId, topics: sub.topics, ownedPartitions: flattenTopicPartitions(sub.ownedPartitions), generationId: sub.generationId };
    });
    const allTopics = [...new Set(members.flatMap((m) => m.topics))].sort();
    const counts = await this.partitionCounts(allTopics);
    this.metadataSnapshot = counts;
    const result = assignor.assign({ members, partitionsPerTopic: counts });
    this.common.logger.info(
      { groupId: this.groupId, generationId: join.generationId, assignor: assignor.name, assignment: Object.fromEntries([...result].map(([m, tps]) => [m, tps.map((tp) => `${tp.topic}-${tp.partition}`)])) },
      "computed the group's assignment as leader",
    );
    return members.map((m) => ({ memberId: m.memberId, assignment: encodeAssignment({ assignedPartitions: groupByTopic(result.get(m.memberId) ?? []), userData: null }) }));
  }

  /** Partition counts of topics that exist (unknown topics are left out). */
  private async partitionCounts(topics: readonly string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    if (topics.length === 0) return out;
    await this.cluster.refresh(this.common.clock.monotonicMs() + this.defaultApiTimeoutMs, topics);
    for (const t of topics) {
      const info = this.cluster.cachedTopic(t);
      if (info) out.set(t, info.partitions.length);
    }
    return out;
  }

  /** Every metadata.max.age.ms: a subscribed topic that gained partitions (or appeared) means a rebalance. */
  private async maybeCheckMetadata(): Promise<void> {
    const nowMs = this.common.clock.monotonicMs();
    if (this.state !== "stable" || nowMs < this.nextMetadataCheckMs) return;
    this.nextMetadataCheckMs = nowMs + this.common.metadataMaxAgeMs;
    const topics = this.isLeader ? [...new Set([...this.metadataSnapshot.keys(), ...this.topics])] : this.topics;
    let counts: Map<string, number>;
    try {
      counts = await this.partitionCounts(topics);
    } catch (err) {
      this.common.logger.warn({ groupId: this.groupId, err: (err as Error).message }, "metadata refresh failed");
      return;
    }
    for (const t of topics) {
      if ((counts.get(t) ?? 0) !== (this.metadataSnapshot.get(t) ?? 0)) {
        this.requestRejoin(`partitions of topic "${t}" changed from ${this.metadataSnapshot.get(t) ?? 0} to ${counts.get(t) ?? 0}`);
        return;
      }
    }
  }

  // --- offsets ------------------------------------------------------------------------------

  private async maybeAutoCommit(): Promise<void> {
    if (!this.autoCommit || this.state !== "stable") return;
    const nowMs = this.common.clock.monotonicMs();
    if (nowMs < this.nextAutoCommitMs) return;
    this.nextAutoCommitMs = nowMs + this.autoCommitIntervalMs;
    this.commitOffsetsAsync(undefined, (err) => {
      if (err) this.common.logger.warn({ groupId: this.groupId, err: err.message }, "auto-commit failed");
    });
  }

  /** Commit on revoke/close: failures are logged, not thrown (the partitions go either way). */
  private async commitBestEffort(why: string, only?: readonly TopicPartition[]): Promise<void> {
    const keys = only ? new Set(only.map(tpKey)) : undefined;
    const offsets = this.pendingOffsets().filter((o) => !keys || keys.has(tpKey(o)));
    if (offsets.length === 0) return;
    try {
      await this.enqueueCommit(offsets);
    } catch (err) {
      this.common.logger.warn({ groupId: this.groupId, why, err: (err as Error).message }, "offset commit failed");
    }
  }

  /** Consumed positions not committed yet. */
  private pendingOffsets(): CommittedOffset[] {
    const out: CommittedOffset[] = [];
    for (const [key, p] of this.positions) if (this.committed.get(key) !== p.offset) out.push({ topic: p.tp.topic, partition: p.tp.partition, offset: p.offset });
    return out;
  }

  /** Commits run one at a time, in call order, so an older commit never lands after a newer one. */
  private enqueueCommit(offsets?: readonly CommittedOffset[]): Promise<void> {
    const run = (): Promise<void> => this.sendCommit(offsets ? [...offsets] : this.pendingOffsets());
    const p = this.commitChain.then(run, run);
    this.commitChain = p.catch(() => undefined);
    return p;
  }

  private async sendCommit(offsets: CommittedOffset[]): Promise<void> {
    if (offsets.length === 0) return;
    if (this.generationId < 0 || this.memberId === "") {
      throw new FlotillaError("ILLEGAL_GENERATION", `cannot commit offsets of group "${this.groupId}": this member is not in a generation of the group (it is rejoining)`);
    }
    for (const o of offsets) checkInt(`offset of ${o.topic}-${o.partition}`, o.offset, 0);
    const generationId = this.generationId;
    const byTopic = new Map<string, CommittedOffset[]>();
    for (const o of offsets) byTopic.set(o.topic, [...(byTopic.get(o.topic) ?? []), o]);
    const res = await this.coordinator.call(
      "OffsetCommit",
      (conn) =>
        conn.offsetCommit(
          {
            groupId: this.groupId,
            generationId,
            memberId: this.memberId,
            groupInstanceId: this.groupInstanceId,
            topics: [...byTopic].map(([name, list]) => ({
              name,
              partitions: list.map((o) => ({ partition: o.partition, committedOffset: o.offset, committedLeaderEpoch: -1, committedMetadata: o.metadata ?? "" })),
            })),
          },
          { timeoutMs: this.common.requestTimeoutMs },
        ),
      this.common.clock.monotonicMs() + this.defaultApiTimeoutMs,
    );
    const groupErr = errorFromFields(res.errorCode, res.errorMessage);
    if (groupErr) {
      const err = new FlotillaError(groupErr.errorName, `OffsetCommit of group "${this.groupId}" generation ${generationId}: ${res.errorMessage || groupErr.message}`);
      if (groupErr.errorName === "REBALANCE_IN_PROGRESS") this.requestRejoin("offset commit answered REBALANCE_IN_PROGRESS");
      else if (RESET_ERRORS.has(groupErr.errorName) && this.generationId === generationId) this.resetGeneration(err);
      throw err;
    }
    for (const t of res.topics) {
      for (const p of t.partitions) {
        const err = errorFromFields(p.errorCode, p.errorMessage);
        if (err) throw new FlotillaError(err.errorName, `OffsetCommit of ${t.name}-${p.partition} in group "${this.groupId}": ${p.errorMessage || err.message}`);
      }
    }
    for (const o of offsets) this.committed.set(tpKey(o), o.offset);
    this.onOffsetsCommitted?.(offsets);
  }

  private async fetchCommitted(partitions: readonly TopicPartition[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    if (partitions.length === 0) return out;
    const byTopic = new Map<string, number[]>();
    for (const tp of partitions) byTopic.set(tp.topic, [...(byTopic.get(tp.topic) ?? []), tp.partition]);
    const res = await this.coordinator.call(
      "OffsetFetch",
      (conn) => conn.offsetFetch({ groupId: this.groupId, topics: [...byTopic].map(([name, ps]) => ({ name, partitions: ps })) }, { timeoutMs: this.common.requestTimeoutMs }),
      this.common.clock.monotonicMs() + this.defaultApiTimeoutMs,
    );
    const groupErr = errorFromFields(res.errorCode, res.errorMessage);
    if (groupErr) throw new FlotillaError(groupErr.errorName, `OffsetFetch of group "${this.groupId}": ${res.errorMessage || groupErr.message}`);
    for (const t of res.topics) {
      for (const p of t.partitions) {
        const err = errorFromFields(p.errorCode, p.errorMessage);
        if (err) throw new FlotillaError(err.errorName, `OffsetFetch of ${t.name}-${p.partition} in group "${this.groupId}": ${p.errorMessage || err.message}`);
        out.set(tpKey({ topic: t.name, partition: p.partition }), p.committedOffset);
      }
    }
    return out;
  }

  // --- heartbeat ----------------------------------------------------------------------------

  private startHeartbeat(): void {
    this.stopHeartbeat();
    const token = ++this.heartbeatToken;
    this.lastHeartbeatOkMs = this.common.clock.monotonicMs();
    // As Kafka's heartbeat thread does when it is enabled after a join: time spent waiting
    // for the other members in JoinGroup is not the application being stuck, so
    // max.poll.interval.ms counts from here (rebalance callbacks do count, as in Kafka).
    this.lastPollMs = this.lastHeartbeatOkMs;
    const tick = async (): Promise<void> => {
      if (token !== this.heartbeatToken || this.closed) return;
      await this.heartbeatOnce(token);
      if (token === this.heartbeatToken && !this.closed) this.heartbeatTimer = setTimeout(() => void tick(), this.heartbeatIntervalMs);
    };
    this.heartbeatTimer = setTimeout(() => void tick(), this.heartbeatIntervalMs);
  }

  private stopHeartbeat(): void {
    this.heartbeatToken++;
    if (this.heartbeatTimer) clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
  }

  private async heartbeatOnce(token: number): Promise<void> {
    const nowMs = this.common.clock.monotonicMs();
    if (!this.closing && this.state === "stable" && nowMs - this.lastPollMs > this.maxPollIntervalMs) {
      // Kafka's max.poll.interval.ms: the application is stuck in its handler; leave, so the
      // group hands our partitions to members that make progress. The next poll rejoins.
      this.common.logger.warn(
        { groupId: this.groupId, memberId: this.memberId, sincePollMs: nowMs - this.lastPollMs, maxPollIntervalMs: this.maxPollIntervalMs },
        "no poll within max.poll.interval.ms; leaving the group",
      );
      this.stopHeartbeat();
      await this.leaveGroup("consumer poll timeout has expired (max.poll.interval.ms)");
      this.resetGeneration(new FlotillaError("UNKNOWN_MEMBER_ID", "left the group after max.poll.interval.ms without a poll"));
      return;
    }
    if (this.state !== "stable") return;
    const generationId = this.generationId;
    try {
      const conn = await this.coordinator.connection(nowMs + this.common.requestTimeoutMs);
      const res = await conn.heartbeat(
        { groupId: this.groupId, generationId, memberId: this.memberId, groupInstanceId: this.groupInstanceId },
        { timeoutMs: Math.min(this.common.requestTimeoutMs, this.sessionTimeoutMs) },
      );
      if (token !== this.heartbeatToken || generationId !== this.generationId) return;
      const err = errorFromFields(res.errorCode, res.errorMessage);
      if (!err) {
        this.lastHeartbeatOkMs = this.common.clock.monotonicMs();
        return;
      }
      if (err.errorName === "REBALANCE_IN_PROGRESS") {
        this.requestRejoin("the coordinator started a rebalance");
        return;
      }
      if (RESET_ERRORS.has(err.errorName)) {
        const fe = new FlotillaError(err.errorName, `Heartbeat of group "${this.groupId}": ${res.errorMessage || err.message}`);
        if (err.errorName === "FENCED_INSTANCE_ID") this.fatal = fe;
        this.resetGeneration(fe);
        return;
      }
      if (err.errorName === "NOT_COORDINATOR" || err.errorName === "COORDINATOR_NOT_AVAILABLE") this.coordinator.markUnknown(`Heartbeat: ${err.errorName}`);
      this.common.logger.debug({ groupId: this.groupId, err: err.message }, "heartbeat failed");
    } catch (err) {
      if (token !== this.heartbeatToken) return;
      this.coordinator.markUnknown(`Heartbeat: ${(err as Error).message}`);
      // Past the session timeout without a heartbeat the coordinator has surely removed us.
      if (this.common.clock.monotonicMs() - this.lastHeartbeatOkMs > this.sessionTimeoutMs) {
        this.resetGeneration(new FlotillaError("UNKNOWN_MEMBER_ID", `no successful heartbeat for ${this.sessionTimeoutMs} ms (session.timeout.ms)`));
      }
    }
  }

  private async leaveGroup(reason: string): Promise<void> {
    const memberId = this.memberId;
    if (memberId === "") return;
    try {
      const conn = await this.coordinator.connection(this.common.clock.monotonicMs() + this.common.requestTimeoutMs);
      const res = await conn.leaveGroup({ groupId: this.groupId, members: [{ memberId, groupInstanceId: this.groupInstanceId, reason }] }, { timeoutMs: this.common.requestTimeoutMs });
      const err = errorFromFields(res.errorCode, res.errorMessage) ?? res.members.map((m) => errorFromFields(m.errorCode, m.errorMessage)).find((e) => e !== undefined);
      if (err) this.common.logger.info({ groupId: this.groupId, memberId, err: err.message }, "LeaveGroup answered an error");
    } catch (err) {
      this.common.logger.info({ groupId: this.groupId, memberId, err: (err as Error).message }, "LeaveGroup failed; the session timeout will remove the member");
    }
    this.memberId = "";
    this.generationId = -1;
    this.state = "unjoined";
  }

  private checkOpen(): void {
    if (this.closed || this.closing) throw new FlotillaError("INVALID_REQUEST", `group consumer of "${this.groupId}" is closed`);
  }
}

/**
 * The GroupCoordinator service of a broker: FindCoordinator (any broker), and the group
 * calls answered by the engine (./coordinator.ts) for the partitions of
 * __consumer_offsets this broker leads.
 *
 * - The internal topic is created on the first FindCoordinator that needs it, through
 *   the controller: offsets.topic.num.partitions partitions, replication factor
 *   min(offsets.topic.replication.factor, live brokers), `cleanup.policy=compact` as in
 *   Kafka (the storage's log cleaner keeps the latest record per key of closed segments,
 *   see packages/storage/src/log-cleaner.ts), no retention by time or size. A coordinator
 *   replays the compacted partition when it loads.
 * - Leadership follows the metadata image: `applyImage` (called for every image, in
 *   order) loads the partitions this broker now leads (or leads in a new leader epoch)
 *   and unloads those it no longer leads. Loading waits until the broker's replicas have
 *   applied the image, so the partition's log is open. Offsets of deleted topics are
 *   removed from the groups loaded here (tombstones first), as Kafka does.
 * - Appends use the broker's produce path with acks=all (handleProduce), so commits are
 *   answered when the high watermark passes them, as any acks=all produce.
 */
import { FlotillaError, type Clock } from "@flotilla/common";
import type { Logger } from "@flotilla/common/logger";
import type { ControllerChannel } from "../controller-channel.js";
import { NO_LEADER, liveBrokers, type MetadataImage } from "@flotilla/metadata";
import {
  CONSUMER_OFFSETS_TOPIC,
  COORDINATOR_KEY_TYPE_GROUP,
  errorFields,
  errorFromFields,
  type DeleteGroupsRequest,
  type DeleteGroupsResponse,
  type DescribeGroupsRequest,
  type DescribeGroupsResponse,
  type FindCoordinatorRequest,
  type FindCoordinatorResponse,
  type GroupCallContext,
  type GroupCoordinatorApi,
  type HeartbeatRequest,
  type HeartbeatResponse,
  type JoinGroupRequest,
  type JoinGroupResponse,
  type LeaveGroupRequest,
  type LeaveGroupResponse,
  type ListGroupsRequest,
  type ListGroupsResponse,
  type OffsetCommitRequest,
  type OffsetCommitResponse,
  type OffsetFetchRequest,
  type OffsetFetchResponse,
  type SyncGroupRequest,
  type SyncGroupResponse,
} from "@flotilla/protocol";
import { handleProduce } from "../produce.js";
import type { ReplicaManager } from "../replica-manager.js";
import type { GroupCoordinatorConfig } from "./config.js";
import { GroupCoordinatorEngine, type OffsetsLog } from "./coordinator.js";
import type { Timer } from "./timer.js";

/** Kafka's offsets.topic.segment.bytes default: segments of __consumer_offsets. */
export const OFFSETS_TOPIC_SEGMENT_BYTES = 104_857_600;

/** The topic-level settings __consumer_offsets is created with. */
export const OFFSETS_TOPIC_CONFIGS: Readonly<Record<string, string>> = Object.freeze({
  // Compacted, as in Kafka: the log cleaner keeps the latest record per group / offset key
  // and drops tombstones after delete.retention.ms. Never deleted by time or size, even if
  // the policy is later widened to compact,delete.
  "cleanup.policy": "compact",
  "retention.ms": "-1",
  "retention.bytes": "-1",
  "segment.bytes": String(OFFSETS_TOPIC_SEGMENT_BYTES),
});

/** Appends and reads __consumer_offsets through this broker's replicas. */
export class ReplicaOffsetsLog implements OffsetsLog {
  constructor(
    private readonly replicas: ReplicaManager,
    private readonly nowMs: () => number,
  ) {}

  async append(partition: number, batch: Buffer, timeoutMs: number): Promise<number> {
    const response = await handleProduce(this.replicas, { acks: -1, timeoutMs, topics: [{ name: CONSUMER_OFFSETS_TOPIC, partitions: [{ partition, records: batch }] }] }, this.nowMs);
    const result = response.topics[0]?.partitions[0];
    if (!result) throw new FlotillaError("UNKNOWN_SERVER_ERROR", `produce to ${CONSUMER_OFFSETS_TOPIC}-${partition} gave no answer`);
    const err = errorFromFields(result.errorCode, result.errorMessage);
    if (err) throw err;
    return result.baseOffset;
  }

  range(partition: number): { logStartOffset: number; logEndOffset: number } {
    const log = this.replicas.partition(CONSUMER_OFFSETS_TOPIC, partition).log;
    return { logStartOffset: log.logStartOffset, logEndOffset: log.logEndOffset };
  }

  async read(partition: number, offset: number, maxBytes: number): Promise<Buffer> {
    const log = this.replicas.partition(CONSUMER_OFFSETS_TOPIC, partition).log;
    return (await log.read(offset, { maxBytes, minOneBatch: true })).records;
  }
}

export interface GroupCoordinatorServiceOptions {
  readonly nodeId: number;
  /** Name of the client listener, to pick the coordinator's endpoint. */
  readonly listenerName: string;
  readonly config: GroupCoordinatorConfig;
  /** The latest metadata image this broker knows. */
  readonly image: () => MetadataImage;
  readonly controller: Pick<ControllerChannel, "createTopics">;
  readonly replicas: ReplicaManager;
  readonly clock: Clock;
  readonly timer: Timer;
  readonly logger: Logger;
  /** Override the log (tests); default: this broker's replicas. */
  readonly log?: OffsetsLog;
}

function findError(err: unknown): FindCoordinatorResponse {
  return { ...errorFields(err), nodeId: -1, host: "", port: -1 };
}

export class GroupCoordinatorService implements GroupCoordinatorApi {
  readonly engine: GroupCoordinatorEngine;
  /** Leader epoch of each partition of __consumer_offsets this broker leads and has loaded (or is loading). */
  private readonly led = new Map<number, number>();
  private applyChain: Promise<void> = Promise.resolve();
  /** The last image applied, to spot deleted topics. */
  private lastImage: MetadataImage | undefined;
  private creating: Promise<void> | undefined;
  private cancelExpiry: (() => void) | undefined;
  private readonly closeHooks: (() => void)[] = [];
  private closed = false;

  constructor(private readonly options: GroupCoordinatorServiceOptions) {
    this.engine = new GroupCoordinatorEngine({
      config: options.config,
      log: options.log ?? new ReplicaOffsetsLog(options.replicas, () => options.clock.nowMs()),
      clock: options.clock,
      timer: options.timer,
      logger: options.logger,
    });
    this.scheduleExpiry();
  }

  private scheduleExpiry(): void {
    if (this.closed) return;
    this.cancelExpiry = this.options.timer.schedule(this.options.config.offsetsRetentionCheckIntervalMs, () => {
      this.engine.expireOffsets().then(
        () => this.scheduleExpiry(),
        (err: unknown) => {
          this.options.logger.warn({ err }, "expiring offsets failed");
          this.scheduleExpiry();
        },
      );
    });
  }

  /**
   * Follows leadership of __consumer_offsets in a new image; call for every image, in
   * order. Resolves when the loads it started have finished.
   */
  applyImage(image: MetadataImage): Promise<void> {
    const run = this.applyChain.then(async () => {
      if (this.closed) return;
      await this.options.replicas.waitForOffset(image.offset);
      const topic = image.topicsByName.get(CONSUMER_OFFSETS_TOPIC);
      const wanted = new Map<number, number>();
      for (const [p, reg] of topic?.partitions ?? []) if (reg.leader === this.options.nodeId) wanted.set(p, reg.leaderEpoch);
      for (const p of [...this.led.keys()]) {
        if (wanted.get(p) !== this.led.get(p)) {
          this.led.delete(p);
          this.engine.unloadPartition(p);
        }
      }
      const loads: Promise<void>[] = [];
      for (const [p, epoch] of wanted) {
        if (this.led.get(p) === epoch) continue;
        this.led.set(p, epoch);
        loads.push(this.engine.loadPartition(p));
      }
      await Promise.all(loads);
      // Offsets of deleted topics go too (Kafka's handleDeletedPartitions).
      const previous = this.lastImage;
      this.lastImage = image;
      if (previous) {
        const deleted = new Set([...previous.topicsByName.values()].filter((t) => image.topicsByName.get(t.name)?.topicId !== t.topicId).map((t) => t.name));
        deleted.delete(CONSUMER_OFFSETS_TOPIC);
        if (deleted.size > 0) await this.engine.deleteOffsetsOfTopics(deleted);
      }
    });
    this.applyChain = run.catch((err: unknown) => this.options.logger.error({ err }, "following __consumer_offsets leadership failed"));
    return this.applyChain;
  }

  /** Creates __consumer_offsets unless it exists; concurrent callers share one request. */
  private ensureOffsetsTopic(): Promise<void> {
    if (this.options.image().topicsByName.has(CONSUMER_OFFSETS_TOPIC)) return Promise.resolve();
    this.creating ??= (async () => {
      try {
        const { config } = this.options;
        const live = liveBrokers(this.options.image()).length;
        if (live === 0) throw new FlotillaError("COORDINATOR_NOT_AVAILABLE", `no live broker to host ${CONSUMER_OFFSETS_TOPIC}`);
        const replicationFactor = Math.min(config.offsetsTopicReplicationFactor, live);
        const response = await this.options.controller.createTopics({
          topics: [{ name: CONSUMER_OFFSETS_TOPIC, numPartitions: config.offsetsTopicNumPartitions, replicationFactor, configs: { ...OFFSETS_TOPIC_CONFIGS } }],
          timeoutMs: config.offsetsCommitTimeoutMs,
          validateOnly: false,
        });
        const result = response.topics[0];
        const err = result ? errorFromFields(result.errorCode, result.errorMessage) : undefined;
        if (err && err.errorName !== "TOPIC_ALREADY_EXISTS") {
          throw new FlotillaError("COORDINATOR_NOT_AVAILABLE", `cannot create ${CONSUMER_OFFSETS_TOPIC}: ${err.message}`, { cause: err });
        }
        if (!err) this.options.logger.info({ partitions: config.offsetsTopicNumPartitions, replicationFactor }, `created ${CONSUMER_OFFSETS_TOPIC}`);
      } finally {
        this.creating = undefined;
      }
    })();
    return this.creating;
  }

  async findCoordinator(request: FindCoordinatorRequest): Promise<FindCoordinatorResponse> {
    try {
      if (request.keyType !== COORDINATOR_KEY_TYPE_GROUP) throw new FlotillaError("INVALID_REQUEST", `key type ${request.keyType} is not served (only 0 = group)`);
      if (request.key === "") throw new FlotillaError("INVALID_GROUP_ID", "group id is empty");
      await this.ensureOffsetsTopic();
      const image = this.options.image();
      const topic = image.topicsByName.get(CONSUMER_OFFSETS_TOPIC);
      const partition = this.engine.partitionFor(request.key);
      const registration = topic?.partitions.get(partition);
      if (!registration || registration.leader === NO_LEADER) {
        throw new FlotillaError("COORDINATOR_NOT_AVAILABLE", `partition ${partition} of ${CONSUMER_OFFSETS_TOPIC} has no leader`);
      }
      const broker = image.brokers.get(registration.leader);
      const endpoint = broker?.endpoints.find((e) => e.name === this.options.listenerName) ?? broker?.endpoints[0];
      if (!broker || broker.fenced || !endpoint) throw new FlotillaError("COORDINATOR_NOT_AVAILABLE", `broker ${registration.leader}, leader of ${CONSUMER_OFFSETS_TOPIC}-${partition}, is not available`);
      return { errorCode: 0, errorMessage: "", nodeId: broker.brokerId, host: endpoint.host, port: endpoint.port };
    } catch (err) {
      return findError(err);
    }
  }

  joinGroup(request: JoinGroupRequest, context: GroupCallContext): Promise<JoinGroupResponse> {
    return this.engine.joinGroup(request, context);
  }

  syncGroup(request: SyncGroupRequest, context: GroupCallContext): Promise<SyncGroupResponse> {
    return this.engine.syncGroup(request, context);
  }

  heartbeat(request: HeartbeatRequest): Promise<HeartbeatResponse> {
    return this.engine.heartbeat(request);
  }

  leaveGroup(request: LeaveGroupRequest): Promise<LeaveGroupResponse> {
    return this.engine.leaveGroup(request);
  }

  offsetCommit(request: OffsetCommitRequest): Promise<OffsetCommitResponse> {
    return this.engine.offsetCommit(request);
  }

  offsetFetch(request: OffsetFetchRequest): Promise<OffsetFetchResponse> {
    return this.engine.offsetFetch(request);
  }

  listGroups(request: ListGroupsRequest): Promise<ListGroupsResponse> {
    return this.engine.listGroups(request);
  }

  describeGroups(request: DescribeGroupsRequest): Promise<DescribeGroupsResponse> {
    return this.engine.describeGroups(request);
  }

  deleteGroups(request: DeleteGroupsRequest): Promise<DeleteGroupsResponse> {
    return this.engine.deleteGroups(request);
  }

  /** Runs `fn` first thing in close() (e.g. to stop following the image). */
  onClose(fn: () => void): void {
    this.closeHooks.push(fn);
  }

  /** Stops the expiry timer and unloads every group (parked calls answer NOT_COORDINATOR). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const fn of this.closeHooks.splice(0)) fn();
    this.cancelExpiry?.();
    await this.applyChain;
    this.engine.close();
  }
}

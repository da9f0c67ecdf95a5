/**
 * The active controller (Kafka's QuorumController, one node's worth): runs commands one
 * at a time against the current image, appends the records they return to the metadata
 * log, and answers once those records are committed and replayed. The image changes
 * only on commit, from the log's listener, never from a command directly, so the same
 * code serves a single-node log and a Raft-replicated one.
 *
 * Order of duties for one command:
 *   1. run the pure handler on the current image -> {records, response}
 *   2. append the records (the log makes them durable and commits them)
 *   3. on commit, replay into the next image and tell the image listeners
 *   4. answer the caller
 */
import { assert, FlotillaError, type Clock, type Random } from "@flotilla/common";
import type { Logger } from "@flotilla/common/logger";
import { EMPTY_IMAGE, MetadataDelta, diffImages, type MetadataChanges, type MetadataImage } from "@flotilla/metadata";
import type { CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse } from "@flotilla/protocol";
import type { AllocateProducerIdsCall, AlterPartitionCall, AlterPartitionReply, BrokerHeartbeatCall, BrokerHeartbeatReply, ControllerChannel, ProducerIdBlock, RegisterBrokerCall } from "./channel.js";
import { brokerHeartbeat, registerBroker } from "./commands/brokers.js";
import { allocateProducerIds, alterPartition, electLeaderless, fenceBroker, preferredLeaderChanges, type ElectionContext } from "./commands/lifecycle.js";
import type { ControllerResult, TopicCreationDefaults } from "./commands/result.js";
import { createPartitions, createTopics, deleteTopics, type CreatePartitionsRequest, type CreatePartitionsResponse } from "./commands/topics.js";
import type { CommittedBatch, MetadataLog } from "./metadata-log.js";

/** Longest close() waits for queued commands. */
const CLOSE_WAIT_MS = 2000;

export type ImageListener = (image: MetadataImage, changes: MetadataChanges) => void;

export interface ControllerOptions {
  readonly log: MetadataLog;
  /** num.partitions and default.replication.factor, used when a request says -1. */
  readonly defaults: TopicCreationDefaults;
  /** Source of topic ids and placement starts. */
  readonly random: Random;
  readonly logger: Logger;
  /** Most commands queued or running at once; more are refused with REQUEST_TIMED_OUT. Default 1000. */
  readonly pendingCommandsMax?: number;
  /**
   * Where commands go when this node is not the active controller (a Raft follower): a
   * client of the controller quorum. Without it such commands fail with NOT_CONTROLLER.
   */
  readonly forwardTo?: ControllerChannel;
  /** Time for broker sessions and the periodic checks. Without it no timers run (tests drive `tick`). */
  readonly clock?: Clock;
  /** broker.session.timeout.ms: a broker not heard from for this long is fenced. Default 9000. */
  readonly brokerSessionTimeoutMs?: number;
  /** unclean.leader.election.enable. Default false. */
  readonly uncleanLeaderElectionEnable?: boolean;
  /** auto.leader.rebalance.enable with leader.imbalance.check.interval.seconds (in ms here); undefined = off. */
  readonly leaderRebalanceIntervalMs?: number;
  /** How long a forwarded command waits for the local image to reach the active controller's offset. Default 5000. */
  readonly forwardCatchUpMs?: number;
}

/** `forward: false`: run here or fail with NOT_CONTROLLER (the controller gRPC service uses it, so requests never bounce between voters). */
export interface CallOptions {
  readonly forward?: boolean;
}

/** A response from a forwarding channel may say the metadata offset it was answered at. */
type Forwarded<T> = T & { readonly metadataOffset?: number };

interface OffsetWaiter {
  readonly offset: number;
  readonly resolve: () => void;
}

export class Controller implements ControllerChannel {
  private image_: MetadataImage = EMPTY_IMAGE;
  private readonly listeners = new Set<ImageListener>();
  private waiters: OffsetWaiter[] = [];
  private queue: Promise<unknown> = Promise.resolve();
  private pending = 0;
  private readonly pendingMax: number;
  private closed = false;
  /** Set when a committed batch failed to replay; every later command is refused. */
  private fatal: unknown;
  /** Batches committed while the stored log is still being replayed at start. */
  private early: CommittedBatch[] | undefined = [];
  private readonly unsubscribe: (() => void)[] = [];
  /** Active controller only: when each broker was last heard from (ms, options.clock). */
  private readonly lastSeenMs = new Map<number, number>();
  /** Brokers in controlled shutdown (active controller only; they keep asking, so a new leader learns it again). */
  private readonly shuttingDown = new Set<number>();
  private wasActive = false;
  /** The log's activeTerm() when this node last became active: a new term means new sessions for everyone. */
  private activeTerm = 0;
  private timer: NodeJS.Timeout | undefined;
  private lastRebalanceMs = 0;
  private ticking = false;

  private constructor(private readonly options: ControllerOptions) {
    this.pendingMax = options.pendingCommandsMax ?? 1000;
    this.unsubscribe.push(options.log.onCommit((batch) => this.handleCommit(batch)));
    if (options.log.onSnapshot) this.unsubscribe.push(options.log.onSnapshot((image) => this.handleSnapshot(image)));
  }

  /** Replays the committed log into the image, then accepts commands. */
  static async start(options: ControllerOptions): Promise<Controller> {
    const controller = new Controller(options);
    await controller.load();
    if (options.clock) {
      const sessionMs = options.brokerSessionTimeoutMs ?? 9000;
      const everyMs = Math.max(20, Math.min(500, Math.floor(sessionMs / 4)));
      controller.timer = setInterval(() => controller.tick(), everyMs);
      controller.timer.unref();
    }
    return controller;
  }

  private async load(): Promise<void> {
    if (this.options.log.currentImage) {
      this.image_ = this.options.log.currentImage();
      const early = this.early ?? [];
      this.early = undefined;
      for (const batch of early) this.handleCommit(batch);
      this.options.logger.info({ offset: this.image_.offset, topics: this.image_.topicsById.size, brokers: this.image_.brokers.size }, "controller loaded the metadata image");
      return;
    }
    const upTo = this.options.log.committedOffset();
    const delta = new MetadataDelta(EMPTY_IMAGE);
    let count = 0;
    for await (const { offset, record } of this.options.log.read(0)) {
      if (offset > upTo) break;
      delta.replay(record, offset);
      count++;
    }
    this.image_ = delta.apply();
    const early = this.early ?? [];
    this.early = undefined;
    for (const batch of early) this.handleCommit(batch);
    this.options.logger.info({ offset: this.image_.offset, records: count, topics: this.image_.topicsById.size, brokers: this.image_.brokers.size }, "controller loaded the metadata log");
  }

  /** The image as of the last committed record. */
  image(): MetadataImage {
    return this.image_;
  }

  /**
   * Subscribes to image changes: the listener is called after each committed batch with
   * the new image and what changed. It must not throw; it may start async work of its
   * own (and must order that work itself). Returns the unsubscribe function.
   */
  subscribe(listener: ImageListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private handleCommit(batch: CommittedBatch): void {
    if (this.early) {
      this.early.push(batch);
      return;
    }
    if (batch.lastOffset <= this.image_.offset) return;
    let delta: MetadataDelta;
    try {
      assert(this.fatal === undefined, "controller already failed");
      assert(batch.baseOffset === this.image_.offset + 1, () => `committed batch starts at ${batch.baseOffset}, but the image is at ${this.image_.offset}`);
      delta = new MetadataDelta(this.image_);
      batch.records.forEach((record, i) => delta.replay(record, batch.baseOffset + i));
    } catch (err) {
      // A committed record that does not replay means a bug or a diverged log: stop
      // serving from this image rather than go on from a wrong one.
      this.fatal ??= err;
      this.options.logger.fatal({ err, baseOffset: batch.baseOffset, imageOffset: this.image_.offset }, "metadata replay failed; the controller refuses every further command");
      throw err;
    }
    this.image_ = delta.apply();
    const changes = delta.changes();
    for (const listener of [...this.listeners]) {
      try {
        listener(this.image_, changes);
      } catch (err) {
        this.options.logger.error({ err, offset: this.image_.offset }, "metadata image listener threw");
      }
    }
    const ready = this.waiters.filter((w) => w.offset <= this.image_.offset);
    this.waiters = this.waiters.filter((w) => w.offset > this.image_.offset);
    for (const w of ready) w.resolve();
  }

  /** A snapshot replaced the image (this node lagged behind the leader's log). */
  private handleSnapshot(image: MetadataImage): void {
    if (this.early) {
      this.early = [];
      this.image_ = image;
      return;
    }
    if (image.offset <= this.image_.offset) return;
    const changes = diffImages(this.image_, image);
    this.image_ = image;
    this.options.logger.info({ offset: image.offset }, "controller image replaced by a snapshot");
    for (const listener of [...this.listeners]) {
      try {
        listener(this.image_, changes);
      } catch (err) {
        this.options.logger.error({ err, offset: this.image_.offset }, "metadata image listener threw");
      }
    }
    const ready = this.waiters.filter((w) => w.offset <= this.image_.offset);
    this.waiters = this.waiters.filter((w) => w.offset > this.image_.offset);
    for (const w of ready) w.resolve();
  }

  private waitForOffset(offset: number): Promise<void> {
    if (this.image_.offset >= offset) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ offset, resolve }));
  }

  /** Waits until the image reaches `offset`, at most `ms`; resolves either way. */
  waitForImageOffset(offset: number, ms: number): Promise<void> {
    if (this.image_.offset >= offset) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      timer.unref();
      void this.waitForOffset(offset).then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** True when this node runs commands itself (the active controller). */
  isActive(): boolean {
    return this.options.log.isActive ? this.options.log.isActive() : true;
  }

  /** "host:port" of the active controller's controller listener, when known. */
  activeAddress(): string | undefined {
    return this.options.log.activeAddress?.();
  }

  private context(): ElectionContext {
    return { shuttingDown: this.shuttingDown, uncleanLeaderElectionEnable: this.options.uncleanLeaderElectionEnable ?? false };
  }

  private notController(name: string): FlotillaError {
    const hint = this.activeAddress();
    return new FlotillaError("NOT_CONTROLLER", `this node is not the active controller; ${name} refused${hint ? ` (the active controller is at ${hint})` : ""}`, hint ? { leaderHint: hint } : {});
  }

  /**
   * Runs `name` here when this node is the active controller; otherwise (or when the log
   * refuses with NOT_CONTROLLER) sends it to the active controller through `forwardTo`
   * and waits, bounded, until the local image has the forwarded command's records.
   */
  private async dispatch<R>(name: string, local: () => Promise<R>, remote: (channel: ControllerChannel) => Promise<Forwarded<R>>, how: CallOptions | undefined): Promise<R> {
    const forward = async (): Promise<R> => {
      const channel = how?.forward === false ? undefined : this.options.forwardTo;
      if (!channel) throw this.notController(name);
      const response = await remote(channel);
      if (typeof response === "object" && response !== null && typeof response.metadataOffset === "number") {
        await this.waitForImageOffset(response.metadataOffset, this.options.forwardCatchUpMs ?? 5000);
      }
      return response;
    };
    if (!this.isActive()) return forward();
    try {
      return await local();
    } catch (err) {
      if (FlotillaError.is(err, "NOT_CONTROLLER") && this.options.forwardTo && how?.forward !== false) return forward();
      throw err;
    }
  }

  /** Runs a command after the ones before it; resolves after its records are replayed. */
  private run<R>(name: string, handler: (image: MetadataImage) => ControllerResult<R>): Promise<R> {
    if (this.closed) return Promise.reject(new FlotillaError("SHUTTING_DOWN", `controller is closed; ${name} refused`));
    if (this.fatal !== undefined) {
      return Promise.reject(new FlotillaError("UNKNOWN_SERVER_ERROR", `controller stopped after a metadata replay failure (${String(this.fatal)}); ${name} refused`, { cause: this.fatal }));
    }
    if (this.pending >= this.pendingMax) {
      return Promise.reject(new FlotillaError("REQUEST_TIMED_OUT", `controller has ${this.pending} commands queued (limit ${this.pendingMax}); ${name} refused`));
    }
    this.pending++;
    const result = this.queue.then(async () => {
      try {
        if (!this.isActive()) throw this.notController(name);
        const { records, response } = handler(this.image_);
        if (records.length > 0) {
          const { lastOffset } = await this.options.log.append(records);
          await this.waitForOffset(lastOffset);
          this.options.logger.debug({ command: name, records: records.length, offset: lastOffset }, "controller command committed");
        }
        return response;
      } finally {
        this.pending--;
      }
    });
    this.queue = result.catch(() => undefined);
    return result;
  }

  createTopics(request: CreateTopicsRequest, how?: CallOptions): Promise<CreateTopicsResponse> {
    return this.dispatch(
      "CreateTopics",
      () => this.run("CreateTopics", (image) => createTopics(image, request, this.options.defaults, this.options.random)),
      (c) => c.createTopics(request),
      how,
    );
  }

  deleteTopics(request: DeleteTopicsRequest, how?: CallOptions): Promise<DeleteTopicsResponse> {
    return this.dispatch("DeleteTopics", () => this.run("DeleteTopics", (image) => deleteTopics(image, request)), (c) => c.deleteTopics(request), how);
  }

  createPartitions(request: CreatePartitionsRequest, how?: CallOptions): Promise<CreatePartitionsResponse> {
    return this.dispatch("CreatePartitions", () => this.run("CreatePartitions", (image) => createPartitions(image, request, this.options.random)), (c) => c.createPartitions(request), how);
  }

  /** Registers a broker; resolves with its broker epoch. A new incarnation replaces the old registration. */
  registerBroker(request: RegisterBrokerCall, how?: CallOptions): Promise<{ brokerEpoch: number }> {
    const full = { ...request, rack: request.rack ?? null };
    return this.dispatch(
      "RegisterBroker",
      async () => {
        await this.run("RegisterBroker", (image) => {
          const result = registerBroker(image, full, this.context());
          if (result.records.length > 0) this.shuttingDown.delete(request.brokerId);
          return result;
        });
        const registration = this.image_.brokers.get(request.brokerId);
        assert(registration !== undefined && registration.incarnationId === request.incarnationId, `broker ${request.brokerId} not registered after its RegisterBroker record committed`);
        this.touch(request.brokerId);
        return { brokerEpoch: registration.brokerEpoch };
      },
      (c) => c.registerBroker(full),
      how,
    );
  }

  brokerHeartbeat(request: BrokerHeartbeatCall | (Omit<BrokerHeartbeatCall, "wantShutDown"> & { wantShutDown?: boolean }), how?: CallOptions): Promise<BrokerHeartbeatReply> {
    const full: BrokerHeartbeatCall = { ...request, wantShutDown: request.wantShutDown ?? false };
    return this.dispatch(
      "BrokerHeartbeat",
      () =>
        this.run("BrokerHeartbeat", (image) => {
          const registered = image.brokers.get(full.brokerId);
          if (registered && registered.brokerEpoch === full.brokerEpoch) {
            this.touch(full.brokerId);
            if (full.wantShutDown && !this.shuttingDown.has(full.brokerId)) {
              this.shuttingDown.add(full.brokerId);
              this.options.logger.info({ brokerId: full.brokerId }, "broker asked for a controlled shutdown; moving its leaderships away");
            }
          }
          return brokerHeartbeat(image, full, this.context());
        }),
      (c) => c.brokerHeartbeat(full),
      how,
    );
  }

  alterPartition(request: AlterPartitionCall, how?: CallOptions): Promise<AlterPartitionReply> {
    return this.dispatch("AlterPartition", () => this.run("AlterPartition", (image) => alterPartition(image, request, this.context())), (c) => c.alterPartition(request), how);
  }

  allocateProducerIds(request: AllocateProducerIdsCall, how?: CallOptions): Promise<ProducerIdBlock> {
    return this.dispatch("AllocateProducerIds", () => this.run("AllocateProducerIds", (image) => allocateProducerIds(image, request)), (c) => c.allocateProducerIds(request), how);
  }

  private touch(brokerId: number): void {
    if (this.options.clock) this.lastSeenMs.set(brokerId, this.options.clock.monotonicMs());
  }

  /**
   * The active controller's periodic duties, at `nowMs`: fence the broker whose session
   * expired longest ago (one per call, moving its leaderships away), elect leaders for leaderless partitions
   * that have a usable ISR member, and, when enabled, move leadership back to preferred
   * replicas. A node that just became active gives every broker a fresh session first
   * (it has not heard from any yet). Returns once the resulting commands are committed.
   */
  async tick(nowMs = this.options.clock?.monotonicMs() ?? 0): Promise<void> {
    if (this.closed || this.fatal !== undefined || this.ticking) return;
    this.ticking = true;
    try {
      await this.tickOnce(nowMs);
    } finally {
      this.ticking = false;
    }
  }

  private async tickOnce(nowMs: number): Promise<void> {
    const active = this.isActive();
    if (!active) {
      this.wasActive = false;
      return;
    }
    const term = this.options.log.activeTerm?.() ?? 0;
    if (!this.wasActive || term !== this.activeTerm) {
      // Kafka's BrokerHeartbeatManager starts over on a new active controller: no broker
      // is fenced for a silence this node did not observe, so each gets a full session
      // from now (its heartbeats may still be finding their way here).
      this.wasActive = true;
      this.activeTerm = term;
      this.lastSeenMs.clear();
      this.shuttingDown.clear();
      for (const id of this.image_.brokers.keys()) this.lastSeenMs.set(id, nowMs);
      this.lastRebalanceMs = nowMs;
      this.options.logger.info({ brokers: this.image_.brokers.size, offset: this.image_.offset, term }, "this node is now the active controller");
    }
    const sessionMs = this.options.brokerSessionTimeoutMs ?? 9000;
    try {
      // Kafka's maybeFenceOneStaleBroker: at most one broker per check, the one silent
      // longest. When several sessions lapse together (heartbeats still finding a new
      // controller), fencing all at once would shrink every ISR onto whichever broker is
      // fenced last, perhaps the one really gone, leaving its partitions leaderless; the
      // others get until the next check to be heard.
      let stale: { brokerId: number; seenMs: number } | undefined;
      for (const broker of this.image_.brokers.values()) {
        if (broker.fenced) continue;
        if (!this.lastSeenMs.has(broker.brokerId)) this.lastSeenMs.set(broker.brokerId, nowMs);
        const seenMs = this.lastSeenMs.get(broker.brokerId) ?? nowMs;
        if (nowMs - seenMs <= sessionMs) continue;
        if (!stale || seenMs < stale.seenMs || (seenMs === stale.seenMs && broker.brokerId < stale.brokerId)) stale = { brokerId: broker.brokerId, seenMs };
      }
      if (stale) {
        const { brokerId, seenMs } = stale;
        await this.run("FenceBroker", (image) => {
          // Heard from while this command waited in the queue: its session is alive again.
          if ((this.lastSeenMs.get(brokerId) ?? seenMs) !== seenMs) return { records: [], response: undefined };
          this.options.logger.warn({ brokerId, silentMs: nowMs - seenMs, sessionTimeoutMs: sessionMs }, "broker session expired; fencing it and moving its leaderships");
          return fenceBroker(image, brokerId, this.context());
        });
      }
      if (electLeaderless(this.image_, this.context()).length > 0) {
        await this.run("ElectLeaders", (image) => ({ records: electLeaderless(image, this.context()), response: undefined }));
      }
      const rebalanceMs = this.options.leaderRebalanceIntervalMs;
      if (rebalanceMs !== undefined && nowMs - this.lastRebalanceMs >= rebalanceMs) {
        this.lastRebalanceMs = nowMs;
        const moves = preferredLeaderChanges(this.image_, this.context());
        if (moves.length > 0) {
          this.options.logger.info({ partitions: moves.length }, "moving leadership back to preferred replicas");
          await this.run("PreferredLeaderElection", (image) => ({ records: preferredLeaderChanges(image, this.context()), response: undefined }));
        }
      }
    } catch (err) {
      if (!FlotillaError.is(err, "NOT_CONTROLLER") && !FlotillaError.is(err, "SHUTTING_DOWN")) this.options.logger.warn({ err }, "controller periodic check failed");
    }
  }

  /** Refuses new commands, waits for queued ones, and stops following the log (the owner closes the log). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    // Commands waiting on a quorum that is gone end by their own timeouts; do not hold the close for them.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.queue, new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS)))]);
    clearTimeout(timer);
    for (const fn of this.unsubscribe) fn();
    this.listeners.clear();
  }
}

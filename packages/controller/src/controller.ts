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
import { assert, FlotillaError, type Random } from "@flotilla/common";
import type { Logger } from "@flotilla/common/logger";
import { EMPTY_IMAGE, MetadataDelta, type MetadataChanges, type MetadataImage } from "@flotilla/metadata";
import type { CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse } from "@flotilla/protocol";
import { brokerHeartbeat, registerBroker, type BrokerHeartbeatRequest, type BrokerHeartbeatResponse, type RegisterBrokerRequest } from "./commands/brokers.js";
import type { ControllerResult, TopicCreationDefaults } from "./commands/result.js";
import { createPartitions, createTopics, deleteTopics, type CreatePartitionsRequest, type CreatePartitionsResponse } from "./commands/topics.js";
import type { CommittedBatch, MetadataLog } from "./metadata-log.js";

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
}

interface OffsetWaiter {
  readonly offset: number;
  readonly resolve: () => void;
}

export class Controller {
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
  private readonly unsubscribe: () => void;

  private constructor(private readonly options: ControllerOptions) {
    this.pendingMax = options.pendingCommandsMax ?? 1000;
    this.unsubscribe = options.log.onCommit((batch) => this.handleCommit(batch));
  }

  /** Replays the committed log into the image, then accepts commands. */
  static async start(options: ControllerOptions): Promise<Controller> {
    const controller = new Controller(options);
    await controller.load();
    return controller;
  }

  private async load(): Promise<void> {
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

  private waitForOffset(offset: number): Promise<void> {
    if (this.image_.offset >= offset) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ offset, resolve }));
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

  createTopics(request: CreateTopicsRequest): Promise<CreateTopicsResponse> {
    return this.run("CreateTopics", (image) => createTopics(image, request, this.options.defaults, this.options.random));
  }

  deleteTopics(request: DeleteTopicsRequest): Promise<DeleteTopicsResponse> {
    return this.run("DeleteTopics", (image) => deleteTopics(image, request));
  }

  createPartitions(request: CreatePartitionsRequest): Promise<CreatePartitionsResponse> {
    return this.run("CreatePartitions", (image) => createPartitions(image, request, this.options.random));
  }

  /** Registers a broker; resolves with its broker epoch. */
  async registerBroker(request: RegisterBrokerRequest): Promise<{ brokerEpoch: number }> {
    await this.run("RegisterBroker", (image) => registerBroker(image, request));
    const registration = this.image_.brokers.get(request.brokerId);
    assert(registration !== undefined && registration.incarnationId === request.incarnationId, `broker ${request.brokerId} not registered after its RegisterBroker record committed`);
    return { brokerEpoch: registration.brokerEpoch };
  }

  brokerHeartbeat(request: BrokerHeartbeatRequest): Promise<BrokerHeartbeatResponse> {
    return this.run("BrokerHeartbeat", (image) => brokerHeartbeat(image, request));
  }

  /** Refuses new commands, waits for queued ones, and stops following the log (the owner closes the log). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue;
    this.unsubscribe();
    this.listeners.clear();
  }
}

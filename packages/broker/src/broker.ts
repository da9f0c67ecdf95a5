/**
 * The Broker service (BrokerApi): data-plane requests go to the partitions hosted here,
 * metadata requests read the image, and topic changes go through the controller. After a
 * controller command the handler waits until this broker has applied the resulting
 * image, so a client that created a topic can produce to it at once.
 */
import { FlotillaError, assert, topicNameProblem } from "@flotilla/common";
import type { Logger } from "@flotilla/common/logger";
import type { Controller } from "@flotilla/controller";
import type { TopicConfig } from "@flotilla/metadata";
import {
  errorFields,
  errorFromFields,
  type BrokerApi,
  type CreatePartitionsRequest,
  type CreatePartitionsResponse,
  type CreateTopicsRequest,
  type CreateTopicsResponse,
  type DeleteTopicsRequest,
  type DeleteTopicsResponse,
  type DescribeTopicsRequest,
  type DescribeTopicsResponse,
  type InitProducerIdRequest,
  type InitProducerIdResponse,
  type FetchRequest,
  type FetchResponse,
  type ListOffsetsRequest,
  type ListOffsetsResponse,
  type MetadataRequest,
  type MetadataResponse,
  type OffsetForLeaderEpochRequest,
  type OffsetForLeaderEpochResponse,
  type ProduceRequest,
  type ProduceResponse,
  type ReplicationApi,
  type TopicMetadata,
} from "@flotilla/protocol";
import { handleFetch, type FetchLimits } from "./fetch.js";
import { handleListOffsets } from "./list-offsets.js";
import { handleOffsetForLeaderEpoch } from "./offset-for-leader-epoch.js";
import { handleProduce } from "./produce.js";
import { ProducerIdManager } from "./producer-ids.js";
import type { ReplicaManager } from "./replica-manager.js";
import { brokerInfos, describeTopic, topicMetadata } from "./topic-metadata.js";
import { requireItems, requireNames } from "./validation.js";

export interface BrokerOptions {
  readonly nodeId: number;
  readonly clusterId: string;
  /** The node id of the active controller as this node last learned it, read at every Metadata request. */
  readonly controllerId: () => number;
  /** Name of the listener clients use, to pick each broker's endpoint. */
  readonly listenerName: string;
  readonly controller: Controller;
  readonly replicas: ReplicaManager;
  readonly topicDefaults: TopicConfig;
  /** auto.create.topics.enable */
  readonly autoCreateTopicsEnable: boolean;
  readonly fetchLimits: FetchLimits;
  readonly nowMs: () => number;
  readonly logger: Logger;
  /**
   * Where InitProducerId gets producer ids. Default: blocks from `controller`
   * (allocateProducerIds) with this broker's epoch as the controller's image has it.
   */
  readonly producerIds?: ProducerIdManager;
}

export class Broker implements BrokerApi, ReplicationApi {
  private readonly producerIds: ProducerIdManager;

  constructor(private readonly options: BrokerOptions) {
    const { controller, nodeId } = options;
    this.producerIds =
      options.producerIds ??
      new ProducerIdManager(
        () => controller.allocateProducerIds({ brokerId: nodeId, brokerEpoch: controller.image().brokers.get(nodeId)?.brokerEpoch ?? -1 }),
        options.logger.child({ component: "producer-ids" }),
      );
  }

  /** Kafka's InitProducerId for an idempotent producer: a fresh producer id, epoch 0. */
  async initProducerId(request: InitProducerIdRequest): Promise<InitProducerIdResponse> {
    try {
      if (request.transactionalId) throw new FlotillaError("INVALID_REQUEST", `transactional id "${request.transactionalId}" given; transactions are not supported, only idempotence`);
      const producerId = await this.producerIds.generateProducerId();
      return { errorCode: 0, errorMessage: "", producerId, producerEpoch: 0 };
    } catch (err) {
      return { ...errorFields(err), producerId: -1, producerEpoch: -1 };
    }
  }

  produce(request: ProduceRequest): Promise<ProduceResponse> {
    return handleProduce(this.options.replicas, request, this.options.nowMs);
  }

  fetch(request: FetchRequest, signal?: AbortSignal): Promise<FetchResponse> {
    return handleFetch(this.options.replicas, request, this.options.fetchLimits, signal);
  }

  listOffsets(request: ListOffsetsRequest): Promise<ListOffsetsResponse> {
    return handleListOffsets(this.options.replicas, request);
  }

  offsetForLeaderEpoch(request: OffsetForLeaderEpochRequest): Promise<OffsetForLeaderEpochResponse> {
    return handleOffsetForLeaderEpoch(this.options.replicas, request);
  }

  /** Waits until the partitions hosted here reflect the controller's latest image. */
  private async catchUp(): Promise<void> {
    await this.options.replicas.waitForOffset(this.options.controller.image().offset);
  }

  async metadata(request: MetadataRequest): Promise<MetadataResponse> {
    const { controller } = this.options;
    const names = request.topics ?? [];
    requireNames(names, "topics");
    let creationErrors = new Map<string, FlotillaError>();
    if (names.length > 0 && request.allowAutoTopicCreation && this.options.autoCreateTopicsEnable) {
      const missing = [...new Set(names)].filter((n) => !controller.image().topicsByName.has(n) && topicNameProblem(n) === undefined);
      if (missing.length > 0) creationErrors = await this.autoCreate(missing);
    }
    const image = controller.image();
    let topics: TopicMetadata[];
    if (names.length === 0) {
      topics = [...image.topicsByName.values()].sort((a, b) => a.name.localeCompare(b.name)).map((t) => topicMetadata(image, t));
    } else {
      topics = names.map((name) => {
        const t = image.topicsByName.get(name);
        if (t) return topicMetadata(image, t);
        const problem = topicNameProblem(name);
        const err = problem
          ? new FlotillaError("INVALID_TOPIC_EXCEPTION", problem)
          : (creationErrors.get(name) ?? new FlotillaError("UNKNOWN_TOPIC_OR_PARTITION", `topic "${name}" does not exist`));
        return { ...errorFields(err), name, topicId: "", isInternal: false, partitions: [] };
      });
    }
    return {
      clusterId: this.options.clusterId,
      controllerId: this.options.controllerId(),
      brokers: brokerInfos(image, this.options.listenerName),
      topics,
    };
  }

  /**
   * Kafka's auto-creation: unknown topics named in Metadata get the broker defaults.
   * Returns why a topic could not be created (TOPIC_ALREADY_EXISTS is no failure: a
   * concurrent request made it), for the per-topic answer.
   */
  private async autoCreate(names: string[]): Promise<Map<string, FlotillaError>> {
    const response = await this.options.controller.createTopics({
      topics: names.map((name) => ({ name, numPartitions: -1, replicationFactor: -1, configs: {} })),
      timeoutMs: 0,
      validateOnly: false,
    });
    const errors = new Map<string, FlotillaError>();
    for (const t of response.topics) {
      const err = errorFromFields(t.errorCode, t.errorMessage);
      if (!err) this.options.logger.info({ topic: t.name, partitions: t.numPartitions }, "auto-created topic");
      else if (err.errorName !== "TOPIC_ALREADY_EXISTS") {
        this.options.logger.warn({ topic: t.name, error: t.errorMessage }, "auto-creating topic failed");
        errors.set(t.name, err);
      }
    }
    await this.catchUp();
    return errors;
  }

  async createTopics(request: CreateTopicsRequest): Promise<CreateTopicsResponse> {
    requireItems(request.topics, "topics");
    const response = await this.options.controller.createTopics({ ...request, topics: request.topics.map((t) => ({ ...t, configs: t.configs ?? {} })) });
    await this.catchUp();
    return response;
  }

  async deleteTopics(request: DeleteTopicsRequest): Promise<DeleteTopicsResponse> {
    requireItems(request.names, "names");
    const response = await this.options.controller.deleteTopics(request);
    await this.catchUp();
    return response;
  }

  /**
   * Kafka's CreatePartitions: the controller grows each topic to its new total count and
   * places the new partitions. Checked here, per topic: a name given twice
   * (INVALID_REQUEST) and manual assignments, which are not supported yet
   * (INVALID_REPLICA_ASSIGNMENT). Answers in request order.
   */
  async createPartitions(request: CreatePartitionsRequest): Promise<CreatePartitionsResponse> {
    requireItems(request.topics, "topics");
    requireNames(request.topics.map((t) => t.name), "topics.name");
    const counts = new Map<string, number>();
    for (const t of request.topics) counts.set(t.name, (counts.get(t.name) ?? 0) + 1);
    const refused = new Map<number, FlotillaError>();
    request.topics.forEach((t, i) => {
      if ((counts.get(t.name) ?? 0) > 1) refused.set(i, new FlotillaError("INVALID_REQUEST", `topic "${t.name}" is named more than once in the request`));
      else if ((t.assignments ?? []).length > 0) {
        refused.set(i, new FlotillaError("INVALID_REPLICA_ASSIGNMENT", `topic "${t.name}": manual assignments of new partitions are not supported; leave them out and the controller places the partitions`));
      }
    });
    const forwarded = request.topics.filter((_, i) => !refused.has(i));
    const answers =
      forwarded.length === 0
        ? []
        : (await this.options.controller.createPartitions({ topics: forwarded.map((t) => ({ name: t.name, count: t.count })), validateOnly: request.validateOnly })).results;
    if (forwarded.length > 0) await this.catchUp();
    let next = 0;
    return {
      results: request.topics.map((t, i) => {
        const err = refused.get(i);
        if (err) return { name: t.name, ...errorFields(err) };
        const answer = answers[next++];
        // The controller answers each topic it was given, in order; anything else is a bug.
        assert(answer !== undefined && answer.name === t.name, `controller answered CreatePartitions out of order at "${t.name}"`);
        return { name: answer.name, errorCode: answer.errorCode, errorMessage: answer.errorMessage };
      }),
    };
  }

  async describeTopics(request: DescribeTopicsRequest): Promise<DescribeTopicsResponse> {
    const names = request.names ?? [];
    requireNames(names, "names");
    const image = this.options.controller.image();
    const defaults = this.options.topicDefaults;
    if (names.length === 0) {
      return { topics: [...image.topicsByName.values()].sort((a, b) => a.name.localeCompare(b.name)).map((t) => describeTopic(image, t, defaults)) };
    }
    return {
      topics: names.map((name) => {
        const t = image.topicsByName.get(name);
        if (t) return describeTopic(image, t, defaults);
        const err = new FlotillaError("UNKNOWN_TOPIC_OR_PARTITION", `topic "${name}" does not exist`);
        return { name, ...errorFields(err), topicId: "", replicationFactor: 0, partitions: [], configs: {}, overriddenConfigs: [] };
      }),
    };
  }
}

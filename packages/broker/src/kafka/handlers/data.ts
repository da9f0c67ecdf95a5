/**
 * The Kafka data-path APIs (Produce, Fetch, ListOffsets, Metadata, CreateTopics,
 * DeleteTopics, InitProducerId, DescribeConfigs) answered through the same BrokerApi the
 * gRPC edge calls, so both protocols share logs, validation, idempotence and errors.
 * Each handler only translates: Kafka-shaped request -> BrokerApi request, BrokerApi
 * response -> Kafka-shaped response, Flotilla codes -> Kafka codes (kafkaCodeOf).
 *
 * What the Kafka protocol has and Flotilla does not, and how it is answered:
 * - transactions: a transactional Produce or InitProducerId gets INVALID_REQUEST (Kafka
 *   has no "transactions unsupported" code that clients handle better);
 * - fetch sessions (KIP-227): every fetch is a full fetch; a client asking for a session
 *   gets session id 0 ("no session"), which KIP-227 allows;
 * - read_committed: with no transactions the last stable offset is the high watermark,
 *   so both isolation levels read up to it and no aborted transactions are listed;
 * - manual replica assignments in CreateTopics: INVALID_REPLICA_ASSIGNMENT per topic.
 */
import { FlotillaError } from "@flotilla/common";
import { errorFromFields, type FetchRequest, type PartitionMetadata } from "@flotilla/protocol";
import {
  KAFKA_AUTHORIZED_OPERATIONS_OMITTED,
  KAFKA_FETCH_SESSION_ID_NOT_FOUND,
  KAFKA_INVALID_FETCH_SESSION_EPOCH,
  KafkaConfigResourceType,
  KafkaConfigSource,
  KafkaConfigType,
  createTopicsApi,
  deleteTopicsApi,
  describeConfigsApi,
  fetchApi,
  initProducerIdApi,
  kafkaCodeOf,
  kafkaCodeOfError,
  kafkaCodeOfName,
  listOffsetsApi,
  metadataApi,
  produceApi,
  type KafkaCreateTopicsRequest,
  type KafkaCreateTopicsResponse,
  type KafkaDeleteTopicsRequest,
  type KafkaDeleteTopicsResponse,
  type KafkaDescribeConfigsEntry,
  type KafkaDescribeConfigsRequest,
  type KafkaDescribeConfigsResponse,
  type KafkaDescribeConfigsResult,
  type KafkaFetchRequest,
  type KafkaFetchResponse,
  type KafkaInitProducerIdRequest,
  type KafkaInitProducerIdResponse,
  type KafkaListOffsetsRequest,
  type KafkaListOffsetsResponse,
  type KafkaMetadataPartition,
  type KafkaMetadataRequest,
  type KafkaMetadataResponse,
  type KafkaProduceRequest,
  type KafkaProduceResponse,
} from "@flotilla/protocol/kafka";
import { SERVER_CONFIG_DEFS } from "../../config.js";
import { BROKER_KEY_OF_TOPIC_KEY, TOPIC_KEY_OF_BROKER_KEY } from "../config-synonyms.js";
import type { KafkaBackends, KafkaHandler, KafkaHandlerFactory, KafkaRequestContext } from "../handler.js";

const EMPTY_RECORDS: Buffer = Buffer.alloc(0);

/** Kafka's nullable strings (error_message, rack) where BrokerApi answers "" for none. */
const nullIfEmpty = (text: string): string | null => (text === "" ? null : text);

/** The Kafka error code and message for something thrown while answering one item. */
function itemError(err: unknown): { errorCode: number; errorMessage: string | null } {
  return { errorCode: kafkaCodeOfError(err), errorMessage: err instanceof Error ? err.message : String(err) };
}

function handler<Req, Res>(spec: KafkaHandler<Req, Res>["spec"], handle: (req: Req, ctx: KafkaRequestContext) => Promise<Res | undefined>): KafkaHandler {
  return { spec, handle } as KafkaHandler;
}

// ---------------------------------------------------------------------------------------
// Produce

async function produce(backends: KafkaBackends, req: KafkaProduceRequest, ctx: KafkaRequestContext): Promise<KafkaProduceResponse | undefined> {
  const { broker, logger } = backends;
  const apiVersion = ctx.apiVersion;
  if (apiVersion < 3) {
    // Advertised only for librdkafka's compression check (see the codec); v0-v2 carry
    // message sets of magic 0/1, which Flotilla does not store.
    if (req.acks === 0) return undefined;
    const err = new FlotillaError("UNSUPPORTED_FOR_MESSAGE_FORMAT", `Produce v${apiVersion} carries message format v0/v1; Flotilla stores RecordBatch v2 only (Produce v3+)`);
    return produceApi.errorResponse(req, apiVersion, kafkaCodeOfError(err), err.message);
  }
  if (req.transactionalId !== null) {
    const err = new FlotillaError("INVALID_REQUEST", `transactional produce (transactional_id "${req.transactionalId}") is not supported; Flotilla serves idempotent producers only`);
    if (req.acks === 0) return undefined;
    return produceApi.errorResponse(req, apiVersion, kafkaCodeOfError(err), err.message);
  }
  // Kafka answers a produce with no partitions with an empty response; BrokerApi refuses
  // empty lists, so they are answered here.
  const topics = req.topics.filter((t) => t.partitions.length > 0);
  let answer: KafkaProduceResponse = { topics: [], throttleTimeMs: 0 };
  if (topics.length > 0) {
    const res = await broker.produce({
      acks: req.acks,
      timeoutMs: req.timeoutMs,
      topics: topics.map((t) => ({
        name: t.name,
        // The client's bytes go on as they are, as on the gRPC path: the decoder hands out a
        // view of this request's frame, which belongs to this request alone (socket reads are
        // fresh buffers), so the append may stamp LogAppendTime into it in place.
        partitions: t.partitions.map((p) => ({ partition: p.index, records: p.records ?? EMPTY_RECORDS })),
      })),
    });
    answer = {
      throttleTimeMs: 0,
      topics: res.topics.map((t) => ({
        name: t.name,
        partitions: t.partitions.map((p) => ({
          index: p.partition,
          errorCode: kafkaCodeOf(p.errorCode),
          baseOffset: p.baseOffset,
          logAppendTimeMs: p.errorCode === 0 ? p.logAppendTimeMs : -1,
          logStartOffset: p.logStartOffset,
          recordErrors: [],
          errorMessage: nullIfEmpty(p.errorMessage),
        })),
      })),
    };
  }
  if (req.acks === 0) {
    // No response: the client would never learn of a failure. Kafka closes the connection
    // then, so the producer notices, refreshes its metadata and finds the new leader.
    const failed = answer.topics.flatMap((t) => t.partitions.filter((p) => p.errorCode !== 0).map((p) => `${t.name}-${p.index}: ${p.errorMessage ?? p.errorCode}`));
    if (failed.length > 0) {
      logger.debug({ failed }, "acks=0 produce failed for some partitions; closing the connection so the producer refreshes metadata");
      ctx.closeConnection?.(`acks=0 produce failed: ${failed.slice(0, 3).join("; ")}`);
    }
    return undefined;
  }
  return answer;
}

/**
 * acks=0: the client reads no response, so nothing may be sent, not even the error
 * response the listener makes of a thrown error (it would arrive unasked and confuse the
 * client's correlation ids). A failure closes the connection instead, as Kafka does.
 */
async function produceWithoutResponse(backends: KafkaBackends, req: KafkaProduceRequest, ctx: KafkaRequestContext): Promise<undefined> {
  try {
    await produce(backends, req, ctx);
  } catch (err) {
    backends.logger.debug({ err: err instanceof Error ? err.message : String(err) }, "acks=0 produce failed as a whole; closing the connection so the producer refreshes metadata");
    ctx.closeConnection?.(`acks=0 produce failed: ${err instanceof Error ? err.message : String(err)}`);
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------
// Fetch

function fetchSessionError(errorCode: number): KafkaFetchResponse {
  return { throttleTimeMs: 0, errorCode, sessionId: 0, topics: [] };
}

async function fetch(backends: KafkaBackends, req: KafkaFetchRequest, ctx: KafkaRequestContext): Promise<KafkaFetchResponse> {
  // KIP-227: session id 0 with epoch -1 is a sessionless full fetch; id 0 with epoch 0 asks
  // for a new session, which we decline by answering session id 0 (a full fetch again).
  // We never hand out a session id, so any other id is unknown, and id 0 with a positive
  // epoch is malformed.
  if (req.sessionId !== 0) return fetchSessionError(KAFKA_FETCH_SESSION_ID_NOT_FOUND);
  if (req.sessionEpoch !== -1 && req.sessionEpoch !== 0) return fetchSessionError(KAFKA_INVALID_FETCH_SESSION_EPOCH);
  const topics = req.topics.filter((t) => t.partitions.length > 0);
  if (topics.length === 0) return { throttleTimeMs: 0, errorCode: 0, sessionId: 0, topics: [] };
  const request: FetchRequest = {
    // Always a consumer fetch: Flotilla's followers replicate over gRPC, and a replica id
    // here would let a Kafka client move follower state (ISR, high watermark).
    replicaId: -1,
    maxWaitMs: req.maxWaitMs,
    minBytes: req.minBytes,
    maxBytes: req.maxBytes,
    topics: topics.map((t) => ({
      name: t.topic,
      partitions: t.partitions.map((p) => ({ partition: p.partition, fetchOffset: p.fetchOffset, partitionMaxBytes: p.partitionMaxBytes, currentLeaderEpoch: p.currentLeaderEpoch })),
    })),
  };
  const res = await backends.broker.fetch(request, ctx.signal);
  return {
    throttleTimeMs: 0,
    errorCode: 0,
    sessionId: 0,
    topics: res.topics.map((t) => ({
      topic: t.name,
      partitions: t.partitions.map((p) => ({
        partitionIndex: p.partition,
        errorCode: kafkaCodeOf(p.errorCode),
        highWatermark: p.highWatermark,
        // No transactions: everything below the high watermark is stable.
        lastStableOffset: p.highWatermark,
        logStartOffset: p.logStartOffset,
        abortedTransactions: [],
        preferredReadReplica: -1,
        records: p.records ?? EMPTY_RECORDS,
      })),
    })),
  };
}

// ---------------------------------------------------------------------------------------
// ListOffsets

async function listOffsets(backends: KafkaBackends, req: KafkaListOffsetsRequest): Promise<KafkaListOffsetsResponse> {
  const topics = req.topics.filter((t) => t.partitions.length > 0);
  if (topics.length === 0) return { throttleTimeMs: 0, topics: [] };
  const res = await backends.broker.listOffsets({
    // Consumer view (up to the high watermark) whatever the client claims, as for Fetch.
    replicaId: -1,
    topics: topics.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => ({ partition: p.partitionIndex, timestamp: p.timestamp })) })),
  });
  return {
    throttleTimeMs: 0,
    topics: res.topics.map((t, i) => ({
      name: t.name,
      partitions: t.partitions.map((p, j) => {
        // BrokerApi.listOffsets takes no current leader epoch, but answers the leader's
        // epoch; the read changes nothing, so fencing after it is the same as before it.
        const current = topics[i]?.partitions[j]?.currentLeaderEpoch ?? -1;
        if (p.errorCode === 0 && current >= 0 && current !== p.leaderEpoch) {
          const name = current < p.leaderEpoch ? "FENCED_LEADER_EPOCH" : "UNKNOWN_LEADER_EPOCH";
          return { partitionIndex: p.partition, errorCode: kafkaCodeOfName(name), timestamp: -1, offset: -1, leaderEpoch: -1 };
        }
        return { partitionIndex: p.partition, errorCode: kafkaCodeOf(p.errorCode), timestamp: p.timestamp, offset: p.offset, leaderEpoch: p.leaderEpoch };
      }),
    })),
  };
}

// ---------------------------------------------------------------------------------------
// Metadata

function partitionOf(p: PartitionMetadata): KafkaMetadataPartition {
  return {
    errorCode: kafkaCodeOf(p.errorCode),
    partitionIndex: p.partition,
    leaderId: p.leaderId,
    leaderEpoch: p.leaderEpoch,
    replicaNodes: p.replicas,
    isrNodes: p.isr,
    offlineReplicas: p.offlineReplicas,
  };
}

async function metadata(backends: KafkaBackends, req: KafkaMetadataRequest): Promise<KafkaMetadataResponse> {
  // BrokerApi reads an empty list as "every topic"; Kafka's v1+ empty list means "none"
  // (clients send it to learn the brokers), so that case drops the topics.
  const wantsNone = req.topics !== null && req.topics.length === 0;
  const res = await backends.broker.metadata({ topics: req.topics ?? [], allowAutoTopicCreation: req.allowAutoTopicCreation });
  // Kafka lists only brokers that can serve (unfenced); replicas on others show up in
  // offline_replicas.
  const brokers = res.brokers.filter((b) => !b.fenced).map((b) => ({ nodeId: b.nodeId, host: b.host, port: b.port, rack: nullIfEmpty(b.rack) }));
  // Clients send admin requests to the controller id. A controller-only node serves no
  // Kafka listener, and any broker forwards topic changes to the active controller, so
  // (like KRaft Kafka) name a reachable broker when the controller is not one.
  const controllerId = brokers.some((b) => b.nodeId === res.controllerId) ? res.controllerId : backends.nodeId;
  return {
    throttleTimeMs: 0,
    brokers,
    clusterId: res.clusterId,
    controllerId,
    topics: wantsNone
      ? []
      : res.topics.map((t) => ({
          errorCode: kafkaCodeOf(t.errorCode),
          name: t.name,
          isInternal: t.isInternal,
          partitions: t.partitions.map(partitionOf),
          topicAuthorizedOperations: KAFKA_AUTHORIZED_OPERATIONS_OMITTED,
        })),
    clusterAuthorizedOperations: KAFKA_AUTHORIZED_OPERATIONS_OMITTED,
  };
}

// ---------------------------------------------------------------------------------------
// CreateTopics / DeleteTopics

/** Names given more than once in one request: Kafka answers each of them INVALID_REQUEST and acts on none. */
function duplicates(names: readonly string[]): Set<string> {
  const seen = new Set<string>();
  const twice = new Set<string>();
  for (const n of names) (seen.has(n) ? twice : seen).add(n);
  return twice;
}

async function createTopics(backends: KafkaBackends, req: KafkaCreateTopicsRequest): Promise<KafkaCreateTopicsResponse> {
  const twice = duplicates(req.topics.map((t) => t.name));
  const refused = new Map<string, FlotillaError>();
  for (const t of req.topics) {
    if (twice.has(t.name)) refused.set(t.name, new FlotillaError("INVALID_REQUEST", `topic "${t.name}" is named more than once in the request`));
    else if (t.assignments.length > 0) {
      refused.set(t.name, new FlotillaError("INVALID_REPLICA_ASSIGNMENT", `topic "${t.name}": manual replica assignments are not supported; leave them out and the controller places the partitions`));
    } else {
      const nullValued = t.configs.find((c) => c.value === null);
      if (nullValued) refused.set(t.name, new FlotillaError("INVALID_CONFIG", `topic "${t.name}": config ${nullValued.name} has a null value`));
    }
  }
  const forwarded = req.topics.filter((t) => !refused.has(t.name));
  const answers = new Map<string, { errorCode: number; errorMessage: string }>();
  if (forwarded.length > 0) {
    const res = await backends.broker.createTopics({
      topics: forwarded.map((t) => ({
        name: t.name,
        numPartitions: t.numPartitions,
        replicationFactor: t.replicationFactor,
        configs: Object.fromEntries(t.configs.map((c) => [c.name, c.value ?? ""])),
      })),
      timeoutMs: req.timeoutMs,
      validateOnly: req.validateOnly,
    });
    for (const t of res.topics) answers.set(t.name, t);
  }
  return {
    throttleTimeMs: 0,
    topics: req.topics.map((t) => {
      const err = refused.get(t.name);
      if (err) return { name: t.name, errorCode: kafkaCodeOfError(err), errorMessage: err.message };
      const a = answers.get(t.name);
      if (!a) return { name: t.name, errorCode: kafkaCodeOfName("UNKNOWN_SERVER_ERROR"), errorMessage: `the controller did not answer for topic "${t.name}"` };
      return { name: t.name, errorCode: kafkaCodeOf(a.errorCode), errorMessage: nullIfEmpty(a.errorMessage) };
    }),
  };
}

async function deleteTopics(backends: KafkaBackends, req: KafkaDeleteTopicsRequest): Promise<KafkaDeleteTopicsResponse> {
  const twice = duplicates(req.topicNames);
  const forwarded = [...new Set(req.topicNames.filter((n) => !twice.has(n)))];
  const answers = new Map<string, number>();
  if (forwarded.length > 0) {
    const res = await backends.broker.deleteTopics({ names: forwarded, timeoutMs: req.timeoutMs });
    for (const r of res.results) answers.set(r.name, kafkaCodeOf(r.errorCode));
  }
  return {
    throttleTimeMs: 0,
    responses: req.topicNames.map((name) => ({
      name,
      errorCode: twice.has(name) ? kafkaCodeOfName("INVALID_REQUEST") : (answers.get(name) ?? kafkaCodeOfName("UNKNOWN_SERVER_ERROR")),
    })),
  };
}

// ---------------------------------------------------------------------------------------
// InitProducerId

async function initProducerId(backends: KafkaBackends, req: KafkaInitProducerIdRequest): Promise<KafkaInitProducerIdResponse> {
  if (req.transactionalId !== null) {
    backends.logger.info({ transactionalId: req.transactionalId }, "InitProducerId for a transactional producer refused: transactions are not supported");
    return { throttleTimeMs: 0, errorCode: kafkaCodeOfName("INVALID_REQUEST"), producerId: -1, producerEpoch: -1 };
  }
  const res = await backends.broker.initProducerId({ transactionalId: "" });
  return { throttleTimeMs: 0, errorCode: kafkaCodeOf(res.errorCode), producerId: res.producerId, producerEpoch: res.producerEpoch };
}

// ---------------------------------------------------------------------------------------
// DescribeConfigs

/** Kafka's types of the topic keys Flotilla knows (for DescribeConfigs v3). */
const TOPIC_CONFIG_TYPES: Record<string, number> = {
  "retention.ms": KafkaConfigType.LONG,
  "retention.bytes": KafkaConfigType.LONG,
  "segment.bytes": KafkaConfigType.INT,
  "segment.ms": KafkaConfigType.LONG,
  "min.insync.replicas": KafkaConfigType.INT,
  "max.message.bytes": KafkaConfigType.INT,
  "message.timestamp.type": KafkaConfigType.STRING,
  "cleanup.policy": KafkaConfigType.LIST,
  "min.cleanable.dirty.ratio": KafkaConfigType.DOUBLE,
  "delete.retention.ms": KafkaConfigType.LONG,
  "min.compaction.lag.ms": KafkaConfigType.LONG,
  "index.interval.bytes": KafkaConfigType.INT,
  "segment.index.bytes": KafkaConfigType.INT,
  "flush.messages": KafkaConfigType.LONG,
  "flush.ms": KafkaConfigType.LONG,
  "unclean.leader.election.enable": KafkaConfigType.BOOLEAN,
};

const BROKER_KIND_TYPES: Record<string, number> = {
  int: KafkaConfigType.INT,
  long: KafkaConfigType.LONG,
  string: KafkaConfigType.STRING,
  list: KafkaConfigType.LIST,
  boolean: KafkaConfigType.BOOLEAN,
};

/** Kafka's type of a broker key: from its definition, else from the topic key it is the default of. */
function brokerConfigType(key: string): number {
  const kind = SERVER_CONFIG_DEFS[key]?.kind;
  if (kind !== undefined) return BROKER_KIND_TYPES[kind] ?? KafkaConfigType.UNKNOWN;
  const topicKey = TOPIC_KEY_OF_BROKER_KEY.get(key);
  return topicKey === undefined ? KafkaConfigType.UNKNOWN : (TOPIC_CONFIG_TYPES[topicKey] ?? KafkaConfigType.UNKNOWN);
}

/**
 * The source Flotilla reports for a broker value. brokerConfigs() gives effective values
 * without saying which were set in the file or environment and which are defaults, so a
 * broker key is reported as STATIC_BROKER_CONFIG on the broker resource (it is fixed at
 * start) and as DEFAULT_CONFIG where it stands behind a topic key (the topic did not set it).
 */
const BROKER_SYNONYM_SOURCE = KafkaConfigSource.DEFAULT_CONFIG;

const isSensitiveKey = (name: string): boolean => /password|secret/i.test(name);

function selectKeys<T extends { name: string }>(entries: T[], keys: string[] | null): T[] {
  if (keys === null) return entries;
  const wanted = new Set(keys);
  return entries.filter((e) => wanted.has(e.name));
}

async function describeTopicConfigs(backends: KafkaBackends, name: string, keys: string[] | null, includeSynonyms: boolean): Promise<KafkaDescribeConfigsEntry[]> {
  const res = await backends.broker.describeTopics({ names: [name] });
  const topic = res.topics[0];
  if (!topic) throw new FlotillaError("UNKNOWN_TOPIC_OR_PARTITION", `topic "${name}" was not described`);
  const failed = errorFromFields(topic.errorCode, topic.errorMessage);
  if (failed) throw failed;
  const overridden = new Set(topic.overriddenConfigs);
  const brokerConfigs = includeSynonyms ? backends.brokerConfigs() : {};
  const entries = Object.entries(topic.configs)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, value]): KafkaDescribeConfigsEntry => {
      const isOverride = overridden.has(key);
      const source = isOverride ? KafkaConfigSource.DYNAMIC_TOPIC_CONFIG : KafkaConfigSource.DEFAULT_CONFIG;
      const synonyms: KafkaDescribeConfigsEntry["synonyms"] = [];
      if (includeSynonyms) {
        // Kafka lists synonyms in order of precedence: the override, then the broker's key.
        if (isOverride) synonyms.push({ name: key, value, source });
        const brokerKey = BROKER_KEY_OF_TOPIC_KEY[key];
        const brokerValue = brokerKey === undefined ? undefined : brokerConfigs[brokerKey];
        if (brokerKey !== undefined && brokerValue !== undefined) synonyms.push({ name: brokerKey, value: brokerValue, source: BROKER_SYNONYM_SOURCE });
      }
      return {
        name: key,
        value,
        readOnly: false,
        isDefault: !isOverride,
        configSource: source,
        isSensitive: false,
        synonyms,
        configType: TOPIC_CONFIG_TYPES[key] ?? KafkaConfigType.UNKNOWN,
        documentation: null,
      };
    });
  return selectKeys(entries, keys);
}

function describeBrokerConfigs(backends: KafkaBackends, name: string, keys: string[] | null, includeSynonyms: boolean): KafkaDescribeConfigsEntry[] {
  // "" is the cluster-wide dynamic default; Flotilla has no dynamic broker configs.
  if (name === "") return [];
  if (name !== String(backends.nodeId)) throw new FlotillaError("INVALID_REQUEST", `this is broker ${backends.nodeId}; ask broker ${name} for its own configs`);
  const entries = Object.entries(backends.brokerConfigs())
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, raw]): KafkaDescribeConfigsEntry => {
      const sensitive = isSensitiveKey(key);
      const value = sensitive ? null : raw;
      const source = KafkaConfigSource.STATIC_BROKER_CONFIG;
      return {
        name: key,
        value,
        // No AlterConfigs: every broker setting is fixed for the process's life.
        readOnly: true,
        isDefault: false,
        configSource: source,
        isSensitive: sensitive,
        synonyms: includeSynonyms ? [{ name: key, value, source }] : [],
        configType: brokerConfigType(key),
        documentation: null,
      };
    });
  return selectKeys(entries, keys);
}

async function describeConfigs(backends: KafkaBackends, req: KafkaDescribeConfigsRequest): Promise<KafkaDescribeConfigsResponse> {
  const results = await Promise.all(
    req.resources.map(async (x): Promise<KafkaDescribeConfigsResult> => {
      const base = { resourceType: x.resourceType, resourceName: x.resourceName };
      try {
        let configs: KafkaDescribeConfigsEntry[];
        if (x.resourceType === KafkaConfigResourceType.TOPIC) configs = await describeTopicConfigs(backends, x.resourceName, x.configurationKeys, req.includeSynonyms);
        else if (x.resourceType === KafkaConfigResourceType.BROKER) configs = describeBrokerConfigs(backends, x.resourceName, x.configurationKeys, req.includeSynonyms);
        else throw new FlotillaError("INVALID_REQUEST", `resource type ${x.resourceType} is not supported (only TOPIC ${KafkaConfigResourceType.TOPIC} and BROKER ${KafkaConfigResourceType.BROKER})`);
        return { ...base, errorCode: 0, errorMessage: null, configs };
      } catch (err) {
        if (!(err instanceof FlotillaError)) throw err;
        return { ...base, ...itemError(err), configs: [] };
      }
    }),
  );
  return { throttleTimeMs: 0, results };
}

// ---------------------------------------------------------------------------------------

export const dataHandlers: KafkaHandlerFactory = (backends) => [
  handler(produceApi, (req, ctx) => (req.acks === 0 ? produceWithoutResponse(backends, req, ctx) : produce(backends, req, ctx))),
  handler(fetchApi, (req, ctx) => fetch(backends, req, ctx)),
  handler(listOffsetsApi, (req) => listOffsets(backends, req)),
  handler(metadataApi, (req) => metadata(backends, req)),
  handler(createTopicsApi, (req) => createTopics(backends, req)),
  handler(deleteTopicsApi, (req) => deleteTopics(backends, req)),
  handler(initProducerIdApi, (req) => initProducerId(backends, req)),
  handler(describeConfigsApi, (req) => describeConfigs(backends, req)),
];

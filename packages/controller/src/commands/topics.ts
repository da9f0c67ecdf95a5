/**
 * Topic commands: pure functions from (image, request) to {records, response}. Every
 * check happens here, so that replay of the records they emit cannot fail.
 */
import { FlotillaError, topicNameProblem, type Random } from "@flotilla/common";
import { liveBrokers, topicConfigProblem, type MetadataImage, type MetadataRecord } from "@flotilla/metadata";
import { errorFields, type CreatableTopicResult, type CreateTopicsRequest, type CreateTopicsResponse, type DeleteTopicsRequest, type DeleteTopicsResponse } from "@flotilla/protocol";
import { METADATA_BATCH_RECORDS_MAX } from "../metadata-log.js";
import { placeReplicas, randomPlacementStart } from "./placement.js";
import { PARTITIONS_PER_TOPIC_MAX, type ControllerResult, type TopicCreationDefaults } from "./result.js";

const TOPIC_ID_ATTEMPTS_MAX = 16;

/**
 * A new topic id: 16 random bytes in unpadded base64url (22 characters), like Kafka's
 * Uuid. Like Kafka, skips ids starting with "-" (they read as command-line flags) and
 * ids already in use.
 */
export function newTopicId(image: MetadataImage, random: Random, taken: ReadonlySet<string> = new Set()): string {
  for (let attempt = 0; attempt < TOPIC_ID_ATTEMPTS_MAX; attempt++) {
    const bytes = Buffer.alloc(16);
    for (let i = 0; i < 16; i++) bytes[i] = random.int(0, 256);
    const id = bytes.toString("base64url");
    if (!id.startsWith("-") && !image.topicsById.has(id) && !taken.has(id)) return id;
  }
  throw new FlotillaError("UNKNOWN_SERVER_ERROR", `no unused topic id after ${TOPIC_ID_ATTEMPTS_MAX} attempts: the random source is broken`);
}

/** Kafka treats '.' and '_' as the same in metric names, so such topic names collide. */
function collisionKey(name: string): string {
  return name.replaceAll(".", "_");
}

function failed(name: string, err: FlotillaError): CreatableTopicResult {
  return { name, ...errorFields(err), topicId: "", numPartitions: -1, replicationFactor: -1 };
}

function resolveCount(value: number, fallback: number): number {
  return value === -1 ? fallback : value;
}

/**
 * CreateTopics. Per topic: a valid name not in use (nor colliding by '.'/'_'),
 * partitions > 0 (or -1 = num.partitions), replication factor in 1..live brokers (or
 * -1 = default.replication.factor), known and valid configs. Topics named twice in one
 * request all fail with INVALID_REQUEST. With validateOnly nothing is written.
 */
export function createTopics(
  image: MetadataImage,
  request: CreateTopicsRequest,
  defaults: TopicCreationDefaults,
  random: Random,
): ControllerResult<CreateTopicsResponse> {
  const live = liveBrokers(image).map((b) => b.brokerId);
  const counts = new Map<string, number>();
  for (const t of request.topics) counts.set(t.name, (counts.get(t.name) ?? 0) + 1);
  const collisions = new Map<string, string>();
  for (const name of image.topicsByName.keys()) collisions.set(collisionKey(name), name);

  const records: MetadataRecord[] = [];
  const takenIds = new Set<string>();
  const results: CreatableTopicResult[] = [];
  for (const topic of request.topics) {
    const { name } = topic;
    try {
      const problem = topicNameProblem(name);
      if (problem) throw new FlotillaError("INVALID_TOPIC_EXCEPTION", problem);
      if ((counts.get(name) ?? 0) > 1) throw new FlotillaError("INVALID_REQUEST", `topic "${name}" is named more than once in the request`);
      if (image.topicsByName.has(name)) throw new FlotillaError("TOPIC_ALREADY_EXISTS", `topic "${name}" already exists`);
      const clash = collisions.get(collisionKey(name));
      if (clash !== undefined) throw new FlotillaError("INVALID_TOPIC_EXCEPTION", `topic "${name}" collides with existing topic "${clash}" ('.' and '_' are treated alike)`);

      const numPartitions = resolveCount(topic.numPartitions, defaults.numPartitions);
      if (!Number.isInteger(numPartitions) || numPartitions <= 0) {
        throw new FlotillaError("INVALID_PARTITIONS", `num_partitions for "${name}" must be positive or -1 (broker default), got ${topic.numPartitions}`);
      }
      if (numPartitions > PARTITIONS_PER_TOPIC_MAX) {
        throw new FlotillaError("INVALID_PARTITIONS", `num_partitions ${numPartitions} for "${name}" is above the limit of ${PARTITIONS_PER_TOPIC_MAX}`);
      }
      const replicationFactor = resolveCount(topic.replicationFactor, defaults.replicationFactor);
      if (!Number.isInteger(replicationFactor) || replicationFactor <= 0) {
        throw new FlotillaError("INVALID_REPLICATION_FACTOR", `replication_factor for "${name}" must be positive or -1 (broker default), got ${topic.replicationFactor}`);
      }
      if (replicationFactor > live.length) {
        throw new FlotillaError("INVALID_REPLICATION_FACTOR", `replication factor ${replicationFactor} for "${name}" is larger than the ${live.length} available (registered, unfenced) broker${live.length === 1 ? "" : "s"}`);
      }
      const configs = Object.entries(topic.configs ?? {});
      for (const [key, value] of configs) {
        const configProblem = topicConfigProblem(key, value);
        if (configProblem) throw new FlotillaError("INVALID_CONFIG", `topic "${name}": ${configProblem}`);
      }
      const recordCount = 1 + numPartitions + configs.length;
      if (records.length + recordCount > METADATA_BATCH_RECORDS_MAX) {
        throw new FlotillaError("POLICY_VIOLATION", `creating "${name}" would take the request past ${METADATA_BATCH_RECORDS_MAX} metadata records in one batch; create fewer topics or partitions at once`);
      }

      const topicId = request.validateOnly ? "" : newTopicId(image, random, takenIds);
      if (!request.validateOnly) {
        takenIds.add(topicId);
        collisions.set(collisionKey(name), name);
        records.push({ type: "Topic", name, topicId });
        const placement = placeReplicas({ brokers: live, numPartitions, replicationFactor }, randomPlacementStart(live.length, random));
        placement.forEach((replicas, partition) => {
          records.push({ type: "Partition", topicId, partition, replicas, isr: replicas, leader: replicas[0] as number, leaderEpoch: 0, partitionEpoch: 0 });
        });
        for (const [key, value] of configs) records.push({ type: "Config", resourceType: "topic", resourceName: name, name: key, value });
      }
      results.push({ name, errorCode: 0, errorMessage: "", topicId, numPartitions, replicationFactor });
    } catch (err) {
      if (!(err instanceof FlotillaError)) throw err;
      results.push(failed(name, err));
    }
  }
  return { records, response: { topics: results } };
}

/** DeleteTopics: each named topic must exist; names given twice fail with INVALID_REQUEST. */
export function deleteTopics(image: MetadataImage, request: DeleteTopicsRequest): ControllerResult<DeleteTopicsResponse> {
  const counts = new Map<string, number>();
  for (const name of request.names) counts.set(name, (counts.get(name) ?? 0) + 1);
  const records: MetadataRecord[] = [];
  const results: DeleteTopicsResponse["results"] = [];
  for (const name of request.names) {
    const topic = image.topicsByName.get(name);
    let err: FlotillaError | undefined;
    if ((counts.get(name) ?? 0) > 1) err = new FlotillaError("INVALID_REQUEST", `topic "${name}" is named more than once in the request`);
    else if (!topic) err = new FlotillaError("UNKNOWN_TOPIC_OR_PARTITION", `topic "${name}" does not exist`);
    if (err || !topic) {
      results.push({ name, ...errorFields(err) });
      continue;
    }
    records.push({ type: "RemoveTopic", topicId: topic.topicId });
    results.push({ name, errorCode: 0, errorMessage: "" });
  }
  return { records, response: { results } };
}

export interface CreatePartitionsRequest {
  readonly topics: readonly { readonly name: string; /** The new total number of partitions. */ readonly count: number }[];
  readonly validateOnly: boolean;
}
export interface CreatePartitionsResponse {
  readonly results: { name: string; errorCode: number; errorMessage: string }[];
}

/**
 * CreatePartitions: grows topics to `count` partitions, placing the new ones like
 * CreateTopics with the replication factor of the topic's partition 0.
 */
export function createPartitions(image: MetadataImage, request: CreatePartitionsRequest, random: Random): ControllerResult<CreatePartitionsResponse> {
  const live = liveBrokers(image).map((b) => b.brokerId);
  const records: MetadataRecord[] = [];
  const results: CreatePartitionsResponse["results"] = [];
  for (const { name, count } of request.topics) {
    try {
      const topic = image.topicsByName.get(name);
      if (!topic) throw new FlotillaError("UNKNOWN_TOPIC_OR_PARTITION", `topic "${name}" does not exist`);
      const current = topic.partitions.size;
      if (!Number.isInteger(count) || count <= current) throw new FlotillaError("INVALID_PARTITIONS", `topic "${name}" has ${current} partitions; the new count must be larger, got ${count}`);
      if (count > PARTITIONS_PER_TOPIC_MAX) throw new FlotillaError("INVALID_PARTITIONS", `count ${count} for "${name}" is above the limit of ${PARTITIONS_PER_TOPIC_MAX}`);
      const replicationFactor = topic.partitions.get(0)?.replicas.length ?? 1;
      if (replicationFactor > live.length) {
        throw new FlotillaError("INVALID_REPLICATION_FACTOR", `topic "${name}" has replication factor ${replicationFactor} but only ${live.length} brokers are available`);
      }
      if (records.length + (count - current) > METADATA_BATCH_RECORDS_MAX) {
        throw new FlotillaError("POLICY_VIOLATION", `growing "${name}" would take the request past ${METADATA_BATCH_RECORDS_MAX} metadata records in one batch`);
      }
      if (!request.validateOnly) {
        const placement = placeReplicas({ brokers: live, numPartitions: count - current, replicationFactor, firstPartition: current }, randomPlacementStart(live.length, random));
        placement.forEach((replicas, i) => {
          records.push({ type: "Partition", topicId: topic.topicId, partition: current + i, replicas, isr: replicas, leader: replicas[0] as number, leaderEpoch: 0, partitionEpoch: 0 });
        });
      }
      results.push({ name, errorCode: 0, errorMessage: "" });
    } catch (err) {
      if (!(err instanceof FlotillaError)) throw err;
      results.push({ name, ...errorFields(err) });
    }
  }
  return { records, response: { results } };
}

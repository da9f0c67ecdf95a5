/**
 * The metadata image: the whole cluster metadata as of one log offset, immutable.
 * Built only by replaying records (./delta.ts); everything else reads it. Maps are typed
 * ReadonlyMap and every object and array in an image is frozen, so an image handed to a
 * listener can be kept and compared by reference: an unchanged topic is the same object
 * in the next image.
 */
import type { Endpoint } from "./records.js";

export interface BrokerRegistration {
  readonly brokerId: number;
  readonly incarnationId: string;
  /** Log offset of the RegisterBroker record that created this registration. */
  readonly brokerEpoch: number;
  readonly endpoints: readonly Endpoint[];
  readonly rack: string | null;
  readonly fenced: boolean;
}

export interface PartitionRegistration {
  readonly replicas: readonly number[];
  readonly isr: readonly number[];
  /** Broker id of the leader, or -1 (NO_LEADER). */
  readonly leader: number;
  readonly leaderEpoch: number;
  readonly partitionEpoch: number;
}

export interface TopicImage {
  readonly name: string;
  readonly topicId: string;
  /** Partition index -> registration; indexes are 0..n-1. */
  readonly partitions: ReadonlyMap<number, PartitionRegistration>;
}

export interface ProducerIdsImage {
  /** Broker that took the last block, -1 when none was taken. */
  readonly brokerId: number;
  readonly brokerEpoch: number;
  /** First producer id not yet handed out. */
  readonly nextProducerId: number;
}

export interface ConfigsImage {
  /** Topic name -> key -> value (only keys set on the topic). */
  readonly topic: ReadonlyMap<string, ReadonlyMap<string, string>>;
  /** Broker id ("" for the cluster default) -> key -> value. */
  readonly broker: ReadonlyMap<string, ReadonlyMap<string, string>>;
}

export interface MetadataImage {
  /** Offset of the last record applied, -1 for the empty image. */
  readonly offset: number;
  readonly brokers: ReadonlyMap<number, BrokerRegistration>;
  readonly topicsById: ReadonlyMap<string, TopicImage>;
  readonly topicsByName: ReadonlyMap<string, TopicImage>;
  readonly configs: ConfigsImage;
  readonly producerIds: ProducerIdsImage;
}

export const EMPTY_IMAGE: MetadataImage = Object.freeze({
  offset: -1,
  brokers: new Map(),
  topicsById: new Map(),
  topicsByName: new Map(),
  configs: Object.freeze({ topic: new Map(), broker: new Map() }),
  producerIds: Object.freeze({ brokerId: -1, brokerEpoch: -1, nextProducerId: 0 }),
});

/** Brokers that may lead partitions and be placed on: registered and not fenced, by id. */
export function liveBrokers(image: MetadataImage): BrokerRegistration[] {
  return [...image.brokers.values()].filter((b) => !b.fenced).sort((a, b) => a.brokerId - b.brokerId);
}

/** Configuration keys set on a topic (no defaults), empty when none. */
export function topicOverrides(image: MetadataImage, topicName: string): ReadonlyMap<string, string> {
  return image.configs.topic.get(topicName) ?? new Map();
}

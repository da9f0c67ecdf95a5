/**
 * Replay: records applied to an image give the next image (Kafka's MetadataDelta).
 * Pure: no clock, randomness or I/O. A record that does not fit the image (a partition
 * of an unknown topic, a fence with a stale epoch, ...) is an assert failure: commands
 * validate before they emit records, so such a record means a bug or a diverged log,
 * and a crash beats serving from a wrong image.
 *
 * A delta copies each map it changes once, however many records touch it, so replaying
 * a batch that creates a topic with many partitions costs O(records), not O(records^2).
 * It also records what changed, for listeners (the broker opens and deletes partition
 * logs from it).
 */
import { assert, unreachable } from "@flotilla/common";
import type { BrokerRegistration, MetadataImage, PartitionRegistration, TopicImage } from "./image.js";
import { NO_LEADER, type MetadataRecord, type CommittedRecord, type PartitionRecord, type PartitionChangeRecord, type ConfigRecord } from "./records.js";

/** What a delta changed, relative to its base image. */
export interface MetadataChanges {
  /** Broker ids registered, fenced or unfenced. */
  readonly brokers: ReadonlySet<number>;
  /** Ids of topics that exist in the new image and not in the base. */
  readonly createdTopics: ReadonlySet<string>;
  /** Topics of the base image that are gone, by id, as they were in the base. */
  readonly deletedTopics: ReadonlyMap<string, TopicImage>;
  /** Topic id -> partitions added or changed (topics of the new image only). */
  readonly changedPartitions: ReadonlyMap<string, ReadonlySet<number>>;
  /** Names of topics whose configuration changed (including removed topics). */
  readonly topicConfigs: ReadonlySet<string>;
  /** Broker config resource names ("" = cluster default) that changed. */
  readonly brokerConfigs: ReadonlySet<string>;
  readonly producerIds: boolean;
}

interface TopicDraft {
  name: string;
  topicId: string;
  partitions: Map<number, PartitionRegistration>;
}

function sameIds(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function checkPartitionShape(where: string, replicas: readonly number[], isr: readonly number[], leader: number): void {
  assert(replicas.length > 0, `${where}: no replicas`);
  assert(new Set(replicas).size === replicas.length, `${where}: duplicate replicas [${replicas.join(",")}]`);
  assert(isr.every((id) => replicas.includes(id)), `${where}: isr [${isr.join(",")}] not within replicas [${replicas.join(",")}]`);
  assert(new Set(isr).size === isr.length, `${where}: duplicate isr entries [${isr.join(",")}]`);
  assert(leader === NO_LEADER || isr.includes(leader), `${where}: leader ${leader} not in isr [${isr.join(",")}]`);
}

export class MetadataDelta {
  private offset: number;
  private brokers: Map<number, BrokerRegistration> | undefined;
  private topicsById: Map<string, TopicImage | TopicDraft> | undefined;
  private topicsByName: Map<string, TopicImage | TopicDraft> | undefined;
  /** Topics whose partitions map this delta owns (a copy), by id. */
  private readonly drafts = new Map<string, TopicDraft>();
  private topicConfigs: Map<string, ReadonlyMap<string, string>> | undefined;
  private brokerConfigsMap: Map<string, ReadonlyMap<string, string>> | undefined;
  private producerIds: MetadataImage["producerIds"];

  private readonly changedBrokers = new Set<number>();
  private readonly createdTopics = new Set<string>();
  private readonly deletedTopics = new Map<string, TopicImage>();
  private readonly changedPartitions = new Map<string, Set<number>>();
  private readonly changedTopicConfigs = new Set<string>();
  private readonly changedBrokerConfigs = new Set<string>();
  private producerIdsChanged = false;

  constructor(readonly base: MetadataImage) {
    this.offset = base.offset;
    this.producerIds = base.producerIds;
  }

  /** Applies one committed record. Offsets must increase. */
  replay(record: MetadataRecord, offset: number): this {
    assert(Number.isSafeInteger(offset) && offset > this.offset, () => `replay offset ${offset} is not after ${this.offset}`);
    switch (record.type) {
      case "RegisterBroker":
        this.registerBroker(record.brokerId, {
          brokerId: record.brokerId,
          incarnationId: record.incarnationId,
          brokerEpoch: offset,
          endpoints: Object.freeze(record.endpoints.map((e) => Object.freeze({ name: e.name, host: e.host, port: e.port }))),
          rack: record.rack,
          fenced: true,
        });
        break;
      case "FenceBroker":
      case "UnfenceBroker":
        this.setFenced(record.brokerId, record.brokerEpoch, record.type === "FenceBroker");
        break;
      case "Topic":
        this.addTopic(record.name, record.topicId);
        break;
      case "Partition":
        this.addPartition(record);
        break;
      case "PartitionChange":
        this.changePartition(record);
        break;
      case "Config":
        this.setConfig(record);
        break;
      case "RemoveTopic":
        this.removeTopic(record.topicId);
        break;
      case "ProducerIds":
        assert(record.nextProducerId > this.producerIds.nextProducerId, () => `ProducerIds record moves nextProducerId back from ${this.producerIds.nextProducerId} to ${record.nextProducerId}`);
        this.producerIds = Object.freeze({ brokerId: record.brokerId, brokerEpoch: record.brokerEpoch, nextProducerId: record.nextProducerId });
        this.producerIdsChanged = true;
        break;
      default:
        unreachable(record, "metadata record");
    }
    this.offset = offset;
    return this;
  }

  /** Applies records in order. */
  replayAll(records: Iterable<CommittedRecord>): this {
    for (const { record, offset } of records) this.replay(record, offset);
    return this;
  }

  // --- brokers ---

  private brokerMap(): Map<number, BrokerRegistration> {
    return (this.brokers ??= new Map(this.base.brokers));
  }

  private registerBroker(brokerId: number, registration: BrokerRegistration): void {
    assert(Number.isInteger(brokerId) && brokerId >= 0, `RegisterBroker with broker id ${brokerId}`);
    assert(registration.endpoints.length > 0, `RegisterBroker ${brokerId} without endpoints`);
    this.brokerMap().set(brokerId, Object.freeze(registration));
    this.changedBrokers.add(brokerId);
  }

  private setFenced(brokerId: number, brokerEpoch: number, fenced: boolean): void {
    const current = (this.brokers ?? this.base.brokers).get(brokerId);
    assert(current !== undefined, `${fenced ? "Fence" : "Unfence"}Broker of unregistered broker ${brokerId}`);
    assert(current.brokerEpoch === brokerEpoch, () => `${fenced ? "Fence" : "Unfence"}Broker ${brokerId} with epoch ${brokerEpoch}, registered epoch is ${current.brokerEpoch}`);
    this.brokerMap().set(brokerId, Object.freeze({ ...current, fenced }));
    this.changedBrokers.add(brokerId);
  }

  // --- topics and partitions ---

  private topicMaps(): { byId: Map<string, TopicImage | TopicDraft>; byName: Map<string, TopicImage | TopicDraft> } {
    this.topicsById ??= new Map(this.base.topicsById);
    this.topicsByName ??= new Map(this.base.topicsByName);
    return { byId: this.topicsById, byName: this.topicsByName };
  }

  private topicById(topicId: string): TopicImage | TopicDraft | undefined {
    return (this.topicsById ?? this.base.topicsById).get(topicId);
  }

  /** The topic as a draft this delta may change, copying its partitions once. */
  private draft(topicId: string, what: string): TopicDraft {
    const existing = this.drafts.get(topicId);
    if (existing) return existing;
    const topic = this.topicById(topicId);
    assert(topic !== undefined, `${what} of unknown topic id ${topicId}`);
    const d: TopicDraft = { name: topic.name, topicId, partitions: new Map(topic.partitions) };
    const { byId, byName } = this.topicMaps();
    byId.set(topicId, d);
    byName.set(d.name, d);
    this.drafts.set(topicId, d);
    return d;
  }

  private addTopic(name: string, topicId: string): void {
    const { byId, byName } = this.topicMaps();
    assert(name.length > 0, "Topic record with an empty name");
    assert(!byName.has(name), `Topic record for existing topic name ${name}`);
    assert(!byId.has(topicId), `Topic record for existing topic id ${topicId}`);
    const d: TopicDraft = { name, topicId, partitions: new Map() };
    byId.set(topicId, d);
    byName.set(name, d);
    this.drafts.set(topicId, d);
    this.createdTopics.add(topicId);
  }

  private markPartition(topicId: string, partition: number): void {
    let set = this.changedPartitions.get(topicId);
    if (!set) this.changedPartitions.set(topicId, (set = new Set()));
    set.add(partition);
  }

  private addPartition(r: PartitionRecord): void {
    const where = `Partition ${r.topicId}-${r.partition}`;
    const d = this.draft(r.topicId, "Partition record");
    assert(Number.isInteger(r.partition) && r.partition >= 0, `${where}: bad partition index`);
    assert(!d.partitions.has(r.partition), `${where} already exists`);
    checkPartitionShape(where, r.replicas, r.isr, r.leader);
    assert(r.leaderEpoch >= 0 && r.partitionEpoch >= 0, `${where}: negative epoch`);
    d.partitions.set(
      r.partition,
      Object.freeze({ replicas: Object.freeze([...r.replicas]), isr: Object.freeze([...r.isr]), leader: r.leader, leaderEpoch: r.leaderEpoch, partitionEpoch: r.partitionEpoch }),
    );
    this.markPartition(r.topicId, r.partition);
  }

  private changePartition(r: PartitionChangeRecord): void {
    const where = `PartitionChange ${r.topicId}-${r.partition}`;
    const d = this.draft(r.topicId, "PartitionChange record");
    const current = d.partitions.get(r.partition);
    assert(current !== undefined, `${where}: unknown partition`);
    const replicas = r.replicas ?? current.replicas;
    const isr = r.isr ?? current.isr;
    const leader = r.leader ?? current.leader;
    checkPartitionShape(where, replicas, isr, leader);
    d.partitions.set(
      r.partition,
      Object.freeze({
        replicas: r.replicas && !sameIds(r.replicas, current.replicas) ? Object.freeze([...r.replicas]) : current.replicas,
        isr: r.isr && !sameIds(r.isr, current.isr) ? Object.freeze([...r.isr]) : current.isr,
        leader,
        leaderEpoch: r.leader === undefined ? current.leaderEpoch : current.leaderEpoch + 1,
        partitionEpoch: current.partitionEpoch + 1,
      }),
    );
    this.markPartition(r.topicId, r.partition);
  }

  private removeTopic(topicId: string): void {
    const topic = this.topicById(topicId);
    assert(topic !== undefined, `RemoveTopic of unknown topic id ${topicId}`);
    const { byId, byName } = this.topicMaps();
    byId.delete(topicId);
    byName.delete(topic.name);
    this.drafts.delete(topicId);
    this.changedPartitions.delete(topicId);
    if (this.createdTopics.has(topicId)) this.createdTopics.delete(topicId);
    else {
      const old = this.base.topicsById.get(topicId);
      assert(old !== undefined, `RemoveTopic ${topicId}: topic neither created in this delta nor in the base image`);
      this.deletedTopics.set(topicId, old);
    }
    const configs = (this.topicConfigs ?? this.base.configs.topic).get(topic.name);
    if (configs) {
      (this.topicConfigs ??= new Map(this.base.configs.topic)).delete(topic.name);
      this.changedTopicConfigs.add(topic.name);
    }
  }

  // --- configs ---

  private setConfig(r: ConfigRecord): void {
    assert(r.name.length > 0, "Config record with an empty key");
    let maps: Map<string, ReadonlyMap<string, string>>;
    if (r.resourceType === "topic") {
      assert((this.topicsByName ?? this.base.topicsByName).has(r.resourceName), `Config record for unknown topic ${r.resourceName}`);
      maps = this.topicConfigs ??= new Map(this.base.configs.topic);
      this.changedTopicConfigs.add(r.resourceName);
    } else {
      maps = this.brokerConfigsMap ??= new Map(this.base.configs.broker);
      this.changedBrokerConfigs.add(r.resourceName);
    }
    const next = new Map(maps.get(r.resourceName) ?? []);
    if (r.value === null) next.delete(r.name);
    else next.set(r.name, r.value);
    if (next.size === 0) maps.delete(r.resourceName);
    else maps.set(r.resourceName, next);
  }

  // --- results ---

  /** The image after every record replayed so far. The delta may go on replaying afterwards. */
  apply(): MetadataImage {
    const freezeTopic = (t: TopicImage | TopicDraft): TopicImage => {
      if (!this.drafts.has(t.topicId)) return t as TopicImage;
      return Object.freeze({ name: t.name, topicId: t.topicId, partitions: new Map(t.partitions) });
    };
    let topicsById = this.base.topicsById;
    let topicsByName = this.base.topicsByName;
    if (this.topicsById && this.topicsByName) {
      const byId = new Map<string, TopicImage>();
      for (const [id, t] of this.topicsById) byId.set(id, freezeTopic(t));
      const byName = new Map<string, TopicImage>();
      for (const t of byId.values()) byName.set(t.name, t);
      topicsById = byId;
      topicsByName = byName;
    }
    const configs =
      this.topicConfigs || this.brokerConfigsMap
        ? Object.freeze({ topic: new Map(this.topicConfigs ?? this.base.configs.topic), broker: new Map(this.brokerConfigsMap ?? this.base.configs.broker) })
        : this.base.configs;
    return Object.freeze({
      offset: this.offset,
      brokers: this.brokers ? new Map(this.brokers) : this.base.brokers,
      topicsById,
      topicsByName,
      configs,
      producerIds: this.producerIds,
    });
  }

  changes(): MetadataChanges {
    return {
      brokers: new Set(this.changedBrokers),
      createdTopics: new Set(this.createdTopics),
      deletedTopics: new Map(this.deletedTopics),
      changedPartitions: new Map([...this.changedPartitions].map(([id, set]) => [id, new Set(set)])),
      topicConfigs: new Set(this.changedTopicConfigs),
      brokerConfigs: new Set(this.changedBrokerConfigs),
      producerIds: this.producerIdsChanged,
    };
  }
}

/** One record applied to an image. */
export function replay(image: MetadataImage, record: MetadataRecord, offset: number): MetadataImage {
  return new MetadataDelta(image).replay(record, offset).apply();
}

/** Records applied in order; returns the new image and what changed. */
export function replayAll(image: MetadataImage, records: Iterable<CommittedRecord>): { image: MetadataImage; changes: MetadataChanges } {
  const delta = new MetadataDelta(image).replayAll(records);
  return { image: delta.apply(), changes: delta.changes() };
}

/**
 * What differs between two images of the same history (`prev.offset <= next.offset`),
 * found by comparing objects by reference, which replay keeps for anything unchanged.
 * Used when a listener joins late and must catch up from the empty image.
 */
export function diffImages(prev: MetadataImage, next: MetadataImage): MetadataChanges {
  const brokers = new Set<number>();
  for (const [id, b] of next.brokers) if (prev.brokers.get(id) !== b) brokers.add(id);
  for (const id of prev.brokers.keys()) if (!next.brokers.has(id)) brokers.add(id);
  const createdTopics = new Set<string>();
  const deletedTopics = new Map<string, TopicImage>();
  const changedPartitions = new Map<string, Set<number>>();
  for (const [id, t] of next.topicsById) {
    const old = prev.topicsById.get(id);
    if (!old) createdTopics.add(id);
    if (old === t) continue;
    const parts = new Set<number>();
    for (const [p, reg] of t.partitions) if (old?.partitions.get(p) !== reg) parts.add(p);
    if (parts.size > 0) changedPartitions.set(id, parts);
  }
  for (const [id, t] of prev.topicsById) if (!next.topicsById.has(id)) deletedTopics.set(id, t);
  const diffKeys = <K>(a: ReadonlyMap<K, unknown>, b: ReadonlyMap<K, unknown>): Set<K> => {
    const out = new Set<K>();
    for (const [k, v] of b) if (a.get(k) !== v) out.add(k);
    for (const k of a.keys()) if (!b.has(k)) out.add(k);
    return out;
  };
  return {
    brokers,
    createdTopics,
    deletedTopics,
    changedPartitions,
    topicConfigs: diffKeys(prev.configs.topic, next.configs.topic),
    brokerConfigs: diffKeys(prev.configs.broker, next.configs.broker),
    producerIds: prev.producerIds !== next.producerIds,
  };
}

/**
 * Partition leadership and ISR commands of the active controller (KRaft's
 * ReplicationControlManager, reduced): fencing a broker, controlled shutdown,
 * AlterPartition from a partition leader, elections for leaderless partitions,
 * preferred-leader rebalancing and producer-id blocks. Pure: (image, request, context)
 * -> {records, response}; the controller keeps the little state that is not in the
 * image (which brokers are shutting down) and passes it in.
 *
 * Election rules (Kafka's PartitionChangeBuilder, "clean" election):
 * - a broker may lead or join an ISR only when it is registered, not fenced and not in
 *   controlled shutdown ("usable");
 * - a new leader is the first usable ISR member in replica order; every leader change
 *   bumps the leader epoch (replay does that);
 * - the ISR never shrinks below one member: when the only ISR member goes away, the
 *   partition goes leaderless (leader -1) and keeps it in the ISR, so that it, the one
 *   replica known to have every committed record, is the one to lead again;
 * - unclean election (unclean.leader.election.enable) takes the first usable replica
 *   outside the ISR instead, with ISR = [it], accepting the loss of records.
 */
import { ErrorCodes, FlotillaError, type ErrorName } from "@flotilla/common";
import { NO_LEADER, replay, type MetadataImage, type MetadataRecord, type PartitionChangeRecord, type PartitionRegistration } from "@flotilla/metadata";
import { errorFields } from "@flotilla/protocol";
import type { AllocateProducerIdsCall, AlterPartitionCall, AlterPartitionReply, ProducerIdBlock } from "../channel.js";
import { PRODUCER_ID_BLOCK_SIZE } from "../channel.js";
import type { ControllerResult } from "./result.js";

/** What the controller knows beyond the image. */
export interface ElectionContext {
  /** Brokers in controlled shutdown: registered and unfenced, but not to be given leadership or ISR membership. */
  readonly shuttingDown: ReadonlySet<number>;
  /** The broker-level unclean.leader.election.enable (a topic may override it). */
  readonly uncleanLeaderElectionEnable: boolean;
}

export const UNCLEAN_LEADER_ELECTION_KEY = "unclean.leader.election.enable";

export function isUsable(image: MetadataImage, brokerId: number, ctx: ElectionContext): boolean {
  const b = image.brokers.get(brokerId);
  return b !== undefined && !b.fenced && !ctx.shuttingDown.has(brokerId);
}

function uncleanAllowed(image: MetadataImage, topicName: string, ctx: ElectionContext): boolean {
  const override = image.configs.topic.get(topicName)?.get(UNCLEAN_LEADER_ELECTION_KEY);
  return override === undefined ? ctx.uncleanLeaderElectionEnable : override === "true";
}

const sameIds = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * The change that takes `gone` out of one partition's leadership and ISR, or undefined
 * when the partition does not need one. `usable` says who may lead.
 */
function withoutBroker(
  topicId: string,
  partition: number,
  p: PartitionRegistration,
  gone: number,
  usable: (id: number) => boolean,
  unclean: boolean,
): PartitionChangeRecord | undefined {
  if (!p.replicas.includes(gone)) return undefined;
  const others = p.isr.filter((id) => id !== gone);
  if (p.leader === gone || p.leader === NO_LEADER) {
    const leader = p.replicas.find((id) => id !== gone && others.includes(id) && usable(id));
    if (leader !== undefined) return { type: "PartitionChange", topicId, partition, leader, isr: others };
    if (unclean) {
      const outsider = p.replicas.find((id) => id !== gone && usable(id));
      if (outsider !== undefined) return { type: "PartitionChange", topicId, partition, leader: outsider, isr: [outsider] };
    }
    // No one else can lead: leaderless, and `gone` stays in the ISR if it was its last member.
    if (p.leader === NO_LEADER) return others.length > 0 && others.length < p.isr.length ? { type: "PartitionChange", topicId, partition, isr: others } : undefined;
    return { type: "PartitionChange", topicId, partition, leader: NO_LEADER, isr: others.length > 0 ? others : p.isr };
  }
  if (p.isr.includes(gone) && others.length > 0) return { type: "PartitionChange", topicId, partition, isr: others };
  return undefined;
}

/** Records that move leadership away from `brokerId` and take it out of every ISR it can leave. */
export function moveAwayFrom(image: MetadataImage, brokerId: number, ctx: ElectionContext): PartitionChangeRecord[] {
  const usable = (id: number) => id !== brokerId && isUsable(image, id, ctx);
  const records: PartitionChangeRecord[] = [];
  for (const topic of image.topicsById.values()) {
    const unclean = uncleanAllowed(image, topic.name, ctx);
    for (const [partition, p] of topic.partitions) {
      const change = withoutBroker(topic.topicId, partition, p, brokerId, usable, unclean);
      if (change) records.push(change);
    }
  }
  return records;
}

/** Leaderless partitions that can get a leader now: the first usable ISR member in replica order (or unclean). */
export function electLeaderless(image: MetadataImage, ctx: ElectionContext): PartitionChangeRecord[] {
  const records: PartitionChangeRecord[] = [];
  for (const topic of image.topicsById.values()) {
    for (const [partition, p] of topic.partitions) {
      if (p.leader !== NO_LEADER) continue;
      const leader = p.replicas.find((id) => p.isr.includes(id) && isUsable(image, id, ctx));
      if (leader !== undefined) {
        records.push({ type: "PartitionChange", topicId: topic.topicId, partition, leader });
        continue;
      }
      if (uncleanAllowed(image, topic.name, ctx)) {
        const outsider = p.replicas.find((id) => isUsable(image, id, ctx));
        if (outsider !== undefined) records.push({ type: "PartitionChange", topicId: topic.topicId, partition, leader: outsider, isr: [outsider] });
      }
    }
  }
  return records;
}

/**
 * Preferred-leader election (auto.leader.rebalance.enable): partitions whose first replica
 * is usable, in the ISR and not the leader get it back as leader.
 */
export function preferredLeaderChanges(image: MetadataImage, ctx: ElectionContext): PartitionChangeRecord[] {
  const records: PartitionChangeRecord[] = [];
  for (const topic of image.topicsById.values()) {
    for (const [partition, p] of topic.partitions) {
      const preferred = p.replicas[0];
      if (preferred === undefined || p.leader === preferred || !p.isr.includes(preferred) || !isUsable(image, preferred, ctx)) continue;
      records.push({ type: "PartitionChange", topicId: topic.topicId, partition, leader: preferred });
    }
  }
  return records;
}

/** A broker whose session expired: leadership moves away, then it is fenced. */
export function fenceBroker(image: MetadataImage, brokerId: number, ctx: ElectionContext): ControllerResult<void> {
  const broker = image.brokers.get(brokerId);
  if (!broker || broker.fenced) return { records: [], response: undefined };
  return { records: [...moveAwayFrom(image, brokerId, ctx), { type: "FenceBroker", brokerId, brokerEpoch: broker.brokerEpoch }], response: undefined };
}

/** Does `brokerId` lead any partition? */
export function leadsAny(image: MetadataImage, brokerId: number): boolean {
  for (const topic of image.topicsById.values()) for (const p of topic.partitions.values()) if (p.leader === brokerId) return true;
  return false;
}

function reply(err: FlotillaError | undefined, p: PartitionRegistration | undefined): AlterPartitionReply {
  const fields = err ? errorFields(err) : { errorCode: ErrorCodes.NONE.code, errorMessage: "" };
  return {
    ...fields,
    leader: p?.leader ?? NO_LEADER,
    leaderEpoch: p?.leaderEpoch ?? -1,
    partitionEpoch: p?.partitionEpoch ?? -1,
    isr: p ? [...p.isr] : [],
  };
}

/**
 * AlterPartition (KIP-497): the partition leader proposes a new ISR. A compare-and-set
 * on (leaderEpoch, partitionEpoch): a request built on an older state is refused, so an
 * ISR change never overwrites a leader election or another ISR change it did not see.
 * Errors are in the reply, with the partition as the controller has it, so the leader
 * can resync.
 */
export function alterPartition(image: MetadataImage, request: AlterPartitionCall, ctx: ElectionContext): ControllerResult<AlterPartitionReply> {
  const topic = image.topicsById.get(request.topicId);
  const p = topic?.partitions.get(request.partition);
  const where = `${topic?.name ?? request.topicId}-${request.partition}`;
  const fail = (name: ErrorName, detail: string): ControllerResult<AlterPartitionReply> => ({
    records: [],
    response: reply(new FlotillaError(name, detail), p),
  });
  const broker = image.brokers.get(request.brokerId);
  if (!broker || broker.brokerEpoch !== request.brokerEpoch) {
    return fail("BROKER_NOT_AVAILABLE", `AlterPartition ${where} from broker ${request.brokerId} with broker epoch ${request.brokerEpoch}; the registered epoch is ${broker?.brokerEpoch ?? "none"}`);
  }
  if (!topic || !p) return fail("UNKNOWN_TOPIC_OR_PARTITION", `AlterPartition for unknown partition ${where}`);
  if (p.leader !== request.brokerId) return fail("NOT_LEADER_OR_FOLLOWER", `AlterPartition ${where} from broker ${request.brokerId}, but the leader is ${p.leader}`);
  if (request.leaderEpoch !== p.leaderEpoch) {
    return fail("FENCED_LEADER_EPOCH", `AlterPartition ${where} with leader epoch ${request.leaderEpoch}; the current leader epoch is ${p.leaderEpoch}`);
  }
  if (request.partitionEpoch !== p.partitionEpoch) {
    return fail("INVALID_REQUEST", `AlterPartition ${where} with partition epoch ${request.partitionEpoch}; the current partition epoch is ${p.partitionEpoch}`);
  }
  const isr = request.newIsr;
  if (new Set(isr).size !== isr.length) return fail("INVALID_REQUEST", `AlterPartition ${where}: ISR [${isr.join(",")}] names a broker twice`);
  if (!isr.includes(p.leader)) return fail("INVALID_REQUEST", `AlterPartition ${where}: ISR [${isr.join(",")}] leaves out the leader ${p.leader}`);
  const outside = isr.filter((id) => !p.replicas.includes(id));
  if (outside.length > 0) return fail("INVALID_REQUEST", `AlterPartition ${where}: brokers ${outside.join(",")} are not replicas [${p.replicas.join(",")}]`);
  const unusable = isr.filter((id) => !isUsable(image, id, ctx));
  if (unusable.length > 0) {
    return fail("INVALID_REQUEST", `AlterPartition ${where}: brokers ${unusable.join(",")} are fenced, shutting down or unregistered and may not join the ISR`);
  }
  if (sameIds(isr, p.isr)) return { records: [], response: reply(undefined, p) };
  return {
    records: [{ type: "PartitionChange", topicId: request.topicId, partition: request.partition, isr: [...isr] }],
    response: { errorCode: 0, errorMessage: "", leader: p.leader, leaderEpoch: p.leaderEpoch, partitionEpoch: p.partitionEpoch + 1, isr: [...isr] },
  };
}

/** A block of PRODUCER_ID_BLOCK_SIZE producer ids for a registered broker. */
export function allocateProducerIds(image: MetadataImage, request: AllocateProducerIdsCall): ControllerResult<ProducerIdBlock> {
  const broker = image.brokers.get(request.brokerId);
  if (!broker || broker.brokerEpoch !== request.brokerEpoch) {
    throw new FlotillaError("BROKER_NOT_AVAILABLE", `AllocateProducerIds from broker ${request.brokerId} with broker epoch ${request.brokerEpoch}; the registered epoch is ${broker?.brokerEpoch ?? "none"}`);
  }
  const first = image.producerIds.nextProducerId;
  const record: MetadataRecord = { type: "ProducerIds", brokerId: request.brokerId, brokerEpoch: request.brokerEpoch, nextProducerId: first + PRODUCER_ID_BLOCK_SIZE };
  return { records: [record], response: { firstProducerId: first, count: PRODUCER_ID_BLOCK_SIZE } };
}

/** `records` applied to `image` at the next offsets: for commands that decide on what an earlier record of the same batch did. */
export function applyAhead(image: MetadataImage, records: readonly MetadataRecord[]): MetadataImage {
  let next = image;
  for (const record of records) next = replay(next, record, next.offset + 1);
  return next;
}

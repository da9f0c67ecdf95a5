import { FlotillaError, assert } from "@flotilla/common";
import { tpKey, type TopicPartition } from "../accumulator.js";

/**
 * Partition assignors, run by the group leader on the client (Kafka's client-side
 * assignment): given every member's subscription and the partition counts of the
 * subscribed topics, decide which member reads which partition. Pure and deterministic:
 * the same input gives the same output on every client, whatever order members arrive in.
 */

export interface MemberSubscription {
  memberId: string;
  /** "" for a dynamic member. */
  groupInstanceId: string;
  topics: readonly string[];
  /** Partitions the member says it owns (Subscription v1+); empty for eager members. */
  ownedPartitions: readonly TopicPartition[];
  /** Generation of those owned partitions (Subscription v2+); -1 unknown. */
  generationId: number;
}

export interface AssignorInput {
  members: readonly MemberSubscription[];
  /** Partition count of each subscribed topic that exists; unknown topics are absent. */
  partitionsPerTopic: ReadonlyMap<string, number>;
}

/** Member id -> its partitions, sorted by topic then partition. Every member has an entry. */
export type GroupAssignment = Map<string, TopicPartition[]>;

/**
 * EAGER: every member gives up all its partitions before it rejoins. COOPERATIVE
 * (KIP-429): members keep their partitions across the rebalance and give up only those the
 * new assignment takes away; those are handed out in a follow-up rebalance.
 */
export type RebalanceProtocol = "eager" | "cooperative";

export interface PartitionAssignor {
  readonly name: string;
  readonly rebalanceProtocol: RebalanceProtocol;
  assign(input: AssignorInput): GroupAssignment;
}

/**
 * Kafka's MemberInfo order: static members (with a group.instance.id) first, by instance id;
 * then dynamic members by member id. Java compares strings by UTF-16 code units, as JS `<` does.
 */
export function compareMembers(a: Pick<MemberSubscription, "memberId" | "groupInstanceId">, b: Pick<MemberSubscription, "memberId" | "groupInstanceId">): number {
  if (a.groupInstanceId && b.groupInstanceId) return cmp(a.groupInstanceId, b.groupInstanceId);
  if (a.groupInstanceId) return -1;
  if (b.groupInstanceId) return 1;
  return cmp(a.memberId, b.memberId);
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export function compareTopicPartitions(a: TopicPartition, b: TopicPartition): number {
  return a.topic === b.topic ? a.partition - b.partition : cmp(a.topic, b.topic);
}

function emptyAssignment(members: readonly MemberSubscription[]): GroupAssignment {
  const out: GroupAssignment = new Map();
  for (const m of members) {
    assert(!out.has(m.memberId), `member ${m.memberId} appears twice in the assignor input`);
    out.set(m.memberId, []);
  }
  return out;
}

function sortAll(a: GroupAssignment): GroupAssignment {
  for (const list of a.values()) list.sort(compareTopicPartitions);
  return a;
}

/**
 * Kafka's RangeAssignor: per topic, the members subscribed to it (in MemberInfo order) get
 * contiguous ranges of its partitions; with P partitions and C members each gets P / C, and
 * the first P % C members one more. Topics are independent, so the first members of every
 * topic get the extras (range is uneven across many topics, by design).
 */
export const rangeAssignor: PartitionAssignor = {
  name: "range",
  rebalanceProtocol: "eager",
  assign({ members, partitionsPerTopic }) {
    const out = emptyAssignment(members);
    const topics = [...new Set(members.flatMap((m) => m.topics))].sort(cmp);
    for (const topic of topics) {
      const count = partitionsPerTopic.get(topic);
      if (count === undefined) continue;
      const consumers = members.filter((m) => m.topics.includes(topic)).sort(compareMembers);
      const per = Math.floor(count / consumers.length);
      const extra = count % consumers.length;
      consumers.forEach((m, i) => {
        const start = per * i + Math.min(i, extra);
        const length = per + (i < extra ? 1 : 0);
        const list = out.get(m.memberId) as TopicPartition[];
        for (let p = start; p < start + length; p++) list.push({ topic, partition: p });
      });
    }
    return sortAll(out);
  },
};

/**
 * Kafka's RoundRobinAssignor: every partition of every subscribed topic, sorted by topic and
 * partition, dealt in turn over the members in MemberInfo order; a member not subscribed to
 * the partition's topic is passed over (the deal goes on from where it stopped).
 */
export const roundRobinAssignor: PartitionAssignor = {
  name: "roundrobin",
  rebalanceProtocol: "eager",
  assign({ members, partitionsPerTopic }) {
    const out = emptyAssignment(members);
    const sorted = [...members].sort(compareMembers);
    if (sorted.length === 0) return out;
    const topics = [...new Set(members.flatMap((m) => m.topics))].filter((t) => partitionsPerTopic.has(t)).sort(cmp);
    let cursor = 0;
    for (const topic of topics) {
      const count = partitionsPerTopic.get(topic) as number;
      for (let p = 0; p < count; p++) {
        // Someone subscribes to this topic (it came from a subscription), so this ends
        // within one turn around the members.
        for (let tries = 0; tries < sorted.length; tries++) {
          const m = sorted[cursor % sorted.length] as MemberSubscription;
          cursor++;
          if (m.topics.includes(topic)) {
            (out.get(m.memberId) as TopicPartition[]).push({ topic, partition: p });
            break;
          }
        }
      }
    }
    return sortAll(out);
  },
};

/**
 * A balanced, sticky assignment (the goal of Kafka's StickyAssignor): first every member
 * keeps the partitions it owns that are still valid (topic exists, member still subscribed,
 * no other claim from a newer generation); then unowned partitions go, in sorted order, to
 * the eligible member with the fewest; then, while some member has at least two more than
 * another member that could take one of its partitions, one partition moves (the highest
 * sorted of the fullest member). The result differs between two members able to read the
 * same partition by at most one, and moves as few owned partitions as that allows.
 */
export function stickyAssign(input: AssignorInput): GroupAssignment {
  const members = [...input.members].sort(compareMembers);
  const out = emptyAssignment(members);
  const subscribed = new Map(members.map((m) => [m.memberId, new Set(m.topics)]));
  const valid = (m: MemberSubscription, tp: TopicPartition): boolean => {
    const count = input.partitionsPerTopic.get(tp.topic);
    return count !== undefined && tp.partition >= 0 && tp.partition < count && (subscribed.get(m.memberId) as Set<string>).has(tp.topic);
  };

  // 1. Keep valid owned partitions; a partition claimed twice goes to the newer generation
  //    (the other claim is a leftover of a member that missed a rebalance), ties to the
  //    member first in order.
  const owner = new Map<string, { memberId: string; generationId: number }>();
  for (const m of members) {
    for (const tp of m.ownedPartitions) {
      if (!valid(m, tp)) continue;
      const key = tpKey(tp);
      const prev = owner.get(key);
      if (!prev || m.generationId > prev.generationId) owner.set(key, { memberId: m.memberId, generationId: m.generationId });
    }
  }
  const assigned = new Map<string, string>();
  for (const [key, o] of owner) assigned.set(key, o.memberId);

  // 2. Every partition of a subscribed topic, sorted; unowned ones to the emptiest eligible member.
  const all: TopicPartition[] = [];
  for (const topic of [...new Set(members.flatMap((m) => m.topics))].sort(cmp)) {
    const count = input.partitionsPerTopic.get(topic);
    if (count === undefined) continue;
    for (let p = 0; p < count; p++) all.push({ topic, partition: p });
  }
  const countOf = (memberId: string): number => (out.get(memberId) as TopicPartition[]).length;
  for (const tp of all) {
    const o = assigned.get(tpKey(tp));
    if (o !== undefined) (out.get(o) as TopicPartition[]).push(tp);
  }
  for (const tp of all) {
    if (assigned.has(tpKey(tp))) continue;
    let best: MemberSubscription | undefined;
    for (const m of members) {
      if (!(subscribed.get(m.memberId) as Set<string>).has(tp.topic)) continue;
      if (!best || countOf(m.memberId) < countOf(best.memberId)) best = m;
    }
    if (!best) continue;
    (out.get(best.memberId) as TopicPartition[]).push(tp);
    assigned.set(tpKey(tp), best.memberId);
  }
  sortAll(out);

  // 3. Balance: each move lowers the sum of squared counts, so this ends; the bound is a guard.
  const movesMax = all.length * Math.max(1, members.length) + 1;
  for (let moves = 0; moves < movesMax; moves++) {
    let move: { from: string; to: string; index: number; gap: number } | undefined;
    for (const a of members) {
      const listA = out.get(a.memberId) as TopicPartition[];
      for (const b of members) {
        const gap = listA.length - countOf(b.memberId);
        if (gap < 2 || (move && gap <= move.gap)) continue;
        const topicsB = subscribed.get(b.memberId) as Set<string>;
        for (let i = listA.length - 1; i >= 0; i--) {
          if (topicsB.has((listA[i] as TopicPartition).topic)) {
            move = { from: a.memberId, to: b.memberId, index: i, gap };
            break;
          }
        }
      }
    }
    if (!move) break;
    const [tp] = (out.get(move.from) as TopicPartition[]).splice(move.index, 1);
    (out.get(move.to) as TopicPartition[]).push(tp as TopicPartition);
    (out.get(move.to) as TopicPartition[]).sort(compareTopicPartitions);
  }
  return out;
}

/**
 * Kafka's CooperativeStickyAssignor (KIP-429): the sticky assignment, then every partition
 * that would move from one member to another is left out of this round. Its old owner sees
 * it gone from its assignment, revokes it and rejoins; in that follow-up rebalance nobody
 * owns it and it goes to its new member. So no partition is ever owned by two members, and
 * members keep reading everything that does not move while the group rebalances.
 */
export const cooperativeStickyAssignor: PartitionAssignor = {
  name: "cooperative-sticky",
  rebalanceProtocol: "cooperative",
  assign(input) {
    const sticky = stickyAssign(input);
    const previousOwner = new Map<string, string>();
    // Same claim resolution as stickyAssign: newer generation wins, ties to the first member.
    const gens = new Map<string, number>();
    for (const m of [...input.members].sort(compareMembers)) {
      for (const tp of m.ownedPartitions) {
        const key = tpKey(tp);
        const g = gens.get(key);
        if (g === undefined || m.generationId > g) {
          gens.set(key, m.generationId);
          previousOwner.set(key, m.memberId);
        }
      }
    }
    for (const [memberId, list] of sticky) {
      sticky.set(
        memberId,
        list.filter((tp) => {
          const prev = previousOwner.get(tpKey(tp));
          return prev === undefined || prev === memberId;
        }),
      );
    }
    return sticky;
  },
};

export const BUILTIN_ASSIGNORS: readonly PartitionAssignor[] = [rangeAssignor, roundRobinAssignor, cooperativeStickyAssignor];

/** Looks up assignors by name (Kafka's partition.assignment.strategy); unknown names are INVALID_CONFIG. */
export function assignorsByName(names: readonly (string | PartitionAssignor)[]): PartitionAssignor[] {
  if (names.length === 0) throw new FlotillaError("INVALID_CONFIG", "partitionAssigners must name at least one assignor");
  return names.map((n) => {
    if (typeof n !== "string") return n;
    const a = BUILTIN_ASSIGNORS.find((x) => x.name === n);
    if (!a) throw new FlotillaError("INVALID_CONFIG", `partitionAssigners: unknown assignor "${n}" (known: ${BUILTIN_ASSIGNORS.map((x) => x.name).join(", ")})`);
    return a;
  });
}

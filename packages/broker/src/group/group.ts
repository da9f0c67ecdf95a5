/**
 * One consumer group as its coordinator holds it in memory (Kafka's GroupMetadata):
 * state, generation, leader, members and committed offsets. The coordinator
 * (./coordinator.ts) drives the transitions; this class keeps the data and the rules that
 * need only the data (valid transitions, protocol selection).
 *
 * States (Kafka's classic protocol):
 *   Empty               no members; offsets may remain
 *   PreparingRebalance  waiting for members to (re)join, up to the rebalance timeout
 *   CompletingRebalance joined; waiting for the leader's assignment in SyncGroup
 *   Stable              assignment delivered; members heartbeat
 *   Dead                removed (deleted, or its offsets expired); never left
 */
import { assert } from "@flotilla/common";
import type { GroupStateName, JoinGroupProtocol, JoinGroupResponse, SyncGroupResponse } from "@flotilla/protocol";

const VALID_PREVIOUS: Record<GroupStateName, readonly GroupStateName[]> = {
  Empty: ["PreparingRebalance"],
  PreparingRebalance: ["Empty", "Stable", "CompletingRebalance"],
  CompletingRebalance: ["PreparingRebalance"],
  Stable: ["CompletingRebalance"],
  Dead: ["Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead"],
};

export interface Member {
  memberId: string;
  readonly groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  protocolType: string;
  protocols: JoinGroupProtocol[];
  /** The member's assignment of the current generation (empty until SyncGroup completes). */
  assignment: Buffer;
  /** The parked JoinGroup call, answered when the join phase completes. */
  awaitingJoin: ((response: JoinGroupResponse) => void) | undefined;
  /** The parked SyncGroup call, answered when the leader's assignment is stored. */
  awaitingSync: ((response: SyncGroupResponse) => void) | undefined;
  /** Joined in the current rebalance and not yet part of a generation. */
  isNew: boolean;
  /** Cancels the session timer. */
  cancelSession: (() => void) | undefined;
}

export interface CommittedOffset {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly leaderEpoch: number;
  readonly metadata: string;
  readonly commitTimestampMs: number;
}

export function offsetMapKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

export class Group {
  state: GroupStateName = "Empty";
  /** When the group entered its state (ms since the epoch); offsets of an Empty group expire from here. */
  stateSinceMs: number;
  /** Set by the first member; "" for groups that only store offsets. */
  protocolType = "";
  protocolName: string | null = null;
  generationId = 0;
  leaderId: string | null = null;
  readonly members = new Map<string, Member>();
  /** group.instance.id -> member id of static members. */
  readonly staticMembers = new Map<string, string>();
  /** Member ids handed out with MEMBER_ID_REQUIRED, awaiting their second join; value cancels their expiry. */
  readonly pendingMembers = new Map<string, () => void>();
  /** Members of the current generation that have not sent SyncGroup yet. */
  readonly pendingSyncMembers = new Set<string>();
  readonly offsets = new Map<string, CommittedOffset>();
  /** A member joined since the initial rebalance delay began (extends it). */
  newMemberAdded = false;
  /** Cancels the join-phase timer (rebalance timeout or initial delay). */
  cancelJoinTimer: (() => void) | undefined;
  /** True while the initial rebalance delay of a group that was empty runs. */
  initialDelayActive = false;
  /** Cancels the sync-phase timer. */
  cancelSyncTimer: (() => void) | undefined;

  constructor(
    readonly groupId: string,
    nowMs: number,
  ) {
    this.stateSinceMs = nowMs;
  }

  is(state: GroupStateName): boolean {
    return this.state === state;
  }

  transition(to: GroupStateName, nowMs: number): void {
    assert(VALID_PREVIOUS[to].includes(this.state), () => `group ${this.groupId}: invalid transition ${this.state} -> ${to}`);
    this.state = to;
    this.stateSinceMs = nowMs;
  }

  /** The largest rebalance timeout of the members: how long the join phase may wait. */
  rebalanceTimeoutMs(fallbackMs: number): number {
    let max = 0;
    for (const m of this.members.values()) max = Math.max(max, m.rebalanceTimeoutMs);
    return max > 0 ? max : fallbackMs;
  }

  allMembersJoined(): boolean {
    if (this.pendingMembers.size > 0) return false;
    for (const m of this.members.values()) if (!m.awaitingJoin) return false;
    return true;
  }

  /** Protocol names every member supports (in the order of the first member's preference). */
  candidateProtocols(): string[] {
    const all = [...this.members.values()];
    const first = all[0];
    if (!first) return [];
    return first.protocols.map((p) => p.name).filter((name) => all.every((m) => m.protocols.some((p) => p.name === name)));
  }

  /**
   * Whether a member with these protocols may join: for an Empty group any non-empty
   * type and list; otherwise the same type and a protocol in common with every member.
   */
  supportsProtocols(protocolType: string, protocols: readonly JoinGroupProtocol[]): boolean {
    if (protocolType === "" || protocols.length === 0) return false;
    if (this.members.size === 0) return true;
    if (protocolType !== this.protocolType) return false;
    const candidates = new Set(this.candidateProtocols());
    return protocols.some((p) => candidates.has(p.name));
  }

  /**
   * Kafka's vote: among the protocols every member supports, each member votes for the
   * one it ranks highest; most votes wins, ties go to the first member's preference.
   */
  selectProtocol(): string {
    const candidates = this.candidateProtocols();
    assert(candidates.length > 0, () => `group ${this.groupId} has no protocol every member supports`);
    const votes = new Map<string, number>(candidates.map((c) => [c, 0]));
    for (const m of this.members.values()) {
      const choice = m.protocols.find((p) => votes.has(p.name));
      if (choice) votes.set(choice.name, (votes.get(choice.name) ?? 0) + 1);
    }
    let best = candidates[0] as string;
    for (const c of candidates) if ((votes.get(c) ?? 0) > (votes.get(best) ?? 0)) best = c;
    return best;
  }

  /** The member's subscription bytes for the chosen protocol. */
  metadataOf(member: Member): Buffer {
    const name = this.protocolName;
    return member.protocols.find((p) => p.name === name)?.metadata ?? Buffer.alloc(0);
  }
}

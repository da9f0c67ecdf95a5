/**
 * The group coordinator's engine (Kafka's classic GroupCoordinator + GroupMetadataManager)
 * for the partitions of __consumer_offsets this broker leads. It knows nothing of gRPC or
 * of the metadata image: the caller tells it which partitions to load and unload, and
 * gives it an `OffsetsLog` to append to and read from, a clock and a timer.
 *
 * Per partition: `loading` (calls answer COORDINATOR_LOAD_IN_PROGRESS) until every record
 * from the log start has been replayed, then `active`; a partition not held answers
 * NOT_COORDINATOR. Loads and unloads carry a load id so that an append or load that
 * finishes after an unload changes nothing.
 *
 * Persistence: committed offsets and the group's metadata (after each generation's
 * SyncGroup, and when a group becomes empty) are records of ./records.ts, appended with
 * acks=all; a call is answered only after its append is durable, and memory changes only
 * then. Replaying the partition rebuilds the same groups (members, generation, leader,
 * assignments) and offsets; members' sessions restart at load time.
 *
 * Limits: group.max.size members per group; every parked call (join, sync) belongs to a
 * member, and every wait has a timer (rebalance timeout, session timeout).
 */
import { randomUUID } from "node:crypto";
import { FlotillaError, type Clock } from "@flotilla/common";
import type { Logger } from "@flotilla/common/logger";
import {
  decodeBatches,
  encodeBatch,
  errorFields,
  type DeleteGroupsRequest,
  type DeleteGroupsResponse,
  type DescribeGroupsRequest,
  type DescribeGroupsResponse,
  type DescribedGroup,
  type GroupCallContext,
  type HeartbeatRequest,
  type HeartbeatResponse,
  type JoinGroupRequest,
  type JoinGroupResponse,
  type LeaveGroupMemberResponse,
  type LeaveGroupRequest,
  type LeaveGroupResponse,
  type ListGroupsRequest,
  type ListGroupsResponse,
  type OffsetCommitRequest,
  type OffsetCommitResponse,
  type OffsetFetchRequest,
  type OffsetFetchResponse,
  type ProducerRecord,
  type SyncGroupRequest,
  type SyncGroupResponse,
} from "@flotilla/protocol";
import type { GroupCoordinatorConfig } from "./config.js";
import { Group, offsetMapKey, type CommittedOffset, type Member } from "./group.js";
import { partitionForGroup } from "./placement.js";
import {
  decodeGroupValue,
  decodeKey,
  decodeOffsetValue,
  encodeGroupKey,
  encodeGroupValue,
  encodeOffsetKey,
  encodeOffsetValue,
  type GroupValue,
  type OffsetValue,
} from "./records.js";
import type { Timer } from "./timer.js";

/** The coordinator's access to its partitions of __consumer_offsets. */
export interface OffsetsLog {
  /**
   * Appends one record batch to the partition as its leader with acks=all; resolves once
   * the batch is durable (the high watermark passed it) with its base offset. Throws a
   * FlotillaError (NOT_LEADER_OR_FOLLOWER, NOT_ENOUGH_REPLICAS, REQUEST_TIMED_OUT, ...).
   */
  append(partition: number, batch: Buffer, timeoutMs: number): Promise<number>;
  /** [logStartOffset, logEndOffset) of the partition's log here. */
  range(partition: number): { logStartOffset: number; logEndOffset: number };
  /** Whole batches from `offset` (at least one when there is one), bytes as stored. */
  read(partition: number, offset: number, maxBytes: number): Promise<Buffer>;
}

export interface GroupCoordinatorEngineOptions {
  readonly config: GroupCoordinatorConfig;
  readonly log: OffsetsLog;
  readonly clock: Clock;
  readonly timer: Timer;
  readonly logger: Logger;
}

type PartitionStatus = { readonly kind: "loading"; readonly loadId: number } | { readonly kind: "active"; readonly loadId: number };

const EMPTY = Buffer.alloc(0);
/** Most batches a load reads; a backstop beside the log end offset bound. */
const LOAD_READS_MAX = 10_000_000;

function fail(name: ConstructorParameters<typeof FlotillaError>[0], detail: string): FlotillaError {
  return new FlotillaError(name, detail);
}

function joinError(err: unknown, memberId = ""): JoinGroupResponse {
  return { ...errorFields(err), generationId: -1, protocolType: "", protocolName: "", leader: "", memberId, members: [] };
}

function syncError(err: unknown): SyncGroupResponse {
  return { ...errorFields(err), protocolType: "", protocolName: "", assignment: EMPTY };
}

/** Kafka's mapping of append failures to what a group client acts on. */
function coordinatorAppendError(err: unknown): FlotillaError {
  if (!(err instanceof FlotillaError)) return new FlotillaError("UNKNOWN_SERVER_ERROR", `writing to __consumer_offsets failed: ${String(err)}`, { cause: err });
  switch (err.errorName) {
    case "NOT_LEADER_OR_FOLLOWER":
    case "UNKNOWN_TOPIC_OR_PARTITION":
    case "FENCED_LEADER_EPOCH":
    case "NOT_COORDINATOR":
      return new FlotillaError("NOT_COORDINATOR", `lost the __consumer_offsets partition while writing: ${err.message}`, { cause: err });
    case "NOT_ENOUGH_REPLICAS":
    case "NOT_ENOUGH_REPLICAS_AFTER_APPEND":
    case "REQUEST_TIMED_OUT":
    case "SHUTTING_DOWN":
    case "KAFKA_STORAGE_ERROR":
      return new FlotillaError("COORDINATOR_NOT_AVAILABLE", `__consumer_offsets write not durable: ${err.message}`, { cause: err });
    case "MESSAGE_TOO_LARGE":
    case "RECORD_LIST_TOO_LARGE":
      return new FlotillaError("INVALID_COMMIT_OFFSET_SIZE", err.message, { cause: err });
    default:
      return err;
  }
}

function sameProtocols(a: readonly { name: string; metadata: Buffer }[], b: readonly { name: string; metadata: Buffer }[]): boolean {
  return a.length === b.length && a.every((p, i) => p.name === b[i]!.name && p.metadata.equals(b[i]!.metadata));
}

export class GroupCoordinatorEngine {
  private readonly groups = new Map<string, Group>();
  private readonly partitions = new Map<number, PartitionStatus>();
  private loadSeq = 0;
  private closed = false;

  constructor(private readonly options: GroupCoordinatorEngineOptions) {}

  private get config(): GroupCoordinatorConfig {
    return this.options.config;
  }

  private now(): number {
    return this.options.clock.nowMs();
  }

  partitionFor(groupId: string): number {
    return partitionForGroup(groupId, this.config.offsetsTopicNumPartitions);
  }

  /** Partitions loaded or loading here. */
  heldPartitions(): number[] {
    return [...this.partitions.keys()].sort((a, b) => a - b);
  }

  isActive(partition: number): boolean {
    return this.partitions.get(partition)?.kind === "active";
  }

  /** Throws NOT_COORDINATOR / COORDINATOR_LOAD_IN_PROGRESS unless the group's partition is active here. */
  private checkCoordinator(groupId: string): number {
    if (groupId === "") throw fail("INVALID_GROUP_ID", "group id is empty");
    if (this.closed) throw fail("NOT_COORDINATOR", "the coordinator is shutting down");
    const partition = this.partitionFor(groupId);
    const status = this.partitions.get(partition);
    if (!status) throw fail("NOT_COORDINATOR", `this broker does not lead partition ${partition} of __consumer_offsets, which holds group "${groupId}"`);
    if (status.kind === "loading") throw fail("COORDINATOR_LOAD_IN_PROGRESS", `partition ${partition} of __consumer_offsets is still loading`);
    return status.loadId;
  }

  private stillOwned(groupId: string, loadId: number): boolean {
    return this.partitions.get(this.partitionFor(groupId))?.loadId === loadId;
  }

  // ---------------------------------------------------------------- JoinGroup

  joinGroup(request: JoinGroupRequest, context: GroupCallContext): Promise<JoinGroupResponse> {
    try {
      this.checkCoordinator(request.groupId);
      const { groupMinSessionTimeoutMs: min, groupMaxSessionTimeoutMs: max } = this.config;
      if (request.sessionTimeoutMs < min || request.sessionTimeoutMs > max) {
        throw fail("INVALID_SESSION_TIMEOUT", `session timeout ${request.sessionTimeoutMs} ms is outside [${min}, ${max}] (group.min/max.session.timeout.ms)`);
      }
      if (request.rebalanceTimeoutMs < 0) throw fail("INVALID_REQUEST", `rebalance timeout ${request.rebalanceTimeoutMs} ms is negative`);
      return new Promise((resolve) => {
        try {
          if (request.memberId === "") this.joinUnknownMember(request, context, resolve);
          else this.joinKnownMember(request, context, resolve);
        } catch (err) {
          resolve(joinError(err, request.memberId));
        }
      });
    } catch (err) {
      return Promise.resolve(joinError(err, request.memberId));
    }
  }

  private getOrCreateGroup(groupId: string): Group {
    let group = this.groups.get(groupId);
    if (!group) this.groups.set(groupId, (group = new Group(groupId, this.now())));
    return group;
  }

  private joinUnknownMember(request: JoinGroupRequest, context: GroupCallContext, resolve: (r: JoinGroupResponse) => void): void {
    const group = this.getOrCreateGroup(request.groupId);
    if (group.is("Dead")) throw fail("COORDINATOR_NOT_AVAILABLE", `group "${group.groupId}" is being removed`);
    if (!group.supportsProtocols(request.protocolType, request.protocols)) {
      throw fail("INCONSISTENT_GROUP_PROTOCOL", `protocol type "${request.protocolType}" with protocols [${request.protocols.map((p) => p.name).join(", ")}] does not match group "${group.groupId}"`);
    }
    const memberId = `${request.clientId || "member"}-${randomUUID()}`;
    const instanceId = request.groupInstanceId || null;
    if (instanceId !== null && group.staticMembers.has(instanceId)) {
      this.replaceStaticMember(group, instanceId, memberId, request, context, resolve);
      return;
    }
    if (group.members.size + group.pendingMembers.size >= this.config.groupMaxSize) {
      throw fail("GROUP_MAX_SIZE_REACHED", `group "${group.groupId}" has reached group.max.size ${this.config.groupMaxSize}`);
    }
    if (instanceId !== null) {
      // A static member gets its id at once (KIP-345): its instance id already names it.
      this.addMemberAndRebalance(group, memberId, instanceId, request, context, resolve);
      return;
    }
    // KIP-394: hand out the id and wait for the member to join with it, so that a client
    // that retries a timed-out first join does not leave a ghost member behind.
    const cancel = this.options.timer.schedule(request.sessionTimeoutMs, () => {
      if (group.pendingMembers.delete(memberId)) {
        this.options.logger.info({ group: group.groupId, memberId }, "pending member did not rejoin within its session timeout");
        if (group.is("PreparingRebalance")) this.tryCompleteJoin(group);
      }
    });
    group.pendingMembers.set(memberId, cancel);
    resolve({ ...joinError(fail("MEMBER_ID_REQUIRED", "join again with the member id in this response"), memberId) });
  }

  private joinKnownMember(request: JoinGroupRequest, context: GroupCallContext, resolve: (r: JoinGroupResponse) => void): void {
    const group = this.groups.get(request.groupId);
    const memberId = request.memberId;
    if (!group) throw fail("UNKNOWN_MEMBER_ID", `group "${request.groupId}" has no member ${memberId}`);
    if (group.is("Dead")) throw fail("COORDINATOR_NOT_AVAILABLE", `group "${group.groupId}" is being removed`);
    if (!group.supportsProtocols(request.protocolType, request.protocols)) {
      throw fail("INCONSISTENT_GROUP_PROTOCOL", `protocol type "${request.protocolType}" with protocols [${request.protocols.map((p) => p.name).join(", ")}] does not match group "${group.groupId}"`);
    }
    const cancelPending = group.pendingMembers.get(memberId);
    if (cancelPending) {
      cancelPending();
      group.pendingMembers.delete(memberId);
      this.addMemberAndRebalance(group, memberId, null, request, context, resolve);
      return;
    }
    this.checkStaticFence(group, memberId, request.groupInstanceId);
    const member = group.members.get(memberId);
    if (!member) throw fail("UNKNOWN_MEMBER_ID", `group "${group.groupId}" has no member ${memberId}`);
    switch (group.state) {
      case "PreparingRebalance":
        this.updateMemberAndRebalance(group, member, request, resolve);
        return;
      case "CompletingRebalance":
        if (sameProtocols(member.protocols, request.protocols)) {
          // The member lost the join response: send it again (Kafka does the same).
          resolve(this.joinResponseFor(group, member));
          return;
        }
        this.updateMemberAndRebalance(group, member, request, resolve);
        return;
      case "Stable":
        if (group.leaderId === memberId || !sameProtocols(member.protocols, request.protocols)) {
          // The leader rejoins to force a rebalance (e.g. metadata changed); others with a new subscription too.
          this.updateMemberAndRebalance(group, member, request, resolve);
          return;
        }
        resolve(this.joinResponseFor(group, member));
        return;
      case "Empty":
      case "Dead":
        throw fail("UNKNOWN_MEMBER_ID", `group "${group.groupId}" has no member ${memberId}`);
    }
  }

  /** FENCED_INSTANCE_ID when the instance id is held by another member id. */
  private checkStaticFence(group: Group, memberId: string, groupInstanceId: string): void {
    if (groupInstanceId === "") return;
    const holder = group.staticMembers.get(groupInstanceId);
    // Kafka's isStaticMemberFenced: only an instance id held by another member id fences.
    if (holder !== undefined && holder !== memberId) {
      throw fail("FENCED_INSTANCE_ID", `group.instance.id "${groupInstanceId}" of group "${group.groupId}" now belongs to member ${holder}, not ${memberId}`);
    }
  }

  private joinResponseFor(group: Group, member: Member): JoinGroupResponse {
    const isLeader = group.leaderId === member.memberId;
    return {
      errorCode: 0,
      errorMessage: "",
      generationId: group.generationId,
      protocolType: group.protocolType,
      protocolName: group.protocolName ?? "",
      leader: group.leaderId ?? "",
      memberId: member.memberId,
      members: isLeader
        ? [...group.members.values()].map((m) => ({ memberId: m.memberId, groupInstanceId: m.groupInstanceId ?? "", metadata: group.metadataOf(m) }))
        : [],
    };
  }

  private addMemberAndRebalance(
    group: Group,
    memberId: string,
    instanceId: string | null,
    request: JoinGroupRequest,
    context: GroupCallContext,
    resolve: (r: JoinGroupResponse) => void,
  ): void {
    const member: Member = {
      memberId,
      groupInstanceId: instanceId,
      clientId: request.clientId,
      clientHost: context.clientHost,
      sessionTimeoutMs: request.sessionTimeoutMs,
      rebalanceTimeoutMs: request.rebalanceTimeoutMs > 0 ? request.rebalanceTimeoutMs : request.sessionTimeoutMs,
      protocolType: request.protocolType,
      protocols: request.protocols.map((p) => ({ name: p.name, metadata: Buffer.from(p.metadata) })),
      assignment: EMPTY,
      awaitingJoin: resolve,
      awaitingSync: undefined,
      isNew: true,
      cancelSession: undefined,
    };
    if (group.members.size === 0) group.protocolType = request.protocolType;
    group.members.set(memberId, member);
    if (instanceId !== null) group.staticMembers.set(instanceId, memberId);
    // The first member to join is the leader; it stays leader while it is a member.
    if (group.leaderId === null) group.leaderId = memberId;
    group.newMemberAdded = true;
    this.options.logger.info({ group: group.groupId, memberId, groupInstanceId: instanceId, clientId: request.clientId, reason: request.reason }, "member joined");
    this.maybePrepareRebalance(group, `member ${memberId} joined`);
    this.tryCompleteJoin(group);
  }

  private updateMemberAndRebalance(group: Group, member: Member, request: JoinGroupRequest, resolve: (r: JoinGroupResponse) => void): void {
    member.protocols = request.protocols.map((p) => ({ name: p.name, metadata: Buffer.from(p.metadata) }));
    member.sessionTimeoutMs = request.sessionTimeoutMs;
    member.rebalanceTimeoutMs = request.rebalanceTimeoutMs > 0 ? request.rebalanceTimeoutMs : request.sessionTimeoutMs;
    member.clientId = request.clientId || member.clientId;
    // A second join of the same member replaces the first (its client gave up on it).
    member.awaitingJoin?.(joinError(fail("REBALANCE_IN_PROGRESS", "superseded by a newer JoinGroup of the same member"), member.memberId));
    member.awaitingJoin = resolve;
    this.maybePrepareRebalance(group, `member ${member.memberId} rejoined`);
    this.tryCompleteJoin(group);
  }

  /**
   * A known static instance joins with an empty member id (a restarted process): it takes
   * over the old member's slot under a new id, and the old id is fenced. Without a change
   * of protocol type, protocols or subscription bytes a Stable group keeps its generation
   * and assignment (no rebalance: the point of static membership); the slot change is
   * written to __consumer_offsets first. Otherwise the group rebalances.
   */
  private replaceStaticMember(
    group: Group,
    instanceId: string,
    newMemberId: string,
    request: JoinGroupRequest,
    context: GroupCallContext,
    resolve: (r: JoinGroupResponse) => void,
  ): void {
    const oldId = group.staticMembers.get(instanceId) as string;
    const member = group.members.get(oldId);
    if (!member) {
      group.staticMembers.delete(instanceId);
      this.addMemberAndRebalance(group, newMemberId, instanceId, request, context, resolve);
      return;
    }
    const fenced = fail("FENCED_INSTANCE_ID", `static member "${instanceId}" rejoined as ${newMemberId}`);
    member.awaitingJoin?.(joinError(fenced, oldId));
    member.awaitingJoin = undefined;
    member.awaitingSync?.(syncError(fenced));
    member.awaitingSync = undefined;
    const unchanged = request.protocolType === member.protocolType && sameProtocols(member.protocols, request.protocols);
    group.members.delete(oldId);
    member.memberId = newMemberId;
    member.clientId = request.clientId || member.clientId;
    member.clientHost = context.clientHost;
    member.sessionTimeoutMs = request.sessionTimeoutMs;
    member.rebalanceTimeoutMs = request.rebalanceTimeoutMs > 0 ? request.rebalanceTimeoutMs : request.sessionTimeoutMs;
    member.protocols = request.protocols.map((p) => ({ name: p.name, metadata: Buffer.from(p.metadata) }));
    group.members.set(newMemberId, member);
    group.staticMembers.set(instanceId, newMemberId);
    if (group.leaderId === oldId) group.leaderId = newMemberId;
    if (group.pendingSyncMembers.delete(oldId)) group.pendingSyncMembers.add(newMemberId);
    this.options.logger.info({ group: group.groupId, groupInstanceId: instanceId, oldMemberId: oldId, memberId: newMemberId, unchanged }, "static member rejoined");
    this.heartbeatReceived(group, member);

    switch (group.state) {
      case "Stable":
        if (unchanged) {
          const loadId = this.checkCoordinator(group.groupId);
          const generation = group.generationId;
          this.storeGroup(group).then(
            () => resolve(this.stillOwned(group.groupId, loadId) && group.generationId === generation ? { ...this.joinResponseFor(group, member), members: [] } : joinError(fail("REBALANCE_IN_PROGRESS", "the group changed while storing the static member"), newMemberId)),
            (err: unknown) => resolve(joinError(coordinatorAppendError(err), newMemberId)),
          );
          return;
        }
        member.awaitingJoin = resolve;
        this.prepareRebalance(group, `static member "${instanceId}" rejoined with other protocols`);
        this.tryCompleteJoin(group);
        return;
      case "CompletingRebalance":
        // The leader may be computing an assignment for the old id: start over.
        member.awaitingJoin = resolve;
        this.prepareRebalance(group, `static member "${instanceId}" rejoined while the group awaited its assignment`);
        this.tryCompleteJoin(group);
        return;
      case "PreparingRebalance":
        member.awaitingJoin = resolve;
        this.tryCompleteJoin(group);
        return;
      case "Empty":
      case "Dead":
        throw fail("UNKNOWN_MEMBER_ID", `group "${group.groupId}" in state ${group.state} has a static member`);
    }
  }

  private maybePrepareRebalance(group: Group, reason: string): void {
    if (group.is("Stable") || group.is("CompletingRebalance") || group.is("Empty")) this.prepareRebalance(group, reason);
  }

  private prepareRebalance(group: Group, reason: string): void {
    if (group.is("CompletingRebalance")) {
      for (const m of group.members.values()) {
        m.assignment = EMPTY;
        m.awaitingSync?.(syncError(fail("REBALANCE_IN_PROGRESS", `group "${group.groupId}" is rebalancing: ${reason}`)));
        m.awaitingSync = undefined;
      }
    }
    group.cancelSyncTimer?.();
    group.cancelSyncTimer = undefined;
    group.pendingSyncMembers.clear();
    group.cancelJoinTimer?.();
    const wasEmpty = group.is("Empty");
    group.transition("PreparingRebalance", this.now());
    const rebalanceTimeoutMs = group.rebalanceTimeoutMs(this.config.groupMinSessionTimeoutMs);
    this.options.logger.info({ group: group.groupId, generationId: group.generationId, reason, members: group.members.size }, "preparing to rebalance");
    if (wasEmpty && this.config.groupInitialRebalanceDelayMs > 0) {
      // Kafka's InitialDelayedJoin: a new group waits group.initial.rebalance.delay.ms for
      // more members, again each time one arrives, up to the rebalance timeout in total.
      group.initialDelayActive = true;
      group.newMemberAdded = false;
      const delayMs = this.config.groupInitialRebalanceDelayMs;
      const step = (remainingMs: number) => {
        group.cancelJoinTimer = this.options.timer.schedule(Math.min(delayMs, Math.max(remainingMs, 0)), () => {
          const left = remainingMs - delayMs;
          if (group.newMemberAdded && left > 0) {
            group.newMemberAdded = false;
            step(left);
            return;
          }
          group.initialDelayActive = false;
          this.completeJoin(group);
        });
      };
      step(Math.max(rebalanceTimeoutMs, delayMs));
      return;
    }
    group.initialDelayActive = false;
    group.cancelJoinTimer = this.options.timer.schedule(rebalanceTimeoutMs, () => this.completeJoin(group));
    // Kafka's tryCompleteElseWatch: a rebalance everyone has already joined (or that
    // nobody is left for) completes now.
    this.tryCompleteJoin(group);
  }

  private tryCompleteJoin(group: Group): void {
    if (group.is("PreparingRebalance") && !group.initialDelayActive && group.allMembersJoined()) this.completeJoin(group);
  }

  /** The join phase ends: members that did not rejoin are removed and the next generation begins. */
  private completeJoin(group: Group): void {
    if (!group.is("PreparingRebalance")) return;
    group.cancelJoinTimer?.();
    group.cancelJoinTimer = undefined;
    group.initialDelayActive = false;
    for (const m of [...group.members.values()]) {
      if (!m.awaitingJoin && m.groupInstanceId === null) this.removeMemberQuietly(group, m, "did not rejoin within the rebalance timeout");
    }
    if (group.members.size === 0) {
      group.generationId++;
      group.protocolName = null;
      group.leaderId = null;
      group.transition("Empty", this.now());
      this.options.logger.info({ group: group.groupId, generationId: group.generationId }, "group is empty");
      this.storeGroup(group).catch((err: unknown) => this.options.logger.warn({ err, group: group.groupId }, "storing the empty group failed"));
      return;
    }
    // The leader must have rejoined, to run the assignor; else pick one that has.
    const leader = group.leaderId === null ? undefined : group.members.get(group.leaderId);
    if (!leader?.awaitingJoin) {
      const joined = [...group.members.values()].find((m) => m.awaitingJoin);
      if (!joined) {
        // Only static members that did not rejoin remain: wait another rebalance timeout
        // (their sessions expire meanwhile), as Kafka does.
        group.cancelJoinTimer = this.options.timer.schedule(group.rebalanceTimeoutMs(this.config.groupMinSessionTimeoutMs), () => this.completeJoin(group));
        return;
      }
      group.leaderId = joined.memberId;
    }
    group.generationId++;
    group.protocolName = group.selectProtocol();
    group.transition("CompletingRebalance", this.now());
    this.options.logger.info({ group: group.groupId, generationId: group.generationId, protocol: group.protocolName, leader: group.leaderId, members: [...group.members.keys()] }, "rebalance joined; awaiting the leader's assignment");
    for (const m of group.members.values()) {
      group.pendingSyncMembers.add(m.memberId);
      const respond = m.awaitingJoin;
      m.awaitingJoin = undefined;
      m.isNew = false;
      m.assignment = EMPTY;
      this.heartbeatReceived(group, m);
      respond?.(this.joinResponseFor(group, m));
    }
    // Kafka's pending-sync timeout: members that never send SyncGroup are removed.
    const generation = group.generationId;
    group.cancelSyncTimer = this.options.timer.schedule(group.rebalanceTimeoutMs(this.config.groupMinSessionTimeoutMs), () => {
      group.cancelSyncTimer = undefined;
      if (group.generationId !== generation || group.pendingSyncMembers.size === 0) return;
      if (!group.is("CompletingRebalance") && !group.is("Stable")) return;
      const missing = [...group.pendingSyncMembers];
      group.pendingSyncMembers.clear();
      for (const id of missing) {
        const m = group.members.get(id);
        if (m) this.removeMemberQuietly(group, m, "did not send SyncGroup within the rebalance timeout");
      }
      this.afterMemberRemoved(group, `members ${missing.join(", ")} did not sync`);
    });
  }

  // ---------------------------------------------------------------- sessions

  /** Restarts the member's session timer. */
  private heartbeatReceived(group: Group, member: Member): void {
    member.cancelSession?.();
    const memberRef = member;
    member.cancelSession = this.options.timer.schedule(member.sessionTimeoutMs, () => {
      memberRef.cancelSession = undefined;
      if (group.members.get(memberRef.memberId) !== memberRef) return;
      // A member whose join or sync call is parked is alive; those waits have their own timers.
      if (memberRef.awaitingJoin || memberRef.awaitingSync) {
        this.heartbeatReceived(group, memberRef);
        return;
      }
      this.removeMemberQuietly(group, memberRef, "session timed out");
      this.afterMemberRemoved(group, `member ${memberRef.memberId} session timed out`);
    });
  }

  private removeMemberQuietly(group: Group, member: Member, reason: string): void {
    member.cancelSession?.();
    member.cancelSession = undefined;
    const gone = fail("UNKNOWN_MEMBER_ID", `member ${member.memberId} was removed from group "${group.groupId}": ${reason}`);
    member.awaitingJoin?.(joinError(gone, member.memberId));
    member.awaitingJoin = undefined;
    member.awaitingSync?.(syncError(gone));
    member.awaitingSync = undefined;
    group.members.delete(member.memberId);
    if (member.groupInstanceId !== null && group.staticMembers.get(member.groupInstanceId) === member.memberId) group.staticMembers.delete(member.groupInstanceId);
    group.pendingSyncMembers.delete(member.memberId);
    if (group.leaderId === member.memberId) group.leaderId = group.members.keys().next().value ?? null;
    this.options.logger.info({ group: group.groupId, memberId: member.memberId, reason }, "member removed");
  }

  private afterMemberRemoved(group: Group, reason: string): void {
    if (group.is("Stable") || group.is("CompletingRebalance")) this.prepareRebalance(group, reason);
    else if (group.is("PreparingRebalance")) this.tryCompleteJoin(group);
  }

  // ---------------------------------------------------------------- SyncGroup

  syncGroup(request: SyncGroupRequest, _context: GroupCallContext): Promise<SyncGroupResponse> {
    try {
      const loadId = this.checkCoordinator(request.groupId);
      const group = this.groups.get(request.groupId);
      if (!group) throw fail("UNKNOWN_MEMBER_ID", `group "${request.groupId}" has no member ${request.memberId}`);
      if (group.is("Dead")) throw fail("COORDINATOR_NOT_AVAILABLE", `group "${group.groupId}" is being removed`);
      this.checkStaticFence(group, request.memberId, request.groupInstanceId);
      const member = group.members.get(request.memberId);
      if (!member) throw fail("UNKNOWN_MEMBER_ID", `group "${group.groupId}" has no member ${request.memberId}`);
      if (request.generationId !== group.generationId) throw fail("ILLEGAL_GENERATION", `generation ${request.generationId} is not the group's ${group.generationId}`);
      if ((request.protocolType !== "" && request.protocolType !== group.protocolType) || (request.protocolName !== "" && request.protocolName !== (group.protocolName ?? ""))) {
        throw fail("INCONSISTENT_GROUP_PROTOCOL", `SyncGroup names ${request.protocolType}/${request.protocolName}, the group uses ${group.protocolType}/${group.protocolName ?? ""}`);
      }
      switch (group.state) {
        case "Empty":
          throw fail("UNKNOWN_MEMBER_ID", `group "${group.groupId}" has no members`);
        case "PreparingRebalance":
          throw fail("REBALANCE_IN_PROGRESS", `group "${group.groupId}" is rebalancing`);
        case "Stable":
          group.pendingSyncMembers.delete(member.memberId);
          this.heartbeatReceived(group, member);
          return Promise.resolve({ errorCode: 0, errorMessage: "", protocolType: group.protocolType, protocolName: group.protocolName ?? "", assignment: member.assignment });
        case "CompletingRebalance":
          break;
        case "Dead":
          throw fail("COORDINATOR_NOT_AVAILABLE", `group "${group.groupId}" is being removed`);
      }
      return new Promise<SyncGroupResponse>((resolve) => {
        member.awaitingSync?.(syncError(fail("REBALANCE_IN_PROGRESS", "superseded by a newer SyncGroup of the same member")));
        member.awaitingSync = resolve;
        group.pendingSyncMembers.delete(member.memberId);
        this.heartbeatReceived(group, member);
        if (group.leaderId !== member.memberId) return;
        const assignments = new Map<string, Buffer>();
        for (const a of request.assignments) assignments.set(a.memberId, Buffer.from(a.assignment));
        const generation = group.generationId;
        // Store first, then answer: a coordinator that fails over knows every assignment it handed out.
        this.storeGroup(group, assignments).then(
          () => {
            if (!this.stillOwned(group.groupId, loadId) || group.generationId !== generation || !group.is("CompletingRebalance")) return;
            for (const m of group.members.values()) {
              m.assignment = assignments.get(m.memberId) ?? EMPTY;
              const respond = m.awaitingSync;
              m.awaitingSync = undefined;
              respond?.({ errorCode: 0, errorMessage: "", protocolType: group.protocolType, protocolName: group.protocolName ?? "", assignment: m.assignment });
            }
            group.transition("Stable", this.now());
            this.options.logger.info({ group: group.groupId, generationId: generation }, "group is stable");
          },
          (err: unknown) => {
            if (!this.stillOwned(group.groupId, loadId) || group.generationId !== generation || !group.is("CompletingRebalance")) return;
            const mapped = coordinatorAppendError(err);
            for (const m of group.members.values()) {
              m.awaitingSync?.(syncError(mapped));
              m.awaitingSync = undefined;
            }
            this.prepareRebalance(group, `storing the assignment failed: ${mapped.message}`);
          },
        );
      });
    } catch (err) {
      return Promise.resolve(syncError(err));
    }
  }

  // ---------------------------------------------------------------- Heartbeat, LeaveGroup

  heartbeat(request: HeartbeatRequest): Promise<HeartbeatResponse> {
    try {
      this.checkCoordinator(request.groupId);
      const group = this.groups.get(request.groupId);
      if (!group) throw fail("UNKNOWN_MEMBER_ID", `group "${request.groupId}" has no member ${request.memberId}`);
      if (group.is("Dead")) throw fail("COORDINATOR_NOT_AVAILABLE", `group "${group.groupId}" is being removed`);
      this.checkStaticFence(group, request.memberId, request.groupInstanceId);
      const member = group.members.get(request.memberId);
      if (!member) throw fail("UNKNOWN_MEMBER_ID", `group "${group.groupId}" has no member ${request.memberId}`);
      if (request.generationId !== group.generationId) throw fail("ILLEGAL_GENERATION", `generation ${request.generationId} is not the group's ${group.generationId}`);
      switch (group.state) {
        case "Empty":
          throw fail("UNKNOWN_MEMBER_ID", `group "${group.groupId}" has no members`);
        case "PreparingRebalance":
          this.heartbeatReceived(group, member);
          throw fail("REBALANCE_IN_PROGRESS", `group "${group.groupId}" is rebalancing: rejoin`);
        case "CompletingRebalance":
        case "Stable":
          this.heartbeatReceived(group, member);
          return Promise.resolve({ errorCode: 0, errorMessage: "" });
        case "Dead":
          throw fail("COORDINATOR_NOT_AVAILABLE", `group "${group.groupId}" is being removed`);
      }
    } catch (err) {
      return Promise.resolve(errorFields(err));
    }
  }

  leaveGroup(request: LeaveGroupRequest): Promise<LeaveGroupResponse> {
    try {
      this.checkCoordinator(request.groupId);
      const group = this.groups.get(request.groupId);
      const members: LeaveGroupMemberResponse[] = [];
      let removed = 0;
      for (const identity of request.members) {
        const result = { memberId: identity.memberId, groupInstanceId: identity.groupInstanceId };
        try {
          if (!group || group.is("Dead")) throw fail("UNKNOWN_MEMBER_ID", `group "${request.groupId}" has no member ${identity.memberId}`);
          let memberId = identity.memberId;
          if (identity.groupInstanceId !== "") {
            const holder = group.staticMembers.get(identity.groupInstanceId);
            if (holder === undefined) throw fail("UNKNOWN_MEMBER_ID", `group "${group.groupId}" has no static member "${identity.groupInstanceId}"`);
            if (memberId !== "" && memberId !== holder) throw fail("FENCED_INSTANCE_ID", `group.instance.id "${identity.groupInstanceId}" belongs to member ${holder}, not ${memberId}`);
            memberId = holder;
          }
          const cancelPending = group.pendingMembers.get(memberId);
          if (cancelPending) {
            cancelPending();
            group.pendingMembers.delete(memberId);
          } else {
            const member = group.members.get(memberId);
            if (!member) throw fail("UNKNOWN_MEMBER_ID", `group "${group.groupId}" has no member ${memberId}`);
            this.removeMemberQuietly(group, member, `left the group${identity.reason ? `: ${identity.reason}` : ""}`);
          }
          removed++;
          members.push({ ...result, errorCode: 0, errorMessage: "" });
        } catch (err) {
          members.push({ ...result, ...errorFields(err) });
        }
      }
      if (group && removed > 0) this.afterMemberRemoved(group, `${removed} member(s) left`);
      return Promise.resolve({ errorCode: 0, errorMessage: "", members });
    } catch (err) {
      return Promise.resolve({ ...errorFields(err), members: [] });
    }
  }

  // ---------------------------------------------------------------- offsets

  async offsetCommit(request: OffsetCommitRequest): Promise<OffsetCommitResponse> {
    const allFailed = (err: unknown): OffsetCommitResponse => {
      const fields = errorFields(err);
      return { ...fields, topics: request.topics.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => ({ partition: p.partition, ...fields })) })) };
    };
    let loadId: number;
    let group: Group | undefined;
    try {
      loadId = this.checkCoordinator(request.groupId);
      group = this.groups.get(request.groupId);
      if (!group) {
        // A group that uses the coordinator only to store offsets (Kafka allows this).
        if (request.generationId >= 0) throw fail("ILLEGAL_GENERATION", `group "${request.groupId}" does not exist, so generation ${request.generationId} is stale`);
        group = this.getOrCreateGroup(request.groupId);
      } else if (group.is("Dead")) {
        throw fail("COORDINATOR_NOT_AVAILABLE", `group "${group.groupId}" is being removed`);
      } else if (request.generationId < 0 && group.is("Empty")) {
        // A standalone commit: allowed while nobody is a member.
      } else if (group.is("CompletingRebalance")) {
        throw fail("REBALANCE_IN_PROGRESS", `group "${group.groupId}" is awaiting its assignment`);
      } else {
        this.checkStaticFence(group, request.memberId, request.groupInstanceId);
        const member = group.members.get(request.memberId);
        if (!member) throw fail("UNKNOWN_MEMBER_ID", `group "${group.groupId}" has no member "${request.memberId}"`);
        if (request.generationId !== group.generationId) throw fail("ILLEGAL_GENERATION", `generation ${request.generationId} is not the group's ${group.generationId}`);
        this.heartbeatReceived(group, member);
      }
    } catch (err) {
      return allFailed(err);
    }

    const nowMs = this.now();
    const records: ProducerRecord[] = [];
    const accepted: CommittedOffset[] = [];
    const problems = new Map<string, FlotillaError>();
    for (const t of request.topics) {
      for (const p of t.partitions) {
        const key = offsetMapKey(t.name, p.partition);
        if (t.name === "" || p.partition < 0 || p.committedOffset < 0 || !Number.isSafeInteger(p.committedOffset)) {
          problems.set(key, fail("INVALID_REQUEST", `cannot commit offset ${p.committedOffset} for ${t.name}-${p.partition}`));
          continue;
        }
        if (Buffer.byteLength(p.committedMetadata, "utf8") > this.config.offsetMetadataMaxBytes) {
          problems.set(key, fail("OFFSET_METADATA_TOO_LARGE", `metadata of ${t.name}-${p.partition} is longer than offset.metadata.max.bytes ${this.config.offsetMetadataMaxBytes}`));
          continue;
        }
        const value: OffsetValue = { offset: p.committedOffset, leaderEpoch: p.committedLeaderEpoch, metadata: p.committedMetadata, commitTimestampMs: nowMs };
        records.push({ key: encodeOffsetKey(group.groupId, t.name, p.partition), value: encodeOffsetValue(value), timestamp: nowMs });
        accepted.push({ topic: t.name, partition: p.partition, ...value });
      }
    }
    let appendError: FlotillaError | undefined;
    if (records.length > 0) {
      try {
        await this.options.log.append(this.partitionFor(group.groupId), encodeBatch(records, { nowMs }), this.config.offsetsCommitTimeoutMs);
        if (!this.stillOwned(group.groupId, loadId)) throw fail("NOT_COORDINATOR", "lost the __consumer_offsets partition during the commit");
        for (const c of accepted) group.offsets.set(offsetMapKey(c.topic, c.partition), c);
      } catch (err) {
        appendError = coordinatorAppendError(err);
      }
    }
    return {
      errorCode: appendError ? appendError.code : 0,
      errorMessage: appendError ? appendError.message : "",
      topics: request.topics.map((t) => ({
        name: t.name,
        partitions: t.partitions.map((p) => {
          const err = problems.get(offsetMapKey(t.name, p.partition)) ?? appendError;
          return { partition: p.partition, ...(err ? errorFields(err) : { errorCode: 0, errorMessage: "" }) };
        }),
      })),
    };
  }

  offsetFetch(request: OffsetFetchRequest): Promise<OffsetFetchResponse> {
    try {
      this.checkCoordinator(request.groupId);
      const group = this.groups.get(request.groupId);
      const offsets = group && !group.is("Dead") ? group.offsets : new Map<string, CommittedOffset>();
      const none = { committedOffset: -1, committedLeaderEpoch: -1, metadata: "", errorCode: 0, errorMessage: "" };
      if (request.topics.length === 0) {
        const byTopic = new Map<string, CommittedOffset[]>();
        for (const c of offsets.values()) {
          let list = byTopic.get(c.topic);
          if (!list) byTopic.set(c.topic, (list = []));
          list.push(c);
        }
        const topics = [...byTopic.entries()]
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
          .map(([name, list]) => ({
            name,
            partitions: list
              .sort((a, b) => a.partition - b.partition)
              .map((c) => ({ partition: c.partition, committedOffset: c.offset, committedLeaderEpoch: c.leaderEpoch, metadata: c.metadata, errorCode: 0, errorMessage: "" })),
          }));
        return Promise.resolve({ errorCode: 0, errorMessage: "", topics });
      }
      return Promise.resolve({
        errorCode: 0,
        errorMessage: "",
        topics: request.topics.map((t) => ({
          name: t.name,
          partitions: t.partitions.map((partition) => {
            const c = offsets.get(offsetMapKey(t.name, partition));
            return c ? { partition, committedOffset: c.offset, committedLeaderEpoch: c.leaderEpoch, metadata: c.metadata, errorCode: 0, errorMessage: "" } : { partition, ...none };
          }),
        })),
      });
    } catch (err) {
      const fields = errorFields(err);
      return Promise.resolve({ ...fields, topics: request.topics.map((t) => ({ name: t.name, partitions: t.partitions.map((partition) => ({ partition, committedOffset: -1, committedLeaderEpoch: -1, metadata: "", ...fields })) })) });
    }
  }

  // ---------------------------------------------------------------- admin

  listGroups(request: ListGroupsRequest): Promise<ListGroupsResponse> {
    const filter = new Set(request.statesFilter);
    const groups = [...this.groups.values()]
      .filter((g) => !g.is("Dead") && this.isActive(this.partitionFor(g.groupId)) && (filter.size === 0 || filter.has(g.state)))
      .sort((a, b) => (a.groupId < b.groupId ? -1 : a.groupId > b.groupId ? 1 : 0))
      .map((g) => ({ groupId: g.groupId, protocolType: g.protocolType, groupState: g.state }));
    const loading = [...this.partitions.values()].some((s) => s.kind === "loading");
    if (loading) {
      const err = fail("COORDINATOR_LOAD_IN_PROGRESS", "some partitions of __consumer_offsets are still loading; the list may be incomplete");
      return Promise.resolve({ ...errorFields(err), groups });
    }
    return Promise.resolve({ errorCode: 0, errorMessage: "", groups });
  }

  describeGroups(request: DescribeGroupsRequest): Promise<DescribeGroupsResponse> {
    const groups = request.groupIds.map((groupId): DescribedGroup => {
      try {
        this.checkCoordinator(groupId);
        const g = this.groups.get(groupId);
        if (!g) return { errorCode: 0, errorMessage: "", groupId, groupState: "Dead", protocolType: "", protocolData: "", members: [] };
        const showProtocol = g.is("Stable") || g.is("CompletingRebalance");
        return {
          errorCode: 0,
          errorMessage: "",
          groupId,
          groupState: g.state,
          protocolType: g.protocolType,
          protocolData: showProtocol ? (g.protocolName ?? "") : "",
          members: [...g.members.values()].map((m) => ({
            memberId: m.memberId,
            groupInstanceId: m.groupInstanceId ?? "",
            clientId: m.clientId,
            clientHost: m.clientHost,
            memberMetadata: showProtocol ? g.metadataOf(m) : EMPTY,
            memberAssignment: g.is("Stable") ? m.assignment : EMPTY,
          })),
        };
      } catch (err) {
        return { ...errorFields(err), groupId, groupState: "", protocolType: "", protocolData: "", members: [] };
      }
    });
    return Promise.resolve({ groups });
  }

  async deleteGroups(request: DeleteGroupsRequest): Promise<DeleteGroupsResponse> {
    const results = await Promise.all(
      request.groupIds.map(async (groupId) => {
        try {
          const loadId = this.checkCoordinator(groupId);
          const group = this.groups.get(groupId);
          if (!group || group.is("Dead")) throw fail("GROUP_ID_NOT_FOUND", `group "${groupId}" does not exist`);
          if (!group.is("Empty")) throw fail("NON_EMPTY_GROUP", `group "${groupId}" has members (state ${group.state})`);
          group.transition("Dead", this.now());
          try {
            await this.writeTombstones(group, [...group.offsets.values()], true);
          } catch (err) {
            // Nothing durable changed for certain: bring the group back so it can be deleted again.
            if (this.stillOwned(groupId, loadId) && group.is("Dead")) group.state = "Empty";
            throw coordinatorAppendError(err);
          }
          if (this.stillOwned(groupId, loadId) && this.groups.get(groupId) === group) this.groups.delete(groupId);
          this.options.logger.info({ group: groupId }, "group deleted");
          return { groupId, errorCode: 0, errorMessage: "" };
        } catch (err) {
          return { groupId, ...errorFields(err) };
        }
      }),
    );
    return { results };
  }

  /**
   * Removes expired offsets (offsets.retention.minutes), as Kafka does since 2.1 (KIP-211):
   * a consumer group's offsets expire together once it has been Empty for the retention
   * time; a group that only stores offsets (no protocol type) loses each offset the
   * retention time after it was committed. A group left with neither members nor offsets
   * is removed. Tombstones are written before memory changes. Returns how many offsets expired.
   */
  async expireOffsets(): Promise<number> {
    const nowMs = this.now();
    const retentionMs = this.config.offsetsRetentionMs;
    let expired = 0;
    for (const group of [...this.groups.values()]) {
      const partition = this.partitionFor(group.groupId);
      const status = this.partitions.get(partition);
      if (status?.kind !== "active" || !group.is("Empty")) continue;
      const gone =
        group.protocolType !== ""
          ? nowMs - group.stateSinceMs >= retentionMs
            ? [...group.offsets.values()]
            : []
          : [...group.offsets.values()].filter((c) => nowMs - c.commitTimestampMs >= retentionMs);
      const removeGroup = gone.length === group.offsets.size && (group.protocolType === "" || nowMs - group.stateSinceMs >= retentionMs);
      if (gone.length === 0 && !removeGroup) continue;
      try {
        await this.writeTombstones(group, gone, removeGroup);
      } catch (err) {
        this.options.logger.warn({ err, group: group.groupId }, "expiring offsets failed; will retry at the next check");
        continue;
      }
      if (this.partitions.get(partition)?.loadId !== status.loadId) continue;
      for (const c of gone) group.offsets.delete(offsetMapKey(c.topic, c.partition));
      expired += gone.length;
      if (removeGroup && group.is("Empty") && group.offsets.size === 0) {
        group.transition("Dead", nowMs);
        this.groups.delete(group.groupId);
      }
      this.options.logger.info({ group: group.groupId, expiredOffsets: gone.length, groupRemoved: removeGroup }, "expired offsets");
    }
    return expired;
  }

  /**
   * Deletes the committed offsets of deleted topics from every group loaded here (Kafka's
   * handleDeletedPartitions), tombstones first. A recreated topic of the same name starts
   * without offsets. Returns how many offsets were removed.
   */
  async deleteOffsetsOfTopics(topics: ReadonlySet<string>): Promise<number> {
    let removed = 0;
    for (const group of [...this.groups.values()]) {
      const status = this.partitions.get(this.partitionFor(group.groupId));
      if (status?.kind !== "active") continue;
      const gone = [...group.offsets.values()].filter((c) => topics.has(c.topic));
      if (gone.length === 0) continue;
      try {
        await this.writeTombstones(group, gone, false);
      } catch (err) {
        this.options.logger.warn({ err, group: group.groupId }, "removing offsets of deleted topics failed");
        continue;
      }
      if (this.partitions.get(this.partitionFor(group.groupId))?.loadId !== status.loadId) continue;
      for (const c of gone) group.offsets.delete(offsetMapKey(c.topic, c.partition));
      removed += gone.length;
    }
    return removed;
  }

  private async writeTombstones(group: Group, offsets: readonly CommittedOffset[], groupToo: boolean): Promise<void> {
    const nowMs = this.now();
    const records: ProducerRecord[] = offsets.map((c) => ({ key: encodeOffsetKey(group.groupId, c.topic, c.partition), value: null, timestamp: nowMs }));
    if (groupToo) records.push({ key: encodeGroupKey(group.groupId), value: null, timestamp: nowMs });
    if (records.length === 0) return;
    await this.options.log.append(this.partitionFor(group.groupId), encodeBatch(records, { nowMs }), this.config.offsetsCommitTimeoutMs);
  }

  /** Writes the group's metadata record; `assignments` replaces the members' own (the leader's SyncGroup). */
  private async storeGroup(group: Group, assignments?: ReadonlyMap<string, Buffer>): Promise<void> {
    const value: GroupValue = {
      protocolType: group.protocolType,
      generation: group.generationId,
      protocol: group.protocolName,
      leader: group.leaderId,
      currentStateTimestampMs: group.stateSinceMs,
      members: [...group.members.values()].map((m) => ({
        memberId: m.memberId,
        groupInstanceId: m.groupInstanceId,
        clientId: m.clientId,
        clientHost: m.clientHost,
        rebalanceTimeoutMs: m.rebalanceTimeoutMs,
        sessionTimeoutMs: m.sessionTimeoutMs,
        subscription: group.metadataOf(m),
        assignment: assignments ? (assignments.get(m.memberId) ?? EMPTY) : m.assignment,
      })),
    };
    const nowMs = this.now();
    const batch = encodeBatch([{ key: encodeGroupKey(group.groupId), value: encodeGroupValue(value), timestamp: nowMs }], { nowMs });
    await this.options.log.append(this.partitionFor(group.groupId), batch, this.config.offsetsCommitTimeoutMs);
  }

  // ---------------------------------------------------------------- load / unload

  /**
   * Becomes coordinator of a partition: replays its records from the log start to the log
   * end as it is now, then serves its groups. Resolves when loaded (or superseded by an
   * unload). A partition already held is reloaded (e.g. a new leader epoch).
   */
  async loadPartition(partition: number): Promise<void> {
    if (this.closed) return;
    if (this.partitions.has(partition)) this.unloadPartition(partition);
    const loadId = ++this.loadSeq;
    this.partitions.set(partition, { kind: "loading", loadId });
    const startedMs = this.options.clock.monotonicMs();
    let loaded: LoadedState;
    try {
      loaded = await this.readPartition(partition, () => this.partitions.get(partition)?.loadId === loadId);
    } catch (err) {
      this.options.logger.error({ err, partition }, "loading a partition of __consumer_offsets failed; its groups stay unavailable here");
      if (this.partitions.get(partition)?.loadId === loadId) this.partitions.delete(partition);
      return;
    }
    if (this.partitions.get(partition)?.loadId !== loadId) return;
    for (const group of this.buildGroups(loaded)) this.groups.set(group.groupId, group);
    this.partitions.set(partition, { kind: "active", loadId });
    this.options.logger.info(
      { partition, groups: loaded.groups.size, offsets: loaded.offsetCount, records: loaded.recordCount, durationMs: Math.round(this.options.clock.monotonicMs() - startedMs) },
      "loaded a partition of __consumer_offsets",
    );
  }

  private async readPartition(partition: number, current: () => boolean): Promise<LoadedState> {
    const state: LoadedState = { groups: new Map(), offsets: new Map(), recordCount: 0, offsetCount: 0 };
    const { logStartOffset, logEndOffset } = this.options.log.range(partition);
    let offset = logStartOffset;
    for (let reads = 0; offset < logEndOffset && reads < LOAD_READS_MAX; reads++) {
      if (!current()) return state;
      const bytes = await this.options.log.read(partition, offset, this.config.offsetsLoadBufferBytes);
      if (bytes.length === 0) break;
      for (const batch of decodeBatches(bytes, { allowPartialTail: true })) {
        const last = batch.header.baseOffset + batch.header.lastOffsetDelta;
        if (last < offset || batch.isControl) {
          offset = Math.max(offset, last + 1);
          continue;
        }
        for (const r of batch.records) {
          if (r.offset < offset || r.key === null) continue;
          state.recordCount++;
          applyRecord(state, r.key, r.value);
        }
        offset = last + 1;
      }
    }
    let count = 0;
    for (const m of state.offsets.values()) count += m.size;
    state.offsetCount = count;
    return state;
  }

  private buildGroups(loaded: LoadedState): Group[] {
    const nowMs = this.now();
    const ids = new Set([...loaded.groups.keys(), ...loaded.offsets.keys()]);
    const out: Group[] = [];
    for (const groupId of ids) {
      const value = loaded.groups.get(groupId);
      const offsets = loaded.offsets.get(groupId);
      if (!value && (!offsets || offsets.size === 0)) continue;
      const group = new Group(groupId, value && value.currentStateTimestampMs >= 0 ? value.currentStateTimestampMs : nowMs);
      if (value) {
        group.protocolType = value.protocolType;
        group.generationId = value.generation;
        group.protocolName = value.protocol;
        group.leaderId = value.leader;
        for (const m of value.members) {
          const member: Member = {
            memberId: m.memberId,
            groupInstanceId: m.groupInstanceId,
            clientId: m.clientId,
            clientHost: m.clientHost,
            sessionTimeoutMs: m.sessionTimeoutMs,
            rebalanceTimeoutMs: m.rebalanceTimeoutMs,
            protocolType: value.protocolType,
            protocols: [{ name: value.protocol ?? "", metadata: m.subscription }],
            assignment: m.assignment,
            awaitingJoin: undefined,
            awaitingSync: undefined,
            isNew: false,
            cancelSession: undefined,
          };
          group.members.set(m.memberId, member);
          if (m.groupInstanceId !== null) group.staticMembers.set(m.groupInstanceId, m.memberId);
        }
        // A stored generation with members was Stable (it is written when SyncGroup completes).
        if (group.members.size > 0) group.state = "Stable";
      }
      if (offsets) for (const [k, c] of offsets) group.offsets.set(k, c);
      for (const m of group.members.values()) this.heartbeatReceived(group, m);
      out.push(group);
    }
    return out;
  }

  /** Stops coordinating a partition: its groups are dropped and parked calls answered NOT_COORDINATOR. */
  unloadPartition(partition: number): void {
    if (!this.partitions.delete(partition)) return;
    let count = 0;
    for (const group of [...this.groups.values()]) {
      if (this.partitionFor(group.groupId) !== partition) continue;
      this.dropGroup(group, fail("NOT_COORDINATOR", `this broker no longer coordinates group "${group.groupId}"`));
      count++;
    }
    this.options.logger.info({ partition, groups: count }, "unloaded a partition of __consumer_offsets");
  }

  private dropGroup(group: Group, err: FlotillaError): void {
    group.cancelJoinTimer?.();
    group.cancelSyncTimer?.();
    for (const cancel of group.pendingMembers.values()) cancel();
    for (const m of group.members.values()) {
      m.cancelSession?.();
      m.awaitingJoin?.(joinError(err, m.memberId));
      m.awaitingSync?.(syncError(err));
      m.awaitingJoin = undefined;
      m.awaitingSync = undefined;
    }
    this.groups.delete(group.groupId);
  }

  /** Unloads everything; later calls answer NOT_COORDINATOR. */
  close(): void {
    this.closed = true;
    for (const p of [...this.partitions.keys()]) this.unloadPartition(p);
  }

  /** A snapshot of a group for tests and tools (undefined when unknown here). */
  inspect(groupId: string): GroupSnapshot | undefined {
    const g = this.groups.get(groupId);
    if (!g) return undefined;
    return {
      state: g.state,
      generationId: g.generationId,
      protocolType: g.protocolType,
      protocolName: g.protocolName,
      leaderId: g.leaderId,
      members: [...g.members.values()]
        .map((m) => ({ memberId: m.memberId, groupInstanceId: m.groupInstanceId, clientId: m.clientId, clientHost: m.clientHost, sessionTimeoutMs: m.sessionTimeoutMs, rebalanceTimeoutMs: m.rebalanceTimeoutMs, assignment: m.assignment.toString("hex") }))
        .sort((a, b) => (a.memberId < b.memberId ? -1 : 1)),
      offsets: [...g.offsets.values()].sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1)),
    };
  }
}

export interface GroupSnapshot {
  readonly state: string;
  readonly generationId: number;
  readonly protocolType: string;
  readonly protocolName: string | null;
  readonly leaderId: string | null;
  readonly members: readonly { memberId: string; groupInstanceId: string | null; clientId: string; clientHost: string; sessionTimeoutMs: number; rebalanceTimeoutMs: number; assignment: string }[];
  readonly offsets: readonly CommittedOffset[];
}

interface LoadedState {
  /** The last group metadata per group (a tombstone removes the entry). */
  readonly groups: Map<string, GroupValue>;
  readonly offsets: Map<string, Map<string, CommittedOffset>>;
  recordCount: number;
  offsetCount: number;
}

/** Replays one record: the last value of a key wins, a null value deletes it. */
function applyRecord(state: LoadedState, keyBytes: Buffer, valueBytes: Buffer | null): void {
  const key = decodeKey(keyBytes);
  if (key.kind === "group") {
    if (valueBytes === null) state.groups.delete(key.group);
    else state.groups.set(key.group, decodeGroupValue(valueBytes));
    return;
  }
  const mapKey = offsetMapKey(key.topic, key.partition);
  if (valueBytes === null) {
    state.offsets.get(key.group)?.delete(mapKey);
    return;
  }
  const v = decodeOffsetValue(valueBytes);
  let m = state.offsets.get(key.group);
  if (!m) state.offsets.set(key.group, (m = new Map()));
  m.set(mapKey, { topic: key.topic, partition: key.partition, offset: v.offset, leaderEpoch: v.leaderEpoch, metadata: v.metadata, commitTimestampMs: v.commitTimestampMs });
}

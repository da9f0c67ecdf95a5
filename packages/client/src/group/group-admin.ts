import { FlotillaError } from "@flotilla/common";
import { errorFromFields } from "@flotilla/protocol";
import type { TopicPartition } from "../accumulator.js";
import type { Cluster } from "../cluster.js";
import { checkInt, makeCluster, resolveCommon, type CommonClientOptions, type ResolvedCommon } from "../config.js";
import { compareTopicPartitions } from "./assignors.js";
import { decodeAssignment, decodeSubscription, flattenTopicPartitions } from "./consumer-protocol.js";
import { CoordinatorPool, hostPort } from "./coordinator-connection.js";
import { CoordinatorLocator } from "./coordinator.js";

export interface GroupAdminOptions extends CommonClientOptions {
  /** Kafka's default.api.timeout.ms: bound of each call, retries included. Default 60000. */
  defaultApiTimeoutMs?: number;
}

export interface ListedGroupInfo {
  groupId: string;
  /** "consumer", or "" for a group that only has standalone offset commits. */
  protocolType: string;
  state: string;
  /** Node id of the broker that coordinates it. */
  coordinatorId: number;
}

export interface GroupMemberDescription {
  memberId: string;
  groupInstanceId: string;
  clientId: string;
  clientHost: string;
  /** Topics of the member's subscription (empty when it cannot be decoded). */
  subscribedTopics: string[];
  /** The member's partitions from the last SyncGroup, sorted. */
  assignment: TopicPartition[];
}

export interface GroupDescription {
  groupId: string;
  /** "Empty", "PreparingRebalance", "CompletingRebalance", "Stable" or "Dead". */
  state: string;
  protocolType: string;
  /** The assignor the group chose ("" unless Stable or CompletingRebalance). */
  protocol: string;
  coordinatorId: number;
  members: GroupMemberDescription[];
}

export interface GroupOffset extends TopicPartition {
  /** The committed offset: the next record the group will read. */
  offset: number;
  metadata: string;
}

/**
 * Group administration (Kafka's Admin group calls): list, describe and delete groups, read
 * committed offsets and change them while the group is empty. Each call goes to the group's
 * coordinator (found with FindCoordinator); ListGroups asks every broker and merges.
 */
export class GroupAdmin {
  private readonly common: ResolvedCommon;
  private readonly cluster: Cluster;
  private readonly pool: CoordinatorPool;
  private readonly locators = new Map<string, CoordinatorLocator>();
  private readonly defaultApiTimeoutMs: number;

  constructor(options: GroupAdminOptions) {
    this.common = resolveCommon(options, "group-admin");
    this.defaultApiTimeoutMs = checkInt("defaultApiTimeoutMs", options.defaultApiTimeoutMs ?? 60_000, 1);
    this.cluster = makeCluster(this.common);
    this.pool = new CoordinatorPool(this.common.clientId);
  }

  /** Every group of the cluster, sorted by id: ListGroups to every broker, merged. */
  async listGroups(options: { states?: string[] } = {}): Promise<ListedGroupInfo[]> {
    const deadlineMs = this.deadline();
    await this.cluster.refresh(deadlineMs);
    const brokers = this.cluster.brokerList().filter((b) => !b.fenced);
    if (brokers.length === 0) throw new FlotillaError("BROKER_NOT_AVAILABLE", "the cluster metadata lists no broker to ask for groups");
    const all = await Promise.all(
      brokers.map(async (b) => {
        const res = await this.pool.get(hostPort(b.host, b.port)).listGroups({ statesFilter: options.states ?? [] }, { timeoutMs: this.common.requestTimeoutMs });
        const err = errorFromFields(res.errorCode, res.errorMessage);
        if (err) throw new FlotillaError(err.errorName, `ListGroups on broker ${b.nodeId}: ${res.errorMessage || err.message}`);
        return res.groups.map((g) => ({ groupId: g.groupId, protocolType: g.protocolType, state: g.groupState, coordinatorId: b.nodeId }));
      }),
    );
    return all.flat().sort((a, b) => (a.groupId < b.groupId ? -1 : a.groupId > b.groupId ? 1 : 0));
  }

  async describeGroup(groupId: string): Promise<GroupDescription> {
    const locator = this.locator(groupId);
    const res = await locator.call("DescribeGroups", async (conn) => {
      const r = await conn.describeGroups({ groupIds: [groupId] }, { timeoutMs: this.common.requestTimeoutMs });
      const g = r.groups.find((x) => x.groupId === groupId) ?? r.groups[0];
      if (!g) throw new FlotillaError("UNKNOWN_SERVER_ERROR", `DescribeGroups answered nothing for group "${groupId}"`);
      return g;
    }, this.deadline());
    const err = errorFromFields(res.errorCode, res.errorMessage);
    if (err) throw new FlotillaError(err.errorName, `DescribeGroups of "${groupId}": ${res.errorMessage || err.message}`);
    return {
      groupId,
      state: res.groupState,
      protocolType: res.protocolType,
      protocol: res.protocolData,
      coordinatorId: locator.nodeId,
      members: res.members.map((m) => {
        let subscribedTopics: string[] = [];
        let assignment: TopicPartition[] = [];
        // A group of another protocol type carries bytes we cannot read; show the member anyway.
        if (res.protocolType === "consumer") {
          try {
            if (m.memberMetadata.length > 0) subscribedTopics = decodeSubscription(m.memberMetadata).topics;
            assignment = flattenTopicPartitions(decodeAssignment(m.memberAssignment).assignedPartitions).sort(compareTopicPartitions);
          } catch (e) {
            this.common.logger.warn({ groupId, memberId: m.memberId, err: (e as Error).message }, "cannot decode a member's subscription or assignment");
          }
        }
        return { memberId: m.memberId, groupInstanceId: m.groupInstanceId, clientId: m.clientId, clientHost: m.clientHost, subscribedTopics, assignment };
      }),
    };
  }

  /** Committed offsets of the group: every partition it has one for, or those of `topics`. */
  async fetchOffsets(groupId: string, topics?: { topic: string; partitions: number[] }[]): Promise<GroupOffset[]> {
    const res = await this.locator(groupId).call(
      "OffsetFetch",
      (conn) => conn.offsetFetch({ groupId, topics: (topics ?? []).map((t) => ({ name: t.topic, partitions: t.partitions })) }, { timeoutMs: this.common.requestTimeoutMs }),
      this.deadline(),
    );
    const err = errorFromFields(res.errorCode, res.errorMessage);
    if (err) throw new FlotillaError(err.errorName, `OffsetFetch of "${groupId}": ${res.errorMessage || err.message}`);
    const out: GroupOffset[] = [];
    for (const t of res.topics) {
      for (const p of t.partitions) {
        const perr = errorFromFields(p.errorCode, p.errorMessage);
        if (perr) throw new FlotillaError(perr.errorName, `OffsetFetch of ${t.name}-${p.partition} in "${groupId}": ${p.errorMessage || perr.message}`);
        out.push({ topic: t.name, partition: p.partition, offset: p.committedOffset, metadata: p.metadata });
      }
    }
    return out.sort(compareTopicPartitions);
  }

  /**
   * Sets committed offsets of a group without members (a standalone commit: generation -1,
   * no member id), as kafka-consumer-groups.sh --reset-offsets does. A group with members
   * answers UNKNOWN_MEMBER_ID; this throws NON_EMPTY_GROUP saying so.
   */
  async commitOffsets(groupId: string, offsets: readonly { topic: string; partition: number; offset: number }[]): Promise<void> {
    if (offsets.length === 0) return;
    for (const o of offsets) checkInt(`offset of ${o.topic}-${o.partition}`, o.offset, 0);
    const byTopic = new Map<string, { partition: number; offset: number }[]>();
    for (const o of offsets) byTopic.set(o.topic, [...(byTopic.get(o.topic) ?? []), o]);
    const res = await this.locator(groupId).call(
      "OffsetCommit",
      (conn) =>
        conn.offsetCommit(
          {
            groupId,
            generationId: -1,
            memberId: "",
            groupInstanceId: "",
            topics: [...byTopic].map(([name, ps]) => ({ name, partitions: ps.map((p) => ({ partition: p.partition, committedOffset: p.offset, committedLeaderEpoch: -1, committedMetadata: "" })) })),
          },
          { timeoutMs: this.common.requestTimeoutMs },
        ),
      this.deadline(),
    );
    const err = errorFromFields(res.errorCode, res.errorMessage) ?? res.topics.flatMap((t) => t.partitions.map((p) => errorFromFields(p.errorCode, p.errorMessage))).find((e) => e !== undefined);
    if (err?.errorName === "UNKNOWN_MEMBER_ID") throw new FlotillaError("NON_EMPTY_GROUP", `group "${groupId}" has active members; stop them before changing its offsets`);
    if (err) throw new FlotillaError(err.errorName, `OffsetCommit of "${groupId}": ${err.message}`);
  }

  /** Deletes empty groups with their offsets. Throws the first group's error (NON_EMPTY_GROUP, GROUP_ID_NOT_FOUND, ...). */
  async deleteGroups(groupIds: readonly string[]): Promise<void> {
    for (const groupId of groupIds) {
      const res = await this.locator(groupId).call(
        "DeleteGroups",
        async (conn) => {
          const r = await conn.deleteGroups({ groupIds: [groupId] }, { timeoutMs: this.common.requestTimeoutMs });
          return r.results.find((x) => x.groupId === groupId) ?? { groupId, errorCode: 0, errorMessage: "" };
        },
        this.deadline(),
      );
      const err = errorFromFields(res.errorCode, res.errorMessage);
      if (err) throw new FlotillaError(err.errorName, `DeleteGroups of "${groupId}": ${res.errorMessage || err.message}`);
    }
  }

  async close(): Promise<void> {
    this.pool.closeAll();
    this.cluster.close();
  }

  private deadline(): number {
    return this.common.clock.monotonicMs() + this.defaultApiTimeoutMs;
  }

  private locator(groupId: string): CoordinatorLocator {
    let l = this.locators.get(groupId);
    if (!l) {
      l = new CoordinatorLocator(groupId, this.common, this.cluster, this.pool);
      this.locators.set(groupId, l);
    }
    return l;
  }
}

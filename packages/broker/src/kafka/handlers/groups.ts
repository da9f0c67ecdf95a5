/**
 * The Kafka consumer-group APIs (FindCoordinator, JoinGroup, SyncGroup, Heartbeat,
 * LeaveGroup, OffsetCommit, OffsetFetch, DescribeGroups, ListGroups) answered through the
 * same GroupCoordinatorApi the gRPC edge calls (../../group/grpc.ts), so Kafka clients and
 * Flotilla's GroupConsumer share one coordinator, one `__consumer_offsets` and can even be
 * members of the same group. Each handler only translates shapes and codes:
 *
 * - Member metadata (subscriptions) and assignments are opaque bytes, passed through
 *   unchanged in both directions; Flotilla's GroupConsumer writes Kafka's consumer
 *   protocol layouts, so a leader of either kind can assign to members of both.
 * - Kafka's nullable group_instance_id / metadata are Flotilla's "" (proto3 strings).
 * - Codes in responses are Flotilla's table, mapped with kafkaCodeOf.
 * - Without a coordinator in this broker (`backends.groups` absent) every group API
 *   answers COORDINATOR_NOT_AVAILABLE, which clients retry.
 *
 * Version differences handled here rather than in the coordinator:
 * - JoinGroup below v4 predates KIP-394: a new member (member_id "") must be admitted in
 *   one round trip, so the MEMBER_ID_REQUIRED answer is consumed here and the join is
 *   repeated at once with the id it handed out (what Kafka's coordinator does internally
 *   for those versions).
 * - FindCoordinator key_type 1 (transactions) answers INVALID_REQUEST: Flotilla has no
 *   transaction coordinator, and a retriable code would only make a client spin.
 * - OffsetFetch topics = null (v2+) asks for every committed partition, which the
 *   coordinator spells as an empty topic list; an empty (non-null) list asks for nothing.
 */
import { ErrorCodes, FlotillaError } from "@flotilla/common";
import { COORDINATOR_KEY_TYPE_GROUP, type GroupCallContext, type GroupCoordinatorApi } from "@flotilla/protocol";
import {
  KAFKA_AUTHORIZED_OPERATIONS_OMITTED,
  describeGroupsApi,
  findCoordinatorApi,
  heartbeatApi,
  joinGroupApi,
  kafkaCodeOf,
  leaveGroupApi,
  listGroupsApi,
  offsetCommitApi,
  offsetFetchApi,
  syncGroupApi,
  type KafkaApiSpec,
  type KafkaDescribeGroupsRequest,
  type KafkaDescribeGroupsResponse,
  type KafkaFindCoordinatorRequest,
  type KafkaFindCoordinatorResponse,
  type KafkaHeartbeatRequest,
  type KafkaHeartbeatResponse,
  type KafkaJoinGroupRequest,
  type KafkaJoinGroupResponse,
  type KafkaLeaveGroupRequest,
  type KafkaLeaveGroupResponse,
  type KafkaListGroupsRequest,
  type KafkaListGroupsResponse,
  type KafkaOffsetCommitRequest,
  type KafkaOffsetCommitResponse,
  type KafkaOffsetFetchRequest,
  type KafkaOffsetFetchResponse,
  type KafkaSyncGroupRequest,
  type KafkaSyncGroupResponse,
} from "@flotilla/protocol/kafka";
import type { KafkaBackends, KafkaHandler, KafkaHandlerFactory, KafkaRequestContext } from "../handler.js";

/** First JoinGroup version whose clients handle MEMBER_ID_REQUIRED (KIP-394). */
const JOIN_GROUP_MEMBER_ID_REQUIRED_VERSION = 4;

/**
 * ACL operations a group supports (Kafka's AclOperation codes READ 3, DELETE 6,
 * DESCRIBE 8), as the bit set DescribeGroups v3+ reports when asked. Flotilla has no
 * authorizer, so every caller may do all of them.
 */
const GROUP_AUTHORIZED_OPERATIONS = (1 << 3) | (1 << 6) | (1 << 8);

const COORDINATOR_NOT_AVAILABLE = ErrorCodes.COORDINATOR_NOT_AVAILABLE.code;

/**
 * The Kafka code for a code from the coordinator. A coordinator shutting down is, to a
 * group client, a coordinator that is not available: it looks for the new one.
 */
function groupCode(code: number): number {
  return code === ErrorCodes.SHUTTING_DOWN.code ? COORDINATOR_NOT_AVAILABLE : kafkaCodeOf(code);
}

const orNull = (s: string): string | null => (s === "" ? null : s);
const orEmpty = (s: string | null): string => s ?? "";

function callContext(ctx: KafkaRequestContext): GroupCallContext {
  return { clientHost: ctx.clientHost, signal: ctx.signal };
}

/**
 * A handler that answers COORDINATOR_NOT_AVAILABLE when the broker has no coordinator and
 * otherwise calls `handle` with it.
 */
function groupHandler<Req, Res>(
  backends: KafkaBackends,
  spec: KafkaApiSpec<Req, Res>,
  handle: (groups: GroupCoordinatorApi, req: Req, ctx: KafkaRequestContext) => Promise<Res>,
): KafkaHandler {
  const h: KafkaHandler<Req, Res> = {
    spec,
    handle(req, ctx) {
      const groups = backends.groups;
      if (!groups) return Promise.resolve(spec.errorResponse(req, ctx.apiVersion, COORDINATOR_NOT_AVAILABLE, "this broker runs no group coordinator"));
      return handle(groups, req, ctx);
    },
  };
  return h as KafkaHandler;
}

async function findCoordinator(groups: GroupCoordinatorApi, req: KafkaFindCoordinatorRequest, ctx: KafkaRequestContext): Promise<KafkaFindCoordinatorResponse> {
  if (req.keyType !== COORDINATOR_KEY_TYPE_GROUP) {
    const err = new FlotillaError("INVALID_REQUEST", `key type ${req.keyType} is not served: Flotilla has no transaction coordinator (only key type 0 = group)`);
    return findCoordinatorApi.errorResponse(req, ctx.apiVersion, kafkaCodeOf(err.code), err.message);
  }
  const res = await groups.findCoordinator({ key: req.key, keyType: req.keyType });
  return { throttleTimeMs: 0, errorCode: groupCode(res.errorCode), errorMessage: orNull(res.errorMessage), nodeId: res.nodeId, host: res.host, port: res.port };
}

async function joinGroup(groups: GroupCoordinatorApi, req: KafkaJoinGroupRequest, ctx: KafkaRequestContext): Promise<KafkaJoinGroupResponse> {
  const request = {
    groupId: req.groupId,
    sessionTimeoutMs: req.sessionTimeoutMs,
    rebalanceTimeoutMs: req.rebalanceTimeoutMs,
    memberId: req.memberId,
    groupInstanceId: orEmpty(req.groupInstanceId),
    protocolType: req.protocolType,
    protocols: req.protocols.map((p) => ({ name: p.name, metadata: p.metadata })),
    clientId: orEmpty(ctx.clientId),
    reason: "",
  };
  let res = await groups.joinGroup(request, callContext(ctx));
  if (ctx.apiVersion < JOIN_GROUP_MEMBER_ID_REQUIRED_VERSION && req.memberId === "" && res.errorCode === ErrorCodes.MEMBER_ID_REQUIRED.code && res.memberId !== "") {
    // Pre-KIP-394 client: join again under the id the coordinator just handed out.
    res = await groups.joinGroup({ ...request, memberId: res.memberId }, callContext(ctx));
  }
  return {
    throttleTimeMs: 0,
    errorCode: groupCode(res.errorCode),
    generationId: res.generationId,
    protocolName: res.protocolName,
    leader: res.leader,
    memberId: res.memberId,
    members: res.members.map((m) => ({ memberId: m.memberId, groupInstanceId: orNull(m.groupInstanceId), metadata: m.metadata })),
  };
}

async function syncGroup(groups: GroupCoordinatorApi, req: KafkaSyncGroupRequest, ctx: KafkaRequestContext): Promise<KafkaSyncGroupResponse> {
  const res = await groups.syncGroup(
    {
      groupId: req.groupId,
      generationId: req.generationId,
      memberId: req.memberId,
      groupInstanceId: orEmpty(req.groupInstanceId),
      // v0-v3 name neither; "" skips the coordinator's consistency check.
      protocolType: "",
      protocolName: "",
      assignments: req.assignments.map((a) => ({ memberId: a.memberId, assignment: a.assignment })),
    },
    callContext(ctx),
  );
  return { throttleTimeMs: 0, errorCode: groupCode(res.errorCode), assignment: res.assignment };
}

async function heartbeat(groups: GroupCoordinatorApi, req: KafkaHeartbeatRequest): Promise<KafkaHeartbeatResponse> {
  const res = await groups.heartbeat({ groupId: req.groupId, generationId: req.generationId, memberId: req.memberId, groupInstanceId: orEmpty(req.groupInstanceId) });
  return { throttleTimeMs: 0, errorCode: groupCode(res.errorCode) };
}

async function leaveGroup(groups: GroupCoordinatorApi, req: KafkaLeaveGroupRequest, ctx: KafkaRequestContext): Promise<KafkaLeaveGroupResponse> {
  const res = await groups.leaveGroup({ groupId: req.groupId, members: req.members.map((m) => ({ memberId: m.memberId, groupInstanceId: orEmpty(m.groupInstanceId), reason: "" })) });
  const members = req.members.map((m, i) => ({ memberId: m.memberId, groupInstanceId: m.groupInstanceId, errorCode: groupCode(res.members[i]?.errorCode ?? res.errorCode) }));
  // Below v3 the one member's error is the response's error.
  const errorCode = res.errorCode !== 0 || ctx.apiVersion >= 3 ? groupCode(res.errorCode) : (members[0]?.errorCode ?? 0);
  return { throttleTimeMs: 0, errorCode, members };
}

async function offsetCommit(groups: GroupCoordinatorApi, req: KafkaOffsetCommitRequest): Promise<KafkaOffsetCommitResponse> {
  const res = await groups.offsetCommit({
    groupId: req.groupId,
    generationId: req.generationId,
    memberId: req.memberId,
    groupInstanceId: orEmpty(req.groupInstanceId),
    topics: req.topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((p) => ({ partition: p.partitionIndex, committedOffset: p.committedOffset, committedLeaderEpoch: p.committedLeaderEpoch, committedMetadata: orEmpty(p.committedMetadata) })),
    })),
  });
  // The coordinator answers in request order; index rather than match names, so a topic
  // named twice in one request still gets an answer per entry.
  return {
    throttleTimeMs: 0,
    topics: req.topics.map((t, ti) => ({
      name: t.name,
      partitions: t.partitions.map((p, pi) => ({ partitionIndex: p.partitionIndex, errorCode: groupCode(res.topics[ti]?.partitions[pi]?.errorCode ?? res.errorCode) })),
    })),
  };
}

async function offsetFetch(groups: GroupCoordinatorApi, req: KafkaOffsetFetchRequest): Promise<KafkaOffsetFetchResponse> {
  if (req.topics !== null && req.topics.length === 0) return { throttleTimeMs: 0, topics: [], errorCode: 0 };
  const res = await groups.offsetFetch({ groupId: req.groupId, topics: (req.topics ?? []).map((t) => ({ name: t.name, partitions: t.partitionIndexes })) });
  return {
    throttleTimeMs: 0,
    errorCode: groupCode(res.errorCode),
    topics: res.topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((p) => ({
        partitionIndex: p.partition,
        committedOffset: p.committedOffset,
        committedLeaderEpoch: p.committedLeaderEpoch,
        metadata: p.metadata,
        errorCode: groupCode(p.errorCode),
      })),
    })),
  };
}

async function describeGroups(groups: GroupCoordinatorApi, req: KafkaDescribeGroupsRequest): Promise<KafkaDescribeGroupsResponse> {
  const res = await groups.describeGroups({ groupIds: req.groups });
  return {
    throttleTimeMs: 0,
    groups: res.groups.map((g) => ({
      errorCode: groupCode(g.errorCode),
      groupId: g.groupId,
      groupState: g.groupState,
      protocolType: g.protocolType,
      protocolData: g.protocolData,
      members: g.members.map((m) => ({
        memberId: m.memberId,
        groupInstanceId: orNull(m.groupInstanceId),
        clientId: m.clientId,
        clientHost: m.clientHost,
        memberMetadata: m.memberMetadata,
        memberAssignment: m.memberAssignment,
      })),
      authorizedOperations: req.includeAuthorizedOperations ? GROUP_AUTHORIZED_OPERATIONS : KAFKA_AUTHORIZED_OPERATIONS_OMITTED,
    })),
  };
}

async function listGroups(groups: GroupCoordinatorApi, _req: KafkaListGroupsRequest): Promise<KafkaListGroupsResponse> {
  const res = await groups.listGroups({ statesFilter: [] });
  return { throttleTimeMs: 0, errorCode: groupCode(res.errorCode), groups: res.groups.map((g) => ({ groupId: g.groupId, protocolType: g.protocolType })) };
}

export const groupHandlers: KafkaHandlerFactory = (backends) => [
  groupHandler(backends, findCoordinatorApi, findCoordinator),
  groupHandler(backends, joinGroupApi, joinGroup),
  groupHandler(backends, syncGroupApi, syncGroup),
  groupHandler(backends, heartbeatApi, (g, req) => heartbeat(g, req)),
  groupHandler(backends, leaveGroupApi, leaveGroup),
  groupHandler(backends, offsetCommitApi, (g, req) => offsetCommit(g, req)),
  groupHandler(backends, offsetFetchApi, (g, req) => offsetFetch(g, req)),
  groupHandler(backends, describeGroupsApi, (g, req) => describeGroups(g, req)),
  groupHandler(backends, listGroupsApi, listGroups),
];

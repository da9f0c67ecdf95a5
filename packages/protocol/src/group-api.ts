/**
 * TypeScript shapes of proto/flotilla/broker/v1/group.proto as loaded by
 * @grpc/proto-loader with the options in ./grpc.ts (camelCase fields, int64 as number,
 * bytes as Buffer, defaults filled in). Field meanings and sentinels are documented in
 * the .proto file; keep the two in step.
 */

export const GROUP_PROTO = "flotilla/broker/v1/group.proto";
export const GROUP_SERVICE = "flotilla.broker.v1.GroupCoordinator";

/** The internal topic holding group metadata and committed offsets. */
export const CONSUMER_OFFSETS_TOPIC = "__consumer_offsets";

/** FindCoordinatorRequest.key_type of a consumer group. */
export const COORDINATOR_KEY_TYPE_GROUP = 0;

/** Group states as DescribeGroups and ListGroups name them (Kafka's names). */
export type GroupStateName = "Empty" | "PreparingRebalance" | "CompletingRebalance" | "Stable" | "Dead";

export interface FindCoordinatorRequest {
  key: string;
  keyType: number;
}
export interface FindCoordinatorResponse {
  errorCode: number;
  errorMessage: string;
  nodeId: number;
  host: string;
  port: number;
}

export interface JoinGroupProtocol {
  name: string;
  metadata: Buffer;
}
export interface JoinGroupRequest {
  groupId: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  /** "" for a new member. */
  memberId: string;
  /** "" for a dynamic member. */
  groupInstanceId: string;
  protocolType: string;
  protocols: JoinGroupProtocol[];
  clientId: string;
  reason: string;
}
export interface JoinGroupResponseMember {
  memberId: string;
  groupInstanceId: string;
  metadata: Buffer;
}
export interface JoinGroupResponse {
  errorCode: number;
  errorMessage: string;
  generationId: number;
  protocolType: string;
  protocolName: string;
  leader: string;
  memberId: string;
  /** Only in the leader's response. */
  members: JoinGroupResponseMember[];
}

export interface SyncGroupRequestAssignment {
  memberId: string;
  assignment: Buffer;
}
export interface SyncGroupRequest {
  groupId: string;
  generationId: number;
  memberId: string;
  groupInstanceId: string;
  protocolType: string;
  protocolName: string;
  assignments: SyncGroupRequestAssignment[];
}
export interface SyncGroupResponse {
  errorCode: number;
  errorMessage: string;
  protocolType: string;
  protocolName: string;
  assignment: Buffer;
}

export interface HeartbeatRequest {
  groupId: string;
  generationId: number;
  memberId: string;
  groupInstanceId: string;
}
export interface HeartbeatResponse {
  errorCode: number;
  errorMessage: string;
}

export interface MemberIdentity {
  memberId: string;
  groupInstanceId: string;
  reason: string;
}
export interface LeaveGroupRequest {
  groupId: string;
  members: MemberIdentity[];
}
export interface LeaveGroupMemberResponse {
  memberId: string;
  groupInstanceId: string;
  errorCode: number;
  errorMessage: string;
}
export interface LeaveGroupResponse {
  errorCode: number;
  errorMessage: string;
  members: LeaveGroupMemberResponse[];
}

export interface OffsetCommitRequestPartition {
  partition: number;
  committedOffset: number;
  /** -1 = unknown. */
  committedLeaderEpoch: number;
  committedMetadata: string;
}
export interface OffsetCommitRequest {
  groupId: string;
  /** -1 with memberId "" = a standalone commit (only while the group has no members). */
  generationId: number;
  memberId: string;
  groupInstanceId: string;
  topics: { name: string; partitions: OffsetCommitRequestPartition[] }[];
}
export interface OffsetCommitResponsePartition {
  partition: number;
  errorCode: number;
  errorMessage: string;
}
export interface OffsetCommitResponse {
  errorCode: number;
  errorMessage: string;
  topics: { name: string; partitions: OffsetCommitResponsePartition[] }[];
}

export interface OffsetFetchRequest {
  groupId: string;
  /** Empty = every partition the group has an offset for. */
  topics: { name: string; partitions: number[] }[];
}
export interface OffsetFetchResponsePartition {
  partition: number;
  /** -1 = none committed. */
  committedOffset: number;
  committedLeaderEpoch: number;
  metadata: string;
  errorCode: number;
  errorMessage: string;
}
export interface OffsetFetchResponse {
  errorCode: number;
  errorMessage: string;
  topics: { name: string; partitions: OffsetFetchResponsePartition[] }[];
}

export interface ListGroupsRequest {
  statesFilter: string[];
}
export interface ListedGroup {
  groupId: string;
  protocolType: string;
  groupState: string;
}
export interface ListGroupsResponse {
  errorCode: number;
  errorMessage: string;
  groups: ListedGroup[];
}

export interface DescribeGroupsRequest {
  groupIds: string[];
}
export interface DescribedGroupMember {
  memberId: string;
  groupInstanceId: string;
  clientId: string;
  clientHost: string;
  memberMetadata: Buffer;
  memberAssignment: Buffer;
}
export interface DescribedGroup {
  errorCode: number;
  errorMessage: string;
  groupId: string;
  groupState: string;
  protocolType: string;
  protocolData: string;
  members: DescribedGroupMember[];
}
export interface DescribeGroupsResponse {
  groups: DescribedGroup[];
}

export interface DeleteGroupsRequest {
  groupIds: string[];
}
export interface DeletableGroupResult {
  groupId: string;
  errorCode: number;
  errorMessage: string;
}
export interface DeleteGroupsResponse {
  results: DeletableGroupResult[];
}

/** Facts about the caller that are not in the request message (taken from the connection). */
export interface GroupCallContext {
  /** The peer's host as the server saw it, e.g. "/127.0.0.1". */
  readonly clientHost: string;
  /** Cancelled when the caller goes away. */
  readonly signal?: AbortSignal;
}

/** The GroupCoordinator service as the broker implements it (and tests fake it). */
export interface GroupCoordinatorApi {
  findCoordinator(request: FindCoordinatorRequest): Promise<FindCoordinatorResponse>;
  joinGroup(request: JoinGroupRequest, context: GroupCallContext): Promise<JoinGroupResponse>;
  syncGroup(request: SyncGroupRequest, context: GroupCallContext): Promise<SyncGroupResponse>;
  heartbeat(request: HeartbeatRequest): Promise<HeartbeatResponse>;
  leaveGroup(request: LeaveGroupRequest): Promise<LeaveGroupResponse>;
  offsetCommit(request: OffsetCommitRequest): Promise<OffsetCommitResponse>;
  offsetFetch(request: OffsetFetchRequest): Promise<OffsetFetchResponse>;
  listGroups(request: ListGroupsRequest): Promise<ListGroupsResponse>;
  describeGroups(request: DescribeGroupsRequest): Promise<DescribeGroupsResponse>;
  deleteGroups(request: DeleteGroupsRequest): Promise<DeleteGroupsResponse>;
}

import * as grpc from "@grpc/grpc-js";
import { FlotillaError } from "@flotilla/common";
import {
  GRPC_CHANNEL_OPTIONS,
  GROUP_PROTO,
  GROUP_SERVICE,
  serviceClientCtor,
  type DeleteGroupsRequest,
  type DeleteGroupsResponse,
  type DescribeGroupsRequest,
  type DescribeGroupsResponse,
  type FindCoordinatorRequest,
  type FindCoordinatorResponse,
  type GroupCoordinatorApi,
  type HeartbeatRequest,
  type HeartbeatResponse,
  type JoinGroupRequest,
  type JoinGroupResponse,
  type LeaveGroupRequest,
  type LeaveGroupResponse,
  type ListGroupsRequest,
  type ListGroupsResponse,
  type OffsetCommitRequest,
  type OffsetCommitResponse,
  type OffsetFetchRequest,
  type OffsetFetchResponse,
  type SyncGroupRequest,
  type SyncGroupResponse,
} from "@flotilla/protocol";
import { AddressPool, unaryCall, type CallOptions } from "../connection.js";


/**
 * One gRPC client of the GroupCoordinator service (group.proto) at one broker address.
 * Like BrokerConnection: every call has a deadline, and gRPC failures come back as
 * FlotillaErrors with the gRPC error as `cause`. Group-level errors travel in the response's
 * `errorCode`, which callers read; they are not thrown here.
 */
export class CoordinatorConnection {
  private readonly client: grpc.Client;
  private closed = false;

  constructor(
    readonly address: string,
    clientId: string,
  ) {
    const Ctor = serviceClientCtor(GROUP_PROTO, GROUP_SERVICE);
    this.client = new Ctor(address, grpc.credentials.createInsecure(), { ...GRPC_CHANNEL_OPTIONS, "grpc.primary_user_agent": `flotilla-client/${clientId}` });
  }

  findCoordinator(req: FindCoordinatorRequest, o: CallOptions): Promise<FindCoordinatorResponse> {
    return this.unary("FindCoordinator", req, o);
  }
  joinGroup(req: JoinGroupRequest, o: CallOptions): Promise<JoinGroupResponse> {
    return this.unary("JoinGroup", req, o);
  }
  syncGroup(req: SyncGroupRequest, o: CallOptions): Promise<SyncGroupResponse> {
    return this.unary("SyncGroup", req, o);
  }
  heartbeat(req: HeartbeatRequest, o: CallOptions): Promise<HeartbeatResponse> {
    return this.unary("Heartbeat", req, o);
  }
  leaveGroup(req: LeaveGroupRequest, o: CallOptions): Promise<LeaveGroupResponse> {
    return this.unary("LeaveGroup", req, o);
  }
  offsetCommit(req: OffsetCommitRequest, o: CallOptions): Promise<OffsetCommitResponse> {
    return this.unary("OffsetCommit", req, o);
  }
  offsetFetch(req: OffsetFetchRequest, o: CallOptions): Promise<OffsetFetchResponse> {
    return this.unary("OffsetFetch", req, o);
  }
  listGroups(req: ListGroupsRequest, o: CallOptions): Promise<ListGroupsResponse> {
    return this.unary("ListGroups", req, o);
  }
  describeGroups(req: DescribeGroupsRequest, o: CallOptions): Promise<DescribeGroupsResponse> {
    return this.unary("DescribeGroups", req, o);
  }
  deleteGroups(req: DeleteGroupsRequest, o: CallOptions): Promise<DeleteGroupsResponse> {
    return this.unary("DeleteGroups", req, o);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.client.close();
  }

  private unary<T>(method: string, req: unknown, options: CallOptions): Promise<T> {
    if (this.closed) return Promise.reject(new FlotillaError("NETWORK_EXCEPTION", `connection to ${this.address} is closed`));
    return unaryCall<T>({ client: this.client, service: "group coordinator", address: this.address, method, req, options });
  }
}

// Compile-time check that the connection covers the whole GroupCoordinator API.
type _CoversApi = { [K in keyof GroupCoordinatorApi]: (req: Parameters<GroupCoordinatorApi[K]>[0], options: CallOptions) => ReturnType<GroupCoordinatorApi[K]> };
const _covers: (c: CoordinatorConnection) => _CoversApi = (c) => c;
void _covers;

/** One coordinator connection per address, created on first use. */
export class CoordinatorPool extends AddressPool<CoordinatorConnection> {
  constructor(clientId: string) {
    super((address) => new CoordinatorConnection(address, clientId));
  }
}

/** Formats host and port as an address, bracketing IPv6 literals. */
export function hostPort(host: string, port: number): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]:${port}` : `${host}:${port}`;
}

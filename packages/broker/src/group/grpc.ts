/**
 * The gRPC edge of the GroupCoordinator service (proto/flotilla/broker/v1/group.proto):
 * proto messages in, GroupCoordinatorApi calls, proto messages out. Group errors travel
 * inside responses; a call that fails as a whole becomes a gRPC status through
 * toServiceError, as in ../grpc-server.ts.
 */
import type * as grpc from "@grpc/grpc-js";
import { CALL_CANCELLED, FlotillaError } from "@flotilla/common";
import type { Logger } from "@flotilla/common/logger";
import { GROUP_PROTO, GROUP_SERVICE, serviceClientCtor, toServiceError, type GroupCallContext, type GroupCoordinatorApi } from "@flotilla/protocol";

type Unary = (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => void;

/**
 * The peer's host the way Kafka shows a client host ("/127.0.0.1"), from grpc-js's
 * "host:port" / "[v6]:port" / "ipv4:host:port" peer string.
 */
export function clientHostOf(peer: string): string {
  let p = peer.replace(/^(ipv4|ipv6|unix):/, "");
  const v6 = /^\[([^\]]+)\](?::\d+)?$/.exec(p);
  if (v6) p = v6[1] as string;
  else p = p.replace(/:\d+$/, "");
  return `/${p}`;
}

function unary(name: string, logger: Logger, run: (request: unknown, context: GroupCallContext) => Promise<unknown>): Unary {
  return (call, callback) => {
    const abort = new AbortController();
    call.on("cancelled", () => abort.abort(CALL_CANCELLED));
    let clientHost = "/unknown";
    try {
      clientHost = clientHostOf(call.getPeer());
    } catch {
      // getPeer throws when the call has no peer left; the host is only shown by DescribeGroups.
    }
    run(call.request, { clientHost, signal: abort.signal }).then(
      (response) => callback(null, response),
      (err: unknown) => {
        if (!(err instanceof FlotillaError)) logger.error({ err, rpc: name }, "unexpected error in group request handler");
        callback(toServiceError(err) as grpc.ServiceError);
      },
    );
  };
}

/** The service definition to add to a grpc.Server. */
export function groupServiceDefinition(): grpc.ServiceDefinition {
  return serviceClientCtor(GROUP_PROTO, GROUP_SERVICE).service;
}

/** Wraps a GroupCoordinatorApi in a gRPC handler map. */
export function groupServiceHandlers(api: GroupCoordinatorApi, logger: Logger): grpc.UntypedServiceImplementation {
  type Api = GroupCoordinatorApi;
  return {
    FindCoordinator: unary("FindCoordinator", logger, (req) => api.findCoordinator(req as Parameters<Api["findCoordinator"]>[0])),
    JoinGroup: unary("JoinGroup", logger, (req, ctx) => api.joinGroup(req as Parameters<Api["joinGroup"]>[0], ctx)),
    SyncGroup: unary("SyncGroup", logger, (req, ctx) => api.syncGroup(req as Parameters<Api["syncGroup"]>[0], ctx)),
    Heartbeat: unary("Heartbeat", logger, (req) => api.heartbeat(req as Parameters<Api["heartbeat"]>[0])),
    LeaveGroup: unary("LeaveGroup", logger, (req) => api.leaveGroup(req as Parameters<Api["leaveGroup"]>[0])),
    OffsetCommit: unary("OffsetCommit", logger, (req) => api.offsetCommit(req as Parameters<Api["offsetCommit"]>[0])),
    OffsetFetch: unary("OffsetFetch", logger, (req) => api.offsetFetch(req as Parameters<Api["offsetFetch"]>[0])),
    ListGroups: unary("ListGroups", logger, (req) => api.listGroups(req as Parameters<Api["listGroups"]>[0])),
    DescribeGroups: unary("DescribeGroups", logger, (req) => api.describeGroups(req as Parameters<Api["describeGroups"]>[0])),
    DeleteGroups: unary("DeleteGroups", logger, (req) => api.deleteGroups(req as Parameters<Api["deleteGroups"]>[0])),
  };
}

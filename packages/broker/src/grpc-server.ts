/**
 * The gRPC edge of the Broker service: proto messages in, BrokerApi calls, proto
 * messages out. Per-item errors travel inside responses (built by the handlers); a
 * request that fails as a whole becomes a gRPC status via toServiceError, the one place
 * errors cross to gRPC.
 */
import * as grpc from "@grpc/grpc-js";
import { FlotillaError } from "@flotilla/common";
import type { Logger } from "@flotilla/common/logger";
import { BROKER_PROTO, BROKER_SERVICE, GRPC_CHANNEL_OPTIONS, serviceClientCtor, toServiceError, type BrokerApi, type CreatePartitionsRequest, type GroupCoordinatorApi, type OffsetForLeaderEpochRequest, type ReplicationApi } from "@flotilla/protocol";
import { groupServiceDefinition, groupServiceHandlers } from "./group/grpc.js";

export interface BrokerGrpcServer {
  /** The port bound (the real one when 0 was asked for). */
  readonly port: number;
  /** Stops accepting calls and waits up to `graceMs` for calls in flight, then cancels the rest. */
  close(graceMs?: number): Promise<void>;
}

type Unary = (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => void;

function unary(name: string, logger: Logger, run: (request: unknown, signal: AbortSignal) => Promise<unknown>): Unary {
  return (call, callback) => {
    const abort = new AbortController();
    call.on("cancelled", () => abort.abort());
    run(call.request, abort.signal).then(
      (response) => callback(null, response),
      (err: unknown) => {
        if (!(err instanceof FlotillaError)) logger.error({ err, rpc: name }, "unexpected error in request handler");
        callback(toServiceError(err) as grpc.ServiceError);
      },
    );
  };
}

/** Wraps a BrokerApi in a gRPC handler map. */
export function brokerServiceHandlers(api: BrokerApi & Partial<ReplicationApi>, logger: Logger): grpc.UntypedServiceImplementation {
  const h = <Req>(name: string, fn: (req: Req, signal: AbortSignal) => Promise<unknown>) => unary(name, logger, (req, signal) => fn(req as Req, signal));
  return {
    Produce: h("Produce", (req: Parameters<BrokerApi["produce"]>[0]) => api.produce(req)),
    Fetch: h("Fetch", (req: Parameters<BrokerApi["fetch"]>[0], signal) => api.fetch(req, signal)),
    ListOffsets: h("ListOffsets", (req: Parameters<BrokerApi["listOffsets"]>[0]) => api.listOffsets(req)),
    Metadata: h("Metadata", (req: Parameters<BrokerApi["metadata"]>[0]) => api.metadata(req)),
    CreateTopics: h("CreateTopics", (req: Parameters<BrokerApi["createTopics"]>[0]) => api.createTopics(req)),
    DeleteTopics: h("DeleteTopics", (req: Parameters<BrokerApi["deleteTopics"]>[0]) => api.deleteTopics(req)),
    DescribeTopics: h("DescribeTopics", (req: Parameters<BrokerApi["describeTopics"]>[0]) => api.describeTopics(req)),
    CreatePartitions: h("CreatePartitions", (req: CreatePartitionsRequest) => {
      return api.createPartitions(req);
    }),
    InitProducerId: h("InitProducerId", (req: Parameters<BrokerApi["initProducerId"]>[0]) => api.initProducerId(req)),
    OffsetForLeaderEpoch: h("OffsetForLeaderEpoch", (req: OffsetForLeaderEpochRequest) => {
      if (!api.offsetForLeaderEpoch) throw new FlotillaError("UNSUPPORTED_VERSION", "this broker does not serve OffsetForLeaderEpoch");
      return api.offsetForLeaderEpoch(req);
    }),
  };
}

/** "host:port" for grpc-js, with IPv6 hosts in brackets; "" binds every interface. */
export function bindAddress(host: string, port: number): string {
  const h = host === "" ? "0.0.0.0" : host;
  return h.includes(":") ? `[${h}]:${port}` : `${h}:${port}`;
}

export async function startBrokerGrpcServer(options: { api: BrokerApi & Partial<ReplicationApi>; groups?: GroupCoordinatorApi; host: string; port: number; logger: Logger }): Promise<BrokerGrpcServer> {
  const server = new grpc.Server(GRPC_CHANNEL_OPTIONS);
  const ctor = serviceClientCtor(BROKER_PROTO, BROKER_SERVICE);
  server.addService(ctor.service, brokerServiceHandlers(options.api, options.logger));
  if (options.groups) server.addService(groupServiceDefinition(), groupServiceHandlers(options.groups, options.logger));
  const address = bindAddress(options.host, options.port);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, boundPort) => {
      if (err) reject(new FlotillaError("BROKER_NOT_AVAILABLE", `cannot listen on ${address}: ${err.message}`, { cause: err }));
      else resolve(boundPort);
    });
  });
  let closing: Promise<void> | undefined;
  return {
    port,
    close(graceMs = 5000) {
      closing ??= new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          options.logger.warn({ graceMs }, "calls still in flight after the grace period; cancelling them");
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      return closing;
    },
  };
}

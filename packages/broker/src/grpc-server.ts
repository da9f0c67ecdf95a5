/**
 * The gRPC edge of the Broker service: proto messages in, BrokerApi calls, proto
 * messages out. Per-item errors travel inside responses (built by the handlers); a
 * request that fails as a whole becomes a gRPC status via toServiceError, the one place
 * errors cross to gRPC.
 */
import dns from "node:dns/promises";
import net from "node:net";
import * as grpc from "@grpc/grpc-js";
import { CALL_CANCELLED, FlotillaError } from "@flotilla/common";
import type { Logger } from "@flotilla/common/logger";
import { BROKER_PROTO, BROKER_SERVICE, GRPC_CHANNEL_OPTIONS, pipelineHandler, serviceClientCtor, toServiceError, type BrokerApi, type PipelineStream, type CreatePartitionsRequest, type GroupCoordinatorApi, type OffsetForLeaderEpochRequest, type ReplicationApi } from "@flotilla/protocol";
import { groupServiceDefinition, groupServiceHandlers } from "./group/grpc.js";
import { KafkaListener, sniffProtocol, type KafkaListenerSettings } from "./kafka/listener.js";

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
    // grpc-js emits "cancelled" when the stream closes, also after every answered call:
    // abort only a call still running, not each finished one (an abort dispatches an event).
    let answered = false;
    call.on("cancelled", () => {
      if (!answered) abort.abort(CALL_CANCELLED);
    });
    run(call.request, abort.signal).then(
      (response) => {
        answered = true;
        callback(null, response);
      },
      (err: unknown) => {
        answered = true;
        if (!(err instanceof FlotillaError)) logger.error({ err, rpc: name }, "unexpected error in request handler");
        callback(toServiceError(err) as grpc.ServiceError);
      },
    );
  };
}

/** Wraps a BrokerApi in a gRPC handler map. */
export function brokerServiceHandlers(api: BrokerApi & Partial<ReplicationApi>, logger: Logger, pipelines: Set<PipelineStream> = new Set()): grpc.UntypedServiceImplementation {
  const h = <Req>(name: string, fn: (req: Req, signal: AbortSignal) => Promise<unknown>) => unary(name, logger, (req, signal) => fn(req as Req, signal));
  return {
    Pipeline: pipelineHandler({ produce: (req) => api.produce(req), fetch: (req, signal) => api.fetch(req, signal) }, { logger, open: pipelines }) as grpc.UntypedHandleCall,
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

/** The addresses to bind for a listener host: "" = every IPv4 interface (as before), a literal as is, a name every address it resolves to. */
async function listenHosts(host: string): Promise<string[]> {
  if (host === "") return ["0.0.0.0"];
  if (net.isIP(host) !== 0) return [host];
  try {
    const found = await dns.lookup(host, { all: true });
    const unique = [...new Set(found.map((a) => a.address))];
    return unique.length > 0 ? unique : [host];
  } catch (err) {
    throw new FlotillaError("BROKER_NOT_AVAILABLE", `cannot resolve the listener host ${host}: ${(err as Error).message}`, { cause: err });
  }
}

/** How long a new connection may take to send the bytes that tell gRPC from Kafka. */
export const FIRST_BYTES_TIMEOUT_MS = 10_000;

export interface BrokerGrpcServerOptions {
  api: BrokerApi & Partial<ReplicationApi>;
  groups?: GroupCoordinatorApi;
  host: string;
  port: number;
  logger: Logger;
  /** Serve the Kafka protocol on the same port (connections not starting with the HTTP/2 preface); absent = such connections are closed. */
  kafka?: KafkaListenerSettings;
  /** Bound on the wait for a connection's first bytes (default FIRST_BYTES_TIMEOUT_MS). */
  firstBytesTimeoutMs?: number;
}

/**
 * Serves the broker's gRPC services, and the Kafka protocol when `kafka` is given, on one
 * port. This function owns the listening socket: each accepted connection is routed by its
 * first bytes (./kafka/listener.ts sniffProtocol): the HTTP/2 client preface goes to
 * grpc-js through its connection injector (the bytes read are pushed back first), anything
 * else is a Kafka connection. A connection that says nothing for `firstBytesTimeoutMs` is
 * closed.
 */
export async function startBrokerGrpcServer(options: BrokerGrpcServerOptions): Promise<BrokerGrpcServer> {
  const { logger } = options;
  const server = new grpc.Server(GRPC_CHANNEL_OPTIONS);
  const ctor = serviceClientCtor(BROKER_PROTO, BROKER_SERVICE);
  /** Open Pipeline streams: close() ends them so that tryShutdown need not wait out its grace. */
  const pipelines = new Set<PipelineStream>();
  server.addService(ctor.service, brokerServiceHandlers(options.api, logger, pipelines));
  if (options.groups) server.addService(groupServiceDefinition(), groupServiceHandlers(options.groups, logger));
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const kafka = options.kafka ? KafkaListener.forBroker(options.kafka) : undefined;
  const firstBytesTimeoutMs = options.firstBytesTimeoutMs ?? FIRST_BYTES_TIMEOUT_MS;
  /** Every accepted socket until it closes, so close() can end them all. */
  const sockets = new Set<net.Socket>();
  let stopping = false;

  const route = async (socket: net.Socket): Promise<void> => {
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    const sniffed = await sniffProtocol(socket, firstBytesTimeoutMs);
    if (stopping || socket.destroyed) {
      socket.destroy();
      return;
    }
    if (sniffed.protocol === "none") {
      if (sniffed.reason === "timeout") logger.debug({ peer, firstBytesTimeoutMs }, "connection sent nothing in time; closing it");
      socket.destroy();
      return;
    }
    if (sniffed.protocol === "grpc") {
      // Node's HTTP/2 session reads bytes already buffered in the socket (the unshifted
      // preface) and then takes over the socket's handle: do not resume the JS stream.
      socket.unshift(sniffed.bytes);
      injector.injectConnection(socket);
      return;
    }
    if (!kafka) {
      logger.warn({ peer }, "connection is not gRPC and this server has no Kafka listener; closing it");
      socket.destroy();
      return;
    }
    kafka.accept(socket, sniffed.bytes);
  };

  const onConnection = (socket: net.Socket): void => {
    if (stopping) {
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    // Without a listener an 'error' event would end the process; the protocol's own listeners log what matters.
    socket.on("error", (err) => logger.debug({ err: err.message }, "client connection error"));
    route(socket).catch((err: unknown) => {
      logger.error({ err }, "cannot route a new connection; closing it");
      socket.destroy();
    });
  };

  // As grpc-js's bindAsync did: a host name binds every address it resolves to (localhost:
  // 127.0.0.1 and ::1), on one port; it is enough that one of them binds.
  const hosts = await listenHosts(options.host);
  const netServers: net.Server[] = [];
  let port = options.port;
  const failures: string[] = [];
  for (const host of hosts) {
    const netServer = net.createServer({ noDelay: true }, onConnection);
    try {
      await new Promise<void>((resolve, reject) => {
        netServer.once("error", reject);
        netServer.listen({ host, port }, () => {
          netServer.off("error", reject);
          resolve();
        });
      });
    } catch (err) {
      failures.push(`${bindAddress(host, port)}: ${(err as Error).message}`);
      continue;
    }
    netServer.on("error", (err) => logger.error({ err }, "client listener error"));
    const bound = netServer.address();
    if (typeof bound === "object" && bound !== null) port = bound.port;
    netServers.push(netServer);
  }
  if (netServers.length === 0) {
    throw new FlotillaError("BROKER_NOT_AVAILABLE", `cannot listen on ${bindAddress(options.host, options.port)}: ${failures.join("; ")}`);
  }
  if (failures.length > 0) logger.warn({ failures }, "some addresses of the client listener's host could not be bound");
  logger.debug({ addresses: netServers.map((n) => n.address()), kafka: kafka !== undefined }, "client listener bound (gRPC and Kafka routed by first bytes)");

  let closing: Promise<void> | undefined;
  return {
    port,
    close(graceMs = 5000) {
      closing ??= (async () => {
        stopping = true;
        const listenersClosed = Promise.all(netServers.map((n) => new Promise<void>((resolve) => n.close(() => resolve()))));
        // Kafka has no graceful drain: clients reconnect elsewhere, as after a broker restart.
        kafka?.close();
        for (const p of [...pipelines]) p.shutdown();
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            logger.warn({ graceMs }, "calls still in flight after the grace period; cancelling them");
            server.forceShutdown();
            resolve();
          }, graceMs);
          server.tryShutdown(() => {
            clearTimeout(timer);
            resolve();
          });
        });
        // tryShutdown/forceShutdown closed the injector's HTTP/2 server and sessions too; any
        // socket still open (one in its first-bytes wait, a session slow to close) ends here.
        for (const s of sockets) s.destroy();
        sockets.clear();
        await listenersClosed;
      })();
      return closing;
    },
  };
}

import * as grpc from "@grpc/grpc-js";
import { FlotillaError, assert } from "@flotilla/common";
import {
  BROKER_PROTO,
  BROKER_SERVICE,
  GRPC_CHANNEL_OPTIONS,
  PipelineChannel,
  fromServiceError,
  serviceClientCtor,
  type BrokerApi,
  type CreatePartitionsRequest,
  type CreatePartitionsResponse,
  type CreateTopicsRequest,
  type CreateTopicsResponse,
  type DeleteTopicsRequest,
  type InitProducerIdRequest,
  type InitProducerIdResponse,
  type DeleteTopicsResponse,
  type DescribeTopicsRequest,
  type DescribeTopicsResponse,
  type FetchRequest,
  type FetchResponse,
  type ListOffsetsRequest,
  type ListOffsetsResponse,
  type MetadataRequest,
  type MetadataResponse,
  type ProduceRequest,
  type ProduceResponse,
} from "@flotilla/protocol";

/** Per-call options: the gRPC deadline and an optional cancellation signal. */
export interface CallOptions {
  timeoutMs: number;
  signal?: AbortSignal;
}

type UnaryMethod = (req: unknown, metadata: grpc.Metadata, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: unknown) => void) => grpc.ClientUnaryCall;

/**
 * One gRPC client (one HTTP/2 channel) to one broker address. Every call has a deadline;
 * every failure comes back as a FlotillaError (translated by fromServiceError, the gRPC
 * error kept as `cause`), so retriers never see raw gRPC errors.
 */
export class BrokerConnection {
  readonly address: string;
  private readonly client: grpc.Client;
  /** Produce and Fetch go on the Pipeline stream; the rarer calls stay unary. */
  private readonly pipeline: PipelineChannel;
  private closed = false;

  constructor(address: string, clientId: string) {
    this.address = address;
    const Ctor = serviceClientCtor(BROKER_PROTO, BROKER_SERVICE);
    this.client = new Ctor(address, grpc.credentials.createInsecure(), {
      ...GRPC_CHANNEL_OPTIONS,
      "grpc.primary_user_agent": `flotilla-client/${clientId}`,
    });
    this.pipeline = new PipelineChannel(this.client, address);
  }

  produce(req: ProduceRequest, options: CallOptions): Promise<ProduceResponse> {
    return this.pipeline.produce(req, options);
  }
  initProducerId(req: InitProducerIdRequest, options: CallOptions): Promise<InitProducerIdResponse> {
    return this.unary("InitProducerId", req, options);
  }
  fetch(req: FetchRequest, options: CallOptions): Promise<FetchResponse> {
    return this.pipeline.fetch(req, options);
  }
  listOffsets(req: ListOffsetsRequest, options: CallOptions): Promise<ListOffsetsResponse> {
    return this.unary("ListOffsets", req, options);
  }
  metadata(req: MetadataRequest, options: CallOptions): Promise<MetadataResponse> {
    return this.unary("Metadata", req, options);
  }
  createTopics(req: CreateTopicsRequest, options: CallOptions): Promise<CreateTopicsResponse> {
    return this.unary("CreateTopics", req, options);
  }
  deleteTopics(req: DeleteTopicsRequest, options: CallOptions): Promise<DeleteTopicsResponse> {
    return this.unary("DeleteTopics", req, options);
  }
  describeTopics(req: DescribeTopicsRequest, options: CallOptions): Promise<DescribeTopicsResponse> {
    return this.unary("DescribeTopics", req, options);
  }
  createPartitions(req: CreatePartitionsRequest, options: CallOptions): Promise<CreatePartitionsResponse> {
    return this.unary("CreatePartitions", req, options);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.pipeline.close();
    this.client.close();
  }

  private unary<T>(method: string, req: unknown, options: CallOptions): Promise<T> {
    if (this.closed) return Promise.reject(new FlotillaError("NETWORK_EXCEPTION", `connection to ${this.address} is closed`));
    return unaryCall<T>({ client: this.client, service: "broker", address: this.address, method, req, options });
  }
}

/**
 * One unary gRPC call with a deadline and an abort signal; gRPC errors become
 * FlotillaErrors (the gRPC error kept as `cause`). Shared by every client connection.
 */
export function unaryCall<T>(call: { client: grpc.Client; service: string; address: string; method: string; req: unknown; options: CallOptions }): Promise<T> {
  const { client, service, address, method, req, options } = call;
  const fn = (client as unknown as Record<string, UnaryMethod>)[method];
  assert(typeof fn === "function", `${service} service has no method ${method}`);
  const where = `${method} to ${address}`;
  return new Promise<T>((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(new FlotillaError("NETWORK_EXCEPTION", `${where}: cancelled before it was sent`));
      return;
    }
    const pending = fn.call(client, req, new grpc.Metadata(), { deadline: Date.now() + options.timeoutMs }, (err, res) => {
      options.signal?.removeEventListener("abort", onAbort);
      if (err) reject(fromServiceError(err, where));
      else resolve(res as T);
    });
    const onAbort = (): void => pending.cancel();
    options.signal?.addEventListener("abort", onAbort, { once: true });
  });
}

// Compile-time check that the connection covers the whole broker API.
type _CoversApi = { [K in keyof BrokerApi]-?: (req: Parameters<Required<BrokerApi>[K]>[0], options: CallOptions) => ReturnType<Required<BrokerApi>[K]> };
const _covers: (c: BrokerConnection) => _CoversApi = (c) => c;
void _covers;

/** Parses "host:port,host:port" (or an array of them) into addresses, checking each. */
export function parseBootstrapServers(value: string | readonly string[]): string[] {
  const parts = (typeof value === "string" ? value.split(",") : value.flatMap((v) => v.split(","))).map((s) => s.trim()).filter((s) => s.length > 0);
  if (parts.length === 0) throw new FlotillaError("INVALID_CONFIG", "bootstrapServers is empty; give at least one host:port");
  for (const p of parts) {
    const m = /^(\[[^\]]+\]|[^:\s]+):(\d{1,5})$/.exec(p);
    const port = m ? Number(m[2]) : NaN;
    if (!m || port < 1 || port > 65535) throw new FlotillaError("INVALID_CONFIG", `bootstrapServers entry "${p}" is not host:port`);
  }
  return parts;
}

/** One connection per address, created on first use and reused; closeAll closes them all. */
export class AddressPool<C extends { close(): void }> {
  private readonly connections = new Map<string, C>();
  constructor(private readonly create: (address: string) => C) {}

  get(address: string): C {
    let c = this.connections.get(address);
    if (!c) {
      c = this.create(address);
      this.connections.set(address, c);
    }
    return c;
  }

  closeAll(): void {
    for (const c of this.connections.values()) c.close();
    this.connections.clear();
  }
}

/** Broker connections by address. */
export class ConnectionPool extends AddressPool<BrokerConnection> {
  constructor(clientId: string) {
    super((address) => new BrokerConnection(address, clientId));
  }
}

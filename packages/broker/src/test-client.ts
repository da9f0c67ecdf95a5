/**
 * Test support: a raw gRPC client of the Broker service with promise-returning calls,
 * and a node on 127.0.0.1 port 0 with its data in a temporary directory. Used by this
 * package's tests only.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { silentLogger } from "@flotilla/common/logger";
import {
  BROKER_PROTO,
  BROKER_SERVICE,
  GRPC_CHANNEL_OPTIONS,
  fromServiceError,
  serviceClientCtor,
  type CreateTopicsRequest,
  type CreateTopicsResponse,
  type DeleteTopicsRequest,
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
import { loadServerConfig } from "./config.js";
import { startNode, type NodeHandle } from "./node.js";

export class RawBrokerClient {
  private readonly client: grpc.Client & Record<string, unknown>;

  /** The underlying Broker service client, e.g. for a PipelineChannel on the same channel. */
  get grpcClient(): grpc.Client {
    return this.client;
  }

  constructor(address: string) {
    const Ctor = serviceClientCtor(BROKER_PROTO, BROKER_SERVICE);
    this.client = new Ctor(address, grpc.credentials.createInsecure(), GRPC_CHANNEL_OPTIONS) as grpc.Client & Record<string, unknown>;
  }

  /** One unary call; a gRPC error comes back as the FlotillaError it carries. */
  call<Req, Res>(method: string, request: Req, deadlineMs = 10_000): Promise<Res> {
    const fn = this.client[method] as (req: Req, meta: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: Res) => void) => void;
    return new Promise((resolve, reject) => {
      fn.call(this.client, request, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (err, res) => (err ? reject(fromServiceError(err, method)) : resolve(res)));
    });
  }

  produce = (r: ProduceRequest) => this.call<ProduceRequest, ProduceResponse>("Produce", r);
  fetch = (r: FetchRequest) => this.call<FetchRequest, FetchResponse>("Fetch", r);
  listOffsets = (r: ListOffsetsRequest) => this.call<ListOffsetsRequest, ListOffsetsResponse>("ListOffsets", r);
  metadata = (r: MetadataRequest) => this.call<MetadataRequest, MetadataResponse>("Metadata", r);
  createTopics = (r: CreateTopicsRequest) => this.call<CreateTopicsRequest, CreateTopicsResponse>("CreateTopics", r);
  deleteTopics = (r: DeleteTopicsRequest) => this.call<DeleteTopicsRequest, DeleteTopicsResponse>("DeleteTopics", r);
  describeTopics = (r: DescribeTopicsRequest) => this.call<DescribeTopicsRequest, DescribeTopicsResponse>("DescribeTopics", r);

  close(): void {
    this.client.close();
  }
}

export interface TestNode {
  readonly node: NodeHandle;
  readonly client: RawBrokerClient;
  readonly dataDir: string;
  /** Closes the client and the node; keeps the data. */
  stop(): Promise<void>;
}

export async function makeDataDir(): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), "flotilla-node-"));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** A combined node on 127.0.0.1:0 with its data in `dataDir`. */
export async function startTestNode(dataDir: string, overrides: Record<string, string> = {}): Promise<TestNode> {
  const config = loadServerConfig({
    env: {},
    overrides: { "node.id": "1", listeners: "PLAINTEXT://127.0.0.1:0", "log.dirs": dataDir, ...overrides },
  });
  const node = await startNode(config, { logger: silentLogger() });
  const client = new RawBrokerClient(node.address);
  let stopped = false;
  return {
    node,
    client,
    dataDir,
    async stop() {
      if (stopped) return;
      stopped = true;
      client.close();
      await node.close();
    },
  };
}

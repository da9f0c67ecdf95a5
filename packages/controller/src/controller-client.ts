/**
 * Client of the controller quorum over gRPC (proto/flotilla/controller/v1): implements
 * ControllerChannel for brokers and forwarding voters, plus the reads brokers and the CLI
 * use (FetchMetadata, DescribeQuorum, DescribeCluster).
 *
 * Leader following: a call goes to the last known active controller (at first, the first
 * voter). NOT_CONTROLLER with a leader hint moves it to the hinted address at once (a
 * hint naming the voter just asked, which is elected but not yet active, is retried there
 * after a back-off); without a hint, and on network errors and other retriable errors, it
 * tries the next voter after a back-off (doubling from retryBackoffMinMs to
 * retryBackoffMaxMs). Bounded by `attemptsMax` and `totalTimeoutMs`; then the last error
 * is thrown. Non-retriable errors are thrown at once.
 *
 * `noteLeader(address)` is the push side of leader following (Kafka's controller channel
 * listening to the metadata quorum's leader changes): a voter whose own Raft node learns
 * of a new leader says so, and every attempt still waiting on another voter is abandoned
 * and sent to the new leader at once, instead of waiting out its deadline against a
 * controller that may be cut off. Broker heartbeats also get a shorter per-attempt
 * deadline (`heartbeatCallTimeoutMs`), so that one unanswered attempt cannot outlast the
 * broker's session at the controller that took over.
 */
import * as grpc from "@grpc/grpc-js";
import { FlotillaError } from "@flotilla/common";
import type { Logger } from "@flotilla/common/logger";
import type { Endpoint } from "@flotilla/metadata";
import { GRPC_CHANNEL_OPTIONS, fromServiceError, serviceClientCtor, type CreateTopicsRequest, type CreateTopicsResponse, type DeleteTopicsRequest, type DeleteTopicsResponse } from "@flotilla/protocol";
import type { AllocateProducerIdsCall, AlterPartitionCall, AlterPartitionReply, BrokerHeartbeatCall, BrokerHeartbeatReply, ControllerChannel, ProducerIdBlock, RegisterBrokerCall } from "./channel.js";
import type { CreatePartitionsRequest, CreatePartitionsResponse } from "./commands/topics.js";
import { CONTROLLER_PROTO, CONTROLLER_SERVICE } from "./controller-service.js";

export interface ControllerClientOptions {
  /** "host:port" of every voter's controller listener. */
  readonly addresses: readonly string[];
  readonly logger?: Logger;
  /** Deadline of one call. Default 5000 ms. */
  readonly callTimeoutMs?: number;
  /** Bound on all attempts of one operation. Default 15000 ms. */
  readonly totalTimeoutMs?: number;
  /** Default 20. */
  readonly attemptsMax?: number;
  readonly retryBackoffMinMs?: number;
  readonly retryBackoffMaxMs?: number;
  /**
   * Deadline of one BrokerHeartbeat attempt. Default callTimeoutMs. Set it well below
   * broker.session.timeout.ms: a heartbeat stuck on an unreachable former controller
   * must give up and find the new one while the broker's session there is still alive.
   */
  readonly heartbeatCallTimeoutMs?: number;
}

type Res = Record<string, unknown>;
type Method = (req: unknown, metadata: grpc.Metadata, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: Res) => void) => grpc.ClientUnaryCall;

export interface FetchMetadataReply {
  /** Encoded records starting at the asked offset. */
  readonly records: readonly Uint8Array[];
  /** Encoded image when the asked offset is no longer kept (else undefined). */
  readonly snapshot: Uint8Array | undefined;
  readonly committedOffset: number;
}

export interface QuorumDescription {
  readonly nodeId: number;
  readonly leaderId: number;
  readonly term: number;
  readonly commitIndex: number;
  readonly lastIndex: number;
  readonly voters: readonly { id: number; address: string; matchIndex: number; lag: number }[];
}

export interface ClusterDescription {
  readonly brokers: readonly { brokerId: number; brokerEpoch: number; endpoints: Endpoint[]; rack: string | null; fenced: boolean }[];
  readonly activeControllerId: number;
  readonly metadataOffset: number;
}

const num = (v: unknown): number => (typeof v === "number" ? v : Number(v ?? 0));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Short keepalive, as on the Raft channels: a connection to a voter cut off by a network
 * partition is dropped within seconds instead of holding every later call until it times out.
 */
const CONTROLLER_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  ...GRPC_CHANNEL_OPTIONS,
  "grpc.keepalive_time_ms": 1000,
  "grpc.keepalive_timeout_ms": 2000,
  "grpc.keepalive_permit_without_calls": 1,
  "grpc.initial_reconnect_backoff_ms": 100,
  "grpc.max_reconnect_backoff_ms": 1000,
  "grpc.min_reconnect_backoff_ms": 100,
};

/** Methods any voter answers from its own committed state: their success says nothing about who leads. */
const READ_METHODS = new Set(["FetchMetadata", "DescribeQuorum", "DescribeCluster"]);

/** One attempt waiting for its answer; `abandon` settles it early (its gRPC call is cancelled). */
interface InFlightAttempt {
  readonly address: string;
  readonly abandon: (err: FlotillaError) => void;
}

export class ControllerQuorumClient implements ControllerChannel {
  private readonly clients = new Map<string, grpc.Client>();
  private current = 0;
  private readonly addresses: string[];
  private closed = false;
  /** The active controller as last learned: a command answered there, a NOT_CONTROLLER hint, or noteLeader. */
  private knownLeader: string | undefined;
  private readonly inFlight = new Set<InFlightAttempt>();

  constructor(private readonly options: ControllerClientOptions) {
    if (options.addresses.length === 0) throw new FlotillaError("INVALID_CONFIG", "the controller client needs at least one controller address");
    this.addresses = [...options.addresses];
  }

  /** The address calls go to first. */
  get leaderAddress(): string {
    return this.addresses[this.current]!;
  }

  /** "host:port" of the active controller as this client last learned it; undefined when unknown. */
  get activeControllerAddress(): string | undefined {
    return this.knownLeader;
  }

  /**
   * The metadata quorum has a new leader at `address` (one of the voter addresses; others
   * are ignored). Later calls go there first, and attempts waiting on any other voter are
   * abandoned with NOT_CONTROLLER hinting at it, so their operations retry there at once.
   */
  noteLeader(address: string): void {
    const index = this.addresses.indexOf(address);
    if (index < 0 || this.closed) return;
    const changed = this.knownLeader !== address;
    this.knownLeader = address;
    this.current = index;
    if (!changed) return;
    for (const attempt of [...this.inFlight]) {
      if (attempt.address === address) continue;
      attempt.abandon(new FlotillaError("NOT_CONTROLLER", `the metadata quorum has a new leader at ${address}; abandoned the call to ${attempt.address}`, { leaderHint: address }));
    }
  }

  private client(address: string): grpc.Client {
    let c = this.clients.get(address);
    if (!c) {
      const Ctor = serviceClientCtor(CONTROLLER_PROTO, CONTROLLER_SERVICE);
      c = new Ctor(address, grpc.credentials.createInsecure(), CONTROLLER_CHANNEL_OPTIONS);
      this.clients.set(address, c);
    }
    return c;
  }

  private once(address: string, method: string, request: unknown, timeoutMs: number): Promise<Res> {
    const client = this.client(address) as unknown as Record<string, Method>;
    const fn = client[method];
    if (!fn) throw new Error(`controller service has no method ${method}`);
    return new Promise((resolve, reject) => {
      let settled = false;
      let call: grpc.ClientUnaryCall | undefined;
      const attempt: InFlightAttempt = {
        address,
        abandon: (err) => {
          if (settled) return;
          settled = true;
          this.inFlight.delete(attempt);
          call?.cancel();
          reject(err);
        },
      };
      this.inFlight.add(attempt);
      call = fn.call(client, request, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => {
        if (settled) return;
        settled = true;
        this.inFlight.delete(attempt);
        if (err) reject(fromServiceError(err, `${method} at controller ${address}`));
        else resolve(res);
      });
    });
  }

  /** One operation with leader following and bounded retries (see the module comment). */
  async call(method: string, request: unknown, options: { callTimeoutMs?: number; anyVoter?: boolean } = {}): Promise<Res> {
    const callTimeoutMs = options.callTimeoutMs ?? this.options.callTimeoutMs ?? 5000;
    const deadline = Date.now() + (this.options.totalTimeoutMs ?? 15_000);
    const attemptsMax = this.options.attemptsMax ?? 20;
    let backoffMs = this.options.retryBackoffMinMs ?? 50;
    const backoffMaxMs = this.options.retryBackoffMaxMs ?? 1000;
    let lastError: FlotillaError | undefined;
    for (let attempt = 1; attempt <= attemptsMax && !this.closed; attempt++) {
      const address = this.addresses[this.current]!;
      try {
        const response = await this.once(address, method, request, callTimeoutMs);
        if (!READ_METHODS.has(method)) this.knownLeader = address;
        return response;
      } catch (err) {
        const fe = err instanceof FlotillaError ? err : new FlotillaError("UNKNOWN_SERVER_ERROR", String(err), { cause: err });
        lastError = fe;
        if (!fe.retriable) throw fe;
        const hinted = fe.errorName === "NOT_CONTROLLER" && fe.leaderHint ? this.addresses.indexOf(fe.leaderHint) : -1;
        // A hint naming a new leader moves every call of this client there, the ones waiting
        // elsewhere too (a broker-only node's metadata long-poll stuck at a cut-off voter).
        if (hinted >= 0 && fe.leaderHint !== this.knownLeader) this.noteLeader(fe.leaderHint!);
        else if (fe.errorName === "NOT_CONTROLLER" && this.knownLeader === address) this.knownLeader = undefined;
        if (hinted >= 0 && this.addresses[this.current] !== address) {
          continue; // noteLeader moved this client while the attempt waited: go there at once
        }
        if (hinted >= 0 && hinted !== this.current) {
          this.current = hinted;
          continue; // follow the hint at once
        }
        // The hinted voter is the one asked (elected, not yet active): ask it again after the back-off.
        // Otherwise try the next voter, unless another call or noteLeader has already moved on.
        if (hinted < 0 && this.addresses[this.current] === address) this.current = (this.current + 1) % this.addresses.length;
        if (Date.now() + backoffMs > deadline) break;
        this.options.logger?.debug({ method, address, attempt, err: fe.message }, "controller call failed; retrying");
        await sleep(backoffMs);
        backoffMs = Math.min(backoffMs * 2, backoffMaxMs);
      }
    }
    throw lastError ?? new FlotillaError("SHUTTING_DOWN", "controller client closed");
  }

  async registerBroker(request: RegisterBrokerCall): Promise<{ brokerEpoch: number; metadataOffset: number }> {
    const r = await this.call("RegisterBroker", { ...request, rack: request.rack ?? "" });
    return { brokerEpoch: num(r.brokerEpoch), metadataOffset: num(r.metadataOffset) };
  }

  async brokerHeartbeat(request: BrokerHeartbeatCall): Promise<BrokerHeartbeatReply & { metadataOffset: number }> {
    const r = await this.call("BrokerHeartbeat", request, this.options.heartbeatCallTimeoutMs !== undefined ? { callTimeoutMs: this.options.heartbeatCallTimeoutMs } : {});
    return { isFenced: Boolean(r.isFenced), shouldShutDown: Boolean(r.shouldShutDown), isCaughtUp: Boolean(r.isCaughtUp), metadataOffset: num(r.metadataOffset) };
  }

  async alterPartition(request: AlterPartitionCall): Promise<AlterPartitionReply & { metadataOffset: number }> {
    const r = await this.call("AlterPartition", request);
    return {
      errorCode: num(r.errorCode),
      errorMessage: String(r.errorMessage ?? ""),
      leader: num(r.leader),
      leaderEpoch: num(r.leaderEpoch),
      partitionEpoch: num(r.partitionEpoch),
      isr: ((r.isr as unknown[]) ?? []).map(num),
      metadataOffset: num(r.metadataOffset),
    };
  }

  async createTopics(request: CreateTopicsRequest): Promise<CreateTopicsResponse & { metadataOffset: number }> {
    const r = await this.call("CreateTopics", request);
    return { ...(r.response as CreateTopicsResponse), metadataOffset: num(r.metadataOffset) };
  }

  async deleteTopics(request: DeleteTopicsRequest): Promise<DeleteTopicsResponse & { metadataOffset: number }> {
    const r = await this.call("DeleteTopics", request);
    return { ...(r.response as DeleteTopicsResponse), metadataOffset: num(r.metadataOffset) };
  }

  async createPartitions(request: CreatePartitionsRequest): Promise<CreatePartitionsResponse & { metadataOffset: number }> {
    const r = await this.call("CreatePartitions", request);
    return { results: (r.results as CreatePartitionsResponse["results"]) ?? [], metadataOffset: num(r.metadataOffset) };
  }

  async allocateProducerIds(request: AllocateProducerIdsCall): Promise<ProducerIdBlock & { metadataOffset: number }> {
    const r = await this.call("AllocateProducerIds", request);
    return { firstProducerId: num(r.firstProducerId), count: num(r.count), metadataOffset: num(r.metadataOffset) };
  }

  /** Long-polls the current voter for committed metadata after `fromOffset - 1`. */
  async fetchMetadata(fromOffset: number, maxWaitMs: number, maxRecords = 0): Promise<FetchMetadataReply> {
    const r = await this.call("FetchMetadata", { fromOffset, maxWaitMs, maxRecords }, { callTimeoutMs: maxWaitMs + 5000 });
    const snapshot = r.snapshot as Uint8Array | undefined;
    return {
      records: (r.records as Uint8Array[]) ?? [],
      snapshot: snapshot && snapshot.byteLength > 0 ? snapshot : undefined,
      committedOffset: num(r.committedOffset),
    };
  }

  /** DescribeQuorum at one voter (the leader knows the lags; ask `address` or the current one). */
  async describeQuorum(address?: string): Promise<QuorumDescription> {
    const r = address ? await this.once(address, "DescribeQuorum", {}, this.options.callTimeoutMs ?? 5000) : await this.call("DescribeQuorum", {});
    return {
      nodeId: num(r.nodeId),
      leaderId: num(r.leaderId),
      term: num(r.term),
      commitIndex: num(r.commitIndex),
      lastIndex: num(r.lastIndex),
      voters: ((r.voters as Res[]) ?? []).map((v) => ({ id: num(v.id), address: String(v.address), matchIndex: num(v.matchIndex), lag: num(v.lag) })),
    };
  }

  async describeCluster(): Promise<ClusterDescription> {
    const r = await this.call("DescribeCluster", {});
    return {
      brokers: ((r.brokers as Res[]) ?? []).map((b) => ({
        brokerId: num(b.brokerId),
        brokerEpoch: num(b.brokerEpoch),
        endpoints: ((b.endpoints as Res[]) ?? []).map((e) => ({ name: String(e.name), host: String(e.host), port: num(e.port) })),
        rack: b.rack ? String(b.rack) : null,
        fenced: Boolean(b.fenced),
      })),
      activeControllerId: num(r.activeControllerId),
      metadataOffset: num(r.metadataOffset),
    };
  }

  close(): void {
    this.closed = true;
    for (const attempt of [...this.inFlight]) attempt.abandon(new FlotillaError("SHUTTING_DOWN", `controller client closed during a call to ${attempt.address}`));
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}

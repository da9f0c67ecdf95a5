/**
 * Raft messages between controllers over gRPC (service RaftTransport in
 * proto/flotilla/raft/v1/raft.proto).
 *
 * Outbound, each peer has a bounded queue and at most one Send call in flight; whatever
 * queued up while a call was out goes in the next batch. `send()` only enqueues, so the
 * Raft loop never waits on a slow or dead peer. When a queue is full the oldest message
 * is dropped, and a failed call drops its batch: Raft retries on its own (heartbeats,
 * append re-sends after a reject or timeout, new elections), and newer messages carry
 * newer state. After a failure the peer is retried with exponential back-off; gRPC
 * reconnects the channel underneath.
 */
import * as grpc from "@grpc/grpc-js";
import { FlotillaError } from "@flotilla/common";
import type { Logger } from "@flotilla/common/logger";
import { GRPC_CHANNEL_OPTIONS, fromServiceError, serviceClientCtor, toServiceError } from "@flotilla/protocol";
import type { Message, NodeId } from "@flotilla/raft";
import { RAFT_PROTO, RAFT_TRANSPORT_SERVICE, messageFromWire, messageToWire, type WireMessageBatch } from "./wire.js";

/** Where the driver's outbound messages go. */
export interface RaftTransport {
  /** Queues each message for `message.to`. Never blocks; never throws for an unreachable peer. */
  send(messages: readonly Message[]): void;
  /** Stops sending; queued messages are dropped. */
  close(): Promise<void>;
}

export interface GrpcRaftTransportOptions {
  readonly selfId: NodeId;
  /** Peer id -> "host:port" (this node excluded). */
  readonly peers: ReadonlyMap<NodeId, string>;
  readonly logger: Logger;
  /** Messages waiting per peer; past it the oldest is dropped. Default 4096. */
  readonly queueMessagesMax?: number;
  /** Messages per Send call. Default 512. */
  readonly batchMessagesMax?: number;
  /** Approximate bytes per Send call (one message is always allowed). Default 4 MiB. */
  readonly batchBytesMax?: number;
  /** Deadline of one Send call. Default 2000 ms. */
  readonly sendTimeoutMs?: number;
  /** Back-off after a failed call: doubles from min to max. Defaults 20 ms and 1000 ms. */
  readonly retryBackoffMinMs?: number;
  readonly retryBackoffMaxMs?: number;
}

/** Per-peer counters, for logs and tests. */
export interface PeerSendStats {
  queued: number;
  sentMessages: number;
  sentBatches: number;
  droppedOverflow: number;
  droppedFailed: number;
  failedCalls: number;
}

type SendFn = (batch: WireMessageBatch, options: grpc.CallOptions, callback: (err: grpc.ServiceError | null) => void) => void;

/** Client channel options: reconnect quickly, since a controller restart takes about a second. */
const RAFT_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  ...GRPC_CHANNEL_OPTIONS,
  "grpc.initial_reconnect_backoff_ms": 100,
  "grpc.max_reconnect_backoff_ms": 1000,
  "grpc.min_reconnect_backoff_ms": 100,
};

function messageBytesEstimate(m: Message): number {
  let bytes = 64 + (m.context?.length ?? 0);
  for (const e of m.entries) bytes += 24 + e.data.byteLength;
  if (m.snapshot) bytes += 64 + m.snapshot.data.byteLength;
  return bytes;
}

class PeerSender {
  private queue: Message[] = [];
  private inFlight = false;
  private closed = false;
  private backoffMs = 0;
  private backoffTimer: NodeJS.Timeout | undefined;
  private reachable = true;
  readonly stats: PeerSendStats = { queued: 0, sentMessages: 0, sentBatches: 0, droppedOverflow: 0, droppedFailed: 0, failedCalls: 0 };
  private readonly client: grpc.Client;
  private readonly sendCall: SendFn;

  constructor(
    private readonly selfId: NodeId,
    private readonly peerId: NodeId,
    private readonly address: string,
    private readonly options: Required<Omit<GrpcRaftTransportOptions, "selfId" | "peers" | "logger">>,
    private readonly logger: Logger,
  ) {
    const Ctor = serviceClientCtor(RAFT_PROTO, RAFT_TRANSPORT_SERVICE);
    this.client = new Ctor(address, grpc.credentials.createInsecure(), RAFT_CHANNEL_OPTIONS);
    this.sendCall = (this.client as unknown as { send: SendFn }).send.bind(this.client);
  }

  enqueue(message: Message): void {
    if (this.closed) return;
    this.queue.push(message);
    if (this.queue.length > this.options.queueMessagesMax) {
      this.queue.shift();
      this.stats.droppedOverflow += 1;
    }
    this.stats.queued = this.queue.length;
    this.pump();
  }

  private pump(): void {
    if (this.inFlight || this.closed || this.backoffTimer !== undefined || this.queue.length === 0) return;
    let count = 0;
    let bytes = 0;
    while (count < this.queue.length && count < this.options.batchMessagesMax) {
      const next = messageBytesEstimate(this.queue[count]!);
      if (count > 0 && bytes + next > this.options.batchBytesMax) break;
      bytes += next;
      count += 1;
    }
    const batch = this.queue.splice(0, count);
    this.stats.queued = this.queue.length;
    this.inFlight = true;
    const wire: WireMessageBatch = { from: this.selfId, to: this.peerId, messages: batch.map(messageToWire) };
    this.sendCall(wire, { deadline: Date.now() + this.options.sendTimeoutMs }, (err) => {
      this.inFlight = false;
      if (this.closed) return;
      if (err) this.onFailure(err, batch.length);
      else this.onSuccess(batch.length);
      this.pump();
    });
    this.logger.trace({ peer: this.peerId, messages: batch.length, bytes }, "raft batch sent");
  }

  private onSuccess(messages: number): void {
    this.stats.sentMessages += messages;
    this.stats.sentBatches += 1;
    this.backoffMs = 0;
    if (!this.reachable) {
      this.reachable = true;
      this.logger.info({ peer: this.peerId, address: this.address }, "raft peer reachable again");
    }
  }

  private onFailure(err: grpc.ServiceError, messages: number): void {
    this.stats.failedCalls += 1;
    this.stats.droppedFailed += messages;
    const error = fromServiceError(err, `raft send to node ${this.peerId} at ${this.address}`);
    if (this.reachable) {
      this.reachable = false;
      // A misaddressed peer (INVALID_REQUEST) is a configuration problem worth a warning;
      // a peer that is down is routine during restarts.
      const level = FlotillaError.is(error, "INVALID_REQUEST") ? "warn" : "info";
      this.logger[level]({ peer: this.peerId, address: this.address, err: error.message }, "raft peer unreachable, dropping messages until it answers");
    } else {
      this.logger.debug({ peer: this.peerId, err: error.message, dropped: messages }, "raft send failed");
    }
    this.backoffMs = Math.min(this.options.retryBackoffMaxMs, Math.max(this.options.retryBackoffMinMs, this.backoffMs * 2));
    this.backoffTimer = setTimeout(() => {
      this.backoffTimer = undefined;
      this.pump();
    }, this.backoffMs);
  }

  close(): void {
    this.closed = true;
    this.queue = [];
    if (this.backoffTimer) clearTimeout(this.backoffTimer);
    this.backoffTimer = undefined;
    this.client.close();
  }
}

export class GrpcRaftTransport implements RaftTransport {
  private readonly senders = new Map<NodeId, PeerSender>();
  private readonly logger: Logger;

  constructor(options: GrpcRaftTransportOptions) {
    this.logger = options.logger;
    const resolved = {
      queueMessagesMax: options.queueMessagesMax ?? 4096,
      batchMessagesMax: options.batchMessagesMax ?? 512,
      batchBytesMax: options.batchBytesMax ?? 4 * 1024 * 1024,
      sendTimeoutMs: options.sendTimeoutMs ?? 2000,
      retryBackoffMinMs: options.retryBackoffMinMs ?? 20,
      retryBackoffMaxMs: options.retryBackoffMaxMs ?? 1000,
    };
    for (const [peerId, address] of options.peers) {
      if (peerId === options.selfId) continue;
      this.senders.set(peerId, new PeerSender(options.selfId, peerId, address, resolved, options.logger));
    }
  }

  send(messages: readonly Message[]): void {
    for (const message of messages) {
      const sender = this.senders.get(message.to);
      if (sender) sender.enqueue(message);
      else this.logger.warn({ to: message.to, type: message.type }, "raft message to a node with no known address dropped");
    }
  }

  stats(peerId: NodeId): PeerSendStats | undefined {
    const s = this.senders.get(peerId)?.stats;
    return s ? { ...s } : undefined;
  }

  async close(): Promise<void> {
    for (const sender of this.senders.values()) sender.close();
    this.senders.clear();
  }
}

export interface RaftTransportServiceOptions {
  readonly selfId: NodeId;
  /** Called for each well-formed message addressed to this node, in arrival order. */
  readonly onMessage: (message: Message) => void;
  readonly logger: Logger;
}

/** Registers the RaftTransport service on `server`. */
export function addRaftTransportService(server: grpc.Server, options: RaftTransportServiceOptions): void {
  const ctor = serviceClientCtor(RAFT_PROTO, RAFT_TRANSPORT_SERVICE);
  server.addService(ctor.service, {
    send(call: grpc.ServerUnaryCall<WireMessageBatch, object>, callback: grpc.sendUnaryData<object>) {
      const batch = call.request;
      if (batch.to !== options.selfId) {
        callback(toServiceError(new FlotillaError("INVALID_REQUEST", `raft batch from node ${batch.from} is addressed to node ${batch.to}, but this is node ${options.selfId}`)));
        return;
      }
      for (const wire of batch.messages) {
        let message: Message;
        try {
          message = messageFromWire(wire);
        } catch (err) {
          options.logger.warn({ from: batch.from, err: (err as Error).message }, "undecodable raft message dropped");
          continue;
        }
        if (message.from !== batch.from || message.to !== options.selfId) {
          options.logger.warn({ batchFrom: batch.from, from: message.from, to: message.to }, "raft message with inconsistent from/to dropped");
          continue;
        }
        options.onMessage(message);
      }
      callback(null, {});
    },
  });
}

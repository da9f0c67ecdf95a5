/**
 * Raft messages between controllers over gRPC (service RaftTransport in
 * proto/flotilla/raft/v1/raft.proto).
 *
 * Outbound, each peer has a bounded queue and one long-lived client stream. `send()`
 * queues each message for its peer and writes what is queued as batches (all messages
 * of one `send()` call for a peer go out together), so the Raft loop never waits for a
 * peer: when the stream's buffer is full (a slow or stopped peer; HTTP/2 flow control)
 * messages wait in the queue, and past `queueMessagesMax` the oldest is dropped. When
 * the stream fails (peer down, restarted, or misaddressed) whatever was in flight is
 * lost and a new stream is opened after an exponential back-off; gRPC reconnects the
 * channel underneath. Raft retries on its own (heartbeats, append re-sends after a
 * reject or timeout, new elections), and newer messages carry newer state, so dropping
 * is always safe.
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
  /** Messages per batch written to the stream. Default 512. */
  readonly batchMessagesMax?: number;
  /** Approximate bytes per batch (one message is always allowed). Default 4 MiB. */
  readonly batchBytesMax?: number;
  /** Back-off before reopening a failed stream: doubles from min to max. Defaults 20 ms and 1000 ms. */
  readonly retryBackoffMinMs?: number;
  readonly retryBackoffMaxMs?: number;
}

/** Per-peer counters, for logs and tests. */
export interface PeerSendStats {
  queued: number;
  /** Messages and batches handed to the stream (not necessarily delivered). */
  sentMessages: number;
  sentBatches: number;
  droppedOverflow: number;
  streamsOpened: number;
  streamErrors: number;
  /** Channels replaced because a connection attempt outlasted RAFT_CONNECT_TIMEOUT_MS. */
  redials: number;
}

type Callback = (err: grpc.ServiceError | null) => void;
type OpenStream = (callback: Callback) => grpc.ClientWritableStream<WireMessageBatch>;

/**
 * Client channel options: reconnect quickly, since a controller restart takes about a second,
 * and ping the peer every second: a stream to a peer cut off by a network partition (no reset,
 * just silence) would otherwise stay open until TCP gives up or the 30 s keepalive fires, and
 * after the heal TCP's retransmission back-off could keep the voters apart for many more
 * seconds. A missed ping closes the connection; the next stream dials afresh.
 */
export const RAFT_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  ...GRPC_CHANNEL_OPTIONS,
  "grpc.initial_reconnect_backoff_ms": 100,
  "grpc.max_reconnect_backoff_ms": 1000,
  "grpc.min_reconnect_backoff_ms": 100,
  "grpc.keepalive_time_ms": 1000,
  "grpc.keepalive_timeout_ms": 2000,
  "grpc.keepalive_permit_without_calls": 1,
  // Each sender owns its connection: a redial (PeerSender.redial) must not get back the
  // shared subchannel whose connection attempt is stuck.
  "grpc.use_local_subchannel_pool": 1,
};

/**
 * How long a stream to a peer that was unreachable may wait for its connection before the
 * sender dials afresh on a new channel. grpc-js has no connect timeout: a connection
 * attempt made while the peer sat behind a network partition waits on the kernel's SYN
 * retransmission back-off (1, 2, 4, 8, 16 s...), which can keep the voters apart for tens
 * of seconds after the partition heals.
 */
export const RAFT_CONNECT_TIMEOUT_MS = 2000;

function messageBytesEstimate(m: Message): number {
  let bytes = 64 + (m.context?.length ?? 0);
  for (const e of m.entries) bytes += 24 + e.data.byteLength;
  if (m.snapshot) bytes += 64 + m.snapshot.data.byteLength;
  return bytes;
}

type ResolvedTransportOptions = Required<Omit<GrpcRaftTransportOptions, "selfId" | "peers" | "logger">>;

class PeerSender {
  private queue: Message[] = [];
  private stream: grpc.ClientWritableStream<WireMessageBatch> | undefined;
  /** False after a write() asked us to wait for 'drain'. */
  private writable = false;
  private closed = false;
  private backoffMs = 0;
  private backoffTimer: NodeJS.Timeout | undefined;
  private reachable = true;
  readonly stats: PeerSendStats = { queued: 0, sentMessages: 0, sentBatches: 0, droppedOverflow: 0, streamsOpened: 0, streamErrors: 0, redials: 0 };
  private client: grpc.Client;
  private openStream: OpenStream;

  constructor(
    private readonly selfId: NodeId,
    private readonly peerId: NodeId,
    private readonly address: string,
    private readonly options: ResolvedTransportOptions,
    private readonly logger: Logger,
  ) {
    this.client = this.dial();
    this.openStream = (this.client as unknown as { send: OpenStream }).send.bind(this.client);
  }

  private dial(): grpc.Client {
    const Ctor = serviceClientCtor(RAFT_PROTO, RAFT_TRANSPORT_SERVICE);
    return new Ctor(this.address, grpc.credentials.createInsecure(), RAFT_CHANNEL_OPTIONS);
  }

  /** Drops the stream and the channel whose connection attempt is stuck, and dials anew after a short back-off. */
  private redial(): void {
    const stream = this.stream;
    this.stream = undefined; // its end callback is then ignored
    this.writable = false;
    stream?.cancel();
    this.client.close();
    this.client = this.dial();
    this.openStream = (this.client as unknown as { send: OpenStream }).send.bind(this.client);
    this.stats.redials += 1;
    this.logger.debug({ peer: this.peerId, address: this.address }, "raft peer connection attempt stuck; dialing again");
    this.backoffTimer = setTimeout(() => {
      this.backoffTimer = undefined;
      this.flush();
    }, this.options.retryBackoffMinMs);
  }

  enqueue(message: Message): void {
    if (this.closed) return;
    this.queue.push(message);
    if (this.queue.length > this.options.queueMessagesMax) {
      this.queue.shift();
      this.stats.droppedOverflow += 1;
    }
    this.stats.queued = this.queue.length;
  }

  /** Writes queued messages while the stream takes them. */
  flush(): void {
    if (this.closed || this.backoffTimer !== undefined || this.queue.length === 0) return;
    if (this.stream === undefined) this.open();
    const stream = this.stream!;
    while (this.queue.length > 0 && this.writable) {
      let count = 0;
      let bytes = 0;
      while (count < this.queue.length && count < this.options.batchMessagesMax) {
        const next = messageBytesEstimate(this.queue[count]!);
        if (count > 0 && bytes + next > this.options.batchBytesMax) break;
        bytes += next;
        count += 1;
      }
      const batch = this.queue.splice(0, count);
      this.writable = stream.write({ from: this.selfId, to: this.peerId, messages: batch.map(messageToWire) });
      this.stats.sentMessages += batch.length;
      this.stats.sentBatches += 1;
      this.logger.trace({ peer: this.peerId, messages: batch.length, bytes }, "raft batch written");
    }
    this.stats.queued = this.queue.length;
  }

  private open(): void {
    const stream = this.openStream((err) => this.onStreamEnd(stream, err));
    // Errors arrive through the callback; this listener only keeps an 'error' event
    // from becoming an uncaught exception.
    stream.on("error", () => undefined);
    stream.on("drain", () => {
      if (this.stream !== stream) return;
      this.writable = true;
      this.flush();
    });
    this.stream = stream;
    this.writable = true;
    this.stats.streamsOpened += 1;
    this.client.getChannel().getConnectivityState(true);
    if (!this.reachable) this.watchReconnect(stream, Date.now());
  }

  /**
   * Logs "reachable again" and resets the back-off once the channel is connected; redials
   * when `stream` (opened at `openedAtMs`) is still waiting for a connection after
   * RAFT_CONNECT_TIMEOUT_MS.
   */
  private watchReconnect(stream: grpc.ClientWritableStream<WireMessageBatch>, openedAtMs: number): void {
    if (this.closed || this.stream !== stream) return;
    const channel = this.client.getChannel();
    const state = channel.getConnectivityState(false);
    if (state === grpc.connectivityState.READY) {
      this.reachable = true;
      this.backoffMs = 0;
      this.logger.info({ peer: this.peerId, address: this.address }, "raft peer reachable again");
      return;
    }
    if (state === grpc.connectivityState.SHUTDOWN) return;
    const deadlineMs = openedAtMs + RAFT_CONNECT_TIMEOUT_MS;
    if (Date.now() >= deadlineMs) {
      this.redial();
      return;
    }
    // Bounded: each wait ends at a state change or at the connect deadline; a new stream
    // (after the next failure or redial) starts a new watch.
    channel.watchConnectivityState(state, deadlineMs, () => this.watchReconnect(stream, openedAtMs));
  }

  private onStreamEnd(stream: grpc.ClientWritableStream<WireMessageBatch>, err: grpc.ServiceError | null): void {
    if (this.stream !== stream) return;
    this.stream = undefined;
    this.writable = false;
    if (this.closed) return;
    if (!err) {
      // The receiver ended the stream without an error: open a new one on the next flush.
      this.flush();
      return;
    }
    this.stats.streamErrors += 1;
    const error = fromServiceError(err, `raft stream to node ${this.peerId} at ${this.address}`);
    if (this.reachable) {
      this.reachable = false;
      // A misaddressed peer (INVALID_REQUEST) is a configuration problem worth a warning;
      // a peer that is down is routine during restarts.
      const level = FlotillaError.is(error, "INVALID_REQUEST") ? "warn" : "info";
      this.logger[level]({ peer: this.peerId, address: this.address, err: error.message }, "raft peer unreachable, dropping messages until it answers");
    } else {
      this.logger.debug({ peer: this.peerId, err: error.message }, "raft stream failed again");
    }
    this.backoffMs = Math.min(this.options.retryBackoffMaxMs, Math.max(this.options.retryBackoffMinMs, this.backoffMs * 2));
    this.backoffTimer = setTimeout(() => {
      this.backoffTimer = undefined;
      this.flush();
    }, this.backoffMs);
  }

  close(): void {
    this.closed = true;
    this.queue = [];
    if (this.backoffTimer) clearTimeout(this.backoffTimer);
    this.backoffTimer = undefined;
    this.stream?.end();
    this.stream = undefined;
    this.client.close();
  }
}

export class GrpcRaftTransport implements RaftTransport {
  private readonly senders = new Map<NodeId, PeerSender>();
  private readonly logger: Logger;

  constructor(options: GrpcRaftTransportOptions) {
    this.logger = options.logger;
    const resolved: ResolvedTransportOptions = {
      queueMessagesMax: options.queueMessagesMax ?? 4096,
      batchMessagesMax: options.batchMessagesMax ?? 512,
      batchBytesMax: options.batchBytesMax ?? 4 * 1024 * 1024,
      retryBackoffMinMs: options.retryBackoffMinMs ?? 20,
      retryBackoffMaxMs: options.retryBackoffMaxMs ?? 1000,
    };
    for (const [peerId, address] of options.peers) {
      if (peerId === options.selfId) continue;
      this.senders.set(peerId, new PeerSender(options.selfId, peerId, address, resolved, options.logger));
    }
  }

  send(messages: readonly Message[]): void {
    const touched = new Set<PeerSender>();
    for (const message of messages) {
      const sender = this.senders.get(message.to);
      if (sender) {
        sender.enqueue(message);
        touched.add(sender);
      } else this.logger.warn({ to: message.to, type: message.type }, "raft message to a node with no known address dropped");
    }
    for (const sender of touched) sender.flush();
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
    send(call: grpc.ServerReadableStream<WireMessageBatch, object>, callback: grpc.sendUnaryData<object>) {
      let answered = false;
      const answer = (err: Partial<grpc.ServiceError> | null): void => {
        if (answered) return;
        answered = true;
        if (err) callback(err);
        else callback(null, {});
      };
      call.on("data", (batch: WireMessageBatch) => {
        if (answered) return;
        if (batch.to !== options.selfId) {
          answer(toServiceError(new FlotillaError("INVALID_REQUEST", `raft batch from node ${batch.from} is addressed to node ${batch.to}, but this is node ${options.selfId}`)));
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
      });
      call.on("end", () => answer(null));
      // The sender went away (crash, restart): nothing to answer.
      call.on("error", () => {
        answered = true;
      });
    },
  });
}

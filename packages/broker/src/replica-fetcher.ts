/**
 * Followers pull from leaders (Kafka's ReplicaFetcherThread / AbstractFetcherThread).
 * One fetcher per source broker runs one long-poll Fetch at a time for every partition
 * this broker follows from that leader (replica_id = own id, current_leader_epoch = the
 * epoch it follows in, fetch_offset = its log end offset), appends what comes back with
 * appendAsFollower and moves its HW to min(leader's HW, own LEO).
 *
 * A partition added in a new leader epoch first truncates (KIP-101/279): the follower asks
 * the leader where its own latest epoch ends (OffsetForLeaderEpoch) and truncates there.
 * When the leader names an older epoch that the follower lacks, it asks again about that
 * one, a bounded number of rounds. A follower without epochs (an empty log or one written
 * before epochs) truncates to its HW, Kafka's fallback.
 *
 * Errors: OFFSET_OUT_OF_RANGE below the leader's log start empties the log and restarts at
 * the leader's log start; otherwise it truncates again. FENCED_LEADER_EPOCH,
 * NOT_LEADER_OR_FOLLOWER and the like hold the partition back for the backoff (the next
 * image re-adds it in the new epoch). A failed call drops the connection and backs off.
 */
import * as grpc from "@grpc/grpc-js";
import { CALL_CANCELLED, FlotillaError, errorNameOf } from "@flotilla/common";
import type { Logger } from "@flotilla/common/logger";
import {
  BROKER_PROTO,
  BROKER_SERVICE,
  GRPC_CHANNEL_OPTIONS,
  PipelineChannel,
  fromServiceError,
  serviceClientCtor,
  type FetchRequest,
  type FetchResponse,
  type OffsetForLeaderEpochRequest,
  type OffsetForLeaderEpochResponse,
} from "@flotilla/protocol";
import { UNDEFINED_EPOCH } from "@flotilla/storage";
import type { Partition } from "./partition.js";

/** The calls a follower makes to a leader. */
export interface ReplicaFetchClient {
  fetch(request: FetchRequest, signal: AbortSignal): Promise<FetchResponse>;
  offsetForLeaderEpoch(request: OffsetForLeaderEpochRequest, signal: AbortSignal): Promise<OffsetForLeaderEpochResponse>;
  close(): void;
}

export interface LeaderEndpoint {
  readonly brokerId: number;
  readonly host: string;
  readonly port: number;
}

export type ReplicaClientFactory = (leader: LeaderEndpoint) => ReplicaFetchClient;

export interface ReplicaFetcherConfig {
  /** replica.fetch.response.max.bytes: bound on one fetch response. */
  readonly fetchResponseMaxBytes: number;
  /** replica.fetch.max.bytes: bound per partition. */
  readonly fetchMaxBytes: number;
  /** replica.fetch.wait.max.ms: how long the leader may hold a fetch. */
  readonly fetchWaitMaxMs: number;
  /** replica.fetch.backoff.ms: pause after an error. */
  readonly fetchBackoffMs: number;
}

/** Kafka's defaults. */
export const REPLICA_FETCHER_DEFAULTS: ReplicaFetcherConfig = {
  fetchResponseMaxBytes: 10 * 1024 * 1024,
  fetchMaxBytes: 1024 * 1024,
  fetchWaitMaxMs: 500,
  fetchBackoffMs: 1000,
};

/** Rounds of OffsetForLeaderEpoch for one partition before giving up until the next try. */
const TRUNCATION_ROUNDS_MAX = 32;
/** Extra time over fetchWaitMaxMs before a fetch call is abandoned. */
const CALL_DEADLINE_SLACK_MS = 10_000;

interface FetchState {
  readonly partition: Partition;
  /** The leader epoch this broker follows the partition in. */
  readonly leaderEpoch: number;
  phase: "truncating" | "fetching";
  /** Held back (after an error) until this monotonic time. */
  delayedUntilMs: number;
}

/** gRPC implementation: the leader's Broker service at its advertised endpoint. */
export function grpcReplicaClientFactory(leader: LeaderEndpoint): ReplicaFetchClient {
  const Ctor = serviceClientCtor(BROKER_PROTO, BROKER_SERVICE);
  const host = leader.host.includes(":") ? `[${leader.host}]` : leader.host;
  const client = new Ctor(`${host}:${leader.port}`, grpc.credentials.createInsecure(), GRPC_CHANNEL_OPTIONS) as grpc.Client & Record<string, unknown>;
  const call = <Req, Res>(method: string, request: Req, signal: AbortSignal, deadlineMs: number): Promise<Res> => {
    const fn = client[method] as (req: Req, meta: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: Res) => void) => grpc.ClientUnaryCall;
    return new Promise((resolve, reject) => {
      // The signal outlives the call (it is the fetcher's, renewed only on a wake-up), so the
      // listener goes when the call ends: otherwise each fetch would leave one behind.
      const onAbort = (): void => c.cancel();
      const c = fn.call(client, request, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (err, res) => {
        signal.removeEventListener("abort", onAbort);
        if (err) reject(fromServiceError(err, method));
        else resolve(res);
      });
      signal.addEventListener("abort", onAbort, { once: true });
    });
  };
  // Fetches go on the Pipeline stream: a follower fetches all the time, and a message on an
  // open stream costs a fraction of a unary call.
  const pipeline = new PipelineChannel(client, `leader ${leader.host}:${leader.port}`);
  return {
    fetch: (r, signal) => pipeline.fetch(r, { timeoutMs: r.maxWaitMs + CALL_DEADLINE_SLACK_MS, signal }),
    offsetForLeaderEpoch: (r, signal) => call<OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse>("OffsetForLeaderEpoch", r, signal, CALL_DEADLINE_SLACK_MS),
    close: () => {
      pipeline.close();
      client.close();
    },
  };
}

export interface ReplicaFetcherOptions {
  readonly nodeId: number;
  readonly config: ReplicaFetcherConfig;
  readonly clientFactory: ReplicaClientFactory;
  /** The leader's endpoint from the current image; undefined when it has none. */
  readonly resolveEndpoint: (brokerId: number) => LeaderEndpoint | undefined;
  readonly monotonicMs: () => number;
  readonly logger: Logger;
}

/** The fetcher of the partitions this broker follows from one leader. */
export class ReplicaFetcher {
  private readonly states = new Map<string, FetchState>();
  private client: ReplicaFetchClient | undefined;
  private clientEndpoint: LeaderEndpoint | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  /** Aborts the call in flight or the pause (a partition came or went, or stop). */
  private interrupt = new AbortController();
  private readonly logger: Logger;

  constructor(
    readonly leaderId: number,
    private readonly options: ReplicaFetcherOptions,
  ) {
    this.logger = options.logger.child({ leader: leaderId });
  }

  get partitionCount(): number {
    return this.states.size;
  }

  has(p: Partition, leaderEpoch: number): boolean {
    const s = this.states.get(p.key);
    return s !== undefined && s.partition === p && s.leaderEpoch === leaderEpoch;
  }

  /** Follows `p` in `leaderEpoch`, starting with truncation. */
  add(p: Partition, leaderEpoch: number): void {
    this.states.set(p.key, { partition: p, leaderEpoch, phase: "truncating", delayedUntilMs: 0 });
    this.wake();
    this.running ??= this.run();
  }

  remove(p: Partition): void {
    const s = this.states.get(p.key);
    if (s && s.partition === p) {
      this.states.delete(p.key);
      this.wake();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake();
    await this.running;
    this.client?.close();
    this.client = undefined;
  }

  private wake(): void {
    this.interrupt.abort(CALL_CANCELLED);
    this.interrupt = new AbortController();
  }

  private current(s: FetchState): boolean {
    return this.states.get(s.partition.key) === s && s.partition.role === "follower" && s.partition.leaderEpoch === s.leaderEpoch;
  }

  private pause(ms: number): Promise<void> {
    const signal = this.interrupt.signal;
    return new Promise((resolve) => {
      // stop() may have come between two pauses: its wake() aborted the previous signal, not this one.
      if (signal.aborted || this.stopped) return resolve();
      const timer = setTimeout(done, Math.max(0, ms));
      function done() {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        resolve();
      }
      signal.addEventListener("abort", done, { once: true });
    });
  }

  private connect(): ReplicaFetchClient {
    const endpoint = this.options.resolveEndpoint(this.leaderId);
    if (!endpoint) throw new FlotillaError("LEADER_NOT_AVAILABLE", `broker ${this.leaderId} has no endpoint in the metadata image`);
    if (this.client && this.clientEndpoint && this.clientEndpoint.host === endpoint.host && this.clientEndpoint.port === endpoint.port) return this.client;
    this.client?.close();
    this.client = this.options.clientFactory(endpoint);
    this.clientEndpoint = endpoint;
    return this.client;
  }

  private async run(): Promise<void> {
    const { config } = this.options;
    while (!this.stopped) {
      // In-process transports can answer without I/O: yield so the loop never starves timers.
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (this.states.size === 0) {
        // Idle: wait for a partition (bounded pause, re-checked).
        await this.pause(config.fetchWaitMaxMs);
        continue;
      }
      const signal = this.interrupt.signal;
      try {
        const client = this.connect();
        const now = this.options.monotonicMs();
        const ready = [...this.states.values()].filter((s) => s.delayedUntilMs <= now);
        const truncating = ready.filter((s) => s.phase === "truncating");
        if (truncating.length > 0) await this.truncate(client, truncating, signal);
        const fetching = ready.filter((s) => s.phase === "fetching" && this.current(s));
        if (fetching.length === 0) {
          const next = Math.min(...[...this.states.values()].map((s) => s.delayedUntilMs));
          await this.pause(Math.min(config.fetchBackoffMs, Math.max(0, next - this.options.monotonicMs())));
          continue;
        }
        await this.fetchOnce(client, fetching, signal);
      } catch (err) {
        if (this.stopped) break;
        if (signal.aborted) continue; // interrupted on purpose: a partition came or went
        this.logger.warn({ err }, "replica fetch failed; backing off");
        this.client?.close();
        this.client = undefined;
        await this.pause(config.fetchBackoffMs);
      }
    }
  }

  private delay(s: FetchState, why: string, extra: Record<string, unknown> = {}): void {
    s.delayedUntilMs = this.options.monotonicMs() + this.options.config.fetchBackoffMs;
    this.logger.info({ topic: s.partition.topic, partition: s.partition.partition, leaderEpoch: s.leaderEpoch, ...extra }, why);
  }

  private async fetchOnce(client: ReplicaFetchClient, fetching: FetchState[], signal: AbortSignal): Promise<void> {
    const { config } = this.options;
    const byTopic = new Map<string, FetchState[]>();
    for (const s of fetching) {
      const list = byTopic.get(s.partition.topic) ?? [];
      list.push(s);
      byTopic.set(s.partition.topic, list);
    }
    const request: FetchRequest = {
      replicaId: this.options.nodeId,
      maxWaitMs: config.fetchWaitMaxMs,
      minBytes: 1,
      maxBytes: config.fetchResponseMaxBytes,
      topics: [...byTopic].map(([name, list]) => ({
        name,
        partitions: list.map((s) => ({ partition: s.partition.partition, fetchOffset: s.partition.log.logEndOffset, partitionMaxBytes: config.fetchMaxBytes, currentLeaderEpoch: s.leaderEpoch })),
      })),
    };
    const response = await client.fetch(request, signal);
    for (const t of response.topics) {
      for (const r of t.partitions) {
        const s = byTopic.get(t.name)?.find((x) => x.partition.partition === r.partition);
        if (!s || !this.current(s)) continue;
        const fetchOffset = request.topics.find((x) => x.name === t.name)!.partitions.find((x) => x.partition === r.partition)!.fetchOffset;
        if (s.partition.log.logEndOffset !== fetchOffset) continue; // the log moved (truncated) meanwhile
        if (r.errorCode === 0) {
          // The follower's log end offset is a batch boundary of the leader's log (both hold
          // the same batches below it), so the first batch starts exactly at fetchOffset.
          await s.partition.appendAsFollower(r.records, r.highWatermark);
          continue;
        }
        const name = errorNameOf(r.errorCode);
        if (name === "OFFSET_OUT_OF_RANGE") {
          if (r.logStartOffset >= 0 && fetchOffset < r.logStartOffset) {
            this.logger.warn({ topic: t.name, partition: r.partition, fetchOffset, leaderLogStartOffset: r.logStartOffset }, "behind the leader's log start: restarting the log there");
            await s.partition.truncateFullyAndStartAt(r.logStartOffset);
          } else {
            // Past the leader's end: truncate again, after the backoff so that a leader
            // that keeps answering this cannot spin the loop.
            s.phase = "truncating";
            this.delay(s, "fetch offset out of the leader's range; truncating again", { fetchOffset, message: r.errorMessage });
          }
          continue;
        }
        this.delay(s, "leader refused the fetch; holding the partition back", { error: name, message: r.errorMessage });
      }
    }
  }

  private async truncate(client: ReplicaFetchClient, states: FetchState[], signal: AbortSignal): Promise<void> {
    for (const s of states) {
      if (!this.current(s)) continue;
      const p = s.partition;
      const cache = p.log.leaderEpochCache;
      let epoch = cache.latestEpoch;
      if (epoch === UNDEFINED_EPOCH) {
        await p.truncateTo(p.highWatermark);
        s.phase = "fetching";
        continue;
      }
      for (let round = 0; round < TRUNCATION_ROUNDS_MAX; round++) {
        const response = await client.offsetForLeaderEpoch(
          { replicaId: this.options.nodeId, topics: [{ name: p.topic, partitions: [{ partition: p.partition, currentLeaderEpoch: s.leaderEpoch, leaderEpoch: epoch }] }] },
          signal,
        );
        if (!this.current(s)) break;
        const answer = response.topics.find((t) => t.name === p.topic)?.partitions.find((x) => x.partition === p.partition);
        if (!answer) throw new FlotillaError("INVALID_REQUEST", `leader ${this.leaderId} did not answer OffsetForLeaderEpoch for ${p.key}`);
        if (answer.errorCode !== 0) {
          this.delay(s, "leader refused OffsetForLeaderEpoch; holding the partition back", { error: errorNameOf(answer.errorCode), message: answer.errorMessage });
          break;
        }
        const before = p.log.logEndOffset;
        if (answer.endOffset < 0) {
          // The leader knows no epoch at or below ours: Kafka falls back to the HW.
          await p.truncateTo(p.highWatermark);
          s.phase = "fetching";
        } else {
          const mine = cache.endOffsetFor(answer.leaderEpoch, p.log.logEndOffset);
          if (mine.epoch === answer.leaderEpoch || mine.epoch === UNDEFINED_EPOCH) {
            const endOffset = mine.epoch === UNDEFINED_EPOCH ? p.log.logEndOffset : mine.endOffset;
            await p.truncateTo(Math.min(answer.endOffset, endOffset));
            s.phase = "fetching";
          } else {
            // The leader's epoch is one this log lacks: cut to where ours ends and ask about our previous one.
            await p.truncateTo(Math.min(answer.endOffset, mine.endOffset));
            epoch = mine.epoch;
          }
        }
        if (p.log.logEndOffset !== before) {
          this.logger.info({ topic: p.topic, partition: p.partition, leaderEpoch: s.leaderEpoch, askedEpoch: epoch, leaderAnswer: answer, previousLogEndOffset: before, logEndOffset: p.log.logEndOffset }, "truncated the log to the leader's epoch end");
        }
        if (s.phase === "fetching") break;
      }
    }
  }
}

/** One fetcher per leader broker; partitions move between them as leadership changes. */
export class ReplicaFetcherManager {
  private readonly fetchers = new Map<number, ReplicaFetcher>();
  private readonly followedFrom = new Map<Partition, number>();
  private closed = false;

  constructor(private readonly options: ReplicaFetcherOptions) {}

  /** Follows `p` from its current leader in its current epoch (no-op if already so). */
  follow(p: Partition): void {
    if (this.closed) return;
    const leaderId = p.leaderId;
    const previous = this.followedFrom.get(p);
    if (previous === leaderId && this.fetchers.get(leaderId)?.has(p, p.leaderEpoch)) return;
    if (previous !== undefined && previous !== leaderId) this.unfollow(p);
    let fetcher = this.fetchers.get(leaderId);
    if (!fetcher) this.fetchers.set(leaderId, (fetcher = new ReplicaFetcher(leaderId, this.options)));
    fetcher.add(p, p.leaderEpoch);
    this.followedFrom.set(p, leaderId);
  }

  unfollow(p: Partition): void {
    const leaderId = this.followedFrom.get(p);
    if (leaderId === undefined) return;
    this.followedFrom.delete(p);
    const fetcher = this.fetchers.get(leaderId);
    if (!fetcher) return;
    fetcher.remove(p);
    if (fetcher.partitionCount === 0) {
      this.fetchers.delete(leaderId);
      void fetcher.stop();
    }
  }

  /** Leader ids with a running fetcher (tests, diagnostics). */
  leaders(): number[] {
    return [...this.fetchers.keys()].sort((a, b) => a - b);
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.fetchers.values()];
    this.fetchers.clear();
    this.followedFrom.clear();
    await Promise.all(all.map((f) => f.stop()));
  }
}

/**
 * Client of the RaftTestMachine service, for integration tests and the benchmark. It
 * follows NOT_CONTROLLER leader hints and retries retriable errors within a bounded
 * number of attempts and a deadline. Retries make proposals at-least-once: an entry
 * whose answer was lost (network error, timeout, shutdown) may commit and then be
 * proposed again.
 */
import * as grpc from "@grpc/grpc-js";
import { FlotillaError } from "@flotilla/common";
import { sleepMs } from "@flotilla/common/node";
import { GRPC_CHANNEL_OPTIONS, fromServiceError, serviceClientCtor } from "@flotilla/protocol";
import type { ProposeResponse, ReadConsistency, ReadResponse, StatusResponse } from "./test-machine-service.js";
import { RAFT_PROTO, RAFT_TEST_MACHINE_SERVICE } from "./wire.js";

type Callback<T> = (err: grpc.ServiceError | null, value?: T) => void;
type Method<Req, Res> = (req: Req, options: grpc.CallOptions, callback: Callback<Res>) => void;

interface RawClient extends grpc.Client {
  propose: Method<{ data: Uint8Array; timeoutMs: number }, ProposeResponse>;
  read: Method<{ consistency: ReadConsistency; fromPosition: number; maxItems: number; timeoutMs: number }, ReadResponse>;
  status: Method<object, StatusResponse>;
}

export interface RetryOptions {
  /** Attempts in all, over every node. Default 50. */
  attemptsMax?: number;
  /** Give up after this long. Default 15000 ms. */
  deadlineMs?: number;
  /** Pause between attempts that found no leader. Default 50 ms. */
  backoffMs?: number;
}

export class RaftTestMachineClient {
  private readonly clients = new Map<string, RawClient>();
  /** Where the last successful proposal went: the leader, most likely. */
  private leaderGuess: string | undefined;

  /** `addresses`: every node's "host:port". `callTimeoutMs` bounds one call (default 10 s). */
  constructor(
    private readonly addresses: readonly string[],
    private readonly callTimeoutMs = 10_000,
  ) {
    if (addresses.length === 0) throw new FlotillaError("INVALID_CONFIG", "no node addresses given");
  }

  private client(address: string): RawClient {
    let c = this.clients.get(address);
    if (!c) {
      const Ctor = serviceClientCtor(RAFT_PROTO, RAFT_TEST_MACHINE_SERVICE);
      c = new Ctor(address, grpc.credentials.createInsecure(), {
        ...GRPC_CHANNEL_OPTIONS,
        "grpc.initial_reconnect_backoff_ms": 100,
        "grpc.max_reconnect_backoff_ms": 1000,
      }) as unknown as RawClient;
      this.clients.set(address, c);
    }
    return c;
  }

  private call<Req, Res>(address: string, pick: (c: RawClient) => Method<Req, Res>, req: Req, timeoutMs = this.callTimeoutMs): Promise<Res> {
    const c = this.client(address);
    return new Promise((resolve, reject) => {
      pick(c).call(c, req, { deadline: Date.now() + timeoutMs }, (err, value) => {
        if (err) reject(fromServiceError(err, address));
        else resolve(value as Res);
      });
    });
  }

  status(address: string): Promise<StatusResponse> {
    return this.call(address, (c) => c.status, {}, Math.min(this.callTimeoutMs, 2000));
  }

  /** One Read call to one node. */
  read(address: string, consistency: ReadConsistency, fromPosition = 0, maxItems = 0): Promise<ReadResponse> {
    return this.call(address, (c) => c.read, { consistency, fromPosition, maxItems, timeoutMs: 0 });
  }

  /** The whole list of one node, page by page (bounded by the list's size). */
  async readAll(address: string, consistency: ReadConsistency): Promise<ReadResponse> {
    const first = await this.read(address, consistency);
    const items = [...first.items];
    while (items.length < first.total) {
      // LOCAL pages after the first: the list only grows, so positions stay valid.
      const page = await this.read(address, "LOCAL", items.length);
      if (page.items.length === 0) break;
      items.push(...page.items);
    }
    return { applied: first.applied, total: first.total, items: items.slice(0, first.total) };
  }

  /** One Propose call to one node, no retry: errors (e.g. NOT_CONTROLLER with its hint) come back as they are. */
  proposeAt(address: string, data: Uint8Array): Promise<ProposeResponse> {
    return this.call(address, (c) => c.propose, { data, timeoutMs: 0 });
  }

  /** Proposes `data`, following leader hints; see the class comment on retries. */
  async propose(data: Uint8Array, retry: RetryOptions = {}): Promise<ProposeResponse> {
    return this.withLeader((address) => this.call(address, (c) => c.propose, { data, timeoutMs: 0 }), retry);
  }

  /** Linearizable read of the whole list at the leader. */
  async readLinearizable(retry: RetryOptions = {}): Promise<ReadResponse> {
    return this.withLeader((address) => this.readAll(address, "LINEARIZABLE"), retry);
  }

  /** Asks every node for its status; a node that does not answer maps to its error. */
  async statuses(): Promise<Map<string, StatusResponse | FlotillaError>> {
    const out = new Map<string, StatusResponse | FlotillaError>();
    await Promise.all(
      this.addresses.map(async (a) => {
        out.set(a, await this.status(a).catch((err: unknown) => fromServiceError(err, a)));
      }),
    );
    return out;
  }

  private async withLeader<T>(fn: (address: string) => Promise<T>, retry: RetryOptions): Promise<T> {
    const attemptsMax = retry.attemptsMax ?? 50;
    const deadline = Date.now() + (retry.deadlineMs ?? 15_000);
    const backoffMs = retry.backoffMs ?? 50;
    let address = this.leaderGuess ?? this.addresses[0]!;
    let next = 0;
    let lastError: FlotillaError | undefined;
    for (let attempt = 0; attempt < attemptsMax && Date.now() < deadline; attempt++) {
      try {
        const result = await fn(address);
        this.leaderGuess = address;
        return result;
      } catch (err) {
        const error = fromServiceError(err);
        lastError = error;
        if (!error.retriable) throw error;
        if (error.errorName === "NOT_CONTROLLER" && error.leaderHint && error.leaderHint !== address) {
          address = error.leaderHint;
          continue;
        }
        // No usable hint: try the next node after a pause (an election may be running).
        address = this.addresses[next++ % this.addresses.length]!;
        await sleepMs(backoffMs);
      }
    }
    throw new FlotillaError("REQUEST_TIMED_OUT", `no leader answered within ${attemptsMax} attempts / the deadline; last error: ${lastError?.message ?? "none"}`, { cause: lastError });
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}

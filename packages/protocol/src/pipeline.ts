/**
 * Both sides of the Broker service's Pipeline stream (see broker.proto): Produce and
 * Fetch as messages on one long-lived bidirectional stream per connection, matched to their
 * answers by correlation id. A unary gRPC call costs a new HTTP/2 stream, its headers and
 * trailers, and a deadline timer in grpc-js: about 4x the CPU of one message on an open
 * stream, and at 16 KiB batches the call rate is what bounds an RF 3 cluster on a small
 * machine. The stream also keeps the order the requests were written in, which unary calls
 * on one HTTP/2 connection do not.
 *
 * Failure follows Kafka's connection model: when the stream breaks (the broker went away,
 * the connection reset), every request in flight on it fails with NETWORK_EXCEPTION and the
 * next request opens a new stream. A request that gets no answer within its timeout fails
 * with REQUEST_TIMED_OUT and takes the stream down with it, as Kafka closes a connection
 * after request.timeout.ms: a stream that stopped answering one request is not trusted with
 * the next.
 */
import * as grpc from "@grpc/grpc-js";
import { CALL_CANCELLED, FlotillaError, errorNameOf } from "@flotilla/common";
import type { Logger } from "@flotilla/common/logger";
import type { FetchRequest, FetchResponse, ProduceRequest, ProduceResponse } from "./broker-api.js";
import { fromServiceError } from "./grpc-errors.js";

/** Requests a broker takes on one stream before it stops reading it until one is answered. */
export const PIPELINE_INFLIGHT_MAX = 64;

export type PipelineRequest =
  | { correlationId: number; body: "produce"; produce: ProduceRequest }
  | { correlationId: number; body: "fetch"; fetch: FetchRequest }
  | { correlationId: number; body: "cancel"; cancel: number };

export interface PipelineError {
  errorCode: number;
  errorMessage: string;
  leaderHint: string;
}

export type PipelineResponse =
  | { correlationId: number; body: "produce"; produce: ProduceResponse }
  | { correlationId: number; body: "fetch"; fetch: FetchResponse }
  | { correlationId: number; body: "error"; error: PipelineError };

/** A request that failed as a whole, as the answer's `error` (the broker side). */
export function toPipelineError(err: unknown): PipelineError {
  const fe = err instanceof FlotillaError ? err : new FlotillaError("UNKNOWN_SERVER_ERROR", err instanceof Error ? err.message : String(err));
  return { errorCode: fe.code, errorMessage: fe.message, leaderHint: fe.leaderHint ?? "" };
}

/** An answer's `error` back to a FlotillaError (the client side), with `where` in front of its detail. */
export function fromPipelineError(e: PipelineError, where: string): FlotillaError {
  const name = errorNameOf(e.errorCode);
  const detail = e.errorMessage.replace(new RegExp(`^${name}: `), "");
  return new FlotillaError(name, `${where}: ${detail}`, e.leaderHint ? { leaderHint: e.leaderHint } : {});
}

export interface PipelineCallOptions {
  timeoutMs: number;
  signal?: AbortSignal;
}

interface Pending {
  readonly kind: "produce" | "fetch";
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: FlotillaError) => void;
  readonly timer: NodeJS.Timeout;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: () => void;
  readonly stream: grpc.ClientDuplexStream<PipelineRequest, PipelineResponse>;
}

type PipelineMethod = (metadata: grpc.Metadata, options: grpc.CallOptions) => grpc.ClientDuplexStream<PipelineRequest, PipelineResponse>;

/** The Pipeline stream of one Broker service client (one HTTP/2 channel), opened on first use. */
export class PipelineChannel {
  private stream: grpc.ClientDuplexStream<PipelineRequest, PipelineResponse> | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;

  /** `client` is a Broker service client; `address` names the broker in errors. */
  constructor(
    private readonly client: grpc.Client,
    private readonly address: string,
  ) {}

  produce(req: ProduceRequest, options: PipelineCallOptions): Promise<ProduceResponse> {
    return this.call("produce", req, options) as Promise<ProduceResponse>;
  }

  fetch(req: FetchRequest, options: PipelineCallOptions): Promise<FetchResponse> {
    return this.call("fetch", req, options) as Promise<FetchResponse>;
  }

  /** Requests sent and not yet answered, failed or abandoned. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Fails what is in flight with NETWORK_EXCEPTION and ends the stream; later calls fail at once. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.breakStream(this.stream, new FlotillaError("NETWORK_EXCEPTION", `pipeline to ${this.address} is closed`));
  }

  /** "Produce to host:port": how errors name a request. */
  private where(kind: "produce" | "fetch"): string {
    return `${kind === "produce" ? "Produce" : "Fetch"} to ${this.address}`;
  }

  private call(kind: "produce" | "fetch", body: ProduceRequest | FetchRequest, options: PipelineCallOptions): Promise<unknown> {
    const where = this.where(kind);
    if (this.closed) return Promise.reject(new FlotillaError("NETWORK_EXCEPTION", `${where}: the connection is closed`));
    if (options.signal?.aborted) return Promise.reject(new FlotillaError("NETWORK_EXCEPTION", `${where}: cancelled before it was sent`));
    let stream: grpc.ClientDuplexStream<PipelineRequest, PipelineResponse>;
    try {
      stream = this.open();
    } catch (err) {
      // A client without the stream (or one grpc-js refuses to open) fails this call, as a rejection like any other.
      return Promise.reject(err instanceof FlotillaError ? err : new FlotillaError("NETWORK_EXCEPTION", `${where}: could not open the pipeline: ${String(err)}`, { cause: err }));
    }
    const correlationId = this.nextId++;
    return new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (!this.settle(correlationId)) return;
        reject(new FlotillaError("REQUEST_TIMED_OUT", `${where}: no answer in ${options.timeoutMs} ms`));
        // Like Kafka after request.timeout.ms: the connection that did not answer is dropped,
        // and what else was waiting on it fails and is retried on a new one.
        this.breakStream(stream, new FlotillaError("NETWORK_EXCEPTION", `${where}: the stream was dropped after a request on it timed out`));
      }, options.timeoutMs);
      const onAbort = (): void => {
        if (!this.settle(correlationId)) return;
        reject(new FlotillaError("NETWORK_EXCEPTION", `${where}: cancelled by the caller`));
        if (this.stream === stream) stream.write({ correlationId: this.nextId++, body: "cancel", cancel: correlationId });
      };
      options.signal?.addEventListener("abort", onAbort, { once: true });
      this.pending.set(correlationId, { kind, resolve, reject, timer, signal: options.signal, onAbort, stream });
      const request = (kind === "produce" ? { correlationId, body: kind, produce: body } : { correlationId, body: kind, fetch: body }) as PipelineRequest;
      stream.write(request);
    });
  }

  /** Removes a pending request with its timer and abort listener and returns it; undefined when it was already settled. */
  private settle(correlationId: number): Pending | undefined {
    const p = this.pending.get(correlationId);
    if (!p) return undefined;
    this.pending.delete(correlationId);
    clearTimeout(p.timer);
    p.signal?.removeEventListener("abort", p.onAbort);
    return p;
  }

  private open(): grpc.ClientDuplexStream<PipelineRequest, PipelineResponse> {
    if (this.stream) return this.stream;
    const method = (this.client as unknown as Record<string, PipelineMethod>)["Pipeline"];
    if (typeof method !== "function") throw new FlotillaError("UNSUPPORTED_VERSION", `the Broker service client for ${this.address} has no Pipeline method`);
    const stream = method.call(this.client, new grpc.Metadata(), {});
    this.stream = stream;
    stream.on("data", (res: PipelineResponse) => this.onResponse(res));
    stream.on("error", (err: unknown) => this.breakStream(stream, fromServiceError(err, `pipeline to ${this.address}`)));
    // The broker ended the stream (it is shutting down): what it did not answer will not be.
    stream.on("end", () => this.breakStream(stream, new FlotillaError("NETWORK_EXCEPTION", `pipeline to ${this.address}: the broker ended the stream`)));
    return stream;
  }

  private onResponse(res: PipelineResponse): void {
    const p = this.settle(res.correlationId);
    if (!p) return; // abandoned (timed out or cancelled) before its answer came
    const where = this.where(p.kind);
    if (res.body === "error") p.reject(fromPipelineError(res.error, where));
    else if (res.body !== p.kind) p.reject(new FlotillaError("UNKNOWN_SERVER_ERROR", `${where}: the answer is a ${res.body} answer`));
    else p.resolve(res.body === "produce" ? res.produce : res.fetch);
  }

  /** Fails every request in flight on `stream` with `err` and cancels it, if it is still the open one. */
  private breakStream(stream: grpc.ClientDuplexStream<PipelineRequest, PipelineResponse> | undefined, err: FlotillaError): void {
    if (!stream) return;
    if (this.stream === stream) this.stream = undefined;
    for (const [id, p] of [...this.pending]) {
      if (p.stream !== stream) continue;
      this.settle(id);
      p.reject(err);
    }
    stream.cancel();
  }
}

/** What the broker side of a Pipeline stream runs for each request. */
export interface PipelineHandlers {
  produce(req: ProduceRequest, signal: AbortSignal): Promise<ProduceResponse>;
  fetch(req: FetchRequest, signal: AbortSignal): Promise<FetchResponse>;
}

export interface PipelineServeOptions {
  /** Logs handler failures that are not FlotillaErrors (bugs), and stream errors. */
  logger?: Logger;
  /** Open streams are added here while they last, so a server can end them when it shuts down. */
  open?: Set<PipelineStream>;
}

/** An open Pipeline stream, as the server's close() sees it. */
export interface PipelineStream {
  /** Takes no more requests, answers those in flight, then ends the stream. */
  shutdown(): void;
}

/**
 * The Pipeline stream (broker.proto): Produce and Fetch requests as messages, answered by
 * correlation id in whatever order they finish. Requests start in arrival order. Memory is
 * bounded per stream: at PIPELINE_INFLIGHT_MAX requests in flight, or while an answer waits
 * for the client to read (grpc-js's write() returned false, i.e. HTTP/2 flow control), the
 * stream is paused, so a client that sends and never reads stalls itself, not the broker.
 */
export function pipelineHandler(api: PipelineHandlers, options: PipelineServeOptions = {}): (call: grpc.ServerDuplexStream<PipelineRequest, PipelineResponse>) => void {
  const open = options.open ?? new Set<PipelineStream>();
  return (call) => {
    const inflight = new Map<number, AbortController>();
    let paused = false;
    let awaitingDrain = false;
    /** No more requests are taken (the client half-closed, or the server is shutting down). */
    let clientDone = false;
    let gone = false;
    const self: PipelineStream = {
      shutdown: () => {
        clientDone = true;
        flow();
      },
    };
    open.add(self);
    /** The stream is done with (ended or gone): no more answers, no longer open. */
    const finish = (): void => {
      gone = true;
      open.delete(self);
    };
    const flow = (): void => {
      const stop = inflight.size >= PIPELINE_INFLIGHT_MAX || awaitingDrain;
      if (stop && !paused) call.pause();
      else if (!stop && paused) call.resume();
      paused = stop;
      if (clientDone && inflight.size === 0 && !gone) {
        finish();
        call.end();
      }
    };
    const answer = (response: PipelineResponse): void => {
      if (gone) return;
      if (!call.write(response) && !awaitingDrain) {
        awaitingDrain = true;
        call.once("drain", () => {
          awaitingDrain = false;
          flow();
        });
      }
    };
    const failure = (id: number, err: unknown): PipelineResponse => ({ correlationId: id, body: "error", error: toPipelineError(err) });
    const stopAll = (): void => {
      finish();
      for (const a of inflight.values()) a.abort(CALL_CANCELLED);
      inflight.clear();
    };
    call.on("data", (req: PipelineRequest) => {
      const id = req.correlationId;
      if (req.body === "cancel") {
        inflight.get(req.cancel)?.abort(CALL_CANCELLED);
        return;
      }
      if (clientDone) {
        answer(failure(id, new FlotillaError("SHUTTING_DOWN", "the broker is shutting down and takes no more requests on this stream")));
        return;
      }
      if (inflight.has(id)) {
        answer(failure(id, new FlotillaError("INVALID_REQUEST", `pipeline request ${id} reuses the correlation id of a request still in flight`)));
        return;
      }
      const abort = new AbortController();
      let run: Promise<PipelineResponse>;
      if (req.body === "produce") run = api.produce(req.produce, abort.signal).then((produce) => ({ correlationId: id, body: "produce", produce }));
      else if (req.body === "fetch") run = api.fetch(req.fetch, abort.signal).then((fetch) => ({ correlationId: id, body: "fetch", fetch }));
      else run = Promise.reject(new FlotillaError("INVALID_REQUEST", `pipeline request ${id} has no produce, fetch or cancel in it`));
      inflight.set(id, abort);
      flow();
      run
        .catch((err: unknown) => {
          if (!(err instanceof FlotillaError) && !abort.signal.aborted) options.logger?.error({ err, rpc: `Pipeline ${req.body}` }, "unexpected error in request handler");
          return failure(id, err);
        })
        .then((response) => {
          if (inflight.get(id) !== abort) return; // the stream went away meanwhile
          inflight.delete(id);
          if (!abort.signal.aborted) answer(response); // a cancelled request gets no answer
          flow();
        });
    });
    // The client half-closed: answer what is in flight, then end.
    call.on("end", () => {
      clientDone = true;
      flow();
    });
    call.on("cancelled", stopAll);
    call.on("error", (err) => {
      options.logger?.debug({ err: err.message }, "pipeline stream error");
      stopAll();
    });
  };
}

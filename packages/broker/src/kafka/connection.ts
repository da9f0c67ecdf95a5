/**
 * One Kafka client connection: frames in, one request at a time through its handler,
 * responses out in request order.
 *
 * Framing (the protocol guide's "Protocol Framing"): every request is
 *
 *   size     INT32  bytes that follow, at least the 8 fixed header bytes and at most
 *                   `requestMaxBytes` (Kafka's socket.request.max.bytes)
 *   header   see @flotilla/protocol/kafka request-header.ts
 *   body     the API's request at the header's api_version
 *
 * Like Kafka's broker, a connection is served one request at a time (Kafka mutes the
 * channel while a request is in flight), which is what makes responses come out in
 * request order. Frames that arrive meanwhile are read ahead into a bounded queue; when it
 * holds `queuedRequestsMax` frames or `queuedBytesMax` bytes the socket is paused, and a
 * client that does not read its responses (the socket needs a drain) is not served further
 * until it does: memory per connection stays bounded.
 *
 * What closes the connection (there is no way to answer a request that cannot be read,
 * and Kafka does the same): a size below 8 or above the limit; an unknown api key; a
 * version outside the served range (except ApiVersions, answered with
 * UNSUPPORTED_VERSION in a v0 body so the client retries lower, KIP-511); a header or
 * body that does not decode; a response that does not encode.
 *
 * What a handler failure becomes: a FlotillaError -> `spec.errorResponse` with its Kafka
 * code; anything else is logged at error and answered with UNKNOWN_SERVER_ERROR (-1).
 * A handler resolving `undefined` (Produce acks=0) sends nothing.
 */
import type { Socket } from "node:net";
import { ErrorCodes, FlotillaError } from "@flotilla/common";
import type { Logger } from "@flotilla/common/logger";
import {
  ApiKey,
  KafkaReader,
  KafkaWriter,
  REQUEST_HEADER_FIXED_BYTES,
  apiVersionsApi,
  encodeResponseHeader,
  kafkaCodeOfError,
  readRequestHeaderRest,
  readRequestHeaderStart,
  requestHeaderVersion,
  responseHeaderVersion,
} from "@flotilla/protocol/kafka";
import type { KafkaHandler, KafkaRequestContext } from "./handler.js";
import type { KafkaHandlerRegistry } from "./registry.js";

export interface KafkaConnectionLimits {
  /** Largest request frame accepted (Kafka's socket.request.max.bytes, default 100 MiB); a larger size prefix closes the connection. */
  readonly requestMaxBytes: number;
  /** Frames read ahead while one is being served; the socket is paused beyond this. */
  readonly queuedRequestsMax: number;
  /** Bytes of frames read ahead; the socket is paused beyond this. */
  readonly queuedBytesMax: number;
  /** A connection idle this long is closed (Kafka's connections.max.idle.ms, default 10 min). */
  readonly connectionsMaxIdleMs: number;
}

/** Kafka's socket.request.max.bytes default. */
export const SOCKET_REQUEST_MAX_BYTES_DEFAULT = 100 * 1024 * 1024;

export const DEFAULT_KAFKA_CONNECTION_LIMITS: KafkaConnectionLimits = Object.freeze({
  requestMaxBytes: SOCKET_REQUEST_MAX_BYTES_DEFAULT,
  queuedRequestsMax: 32,
  queuedBytesMax: 32 * 1024 * 1024,
  connectionsMaxIdleMs: 600_000,
});

const INT32_MAX = 0x7fffffff;

export interface KafkaConnectionOptions {
  readonly registry: KafkaHandlerRegistry;
  readonly logger: Logger;
  readonly limits?: Partial<KafkaConnectionLimits>;
  /** Bytes already read from the socket (by the same-port router) that belong to this connection. */
  readonly initialBytes?: Buffer;
  /** Called once, when the connection has closed. */
  readonly onClose?: () => void;
}

export class KafkaConnection {
  readonly peer: string;
  /** As Kafka shows a member's host, e.g. "/127.0.0.1". */
  readonly clientHost: string;
  private readonly limits: KafkaConnectionLimits;
  private readonly logger: Logger;
  /** The request being served (one at a time); aborted when the connection closes. A fresh one per request, so listeners a handler leaves on it do not pile up. */
  private currentRequest: AbortController | undefined;
  /** Bytes read but not yet cut into frames. */
  private readonly pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Whole frames waiting to be served, in arrival order. */
  private readonly queue: Buffer[] = [];
  private queuedBytes = 0;
  private serving = false;
  private paused = false;
  private closedFlag = false;
  private requestsServed = 0;

  constructor(
    private readonly socket: Socket,
    private readonly options: KafkaConnectionOptions,
  ) {
    this.limits = { ...DEFAULT_KAFKA_CONNECTION_LIMITS, ...options.limits };
    this.peer = `${socket.remoteAddress ?? "?"}:${socket.remotePort ?? "?"}`;
    // IPv4 clients of a dual-stack listener show as ::ffff:a.b.c.d; Kafka shows /a.b.c.d.
    this.clientHost = `/${(socket.remoteAddress ?? "unknown").replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, "")}`;
    this.logger = options.logger.child({ peer: this.peer });
    socket.setNoDelay(true);
    socket.setTimeout(this.limits.connectionsMaxIdleMs, () => {
      this.logger.debug({ idleMs: this.limits.connectionsMaxIdleMs }, "closing an idle Kafka connection");
      this.close();
    });
    socket.on("error", (err) => this.logger.debug({ err: err.message }, "Kafka connection error"));
    socket.on("close", () => this.onSocketClose());
    this.logger.debug("Kafka connection opened");
  }

  /**
   * Starts serving: the initial bytes first, then what the socket delivers. Separate from
   * the constructor so the owner has registered the connection before it can close.
   */
  start(): void {
    if (this.socket.destroyed) {
      // Closed before it was handed over: its 'close' event may already be gone.
      this.onSocketClose();
      return;
    }
    const initial = this.options.initialBytes;
    if (initial && initial.length > 0) this.onData(initial);
    if (this.closedFlag) return;
    this.socket.on("data", (chunk: Buffer) => this.onData(chunk));
    // The router leaves the socket paused; flow unless the initial bytes already filled the queue.
    if (!this.paused) this.socket.resume();
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** Closes the connection at once; handlers in flight see their signal aborted. */
  close(): void {
    if (!this.socket.destroyed) this.socket.destroy();
    this.onSocketClose();
  }

  private onSocketClose(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.currentRequest?.abort();
    this.queue.length = 0;
    this.queuedBytes = 0;
    this.pending.length = 0;
    this.pendingBytes = 0;
    this.logger.debug({ requestsServed: this.requestsServed }, "Kafka connection closed");
    this.options.onClose?.();
  }

  /** Bad input: log at warn with the peer and close; never throws. */
  private reject(reason: string, fields: Record<string, unknown> = {}): void {
    this.logger.warn(fields, `closing Kafka connection: ${reason}`);
    this.close();
  }

  private onData(chunk: Buffer): void {
    if (this.closedFlag) return;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    this.cutFrames();
    if (!this.paused && (this.queue.length >= this.limits.queuedRequestsMax || this.queuedBytes >= this.limits.queuedBytesMax)) {
      this.paused = true;
      this.socket.pause();
    }
    void this.serveQueue();
  }

  /** Moves every complete frame from `pending` to `queue`. */
  private cutFrames(): void {
    while (!this.closedFlag && this.pendingBytes >= 4) {
      const size = this.peekInt32();
      if (size < REQUEST_HEADER_FIXED_BYTES || size > this.limits.requestMaxBytes) {
        this.reject(size < REQUEST_HEADER_FIXED_BYTES ? "request size below the 8-byte header" : "request larger than socket.request.max.bytes", { size, requestMaxBytes: this.limits.requestMaxBytes });
        return;
      }
      if (this.pendingBytes < 4 + size) return;
      this.take(4);
      const frame = this.take(size);
      this.queue.push(frame);
      this.queuedBytes += frame.length;
    }
  }

  private peekInt32(): number {
    const first = this.pending[0]!;
    if (first.length >= 4) return first.readInt32BE(0);
    return Buffer.concat(this.pending, 4).subarray(0, 4).readInt32BE(0);
  }

  /** Removes the first `n` bytes of `pending` (n <= pendingBytes); a view when they sit in one chunk. */
  private take(n: number): Buffer {
    this.pendingBytes -= n;
    const first = this.pending[0]!;
    if (first.length > n) {
      this.pending[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    if (first.length === n) {
      this.pending.shift();
      return first;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = this.pending[0]!;
      const part = Math.min(c.length, n - filled);
      c.copy(out, filled, 0, part);
      filled += part;
      if (part === c.length) this.pending.shift();
      else this.pending[0] = c.subarray(part);
    }
    return out;
  }

  private async serveQueue(): Promise<void> {
    if (this.serving) return;
    this.serving = true;
    try {
      while (!this.closedFlag && this.queue.length > 0) {
        const frame = this.queue.shift()!;
        this.queuedBytes -= frame.length;
        if (this.paused && this.queue.length < this.limits.queuedRequestsMax && this.queuedBytes < this.limits.queuedBytesMax) {
          this.paused = false;
          this.socket.resume();
        }
        try {
          await this.serve(frame);
        } catch (err) {
          // serve() handles every expected failure itself; this is a bug, but one connection's bug must not end the process.
          this.logger.error({ err }, "unexpected error serving a Kafka request; closing the connection");
          this.close();
        }
        if (!this.closedFlag && this.socket.writableNeedDrain) await this.drained();
      }
    } finally {
      this.serving = false;
    }
  }

  private drained(): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        this.socket.off("drain", done);
        this.socket.off("close", done);
        resolve();
      };
      this.socket.on("drain", done);
      this.socket.on("close", done);
    });
  }

  /** Serves one frame; bad input closes the connection. Never throws. */
  private async serve(frame: Buffer): Promise<void> {
    const reader = new KafkaReader(frame);
    const { apiKey, apiVersion, correlationId } = readRequestHeaderStart(reader); // 8 bytes are guaranteed by cutFrames
    const handler = this.options.registry.get(apiKey);
    if (!handler) {
      this.reject("unknown api key", { apiKey, apiVersion, correlationId });
      return;
    }
    const spec = handler.spec;
    if (apiVersion < spec.minVersion || apiVersion > spec.maxVersion) {
      if (apiKey === ApiKey.ApiVersions && apiVersion > spec.maxVersion) {
        this.logger.debug({ apiVersion }, "ApiVersions above the served range: answering UNSUPPORTED_VERSION in a v0 response");
        this.send(apiVersionsApi.apiKey, apiVersionsApi, 0, correlationId, this.options.registry.unsupportedApiVersionsResponse());
        return;
      }
      this.reject("unsupported api version", { apiKey, api: spec.name, apiVersion, minVersion: spec.minVersion, maxVersion: spec.maxVersion });
      return;
    }
    let request: unknown;
    let clientId: string | null;
    try {
      clientId = readRequestHeaderRest(reader, requestHeaderVersion(spec, apiVersion)).clientId;
      request = spec.decodeRequest(reader, apiVersion);
    } catch (err) {
      this.reject("request does not decode", { api: spec.name, apiVersion, correlationId, err: errorText(err) });
      return;
    }
    if (reader.remaining > 0) {
      // Kafka's parsers ignore trailing bytes too; a codec that misses a field shows up here.
      this.logger.debug({ api: spec.name, apiVersion, trailingBytes: reader.remaining }, "request has bytes after its body");
    }
    const abort = new AbortController();
    this.currentRequest = abort;
    const context: KafkaRequestContext = {
      apiVersion,
      correlationId,
      clientId,
      clientHost: this.clientHost,
      signal: abort.signal,
      closeConnection: (reason) => {
        this.logger.info({ peer: this.clientHost, api: spec.name, reason }, "closing the Kafka connection as the protocol asks");
        this.close();
      },
    };
    let response: unknown;
    try {
      response = await this.answer(handler, request, context);
    } finally {
      this.currentRequest = undefined;
    }
    this.requestsServed++;
    if (response === undefined || this.closedFlag) return;
    this.send(apiKey, spec, apiVersion, correlationId, response);
  }

  /** The handler's response, or the error response standing for its failure; undefined = send nothing. */
  private async answer(handler: KafkaHandler, request: unknown, context: KafkaRequestContext): Promise<unknown> {
    const spec = handler.spec;
    try {
      return await handler.handle(request, context);
    } catch (err) {
      if (this.closedFlag) return undefined;
      const code = kafkaCodeOfError(err);
      if (!(err instanceof FlotillaError)) this.logger.error({ err, api: spec.name, apiVersion: context.apiVersion }, "unexpected error in Kafka request handler");
      else this.logger.debug({ api: spec.name, err: err.message }, "Kafka request failed");
      try {
        return spec.errorResponse(request, context.apiVersion, code, err instanceof Error ? err.message : ErrorCodes.UNKNOWN_SERVER_ERROR.message);
      } catch (buildErr) {
        this.logger.error({ err: buildErr, api: spec.name }, "cannot build the Kafka error response; closing the connection");
        this.close();
        return undefined;
      }
    }
  }

  /** Writes one response frame: size, header, body, as a vectored write of the writer's chunks. */
  private send(apiKey: number, spec: KafkaHandler["spec"], apiVersion: number, correlationId: number, response: unknown): void {
    const w = new KafkaWriter();
    try {
      encodeResponseHeader(w, correlationId, responseHeaderVersion(apiKey, spec, apiVersion));
      spec.encodeResponse(w, apiVersion, response);
    } catch (err) {
      this.logger.error({ err, api: spec.name, apiVersion }, "cannot encode the Kafka response; closing the connection");
      this.close();
      return;
    }
    if (w.length > INT32_MAX) {
      this.logger.error({ api: spec.name, bytes: w.length }, "Kafka response exceeds the INT32 size prefix; closing the connection");
      this.close();
      return;
    }
    const size = Buffer.allocUnsafe(4);
    size.writeInt32BE(w.length, 0);
    this.socket.cork();
    this.socket.write(size);
    for (const chunk of w.toChunks()) this.socket.write(chunk);
    this.socket.uncork();
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

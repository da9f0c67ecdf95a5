/**
 * Test helpers for the Kafka listener: a raw client that writes frames and reads response
 * frames, and a fake API to serve. Not used by production code.
 */
import net from "node:net";
import { FlotillaError } from "@flotilla/common";
import { KafkaReader, KafkaWriter, apiVersionsApi, decodeApiVersionsResponse, decodeResponseHeader, encodeApiVersionsRequest, encodeRequestFrame, type KafkaApiSpec, type KafkaApiVersionsResponse } from "@flotilla/protocol/kafka";

/** A raw Kafka client connection: send bytes, read whole response frames, see the close. */
export class RawKafkaSocket {
  private chunks: Buffer[] = [];
  private chunkBytes = 0;
  private readonly frames: Buffer[] = [];
  private waiters: (() => void)[] = [];
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.chunkBytes += chunk.length;
      while (this.chunkBytes >= 4) {
        if (this.chunks[0]!.length < 4) this.chunks = [Buffer.concat(this.chunks, this.chunkBytes)];
        const size = this.chunks[0]!.readInt32BE(0);
        if (this.chunkBytes < 4 + size) break;
        if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks, this.chunkBytes)];
        const head = this.chunks[0]!;
        this.frames.push(head.subarray(4, 4 + size));
        this.chunks = head.length > 4 + size ? [head.subarray(4 + size)] : [];
        this.chunkBytes = head.length - 4 - size;
      }
      this.wake();
    });
    socket.on("close", () => {
      this.closed = true;
      this.wake();
    });
    socket.on("error", () => {});
  }

  static connect(port: number, host = "127.0.0.1"): Promise<RawKafkaSocket> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host }, () => {
        s.off("error", reject);
        resolve(new RawKafkaSocket(s));
      });
      s.once("error", reject);
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Waits for `count` response frames in total (bounded by `timeoutMs`); fewer if the connection closes. */
  async responses(count: number, timeoutMs = 5000): Promise<Buffer[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.frames.length < count && !this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${count} Kafka responses (got ${this.frames.length})`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.frames.slice(0, count);
  }

  /** Resolves true once the server closed the connection, false after `timeoutMs`. */
  async waitClosed(timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.closed;
  }

  /** Frames received so far. */
  get received(): readonly Buffer[] {
    return this.frames;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** An ApiVersions request frame at `version` (v3 carries the client software name). */
export function apiVersionsFrame(correlationId: number, version: number): Buffer {
  return encodeRequestFrame({ apiKey: apiVersionsApi.apiKey, apiVersion: version, correlationId, clientId: "test" }, apiVersionsApi, (w) =>
    encodeApiVersionsRequest(w, version, { clientSoftwareName: "flotilla-test", clientSoftwareVersion: "1.0" }),
  );
}

/** Reads an ApiVersions response frame (header v0 then the body at `version`). */
export function readApiVersionsResponse(frame: Buffer, version: number): { correlationId: number; body: KafkaApiVersionsResponse } {
  const r = new KafkaReader(frame);
  const { correlationId } = decodeResponseHeader(r, 0);
  const body = decodeApiVersionsResponse(r, version);
  if (r.remaining !== 0) throw new Error(`${r.remaining} bytes after the ApiVersions response`);
  return { correlationId, body };
}

/**
 * A fake API for listener tests, key 1000 (no real Kafka API), versions 0-2, flexible from
 * v2. Request: value INT32, delayMs INT32, action INT8 (0 answer, 1 throw FlotillaError
 * NOT_LEADER_OR_FOLLOWER, 2 throw Error, 3 no response, 4 answer with `value` bytes of
 * payload appended as a chunk, 5 no response and ask for the connection to close, as a
 * failed acks=0 produce does). Response: value INT32, errorCode INT16, payload BYTES.
 */
export interface EchoRequest {
  value: number;
  delayMs: number;
  action: number;
}
export interface EchoResponse {
  value: number;
  errorCode: number;
  payload: Buffer | null;
}
export const ECHO_API_KEY = 1000;

export const echoApi: KafkaApiSpec<EchoRequest, EchoResponse> = {
  apiKey: ECHO_API_KEY,
  name: "Echo",
  minVersion: 0,
  maxVersion: 2,
  firstFlexibleVersion: 2,
  decodeRequest(r, version) {
    const req = { value: r.int32("value"), delayMs: r.int32("delayMs"), action: r.int8("action") };
    if (version >= 2) r.taggedFields();
    if (req.delayMs < 0) throw new FlotillaError("INVALID_REQUEST", "negative delay");
    return req;
  },
  encodeResponse(w, version, res) {
    w.int32(res.value).int16(res.errorCode).chunkedBytes(res.payload);
    if (version >= 2) w.taggedFields();
  },
  errorResponse(req, _version, errorCode) {
    return { value: req.value, errorCode, payload: null };
  },
};

export function echoFrame(correlationId: number, version: number, req: EchoRequest): Buffer {
  return encodeRequestFrame({ apiKey: ECHO_API_KEY, apiVersion: version, correlationId, clientId: null }, echoApi, (w: KafkaWriter) => {
    w.int32(req.value).int32(req.delayMs).int8(req.action);
    if (version >= 2) w.taggedFields();
  });
}

export function readEchoResponse(frame: Buffer, version: number): { correlationId: number; body: EchoResponse } {
  const r = new KafkaReader(frame);
  const { correlationId } = decodeResponseHeader(r, version >= 2 ? 1 : 0);
  const value = r.int32();
  const errorCode = r.int16();
  const payload = r.nullableBytes();
  if (version >= 2) r.taggedFields();
  if (r.remaining !== 0) throw new Error(`${r.remaining} bytes after the Echo response`);
  return { correlationId, body: { value, errorCode, payload } };
}

import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { FlotillaError } from "@flotilla/common";
import { silentLogger, type Logger } from "@flotilla/common/logger";
import { ApiKey, encodeRequestFrame } from "@flotilla/protocol/kafka";
import type { KafkaHandler } from "./handler.js";
import { KafkaListener } from "./listener.js";
import { KafkaHandlerRegistry } from "./registry.js";
import { ECHO_API_KEY, RawKafkaSocket, apiVersionsFrame, echoApi, echoFrame, readApiVersionsResponse, readEchoResponse, type EchoRequest, type EchoResponse } from "./test-support.js";
import type { KafkaConnectionLimits } from "./connection.js";

/** The fake API's handler, recording what the listener made of each request. */
class EchoHandler implements KafkaHandler<EchoRequest, EchoResponse> {
  readonly spec = echoApi;
  inFlight = 0;
  inFlightMax = 0;
  handled: number[] = [];
  aborted = 0;
  /** When set, every request waits for it (to hold the connection busy). */
  gate: Promise<void> | undefined;

  async handle(req: EchoRequest, ctx: { signal: AbortSignal; clientHost: string; closeConnection?: (reason: string) => void }): Promise<EchoResponse | undefined> {
    this.inFlight++;
    this.inFlightMax = Math.max(this.inFlightMax, this.inFlight);
    ctx.signal.addEventListener("abort", () => this.aborted++);
    try {
      if (this.gate) await this.gate;
      if (req.delayMs > 0) await new Promise((r) => setTimeout(r, req.delayMs));
      this.handled.push(req.value);
      switch (req.action) {
        case 1:
          throw new FlotillaError("NOT_LEADER_OR_FOLLOWER", "not the leader of echo-0");
        case 2:
          throw new Error("a bug in the handler");
        case 3:
          return undefined;
        case 4:
          return { value: req.value, errorCode: 0, payload: Buffer.alloc(req.value, 0x5a) };
        case 5:
          ctx.closeConnection?.("echo asked to close");
          return undefined;
        default:
          return { value: req.value, errorCode: 0, payload: Buffer.from(ctx.clientHost) };
      }
    } finally {
      this.inFlight--;
    }
  }
}

interface Served {
  port: number;
  handler: EchoHandler;
  listener: KafkaListener;
  serverSockets: net.Socket[];
  close(): Promise<void>;
}

const opened: (Served | RawKafkaSocket)[] = [];

async function serve(limits: Partial<KafkaConnectionLimits> = {}): Promise<Served> {
  const handler = new EchoHandler();
  const listener = new KafkaListener({ registry: new KafkaHandlerRegistry([handler as KafkaHandler]), logger: silentLogger(), limits });
  const serverSockets: net.Socket[] = [];
  const server = net.createServer((s) => {
    serverSockets.push(s);
    listener.accept(s);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  const served: Served = {
    port,
    handler,
    listener,
    serverSockets,
    close: () =>
      new Promise<void>((resolve) => {
        listener.close();
        server.close(() => resolve());
      }),
  };
  opened.push(served);
  return served;
}

async function connect(port: number): Promise<RawKafkaSocket> {
  const c = await RawKafkaSocket.connect(port);
  opened.push(c);
  return c;
}

afterEach(async () => {
  for (const o of opened.splice(0)) {
    if (o instanceof RawKafkaSocket) o.close();
    else await o.close();
  }
});

const echo = (value: number, extra: Partial<EchoRequest> = {}): EchoRequest => ({ value, delayMs: 0, action: 0, ...extra });

describe("Kafka connection: ApiVersions", () => {
  it("answers v0 to v3 with every registered API's key and version range", async () => {
    const { port } = await serve();
    const c = await connect(port);
    for (let v = 0; v <= 3; v++) c.write(apiVersionsFrame(100 + v, v));
    const frames = await c.responses(4);
    for (let v = 0; v <= 3; v++) {
      const { correlationId, body } = readApiVersionsResponse(frames[v]!, v);
      expect(correlationId).toBe(100 + v);
      expect(body.errorCode).toBe(0);
      expect(body.apiKeys).toEqual([
        { apiKey: ApiKey.ApiVersions, minVersion: 0, maxVersion: 3 },
        { apiKey: ECHO_API_KEY, minVersion: 0, maxVersion: 2 },
      ]);
    }
  });

  it("answers a version above 3 with UNSUPPORTED_VERSION in a v0 response listing our versions, and keeps the connection", async () => {
    const { port } = await serve();
    const c = await connect(port);
    c.write(apiVersionsFrame(7, 4));
    const [frame] = await c.responses(1);
    const { correlationId, body } = readApiVersionsResponse(frame!, 0);
    expect(correlationId).toBe(7);
    expect(body.errorCode).toBe(35);
    expect(body.apiKeys.map((k) => k.apiKey)).toEqual([ApiKey.ApiVersions, ECHO_API_KEY]);
    c.write(apiVersionsFrame(8, 3));
    const frames = await c.responses(2);
    expect(readApiVersionsResponse(frames[1]!, 3).body.errorCode).toBe(0);
  });
});

describe("Kafka connection: ordering and framing", () => {
  it("serves pipelined requests one at a time and answers in request order even when later ones are quicker", async () => {
    const { port, handler } = await serve();
    const c = await connect(port);
    const delays = [60, 45, 30, 15, 0];
    c.write(Buffer.concat(delays.map((d, i) => echoFrame(i + 1, 1, echo(i, { delayMs: d })))));
    const frames = await c.responses(5);
    expect(frames.map((f) => readEchoResponse(f, 1).correlationId)).toEqual([1, 2, 3, 4, 5]);
    expect(frames.map((f) => readEchoResponse(f, 1).body.value)).toEqual([0, 1, 2, 3, 4]);
    expect(handler.inFlightMax).toBe(1);
    expect(handler.handled).toEqual([0, 1, 2, 3, 4]);
  });

  it("reassembles frames that arrive one byte at a time", async () => {
    const { port } = await serve();
    const c = await connect(port);
    const bytes = Buffer.concat([echoFrame(1, 0, echo(11)), apiVersionsFrame(2, 3), echoFrame(3, 2, echo(33))]);
    for (let i = 0; i < bytes.length; i++) {
      c.write(bytes.subarray(i, i + 1));
      if (i % 7 === 0) await new Promise((r) => setImmediate(r));
    }
    const frames = await c.responses(3);
    expect(readEchoResponse(frames[0]!, 0).body.value).toBe(11);
    expect(readApiVersionsResponse(frames[1]!, 3).correlationId).toBe(2);
    const flexible = readEchoResponse(frames[2]!, 2);
    expect([flexible.correlationId, flexible.body.value]).toEqual([3, 33]);
    expect(flexible.body.payload?.toString()).toBe("/127.0.0.1");
  });

  it("sends a large response intact (its payload written as a separate chunk)", async () => {
    const { port } = await serve();
    const c = await connect(port);
    c.write(echoFrame(1, 1, echo(3_000_000, { action: 4 })));
    const [frame] = await c.responses(1, 15_000);
    const { body } = readEchoResponse(frame!, 1);
    expect(body.payload?.length).toBe(3_000_000);
    expect(body.payload?.every((b) => b === 0x5a)).toBe(true);
  });

  it("sends nothing when the handler resolves undefined (acks=0) and still answers what follows, in order", async () => {
    const { port, handler } = await serve();
    const c = await connect(port);
    c.write(Buffer.concat([echoFrame(1, 1, echo(1, { action: 3 })), echoFrame(2, 1, echo(2)), echoFrame(3, 1, echo(3, { action: 3 })), echoFrame(4, 1, echo(4))]));
    const frames = await c.responses(2);
    expect(frames.map((f) => readEchoResponse(f, 1).correlationId)).toEqual([2, 4]);
    await new Promise((r) => setTimeout(r, 50));
    expect(c.received.length).toBe(2);
    expect(handler.handled).toEqual([1, 2, 3, 4]);
  });
});

describe("Kafka connection: a handler that asks to close", () => {
  it("answers what came before, then closes without answering that request or any after it (a failed acks=0 produce)", async () => {
    const { port, handler } = await serve();
    const c = await connect(port);
    c.write(Buffer.concat([echoFrame(1, 1, echo(1)), echoFrame(2, 1, echo(2, { action: 5 })), echoFrame(3, 1, echo(3))]));
    const frames = await c.responses(1);
    expect(frames.map((f) => readEchoResponse(f, 1).correlationId)).toEqual([1]);
    expect(await c.waitClosed()).toBe(true);
    expect(c.received.length).toBe(1);
    expect(handler.handled).toEqual([1, 2]);
  });
});

describe("Kafka connection: handler failures", () => {
  it("answers a FlotillaError with the API's error response carrying its Kafka code, and a plain Error with -1", async () => {
    const { port } = await serve();
    const c = await connect(port);
    c.write(Buffer.concat([echoFrame(1, 1, echo(5, { action: 1 })), echoFrame(2, 1, echo(6, { action: 2 })), echoFrame(3, 1, echo(7))]));
    const frames = await c.responses(3);
    const bodies = frames.map((f) => readEchoResponse(f, 1).body);
    expect(bodies.map((b) => [b.value, b.errorCode])).toEqual([
      [5, 6],
      [6, -1],
      [7, 0],
    ]);
    expect(c.closed).toBe(false);
  });
});

describe("Kafka connection: bad input closes the connection", () => {
  const cases: [string, (c: RawKafkaSocket) => void][] = [
    ["a size prefix above socket.request.max.bytes", (c) => c.write(Buffer.from([0x00, 0x01, 0x00, 0x01]))],
    ["a negative size prefix", (c) => c.write(Buffer.from([0xff, 0xff, 0xff, 0xf0, 1, 2, 3]))],
    ["a size below the 8 fixed header bytes", (c) => c.write(Buffer.from([0, 0, 0, 4, 0, 18, 0, 0]))],
    ["an unknown api key", (c) => c.write(encodeRequestFrame({ apiKey: 999, apiVersion: 0, correlationId: 1, clientId: "x" }, {}))],
    ["an unsupported version of a served API", (c) => c.write(echoFrame(1, 3, echo(1)))],
    ["a negative ApiVersions version", (c) => c.write(encodeRequestFrame({ apiKey: ApiKey.ApiVersions, apiVersion: -1, correlationId: 1, clientId: "x" }, {}))],
    ["a truncated body", (c) => c.write(encodeRequestFrame({ apiKey: ECHO_API_KEY, apiVersion: 1, correlationId: 1, clientId: null }, echoApi, (w) => w.int32(1)))],
    ["a client_id whose length runs past the frame", (c) => c.write(Buffer.from([0, 0, 0, 10, 0x03, 0xe8, 0, 0, 0, 0, 0, 1, 0x7f, 0x00]))],
    ["a body the codec rejects", (c) => c.write(echoFrame(1, 1, echo(1, { delayMs: -5 })))],
  ];
  for (const [what, send] of cases) {
    it(`${what}: no response, connection closed`, async () => {
      const { port, handler } = await serve({ requestMaxBytes: 64 * 1024 });
      const c = await connect(port);
      send(c);
      expect(await c.waitClosed()).toBe(true);
      expect(c.received.length).toBe(0);
      expect(handler.handled).toEqual([]);
    });
  }

  it("answers the requests before a bad frame, then closes", async () => {
    const { port } = await serve();
    const c = await connect(port);
    c.write(Buffer.concat([echoFrame(1, 1, echo(1)), echoFrame(2, 1, echo(2)), Buffer.from([0, 0, 0, 9, 0x7f, 0x7f, 0, 0, 0, 3, 0, 0, 0])]));
    expect(await c.waitClosed()).toBe(true);
    expect(c.received.map((f) => readEchoResponse(f, 1).correlationId)).toEqual([1, 2]);
  });

  it("aborts the signal of a request in flight when the client goes away", async () => {
    const served = await serve();
    let open!: () => void;
    served.handler.gate = new Promise<void>((r) => (open = r));
    const c = await connect(served.port);
    c.write(echoFrame(1, 1, echo(1)));
    for (let i = 0; i < 100 && served.handler.inFlight === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(served.handler.inFlight).toBe(1);
    c.close();
    for (let i = 0; i < 100 && served.handler.aborted === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(served.handler.aborted).toBe(1);
    open();
    for (let i = 0; i < 100 && served.listener.connectionCount > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(served.listener.connectionCount).toBe(0);
  });
});

describe("Kafka connection: backpressure", () => {
  it("pauses reading when the read-ahead queue is full and resumes as it drains, answering every request in order", async () => {
    const served = await serve({ queuedRequestsMax: 3 });
    let open!: () => void;
    served.handler.gate = new Promise<void>((r) => (open = r));
    const c = await connect(served.port);
    const count = 40;
    c.write(Buffer.concat(Array.from({ length: count }, (_, i) => echoFrame(i, 1, echo(i)))));
    const socket = () => served.serverSockets[0]!;
    for (let i = 0; i < 200 && !(served.serverSockets.length > 0 && socket().isPaused()); i++) await new Promise((r) => setTimeout(r, 10));
    expect(socket().isPaused()).toBe(true);
    expect(served.handler.inFlight).toBe(1);
    open();
    served.handler.gate = undefined;
    const frames = await c.responses(count);
    expect(frames.map((f) => readEchoResponse(f, 1).correlationId)).toEqual(Array.from({ length: count }, (_, i) => i));
    expect(socket().isPaused()).toBe(false);
  });

  it("stops serving a client that does not read its responses until it does", async () => {
    const served = await serve();
    const c = await connect(served.port);
    c.socket.pause(); // the client reads nothing: responses back up in the kernel, then in the server's socket
    const count = 40;
    const payloadBytes = 512 * 1024;
    c.write(Buffer.concat(Array.from({ length: count }, (_, i) => echoFrame(i, 1, echo(payloadBytes, { action: 4 })))));
    // Wait until the server has stopped making progress.
    let last = -1;
    for (let i = 0; i < 100 && served.handler.handled.length !== last; i++) {
      last = served.handler.handled.length;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(served.handler.handled.length).toBeLessThan(count);
    c.socket.resume();
    const frames = await c.responses(count, 30_000);
    expect(frames.map((f) => readEchoResponse(f, 1).correlationId)).toEqual(Array.from({ length: count }, (_, i) => i));
    expect(frames.every((f) => readEchoResponse(f, 1).body.payload?.length === payloadBytes)).toBe(true);
  });

  it("closes extra connections beyond connectionsMax", async () => {
    const handler = new EchoHandler();
    const listener = new KafkaListener({ registry: new KafkaHandlerRegistry([handler as KafkaHandler]), logger: silentLogger(), connectionsMax: 1 });
    const server = net.createServer((s) => listener.accept(s));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const port = (server.address() as net.AddressInfo).port;
      const a = await connect(port);
      a.write(echoFrame(1, 1, echo(1)));
      await a.responses(1);
      const b = await connect(port);
      expect(await b.waitClosed()).toBe(true);
      a.write(echoFrame(2, 1, echo(2)));
      expect((await a.responses(2)).length).toBe(2);
    } finally {
      listener.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe("Kafka connection: bytes already read by the same-port router", () => {
  async function acceptWith(initialBytes: Buffer): Promise<{ client: RawKafkaSocket; listener: KafkaListener; errors: string[] }> {
    const errors: string[] = [];
    // A logger that keeps error-level messages (the connection logs bad input at warn).
    const logger = { debug() {}, info() {}, warn() {}, error: (_o: unknown, msg: string) => void errors.push(msg), child: () => logger } as unknown as Logger;
    const listener = new KafkaListener({ registry: new KafkaHandlerRegistry([new EchoHandler() as KafkaHandler]), logger });
    const server = net.createServer((s) => listener.accept(s, initialBytes));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    opened.push({ port: 0, handler: new EchoHandler(), listener, serverSockets: [], close: () => new Promise<void>((r) => (listener.close(), server.close(() => r()))) });
    const client = await connect((server.address() as net.AddressInfo).port);
    return { client, listener, errors };
  }

  it("serves requests whose first bytes came with the connection, then the rest from the socket", async () => {
    const frame = echoFrame(1, 1, echo(41));
    const { client } = await acceptWith(frame.subarray(0, 6));
    client.write(Buffer.concat([frame.subarray(6), echoFrame(2, 1, echo(42))]));
    const frames = await client.responses(2);
    expect(frames.map((f) => readEchoResponse(f, 1).body.value)).toEqual([41, 42]);
  });

  it("closes cleanly, without an error, when those first bytes are already bad", async () => {
    const { client, listener, errors } = await acceptWith(Buffer.from([0x7f, 0, 0, 0, 1, 2]));
    expect(await client.waitClosed()).toBe(true);
    expect(listener.connectionCount).toBe(0);
    expect(errors).toEqual([]);
  });
});

describe("Kafka connection: read-ahead limit with bytes from the router", () => {
  it("keeps a router-paused socket paused when the initial bytes already fill the queue", async () => {
    const handler = new EchoHandler();
    let open!: () => void;
    handler.gate = new Promise<void>((r) => (open = r));
    const listener = new KafkaListener({ registry: new KafkaHandlerRegistry([handler as KafkaHandler]), logger: silentLogger(), limits: { queuedRequestsMax: 3 } });
    const initial = Buffer.concat(Array.from({ length: 10 }, (_, i) => echoFrame(i, 1, echo(i))));
    let serverSocket: net.Socket | undefined;
    const server = net.createServer((s) => {
      serverSocket = s;
      s.pause(); // as the same-port router leaves it
      listener.accept(s, initial);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const c = await connect((server.address() as net.AddressInfo).port);
      for (let i = 0; i < 100 && handler.inFlight === 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(serverSocket!.isPaused()).toBe(true);
      open();
      handler.gate = undefined;
      c.write(echoFrame(10, 1, echo(10)));
      const frames = await c.responses(11);
      expect(frames.map((f) => readEchoResponse(f, 1).correlationId)).toEqual(Array.from({ length: 11 }, (_, i) => i));
    } finally {
      listener.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe("Kafka listener bookkeeping", () => {
  it("does not keep a connection whose socket was already closed when it was handed over", async () => {
    const listener = new KafkaListener({ registry: new KafkaHandlerRegistry([]), logger: silentLogger() });
    const server = net.createServer((s) => {
      s.destroy();
      listener.accept(s);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const c = await connect((server.address() as net.AddressInfo).port);
      expect(await c.waitClosed()).toBe(true);
      expect(listener.connectionCount).toBe(0);
    } finally {
      listener.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe("Kafka handler registry", () => {
  it("always serves ApiVersions, lists versions by api key, and refuses two handlers for one key", () => {
    const registry = new KafkaHandlerRegistry([new EchoHandler() as KafkaHandler]);
    expect(registry.versions().map((v) => v.apiKey)).toEqual([ApiKey.ApiVersions, ECHO_API_KEY]);
    expect(registry.unsupportedApiVersionsResponse().errorCode).toBe(35);
    expect(() => new KafkaHandlerRegistry([new EchoHandler() as KafkaHandler, new EchoHandler() as KafkaHandler])).toThrow(/two Kafka handlers/);
  });
});

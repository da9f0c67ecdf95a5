import dns from "node:dns/promises";
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { FlotillaError } from "@flotilla/common";
import { silentLogger } from "@flotilla/common/logger";
import { PipelineChannel, type BrokerApi, type MetadataResponse } from "@flotilla/protocol";
import { startBrokerGrpcServer, type BrokerGrpcServer } from "./grpc-server.js";
import type { KafkaListenerSettings } from "./kafka/listener.js";
import { RawKafkaSocket, apiVersionsFrame, readApiVersionsResponse } from "./kafka/test-support.js";
import { RawBrokerClient } from "./test-client.js";

const METADATA: MetadataResponse = { clusterId: "same-port", controllerId: 1, brokers: [{ nodeId: 1, host: "127.0.0.1", port: 1, rack: "" }], topics: [] } as unknown as MetadataResponse;

/** Only Metadata answers; anything else the tests do not call. */
const fakeBroker = new Proxy({} as BrokerApi, {
  get: (_t, name) => (name === "metadata" ? async () => METADATA : async () => Promise.reject(new FlotillaError("UNSUPPORTED_VERSION", `fake broker has no ${String(name)}`))),
});

const kafkaSettings: KafkaListenerSettings = { broker: fakeBroker, brokerConfigs: () => ({}), nodeId: 1, logger: silentLogger(), factories: [] };

const servers: BrokerGrpcServer[] = [];
const clients: { close(): void }[] = [];

async function start(kafka = true, firstBytesTimeoutMs?: number): Promise<BrokerGrpcServer> {
  const s = await startBrokerGrpcServer({ api: fakeBroker, host: "127.0.0.1", port: 0, logger: silentLogger(), ...(kafka ? { kafka: kafkaSettings } : {}), ...(firstBytesTimeoutMs ? { firstBytesTimeoutMs } : {}) });
  servers.push(s);
  return s;
}

async function rawKafka(port: number): Promise<RawKafkaSocket> {
  const c = await RawKafkaSocket.connect(port);
  clients.push(c);
  return c;
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const s of servers.splice(0)) await s.close(1000);
});

describe("gRPC calls", () => {
  it("aborts the handler's signal when the client cancels, not after a call it answered", async () => {
    const signals: AbortSignal[] = [];
    let release: (() => void) | undefined;
    const api = new Proxy({} as BrokerApi, {
      get: (_t, name) =>
        name === "metadata"
          ? async () => METADATA
          : name === "fetch"
            ? async (_req: unknown, signal: AbortSignal) => {
                signals.push(signal);
                if (signals.length === 2) await new Promise<void>((r) => (release = r));
                return { throttleTimeMs: 0, errorCode: 0, errorMessage: "", sessionId: 0, topics: [] };
              }
            : async () => Promise.reject(new FlotillaError("UNSUPPORTED_VERSION", `fake broker has no ${String(name)}`)),
    });
    const server = await startBrokerGrpcServer({ api, host: "127.0.0.1", port: 0, logger: silentLogger() });
    servers.push(server);
    const client = new RawBrokerClient(`127.0.0.1:${server.port}`);
    clients.push(client);
    await client.fetch({} as never);
    // A cancelled call: its deadline passes while the handler still waits.
    expect(await client.call("Fetch", {}, 300).catch((e: unknown) => (e as FlotillaError).errorName)).toBe("REQUEST_TIMED_OUT");
    for (let i = 0; i < 100 && !signals[1]?.aborted; i++) await new Promise((r) => setTimeout(r, 10));
    release?.();
    expect(signals[1]!.aborted).toBe(true);
    expect(signals[0]!.aborted).toBe(false);
  });
});

describe("Pipeline streams", () => {
  it("close() answers what is in flight on an open Pipeline stream, then ends it, without waiting out the grace period", async () => {
    let release: (() => void) | undefined;
    const api = new Proxy({} as BrokerApi, {
      get: (_t, name) =>
        name === "produce"
          ? async () => {
              await new Promise<void>((r) => (release = r));
              return { topics: [{ name: "held", partitions: [] }] };
            }
          : async () => Promise.reject(new FlotillaError("UNSUPPORTED_VERSION", `fake broker has no ${String(name)}`)),
    });
    const server = await startBrokerGrpcServer({ api, host: "127.0.0.1", port: 0, logger: silentLogger() });
    servers.push(server);
    const client = new RawBrokerClient(`127.0.0.1:${server.port}`);
    clients.push(client);
    const pipeline = new PipelineChannel(client.grpcClient, "test broker");
    clients.push(pipeline);
    const held = pipeline.produce({ acks: -1, timeoutMs: 1000, topics: [] }, { timeoutMs: 60_000 });
    for (let i = 0; i < 200 && !release; i++) await new Promise((r) => setTimeout(r, 10));
    expect(release).toBeDefined();
    // A grace far longer than the test's own timeout: close() must end the stream itself.
    let closed = false;
    const closing = server.close(600_000).then(() => (closed = true));
    await new Promise((r) => setTimeout(r, 100));
    expect(closed).toBe(false); // the produce in flight is still owed its answer
    release!();
    expect((await held).topics[0]!.name).toBe("held");
    await closing;
    // A request after the broker ended the stream fails as a network error (retriable), not a hang.
    const after = await pipeline.produce({ acks: -1, timeoutMs: 1000, topics: [] }, { timeoutMs: 5000 }).catch((e: unknown) => e as FlotillaError);
    expect((after as FlotillaError).errorName).toBe("NETWORK_EXCEPTION");
  }, 20_000);
});

describe("one port for gRPC and Kafka", () => {
  it("serves a gRPC call and a Kafka ApiVersions request on the same port, side by side", async () => {
    const server = await start();
    const grpcClient = new RawBrokerClient(`127.0.0.1:${server.port}`);
    clients.push(grpcClient);
    const kafka = await rawKafka(server.port);
    kafka.write(apiVersionsFrame(1, 3));
    const [metadata, frames] = await Promise.all([grpcClient.metadata({ topics: [], allowAutoTopicCreation: false } as never), kafka.responses(1)]);
    expect((metadata as MetadataResponse).clusterId).toBe("same-port");
    const { correlationId, body } = readApiVersionsResponse(frames[0]!, 3);
    expect([correlationId, body.errorCode, body.apiKeys.map((k) => k.apiKey)]).toEqual([1, 0, [18]]);
    // Both keep working after the other was used.
    expect(((await grpcClient.metadata({ topics: [], allowAutoTopicCreation: false } as never)) as MetadataResponse).controllerId).toBe(1);
  });

  it("routes a client whose HTTP/2 preface arrives in pieces to gRPC (the server answers with its SETTINGS frame)", async () => {
    const server = await start();
    const socket = net.connect({ port: server.port, host: "127.0.0.1" });
    clients.push({ close: () => socket.destroy() });
    socket.on("error", () => {});
    const received: Buffer[] = [];
    socket.on("data", (b: Buffer) => received.push(b));
    await new Promise<void>((r) => socket.once("connect", () => r()));
    const preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
    const emptySettings = Buffer.from("000000040000000000", "hex");
    for (const piece of [preface.subarray(0, 3), preface.subarray(3, 10), preface.subarray(10, 20), Buffer.concat([preface.subarray(20), emptySettings])]) {
      socket.write(piece);
      await new Promise((r) => setTimeout(r, 20));
    }
    for (let i = 0; i < 100 && Buffer.concat(received).length < 9; i++) await new Promise((r) => setTimeout(r, 20));
    const bytes = Buffer.concat(received);
    expect(bytes.length).toBeGreaterThanOrEqual(9);
    expect(bytes[3]).toBe(0x04); // frame type SETTINGS
  });

  it("closes a connection that sends nothing within the first-bytes timeout", async () => {
    const server = await start(true, 200);
    const c = await rawKafka(server.port);
    expect(await c.waitClosed(5000)).toBe(true);
  });

  it("closes non-gRPC connections when no Kafka listener is configured, and still serves gRPC", async () => {
    const server = await start(false);
    const c = await rawKafka(server.port);
    c.write(apiVersionsFrame(1, 3));
    expect(await c.waitClosed()).toBe(true);
    expect(c.received.length).toBe(0);
    const grpcClient = new RawBrokerClient(`127.0.0.1:${server.port}`);
    clients.push(grpcClient);
    expect(((await grpcClient.metadata({ topics: [], allowAutoTopicCreation: false } as never)) as MetadataResponse).clusterId).toBe("same-port");
  });

  it("binds every address a host name resolves to, on one port, as grpc-js did", async () => {
    const addresses = (await dns.lookup("localhost", { all: true })).map((a) => a.address);
    const s = await startBrokerGrpcServer({ api: fakeBroker, host: "localhost", port: 0, logger: silentLogger(), kafka: kafkaSettings });
    servers.push(s);
    for (const address of addresses) {
      const c = await RawKafkaSocket.connect(s.port, address);
      clients.push(c);
      c.write(apiVersionsFrame(1, 0));
      expect(readApiVersionsResponse((await c.responses(1))[0]!, 0).body.errorCode, address).toBe(0);
    }
  });

  it("close() ends open gRPC and Kafka connections and frees the port", async () => {
    const tcpHandles = () => process.getActiveResourcesInfo().filter((r) => r.startsWith("TCP")).length;
    const handlesBefore = tcpHandles();
    const server = await start();
    const grpcClient = new RawBrokerClient(`127.0.0.1:${server.port}`);
    clients.push(grpcClient);
    await grpcClient.metadata({ topics: [], allowAutoTopicCreation: false } as never);
    const kafka = await rawKafka(server.port);
    kafka.write(apiVersionsFrame(1, 0));
    await kafka.responses(1);
    const idle = await rawKafka(server.port); // still in the first-bytes wait
    const t0 = Date.now();
    await server.close(2000);
    // Graceful: idle gRPC sessions end at once, without waiting out the grace period.
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(await kafka.waitClosed(2000)).toBe(true);
    expect(await idle.waitClosed(2000)).toBe(true);
    // The port is free again.
    const again = net.createServer();
    await new Promise<void>((resolve, reject) => {
      again.once("error", reject);
      again.listen(server.port, "127.0.0.1", () => resolve());
    });
    await new Promise<void>((r) => again.close(() => r()));
    // With the clients gone too, no TCP handle of the server is left behind.
    for (const c of clients.splice(0)) c.close();
    for (let i = 0; i < 50 && tcpHandles() > handlesBefore; i++) await new Promise((r) => setTimeout(r, 20));
    expect(tcpHandles()).toBeLessThanOrEqual(handlesBefore);
  });
});

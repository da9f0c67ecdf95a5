import type * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { silentLogger } from "@flotilla/common/logger";
import type { Message } from "@flotilla/raft";
import { freePorts } from "../../../../test/helpers/processes.js";
import { bindGrpcServer, createGrpcServer, shutdownGrpcServer } from "./grpc-server.js";
import { GrpcRaftTransport, addRaftTransportService } from "./transport.js";

const logger = silentLogger();

function heartbeat(from: number, to: number, term: number): Message {
  return { type: "Heartbeat", from, to, term, logIndex: 0, logTerm: 0, entries: [], commit: term, reject: false, hintIndex: 0, hintTerm: 0 };
}

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("gRPC Raft transport", () => {
  const servers: grpc.Server[] = [];
  const transports: GrpcRaftTransport[] = [];

  async function receiver(selfId: number, port: number, received: Message[]): Promise<grpc.Server> {
    const server = createGrpcServer();
    addRaftTransportService(server, { selfId, logger, onMessage: (m) => received.push(m) });
    await bindGrpcServer(server, `127.0.0.1:${port}`);
    servers.push(server);
    return server;
  }
  function sender(selfId: number, peers: Array<[number, string]>, extra: Partial<ConstructorParameters<typeof GrpcRaftTransport>[0]> = {}): GrpcRaftTransport {
    const t = new GrpcRaftTransport({ selfId, peers: new Map(peers), logger, ...extra });
    transports.push(t);
    return t;
  }

  afterEach(async () => {
    for (const t of transports.splice(0)) await t.close();
    for (const s of servers.splice(0)) await shutdownGrpcServer(s, 100);
  });

  it("delivers messages to the right peer in send order; one send() call is one batch per peer", async () => {
    const [p2, p3] = await freePorts(2);
    const at2: Message[] = [];
    const at3: Message[] = [];
    await receiver(2, p2!, at2);
    await receiver(3, p3!, at3);
    const t = sender(1, [[2, `127.0.0.1:${p2}`], [3, `127.0.0.1:${p3}`]]);
    for (let term = 1; term <= 300; term++) t.send([heartbeat(1, 2, term), heartbeat(1, 3, term)]);
    await waitFor(() => at2.length === 300 && at3.length === 300, 5000);
    expect(at2.map((m) => m.term)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    expect(at3.every((m) => m.to === 3 && m.from === 1)).toBe(true);
    // While the stream connects its buffer fills; what waits meanwhile goes out batched.
    const batches = t.stats(2)!.sentBatches;
    expect(batches).toBeLessThanOrEqual(300);
    t.send(Array.from({ length: 100 }, (_, i) => heartbeat(1, 2, 1000 + i)));
    await waitFor(() => at2.length === 400, 5000);
    expect(t.stats(2)!.sentBatches).toBe(batches + 1);
    expect(t.stats(2)!.streamsOpened).toBe(1);
  });

  it("a dead peer never blocks send(); its queue stays bounded; it gets messages once it listens", async () => {
    const [port] = await freePorts(1);
    const t = sender(1, [[2, `127.0.0.1:${port}`]], { queueMessagesMax: 50, retryBackoffMaxMs: 100 });
    const started = performance.now();
    for (let term = 1; term <= 1000; term++) t.send([heartbeat(1, 2, term)]);
    expect(performance.now() - started).toBeLessThan(500);
    expect(t.stats(2)!.queued).toBeLessThanOrEqual(50);
    await waitFor(() => t.stats(2)!.streamErrors > 0, 5000);
    for (let term = 1; term <= 1000; term++) t.send([heartbeat(1, 2, term)]);
    expect(t.stats(2)!.queued).toBeLessThanOrEqual(50);
    expect(t.stats(2)!.droppedOverflow).toBeGreaterThan(0);

    const received: Message[] = [];
    await receiver(2, port!, received);
    // Raft keeps sending; so does this test, until the peer answers.
    const deadline = Date.now() + 8000;
    let term = 1000;
    while (received.length === 0 && Date.now() < deadline) {
      t.send([heartbeat(1, 2, ++term)]);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(received.length).toBeGreaterThan(0);
  });

  it("a peer listening under another node id refuses the batch, and nothing is delivered", async () => {
    const [port] = await freePorts(1);
    const received: Message[] = [];
    await receiver(3, port!, received);
    const t = sender(1, [[2, `127.0.0.1:${port}`]]);
    t.send([heartbeat(1, 2, 1)]);
    await waitFor(() => t.stats(2)!.streamErrors === 1, 5000);
    expect(received).toEqual([]);
  });
});

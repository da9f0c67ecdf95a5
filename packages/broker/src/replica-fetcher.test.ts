import { getEventListeners } from "node:events";
import { afterEach, describe, expect, it } from "vitest";
import { FlotillaError } from "@flotilla/common";
import { silentLogger } from "@flotilla/common/logger";
import type { BrokerApi, FetchResponse } from "@flotilla/protocol";
import { startBrokerGrpcServer, type BrokerGrpcServer } from "./grpc-server.js";
import { grpcReplicaClientFactory, type ReplicaFetchClient } from "./replica-fetcher.js";

/** Answers Fetch with an empty response; nothing else is called. */
const fakeLeader = new Proxy({} as BrokerApi, {
  get: (_t, name) =>
    name === "fetch"
      ? async (): Promise<FetchResponse> => ({ topics: [] })
      : async () => Promise.reject(new FlotillaError("UNSUPPORTED_VERSION", `fake leader has no ${String(name)}`)),
});

const servers: BrokerGrpcServer[] = [];
const clients: ReplicaFetchClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const s of servers.splice(0)) await s.close(1000);
});

describe("gRPC replica fetch client", () => {
  it("leaves no abort listener on the fetcher's signal once each call ended (the signal lives across many fetches)", async () => {
    const server = await startBrokerGrpcServer({ api: fakeLeader, host: "127.0.0.1", port: 0, logger: silentLogger() });
    servers.push(server);
    const client = grpcReplicaClientFactory({ brokerId: 1, host: "127.0.0.1", port: server.port });
    clients.push(client);
    const signal = new AbortController().signal;
    for (let i = 0; i < 20; i++) {
      const response = await client.fetch({ replicaId: 2, maxWaitMs: 0, minBytes: 0, maxBytes: 1024, topics: [] }, signal);
      expect(response.topics).toEqual([]);
    }
    expect(getEventListeners(signal, "abort")).toHaveLength(0);
  });
});

import { getEventListeners } from "node:events";
import { afterEach, describe, expect, it } from "vitest";
import { FlotillaError } from "@flotilla/common";
import { silentLogger } from "@flotilla/common/logger";
import type { BrokerApi, FetchResponse } from "@flotilla/protocol";
import { startBrokerGrpcServer, type BrokerGrpcServer } from "./grpc-server.js";
import type { Partition } from "./partition.js";
import { REPLICA_FETCHER_DEFAULTS, ReplicaFetcher, grpcReplicaClientFactory, type ReplicaFetchClient } from "./replica-fetcher.js";

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

describe("ReplicaFetcher", () => {
  it("stop() ends the loop at once even when it comes between two pauses (the backoff that follows is not waited out)", async () => {
    const backoffMs = 20_000;
    // The parts of a follower partition the truncation phase reads: a log with a latest epoch.
    const partition = { key: "t-0", topic: "t", partition: 0, role: "follower", leaderEpoch: 1, log: { leaderEpochCache: { latestEpoch: 1 }, logEndOffset: 0 } } as unknown as Partition;
    let fetcher!: ReplicaFetcher;
    let asked = 0;
    const client: ReplicaFetchClient = {
      fetch: () => Promise.reject(new FlotillaError("UNKNOWN_SERVER_ERROR", "not reached")),
      offsetForLeaderEpoch: async () => {
        asked++;
        // Stopping here, while the loop is busy rather than pausing: the leader's refusal
        // below then holds the partition back for the backoff, and the loop pauses next.
        stopping = fetcher.stop();
        return { topics: [{ name: "t", partitions: [{ partition: 0, errorCode: 6, errorMessage: "not the leader", leaderEpoch: -1, endOffset: -1 }] }] };
      },
      close: () => {},
    };
    let stopping: Promise<void> | undefined;
    fetcher = new ReplicaFetcher(1, {
      nodeId: 2,
      config: { ...REPLICA_FETCHER_DEFAULTS, fetchBackoffMs: backoffMs },
      clientFactory: () => client,
      resolveEndpoint: (brokerId) => ({ brokerId, host: "127.0.0.1", port: 1 }),
      monotonicMs: () => performance.now(),
      logger: silentLogger(),
    });
    const started = performance.now();
    fetcher.add(partition, 1);
    for (let i = 0; i < 200 && stopping === undefined; i++) await new Promise((r) => setTimeout(r, 10));
    expect(asked).toBe(1);
    await stopping;
    expect(performance.now() - started).toBeLessThan(backoffMs / 4);
  });
});

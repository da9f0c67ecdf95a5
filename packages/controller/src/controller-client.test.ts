/**
 * Leader following of the controller quorum client against real gRPC servers on loopback:
 * one voter that never answers (as a controller cut off by a network partition does) and
 * one that answers BrokerHeartbeat as the active controller, or NOT_CONTROLLER with a hint.
 */
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { FlotillaError } from "@flotilla/common";
import { serviceClientCtor, toServiceError } from "@flotilla/protocol";
import { ControllerQuorumClient } from "./controller-client.js";
import { CONTROLLER_PROTO, CONTROLLER_SERVICE } from "./controller-service.js";
import { bindGrpcServer, createGrpcServer, shutdownGrpcServer } from "./raft/grpc-server.js";

type Handler = (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => void;

const servers: grpc.Server[] = [];
const clients: ControllerQuorumClient[] = [];
/** Callbacks of calls the silent voter holds, answered at cleanup so no call outlives the test. */
const held: grpc.sendUnaryData<unknown>[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const cb of held.splice(0)) cb(toServiceError(new FlotillaError("SHUTTING_DOWN", "test over")) as grpc.ServiceError);
  await Promise.all(servers.splice(0).map((s) => shutdownGrpcServer(s, 500)));
});

async function voter(heartbeat: Handler, fetchMetadata?: Handler): Promise<{ address: string; calls: () => number }> {
  let calls = 0;
  const server = createGrpcServer();
  const ctor = serviceClientCtor(CONTROLLER_PROTO, CONTROLLER_SERVICE);
  server.addService(ctor.service, {
    BrokerHeartbeat: ((call, callback) => {
      calls++;
      heartbeat(call, callback);
    }) satisfies Handler,
    ...(fetchMetadata ? { FetchMetadata: fetchMetadata } : {}),
  });
  const port = await bindGrpcServer(server, "127.0.0.1:0");
  servers.push(server);
  return { address: `127.0.0.1:${port}`, calls: () => calls };
}

const silent = (): Promise<{ address: string; calls: () => number }> => voter((_call, callback) => void held.push(callback));
const active = (): Promise<{ address: string; calls: () => number }> => voter((_call, callback) => callback(null, { isFenced: false, shouldShutDown: false, isCaughtUp: true, metadataOffset: 7 }));
const HEARTBEAT = { brokerId: 1, brokerEpoch: 0, currentMetadataOffset: 0, wantFence: false, wantShutDown: false };

describe("ControllerQuorumClient leader following", () => {
  it("noteLeader abandons an attempt stuck at the former leader and sends it to the new one at once", async () => {
    const cutOff = await silent();
    const leader = await active();
    const client = new ControllerQuorumClient({ addresses: [cutOff.address, leader.address], callTimeoutMs: 10_000, totalTimeoutMs: 20_000 });
    clients.push(client);
    const startedMs = Date.now();
    const pending = client.brokerHeartbeat(HEARTBEAT);
    // Bounded wait until the attempt reached the silent voter.
    for (let i = 0; i < 200 && cutOff.calls() === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(cutOff.calls()).toBe(1);
    client.noteLeader(leader.address);
    const reply = await pending;
    expect(reply).toMatchObject({ isFenced: false, metadataOffset: 7 });
    expect(Date.now() - startedMs, "answered long before the 10 s attempt deadline").toBeLessThan(5_000);
    expect(leader.calls()).toBe(1);
    expect(client.activeControllerAddress).toBe(leader.address);
    expect(client.leaderAddress).toBe(leader.address);
  });

  it("a heartbeat attempt gives up after heartbeatCallTimeoutMs and finds the answering voter", async () => {
    const cutOff = await silent();
    const leader = await active();
    const client = new ControllerQuorumClient({ addresses: [cutOff.address, leader.address], callTimeoutMs: 10_000, heartbeatCallTimeoutMs: 300, totalTimeoutMs: 20_000 });
    clients.push(client);
    const startedMs = Date.now();
    const reply = await client.brokerHeartbeat(HEARTBEAT);
    expect(reply.isFenced).toBe(false);
    expect(Date.now() - startedMs).toBeLessThan(5_000);
    expect(cutOff.calls()).toBe(1);
    expect(client.activeControllerAddress).toBe(leader.address);
  });

  it("a hint learned by one call moves the others: a metadata long-poll stuck at a cut-off voter goes to the hinted leader", async () => {
    let fetchesHeld = 0;
    const cutOff = await voter(
      (_call, callback) => void held.push(callback),
      (_call, callback) => {
        fetchesHeld++;
        held.push(callback);
      },
    );
    const leader = await voter(
      (_call, callback) => callback(null, { isFenced: false, shouldShutDown: false, isCaughtUp: true, metadataOffset: 3 }),
      (_call, callback) => callback(null, { records: [], snapshot: Buffer.alloc(0), snapshotOffset: -1, committedOffset: 3 }),
    );
    const follower = await voter((_call, callback) => callback(toServiceError(new FlotillaError("NOT_CONTROLLER", "follower", { leaderHint: leader.address })) as grpc.ServiceError));
    const client = new ControllerQuorumClient({ addresses: [cutOff.address, follower.address, leader.address], heartbeatCallTimeoutMs: 300, totalTimeoutMs: 20_000 });
    clients.push(client);
    const startedMs = Date.now();
    const fetching = client.fetchMetadata(4, 2_000); // its attempt deadline is 7 s
    for (let i = 0; i < 200 && fetchesHeld === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(fetchesHeld).toBe(1);
    // The heartbeat times out at the cut-off voter, is refused by the follower with the hint, and answered by the leader.
    expect((await client.brokerHeartbeat(HEARTBEAT)).isFenced).toBe(false);
    expect((await fetching).committedOffset).toBe(3);
    expect(Date.now() - startedMs, "the long-poll was moved, not left to its 7 s deadline").toBeLessThan(5_000);
  });

  it("learns the active controller from a NOT_CONTROLLER hint, and a voter hinting at itself (elected, not yet active) is asked again", async () => {
    const leader = await active();
    let refusals = 0;
    const electing = await voter((_call, callback) => {
      // Refuses twice as "not yet active" naming itself, then answers.
      if (refusals++ < 2) callback(toServiceError(new FlotillaError("NOT_CONTROLLER", "not active yet", { leaderHint: selfAddress })) as grpc.ServiceError);
      else callback(null, { isFenced: true, shouldShutDown: false, isCaughtUp: false, metadataOffset: 1 });
    });
    const selfAddress = electing.address;
    const follower = await voter((_call, callback) => callback(toServiceError(new FlotillaError("NOT_CONTROLLER", "follower", { leaderHint: selfAddress })) as grpc.ServiceError));
    const client = new ControllerQuorumClient({ addresses: [follower.address, electing.address, leader.address], totalTimeoutMs: 10_000 });
    clients.push(client);
    const reply = await client.brokerHeartbeat(HEARTBEAT);
    expect(reply.isFenced).toBe(true);
    expect(electing.calls()).toBe(3);
    expect(leader.calls(), "the hinted voter was retried rather than skipped").toBe(0);
    expect(client.activeControllerAddress).toBe(electing.address);
  });
});

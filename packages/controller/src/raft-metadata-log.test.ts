import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { SeededRandom } from "@flotilla/common";
import { silentLogger } from "@flotilla/common/logger";
import { Controller } from "./controller.js";
import { ControllerQuorumClient } from "./controller-client.js";
import { addControllerService } from "./controller-service.js";
import { decodeImage, encodeImage } from "./image-snapshot.js";
import { RaftMetadataLog, decodeEntry, encodeEntry } from "./raft-metadata-log.js";
import { bindGrpcServer, createGrpcServer, shutdownGrpcServer } from "./raft/grpc-server.js";
import { addRaftTransportService } from "./raft/transport.js";

const logger = silentLogger();
const endpoints = [{ name: "PLAINTEXT", host: "127.0.0.1", port: 9092 }];

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

interface Voter {
  id: number;
  log: RaftMetadataLog;
  controller: Controller;
  stop(leadership?: "transfer" | "abandon"): Promise<void>;
}

const started: Voter[] = [];
const dirs: string[] = [];

async function startVoter(id: number, voters: Map<number, string>, dir: string): Promise<Voter> {
  const log = await RaftMetadataLog.open({ nodeId: id, voters, dir, logger, tickMs: 20, electionTicks: 10, snapshotEveryEntries: 4 });
  const controller = await Controller.start({ log, defaults: { numPartitions: 1, replicationFactor: 3 }, random: new SeededRandom(id), logger });
  const server = createGrpcServer();
  addRaftTransportService(server, { selfId: id, onMessage: (m) => log.driver.receive(m), logger });
  addControllerService(server, { controller, log, logger });
  await bindGrpcServer(server, voters.get(id)!);
  let stopped = false;
  const voter: Voter = {
    id,
    log,
    controller,
    async stop(leadership = "transfer") {
      if (stopped) return;
      stopped = true;
      await controller.close();
      await log.close({ leadership });
      await shutdownGrpcServer(server, 200);
    },
  };
  started.push(voter);
  return voter;
}

async function waitFor<T>(what: string, fn: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

afterEach(async () => {
  for (const v of started.splice(0)) await v.stop("abandon");
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe("metadata entries and image snapshots", () => {
  it("a batch round-trips through one Raft entry, and an image through a snapshot", () => {
    const records = [
      { type: "Topic", name: "t", topicId: "AAAAAAAAAAAAAAAAAAAAAA" },
      { type: "RegisterBroker", brokerId: 1, incarnationId: "x", endpoints, rack: null },
    ] as const;
    expect(decodeEntry(encodeEntry(records), "test")).toEqual(records);
    expect(() => decodeEntry(encodeEntry(records).subarray(0, 20), "entry 7")).toThrow(/STORAGE_CORRUPT: entry 7/);
  });
});

describe("RaftMetadataLog on a 3-voter quorum", () => {
  it("replicates controller commands to every voter, survives losing the active controller, and catches a restarted voter up from a snapshot", async () => {
    const ports = await Promise.all([1, 2, 3].map(() => freePort()));
    const voters = new Map(ports.map((p, i) => [i + 1, `127.0.0.1:${p}`]));
    const base = await mkdtemp(path.join(tmpdir(), "flotilla-raft-meta-"));
    dirs.push(base);
    const nodes = await Promise.all([1, 2, 3].map((id) => startVoter(id, voters, path.join(base, `n${id}`))));
    const client = new ControllerQuorumClient({ addresses: [...voters.values()], totalTimeoutMs: 10_000 });
    try {
      const active = await waitFor("an active controller", () => nodes.find((n) => n.log.isActive()));
      // Followers refuse with the active controller's address as hint.
      const follower = nodes.find((n) => n !== active)!;
      await expect(follower.controller.registerBroker({ brokerId: 9, incarnationId: "z", endpoints }, { forward: false })).rejects.toMatchObject({
        errorName: "NOT_CONTROLLER",
        leaderHint: voters.get(active.id),
      });
      // A client that starts at a follower follows its NOT_CONTROLLER hint to the active controller.
      const viaFollower = new ControllerQuorumClient({ addresses: [voters.get(follower.id)!, ...[...voters.values()].filter((a) => a !== voters.get(follower.id))] });
      expect(viaFollower.leaderAddress).toBe(voters.get(follower.id));
      await viaFollower.registerBroker({ brokerId: 9, incarnationId: "z", endpoints });
      expect(viaFollower.leaderAddress).toBe(voters.get(active.id));
      viaFollower.close();
      for (const id of [1, 2, 3]) {
        const { brokerEpoch } = await client.registerBroker({ brokerId: id, incarnationId: `i${id}`, endpoints });
        const hb = await client.brokerHeartbeat({ brokerId: id, brokerEpoch, currentMetadataOffset: brokerEpoch, wantFence: false, wantShutDown: false });
        expect(hb.isFenced).toBe(false);
      }
      const created = await client.createTopics({ topics: [{ name: "orders", numPartitions: 3, replicationFactor: 3, configs: {} }], timeoutMs: 0, validateOnly: false });
      expect(created.topics[0]).toMatchObject({ errorCode: 0, numPartitions: 3 });
      const offset = active.controller.image().offset;
      await waitFor("every voter at the leader's offset", () => nodes.every((n) => n.controller.image().offset === offset));
      for (const n of nodes) expect(encodeImage(n.controller.image())).toEqual(encodeImage(active.controller.image()));

      // The image round-trips through its snapshot encoding.
      expect(encodeImage(decodeImage(encodeImage(active.controller.image())))).toEqual(encodeImage(active.controller.image()));

      // Lose the active controller without a hand-off: another voter takes over.
      const survivors = nodes.filter((n) => n !== active);
      const firstTerm = active.log.activeTerm();
      expect(firstTerm).toBeGreaterThan(0);
      for (const n of survivors) expect(n.log.leaderId()).toBe(active.id);
      // Survivors tell their listeners of the new leader (what points their controller clients at it).
      const heard = new Map<number, { leaderId: number; address: string | undefined }>();
      const stops = survivors.map((n) => n.log.onLeaderChange((leaderId, address) => heard.set(n.id, { leaderId, address })));
      await active.stop("abandon");
      const next = await waitFor("a new active controller", () => survivors.find((n) => n.log.isActive()));
      expect(next.id).not.toBe(active.id);
      expect(next.log.activeTerm(), "a new term of activity").toBeGreaterThan(firstTerm);
      await waitFor("every survivor heard of the new leader", () => survivors.every((n) => heard.get(n.id)?.leaderId === next.id));
      for (const n of survivors) {
        expect(heard.get(n.id)).toEqual({ leaderId: next.id, address: voters.get(next.id) });
        expect(n.log.leaderId()).toBe(next.id);
      }
      for (const stop of stops) stop();
      const again = await client.createTopics({ topics: [{ name: "more", numPartitions: 2, replicationFactor: 2, configs: {} }], timeoutMs: 0, validateOnly: false });
      expect(again.topics[0]).toMatchObject({ errorCode: 0 });
      const block = await client.allocateProducerIds({ brokerId: 1, brokerEpoch: next.controller.image().brokers.get(1)!.brokerEpoch });
      expect(block).toMatchObject({ firstProducerId: 0, count: 1000 });

      // The stopped voter restarts from its snapshot + log and catches up (snapshots every 4 entries).
      const back = await startVoter(active.id, voters, path.join(base, `n${active.id}`));
      const target = next.controller.image().offset;
      await waitFor("the restarted voter to catch up", () => back.controller.image().offset >= target);
      expect(back.controller.image().topicsByName.has("more")).toBe(true);
      expect(encodeImage(back.controller.image())).toEqual(encodeImage(next.controller.image()));

      // Brokers following the log get records after an offset, or the image when they ask for the start.
      const fetched = await client.fetchMetadata(target, 0);
      expect(fetched.committedOffset).toBeGreaterThanOrEqual(target);
      const quorum = await client.describeQuorum(voters.get(next.id));
      expect(quorum).toMatchObject({ leaderId: next.id, nodeId: next.id });
      expect(quorum.voters.map((v) => v.id)).toEqual([1, 2, 3]);
    } finally {
      client.close();
    }
  }, 30_000);
});

import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { silentLogger } from "@flotilla/common/logger";
import { ControllerQuorumClient } from "@flotilla/controller";
import { encodeBatch } from "@flotilla/protocol";
import { loadServerConfig } from "./config.js";
import { startNode, type NodeHandle } from "./node.js";
import { makeDataDir, RawBrokerClient } from "./test-client.js";

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

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

describe("separate controller and broker processes (in-process here)", () => {
  it("a broker-only node follows the metadata log of a controller-only voter, registers, and serves a topic it created through it", async () => {
    const controllerPort = await freePort();
    const voters = `1@127.0.0.1:${controllerPort}`;
    const cdata = await makeDataDir();
    const bdata = await makeDataDir();
    cleanups.push(cdata.remove, bdata.remove);
    const common = { "controller.quorum.voters": voters, "broker.heartbeat.interval.ms": "200", "broker.session.timeout.ms": "3000" };
    const controller: NodeHandle = await startNode(
      loadServerConfig({ env: {}, overrides: { ...common, "node.id": "1", "process.roles": "controller", listeners: `CONTROLLER://127.0.0.1:${controllerPort}`, "log.dirs": cdata.dir } }),
      { logger: silentLogger() },
    );
    cleanups.push(() => controller.close());
    expect(controller.controllerPort).toBe(controllerPort);
    expect(controller.port).toBe(0);

    const broker = await startNode(
      loadServerConfig({ env: {}, overrides: { ...common, "node.id": "2", "process.roles": "broker", listeners: "PLAINTEXT://127.0.0.1:0", "log.dirs": bdata.dir } }),
      { logger: silentLogger() },
    );
    cleanups.push(() => broker.close());
    const client = new RawBrokerClient(broker.address);
    cleanups.push(() => client.close());

    const created = await client.createTopics({ topics: [{ name: "events", numPartitions: 2, replicationFactor: 1, configs: {} }], timeoutMs: 5000, validateOnly: false });
    expect(created.topics[0]).toMatchObject({ errorCode: 0 });
    const meta = await client.metadata({ topics: ["events"], allowAutoTopicCreation: false });
    expect(meta.brokers.map((b) => b.nodeId)).toEqual([2]);
    expect(meta.topics[0]?.partitions.map((p) => p.leaderId)).toEqual([2, 2]);
    const produced = await client.produce({
      acks: 1,
      timeoutMs: 5000,
      topics: [{ name: "events", partitions: [{ partition: 0, records: encodeBatch([{ key: null, value: Buffer.from("hello"), timestamp: 1 }]) }] }],
    } as Parameters<RawBrokerClient["produce"]>[0]);
    expect(produced.topics[0]?.partitions[0]).toMatchObject({ errorCode: 0, baseOffset: 0 });

    const quorum = new ControllerQuorumClient({ addresses: [`127.0.0.1:${controllerPort}`] });
    cleanups.push(() => quorum.close());
    const cluster = await quorum.describeCluster();
    expect(cluster.brokers).toMatchObject([{ brokerId: 2, fenced: false }]);

    // A controlled shutdown of the only broker leaves its partitions leaderless, and it is fenced.
    await broker.close();
    const after = await quorum.describeCluster();
    expect(after.brokers).toMatchObject([{ brokerId: 2, fenced: true }]);
  }, 30_000);
});

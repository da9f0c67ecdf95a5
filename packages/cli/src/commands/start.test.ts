import { describe, expect, it } from "vitest";
import { clusterBanner, planLocalCluster } from "./start.js";
import { formatClusterView } from "./cluster.js";

describe("flotilla start", () => {
  it("plans 3 combined voters on 9092-9094 with controllers on 19092-19094 and data in ./data/node-N", async () => {
    const plan = await planLocalCluster({ cwd: "/home/me/p", nodes: 3, overrides: { "num.partitions": "3" } });
    expect(plan.map((p) => [p.clientPort, p.controllerPort, p.dataDir])).toEqual([
      [9092, 19092, "/home/me/p/data/node-1"],
      [9093, 19093, "/home/me/p/data/node-2"],
      [9094, 19094, "/home/me/p/data/node-3"],
    ]);
    expect(plan[1]!.properties).toEqual({
      "num.partitions": "3",
      "node.id": "2",
      "process.roles": "broker,controller",
      listeners: "PLAINTEXT://127.0.0.1:9093,CONTROLLER://127.0.0.1:19093",
      "log.dirs": "/home/me/p/data/node-2",
      "controller.quorum.voters": "1@127.0.0.1:19092,2@127.0.0.1:19093,3@127.0.0.1:19094",
      "default.replication.factor": "3",
    });
    const banner = clusterBanner(plan);
    expect(banner).toContain("Flotilla is running on 127.0.0.1:9092 (3 nodes");
    expect(banner).toContain("flotilla cluster describe\n");
    expect(banner).not.toContain("--bootstrap-server");
  });

  it("one node is the single-node mode; a listeners override moves node 1 and the rest take free ports", async () => {
    const [single] = await planLocalCluster({ cwd: "/p", nodes: 1, overrides: {} });
    expect(single!.properties).not.toHaveProperty("controller.quorum.voters");
    expect(single!.properties.listeners).toBe("PLAINTEXT://127.0.0.1:9092");
    const moved = await planLocalCluster({ cwd: "/p", nodes: 3, overrides: { listeners: "127.0.0.1:40001" } });
    expect(moved[0]!.clientPort).toBe(40001);
    expect(new Set(moved.flatMap((p) => [p.clientPort, p.controllerPort])).size).toBe(6);
    expect(clusterBanner(moved)).toContain("--bootstrap-server 127.0.0.1:40001");
    await expect(planLocalCluster({ cwd: "/p", nodes: 3, overrides: { listeners: "a:1,b:2" } })).rejects.toThrow(/one host:port/);
  });
});

describe("flotilla cluster describe", () => {
  it("prints brokers with their state and the quorum with each voter's lag", () => {
    const text = formatClusterView({
      brokers: [
        { brokerId: 1, brokerEpoch: 3, endpoints: [{ name: "PLAINTEXT", host: "127.0.0.1", port: 9092 }], rack: null, fenced: false },
        { brokerId: 2, brokerEpoch: 0, endpoints: [{ name: "PLAINTEXT", host: "127.0.0.1", port: 9093 }], rack: "r1", fenced: true },
      ],
      activeControllerId: 1,
      metadataOffset: 12,
      quorum: { leaderId: 1, term: 4, commitIndex: 20, lastIndex: 20, voters: [{ id: 1, address: "127.0.0.1:19092", matchIndex: 20, lag: 0 }, { id: 2, address: "127.0.0.1:19093", matchIndex: -1, lag: -1 }] },
    });
    expect(text).toBe(
      [
        "Brokers (metadata offset 12):",
        "BROKER  ENDPOINT                    STATE   EPOCH  RACK",
        "1       PLAINTEXT://127.0.0.1:9092  alive   3      -",
        "2       PLAINTEXT://127.0.0.1:9093  fenced  0      r1",
        "",
        "Quorum: leader 1, term 4, commit index 20",
        "VOTER  ADDRESS          ROLE      MATCH  LAG",
        "1      127.0.0.1:19092  leader    20     0",
        "2      127.0.0.1:19093  follower  ?      ?",
        "",
      ].join("\n"),
    );
  });
});

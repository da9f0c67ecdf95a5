import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FlotillaError } from "@flotilla/common";
import { EMPTY_IMAGE, type MetadataImage } from "@flotilla/metadata";
import { encodeBatch } from "@flotilla/protocol";
import { loadServerConfig } from "./config.js";
import { NodeStatus, type PartitionView } from "./http-admin.js";
import { makeDataDir, startTestNode, type TestNode } from "./test-client.js";

function imageWith(offset: number, broker?: { brokerEpoch: number; fenced: boolean }): MetadataImage {
  const brokers = new Map(broker ? [[1, { brokerId: 1, incarnationId: "x", brokerEpoch: broker.brokerEpoch, endpoints: [], rack: null, fenced: broker.fenced }]] : []);
  return { ...EMPTY_IMAGE, offset, brokers };
}

function brokerStatus(image: MetadataImage, appliedOffset: number, brokerEpoch: number): NodeStatus {
  const s = new NodeStatus(1, ["broker", "controller"]);
  s.controller = { image: () => image };
  s.metadataLog = { committedOffset: () => image.offset };
  s.broker = { replicas: { appliedOffset, allPartitions: (): PartitionView[] => [] }, brokerEpoch: () => brokerEpoch };
  return s;
}

const failing = (s: NodeStatus) => s.readiness().checks.filter((c) => !c.ok).map((c) => c.name);

describe("NodeStatus.readiness", () => {
  it("is not ready while starting, and says which checks are missing", () => {
    const s = new NodeStatus(1, ["broker", "controller"]);
    expect(s.readiness().ready).toBe(false);
    expect(failing(s)).toEqual(["serving", "metadata-applied", "registered", "broker-caught-up"]);
  });

  it("is ready once serving, registered with the current epoch, unfenced and caught up", () => {
    const s = brokerStatus(imageWith(10, { brokerEpoch: 7, fenced: false }), 10, 7);
    s.phase = "serving";
    expect(s.readiness()).toMatchObject({ ready: true });
  });

  it("is not ready when fenced, when the image holds an older registration, or when partitions lag the image", () => {
    const fenced = brokerStatus(imageWith(10, { brokerEpoch: 7, fenced: true }), 10, 7);
    fenced.phase = "serving";
    expect(failing(fenced)).toEqual(["registered"]);
    const stale = brokerStatus(imageWith(10, { brokerEpoch: 3, fenced: false }), 10, 7);
    stale.phase = "serving";
    expect(failing(stale)).toEqual(["registered"]);
    const lagging = brokerStatus(imageWith(10, { brokerEpoch: 7, fenced: false }), 9, 7);
    lagging.phase = "serving";
    expect(failing(lagging)).toEqual(["broker-caught-up"]);
  });

  it("a controller is not ready without a known quorum leader or with committed records not yet applied", () => {
    const s = new NodeStatus(2, ["controller"]);
    s.phase = "serving";
    let leaderId = 0;
    let committed = 5;
    s.quorum = { quorumStatus: () => ({ leaderId, term: 3 }) };
    s.controller = { image: () => imageWith(5) };
    s.metadataLog = { committedOffset: () => committed };
    expect(failing(s)).toEqual(["quorum-leader"]);
    leaderId = 1;
    expect(s.readiness().ready).toBe(true);
    committed = 6;
    expect(failing(s)).toEqual(["metadata-applied"]);
  });

  it("drops readiness when stopping", () => {
    const s = brokerStatus(imageWith(10, { brokerEpoch: 7, fenced: false }), 10, 7);
    s.phase = "stopping";
    expect(failing(s)).toEqual(["serving"]);
  });
});

describe("http.listener configuration", () => {
  const base = { "node.id": "1", "log.dirs": "/tmp/x" };
  it("is off by default and read from FLOTILLA_HTTP_LISTENER", () => {
    expect(loadServerConfig({ env: {}, overrides: base }).httpListener).toBeNull();
    expect(loadServerConfig({ env: { FLOTILLA_HTTP_LISTENER: "0.0.0.0:8080" }, overrides: base }).httpListener).toEqual({ name: "PLAINTEXT", host: "0.0.0.0", port: 8080 });
  });
  it("refuses a value that is not host:port, naming the key", () => {
    for (const bad of ["8080", "HTTP://0.0.0.0:8080", "host:99999"]) {
      let caught: unknown;
      try {
        loadServerConfig({ env: {}, overrides: { ...base, "http.listener": bad } });
      } catch (err) {
        caught = err;
      }
      expect(FlotillaError.is(caught, "INVALID_CONFIG")).toBe(true);
      expect((caught as Error).message).toContain("http.listener");
    }
  });
});

describe("the HTTP admin endpoint of an in-process node", () => {
  let data: { dir: string; remove: () => Promise<void> };
  let t: TestNode;
  let base: string;

  beforeAll(async () => {
    data = await makeDataDir();
    t = await startTestNode(data.dir, { "http.listener": "127.0.0.1:0" });
    base = `http://127.0.0.1:${t.node.httpPort}`;
  });
  afterAll(async () => {
    await t?.stop();
    await data?.remove();
  });

  it("answers /healthz and a ready /readyz with every check", async () => {
    expect(t.node.httpPort).toBeGreaterThan(0);
    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.text()).toBe("ok\n");
    const ready = await fetch(`${base}/readyz`);
    const body = (await ready.json()) as { ready: boolean; nodeId: number; checks: { name: string; ok: boolean }[] };
    expect(ready.status).toBe(200);
    expect(body.ready).toBe(true);
    expect(body.nodeId).toBe(1);
    expect(body.checks.map((c) => c.name)).toEqual(["serving", "metadata-applied", "registered", "broker-caught-up"]);
    expect(t.node.readiness().ready).toBe(true);
  });

  it("counts produce and fetch calls and bytes, and reports led partitions and log end offsets", async () => {
    await t.client.createTopics({ topics: [{ name: "metered", numPartitions: 2, replicationFactor: 1, configs: {} }], timeoutMs: 1000, validateOnly: false });
    const records = encodeBatch([0, 1, 2].map((i) => ({ key: Buffer.from(`k${i}`), value: Buffer.from(`v${i}`), timestamp: 1_700_000_000_000 + i })));
    await t.client.produce({ acks: 1, timeoutMs: 1000, topics: [{ name: "metered", partitions: [{ partition: 1, records }] }] });
    const fetched = await t.client.fetch({
      replicaId: -1,
      maxWaitMs: 0,
      minBytes: 0,
      maxBytes: 1 << 20,
      topics: [{ name: "metered", partitions: [{ partition: 1, fetchOffset: 0, partitionMaxBytes: 1 << 20, currentLeaderEpoch: -1 }] }],
    });
    const fetchedBytes = fetched.topics[0]!.partitions[0]!.records.length;
    expect(fetchedBytes).toBeGreaterThan(0);

    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/plain");
    const text = await res.text();
    // `prefix` is a series name with its first labels, without the closing brace.
    const value = (prefix: string) => {
      const line = text.split("\n").find((l) => l.startsWith(prefix) && /[,} ]/.test(l.charAt(prefix.length)));
      expect(line, `series ${prefix} in /metrics`).toBeDefined();
      return Number(line!.slice(line!.lastIndexOf(" ") + 1));
    };
    expect(value('flotilla_partitions_led{node_id="1"')).toBeGreaterThanOrEqual(2);
    expect(value('flotilla_partition_log_end_offset{topic="metered",partition="1"')).toBe(3);
    expect(value('flotilla_partition_log_end_offset{topic="metered",partition="0"')).toBe(0);
    expect(value('flotilla_requests_total{api="produce",kind="client"')).toBe(1);
    expect(value('flotilla_produce_bytes_total{node_id="1"')).toBe(records.length);
    expect(value('flotilla_fetch_bytes_total{kind="consumer"')).toBe(fetchedBytes);
    expect(value('flotilla_node_ready{node_id="1"')).toBe(1);
    expect(text).toContain("process_cpu_seconds_total");
  });

  it("answers 404 for other paths and 405 for other methods", async () => {
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    expect((await fetch(`${base}/readyz`, { method: "POST" })).status).toBe(405);
  });
});

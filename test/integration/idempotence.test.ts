/**
 * The idempotent producer through a leader failover, with real processes on loopback: node 1
 * runs the (single) controller and a broker, nodes 2 and 3 are brokers only, so a broker can
 * die without taking the metadata quorum with it. An idempotent acks=all producer (the
 * default) keeps several send() calls in flight while the leader of a busy partition is
 * killed with SIGKILL. Retries after the lost answers go to the new leader with their
 * original sequences, and retries of batches other leaders appended but could not commit in
 * time (their ISR still held the dead broker) are recognised as such; afterwards every record is in the topic exactly once (nothing
 * duplicated, nothing missing) and the records of each key are in send order.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Admin, Consumer, Producer, type TopicDescription } from "../../packages/client/src/index.js";
import { BrokerConnection } from "../../packages/client/src/connection.js";
import { ControllerQuorumClient } from "../../packages/controller/src/index.js";
import { freePorts, killAllProcesses, startTsProcess, type ChildHandle } from "../helpers/processes.js";

const TOPIC = "idempotent";
const PARTITIONS = 3;
const RECORDS = 4000;
const CHUNK = 50;
/** send() calls in flight at once, so batches pipeline and some are in flight at the kill. */
const SENDS_IN_FLIGHT = 4;
const KEYS = 61;
/** Empty; `{ idempotent: false }` here shows the test catches duplicates. */
const PRODUCER_OVERRIDES = {};

let dataDir: string;
let clientPorts: number[];
let controllerPort: number;
const procs = new Map<number, ChildHandle>();

const bootstrap = () => clientPorts.map((p) => `127.0.0.1:${p}`).join(",");

async function startNodeProcess(id: number): Promise<ChildHandle> {
  const i = id - 1;
  const controller = id === 1;
  const child = await startTsProcess({
    name: `idempotence-node-${id}`,
    entry: "packages/cli/src/main.ts",
    args: [
      "server",
      ...[
        `node.id=${id}`,
        `process.roles=${controller ? "broker,controller" : "broker"}`,
        `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
        controller ? `listeners=PLAINTEXT://127.0.0.1:${clientPorts[i]},CONTROLLER://127.0.0.1:${controllerPort}` : `listeners=PLAINTEXT://127.0.0.1:${clientPorts[i]}`,
        `log.dirs=${path.join(dataDir, `node-${id}`)}`,
        "broker.session.timeout.ms=3000",
        "broker.heartbeat.interval.ms=300",
        "replica.lag.time.max.ms=2000",
        "controller.quorum.election.timeout.ms=1000",
        "default.replication.factor=3",
        "offsets.topic.replication.factor=1",
      ].flatMap((o) => ["--override", o]),
    ],
    env: { FLOTILLA_LOG_LEVEL: "info" },
    readyLine: /"event":"ready"/,
    readyTimeoutMs: 40_000,
  });
  procs.set(id, child);
  return child;
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (let i = 0; i < 10_000; i++) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ""}`);
}

async function describeTopic(): Promise<TopicDescription> {
  const a = new Admin({ bootstrapServers: bootstrap() });
  try {
    const [t] = await a.describeTopics({ topics: [TOPIC] });
    return t!;
  } finally {
    await a.close();
  }
}

/** Every record up to the high watermark: key and value, per partition in offset order. */
async function readAll(expectedAtLeast: number): Promise<{ partition: number; offset: number; key: string; value: string }[]> {
  const consumer = new Consumer({ bootstrapServers: bootstrap(), autoOffsetReset: "earliest" });
  const out: { partition: number; offset: number; key: string; value: string }[] = [];
  try {
    await consumer.assign([{ topic: TOPIC }]);
    let quietPolls = 0;
    const deadline = Date.now() + 30_000;
    // Bounded by time; two empty polls after the expected count show any surplus too.
    while (Date.now() < deadline && (out.length < expectedAtLeast || quietPolls < 2)) {
      const records = await consumer.poll({ timeoutMs: 500 });
      quietPolls = records.length === 0 ? quietPolls + 1 : 0;
      for (const r of records) out.push({ partition: r.partition, offset: r.offset, key: r.key!.toString(), value: r.value!.toString() });
    }
  } finally {
    await consumer.close();
  }
  return out;
}

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-idempotence-"));
  const ports = await freePorts(4);
  clientPorts = ports.slice(0, 3);
  controllerPort = ports[3]!;
  await startNodeProcess(1);
  await Promise.all([startNodeProcess(2), startNodeProcess(3)]);
}, 90_000);

afterAll(async () => {
  await killAllProcesses();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe("idempotent producer across a leader failover (3 broker processes)", () => {
  it("writes every keyed record exactly once and in per-key order while the leader of a busy partition is killed", async () => {
    const quorum = new ControllerQuorumClient({ addresses: [`127.0.0.1:${controllerPort}`], totalTimeoutMs: 10_000 });
    try {
      await waitFor("three unfenced brokers", async () => {
        const c = await quorum.describeCluster();
        return c.brokers.length === 3 && c.brokers.every((b) => !b.fenced);
      }, 30_000);
    } finally {
      quorum.close();
    }
    // Every broker hands out producer ids, from its own controller block (brokers 2 and 3
    // reach the controller remotely): no two are alike.
    const producerIds: number[] = [];
    for (const port of clientPorts) {
      const connection = new BrokerConnection(`127.0.0.1:${port}`, "idempotence-test");
      try {
        const r = await connection.initProducerId({ transactionalId: "" }, { timeoutMs: 10_000 });
        expect(r.errorCode, r.errorMessage).toBe(0);
        expect(r.producerEpoch).toBe(0);
        producerIds.push(r.producerId);
      } finally {
        connection.close();
      }
    }
    expect(new Set(producerIds).size).toBe(3);

    const admin = new Admin({ bootstrapServers: bootstrap() });
    await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: PARTITIONS, replicationFactor: 3, configs: { "min.insync.replicas": "2" } }] });
    await admin.close();
    const victim = (await describeTopic()).partitions.find((p) => p.leader !== 1)!;
    expect(victim).toBeDefined();

    // Defaults: acks "all", idempotent, up to 5 requests in flight per broker. A short request
    // timeout makes lost answers certain: until the dead broker leaves the ISRs
    // (replica.lag.time.max.ms), the other leaders append but cannot reach the high watermark
    // and answer REQUEST_TIMED_OUT, and the retries of those appended batches must not be
    // written again. (The same run with idempotent: false stores duplicates.)
    const producer = new Producer({ bootstrapServers: bootstrap(), lingerMs: 2, requestTimeoutMs: 1000, ...PRODUCER_OVERRIDES });
    const inFlight = new Set<Promise<unknown>>();
    let killedAtChunk = -1;
    try {
      for (let chunk = 0; chunk < RECORDS / CHUNK; chunk++) {
        if (chunk === 20) {
          killedAtChunk = chunk;
          // Killed while earlier sends are still in flight.
          await procs.get(victim.leader)!.kill("SIGKILL");
        }
        const messages = Array.from({ length: CHUNK }, (_, j) => {
          const n = chunk * CHUNK + j;
          return { key: `key-${n % KEYS}`, value: String(n) };
        });
        const sent = producer.send({ topic: TOPIC, messages });
        inFlight.add(sent);
        void sent.finally(() => inFlight.delete(sent)).catch(() => undefined);
        if (inFlight.size >= SENDS_IN_FLIGHT) await Promise.race(inFlight);
      }
      await Promise.all(inFlight);
    } finally {
      await producer.close();
    }
    expect(killedAtChunk).toBe(20);
    const after = await describeTopic();
    expect(after.partitions.find((p) => p.partition === victim.partition)!.leader).not.toBe(victim.leader);

    const read = await readAll(RECORDS);
    const values = read.map((r) => Number(r.value));
    const counts = new Map<number, number>();
    for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
    const duplicated = [...counts].filter(([, c]) => c > 1).map(([v]) => v);
    const missing = Array.from({ length: RECORDS }, (_, n) => n).filter((n) => !counts.has(n));
    expect(duplicated, "records stored more than once").toEqual([]);
    expect(missing, "records missing").toEqual([]);
    expect(read).toHaveLength(RECORDS);
    // Per key, in offset order, values grow: send order held through the retries.
    const byPartition = new Map<number, typeof read>();
    for (const r of read) byPartition.set(r.partition, [...(byPartition.get(r.partition) ?? []), r]);
    const lastOfKey = new Map<string, number>();
    for (const records of byPartition.values()) {
      records.sort((a, b) => a.offset - b.offset);
      for (const r of records) {
        expect(Number(r.value), `key ${r.key} out of order at ${r.partition}/${r.offset}`).toBeGreaterThan(lastOfKey.get(r.key) ?? -1);
        lastOfKey.set(r.key, Number(r.value));
      }
    }
    expect(read.some((r) => r.partition === victim.partition && r.offset > 0)).toBe(true);
  }, 180_000);
});

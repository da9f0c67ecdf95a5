/**
 * Leader/follower replication with real processes on loopback: node 1 runs the (single)
 * controller and a broker, nodes 2 and 3 are brokers only, so that brokers can die without
 * taking the metadata quorum with them. A topic with replication factor 3 and
 * min.insync.replicas=2:
 * - an acks=all producer keeps writing while the leader of one partition (not node 1) is
 *   killed with SIGKILL and later restarted; every acknowledged record is then found at
 *   the offset it was acknowledged with, in send order per partition;
 * - with brokers 2 and 3 killed, acks=all fails with NOT_ENOUGH_REPLICAS while acks=1
 *   still succeeds; once they return, nothing acknowledged is lost;
 * - after a clean stop of all three, every replica's log is byte-identical up to the
 *   smallest checkpointed high watermark, which covers every acknowledged record.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FlotillaError } from "../../packages/common/src/index.js";
import { silentLogger } from "../../packages/common/src/logger.js";
import { systemClock } from "../../packages/common/src/node.js";
import { Admin, Consumer, Producer, type RecordMetadata, type TopicDescription } from "../../packages/client/src/index.js";
import { ControllerQuorumClient } from "../../packages/controller/src/index.js";
import { PartitionLog } from "../../packages/storage/src/index.js";
import { freePorts, killAllProcesses, startTsProcess, type ChildHandle } from "../helpers/processes.js";

const NODES = [1, 2, 3];
const TOPIC = "replicated";
const PARTITIONS = 3;
const SESSION_TIMEOUT_MS = 3000;
const RECORDS = 3000;
const CHUNK = 100;

let dataDir: string;
let clientPorts: number[];
let controllerPort: number;
const procs = new Map<number, ChildHandle>();

const bootstrap = () => clientPorts.map((p) => `127.0.0.1:${p}`).join(",");
const logDirOf = (id: number) => path.join(dataDir, `node-${id}`);

async function startNodeProcess(id: number): Promise<ChildHandle> {
  const i = id - 1;
  const controller = id === 1;
  const child = await startTsProcess({
    name: `replication-node-${id}`,
    entry: "packages/cli/src/main.ts",
    args: [
      "server",
      ...[
        `node.id=${id}`,
        `process.roles=${controller ? "broker,controller" : "broker"}`,
        `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
        controller ? `listeners=PLAINTEXT://127.0.0.1:${clientPorts[i]},CONTROLLER://127.0.0.1:${controllerPort}` : `listeners=PLAINTEXT://127.0.0.1:${clientPorts[i]}`,
        `log.dirs=${logDirOf(id)}`,
        `broker.session.timeout.ms=${SESSION_TIMEOUT_MS}`,
        "broker.heartbeat.interval.ms=300",
        "replica.lag.time.max.ms=2000",
        "controller.quorum.election.timeout.ms=1000",
        "leader.imbalance.check.interval.seconds=1",
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

async function describeTopic(viaNode?: number): Promise<TopicDescription> {
  const a = new Admin({ bootstrapServers: viaNode ? `127.0.0.1:${clientPorts[viaNode - 1]}` : bootstrap() });
  try {
    const [t] = await a.describeTopics({ topics: [TOPIC] });
    return t!;
  } finally {
    await a.close();
  }
}

/** Every record of every partition, from the earliest offset to the high watermark at the time of the call. */
async function readAll(expectedAtLeast: number): Promise<Map<number, Map<number, string>>> {
  const consumer = new Consumer({ bootstrapServers: bootstrap(), autoOffsetReset: "earliest" });
  const out = new Map<number, Map<number, string>>();
  try {
    await consumer.assign([{ topic: TOPIC }]);
    let count = 0;
    let quietPolls = 0;
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && (count < expectedAtLeast || quietPolls < 2)) {
      const records = await consumer.poll({ timeoutMs: 500 });
      quietPolls = records.length === 0 ? quietPolls + 1 : 0;
      for (const r of records) {
        let m = out.get(r.partition);
        if (!m) out.set(r.partition, (m = new Map()));
        expect(m.has(r.offset)).toBe(false); // each offset is read once
        m.set(r.offset, r.value!.toString());
        count++;
      }
    }
  } finally {
    await consumer.close();
  }
  return out;
}

/** Checks that every acknowledged record sits at its acknowledged offset, and offsets grow in send order per partition. */
function checkAcknowledged(acked: { value: string; meta: RecordMetadata }[], read: Map<number, Map<number, string>>): void {
  const lastOffset = new Map<number, number>();
  for (const { value, meta } of acked) {
    expect(read.get(meta.partition)?.get(meta.offset), `record ${value} acknowledged at ${meta.partition}/${meta.offset}`).toBe(value);
    expect(meta.offset).toBeGreaterThan(lastOffset.get(meta.partition) ?? -1);
    lastOffset.set(meta.partition, meta.offset);
  }
}

function checkpointedHighWatermark(id: number, partition: number): number {
  const text = fs.readFileSync(path.join(logDirOf(id), "replication-offset-checkpoint"), "utf8");
  const line = text.split("\n").find((l) => l.startsWith(`${TOPIC} ${partition} `));
  return line ? Number(line.split(" ")[2]) : -1;
}

async function logBytes(id: number, partition: number, end: number): Promise<Buffer> {
  const log = await PartitionLog.open({
    dir: path.join(logDirOf(id), `${TOPIC}-${partition}`),
    config: { segmentBytes: 1 << 30, segmentMs: 7 * 24 * 3600_000, retentionMs: -1, retentionBytes: -1, indexIntervalBytes: 4096, segmentIndexBytes: 10 << 20 },
    clock: systemClock,
    logger: silentLogger(),
    topic: TOPIC,
    partition,
  });
  try {
    const parts: Buffer[] = [];
    let offset = log.logStartOffset;
    for (let i = 0; i < 100_000 && offset < end; i++) {
      const r = await log.read(offset, { maxBytes: 1 << 20, maxOffsetExclusive: end, minOneBatch: true });
      if (r.records.length === 0) break;
      parts.push(r.records);
      offset = r.nextOffset;
    }
    return Buffer.concat(parts);
  } finally {
    await log.close();
  }
}

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-replication-"));
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

describe("replication across 3 broker processes", () => {
  it("keeps every acks=all record through a leader's kill -9 and restart, refuses acks=all with two brokers down, and ends with identical replicas", async () => {
    const quorum = new ControllerQuorumClient({ addresses: [`127.0.0.1:${controllerPort}`], totalTimeoutMs: 10_000 });
    const acked: { value: string; meta: RecordMetadata }[] = [];
    try {
      await waitFor("three unfenced brokers", async () => {
        const c = await quorum.describeCluster();
        return c.brokers.length === 3 && c.brokers.every((b) => !b.fenced);
      }, 30_000);
      const admin = new Admin({ bootstrapServers: bootstrap() });
      await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: PARTITIONS, replicationFactor: 3, configs: { "min.insync.replicas": "2" } }] });
      await admin.close();
      const initial = await describeTopic();
      const victimPartition = initial.partitions.find((p) => p.leader !== 1)!;
      expect(victimPartition).toBeDefined();
      const victim = victimPartition.leader;

      // 1. acks=all while the leader of a busy partition dies and returns.
      const producer = new Producer({ bootstrapServers: bootstrap(), acks: "all", lingerMs: 2 });
      try {
        for (let chunk = 0; chunk < RECORDS / CHUNK; chunk++) {
          if (chunk === 8) await procs.get(victim)!.kill("SIGKILL");
          if (chunk === 20) await startNodeProcess(victim);
          const messages = Array.from({ length: CHUNK }, (_, j) => {
            const n = chunk * CHUNK + j;
            return { key: `key-${n % 97}`, value: `value-${n}` };
          });
          const metas = await producer.send({ topic: TOPIC, messages });
          metas.forEach((meta, j) => acked.push({ value: messages[j]!.value, meta }));
        }
      } finally {
        await producer.close();
      }
      expect(acked).toHaveLength(RECORDS);
      expect(acked.some((a) => a.meta.partition === victimPartition.partition)).toBe(true);
      await waitFor("the restarted broker back in every ISR", async () => {
        const t = await describeTopic();
        return t.partitions.every((p) => p.isr.length === 3);
      }, 30_000);
      checkAcknowledged(acked, await readAll(RECORDS));

      // 2. Two brokers down: the ISR shrinks to broker 1 and acks=all is refused.
      await Promise.all([procs.get(2)!.kill("SIGKILL"), procs.get(3)!.kill("SIGKILL")]);
      await waitFor("broker 1 leading everything alone", async () => {
        const t = await describeTopic(1);
        return t.partitions.every((p) => p.leader === 1 && p.isr.length === 1);
      }, SESSION_TIMEOUT_MS + 15_000);
      const strict = new Producer({ bootstrapServers: `127.0.0.1:${clientPorts[0]}`, acks: "all", retries: 0 });
      try {
        const err = await strict.send({ topic: TOPIC, messages: [{ key: "strict", value: "refused" }] }).catch((e: unknown) => e);
        expect(FlotillaError.is(err) && err.errorName).toBe("NOT_ENOUGH_REPLICAS");
      } finally {
        await strict.close();
      }
      const relaxed = new Producer({ bootstrapServers: `127.0.0.1:${clientPorts[0]}`, acks: 1 });
      try {
        const messages = Array.from({ length: 30 }, (_, j) => ({ key: `key-${j}`, value: `acks1-${j}` }));
        const metas = await relaxed.send({ topic: TOPIC, messages });
        metas.forEach((meta, j) => acked.push({ value: messages[j]!.value, meta }));
      } finally {
        await relaxed.close();
      }
      await Promise.all([startNodeProcess(2), startNodeProcess(3)]);
      await waitFor("all brokers back in every ISR", async () => {
        const t = await describeTopic();
        return t.partitions.every((p) => p.isr.length === 3);
      }, 30_000);
      checkAcknowledged(acked, await readAll(acked.length));

      // 3. Clean stop (brokers first, the controller's node last), then compare the replicas' files.
      await new Promise((r) => setTimeout(r, 1500)); // followers learn the final HW on their next fetch
      for (const id of [3, 2, 1]) expect((await procs.get(id)!.kill("SIGTERM", 30_000)).code).toBe(0);
      for (let p = 0; p < PARTITIONS; p++) {
        const hw = Math.min(...NODES.map((id) => checkpointedHighWatermark(id, p)));
        const lastAcked = Math.max(-1, ...acked.filter((a) => a.meta.partition === p).map((a) => a.meta.offset));
        expect(hw, `partition ${p}: smallest checkpointed HW covers every acknowledged record`).toBeGreaterThan(lastAcked);
        const reference = await logBytes(1, p, hw);
        expect(reference.length).toBeGreaterThan(0);
        for (const id of [2, 3]) expect((await logBytes(id, p, hw)).equals(reference), `partition ${p}: node ${id} equals node 1 up to ${hw}`).toBe(true);
      }
    } finally {
      quorum.close();
    }
  }, 240_000);
});

/**
 * A former leader that accepted records it could not replicate (KIP-101/279), with three
 * combined nodes as real processes on loopback:
 * 1. a partition's two followers are frozen (SIGSTOP), so the leader's acks=1 records
 *    reach no other replica (and the controller quorum cannot change the ISR);
 * 2. the leader is killed (SIGKILL), the followers resume (SIGCONT), the controller fences
 *    the dead broker and elects a follower in a new leader epoch; acks=all records go on;
 * 3. the former leader restarts, asks the new leader where its epoch ends, truncates the
 *    unreplicated records and follows. Every replica's log then ends at the high
 *    watermark and is byte-identical to the others, and the unreplicated records are gone
 *    from all of them.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../packages/common/src/logger.js";
import { systemClock } from "../../packages/common/src/node.js";
import { Admin, Consumer, Producer, type TopicDescription } from "../../packages/client/src/index.js";
import { PartitionLog } from "../../packages/storage/src/index.js";
import { freePorts, killAllProcesses, startTsProcess, type ChildHandle } from "../helpers/processes.js";

const NODES = [1, 2, 3];
const TOPIC = "divergent";
const SESSION_TIMEOUT_MS = 3000;

let dataDir: string;
let clientPorts: number[];
let controllerPorts: number[];
const procs = new Map<number, ChildHandle>();
const stopped = new Set<number>();

const voters = () => NODES.map((id, i) => `${id}@127.0.0.1:${controllerPorts[i]}`).join(",");
const logDirOf = (id: number) => path.join(dataDir, `node-${id}`);
const address = (id: number) => `127.0.0.1:${clientPorts[id - 1]}`;

async function startNodeProcess(id: number): Promise<ChildHandle> {
  const i = id - 1;
  const child = await startTsProcess({
    name: `divergence-node-${id}`,
    entry: "packages/cli/src/main.ts",
    args: [
      "server",
      ...[
        `node.id=${id}`,
        "process.roles=broker,controller",
        `controller.quorum.voters=${voters()}`,
        `listeners=PLAINTEXT://127.0.0.1:${clientPorts[i]},CONTROLLER://127.0.0.1:${controllerPorts[i]}`,
        `log.dirs=${logDirOf(id)}`,
        `broker.session.timeout.ms=${SESSION_TIMEOUT_MS}`,
        "broker.heartbeat.interval.ms=300",
        "controller.quorum.election.timeout.ms=1000",
        "replica.lag.time.max.ms=2000",
        "default.replication.factor=3",
        "offsets.topic.replication.factor=1",
        // Keep leadership where the test put it: no preferred-leader moves mid-test.
        "auto.leader.rebalance.enable=false",
      ].flatMap((o) => ["--override", o]),
    ],
    env: { FLOTILLA_LOG_LEVEL: "info" },
    readyLine: /"event":"ready"/,
    readyTimeoutMs: 40_000,
  });
  procs.set(id, child);
  return child;
}

function signal(id: number, sig: "SIGSTOP" | "SIGCONT"): void {
  process.kill(procs.get(id)!.pid, sig);
  if (sig === "SIGSTOP") stopped.add(id);
  else stopped.delete(id);
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

async function describeVia(id: number): Promise<TopicDescription> {
  const a = new Admin({ bootstrapServers: address(id) });
  try {
    const [t] = await a.describeTopics({ topics: [TOPIC] });
    return t!;
  } finally {
    await a.close();
  }
}

async function logBytes(id: number, end: number): Promise<Buffer> {
  const log = await PartitionLog.open({
    dir: path.join(logDirOf(id), `${TOPIC}-0`),
    config: { segmentBytes: 1 << 30, segmentMs: 7 * 24 * 3600_000, retentionMs: -1, retentionBytes: -1, indexIntervalBytes: 4096, segmentIndexBytes: 10 << 20 },
    clock: systemClock,
    logger: silentLogger(),
    topic: TOPIC,
    partition: 0,
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
    expect(log.logEndOffset, `node ${id} log end`).toBe(end);
    return Buffer.concat(parts);
  } finally {
    await log.close();
  }
}

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-divergence-"));
  const ports = await freePorts(6);
  clientPorts = ports.slice(0, 3);
  controllerPorts = ports.slice(3);
  await Promise.all(NODES.map((id) => startNodeProcess(id)));
}, 90_000);

afterAll(async () => {
  for (const id of [...stopped]) {
    try {
      signal(id, "SIGCONT");
    } catch {
      // Already gone.
    }
  }
  await killAllProcesses();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe("a former leader with an unreplicated suffix", () => {
  it("truncates the records only it had after a new leader was elected, and ends byte-identical to the other replicas", async () => {
    const admin = new Admin({ bootstrapServers: NODES.map(address).join(",") });
    await waitFor("topic created", async () => (await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: 1, replicationFactor: 3, configs: { "min.insync.replicas": "2" } }] })).length === 1, 30_000);
    await admin.close();
    const initial = await waitFor("a leader with the full ISR", async () => {
      const t = await describeVia(1);
      const p = t.partitions[0]!;
      return p.leader > 0 && p.isr.length === 3 ? p : undefined;
    }, 20_000);
    const oldLeader = initial.leader;
    const followers = NODES.filter((id) => id !== oldLeader);

    const committed = new Producer({ bootstrapServers: address(oldLeader), acks: "all" });
    const first = await committed.send({ topic: TOPIC, messages: Array.from({ length: 50 }, (_, i) => ({ key: `k${i}`, value: `committed-${i}` })) });
    await committed.close();
    const committedEnd = first[first.length - 1]!.offset + 1;
    // Followers learn the HW on their next fetch; let them, so their logs hold the batch.
    await new Promise((r) => setTimeout(r, 500));

    // 1. Freeze both followers; the leader takes acks=1 records nobody copies.
    for (const id of followers) signal(id, "SIGSTOP");
    // Fetches they had parked at the leader answer (empty) within replica.fetch.wait.max.ms
    // (500 ms); after that no fetch of theirs is open to carry new records to them.
    await new Promise((r) => setTimeout(r, 1500));
    const lonely = new Producer({ bootstrapServers: address(oldLeader), acks: 1 });
    const unreplicated = await lonely.send({ topic: TOPIC, messages: Array.from({ length: 20 }, (_, i) => ({ key: `u${i}`, value: `unreplicated-${i}` })) });
    await lonely.close();
    expect(unreplicated[0]!.offset).toBe(committedEnd);

    // 2. The leader dies; the followers resume and one of them is elected in a new epoch.
    await procs.get(oldLeader)!.kill("SIGKILL");
    for (const id of followers) signal(id, "SIGCONT");
    const next = await waitFor("a new leader among the followers", async () => {
      const p = (await describeVia(followers[0]!)).partitions[0]!;
      return followers.includes(p.leader) && p.leaderEpoch > initial.leaderEpoch ? p : undefined;
    }, SESSION_TIMEOUT_MS + 20_000);
    const after = new Producer({ bootstrapServers: followers.map(address).join(","), acks: "all" });
    const later = await after.send({ topic: TOPIC, messages: Array.from({ length: 30 }, (_, i) => ({ key: `k${i}`, value: `after-${i}` })) });
    await after.close();
    expect(later[0]!.offset).toBe(committedEnd); // the new leader never had the unreplicated records

    // 3. The former leader returns, truncates and follows.
    await startNodeProcess(oldLeader);
    await waitFor("the former leader back in the ISR", async () => (await describeVia(next.leader)).partitions[0]!.isr.length === 3, 30_000);
    const end = later[later.length - 1]!.offset + 1;
    const consumer = new Consumer({ bootstrapServers: NODES.map(address).join(","), autoOffsetReset: "earliest" });
    const values: string[] = [];
    try {
      await consumer.assign([{ topic: TOPIC }]);
      const deadline = Date.now() + 20_000;
      while (values.length < end && Date.now() < deadline) values.push(...(await consumer.poll({ timeoutMs: 500 })).map((r) => r.value!.toString()));
    } finally {
      await consumer.close();
    }
    expect(values).toEqual([...first.map((_, i) => `committed-${i}`), ...later.map((_, i) => `after-${i}`)]);

    // Every ISR member holds everything up to the HW, and nothing was produced past `end`:
    // each log ends exactly there. SIGKILL loses nothing the kernel has (the logs recover).
    for (const id of NODES) await procs.get(id)!.kill("SIGKILL");
    const reference = await logBytes(next.leader, end);
    for (const id of NODES) {
      const bytes = await logBytes(id, end);
      expect(bytes.equals(reference), `node ${id} equals the new leader`).toBe(true);
      expect(bytes.includes(Buffer.from("unreplicated-"))).toBe(false);
    }
  }, 240_000);
});

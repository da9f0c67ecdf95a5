/**
 * The GroupConsumer against the real group coordinator engine (packages/broker's
 * GroupCoordinatorEngine over an in-memory __consumer_offsets log), in-process, with the
 * client's MemoryBroker for metadata, produce and fetch. One gRPC server on 127.0.0.1
 * serves both services, as a broker does: the Broker service is forwarded to the
 * MemoryBroker (with Metadata naming this server as the broker), the GroupCoordinator
 * service goes to the engine. Fast (no processes), so it covers the rebalance paths one by
 * one: eager and cooperative, max.poll.interval.ms, new partitions, auto.offset.reset none.
 * test/integration/groups.test.ts does the same with real server and member processes.
 */
import { createRequire } from "node:module";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FlotillaError } from "../../packages/common/src/index.js";
import { createLogger } from "../../packages/common/src/logger.js";
import { systemClock } from "../../packages/common/src/node.js";
import {
  BROKER_PROTO,
  BROKER_SERVICE,
  GROUP_PROTO,
  GROUP_SERVICE,
  pipelineHandler,
  serviceClientCtor,
  toServiceError,
  type GroupCoordinatorApi,
  type MetadataResponse,
} from "../../packages/protocol/src/index.js";
import { GroupCoordinatorEngine } from "../../packages/broker/src/group/coordinator.js";
import { DEFAULT_GROUP_COORDINATOR_CONFIG } from "../../packages/broker/src/group/config.js";
import { MemoryOffsetsLog } from "../../packages/broker/src/group/memory-offsets-log.js";
import { systemTimer } from "../../packages/broker/src/group/timer.js";
import { BrokerConnection } from "../../packages/client/src/connection.js";
import { GroupAdmin, GroupConsumer, Producer, type ConsumerRecord, type GroupConsumerOptions } from "../../packages/client/src/index.js";
import { MemoryBroker } from "../../packages/client/src/testing/memory-broker.js";
import { runCli } from "../../packages/cli/src/program.js";
import type { CliIo } from "../../packages/cli/src/io.js";
import { PassThrough } from "node:stream";

// @grpc/grpc-js is a dependency of the packages, not of the repository root: load it the
// way packages/protocol does. Only the few members used here are typed.
type UnaryCall = { request: unknown };
type UnaryCallback = (err: unknown, res?: unknown) => void;
type Handlers = Record<string, (call: UnaryCall, cb: UnaryCallback) => void>;
interface GrpcServer {
  addService(service: unknown, impl: Handlers): void;
  bindAsync(address: string, creds: unknown, cb: (err: Error | null, port: number) => void): void;
  forceShutdown(): void;
}
const grpc = createRequire(new URL("../../packages/protocol/package.json", import.meta.url))("@grpc/grpc-js") as {
  Server: new () => GrpcServer;
  ServerCredentials: { createInsecure(): unknown };
};

const OFFSETS_PARTITIONS = 3;
const logger = createLogger("group-consumer-test", { level: process.env.FLOTILLA_LOG_LEVEL ?? "warn" });

interface Harness {
  address: string;
  memory: MemoryBroker;
  engine: GroupCoordinatorEngine;
  /** The next this-many OffsetFetch calls answer UNKNOWN_SERVER_ERROR. */
  offsetFetchFaults: number;
  stop(): Promise<void>;
}

async function startHarness(): Promise<Harness> {
  const memory = new MemoryBroker();
  await memory.start();
  const engine = new GroupCoordinatorEngine({
    config: { ...DEFAULT_GROUP_COORDINATOR_CONFIG, offsetsTopicNumPartitions: OFFSETS_PARTITIONS, groupMinSessionTimeoutMs: 500, groupInitialRebalanceDelayMs: 200 },
    log: new MemoryOffsetsLog(),
    clock: systemClock,
    timer: systemTimer,
    logger,
  });
  for (let p = 0; p < OFFSETS_PARTITIONS; p++) await engine.loadPartition(p);
  const upstream = new BrokerConnection(memory.address, "harness");
  const server = new grpc.Server();
  let port = 0;
  const forward = (name: string) => (call: UnaryCall, cb: UnaryCallback) => {
    const method = (upstream as unknown as Record<string, ((req: unknown, o: { timeoutMs: number }) => Promise<unknown>) | undefined>)[name[0]!.toLowerCase() + name.slice(1)];
    if (!method) {
      cb(toServiceError(new FlotillaError("UNSUPPORTED_VERSION", `the test harness cannot forward ${name}`)));
      return;
    }
    method.call(upstream, call.request, { timeoutMs: 30_000 }).then(
      (res) => {
        // Clients must come back here (for FindCoordinator too), not to the MemoryBroker.
        if (name === "Metadata") for (const b of (res as MetadataResponse).brokers) b.port = port;
        cb(null, res);
      },
      (err: unknown) => cb(toServiceError(err)),
    );
  };
  const brokerImpl: Handlers = {};
  const brokerService = serviceClientCtor(BROKER_PROTO, BROKER_SERVICE).service;
  for (const name of Object.keys(brokerService)) brokerImpl[name] = forward(name);
  // Produce and Fetch come on the Pipeline stream: forwarded request by request.
  brokerImpl["Pipeline"] = pipelineHandler({
    produce: (req) => upstream.produce(req, { timeoutMs: 30_000 }),
    fetch: (req, signal) => upstream.fetch(req, { timeoutMs: 30_000, signal }),
  }) as unknown as Handlers[string];
  server.addService(brokerService, brokerImpl);
  const api: GroupCoordinatorApi = {
    findCoordinator: async () => ({ errorCode: 0, errorMessage: "", nodeId: 1, host: "127.0.0.1", port }),
    joinGroup: (req) => engine.joinGroup(req, { clientHost: "/127.0.0.1" }),
    syncGroup: (req) => engine.syncGroup(req, { clientHost: "/127.0.0.1" }),
    heartbeat: (req) => engine.heartbeat(req),
    leaveGroup: (req) => engine.leaveGroup(req),
    offsetCommit: (req) => engine.offsetCommit(req),
    offsetFetch: async (req) => {
      if (harness.offsetFetchFaults > 0) {
        harness.offsetFetchFaults--;
        return { errorCode: -1, errorMessage: "injected OffsetFetch failure", topics: [] };
      }
      return engine.offsetFetch(req);
    },
    listGroups: (req) => engine.listGroups(req),
    describeGroups: (req) => engine.describeGroups(req),
    deleteGroups: (req) => engine.deleteGroups(req),
  };
  const groupImpl: Handlers = {};
  for (const [name, fn] of Object.entries(api) as [string, (req: unknown) => Promise<unknown>][]) {
    groupImpl[name[0]!.toUpperCase() + name.slice(1)] = (call: UnaryCall, cb: UnaryCallback) => {
      fn(call.request).then(
        (res) => cb(null, res),
        (err: unknown) => cb(toServiceError(err)),
      );
    };
  }
  server.addService(serviceClientCtor(GROUP_PROTO, GROUP_SERVICE).service, groupImpl);
  const harness: Harness = {
    address: "",
    memory,
    engine,
    offsetFetchFaults: 0,
    async stop() {
      engine.close();
      upstream.close();
      server.forceShutdown();
      await memory.stop();
    },
  };
  port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err: Error | null, p: number) => (err ? reject(err) : resolve(p))));
  harness.address = `127.0.0.1:${port}`;
  return harness;
}

let h: Harness;
const open: GroupConsumer[] = [];

beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.disconnect().catch(() => undefined)));
  await h.stop();
});

function member(groupId: string, extra: Partial<GroupConsumerOptions> = {}): GroupConsumer {
  const c = new GroupConsumer({
    bootstrapServers: h.address,
    groupId,
    sessionTimeoutMs: 3_000,
    heartbeatIntervalMs: 200,
    autoOffsetReset: "earliest",
    fetchMaxWaitMs: 100,
    autoCommitIntervalMs: 200,
    logger,
    ...extra,
  });
  open.push(c);
  return c;
}

async function produce(topic: string, count: number, prefix = "v"): Promise<void> {
  const p = new Producer({ bootstrapServers: h.address, logger });
  try {
    await p.send({ topic, messages: Array.from({ length: count }, (_, i) => ({ key: `k${i}`, value: `${prefix}${i}` })) });
  } finally {
    await p.close();
  }
}

async function waitFor(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

const key = (r: { partition: number; offset: number }): string => `${r.partition}/${r.offset}`;
const names = (tps: { topic: string; partition: number }[]): string[] => tps.map((tp) => `${tp.topic}-${tp.partition}`).sort();

describe("GroupConsumer with the real coordinator engine", () => {
  it("two range members split the partitions, read every record once, and commit what they read", async () => {
    h.memory.createTopic("t", 4);
    await produce("t", 200);
    const read: ConsumerRecord[] = [];
    const a = member("g");
    const b = member("g");
    for (const c of [a, b]) c.subscribe({ topics: ["t"] });
    const runs = [a, b].map((c) => c.run({ eachMessage: (r) => void read.push(r) }));
    await waitFor("200 records", () => read.length >= 200);
    await waitFor("a stable 2/2 split", () => a.assignment().length === 2 && b.assignment().length === 2);
    expect(names([...a.assignment(), ...b.assignment()])).toEqual(["t-0", "t-1", "t-2", "t-3"]);
    // Range over members sorted by id: the first gets partitions 0 and 1.
    const first = a.currentMemberId < b.currentMemberId ? a : b;
    expect(names(first.assignment())).toEqual(["t-0", "t-1"]);
    await new Promise((r) => setTimeout(r, 300));
    expect(read).toHaveLength(200);
    expect(new Set(read.map(key)).size).toBe(200);

    await Promise.all([a.disconnect(), b.disconnect()]);
    await Promise.all(runs);
    const admin = new GroupAdmin({ bootstrapServers: h.address, logger });
    try {
      const offsets = await admin.fetchOffsets("g");
      const ends = [0, 1, 2, 3].map((p) => h.memory.logEndOffset("t", p));
      expect(offsets.map((o) => o.offset)).toEqual(ends);
      expect((await admin.describeGroup("g")).state).toBe("Empty");
    } finally {
      await admin.close();
    }
  });

  it("a restarted member starts from the committed offsets", async () => {
    h.memory.createTopic("t", 2);
    await produce("t", 40, "old");
    const a = member("g");
    a.subscribe({ topics: ["t"] });
    const first: ConsumerRecord[] = [];
    const run = a.run({ eachMessage: (r) => void first.push(r) });
    await waitFor("40 records", () => first.length >= 40);
    await a.disconnect();
    await run;
    await produce("t", 10, "new");
    const b = member("g");
    b.subscribe({ topics: ["t"] });
    const second: ConsumerRecord[] = [];
    const run2 = b.run({ eachMessage: (r) => void second.push(r) });
    await waitFor("10 new records", () => second.length >= 10);
    await new Promise((r) => setTimeout(r, 300));
    expect(second.map((r) => r.value?.toString().slice(0, 3))).toEqual(Array(10).fill("new"));
    await b.disconnect();
    await run2;
  });

  it("cooperative-sticky: a joining member takes half; the first member revokes only what moves, never everything", async () => {
    h.memory.createTopic("t", 4);
    const revokedByA: string[][] = [];
    const a = member("coop", { partitionAssigners: ["cooperative-sticky"] });
    a.subscribe({ topics: ["t"], onPartitionsRevoked: (tps) => void revokedByA.push(names(tps)) });
    expect(a.rebalanceProtocol).toBe("cooperative");
    const runA = a.run({ eachMessage: () => undefined });
    await waitFor("a owns all 4", () => a.assignment().length === 4);
    const b = member("coop", { partitionAssigners: ["cooperative-sticky"] });
    b.subscribe({ topics: ["t"] });
    const runB = b.run({ eachMessage: () => undefined });
    await waitFor("a 2/2 split", () => a.assignment().length === 2 && b.assignment().length === 2);
    expect(names([...a.assignment(), ...b.assignment()])).toEqual(["t-0", "t-1", "t-2", "t-3"]);
    expect(revokedByA).toHaveLength(1);
    expect(revokedByA[0]).toHaveLength(2);
    await Promise.all([a.disconnect(), b.disconnect()]);
    await Promise.all([runA, runB]);
  });

  it("max.poll.interval.ms: a member stuck in its handler leaves, and the other member takes its partitions", async () => {
    h.memory.createTopic("t", 2);
    const a = member("slow", { maxPollIntervalMs: 1_000 });
    const b = member("slow", { maxPollIntervalMs: 10_000 });
    let release!: () => void;
    const stuck = new Promise<void>((r) => (release = r));
    for (const c of [a, b]) c.subscribe({ topics: ["t"] });
    let aLost: string[] = [];
    a.subscribe({ topics: ["t"], onPartitionsLost: (tps) => void (aLost = names(tps)) });
    const runA = a.run({ eachMessage: () => stuck });
    const runB = b.run({ eachMessage: () => undefined });
    await waitFor("a 1/1 split", () => a.assignment().length === 1 && b.assignment().length === 1);
    const aPartition = a.assignment()[0]!.partition;
    await produce("t", 20);
    // b takes a's partition once a left: within max.poll.interval.ms plus a rebalance.
    await waitFor("b owning both partitions", () => b.assignment().length === 2, 15_000);
    release();
    await waitFor("a noticing it lost its partition", () => aLost.length === 1, 10_000);
    expect(aLost).toEqual([`t-${aPartition}`]);
    await Promise.all([a.disconnect(), b.disconnect()]);
    await Promise.all([runA, runB]);
  });

  it("waiting in JoinGroup for a slow member does not count against max.poll.interval.ms", async () => {
    h.memory.createTopic("t", 3);
    const a = member("patient", { maxPollIntervalMs: 1_200 });
    const b = member("patient", { maxPollIntervalMs: 20_000 });
    let aLost = 0;
    a.subscribe({ topics: ["t"], onPartitionsLost: () => void aLost++ });
    b.subscribe({ topics: ["t"] });
    const runA = a.run({ eachMessage: () => undefined });
    // b spends 2.5 s on its first record, so it rejoins the rebalance c starts late and a
    // waits in JoinGroup for longer than its max.poll.interval.ms.
    let slept = false;
    const runB = b.run({
      eachMessage: async () => {
        if (slept) return;
        slept = true;
        await new Promise<void>((r) => setTimeout(r, 2_500));
      },
    });
    await waitFor("a 2-member split", () => a.assignment().length + b.assignment().length === 3 && b.assignment().length > 0);
    await produce("t", 30);
    await waitFor("b in its slow handler", () => slept);
    const c = member("patient");
    c.subscribe({ topics: ["t"] });
    const runC = c.run({ eachMessage: () => undefined });
    await waitFor("three members with one partition each", () => [a, b, c].every((m) => m.assignment().length === 1), 20_000);
    await new Promise((r) => setTimeout(r, 1_500));
    expect(aLost).toBe(0);
    expect(a.assignment()).toHaveLength(1);
    await Promise.all([a.disconnect(), b.disconnect(), c.disconnect()]);
    await Promise.all([runA, runB, runC]);
  }, 60_000);

  it("the coordinator moves (its __consumer_offsets partition unloads and reloads): members find it again and carry on from the committed offsets", async () => {
    h.memory.createTopic("t", 2);
    await produce("t", 40, "before");
    const read: ConsumerRecord[] = [];
    const a = member("moving");
    const b = member("moving");
    for (const c of [a, b]) c.subscribe({ topics: ["t"] });
    const runs = [a, b].map((c) => c.run({ eachMessage: (r) => void read.push(r) }));
    await waitFor("40 records", () => read.length >= 40);
    await waitFor("a 1/1 split", () => a.assignment().length === 1 && b.assignment().length === 1);
    // Let an auto-commit land, then move the coordinator away for a while (NOT_COORDINATOR).
    await new Promise((r) => setTimeout(r, 500));
    const partition = h.engine.partitionFor("moving");
    h.engine.unloadPartition(partition);
    await new Promise((r) => setTimeout(r, 800));
    // The new coordinator rebuilds the group and its offsets from __consumer_offsets.
    await h.engine.loadPartition(partition);
    await produce("t", 20, "after");
    await waitFor("the 20 new records", () => read.filter((r) => r.value?.toString().startsWith("after")).length >= 20, 20_000);
    await new Promise((r) => setTimeout(r, 500));
    // Nothing was read twice: the group kept its generation or rejoined after a commit.
    expect(new Set(read.map(key)).size).toBe(60);
    expect(read).toHaveLength(60);
    await Promise.all([a.disconnect(), b.disconnect()]);
    await Promise.all(runs);
    const admin = new GroupAdmin({ bootstrapServers: h.address, logger });
    try {
      expect((await admin.fetchOffsets("moving")).map((o) => o.offset)).toEqual([0, 1].map((p) => h.memory.logEndOffset("t", p)));
    } finally {
      await admin.close();
    }
  });

  it("a subscribed topic that gains partitions triggers a rebalance (metadata.max.age.ms)", async () => {
    h.memory.createTopic("t", 1);
    const a = member("grow", { metadataMaxAgeMs: 300 });
    a.subscribe({ topics: ["t"] });
    const runA = a.run({ eachMessage: () => undefined });
    await waitFor("a owns t-0", () => a.assignment().length === 1);
    h.memory.topics.get("t")!.push([], []);
    await waitFor("a owns the 3 partitions", () => a.assignment().length === 3, 15_000);
    await a.disconnect();
    await runA;
  });

  it("static membership: a member that disconnects does not leave; restarted with its instance id it gets its partitions back", async () => {
    h.memory.createTopic("t", 2);
    const a = member("static", { groupInstanceId: "i-a", sessionTimeoutMs: 10_000 });
    const b = member("static", { groupInstanceId: "i-b", sessionTimeoutMs: 10_000 });
    for (const c of [a, b]) c.subscribe({ topics: ["t"] });
    const runs = [a, b].map((c) => c.run({ eachMessage: () => undefined }));
    await waitFor("a 1/1 split", () => a.assignment().length === 1 && b.assignment().length === 1);
    // Static members sort by instance id: i-a gets partition 0 with range.
    expect(names(a.assignment())).toEqual(["t-0"]);
    const generation = b.currentGenerationId;
    await a.disconnect();
    await runs[0];
    const a2 = member("static", { groupInstanceId: "i-a", sessionTimeoutMs: 10_000 });
    a2.subscribe({ topics: ["t"] });
    const run2 = a2.run({ eachMessage: () => undefined });
    await waitFor("the restarted i-a owning t-0", () => a2.assignment().length === 1, 10_000);
    expect(names(a2.assignment())).toEqual(["t-0"]);
    // b was never moved: no rebalance took its partition away.
    expect(names(b.assignment())).toEqual(["t-1"]);
    expect(b.currentGenerationId).toBe(generation);
    await Promise.all([a2.disconnect(), b.disconnect()]);
    await Promise.all([run2, runs[1]]);
  });

  it("a failed OffsetFetch after a join fails the poll, and the next poll rejoins and starts at the committed offset, not at auto.offset.reset", async () => {
    h.memory.createTopic("t", 1);
    await produce("t", 10);
    const admin = new GroupAdmin({ bootstrapServers: h.address, logger });
    await admin.commitOffsets("fetch-fails", [{ topic: "t", partition: 0, offset: 6 }]);
    await admin.close();
    const a = member("fetch-fails");
    a.subscribe({ topics: ["t"] });
    h.offsetFetchFaults = 1;
    await expect(a.poll({ timeoutMs: 3_000 })).rejects.toThrow(/injected OffsetFetch failure/);
    const got: ConsumerRecord[] = [];
    for (let i = 0; i < 50 && got.length < 4; i++) got.push(...(await a.poll({ timeoutMs: 200 })));
    expect(got.map((r) => r.offset)).toEqual([6, 7, 8, 9]);
  });

  it("autoOffsetReset none: a partition without a committed offset fails with OFFSET_OUT_OF_RANGE", async () => {
    h.memory.createTopic("t", 1);
    const a = member("none", { autoOffsetReset: "none" });
    a.subscribe({ topics: ["t"] });
    const err = await a.poll({ timeoutMs: 5_000 }).catch((e: unknown) => e);
    expect(FlotillaError.is(err, "OFFSET_OUT_OF_RANGE")).toBe(true);
  });

  it("manual commits: commitOffsets sends the given offsets; the group admin sees them", async () => {
    h.memory.createTopic("t", 1);
    await produce("t", 5);
    const a = member("manual", { autoCommit: false });
    a.subscribe({ topics: ["t"] });
    const got: ConsumerRecord[] = [];
    for (let i = 0; i < 50 && got.length < 5; i++) got.push(...(await a.poll({ timeoutMs: 200 })));
    expect(got).toHaveLength(5);
    expect(await a.committedOffsets()).toEqual([{ topic: "t", partition: 0, offset: -1 }]);
    await a.commitOffsets([{ topic: "t", partition: 0, offset: 3 }]);
    expect(await a.committedOffsets()).toEqual([{ topic: "t", partition: 0, offset: 3 }]);
    await a.commitOffsets();
    expect(await a.committedOffsets()).toEqual([{ topic: "t", partition: 0, offset: 5 }]);
  });

  it("pollBatches: batches count as consumed at once, commits send each partition's offset after its last batch, a restarted member goes on from there", async () => {
    h.memory.createTopic("t", 2);
    await produce("t", 30);
    const a = member("batches", { autoCommit: false });
    a.subscribe({ topics: ["t"] });
    const seen: string[] = [];
    for (let i = 0; i < 50 && seen.length < 30; i++) {
      const r = await a.pollBatches({ timeoutMs: 200 });
      for (const p of r.partitions) {
        for (const batch of p.batches) {
          const c = batch.cursor();
          while (c.next()) seen.push(`${p.partition}/${c.offset}`);
        }
      }
    }
    expect(new Set(seen).size).toBe(30);
    await a.commitOffsets();
    const ends = [0, 1].map((p) => h.memory.logEndOffset("t", p));
    expect((await a.committedOffsets()).map((o) => o.offset)).toEqual(ends);
    await a.disconnect();
    await produce("t", 4, "new");
    const b = member("batches", { autoCommit: false });
    b.subscribe({ topics: ["t"] });
    const fresh: string[] = [];
    for (let i = 0; i < 50 && fresh.length < 4; i++) {
      for (const p of (await b.pollBatches({ timeoutMs: 200 })).partitions) for (const batch of p.batches) for (const r of batch.records()) fresh.push(r.value!.toString());
    }
    expect(fresh.sort()).toEqual(["new0", "new1", "new2", "new3"]);
  });

  it("the groups CLI: list, describe with lag, reset-offsets refused while active and applied when empty, delete", async () => {
    h.memory.createTopic("t", 2);
    await produce("t", 20);
    const a = member("cli-group");
    a.subscribe({ topics: ["t"] });
    const seen: ConsumerRecord[] = [];
    const runA = a.run({ eachMessage: (r) => void seen.push(r) });
    await waitFor("20 records", () => seen.length >= 20);
    const flags = ["--bootstrap-server", h.address];

    expect((await cli(["groups", "list", ...flags])).stdout).toBe("cli-group\n");
    const refused = await cli(["groups", "reset-offsets", "--group", "cli-group", "--topic", "t", "--to-earliest", "--execute", ...flags]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/NON_EMPTY_GROUP/);
    const active = await cli(["groups", "describe", "--group", "cli-group", ...flags]);
    expect(active.code).toBe(0);
    expect(active.stdout).toContain(a.currentMemberId);

    await a.disconnect();
    await runA;
    await produce("t", 30);
    const described = await cli(["groups", "describe", "--group", "cli-group", "--format", "json", ...flags]);
    const rows = described.stdout.trim().split("\n").map((l) => JSON.parse(l) as { partition: number; lag: number; consumerId: string | null });
    expect(rows.map((r) => r.partition)).toEqual([0, 1]);
    expect(rows.reduce((n, r) => n + r.lag, 0)).toBe(30);
    expect(rows.every((r) => r.consumerId === null)).toBe(true);

    const dry = await cli(["groups", "reset-offsets", "--group", "cli-group", "--topic", "t", "--to-offset", "3", ...flags]);
    expect(dry.code).toBe(0);
    expect(dry.stderr).toContain("Dry run");
    const admin = new GroupAdmin({ bootstrapServers: h.address, logger });
    try {
      expect((await admin.fetchOffsets("cli-group")).map((o) => o.offset)).toEqual([0, 1].map((p) => h.memory.logEndOffset("t", p) - rows[p]!.lag));
      const applied = await cli(["groups", "reset-offsets", "--group", "cli-group", "--topic", "t", "--to-offset", "3", "--execute", ...flags]);
      expect(applied.code).toBe(0);
      expect(applied.stdout).toMatch(/^GROUP\s+TOPIC\s+PARTITION\s+NEW-OFFSET\n/);
      expect((await admin.fetchOffsets("cli-group")).map((o) => o.offset)).toEqual([3, 3]);
    } finally {
      await admin.close();
    }
    expect((await cli(["groups", "delete", "--group", "cli-group", ...flags])).code).toBe(0);
    expect((await cli(["groups", "list", ...flags])).stdout).toBe("");
    const gone = await cli(["groups", "describe", "--group", "cli-group", ...flags]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/GROUP_ID_NOT_FOUND/);
  });
});

/** Runs the flotilla CLI in-process with captured streams. */
async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = "";
  let err = "";
  stdout.on("data", (d: Buffer) => (out += d.toString()));
  stderr.on("data", (d: Buffer) => (err += d.toString()));
  const io: CliIo = { stdin: new PassThrough(), stdout, stderr, env: { FLOTILLA_LOG_LEVEL: "error" }, cwd: "/tmp", onShutdownSignal: () => () => undefined };
  return { code: await runCli(args, io), stdout: out, stderr: err };
}

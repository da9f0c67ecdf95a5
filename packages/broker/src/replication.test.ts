/**
 * Replication between real ReplicaManagers (real partition logs in temp dirs) joined by an
 * in-process transport, with a fake controller that replays metadata records into images
 * and answers AlterPartition with Kafka's compare-and-set on leader and partition epoch.
 * A broker can be cut off (its fetches and the fetches to it fail) or restarted on its
 * directory.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { FlotillaError, errorNameOf } from "@flotilla/common";
import { silentLogger } from "@flotilla/common/logger";
import { systemClock } from "@flotilla/common/node";
import { DEFAULT_TOPIC_CONFIG, EMPTY_IMAGE, diffImages, replay, type MetadataImage, type MetadataRecord } from "@flotilla/metadata";
import type { FetchRequest, ProduceResponse } from "@flotilla/protocol";
import { LogManager } from "@flotilla/storage";
import { buildBatch } from "@flotilla/storage/test-support";
import type { AlterPartitionCall, AlterPartitionReply } from "./controller-channel.js";
import { handleFetch } from "./fetch.js";
import { HIGH_WATERMARK_CHECKPOINT_FILE } from "./offset-checkpoint.js";
import { handleOffsetForLeaderEpoch } from "./offset-for-leader-epoch.js";
import { handleProduce } from "./produce.js";
import { ReplicaManager, toLogConfig } from "./replica-manager.js";
import type { ReplicaFetchClient } from "./replica-fetcher.js";

const TOPIC = "orders";
const TOPIC_ID = "AAAAAAAAAAAAAAAAAAAAAA";
const LIMITS = { fetchMaxBytes: 1 << 20, fetchWaitMsMax: 1000 };
const WAIT_MS_MAX = 8000;

/** Polls `check` until it holds (bounded by time and count). */
async function eventually(what: string, check: () => boolean | Promise<boolean>, timeoutMs = WAIT_MS_MAX): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 10_000; i++) {
    if (await check()) return;
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for: ${what}`);
}

class FakeController {
  image: MetadataImage = EMPTY_IMAGE;
  readonly alterCalls: AlterPartitionCall[] = [];
  /** Brokers the controller will not let into an ISR (as if fenced), without any metadata change. */
  readonly ineligible = new Set<number>();
  private readonly listeners = new Map<number, (image: MetadataImage, prev: MetadataImage) => Promise<void>>();

  async append(records: MetadataRecord[]): Promise<void> {
    const prev = this.image;
    let next = prev;
    for (const r of records) next = replay(next, r, next.offset + 1);
    this.image = next;
    await Promise.all([...this.listeners.values()].map((l) => l(next, prev)));
  }

  subscribe(id: number, fn: (image: MetadataImage, prev: MetadataImage) => Promise<void>): void {
    this.listeners.set(id, fn);
  }

  unsubscribe(id: number): void {
    this.listeners.delete(id);
  }

  partition(p = 0) {
    return this.image.topicsById.get(TOPIC_ID)!.partitions.get(p)!;
  }

  async alterPartition(req: AlterPartitionCall): Promise<AlterPartitionReply> {
    this.alterCalls.push(req);
    const cur = this.partition(req.partition);
    const answer = (errorCode: number, errorMessage: string): AlterPartitionReply => ({ errorCode, errorMessage, leader: cur.leader, leaderEpoch: cur.leaderEpoch, partitionEpoch: cur.partitionEpoch, isr: cur.isr });
    if (req.brokerId !== cur.leader) return answer(6, "not the leader");
    if (req.leaderEpoch !== cur.leaderEpoch || req.partitionEpoch !== cur.partitionEpoch) return answer(74, "stale epochs");
    if (req.newIsr.some((b) => this.ineligible.has(b))) return answer(42, "a broker of the new ISR is fenced");
    await this.append([{ type: "PartitionChange", topicId: TOPIC_ID, partition: req.partition, isr: [...req.newIsr] }]);
    const now = this.partition(req.partition);
    return { errorCode: 0, errorMessage: "", leader: now.leader, leaderEpoch: now.leaderEpoch, partitionEpoch: now.partitionEpoch, isr: now.isr };
  }
}

interface ClusterSettings {
  replicaLagTimeMaxMs: number;
  /** replica.fetch.wait.max.ms and replica.fetch.backoff.ms; 100 and 50 unless given. */
  fetchWaitMaxMs?: number;
  fetchBackoffMs?: number;
}

interface TestBroker {
  id: number;
  dir: string;
  replicas: ReplicaManager;
}

class TestCluster {
  readonly controller = new FakeController();
  readonly brokers = new Map<number, TestBroker>();
  /** Brokers cut off from the others (their fetches and fetches to them fail). */
  readonly isolated = new Set<number>();
  readonly dirs: string[] = [];

  /** Replica fetch calls each broker started, by follower id. */
  readonly fetchCalls = new Map<number, number>();

  constructor(private readonly settings: ClusterSettings) {}

  static async start(ids: number[], settings: ClusterSettings = { replicaLagTimeMaxMs: 30_000 }): Promise<TestCluster> {
    const c = new TestCluster(settings);
    for (const id of ids) c.dirs.push(await mkdtemp(path.join(tmpdir(), `flotilla-repl-${id}-`)));
    const records: MetadataRecord[] = [];
    for (const id of ids) {
      records.push({ type: "RegisterBroker", brokerId: id, incarnationId: `inc-${id}`, endpoints: [{ name: "PLAINTEXT", host: `broker-${id}`, port: 9000 + id }], rack: null });
      records.push({ type: "UnfenceBroker", brokerId: id, brokerEpoch: records.length - 1 });
    }
    await c.controller.append(records);
    for (const [i, id] of ids.entries()) await c.startBroker(id, c.dirs[i]!);
    return c;
  }

  private client(self: number, leaderId: number): ReplicaFetchClient {
    const target = () => {
      const b = this.brokers.get(leaderId);
      if (!b || this.isolated.has(leaderId) || this.isolated.has(self)) throw new FlotillaError("NETWORK_EXCEPTION", `broker ${leaderId} unreachable from ${self}`);
      return b.replicas;
    };
    return {
      fetch: async (req, signal) => {
        this.fetchCalls.set(self, (this.fetchCalls.get(self) ?? 0) + 1);
        const response = await handleFetch(target(), req, LIMITS, signal);
        target(); // a broker cut off while the fetch was parked loses the answer
        return response;
      },
      offsetForLeaderEpoch: async (req) => handleOffsetForLeaderEpoch(target(), req),
      close: () => {},
    };
  }

  async startBroker(id: number, dir: string): Promise<TestBroker> {
    const logs = await LogManager.open({ logDirs: [dir], clock: systemClock, logger: silentLogger(), configFor: () => toLogConfig(DEFAULT_TOPIC_CONFIG) });
    const replicas = new ReplicaManager({
      nodeId: id,
      logs,
      topicDefaults: DEFAULT_TOPIC_CONFIG,
      logger: silentLogger(),
      parkedFetchesMax: 100,
      controllerChannel: { alterPartition: (req) => (this.isolated.has(id) ? Promise.reject(new FlotillaError("NETWORK_EXCEPTION", "controller unreachable")) : this.controller.alterPartition(req)) },
      brokerEpoch: () => this.controller.image.brokers.get(id)?.brokerEpoch ?? -1,
      replicaLagTimeMaxMs: this.settings.replicaLagTimeMaxMs,
      replicaFetch: { fetchWaitMaxMs: this.settings.fetchWaitMaxMs ?? 100, fetchBackoffMs: this.settings.fetchBackoffMs ?? 50 },
      replicaClientFactory: (leader) => this.client(id, leader.brokerId),
      highWatermarkCheckpointIntervalMs: 60_000,
    });
    const broker = { id, dir, replicas };
    this.brokers.set(id, broker);
    await replicas.applyImage(this.controller.image, diffImages(EMPTY_IMAGE, this.controller.image));
    this.controller.subscribe(id, (image, prev) => replicas.applyImage(image, diffImages(prev, image)));
    return broker;
  }

  /** Stops a broker as a crash would leave its metadata view: it hears nothing more. */
  async stopBroker(id: number): Promise<void> {
    const b = this.brokers.get(id)!;
    this.controller.unsubscribe(id);
    this.brokers.delete(id);
    await b.replicas.close();
  }

  async createTopic(replicas: number[], configs: Record<string, string> = {}): Promise<void> {
    const records: MetadataRecord[] = [
      { type: "Topic", name: TOPIC, topicId: TOPIC_ID },
      { type: "Partition", topicId: TOPIC_ID, partition: 0, replicas, isr: replicas, leader: replicas[0]!, leaderEpoch: 0, partitionEpoch: 0 },
    ];
    for (const [name, value] of Object.entries(configs)) records.push({ type: "Config", resourceType: "topic", resourceName: TOPIC, name, value });
    await this.controller.append(records);
  }

  part(id: number) {
    return this.brokers.get(id)!.replicas.partition(TOPIC, 0);
  }

  produce(id: number, acks: number, seed: number, timeoutMs = 5000, records = 3): Promise<ProduceResponse> {
    return handleProduce(this.brokers.get(id)!.replicas, { acks, timeoutMs, topics: [{ name: TOPIC, partitions: [{ partition: 0, records: buildBatch({ records, seed }) }] }] }, () => Date.now());
  }

  /** All bytes of a replica's log from its start to `end`. */
  async logBytes(id: number, end: number): Promise<Buffer> {
    const log = this.part(id).log;
    const parts: Buffer[] = [];
    let offset = log.logStartOffset;
    for (let i = 0; i < 10_000 && offset < end; i++) {
      const r = await log.read(offset, { maxBytes: 1 << 20, maxOffsetExclusive: end, minOneBatch: true });
      if (r.records.length === 0) break;
      parts.push(r.records);
      offset = r.nextOffset;
    }
    return Buffer.concat(parts);
  }

  async close(): Promise<void> {
    for (const id of [...this.brokers.keys()]) await this.stopBroker(id);
    for (const d of this.dirs) await rm(d, { recursive: true, force: true });
  }
}

function partitionResult(r: ProduceResponse) {
  const p = r.topics[0]!.partitions[0]!;
  return { error: p.errorCode === 0 ? "NONE" : errorNameOf(p.errorCode), baseOffset: p.baseOffset };
}

let cluster: TestCluster | undefined;
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

describe("replication", () => {
  it("followers copy the leader's bytes; the HW is the least log end offset of the ISR; acks=all answers once it passes the batch", async () => {
    cluster = await TestCluster.start([1, 2, 3]);
    await cluster.createTopic([1, 2, 3], { "min.insync.replicas": "2" });
    expect(cluster.part(1).role).toBe("leader");
    expect(cluster.part(2).role).toBe("follower");
    let next = 0;
    for (let i = 0; i < 5; i++) {
      const r = partitionResult(await cluster.produce(1, -1, i));
      expect(r).toEqual({ error: "NONE", baseOffset: next });
      next += 3;
      // acks=all answered: the HW passed the batch, so both followers hold it.
      expect(cluster.part(1).highWatermark).toBeGreaterThanOrEqual(next);
      expect(Math.min(cluster.part(2).log.logEndOffset, cluster.part(3).log.logEndOffset)).toBeGreaterThanOrEqual(next);
    }
    await eventually("followers learn the HW", () => cluster!.part(2).highWatermark === 15 && cluster!.part(3).highWatermark === 15);
    const leaderBytes = await cluster.logBytes(1, 15);
    expect(await cluster.logBytes(2, 15)).toEqual(leaderBytes);
    expect(await cluster.logBytes(3, 15)).toEqual(leaderBytes);
    expect(cluster.part(2).log.leaderEpochCache.all()).toEqual([{ epoch: 0, startOffset: 0 }]);
  });

  it("a follower that stops fetching holds the HW until it leaves the ISR, then rejoins once caught up", async () => {
    // The lag time leaves room for a loaded machine between cutting broker 3 off and the HW check.
    cluster = await TestCluster.start([1, 2, 3], { replicaLagTimeMaxMs: 1000 });
    await cluster.createTopic([1, 2, 3]);
    expect(partitionResult(await cluster.produce(1, -1, 0))).toEqual({ error: "NONE", baseOffset: 0 });
    cluster.isolated.add(3);
    expect(partitionResult(await cluster.produce(1, 1, 1))).toEqual({ error: "NONE", baseOffset: 3 });
    await eventually("broker 2 fetched the second batch", () => cluster!.part(1).followerLogEndOffset(2) === 6);
    // Broker 3 is in the ISR but silent: the HW waits for it.
    expect(cluster.part(1).highWatermark).toBe(3);
    await eventually("the leader shrinks the ISR", () => cluster!.controller.partition().isr.join() === "1,2");
    expect(cluster.controller.alterCalls.some((c) => c.brokerId === 1 && c.newIsr.join() === "1,2")).toBe(true);
    await eventually("the HW moves over the smaller ISR", () => cluster!.part(1).highWatermark === 6);
    expect(cluster.part(1).isr).toEqual([1, 2]);

    cluster.isolated.delete(3);
    await eventually("broker 3 rejoins the ISR", () => cluster!.controller.partition().isr.join() === "1,2,3");
    expect(cluster.controller.alterCalls.filter((c) => c.newIsr.join() === "1,2,3")).toHaveLength(1);
    expect(await cluster.logBytes(3, 6)).toEqual(await cluster.logBytes(1, 6));
  });

  it("retries an ISR expansion the controller refused for a fenced follower once it is unfenced, though the partition did not change", async () => {
    cluster = await TestCluster.start([1, 2, 3], { replicaLagTimeMaxMs: 1000 });
    await cluster.createTopic([1, 2, 3]);
    cluster.isolated.add(3);
    await eventually("the leader shrinks the ISR", () => cluster!.controller.partition().isr.join() === "1,2");
    // Broker 3 comes back caught up while the controller still counts it as fenced.
    cluster.controller.ineligible.add(3);
    cluster.isolated.delete(3);
    await eventually("the leader asked to expand and was refused", () => cluster!.controller.alterCalls.some((c) => c.newIsr.join() === "1,2,3"));
    expect(cluster.controller.partition().isr.join()).toBe("1,2");
    // Unfencing is a broker record, not a partition change: the leader must retry on its own.
    cluster.controller.ineligible.delete(3);
    await eventually("broker 3 rejoins the ISR", () => cluster!.controller.partition().isr.join() === "1,2,3");
  });

  it("acks=all: NOT_ENOUGH_REPLICAS before appending when the ISR is below min.insync.replicas, while acks=1 still appends", async () => {
    cluster = await TestCluster.start([1, 2, 3], { replicaLagTimeMaxMs: 300 });
    await cluster.createTopic([1, 2, 3], { "min.insync.replicas": "2" });
    cluster.isolated.add(2);
    cluster.isolated.add(3);
    await eventually("the ISR shrinks to the leader", () => cluster!.controller.partition().isr.join() === "1");
    await eventually("the leader applied it", () => cluster!.part(1).isr.join() === "1");
    const before = cluster.part(1).log.logEndOffset;
    expect(partitionResult(await cluster.produce(1, -1, 0)).error).toBe("NOT_ENOUGH_REPLICAS");
    expect(cluster.part(1).log.logEndOffset).toBe(before);
    expect(partitionResult(await cluster.produce(1, 1, 1))).toEqual({ error: "NONE", baseOffset: before });
    expect(partitionResult(await cluster.produce(1, 0, 2)).error).toBe("NONE");
    expect(cluster.part(1).log.logEndOffset).toBe(before + 6);
  });

  it("acks=all: REQUEST_TIMED_OUT when the ISR does not catch up in timeout_ms, NOT_ENOUGH_REPLICAS_AFTER_APPEND when it shrinks below min.insync.replicas", async () => {
    cluster = await TestCluster.start([1, 2], { replicaLagTimeMaxMs: 1500 });
    await cluster.createTopic([1, 2], { "min.insync.replicas": "2" });
    cluster.isolated.add(2);
    const started = Date.now();
    expect(partitionResult(await cluster.produce(1, -1, 0, 150)).error).toBe("REQUEST_TIMED_OUT");
    expect(Date.now() - started).toBeLessThan(1500);
    // Waits past the lag time: the ISR loses broker 2, the HW jumps, but with too few replicas.
    expect(partitionResult(await cluster.produce(1, -1, 1, 5000)).error).toBe("NOT_ENOUGH_REPLICAS_AFTER_APPEND");
    expect(cluster.controller.partition().isr).toEqual([1]);
  });

  it("a former leader that appended records it could not replicate truncates them and ends byte-identical to the new leader", async () => {
    cluster = await TestCluster.start([1, 2, 3]);
    await cluster.createTopic([1, 2, 3]);
    for (let i = 0; i < 3; i++) expect(partitionResult(await cluster.produce(1, -1, i)).error).toBe("NONE");
    await eventually("followers at 9", () => cluster!.part(2).highWatermark === 9 && cluster!.part(3).highWatermark === 9);

    // Broker 1 is cut off and, still leader in its own view, takes acks=1 records nobody copies.
    cluster.isolated.add(1);
    for (let i = 10; i < 13; i++) expect(partitionResult(await cluster.produce(1, 1, i, 5000, 2)).error).toBe("NONE");
    expect(cluster.part(1).log.logEndOffset).toBe(15);
    // It crashes; the controller elects broker 2 in epoch 1 with the ISR that has the data.
    await cluster.stopBroker(1);
    await cluster.controller.append([{ type: "PartitionChange", topicId: TOPIC_ID, partition: 0, leader: 2, isr: [2, 3] }]);
    expect(cluster.part(2).role).toBe("leader");
    expect(cluster.part(2).leaderEpoch).toBe(1);
    for (let i = 20; i < 24; i++) expect(partitionResult(await cluster.produce(2, -1, i, 5000, 1)).error).toBe("NONE");
    expect(cluster.part(2).log.logEndOffset).toBe(13);

    // Broker 1 restarts on its directory and follows broker 2.
    cluster.isolated.delete(1);
    await cluster.startBroker(1, cluster.dirs[0]!);
    expect(cluster.part(1).role).toBe("follower");
    await eventually("the former leader catches up", () => cluster!.part(1).log.logEndOffset === 13 && cluster!.part(1).highWatermark === 13);
    const leaderBytes = await cluster.logBytes(2, 13);
    expect(await cluster.logBytes(1, 13)).toEqual(leaderBytes);
    expect(await cluster.logBytes(3, 13)).toEqual(leaderBytes);
    expect(cluster.part(1).log.leaderEpochCache.all()).toEqual([
      { epoch: 0, startOffset: 0 },
      { epoch: 1, startOffset: 9 },
    ]);
    await eventually("broker 1 rejoins the ISR", () => cluster!.controller.partition().isr.join() === "1,2,3");
  });

  it("a new leader epoch with the same leader restarts the roles: followers re-truncate and batches carry the new epoch", async () => {
    cluster = await TestCluster.start([1, 2]);
    await cluster.createTopic([1, 2]);
    expect(partitionResult(await cluster.produce(1, -1, 0)).error).toBe("NONE");
    await cluster.controller.append([{ type: "PartitionChange", topicId: TOPIC_ID, partition: 0, leader: 1 }]);
    expect(cluster.part(1).leaderEpoch).toBe(1);
    expect(cluster.part(1).role).toBe("leader");
    expect(partitionResult(await cluster.produce(1, -1, 1))).toEqual({ error: "NONE", baseOffset: 3 });
    await eventually("follower has both batches", () => cluster!.part(2).log.logEndOffset === 6);
    expect(cluster.part(2).log.leaderEpochCache.all()).toEqual([
      { epoch: 0, startOffset: 0 },
      { epoch: 1, startOffset: 3 },
    ]);
    expect(await cluster.logBytes(2, 6)).toEqual(await cluster.logBytes(1, 6));
  });

  it("fences stale and future leader epochs and refuses produce and consumer fetch on a follower", async () => {
    cluster = await TestCluster.start([1, 2]);
    await cluster.createTopic([1, 2]);
    await cluster.controller.append([{ type: "PartitionChange", topicId: TOPIC_ID, partition: 0, leader: 1 }]);
    const fetch = (id: number, currentLeaderEpoch: number, replicaId = -1): Promise<string> =>
      handleFetch(cluster!.brokers.get(id)!.replicas, { replicaId, maxWaitMs: 0, minBytes: 0, maxBytes: 1000, topics: [{ name: TOPIC, partitions: [{ partition: 0, fetchOffset: 0, partitionMaxBytes: 1000, currentLeaderEpoch }] }] } satisfies FetchRequest, LIMITS).then((r) => {
        const code = r.topics[0]!.partitions[0]!.errorCode;
        return code === 0 ? "NONE" : errorNameOf(code);
      });
    expect(await fetch(1, 0)).toBe("FENCED_LEADER_EPOCH");
    expect(await fetch(1, 2)).toBe("UNKNOWN_LEADER_EPOCH");
    expect(await fetch(1, 1)).toBe("NONE");
    expect(await fetch(1, -1)).toBe("NONE");
    expect(await fetch(2, -1)).toBe("NOT_LEADER_OR_FOLLOWER");
    expect(partitionResult(await cluster.produce(2, 1, 0)).error).toBe("NOT_LEADER_OR_FOLLOWER");
    const epochAnswer = await handleOffsetForLeaderEpoch(cluster.brokers.get(1)!.replicas, { replicaId: 2, topics: [{ name: TOPIC, partitions: [{ partition: 0, currentLeaderEpoch: 0, leaderEpoch: 0 }] }] });
    expect(errorNameOf(epochAnswer.topics[0]!.partitions[0]!.errorCode)).toBe("FENCED_LEADER_EPOCH");
  });

  it("an acks=all produce parked on a leader that loses its leadership answers NOT_LEADER_OR_FOLLOWER", async () => {
    cluster = await TestCluster.start([1, 2]);
    await cluster.createTopic([1, 2]);
    cluster.isolated.add(2);
    const pending = cluster.produce(1, -1, 0, 5000);
    await eventually("the batch is appended", () => cluster!.part(1).log.logEndOffset === 3);
    await cluster.controller.append([{ type: "PartitionChange", topicId: TOPIC_ID, partition: 0, leader: 2 }]);
    expect(partitionResult(await pending).error).toBe("NOT_LEADER_OR_FOLLOWER");
  });

  it("a follower behind the leader's log start restarts its log there (OFFSET_OUT_OF_RANGE) and then follows", async () => {
    cluster = await TestCluster.start([1, 2]);
    await cluster.createTopic([1, 2]);
    expect(partitionResult(await cluster.produce(1, -1, 0)).error).toBe("NONE");
    cluster.isolated.add(2);
    // What retention does to a leader whose follower was away: the records it lacks are gone.
    await cluster.part(1).log.truncateFullyAndStartAt(50);
    cluster.isolated.delete(2);
    await eventually("the follower restarts at the leader's log start", () => cluster!.part(2).highWatermark === 50);
    expect(cluster.part(2).log.logStartOffset).toBe(50);
    expect(cluster.part(2).log.logEndOffset).toBe(50);
    expect(partitionResult(await cluster.produce(1, -1, 1))).toEqual({ error: "NONE", baseOffset: 50 });
    await eventually("the follower copies the new batch", () => cluster!.part(2).log.logEndOffset === 53);
    expect(await cluster.logBytes(2, 53)).toEqual(await cluster.logBytes(1, 53));
  });

  it("acks=all completes on the followers' next fetches, with no timer in the path: each follower fetches once more after receiving the batch", async () => {
    // Long waits and backoffs: anything that waited on a timer (a follower pausing before
    // its next fetch, a leader that moves the HW only when a parked fetch times out) would
    // take seconds here. (A follower that fetches before the leader hosts the partition
    // backs off once: the warm-up below may take that long.)
    cluster = await TestCluster.start([1, 2, 3], { replicaLagTimeMaxMs: 30_000, fetchWaitMaxMs: 10_000, fetchBackoffMs: 3000 });
    await cluster.createTopic([1, 2, 3], { "min.insync.replicas": "3" });
    expect(partitionResult(await cluster.produce(1, -1, 0, 20_000)).error).toBe("NONE"); // warm: both followers fetching
    await eventually("both followers parked at the log end", () => cluster!.brokers.get(1)!.replicas.purgatory.size === 2);
    for (let i = 1; i <= 5; i++) {
      const callsBefore = [2, 3].map((id) => cluster!.fetchCalls.get(id) ?? 0);
      const started = performance.now();
      const r = partitionResult(await cluster.produce(1, -1, i, 20_000));
      const tookMs = performance.now() - started;
      expect(r).toEqual({ error: "NONE", baseOffset: 3 * i });
      expect(tookMs).toBeLessThan(2000);
      // The parked fetch carried the batch; exactly one more fetch per follower reported it.
      expect([2, 3].map((id, k) => (cluster!.fetchCalls.get(id) ?? 0) - callsBefore[k]!)).toEqual([1, 1]);
      expect(cluster.part(1).highWatermark).toBe(3 * i + 3);
      await eventually("both followers parked again", () => cluster!.brokers.get(1)!.replicas.purgatory.size === 2);
    }
  });

  it("a consumer's long-poll parked at the HW returns the records as soon as the followers' fetches move the HW", async () => {
    cluster = await TestCluster.start([1, 2, 3], { replicaLagTimeMaxMs: 30_000, fetchWaitMaxMs: 10_000, fetchBackoffMs: 3000 });
    await cluster.createTopic([1, 2, 3]);
    expect(partitionResult(await cluster.produce(1, -1, 0, 20_000)).error).toBe("NONE");
    const leader = cluster.brokers.get(1)!.replicas;
    const hw = cluster.part(1).highWatermark;
    const started = performance.now();
    const poll = handleFetch(leader, { replicaId: -1, maxWaitMs: 10_000, minBytes: 1, maxBytes: 1 << 20, topics: [{ name: TOPIC, partitions: [{ partition: 0, fetchOffset: hw, partitionMaxBytes: 1 << 20, currentLeaderEpoch: -1 }] }] }, { fetchMaxBytes: 1 << 20, fetchWaitMsMax: 10_000 });
    // acks=1 answers after the leader's append, before replication: the poll must not see it yet.
    expect(partitionResult(await cluster.produce(1, 1, 1))).toEqual({ error: "NONE", baseOffset: hw });
    const answer = (await poll).topics[0]!.partitions[0]!;
    expect(performance.now() - started).toBeLessThan(2000);
    expect(answer.errorCode).toBe(0);
    expect(answer.highWatermark).toBe(hw + 3);
    expect(answer.records.length).toBeGreaterThan(0);
    expect(answer.records.readBigInt64BE(0)).toBe(BigInt(hw));
  });

  it("checkpoints the high watermark at close and starts a restarted follower from it", async () => {
    cluster = await TestCluster.start([1, 2]);
    await cluster.createTopic([1, 2]);
    for (let i = 0; i < 2; i++) expect(partitionResult(await cluster.produce(1, -1, i)).error).toBe("NONE");
    await eventually("follower HW 6", () => cluster!.part(2).highWatermark === 6);
    await cluster.stopBroker(2);
    expect(await readFile(path.join(cluster.dirs[1]!, HIGH_WATERMARK_CHECKPOINT_FILE), "utf8")).toBe(`0\n1\n${TOPIC} 0 6\n`);
    cluster.isolated.add(2); // so that fetching cannot be what sets the HW
    await cluster.startBroker(2, cluster.dirs[1]!);
    expect(cluster.part(2).highWatermark).toBe(6);
  });
});

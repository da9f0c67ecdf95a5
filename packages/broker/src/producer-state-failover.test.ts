/**
 * Producer state across a leader change, on real partition logs: a follower that copied the
 * leader's batches and then becomes leader answers a retry of any of them with the original
 * offsets (whether it kept its state current while following or loads it from its log on
 * the first produce), and a truncated replica reloads its state from what is left.
 */
import { afterEach, describe, expect, it } from "vitest";
import { FlotillaError } from "@flotilla/common";
import { silentLogger } from "@flotilla/common/logger";
import { DEFAULT_TOPIC_CONFIG, type PartitionRegistration } from "@flotilla/metadata";
import { encodeBatch } from "@flotilla/protocol";
import { PartitionLog } from "@flotilla/storage";
import { FakeClock, tempDir, testConfig } from "@flotilla/storage/test-support";
import { Partition, SEQUENCE_GAP_WAIT_MS, type PartitionListener } from "./partition.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const listener: PartitionListener = {
  onHighWatermark: () => {},
  onLeaderAppend: () => {},
  onStateChange: () => {},
  alterPartition: undefined,
  replicaLagTimeMaxMs: 30_000,
  nowMs: () => Date.now(),
  logger: silentLogger(),
};

async function replica(nodeId: number, registration: PartitionRegistration): Promise<Partition> {
  const dir = await tempDir(`flotilla-pstate-${nodeId}-`);
  const log = await PartitionLog.open({ dir: dir.path, config: testConfig(), clock: new FakeClock(), logger: silentLogger(), topic: "t", partition: 0 });
  cleanups.push(async () => {
    await log.close();
    await dir.cleanup();
  });
  return new Partition("t", "AAAAAAAAAAAAAAAAAAAAAA", 0, log, nodeId, registration, DEFAULT_TOPIC_CONFIG, listener);
}

/** An idempotent batch of producer 42, epoch 0: `count` records from sequence `baseSequence`. */
function batch(baseSequence: number, count = 2): Buffer {
  return encodeBatch(
    Array.from({ length: count }, (_, i) => ({ key: null, value: Buffer.from(`s${baseSequence + i}`), timestamp: 1000 })),
    { producerId: 42, producerEpoch: 0, baseSequence },
  );
}

const asLeaderOf = (leader: number, leaderEpoch: number): PartitionRegistration => ({ replicas: [1, 2], isr: [1, 2], leader, leaderEpoch, partitionEpoch: leaderEpoch });

/** Copies the leader's whole log to the follower, as replica fetches would. */
async function replicate(from: Partition, to: Partition): Promise<void> {
  for (let offset = to.log.logEndOffset, i = 0; offset < from.log.logEndOffset && i < 1000; i++) {
    const r = await from.log.read(offset, { maxBytes: 1 << 20, minOneBatch: true });
    await to.appendAsFollower(r.records, from.log.logEndOffset);
    offset = r.nextOffset;
  }
}

describe.each([
  ["kept current while following", true],
  ["loaded from the log on the first produce", false],
])("a follower that becomes leader, producer state %s", (_name, loadWhileFollowing) => {
  it("answers retries of the old leader's batches with their original offsets and takes the next sequence", async () => {
    const a = await replica(1, asLeaderOf(1, 0));
    const b = await replica(2, asLeaderOf(1, 0));
    if (loadWhileFollowing) await b.producerState.ensureLoaded(b.log);
    const offsets: number[] = [];
    for (let seq = 0; seq < 12; seq += 2) offsets.push((await a.appendAsLeader(batch(seq), { acks: 1, nowMs: 0 })).baseOffset);
    await replicate(a, b);
    expect(b.producerState.isLoaded).toBe(loadWhileFollowing);

    // Failover: broker 2 leads epoch 1; the producer retries its last batches.
    expect(b.applyRegistration(asLeaderOf(2, 1))).toBe("new-role");
    expect(b.isLeader).toBe(true);
    const end = b.log.logEndOffset;
    for (let i = 1; i < 6; i++) {
      const retry = await b.appendAsLeader(batch(2 * i), { acks: 1, nowMs: 0 });
      expect(retry.baseOffset).toBe(offsets[i]);
    }
    expect(b.log.logEndOffset).toBe(end);
    const gap = await b.appendAsLeader(batch(14), { acks: 1, nowMs: 0 }).catch((e: unknown) => e);
    expect((gap as FlotillaError).errorName).toBe("OUT_OF_ORDER_SEQUENCE_NUMBER");
    expect((await b.appendAsLeader(batch(12), { acks: 1, nowMs: 0 })).baseOffset).toBe(end);
  });
});

describe("pipelined batches that arrive out of order", () => {
  it("appends them in sequence order: a batch ahead waits for the earlier ones instead of failing", async () => {
    const a = await replica(1, asLeaderOf(1, 0));
    const startMs = performance.now();
    // Sequences 4 and 2 arrive before 0 (HTTP/2 may complete later calls first).
    const later = [a.appendAsLeader(batch(4), { acks: 1, nowMs: 0 }), a.appendAsLeader(batch(2), { acks: 1, nowMs: 0 })];
    await new Promise((r) => setTimeout(r, 5));
    const first = await a.appendAsLeader(batch(0), { acks: 1, nowMs: 0 });
    const [four, two] = await Promise.all(later);
    expect([first.baseOffset, two!.baseOffset, four!.baseOffset]).toEqual([0, 2, 4]);
    // Woken by the appends, not by the wait running out.
    expect(performance.now() - startMs).toBeLessThan(SEQUENCE_GAP_WAIT_MS);
    expect(a.producerState.appendWaiterCount).toBe(0);
  });

  it("answers a waiting batch NOT_LEADER_OR_FOLLOWER at once when the leadership moves", async () => {
    const a = await replica(1, asLeaderOf(1, 0));
    await a.appendAsLeader(batch(0), { acks: 1, nowMs: 0 });
    const startMs = performance.now();
    const ahead = a.appendAsLeader(batch(6), { acks: 1, nowMs: 0 }).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 5));
    expect(a.applyRegistration(asLeaderOf(2, 1))).toBe("new-role");
    expect(((await ahead) as FlotillaError).errorName).toBe("NOT_LEADER_OR_FOLLOWER");
    expect(performance.now() - startMs).toBeLessThan(SEQUENCE_GAP_WAIT_MS);
  });
});

describe("truncation", () => {
  it("reloads the producer state from what the log still holds", async () => {
    const a = await replica(1, asLeaderOf(1, 0));
    const b = await replica(2, asLeaderOf(1, 0));
    for (let seq = 0; seq < 8; seq += 2) await a.appendAsLeader(batch(seq), { acks: 1, nowMs: 0 });
    await b.producerState.ensureLoaded(b.log);
    await replicate(a, b);
    expect(b.producerState.entry(42)?.batches.at(-1)?.lastSequence).toBe(7);
    // The last two batches were a divergent suffix: cut them.
    await b.truncateTo(4);
    expect(b.applyRegistration(asLeaderOf(2, 1))).toBe("new-role");
    // The producer resends sequence 4 (its batch the new leader lacks): appended, not a duplicate.
    const r = await b.appendAsLeader(batch(4), { acks: 1, nowMs: 0 });
    expect(r.baseOffset).toBe(4);
    expect(b.producerState.entry(42)?.batches.map((x) => x.baseSequence)).toEqual([0, 2, 4]);
  });
});

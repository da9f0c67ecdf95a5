import { afterEach, describe, expect, it } from "vitest";
import { FlotillaError, SeededRandom } from "@flotilla/common";
import { silentLogger } from "@flotilla/common/logger";
import { encodeBatch, readBatchHeader } from "@flotilla/protocol";
import { PartitionLog } from "@flotilla/storage";
import { FakeClock, tempDir, testConfig } from "@flotilla/storage/test-support";
import { PRODUCER_BATCHES_RETAINED, ProducerStateManager, inSequence, incrementSequence, sequenceAhead, type ProducerBatchHeader } from "./producer-state.js";

const INT32_MAX = 2 ** 31 - 1;

function hdr(producerId: number, producerEpoch: number, baseSequence: number, records = 1, maxTimestamp = 1000): ProducerBatchHeader {
  return { producerId, producerEpoch, baseSequence, lastOffsetDelta: records - 1, maxTimestamp };
}

/** A loaded, empty state (what a fresh partition has after its first load). */
async function fresh(): Promise<ProducerStateManager> {
  const s = new ProducerStateManager("t-0");
  await s.ensureLoaded({ logStartOffset: 0, logEndOffset: 0, read: async () => ({ records: Buffer.alloc(0), nextOffset: 0 }) });
  return s;
}

/** The leader's path: check, and append at `nextOffset` when not a duplicate. */
function leaderAppend(s: ProducerStateManager, h: ProducerBatchHeader, at: { next: number }): { firstOffset: number; lastOffset: number; duplicate: boolean } {
  const check = s.checkLeaderAppend([h]);
  if (check.kind === "duplicate") return { firstOffset: check.firstOffset, lastOffset: check.lastOffset, duplicate: true };
  const firstOffset = at.next;
  s.onAppend(h, firstOffset);
  at.next += h.lastOffsetDelta + 1;
  return { firstOffset, lastOffset: firstOffset + h.lastOffsetDelta, duplicate: false };
}

function errorName(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof FlotillaError) return err.errorName;
    throw err;
  }
  return undefined;
}

describe("sequence arithmetic", () => {
  it("wraps from 2^31-1 to 0 as Kafka's incrementSequence does", () => {
    expect(incrementSequence(5, 3)).toBe(8);
    expect(incrementSequence(INT32_MAX, 1)).toBe(0);
    expect(incrementSequence(INT32_MAX - 1, 4)).toBe(2);
    expect(inSequence(INT32_MAX, 0)).toBe(true);
    expect(inSequence(INT32_MAX, 1)).toBe(false);
    expect(inSequence(4, 5)).toBe(true);
    expect(inSequence(4, 6)).toBe(false);
  });
});

describe("leader checks", () => {
  it("answers a retry of any of the last 5 batches with its original offsets and appends nothing", async () => {
    const s = await fresh();
    const at = { next: 100 };
    const first = [0, 3, 6, 9, 12, 15].map((seq) => leaderAppend(s, hdr(7, 0, seq, 3), at));
    expect(at.next).toBe(118);
    // The last 5 (sequences 3..17) are retained; each retry gets its original offsets.
    for (let i = 1; i < 6; i++) {
      const retry = leaderAppend(s, hdr(7, 0, 3 * i, 3), at);
      expect(retry).toEqual({ ...first[i], duplicate: true });
    }
    expect(at.next).toBe(118);
    // The oldest batch fell out of the window: it is now simply out of order.
    expect(errorName(() => s.checkLeaderAppend([hdr(7, 0, 0, 3)]))).toBe("OUT_OF_ORDER_SEQUENCE_NUMBER");
    expect(s.entry(7)?.batches).toHaveLength(PRODUCER_BATCHES_RETAINED);
  });

  it("refuses a gap or a step back in sequences with OUT_OF_ORDER_SEQUENCE_NUMBER", async () => {
    const s = await fresh();
    const at = { next: 0 };
    leaderAppend(s, hdr(1, 0, 0, 2), at);
    expect(errorName(() => s.checkLeaderAppend([hdr(1, 0, 3)]))).toBe("OUT_OF_ORDER_SEQUENCE_NUMBER");
    // Overlapping but not identical to a retained batch is not a duplicate.
    expect(errorName(() => s.checkLeaderAppend([hdr(1, 0, 1)]))).toBe("OUT_OF_ORDER_SEQUENCE_NUMBER");
    expect(errorName(() => s.checkLeaderAppend([hdr(1, 0, 2)]))).toBeUndefined();
  });

  it("fences an older epoch and makes a newer one start at sequence 0", async () => {
    const s = await fresh();
    const at = { next: 0 };
    leaderAppend(s, hdr(1, 3, 0, 5), at);
    expect(errorName(() => s.checkLeaderAppend([hdr(1, 2, 5)]))).toBe("INVALID_PRODUCER_EPOCH");
    expect(errorName(() => s.checkLeaderAppend([hdr(1, 4, 5)]))).toBe("OUT_OF_ORDER_SEQUENCE_NUMBER");
    leaderAppend(s, hdr(1, 4, 0), at);
    expect(s.entry(1)).toEqual({ producerId: 1, producerEpoch: 4, batches: [{ baseSequence: 0, lastSequence: 0, firstOffset: 5, lastOffset: 5, maxTimestamp: 1000 }] });
    // The bump forgot the old epoch's batches: its retry is fenced, not deduplicated.
    expect(errorName(() => s.checkLeaderAppend([hdr(1, 3, 0, 5)]))).toBe("INVALID_PRODUCER_EPOCH");
  });

  it("makes a producer it has no state for start at sequence 0 (UNKNOWN_PRODUCER_ID otherwise)", async () => {
    const s = await fresh();
    expect(errorName(() => s.checkLeaderAppend([hdr(9, 0, 4)]))).toBe("UNKNOWN_PRODUCER_ID");
    expect(s.checkLeaderAppend([hdr(9, 0, 0)])).toEqual({ kind: "append" });
    expect(errorName(() => s.checkLeaderAppend([hdr(9, 0, -1)]))).toBe("INVALID_REQUEST");
  });

  it("ignores batches without a producer id", async () => {
    const s = await fresh();
    expect(s.checkLeaderAppend([hdr(-1, -1, -1), hdr(-1, -1, -1)])).toEqual({ kind: "append" });
    s.onAppend(hdr(-1, -1, -1), 0);
    expect(s.producerCount).toBe(0);
  });

  it("continues across the int32 wraparound of sequences", async () => {
    const s = await fresh();
    const at = { next: 0 };
    leaderAppend(s, hdr(2, 0, 0), at);
    // A producer that has sent 2^31-3 records: load its state as a follower would.
    s.onAppend(hdr(2, 0, 1, INT32_MAX - 3), 1);
    at.next = 1 + INT32_MAX - 3;
    expect(s.entry(2)?.batches.at(-1)?.lastSequence).toBe(INT32_MAX - 3);
    const wrap = leaderAppend(s, hdr(2, 0, INT32_MAX - 2, 5), at); // sequences 2^31-3 .. 2^31-1, 0, 1
    expect(s.entry(2)?.batches.at(-1)?.lastSequence).toBe(1);
    expect(errorName(() => s.checkLeaderAppend([hdr(2, 0, INT32_MAX)]))).toBe("OUT_OF_ORDER_SEQUENCE_NUMBER");
    expect(leaderAppend(s, hdr(2, 0, INT32_MAX - 2, 5), at)).toEqual({ ...wrap, duplicate: true });
    expect(leaderAppend(s, hdr(2, 0, 2), at).duplicate).toBe(false);
  });

  it("checks the batches of one request against each other", async () => {
    const s = await fresh();
    const at = { next: 0 };
    expect(s.checkLeaderAppend([hdr(1, 0, 0, 2), hdr(1, 0, 2, 2)])).toEqual({ kind: "append" });
    expect(errorName(() => s.checkLeaderAppend([hdr(1, 0, 0, 2), hdr(1, 0, 3)]))).toBe("OUT_OF_ORDER_SEQUENCE_NUMBER");
    leaderAppend(s, hdr(1, 0, 0, 2), at);
    expect(errorName(() => s.checkLeaderAppend([hdr(1, 0, 0, 2), hdr(1, 0, 2)]))).toBe("DUPLICATE_SEQUENCE_NUMBER");
  });

  it("forgets the least recently appended producer past producersMax", async () => {
    const s = new ProducerStateManager("t-0", 2);
    s.onAppend(hdr(1, 0, 0), 0);
    s.onAppend(hdr(2, 0, 0), 1);
    s.onAppend(hdr(1, 0, 1), 2);
    s.onAppend(hdr(3, 0, 0), 3);
    expect(s.entries().map((e) => e.producerId)).toEqual([1, 3]);
  });

  it("with waitForEarlier, tells a batch ahead of its producer's sequence to wait, and still refuses a step back", async () => {
    const s = await fresh();
    const at = { next: 0 };
    leaderAppend(s, hdr(1, 0, 0, 2), at);
    const wait = { waitForEarlier: true };
    expect(s.checkLeaderAppend([hdr(1, 0, 5)], wait)).toEqual({ kind: "ahead", producerId: 1 });
    expect(s.checkLeaderAppend([hdr(1, 0, 2)], wait)).toEqual({ kind: "append" });
    expect(errorName(() => s.checkLeaderAppend([hdr(1, 0, 1)], wait))).toBe("OUT_OF_ORDER_SEQUENCE_NUMBER");
    // Unknown producer, or a new epoch, past sequence 0: sequence 0 may still be on its way.
    expect(s.checkLeaderAppend([hdr(9, 0, 4)], wait)).toEqual({ kind: "ahead", producerId: 9 });
    expect(s.checkLeaderAppend([hdr(1, 1, 3)], wait)).toEqual({ kind: "ahead", producerId: 1 });
    // Within one request nothing can arrive in between: a gap there is refused at once.
    expect(errorName(() => s.checkLeaderAppend([hdr(1, 0, 2, 2), hdr(1, 0, 9)], wait))).toBe("OUT_OF_ORDER_SEQUENCE_NUMBER");
    // Without the option, the same batch ahead is refused as before.
    expect(errorName(() => s.checkLeaderAppend([hdr(1, 0, 5)]))).toBe("OUT_OF_ORDER_SEQUENCE_NUMBER");
  });

  it("says whether a sequence is ahead of the expected one, across the int32 wrap", () => {
    expect(sequenceAhead(5, 9)).toBe(true);
    expect(sequenceAhead(5, 5)).toBe(false);
    expect(sequenceAhead(5, 3)).toBe(false);
    expect(sequenceAhead(INT32_MAX, 0)).toBe(true);
    expect(sequenceAhead(INT32_MAX - 1, 3)).toBe(true);
    expect(sequenceAhead(3, INT32_MAX - 1)).toBe(false);
  });

  it("wakes a waitForAppend at that producer's next append, not another's, and at wakeAll or its timeout", async () => {
    const s = await fresh();
    let woken = false;
    const waiting = s.waitForAppend(1, 60_000).then(() => (woken = true));
    expect(s.appendWaiterCount).toBe(1);
    s.onAppend(hdr(2, 0, 0), 0);
    await new Promise((r) => setImmediate(r));
    expect(woken).toBe(false);
    s.onAppend(hdr(1, 0, 0), 1);
    await waiting;
    expect(s.appendWaiterCount).toBe(0);

    const byWakeAll = s.waitForAppend(1, 60_000);
    s.wakeAll();
    await byWakeAll;
    const startMs = performance.now();
    await s.waitForAppend(1, 20);
    expect(performance.now() - startMs).toBeGreaterThanOrEqual(15);
    expect(s.appendWaiterCount).toBe(0);
  });

  it("runs exclusive sections one after another, also after one fails", async () => {
    const s = new ProducerStateManager("t-0");
    const order: string[] = [];
    const a = s.runExclusive(async () => {
      await new Promise((r) => setTimeout(r, 10));
      order.push("a");
      throw new Error("a failed");
    });
    const b = s.runExclusive(async () => {
      order.push("b");
      return 2;
    });
    await expect(a).rejects.toThrow("a failed");
    await expect(b).resolves.toBe(2);
    expect(order).toEqual(["a", "b"]);
  });
});

describe("loading from the log", () => {
  let cleanup: (() => Promise<void>) | undefined;
  const logs: PartitionLog[] = [];
  afterEach(async () => {
    for (const l of logs.splice(0)) await l.close();
    await cleanup?.();
    cleanup = undefined;
  });

  it("builds from batch headers the same state the leader kept while appending", async () => {
    const dir = await tempDir("flotilla-producer-state-");
    cleanup = dir.cleanup;
    const open = async () => {
      const log = await PartitionLog.open({ dir: dir.path, config: testConfig({ segmentBytes: 4096 }), clock: new FakeClock(), logger: silentLogger(), topic: "t", partition: 0 });
      logs.push(log);
      return log;
    };
    const log = await open();
    const live = await fresh();
    const random = new SeededRandom(42);
    // Six producers, some bumping their epoch, interleaved with non-idempotent batches.
    const next = new Map<number, { epoch: number; seq: number }>();
    for (let i = 0; i < 300; i++) {
      const records = random.int(1, 5);
      const pid = random.int(-1, 6);
      let producerEpoch = -1;
      let baseSequence = -1;
      if (pid >= 0) {
        const st = next.get(pid) ?? { epoch: 0, seq: 0 };
        if (random.next() < 0.03) {
          st.epoch++;
          st.seq = 0;
        }
        producerEpoch = st.epoch;
        baseSequence = st.seq;
        st.seq += records;
        next.set(pid, st);
      }
      const bytes = encodeBatch(
        Array.from({ length: records }, (_, r) => ({ key: null, value: Buffer.from(`v${i}-${r}`), timestamp: 1000 + i })),
        { producerId: pid, producerEpoch, baseSequence },
      );
      const header = readBatchHeader(bytes);
      expect(live.checkLeaderAppend([header])).toEqual({ kind: "append" });
      const info = await log.appendAsLeader(bytes, { leaderEpoch: 0 });
      live.onAppend(header, info.baseOffset);
    }
    expect(log.segmentInfos().length).toBeGreaterThan(1);

    const loaded = new ProducerStateManager("t-0");
    await loaded.ensureLoaded(log);
    expect(loaded.entries()).toEqual(live.entries());
    expect(loaded.entries().length).toBeGreaterThan(3);

    // Again after a restart, and after a truncation (which forgets and reloads).
    await log.close();
    logs.length = 0;
    const reopened = await open();
    const afterRestart = new ProducerStateManager("t-0");
    await afterRestart.ensureLoaded(reopened);
    expect(afterRestart.entries()).toEqual(live.entries());

    await reopened.truncateTo(100);
    afterRestart.invalidate();
    expect(afterRestart.isLoaded).toBe(false);
    await afterRestart.ensureLoaded(reopened);
    const upTo100 = new ProducerStateManager("t-0");
    for (let o = 0; o < reopened.logEndOffset; ) {
      const r = await reopened.read(o, { maxBytes: 1 << 20, minOneBatch: true });
      upTo100.applyBatches(r.records, 100);
      o = r.nextOffset;
    }
    // Sanity: the live state had batches past 100, the truncated one does not.
    expect(live.entries().some((e) => e.batches.at(-1)!.lastOffset >= 100)).toBe(true);
    expect(afterRestart.entries()).toEqual(upTo100.entries());
    for (const e of afterRestart.entries()) expect(e.batches.at(-1)!.lastOffset).toBeLessThan(100);
  });
});

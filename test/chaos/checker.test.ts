import { describe, expect, it } from "vitest";
import { check, type History, type ReadRecord, type SendEvent } from "./checker.js";

const OPTIONS = { unavailabilityThresholdMs: 1000 };

/** A clean history: 3 keys x 5 records on partitions 0/1, each acked and read back once, in order. */
function cleanHistory(): { sends: SendEvent[]; reads: ReadRecord[] } {
  const sends: SendEvent[] = [];
  const reads: ReadRecord[] = [];
  const nextOffset = [0, 0];
  let t = 0;
  for (let seq = 0; seq < 5; seq++) {
    for (const [k, key] of ["a", "b", "c"].entries()) {
      const partition = k % 2;
      const offset = nextOffset[partition]!++;
      const value = `${key}:${seq}`;
      t += 100;
      sends.push({ key, value, keySequence: seq, partition, outcome: "acked", offset, sentAtMs: t, doneAtMs: t + 10 });
      reads.push({ partition, offset, key, value });
    }
  }
  return { sends, reads };
}

const history = (sends: SendEvent[], reads: ReadRecord[], replicas: History["replicas"] = []): History => ({ runStartMs: 0, runEndMs: 1600, sends, reads, replicas });

describe("chaos checker", () => {
  it("reports zeros for a clean history with identical replicas", () => {
    const { sends, reads } = cleanHistory();
    const bytes = new Uint8Array([1, 2, 3]);
    const r = check(history(sends, reads, [
      { partition: 0, nodeId: 1, highWatermark: 8, bytes },
      { partition: 0, nodeId: 2, highWatermark: 8, bytes: new Uint8Array(bytes) },
    ]), OPTIONS);
    expect(r.counts).toMatchObject({ acked: 15, read: 15, lost: 0, duplicates: 0, orderViolations: 0, replicaDisagreements: 0, replicasCompared: 2, unavailabilityWindows: 0 });
  });

  it("reports exactly the planted lost record, duplicate, reordered pair and diverged replica", () => {
    const { sends, reads } = cleanHistory();
    // Lost: b:2 acked but not read back.
    const lostIndex = reads.findIndex((r) => r.value === "b:2");
    reads.splice(lostIndex, 1);
    // Duplicate: c:1 read a second time at a later offset.
    reads.push({ partition: 0, offset: 100, key: "c", value: "c:1" });
    // Reordered: a:3 and a:4 swap their offsets.
    const a3 = reads.find((r) => r.value === "a:3")!;
    const a4 = reads.find((r) => r.value === "a:4")!;
    [a3.offset, a4.offset] = [a4.offset, a3.offset];
    const r = check(history(sends, reads, [
      { partition: 1, nodeId: 1, highWatermark: 7, bytes: new Uint8Array([1, 2, 3]) },
      { partition: 1, nodeId: 2, highWatermark: 7, bytes: new Uint8Array([1, 2, 3]) },
      { partition: 1, nodeId: 3, highWatermark: 7, bytes: new Uint8Array([1, 9, 3]) },
    ]), OPTIONS);
    expect(r.counts).toMatchObject({ lost: 1, duplicates: 1, orderViolations: 1, replicaDisagreements: 1 });
    expect(r.lost.map((l) => l.value)).toEqual(["b:2"]);
    expect(r.duplicates).toEqual([{ value: "c:1", times: 2, at: [expect.objectContaining({ partition: 0 }), { partition: 0, offset: 100 }] }]);
    expect(r.orderViolations).toHaveLength(1);
    expect(r.orderViolations[0]).toMatchObject({ key: "a", earlier: { value: "a:3" }, later: { value: "a:4" } });
    expect(r.replicaDisagreements).toEqual([expect.objectContaining({ partition: 1, nodeId: 3, referenceNodeId: 1 })]);
  });

  it("ignores failed and unknown sends for loss and order, and counts them", () => {
    const { sends, reads } = cleanHistory();
    sends.push({ key: "a", value: "a:5", keySequence: 5, partition: 0, outcome: "failed", sentAtMs: 1500, doneAtMs: 1550 });
    sends.push({ key: "a", value: "a:6", keySequence: 6, partition: 0, outcome: "unknown", sentAtMs: 1550, doneAtMs: 1600 });
    const r = check(history(sends, reads), OPTIONS);
    expect(r.counts).toMatchObject({ failed: 1, unknown: 1, lost: 0, orderViolations: 0 });
  });

  it("reports gaps without acknowledgements longer than the threshold, with start and end", () => {
    const { sends, reads } = cleanHistory();
    // No ack between 610 and 2910: move the last 9 acks 2300 ms later and end the run after them.
    for (const s of sends.slice(6)) s.doneAtMs += 2300;
    const r = check({ runStartMs: 0, runEndMs: 4000, sends, reads, replicas: [] }, OPTIONS);
    expect(r.unavailability).toEqual([
      { startMs: 610, endMs: 3010, durationMs: 2400 },
    ]);
    expect(r.counts.unavailabilityWindows).toBe(1);
    expect(r.longestUnavailabilityMs).toBe(2400);
  });
});

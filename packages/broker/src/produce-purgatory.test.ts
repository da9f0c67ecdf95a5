import { describe, expect, it } from "vitest";
import { FlotillaError } from "@flotilla/common";
import type { Partition } from "./partition.js";
import { ProducePurgatory } from "./produce-purgatory.js";

/** The part of a Partition the purgatory reads: its HW, and the outcome rule over it. */
class FakePartition {
  key = "t-0";
  highWatermark = 0;
  leader = true;
  produceOutcome(requiredOffset: number, _leaderEpoch: number): "ok" | FlotillaError | undefined {
    if (!this.leader) return new FlotillaError("NOT_LEADER_OR_FOLLOWER", "lost leadership");
    return this.highWatermark >= requiredOffset ? "ok" : undefined;
  }
}

const asPartition = (p: FakePartition) => p as unknown as Partition;

describe("ProducePurgatory", () => {
  it("answers when the outcome is known on check, and REQUEST_TIMED_OUT after the timeout", async () => {
    const purgatory = new ProducePurgatory(10);
    const p = new FakePartition();
    const done = purgatory.wait(asPartition(p), 5, 0, 5000);
    expect(purgatory.size).toBe(1);
    p.highWatermark = 4;
    purgatory.check(asPartition(p));
    expect(purgatory.size).toBe(1);
    p.highWatermark = 5;
    purgatory.check(asPartition(p));
    await done;
    expect(purgatory.size).toBe(0);
    await expect(purgatory.wait(asPartition(p), 9, 0, 30)).rejects.toMatchObject({ errorName: "REQUEST_TIMED_OUT" });
    const lost = purgatory.wait(asPartition(p), 9, 0, 5000);
    p.leader = false;
    purgatory.check(asPartition(p));
    await expect(lost).rejects.toMatchObject({ errorName: "NOT_LEADER_OR_FOLLOWER" });
  });

  it("is bounded: past parkedMax a wait is answered at once, and close answers every wait", async () => {
    const purgatory = new ProducePurgatory(2);
    const p = new FakePartition();
    const a = purgatory.wait(asPartition(p), 1, 0, 5000);
    const b = purgatory.wait(asPartition(p), 1, 0, 5000);
    await expect(purgatory.wait(asPartition(p), 1, 0, 5000)).rejects.toMatchObject({ errorName: "REQUEST_TIMED_OUT" });
    purgatory.close();
    await expect(a).rejects.toMatchObject({ errorName: "SHUTTING_DOWN" });
    await expect(b).rejects.toMatchObject({ errorName: "SHUTTING_DOWN" });
    expect(purgatory.size).toBe(0);
  });
});

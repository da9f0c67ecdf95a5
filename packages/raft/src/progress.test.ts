import { AssertionError } from "@flotilla/common";
import { describe, expect, it } from "vitest";
import { Inflights, Progress } from "./progress.js";

describe("Inflights", () => {
  it("is a bounded window freed by cumulative acknowledgements", () => {
    const w = new Inflights(3);
    w.add(2);
    w.add(4);
    w.add(7);
    expect(w.full()).toBe(true);
    expect(() => w.add(9)).toThrow(AssertionError);
    w.freeTo(4);
    expect(w.count).toBe(1);
    w.freeFirst();
    expect(w.count).toBe(0);
  });
});

describe("Progress", () => {
  it("probe sends one Append at a time; an acknowledgement switches to streaming", () => {
    const pr = new Progress(2, true, 6, 2);
    expect(pr.isPaused()).toBe(false);
    pr.sentAppend(1, 6);
    expect(pr.isPaused()).toBe(true);
    expect(pr.maybeUpdate(6)).toBe(true);
    pr.becomeReplicate();
    expect(pr).toMatchObject({ state: "replicate", match: 6, next: 7 });
    pr.sentAppend(2, 8);
    pr.sentAppend(1, 9);
    expect(pr.next).toBe(10);
    expect(pr.isPaused()).toBe(true); // the window of 2 is full
  });

  it("ignores stale rejections and backs off to the hint otherwise", () => {
    const pr = new Progress(2, true, 11, 4);
    pr.match = 3;
    // Probe state: only the rejection of the Append at next-1 = 10 counts.
    expect(pr.maybeDecrTo(7, 5)).toBe(false);
    expect(pr.maybeDecrTo(10, 5)).toBe(true);
    expect(pr.next).toBe(6);
    // Never below match + 1, whatever the hint.
    expect(pr.maybeDecrTo(5, 0)).toBe(true);
    expect(pr.next).toBe(4);
    // Replicate state: a rejection at or below match is old news.
    pr.becomeReplicate();
    expect(pr.maybeDecrTo(3, 0)).toBe(false);
    expect(pr.maybeDecrTo(8, 0)).toBe(true);
    expect(pr.next).toBe(4);
  });

  it("after a snapshot, probes just past it", () => {
    const pr = new Progress(2, true, 3, 4);
    pr.becomeSnapshot(20);
    expect(pr.isPaused()).toBe(true);
    pr.becomeProbe();
    expect(pr).toMatchObject({ state: "probe", next: 21 });
  });
});

import { AssertionError } from "@flotilla/common";
import { describe, expect, it } from "vitest";
import { RaftLog } from "./log.js";
import { entry } from "./test-cluster.js";
import type { Snapshot } from "./types.js";

const terms = (log: RaftLog) => {
  const out: string[] = [];
  for (let i = log.firstIndex(); i <= log.lastIndex(); i++) out.push(`${i}/${log.term(i)}`);
  return out;
};
const snap = (index: number, term: number): Snapshot => ({ meta: { index, term, voters: [1], observers: [] }, data: new Uint8Array() });

describe("RaftLog", () => {
  it("hands out only the entries added since the last Ready, and a replaced suffix again", () => {
    const log = new RaftLog({ entries: [entry(1, 1), entry(2, 1)], commit: 1 });
    expect(log.hasUnstable()).toBe(false); // recovered entries are on disk already
    log.append([entry(3, 2)]);
    expect(log.takeUnstable().entries.map((e) => e.index)).toEqual([3]);
    expect(log.hasUnstable()).toBe(false);
    // A newer leader replaces 2 and 3: the next Ready must carry the new 2 and 3.
    const result = log.maybeAppend(1, 1, [entry(2, 3), entry(3, 3)]);
    expect(result).toEqual({ lastNew: 3, truncatedFrom: 2 });
    expect(log.takeUnstable().entries.map((e) => `${e.index}/${e.term}`)).toEqual(["2/3", "3/3"]);
  });

  it("never truncates at or below the commit index", () => {
    const log = new RaftLog({ entries: [entry(1, 1), entry(2, 1)], commit: 2 });
    expect(() => log.maybeAppend(1, 1, [entry(2, 2)])).toThrow(AssertionError);
  });

  it("refuses an append whose previous entry does not match", () => {
    const log = new RaftLog({ entries: [entry(1, 1), entry(2, 1)], commit: 0 });
    expect(log.maybeAppend(2, 2, [entry(3, 2)])).toBeUndefined();
    expect(log.maybeAppend(5, 1, [])).toBeUndefined();
    expect(terms(log)).toEqual(["1/1", "2/1"]);
  });

  it("finds the highest index that can still match a term (fast back-off)", () => {
    const log = new RaftLog({ entries: [1, 1, 2, 2, 5, 5].map((t, k) => entry(k + 1, t)), commit: 0 });
    expect(log.findConflictByTerm(6, 4)).toBe(4); // terms 5 cannot match a term <= 4
    expect(log.findConflictByTerm(6, 5)).toBe(6);
    expect(log.findConflictByTerm(9, 1)).toBe(2); // beyond the end: start at the last index
    expect(log.findConflictByTerm(6, 0)).toBe(0);
  });

  it("compacts an applied prefix and keeps answering the snapshot's term", () => {
    const log = new RaftLog({ entries: [entry(1, 1), entry(2, 1), entry(3, 2)], commit: 3, applied: 3 });
    log.compact(snap(2, 1));
    expect(log.firstIndex()).toBe(3);
    expect(log.term(2)).toBe(1);
    expect(log.term(1)).toBeUndefined();
    expect(terms(log)).toEqual(["3/2"]);
    expect(() => log.compact(snap(4, 2))).toThrow(AssertionError); // beyond applied
  });

  it("restores from a leader's snapshot: the log restarts after it and the snapshot is handed out", () => {
    const log = new RaftLog({ entries: [entry(1, 1), entry(2, 1)], commit: 1 });
    log.restore(snap(5, 3));
    expect(log).toMatchObject({ committed: 5, applied: 0 });
    expect(log.lastIndex()).toBe(5);
    expect(log.lastTerm()).toBe(3);
    expect(log.hasCommittedToApply()).toBe(false); // the snapshot goes first
    const unstable = log.takeUnstable();
    expect(unstable.snapshot?.meta.index).toBe(5);
    expect(unstable.entries).toEqual([]);
  });

  it("rejects a recovered state whose commit index is beyond its entries", () => {
    expect(() => new RaftLog({ entries: [entry(1, 1)], commit: 2 })).toThrow(/beyond the last log index/);
  });

  it("hands out committed entries in bounded batches", () => {
    const log = new RaftLog({ entries: [1, 1, 1, 1, 1].map((t, k) => entry(k + 1, t)), commit: 5 });
    expect(log.committedAfter(0, 2).map((e) => e.index)).toEqual([1, 2]);
    log.appliedTo(2);
    expect(log.committedAfter(2, 10).map((e) => e.index)).toEqual([3, 4, 5]);
  });
});

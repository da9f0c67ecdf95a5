import { describe, expect, it } from "vitest";
import { OffsetIndex, TimeIndex } from "./indexes.js";
import { Mutex, ReadWriteLock } from "./lock.js";

describe("OffsetIndex", () => {
  it("finds the last entry at or before an offset, and round-trips through its file bytes", () => {
    const index = new OffsetIndex(4);
    expect(index.floor(5)).toBeUndefined();
    index.append(3, 100);
    index.append(7, 250);
    index.append(12, 400);
    expect(index.floor(2)).toBeUndefined();
    expect(index.floor(3)).toEqual({ relativeOffset: 3, position: 100 });
    expect(index.floor(11)).toEqual({ relativeOffset: 7, position: 250 });
    expect(index.floor(1000)).toEqual({ relativeOffset: 12, position: 400 });
    expect(index.append(13, 500)).toBe(true);
    expect(index.isFull()).toBe(true);
    expect(index.append(14, 600)).toBe(false);
    const decoded = OffsetIndex.decode(index.encode(), 4, 1000)!;
    expect(decoded.floor(11)).toEqual({ relativeOffset: 7, position: 250 });
    decoded.truncateToPosition(250);
    expect(decoded.last()).toEqual({ relativeOffset: 3, position: 100 });
  });

  it("rejects files that are ragged, unordered or point past the log", () => {
    const index = new OffsetIndex(10);
    index.append(3, 100);
    index.append(7, 250);
    const bytes = index.encode();
    expect(OffsetIndex.decode(bytes.subarray(0, 12), 10, 1000)).toBeUndefined();
    expect(OffsetIndex.decode(bytes, 10, 250)).toBeUndefined();
    expect(OffsetIndex.decode(Buffer.concat([bytes.subarray(8), bytes.subarray(0, 8)]), 10, 1000)).toBeUndefined();
  });
});

describe("TimeIndex", () => {
  it("keeps strictly increasing timestamps, answers 'last entry before', and keeps one slot for the closing entry", () => {
    const index = new TimeIndex(4);
    index.maybeAppend(-1, 0); // NO_TIMESTAMP
    index.maybeAppend(100, 2);
    index.maybeAppend(100, 3); // not larger: skipped
    index.maybeAppend(90, 4); // older: skipped
    index.maybeAppend(150, 5);
    expect(index.entries).toBe(2);
    expect(index.lastBefore(100)).toBeUndefined();
    expect(index.lastBefore(101)).toBe(2);
    expect(index.lastBefore(1e15)).toBe(5);
    index.maybeAppend(200, 6);
    expect(index.isFull()).toBe(true);
    index.maybeAppend(300, 7); // full
    expect(index.entries).toBe(3);
    index.maybeAppend(300, 7, true); // the closing entry is never refused
    expect(index.last()).toEqual({ timestamp: 300, relativeOffset: 7 });
    const decoded = TimeIndex.decode(index.encode(), 4, 8)!;
    expect(decoded.lastBefore(250)).toBe(6);
    expect(TimeIndex.decode(index.encode(), 4, 7)).toBeUndefined(); // names offset 7 of a 7-offset segment
    decoded.truncateToOffset(6);
    expect(decoded.last()).toEqual({ timestamp: 150, relativeOffset: 5 });
  });
});

describe("locks", () => {
  it("Mutex runs sections one at a time in call order, surviving failures", async () => {
    const mutex = new Mutex();
    const order: string[] = [];
    const slow = (name: string, ms: number) => mutex.run(async () => {
      order.push(`${name}+`);
      await new Promise((r) => setTimeout(r, ms));
      order.push(`${name}-`);
    });
    const failing = mutex.run(async () => {
      throw new Error("boom");
    });
    await Promise.all([slow("a", 10), failing.catch(() => undefined), slow("b", 1)]);
    expect(order).toEqual(["a+", "a-", "b+", "b-"]);
  });

  it("ReadWriteLock lets readers share, excludes writers, and queues readers behind a waiting writer", async () => {
    const lock = new ReadWriteLock();
    const events: string[] = [];
    let release1!: () => void;
    const r1 = lock.read(() => new Promise<void>((r) => (events.push("r1"), (release1 = r))));
    const r2 = lock.read(async () => void events.push("r2"));
    await r2; // shares with r1
    const w = lock.write(async () => void events.push("w"));
    const r3 = lock.read(async () => void events.push("r3"));
    await new Promise((r) => setTimeout(r, 5));
    expect(events).toEqual(["r1", "r2"]); // w waits for r1, r3 waits for w
    release1();
    await Promise.all([r1, w, r3]);
    expect(events).toEqual(["r1", "r2", "w", "r3"]);
  });
});

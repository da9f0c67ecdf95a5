import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { FlotillaError } from "@flotilla/common";
import type { Entry, HardState, Snapshot } from "@flotilla/raft";
import { killAllProcesses, startTsProcess } from "../../../../test/helpers/processes.js";
import { encodeEntry, encodeHardState, encodeIndexKey, encodeSnapshot } from "./codec.js";
import { KvRaftStorage, type KvBackend, type RaftStorage } from "./storage.js";
import { LevelKvBackend, openLevelRaftStorage } from "./storage-level.js";
import { MemoryDisk, MemoryKvBackend, openMemoryRaftStorage } from "./storage-memory.js";

const CURRENT = new TextEncoder().encode("current");

function entry(index: number, term: number, text = `e${index}t${term}`): Entry {
  return { index, term, type: "normal", data: new TextEncoder().encode(text) };
}
function entries(from: number, to: number, term: number): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push(entry(i, term));
  return out;
}
function snapshot(index: number, term: number, text = `state@${index}`): Snapshot {
  return { meta: { index, term, voters: [1, 2, 3], observers: [7] }, data: new TextEncoder().encode(text) };
}
function hs(term: number, vote: number, commit: number): HardState {
  return { term, vote, commit };
}
/** Entries as plain comparable values (Buffer vs Uint8Array must not matter). */
function plain(list: readonly Entry[]): unknown[] {
  return list.map((e) => ({ ...e, data: Buffer.from(e.data).toString() }));
}

/** One storage implementation under test, and raw access to the same "disk". */
interface Harness {
  open(): Promise<RaftStorage>;
  /** A backend on the same data, for planting corruption. Only while no storage is open. */
  raw(): Promise<KvBackend>;
  /** Forget the open storage without closing it, as a crash would; undefined if not possible in-process. */
  crashReopen?: (storage: RaftStorage) => Promise<RaftStorage>;
  cleanup(): Promise<void>;
}

/**
 * [name, harness factory, whether a crash can be simulated in-process]. LevelDB holds a
 * directory lock per process, so its crash case runs in a child process (further down).
 */
const implementations: Array<[string, () => Harness, boolean]> = [
  [
    "memory",
    () => {
      const disk = new MemoryDisk();
      return {
        open: () => openMemoryRaftStorage(disk),
        raw: async () => new MemoryKvBackend(disk),
        crashReopen: async () => openMemoryRaftStorage(disk),
        cleanup: async () => undefined,
      };
    },
    true,
  ],
  [
    "leveldb",
    () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-raft-store-"));
      return {
        open: () => openLevelRaftStorage(dir),
        raw: () => LevelKvBackend.open(dir),
        cleanup: async () => fs.rmSync(dir, { recursive: true, force: true }),
      };
    },
    false,
  ],
];

describe.each(implementations)("RaftStorage contract (%s)", (_name, makeHarness, crashInProcess) => {
  let harness: Harness;
  let open: RaftStorage[];

  async function openStorage(): Promise<RaftStorage> {
    const storage = await harness.open();
    open.push(storage);
    return storage;
  }
  async function reopen(storage: RaftStorage): Promise<RaftStorage> {
    await storage.close();
    return openStorage();
  }
  async function expectCorrupt(plant: (kv: KvBackend) => Promise<void>, message: RegExp): Promise<void> {
    const kv = await harness.raw();
    await plant(kv);
    await kv.close();
    const err = await harness.open().then(
      (s) => {
        open.push(s);
        return undefined;
      },
      (e: unknown) => e,
    );
    expect(FlotillaError.is(err, "STORAGE_CORRUPT"), `expected STORAGE_CORRUPT, got ${String(err)}`).toBe(true);
    expect((err as Error).message).toMatch(message);
  }

  beforeEach(() => {
    harness = makeHarness();
    open = [];
  });
  afterEach(async () => {
    for (const s of open) await s.close().catch(() => undefined);
    await harness.cleanup();
  });

  it("a fresh store is empty: log [1, 0], no hard state, no snapshot", async () => {
    const s = await openStorage();
    expect(s.log.firstIndex()).toBe(1);
    expect(s.log.lastIndex()).toBe(0);
    expect(s.hardState.current()).toBeUndefined();
    expect(s.snapshot.current()).toBeUndefined();
    expect(s.recovered).toEqual({ hardState: undefined, snapshot: undefined, entries: [] });
    expect(await s.log.entries(1, 1)).toEqual([]);
  });

  it("persisted entries and hard state are read back as a range [lo, hi) and survive reopen", async () => {
    let s = await openStorage();
    await s.persist({ entries: entries(1, 5, 1), hardState: hs(1, 2, 3) });
    expect(plain(await s.log.entries(2, 4))).toEqual(plain([entry(2, 1), entry(3, 1)]));
    expect(s.log.lastIndex()).toBe(5);
    s = await reopen(s);
    expect(s.hardState.current()).toEqual(hs(1, 2, 3));
    expect(plain(s.recovered.entries)).toEqual(plain(entries(1, 5, 1)));
    expect([s.log.firstIndex(), s.log.lastIndex()]).toEqual([1, 5]);
  });

  it("append at index i replaces the entry at i and every entry after it", async () => {
    let s = await openStorage();
    await s.persist({ entries: entries(1, 6, 1), hardState: hs(2, 1, 2) });
    await s.log.append([entry(3, 2, "new3"), entry(4, 2, "new4")]);
    expect(s.log.lastIndex()).toBe(4);
    const expected = [entry(1, 1), entry(2, 1), entry(3, 2, "new3"), entry(4, 2, "new4")];
    expect(plain(await s.log.entries(1, 5))).toEqual(plain(expected));
    s = await reopen(s);
    expect(plain(s.recovered.entries)).toEqual(plain(expected));
  });

  it("appending past lastIndex + 1 (a gap) is refused as a programmer error", async () => {
    const s = await openStorage();
    await s.persist({ entries: entries(1, 2, 1), hardState: hs(1, 0, 0) });
    await expect(s.log.append([entry(4, 1)])).rejects.toThrow(/append at index 4 outside \[1, 3\]/);
    await expect(s.log.append([entry(3, 1), entry(5, 1)])).rejects.toThrow(/non-consecutive/);
    expect(s.log.lastIndex()).toBe(2);
  });

  it("reading outside the stored log is refused", async () => {
    const s = await openStorage();
    await s.persist({ entries: entries(1, 3, 1), hardState: hs(1, 0, 0) });
    await expect(s.log.entries(2, 5)).rejects.toThrow(/outside the stored log/);
  });

  it("a snapshot whose last entry matches our log drops the covered prefix and keeps the suffix", async () => {
    let s = await openStorage();
    await s.persist({ entries: entries(1, 10, 1), hardState: hs(1, 1, 8) });
    await s.persist({ snapshot: snapshot(6, 1), entries: [] });
    expect([s.log.firstIndex(), s.log.lastIndex()]).toEqual([7, 10]);
    s = await reopen(s);
    expect(s.recovered.snapshot?.meta).toEqual({ index: 6, term: 1, voters: [1, 2, 3], observers: [7] });
    expect(Buffer.from(s.recovered.snapshot!.data).toString()).toBe("state@6");
    expect(plain(s.recovered.entries)).toEqual(plain(entries(7, 10, 1)));
    expect([s.log.firstIndex(), s.log.lastIndex()]).toEqual([7, 10]);
  });

  it("a snapshot whose last entry has another term than ours drops the whole log", async () => {
    let s = await openStorage();
    await s.persist({ entries: entries(1, 10, 1), hardState: hs(3, 0, 2) });
    await s.persist({ snapshot: snapshot(6, 3), entries: [], hardState: hs(3, 0, 6) });
    expect([s.log.firstIndex(), s.log.lastIndex()]).toEqual([7, 6]);
    s = await reopen(s);
    expect(s.recovered.entries).toEqual([]);
    expect(s.recovered.snapshot?.meta.index).toBe(6);
  });

  it("a snapshot beyond the log's end, with entries in the same Ready, leaves just those entries", async () => {
    let s = await openStorage();
    await s.persist({ entries: entries(1, 3, 1), hardState: hs(1, 0, 1) });
    await s.persist({ snapshot: snapshot(20, 2), entries: entries(21, 22, 2), hardState: hs(2, 0, 21) });
    expect([s.log.firstIndex(), s.log.lastIndex()]).toEqual([21, 22]);
    s = await reopen(s);
    expect(plain(s.recovered.entries)).toEqual(plain(entries(21, 22, 2)));
    expect(s.recovered.hardState).toEqual(hs(2, 0, 21));
  });

  it("truncatePrefix drops entries up to the index and moves firstIndex past it", async () => {
    let s = await openStorage();
    await s.persist({ entries: entries(1, 5, 1), hardState: hs(1, 0, 5) });
    await s.persist({ snapshot: snapshot(2, 1), entries: [] });
    await s.log.truncatePrefix(3);
    expect([s.log.firstIndex(), s.log.lastIndex()]).toEqual([4, 5]);
    expect(plain(await s.log.entries(4, 6))).toEqual(plain(entries(4, 5, 1)));
    await s.snapshot.save(snapshot(3, 1));
    s = await reopen(s);
    expect(plain(s.recovered.entries)).toEqual(plain(entries(4, 5, 1)));
  });

  it("an older snapshot than the stored one is refused", async () => {
    const s = await openStorage();
    await s.persist({ entries: entries(1, 5, 1), hardState: hs(1, 0, 5) });
    await s.snapshot.save(snapshot(4, 1));
    await expect(s.snapshot.save(snapshot(3, 1))).rejects.toThrow(/older than the stored one/);
  });

  // Defined only where a crash can be simulated in-process (see `implementations`).
  if (crashInProcess) it("state written before a crash (no close) is there after reopening", async () => {
    const s = await openStorage();
    await s.persist({ entries: entries(1, 4, 2), hardState: hs(2, 3, 4) });
    await s.persist({ snapshot: snapshot(2, 2), entries: [entry(5, 2)] });
    const after = await harness.crashReopen!(s);
    open.push(after);
    expect(after.recovered.hardState).toEqual(hs(2, 3, 4));
    expect(after.recovered.snapshot?.meta.index).toBe(2);
    expect(plain(after.recovered.entries)).toEqual(plain([entry(3, 2), entry(4, 2), entry(5, 2)]));
  });

  describe("start-up refuses corrupt state with STORAGE_CORRUPT", () => {
    async function seed(): Promise<void> {
      const s = await openStorage();
      await s.persist({ entries: entries(1, 5, 1), hardState: hs(1, 1, 3) });
      await s.close();
    }

    it("undecodable entry bytes", async () => {
      await seed();
      await expectCorrupt((kv) => kv.write([{ space: "log", key: encodeIndexKey(3), value: new Uint8Array([1, 0, 0]) }], { sync: true }), /log entry at key 3: 3 bytes/);
    });

    it("an unknown entry format version", async () => {
      await seed();
      const bytes = encodeEntry(entry(3, 1));
      bytes[0] = 9;
      await expectCorrupt((kv) => kv.write([{ space: "log", key: encodeIndexKey(3), value: bytes }], { sync: true }), /log entry at key 3: unknown entry format version 9/);
    });

    it("an entry whose index does not match its key", async () => {
      await seed();
      await expectCorrupt((kv) => kv.write([{ space: "log", key: encodeIndexKey(4), value: encodeEntry(entry(9, 1)) }], { sync: true }), /log entry at key 4 says its index is 9/);
    });

    it("a gap in the log", async () => {
      await seed();
      await expectCorrupt((kv) => kv.write([{ space: "log", key: encodeIndexKey(3), value: undefined }], { sync: true }), /gap in the log: entry 2 is followed by entry 4/);
    });

    it("a log that does not start right after the snapshot", async () => {
      await seed();
      await expectCorrupt(
        (kv) => kv.write([{ space: "snapshot", key: CURRENT, value: encodeSnapshot(snapshot(2, 1)) }], { sync: true }),
        /log starts at index 1 but the snapshot ends at index 2/,
      );
    });

    it("a log that starts after 1 with no snapshot", async () => {
      await seed();
      await expectCorrupt((kv) => kv.write([{ space: "log", key: encodeIndexKey(1), value: undefined }], { sync: true }), /log starts at index 2 and no snapshot covers/);
    });

    it("a commit index beyond the last entry", async () => {
      await seed();
      await expectCorrupt((kv) => kv.write([{ space: "hard-state", key: CURRENT, value: encodeHardState(hs(1, 1, 6)) }], { sync: true }), /commit index 6 is beyond the last stored index 5/);
    });

    it("a missing hard state while entries exist", async () => {
      await seed();
      await expectCorrupt((kv) => kv.write([{ space: "hard-state", key: CURRENT, value: undefined }], { sync: true }), /hard state .* is missing although the log holds entries 1..5/);
    });

    it("undecodable hard state bytes", async () => {
      await seed();
      await expectCorrupt((kv) => kv.write([{ space: "hard-state", key: CURRENT, value: new Uint8Array(5) }], { sync: true }), /hardState has 5 bytes/);
    });

    it("a truncated snapshot", async () => {
      await seed();
      const bytes = encodeSnapshot(snapshot(0, 0)).slice(0, 20);
      await expectCorrupt((kv) => kv.write([{ space: "snapshot", key: CURRENT, value: bytes }], { sync: true }), /snapshot: truncated/);
    });

    it("a log term above the hard state's current term", async () => {
      await seed();
      await expectCorrupt((kv) => kv.write([{ space: "log", key: encodeIndexKey(5), value: encodeEntry(entry(5, 4)) }], { sync: true }), /log holds term 4 but the hard state's current term is 1/);
    });
  });
});

describe("LevelDB Raft storage across a real crash (SIGKILL)", () => {
  afterAll(() => killAllProcesses());

  it("every write the child reported durable is there after kill -9, and the state checks out", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-raft-crash-"));
    try {
      for (let round = 0; round < 2; round++) {
        const child = await startTsProcess({
          name: `storage-crash-child-${round}`,
          entry: path.join(import.meta.dirname, "storage-crash-child.ts"),
          args: [dir],
          readyLine: (line) => line.startsWith("persisted ") && Number(line.split(" ")[1]) >= 30 * (round + 1),
        });
        await child.kill("SIGKILL");
        const reported = Math.max(...child.stdoutLines().map((l) => Number(l.split(" ")[1])).filter(Number.isFinite));
        const s = await openLevelRaftStorage(dir);
        try {
          // Durable means at least what was reported (more may have landed unreported).
          expect(reported).toBeGreaterThanOrEqual(30 * (round + 1));
          expect(s.log.lastIndex()).toBeGreaterThanOrEqual(reported);
          expect(s.hardState.current()?.commit).toBe(s.log.lastIndex());
          const all = await s.log.entries(1, s.log.lastIndex() + 1);
          expect(all.map((e) => Buffer.from(e.data).toString())).toEqual(all.map((e) => `entry-${e.index}`));
        } finally {
          await s.close();
        }
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("RaftStorage fsync policy", () => {
  it("fsyncs entries, snapshots, term and vote changes, but not a change of the commit index alone", async () => {
    const syncs: boolean[] = [];
    const inner = new MemoryKvBackend(new MemoryDisk());
    const recording: KvBackend = {
      get: (space, key) => inner.get(space, key),
      scan: (space, range) => inner.scan(space, range),
      write: (ops, options) => {
        syncs.push(options.sync);
        return inner.write(ops);
      },
      close: () => inner.close(),
    };
    const s = await KvRaftStorage.open(recording);
    await s.persist({ entries: entries(1, 3, 1), hardState: hs(1, 1, 0) }); // entries: sync
    await s.persist({ entries: [], hardState: hs(1, 1, 2) }); // commit only: no sync
    await s.persist({ entries: [], hardState: hs(2, 0, 2) }); // term: sync
    await s.persist({ entries: [], hardState: hs(2, 3, 2) }); // vote: sync
    await s.persist({ entries: [entry(4, 2)], hardState: hs(2, 3, 3) }); // entries: sync
    await s.persist({ snapshot: snapshot(2, 1), entries: [] }); // snapshot: sync
    expect(syncs).toEqual([true, false, true, true, true, true]);
    await s.close();
  });
});

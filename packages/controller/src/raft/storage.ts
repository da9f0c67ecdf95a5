/**
 * Durable Raft state: the log, the hard state (term, vote, commit) and the latest
 * snapshot. Three small interfaces with written contracts, one implementation
 * (`KvRaftStorage`) over a key-value backend that is either LevelDB (./storage-level.ts)
 * or memory (./storage-memory.ts). The byte layouts are in ./codec.ts.
 *
 * Key spaces, one sublevel each:
 *   "log"        8-byte big-endian index -> entry
 *   "hard-state" "current"              -> hard state
 *   "snapshot"   "current"              -> snapshot (meta and state-machine bytes)
 *
 * Durability: every write method resolves only after the backend has written its batch
 * atomically and fsynced it (LevelDB `sync: true`), with one exception: a write whose
 * only change is a hard state differing from the stored one in `commit` alone is not
 * fsynced (etcd's MustSync rule). Raft does not need the commit index to survive a crash
 * (a restarted node learns it again from the leader), and LevelDB's log is sequential,
 * so the next synced write makes it durable too; meanwhile a crash may bring back an
 * older commit index, never a newer one. A crash at any moment leaves either all of a
 * write or none of it. Writes must not overlap: the caller awaits one before starting
 * the next (the Raft driver persists one Ready at a time).
 */
import { assert, FlotillaError } from "@flotilla/common";
import type { Entry, HardState, Snapshot } from "@flotilla/raft";
import {
  decodeEntry,
  decodeHardState,
  decodeIndexKey,
  decodeSnapshot,
  encodeEntry,
  encodeHardState,
  encodeIndexKey,
  encodeSnapshot,
} from "./codec.js";

/** The Raft log on disk. Index 0 is never stored; the first entry of a fresh log is 1. */
export interface RaftLogStore {
  /**
   * Index of the first stored entry. When the log is empty this is one past the last
   * index it covered (snapshot index + 1, or 1 for a fresh log), so that
   * `lastIndex() === firstIndex() - 1` means "empty".
   */
  firstIndex(): number;
  /** Index of the last stored entry, or `firstIndex() - 1` when the log is empty. */
  lastIndex(): number;
  /**
   * Entries with index in [lo, hi), in order. Requires firstIndex() <= lo <= hi <=
   * lastIndex() + 1 (an assert: asking outside the log is a programmer error).
   */
  entries(lo: number, hi: number): Promise<Entry[]>;
  /**
   * Stores `entries` (consecutive indexes) starting at i = entries[0].index, replacing
   * the stored entry at i and every stored entry after it. Requires firstIndex() <= i <=
   * lastIndex() + 1. Durable when it resolves.
   */
  append(entries: readonly Entry[]): Promise<void>;
  /**
   * Deletes every entry with index <= `index` (they are covered by a snapshot). The log
   * then starts at index + 1 even if it held fewer entries. Durable when it resolves.
   */
  truncatePrefix(index: number): Promise<void>;
}

export interface HardStateStore {
  /** The last saved hard state, or undefined if none was ever saved. */
  current(): HardState | undefined;
  /** Durable when it resolves. */
  save(hardState: HardState): Promise<void>;
}

export interface SnapshotStore {
  /** The last saved snapshot, or undefined if none was ever saved. */
  current(): Snapshot | undefined;
  /**
   * Replaces the snapshot and drops the log entries it covers (index <= meta.index).
   * If the stored log does not hold meta.index with meta.term (the snapshot came from a
   * leader whose log differs from ours), the whole log is dropped: our suffix cannot be
   * trusted to follow the snapshot. Durable when it resolves.
   */
  save(snapshot: Snapshot): Promise<void>;
}

/** What one Raft Ready asks to persist (types.ts duties 2 and 3). */
export interface PersistRequest {
  readonly snapshot?: Snapshot | undefined;
  readonly entries: readonly Entry[];
  readonly hardState?: HardState | undefined;
}

/** The durable state found at open, already checked for consistency. */
export interface RecoveredState {
  /** Undefined only for a node that never persisted anything. */
  readonly hardState: HardState | undefined;
  readonly snapshot: Snapshot | undefined;
  /** Entries after the snapshot, consecutive, in order. */
  readonly entries: readonly Entry[];
}

export interface RaftStorage {
  readonly log: RaftLogStore;
  readonly hardState: HardStateStore;
  readonly snapshot: SnapshotStore;
  /** What was on disk at open. */
  readonly recovered: RecoveredState;
  /**
   * Persists a Ready in ONE atomic, fsynced batch: the snapshot (with the log truncation
   * SnapshotStore.save describes), then the entries (as RaftLogStore.append), then the
   * hard state. Resolves once durable; only then may the Ready's messages be sent.
   * (A hard state that changes only `commit`, with nothing else, is not fsynced: see the
   * file comment.)
   */
  persist(request: PersistRequest): Promise<void>;
  /** Releases the backend. Nothing is lost by not calling it (every write is synced). */
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------
// Key-value backend

export type KeySpace = "log" | "hard-state" | "snapshot";
export const KEY_SPACES: readonly KeySpace[] = ["log", "hard-state", "snapshot"];

/** A put when `value` is set, a delete when it is undefined. */
export interface KvOp {
  readonly space: KeySpace;
  readonly key: Uint8Array;
  readonly value: Uint8Array | undefined;
}

/** The little the Raft stores need from a key-value store. */
export interface KvBackend {
  get(space: KeySpace, key: Uint8Array): Promise<Uint8Array | undefined>;
  /** Pairs with gte <= key < lt (bounds optional), in key byte order. */
  scan(space: KeySpace, range?: { gte?: Uint8Array; lt?: Uint8Array }): Promise<Array<[Uint8Array, Uint8Array]>>;
  /** Applies all ops atomically; with sync, resolves only after fsync. */
  write(ops: readonly KvOp[], options: { sync: boolean }): Promise<void>;
  close(): Promise<void>;
}

const CURRENT_KEY = new TextEncoder().encode("current");

function corrupt(what: string): FlotillaError {
  return new FlotillaError("STORAGE_CORRUPT", what);
}

/**
 * Reads and checks everything at open. Refuses to start with amnesia: any inconsistency
 * is STORAGE_CORRUPT naming what is wrong.
 */
async function recover(kv: KvBackend): Promise<RecoveredState> {
  const hsBytes = await kv.get("hard-state", CURRENT_KEY);
  const hardState = hsBytes === undefined ? undefined : decodeHardState(hsBytes);
  const snapBytes = await kv.get("snapshot", CURRENT_KEY);
  const snapshot = snapBytes === undefined ? undefined : decodeSnapshot(snapBytes);

  const entries: Entry[] = [];
  for (const [key, value] of await kv.scan("log")) {
    const keyIndex = decodeIndexKey(key);
    const entry = decodeEntry(value, `log entry at key ${keyIndex}`);
    if (entry.index !== keyIndex) throw corrupt(`log entry at key ${keyIndex} says its index is ${entry.index}`);
    const prev = entries[entries.length - 1];
    if (prev !== undefined) {
      if (entry.index !== prev.index + 1) throw corrupt(`gap in the log: entry ${prev.index} is followed by entry ${entry.index}`);
      if (entry.term < prev.term) throw corrupt(`log terms go backwards: entry ${prev.index} has term ${prev.term}, entry ${entry.index} has term ${entry.term}`);
    }
    entries.push(entry);
  }

  const snapIndex = snapshot?.meta.index ?? 0;
  const snapTerm = snapshot?.meta.term ?? 0;
  const first = entries[0];
  const last = entries[entries.length - 1];
  if (first !== undefined) {
    if (first.index !== snapIndex + 1) {
      throw corrupt(
        snapshot
          ? `log starts at index ${first.index} but the snapshot ends at index ${snapIndex} (expected the log to start at ${snapIndex + 1})`
          : `log starts at index ${first.index} and no snapshot covers indexes 1..${first.index - 1}`,
      );
    }
    if (first.term < snapTerm) throw corrupt(`entry ${first.index} has term ${first.term}, below the snapshot's term ${snapTerm}`);
  }
  if (hardState === undefined && (entries.length > 0 || snapshot !== undefined)) {
    throw corrupt(`hard state (term, vote, commit) is missing although ${entries.length > 0 ? `the log holds entries ${first?.index}..${last?.index}` : `a snapshot at index ${snapIndex} exists`}`);
  }
  if (hardState !== undefined) {
    const lastIndex = last?.index ?? snapIndex;
    if (hardState.commit > lastIndex) throw corrupt(`hard state commit index ${hardState.commit} is beyond the last stored index ${lastIndex}`);
    const lastTerm = last?.term ?? snapTerm;
    if (lastTerm > hardState.term) throw corrupt(`the log holds term ${lastTerm} but the hard state's current term is ${hardState.term}`);
  }
  return { hardState, snapshot, entries };
}

/** Cached view of what is on disk; plans change a draft copy, kept only once written. */
interface CachedState {
  first: number;
  last: number;
  hardState: HardState | undefined;
  snapshot: Snapshot | undefined;
}

/** The one RaftStorage implementation, over any KvBackend. Open with `KvRaftStorage.open`. */
export class KvRaftStorage implements RaftStorage {
  readonly log: RaftLogStore;
  readonly hardState: HardStateStore;
  readonly snapshot: SnapshotStore;

  private state: CachedState;
  private writing = false;
  private closed = false;

  private constructor(
    private readonly kv: KvBackend,
    readonly recovered: RecoveredState,
  ) {
    const snapIndex = recovered.snapshot?.meta.index ?? 0;
    this.state = {
      first: snapIndex + 1,
      last: recovered.entries[recovered.entries.length - 1]?.index ?? snapIndex,
      hardState: recovered.hardState,
      snapshot: recovered.snapshot,
    };
    this.log = {
      firstIndex: () => this.state.first,
      lastIndex: () => this.state.last,
      entries: (lo, hi) => this.readEntries(lo, hi),
      append: (entries) => this.persist({ entries }),
      truncatePrefix: (index) => this.write("fsync", async (ops, draft) => this.planTruncatePrefix(ops, draft, index, false)),
    };
    this.hardState = {
      current: () => this.state.hardState,
      save: (hardState) => this.persist({ entries: [], hardState }),
    };
    this.snapshot = {
      current: () => this.state.snapshot,
      save: (snapshot) => this.persist({ snapshot, entries: [] }),
    };
  }

  /** Reads and checks the stored state; throws STORAGE_CORRUPT if it is inconsistent. */
  static async open(kv: KvBackend): Promise<KvRaftStorage> {
    let recovered: RecoveredState;
    try {
      recovered = await recover(kv);
    } catch (err) {
      await kv.close().catch(() => undefined);
      throw err;
    }
    return new KvRaftStorage(kv, recovered);
  }

  async persist(request: PersistRequest): Promise<void> {
    const stored = this.state.hardState;
    const commitOnly =
      request.snapshot === undefined &&
      request.entries.length === 0 &&
      request.hardState !== undefined &&
      stored !== undefined &&
      request.hardState.term === stored.term &&
      request.hardState.vote === stored.vote;
    await this.write(commitOnly ? "no-fsync" : "fsync", async (ops, draft) => {
      if (request.snapshot) await this.planSnapshot(ops, draft, request.snapshot);
      if (request.entries.length > 0) this.planAppend(ops, draft, request.entries);
      if (request.hardState) {
        ops.push({ space: "hard-state", key: CURRENT_KEY, value: encodeHardState(request.hardState) });
        draft.hardState = request.hardState;
      }
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.kv.close();
  }

  private async readEntries(lo: number, hi: number): Promise<Entry[]> {
    const { first, last } = this.state;
    assert(first <= lo && lo <= hi && hi <= last + 1, () => `entries [${lo}, ${hi}) outside the stored log [${first}, ${last + 1})`);
    if (lo === hi) return [];
    const pairs = await this.kv.scan("log", { gte: encodeIndexKey(lo), lt: encodeIndexKey(hi) });
    return pairs.map(([key, value]) => decodeEntry(value, `log entry at key ${decodeIndexKey(key)}`));
  }

  /**
   * `plan` pushes ops and edits a draft of the cached state; the ops are written in one
   * synced batch, and only then does the draft become the cached state.
   */
  private async write(durability: "fsync" | "no-fsync", plan: (ops: KvOp[], draft: CachedState) => Promise<void>): Promise<void> {
    assert(!this.closed, "raft storage used after close");
    assert(!this.writing, "raft storage writes must not overlap");
    this.writing = true;
    try {
      const ops: KvOp[] = [];
      const draft = { ...this.state };
      await plan(ops, draft);
      if (ops.length > 0) await this.kv.write(ops, { sync: durability === "fsync" });
      this.state = draft;
    } finally {
      this.writing = false;
    }
  }

  private deleteRange(ops: KvOp[], lo: number, hi: number): void {
    for (let i = lo; i < hi; i++) ops.push({ space: "log", key: encodeIndexKey(i), value: undefined });
  }

  private planTruncatePrefix(ops: KvOp[], draft: CachedState, index: number, dropAll: boolean): void {
    const deleteTo = dropAll ? draft.last : Math.min(index, draft.last);
    this.deleteRange(ops, draft.first, deleteTo + 1);
    if (dropAll || index >= draft.last) draft.last = index;
    draft.first = Math.max(draft.first, index + 1);
  }

  private async planSnapshot(ops: KvOp[], draft: CachedState, snapshot: Snapshot): Promise<void> {
    const { index, term } = snapshot.meta;
    const prevIndex = draft.snapshot?.meta.index ?? 0;
    assert(index >= prevIndex, () => `snapshot at index ${index} is older than the stored one at ${prevIndex}`);
    // Keep our suffix only if our log holds the snapshot's last entry with the same term
    // (Log Matching, Raft §5.3: then every entry up to it is the same too).
    let keepSuffix = false;
    if (index < draft.first) keepSuffix = term === (draft.snapshot?.meta.term ?? 0);
    else if (index <= draft.last) {
      const bytes = await this.kv.get("log", encodeIndexKey(index));
      assert(bytes !== undefined, () => `log entry ${index} missing from [${draft.first}, ${draft.last}]`);
      keepSuffix = decodeEntry(bytes, `log entry at key ${index}`).term === term;
    }
    this.planTruncatePrefix(ops, draft, index, !keepSuffix);
    ops.push({ space: "snapshot", key: CURRENT_KEY, value: encodeSnapshot(snapshot) });
    draft.snapshot = snapshot;
  }

  private planAppend(ops: KvOp[], draft: CachedState, entries: readonly Entry[]): void {
    const start = entries[0]!.index;
    assert(draft.first <= start && start <= draft.last + 1, () => `append at index ${start} outside [${draft.first}, ${draft.last + 1}]`);
    entries.forEach((entry, i) => {
      assert(entry.index === start + i, () => `append of non-consecutive entries: ${entry.index} at position ${i} after ${start}`);
      ops.push({ space: "log", key: encodeIndexKey(entry.index), value: encodeEntry(entry) });
    });
    const end = start + entries.length;
    // Replace the old suffix: entries past the new end belong to a log we diverged from.
    this.deleteRange(ops, end, draft.last + 1);
    draft.last = end - 1;
  }
}

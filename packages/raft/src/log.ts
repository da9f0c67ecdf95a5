/**
 * The in-memory Raft log of one node: a snapshot (the compacted prefix) followed by entries.
 *
 *   index:   1 ............ snapshotIndex | snapshotIndex+1 ........... lastIndex
 *            compacted (only its last     | entries[], entries[k].index
 *            index and term are known)    |   === snapshotIndex + 1 + k
 *                                         |  stable ...... | unstableFrom ... lastIndex
 *                                                             (not yet handed to the driver)
 *
 * "Stable" entries were handed to the driver in a Ready (which persists them before doing
 * anything else with that Ready); entries from `unstableFrom` on are new since the last
 * Ready. A conflicting append truncates the log and pulls `unstableFrom` back, so the next
 * Ready re-sends the replaced suffix and the driver overwrites it (types.ts, duty 3).
 *
 * `committed` is the highest index known committed (Raft §5.3); `applied` the highest index
 * handed to the driver in committedEntries and advanced. applied <= committed <= lastIndex
 * always holds, and nothing at or below `committed` is ever truncated (§5.4 Leader
 * Completeness makes such a truncation a bug, so it is an assert).
 */
import { assert } from "@flotilla/common";
import type { Entry, Snapshot } from "./types.js";

export class RaftLog {
  /** The latest snapshot, kept to send to followers that fell behind the compaction point. */
  private snapshot: Snapshot | undefined;
  private snapshotIndex: number;
  private snapshotTerm: number;
  private entries: Entry[];
  /** First index not yet handed to the driver in a Ready. */
  private unstableFrom: number;
  /** A snapshot received from the leader and installed here, not yet handed to the driver. */
  private pendingSnapshot: Snapshot | undefined;
  committed: number;
  applied: number;

  constructor(init: { snapshot?: Snapshot | undefined; entries: readonly Entry[]; commit: number; applied?: number | undefined }) {
    this.snapshot = init.snapshot;
    this.snapshotIndex = init.snapshot?.meta.index ?? 0;
    this.snapshotTerm = init.snapshot?.meta.term ?? 0;
    this.entries = [...init.entries];
    this.entries.forEach((e, k) => {
      assert(e.index === this.snapshotIndex + 1 + k, () => `recovered entry ${k} has index ${e.index}, expected ${this.snapshotIndex + 1 + k}`);
      assert(e.term >= (k === 0 ? this.snapshotTerm : this.entries[k - 1]!.term), () => `recovered entry ${e.index} has a lower term than its predecessor`);
    });
    this.unstableFrom = this.lastIndex() + 1;
    this.pendingSnapshot = undefined;
    // A snapshot is always of committed state, so the commit index is at least its index.
    this.committed = Math.max(init.commit, this.snapshotIndex);
    assert(this.committed <= this.lastIndex(), () => `recovered commit ${this.committed} is beyond the last log index ${this.lastIndex()}`);
    this.applied = init.applied ?? this.snapshotIndex;
    assert(this.applied >= this.snapshotIndex && this.applied <= this.committed, () => `recovered applied ${this.applied} is outside [${this.snapshotIndex}, ${this.committed}]`);
  }

  /** Index of the first entry held in memory (snapshotIndex + 1, even when none is held). */
  firstIndex(): number {
    return this.snapshotIndex + 1;
  }

  lastIndex(): number {
    return this.snapshotIndex + this.entries.length;
  }

  lastTerm(): number {
    return this.entries.length === 0 ? this.snapshotTerm : this.entries[this.entries.length - 1]!.term;
  }

  /** Term of the entry at `index`; undefined when it is compacted away or beyond the end. Index 0 has term 0. */
  term(index: number): number | undefined {
    if (index === this.snapshotIndex) return this.snapshotTerm;
    if (index < this.snapshotIndex || index > this.lastIndex()) return undefined;
    return this.entries[index - this.snapshotIndex - 1]!.term;
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** Entries with index in [lo, hi). Requires firstIndex() <= lo <= hi <= lastIndex() + 1. */
  slice(lo: number, hi: number): Entry[] {
    assert(lo >= this.firstIndex() && lo <= hi && hi <= this.lastIndex() + 1, () => `slice [${lo}, ${hi}) outside the log [${this.firstIndex()}, ${this.lastIndex() + 1})`);
    return this.entries.slice(lo - this.snapshotIndex - 1, hi - this.snapshotIndex - 1);
  }

  /**
   * Raft §5.4.1: a candidate's log is at least as up to date as ours when its last term is
   * higher, or the last terms are equal and its log is at least as long.
   */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /** Appends entries that directly follow the last index (leader's own proposals). */
  append(entries: readonly Entry[]): void {
    for (const e of entries) {
      assert(e.index === this.lastIndex() + 1, () => `append of index ${e.index} after last index ${this.lastIndex()}`);
      assert(e.term >= this.lastTerm(), () => `append of term ${e.term} after term ${this.lastTerm()}`);
      this.entries.push(e);
    }
  }

  /**
   * Raft §5.3, AppendEntries receiver rules 2-4. If our entry at `prevIndex` has
   * `prevTerm`, appends `entries`, deleting an existing entry and all that follow only
   * when it conflicts (same index, different term): a stale or duplicated Append must
   * never truncate entries that match. Returns the last index known to match the leader
   * (prevIndex + entries.length) and the index from which existing entries were replaced
   * (if any), or undefined when prevIndex/prevTerm do not match.
   */
  maybeAppend(prevIndex: number, prevTerm: number, entries: readonly Entry[]): { lastNew: number; truncatedFrom: number | undefined } | undefined {
    if (!this.matchTerm(prevIndex, prevTerm)) return undefined;
    const lastNew = prevIndex + entries.length;
    let k = 0;
    for (; k < entries.length; k++) {
      const e = entries[k]!;
      assert(e.index === prevIndex + 1 + k, () => `Append entries are not consecutive after ${prevIndex}`);
      // Entries at or below the snapshot index are committed and therefore match.
      if (e.index <= this.snapshotIndex) continue;
      const ours = this.term(e.index);
      if (ours === undefined || ours !== e.term) break;
    }
    let truncatedFrom: number | undefined;
    if (k < entries.length) {
      const conflict = entries[k]!.index;
      if (conflict <= this.lastIndex()) {
        assert(conflict > this.committed, () => `entry ${conflict} conflicts with the leader but is committed (commit ${this.committed})`);
        this.truncateFrom(conflict);
        truncatedFrom = conflict;
      }
      this.append(entries.slice(k));
    }
    return { lastNew, truncatedFrom };
  }

  private truncateFrom(index: number): void {
    assert(index > this.snapshotIndex, () => `truncate at ${index} inside the snapshot ending at ${this.snapshotIndex}`);
    this.entries.length = index - this.snapshotIndex - 1;
    if (this.unstableFrom > index) this.unstableFrom = index;
  }

  /**
   * Fast back-off (etcd-style, after Raft §5.3's optimisation note): the largest index
   * <= `index` whose term is <= `term`. Every entry above it has a higher term, so it
   * cannot equal the other side's entry at that index, whose term is <= `term`. Stops at
   * the snapshot index, whose term is the oldest one known.
   */
  findConflictByTerm(index: number, term: number): number {
    let i = Math.min(index, this.lastIndex());
    while (i > this.snapshotIndex && this.entries[i - this.snapshotIndex - 1]!.term > term) i--;
    return i;
  }

  commitTo(index: number): boolean {
    if (index <= this.committed) return false;
    assert(index <= this.lastIndex(), () => `commit ${index} is beyond the last index ${this.lastIndex()}: was the log lost?`);
    this.committed = index;
    return true;
  }

  // ---- snapshots -------------------------------------------------------------------

  currentSnapshot(): Snapshot | undefined {
    return this.snapshot;
  }

  snapshotLastIndex(): number {
    return this.snapshotIndex;
  }

  /** Drops entries up to `snapshot.meta.index`, which must be applied and held in the log. */
  compact(snapshot: Snapshot): void {
    const index = snapshot.meta.index;
    assert(index <= this.applied, () => `compact to ${index} beyond the applied index ${this.applied}`);
    assert(index > this.snapshotIndex, () => `compact to ${index} at or below the snapshot index ${this.snapshotIndex}`);
    assert(this.term(index) === snapshot.meta.term, "compacted snapshot term differs from the log");
    this.entries = this.entries.slice(index - this.snapshotIndex);
    this.snapshot = snapshot;
    this.snapshotIndex = index;
    this.snapshotTerm = snapshot.meta.term;
  }

  /**
   * Raft §7 InstallSnapshot: replaces the whole log by a leader's snapshot whose last
   * entry we do not hold. Our suffix cannot be trusted to follow it, so it goes too.
   */
  restore(snapshot: Snapshot): void {
    assert(snapshot.meta.index > this.committed, () => `restore of snapshot ${snapshot.meta.index} at or below commit ${this.committed}`);
    this.snapshot = snapshot;
    this.snapshotIndex = snapshot.meta.index;
    this.snapshotTerm = snapshot.meta.term;
    this.entries = [];
    this.unstableFrom = this.snapshotIndex + 1;
    this.pendingSnapshot = snapshot;
    this.committed = snapshot.meta.index;
  }

  // ---- handing work to the driver --------------------------------------------------

  hasUnstable(): boolean {
    return this.pendingSnapshot !== undefined || this.unstableFrom <= this.lastIndex();
  }

  hasCommittedToApply(): boolean {
    return this.applied < this.committed && this.pendingSnapshot === undefined;
  }

  /** Takes the unstable snapshot and entries: from now on they are the driver's to persist. */
  takeUnstable(): { snapshot: Snapshot | undefined; entries: Entry[] } {
    const snapshot = this.pendingSnapshot;
    const entries = this.unstableFrom <= this.lastIndex() ? this.slice(this.unstableFrom, this.lastIndex() + 1) : [];
    this.pendingSnapshot = undefined;
    this.unstableFrom = this.lastIndex() + 1;
    return { snapshot, entries };
  }

  /**
   * Committed entries after `from` (the applied index, or the snapshot being handed out in
   * the same Ready), at most `max`.
   */
  committedAfter(from: number, max: number): Entry[] {
    const lo = from + 1;
    const hi = Math.min(this.committed, from + max) + 1;
    if (lo >= hi) return [];
    return this.slice(lo, hi);
  }

  appliedTo(index: number): void {
    assert(index <= this.committed && index >= this.applied, () => `applied ${index} outside [${this.applied}, ${this.committed}]`);
    this.applied = index;
  }
}

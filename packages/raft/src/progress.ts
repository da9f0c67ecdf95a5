/**
 * The leader's view of one follower or observer: how much of the log it is known to hold
 * (`match`), what to send next (`next`), and how to send it.
 *
 * States (after etcd-io/raft's tracker, which refines Raft §5.3's nextIndex):
 * - "probe": we do not know where the follower's log diverges. Send one Append at a time
 *   and wait for its answer (or a heartbeat answer) before the next; a rejection moves
 *   `next` back using the follower's hint.
 * - "replicate": the follower accepted an Append, so stream: advance `next` optimistically
 *   after each send and keep at most `maxInflightAppends` unacknowledged Appends.
 * - "snapshot": `next` is compacted away; an InstallSnapshot is in flight. Nothing else is
 *   sent until it is answered or `snapshotTimeoutTicks` pass (the message may be lost).
 */
import { assert } from "@flotilla/common";

export type ProgressState = "probe" | "replicate" | "snapshot";

/**
 * A bounded FIFO of the last index of each unacknowledged Append sent in replicate state.
 * Acknowledgements are cumulative, so freeing "everything up to index i" is enough.
 */
export class Inflights {
  private readonly lastIndexes: number[] = [];
  constructor(readonly capacity: number) {
    assert(capacity >= 1, "inflight capacity must be at least 1");
  }
  get count(): number {
    return this.lastIndexes.length;
  }
  full(): boolean {
    return this.lastIndexes.length >= this.capacity;
  }
  add(lastIndex: number): void {
    assert(!this.full(), "inflights overflow");
    const prev = this.lastIndexes[this.lastIndexes.length - 1];
    assert(prev === undefined || lastIndex > prev, () => `inflight ${lastIndex} is not after ${prev}`);
    this.lastIndexes.push(lastIndex);
  }
  /** Frees every Append whose last index is <= `index` (they are acknowledged). */
  freeTo(index: number): void {
    let k = 0;
    while (k < this.lastIndexes.length && this.lastIndexes[k]! <= index) k++;
    if (k > 0) this.lastIndexes.splice(0, k);
  }
  /**
   * Frees the oldest one. Used when a heartbeat answer shows the follower is alive while
   * the window is full: an Append may have been lost, and sending again lets the follower
   * reject the gap so we fall back to probing.
   */
  freeFirst(): void {
    this.lastIndexes.shift();
  }
  reset(): void {
    this.lastIndexes.length = 0;
  }
}

export class Progress {
  /** Highest index known to be replicated on the peer. */
  match = 0;
  /** Next index to send. Invariant: match < next. */
  next: number;
  state: ProgressState = "probe";
  /** Probe state: an Append was sent and not yet answered. */
  probeSent = false;
  /** Snapshot state: index of the snapshot being sent, and ticks spent waiting for it. */
  pendingSnapshot = 0;
  snapshotElapsedTicks = 0;
  /** Check-quorum (thesis §6.2): heard from this peer during the current election timeout. */
  recentActive = false;
  readonly inflights: Inflights;

  constructor(
    readonly id: number,
    readonly isVoter: boolean,
    next: number,
    maxInflightAppends: number,
  ) {
    this.next = next;
    this.inflights = new Inflights(maxInflightAppends);
  }

  private resetState(state: ProgressState): void {
    this.state = state;
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.snapshotElapsedTicks = 0;
    this.inflights.reset();
  }

  becomeProbe(): void {
    // After a snapshot, the follower holds at least the snapshot if it was installed;
    // probing right after it is the cheapest guess (a rejection brings us back).
    const next = this.state === "snapshot" ? Math.max(this.match + 1, this.pendingSnapshot + 1) : this.match + 1;
    this.resetState("probe");
    this.next = next;
  }

  becomeReplicate(): void {
    this.resetState("replicate");
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState("snapshot");
    this.pendingSnapshot = snapshotIndex;
  }

  /** True when nothing more may be sent now. */
  isPaused(): boolean {
    switch (this.state) {
      case "probe":
        return this.probeSent;
      case "replicate":
        return this.inflights.full();
      case "snapshot":
        return true;
    }
  }

  /** An acknowledgement that the peer holds everything up to `index`. Returns true when match moved. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (index > this.match) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  /** Bookkeeping after sending an Append whose entries end at `lastIndex` (if any). */
  sentAppend(entryCount: number, lastIndex: number): void {
    switch (this.state) {
      case "replicate":
        if (entryCount > 0) {
          this.next = lastIndex + 1;
          this.inflights.add(lastIndex);
        }
        break;
      case "probe":
        this.probeSent = true;
        break;
      case "snapshot":
        assert(false, `append sent to peer ${this.id} in snapshot state`);
    }
  }

  /**
   * A rejection of the Append whose previous index was `rejected`. `probeHint` is the
   * highest index that may still match (from the follower's fast back-off hint). Returns
   * false when the rejection is stale (it answers an older Append) and changes nothing.
   */
  maybeDecrTo(rejected: number, probeHint: number): boolean {
    if (this.state === "replicate") {
      // Everything at or below match is known to match: an older Append's rejection.
      if (rejected <= this.match) return false;
      // Fall back to probing just after what we know matches.
      this.next = this.match + 1;
      return true;
    }
    // Probe (or snapshot): only the answer to the Append we sent last is meaningful.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, probeHint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }
}

/**
 * The contract between the pure Raft core (./core.ts) and whoever drives it (the
 * simulator in ./sim, the LevelDB + gRPC driver in @flotilla/controller).
 *
 * The core does no I/O: no clock, timers, sockets, disk or Math.random. Time is counted
 * in ticks; randomness comes from the `random` handed in at construction.
 *
 * The driver's duties, in this order, every time `hasReady()` is true
 * (after etcd-io/raft doc.go):
 *   1. `const rd = node.ready()`.
 *   2. If `rd.snapshot` is set, it came from the leader: persist it, drop the stored
 *      log (the core only installs a snapshot whose last entry it does not hold, so no
 *      stored entry can be trusted to follow it; entries it covers are gone anyway) and
 *      restore the state machine from `rd.snapshot.data`.
 *   3. Persist `rd.entries` (an entry at index i replaces any stored entry at i and
 *      everything after it), then `rd.hardState` if set. fsync.
 *   4. Only then send `rd.messages` (a vote or append ack must never precede the state
 *      it promises).
 *   5. Apply `rd.committedEntries` to the state machine, in order. They are all already
 *      durable on this node.
 *   6. Answer `rd.readStates` once the state machine has applied up to each one's index.
 *   7. `node.advance(rd)`.
 * Between ready() and advance() the driver may still call tick/step/propose; the next
 * ready() returns only what is new. One Ready is outstanding at a time: `hasReady()` is
 * false from ready() until advance(), and ready() asserts that the previous Ready was
 * advanced.
 *
 * Local compaction is not a Ready: `compact(index, data)` is called by the driver, which
 * then saves the returned snapshot itself and drops its stored entries <= index.
 */

export type NodeId = number;
/** Node id 0 means "nobody" (no vote cast, no known leader). */
export const NONE: NodeId = 0;

export type EntryType = "normal" | "noop";

export interface Entry {
  readonly term: number;
  readonly index: number;
  /** "noop" is the entry a new leader appends to commit its term (Raft §8). */
  readonly type: EntryType;
  readonly data: Uint8Array;
}

/** What must survive a crash besides the log. */
export interface HardState {
  readonly term: number;
  readonly vote: NodeId;
  readonly commit: number;
}

export interface SnapshotMeta {
  /** Last log index the snapshot covers, and its term. */
  readonly index: number;
  readonly term: number;
  readonly voters: readonly NodeId[];
  readonly observers: readonly NodeId[];
}

export interface Snapshot {
  readonly meta: SnapshotMeta;
  /** The state machine's serialized state at meta.index. Opaque to Raft. */
  readonly data: Uint8Array;
}

export type MessageType =
  | "PreVote"
  | "PreVoteResp"
  | "Vote"
  | "VoteResp"
  | "Append"
  | "AppendResp"
  | "Heartbeat"
  | "HeartbeatResp"
  | "InstallSnapshot"
  | "InstallSnapshotResp"
  | "TimeoutNow";

/**
 * One message. Fields not used by a type are 0 / empty. For PreVote the `term` is the
 * term the candidate would campaign in, and the receiver does not change its own term.
 */
export interface Message {
  readonly type: MessageType;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
  /**
   * Append: index and term of the entry before `entries`. Vote/PreVote: candidate's last
   * log index and term. AppendResp: the `logIndex` of the Append it answers (lets the
   * leader ignore stale rejections).
   */
  readonly logIndex: number;
  readonly logTerm: number;
  readonly entries: readonly Entry[];
  /** Append/Heartbeat: leader's commit index. */
  readonly commit: number;
  /** Resp types: true when the request was rejected. */
  readonly reject: boolean;
  /**
   * AppendResp: on success the last index now matched; on reject a hint for fast
   * back-off: the follower's last index, or the largest index of the follower's log at
   * or below the rejected `logIndex` whose term is <= the rejected `logTerm` (every
   * entry above it cannot match), with `hintTerm` the follower's term there.
   * InstallSnapshotResp: the follower's commit index after handling the snapshot.
   */
  readonly hintIndex: number;
  readonly hintTerm: number;
  readonly snapshot?: Snapshot;
  /**
   * Heartbeat/HeartbeatResp: the read-index context being confirmed, if any.
   * Vote: "transfer" when the campaign follows a TimeoutNow (leadership transfer); such a
   * vote is not ignored by followers that heard from a leader recently (thesis §3.10).
   */
  readonly context?: string;
}

export interface ReadState {
  /** The caller's request context from `readIndex(context)`. */
  readonly context: string;
  /** Serve the read once the state machine has applied this index. */
  readonly index: number;
}

export type Role = "follower" | "pre-candidate" | "candidate" | "leader" | "observer";

export interface SoftState {
  readonly leader: NodeId;
  readonly role: Role;
  readonly term: number;
}

export interface Ready {
  readonly softState?: SoftState;
  readonly hardState?: HardState;
  readonly snapshot?: Snapshot;
  /** Entries to persist, in index order. */
  readonly entries: readonly Entry[];
  readonly messages: readonly Message[];
  readonly committedEntries: readonly Entry[];
  readonly readStates: readonly ReadState[];
}

export interface RaftConfig {
  readonly id: NodeId;
  /** The static voter set (controller.quorum.voters). */
  readonly voters: readonly NodeId[];
  /** Non-voting members that receive the log (brokers following the metadata log). */
  readonly observers?: readonly NodeId[];
  /** Election timeout is randomized in [electionTicks, 2 * electionTicks). */
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  /** Pre-vote (Raft thesis §9.6). Default true. */
  readonly preVote?: boolean;
  /** Leader steps down if it has not heard from a quorum for an election timeout. Default true. */
  readonly checkQuorum?: boolean;
  /** Bound on entries in one Append message. */
  readonly maxEntriesPerAppend?: number;
  /** Bound on un-acknowledged Append messages per follower (pipelining). */
  readonly maxInflightAppends?: number;
  /** Bound on proposals waiting in the leader's log but not yet committed. */
  readonly maxUncommittedEntries?: number;
  /** Bound on entries in one Ready's committedEntries (the rest come in later Readies). */
  readonly maxCommittedEntriesPerReady?: number;
  /** Bound on read-index requests waiting for confirmation at the leader. */
  readonly maxPendingReadIndex?: number;
  readonly random: { next(): number };
  /** Durable state recovered from storage at start. */
  readonly initial?: {
    readonly hardState: HardState;
    readonly snapshot?: Snapshot;
    /** Entries after the snapshot, in order. */
    readonly entries: readonly Entry[];
    /**
     * Index the state machine already reflects (it is durable on its own). Committed
     * entries after it are handed out again. Default: the snapshot's index (or 0).
     */
    readonly applied?: number;
  };
}

export type ProposeResult =
  | { readonly ok: true; readonly index: number; readonly term: number }
  | { readonly ok: false; readonly reason: "not-leader" | "transferring" | "too-many-uncommitted"; readonly leader: NodeId };

/** The core's surface. Every method is synchronous and deterministic. */
export interface RaftNode {
  readonly id: NodeId;
  tick(): void;
  step(message: Message): void;
  propose(data: Uint8Array): ProposeResult;
  /** Linearizable read: the index to wait for arrives later as a ReadState. */
  readIndex(context: string): ProposeResult;
  /** Ask the leader to hand leadership to `to` (controlled shutdown). */
  transferLeadership(to: NodeId): boolean;
  /** Replace the log prefix up to `index` (already applied) by a snapshot of the state machine. */
  compact(index: number, data: Uint8Array): void;
  hasReady(): boolean;
  ready(): Ready;
  advance(ready: Ready): void;
  status(): RaftStatus;
}

export interface RaftStatus {
  readonly id: NodeId;
  readonly role: Role;
  readonly term: number;
  readonly leader: NodeId;
  readonly commit: number;
  readonly applied: number;
  readonly lastIndex: number;
  /** Leader only: each peer's matched index. */
  readonly progress?: Readonly<Record<NodeId, { readonly match: number; readonly next: number }>>;
}

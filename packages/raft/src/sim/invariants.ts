/**
 * The simulator's safety checks, each with the name a violation reports. They are
 * incremental: the simulator calls a hook for what just happened (a Ready, an applied
 * entry, a node's state after a step), so checking after every step stays cheap.
 *
 * - ElectionSafety (§5.2, Figure 3): at most one leader per term, over the whole run.
 * - LogMatching (§5.3): two entries with the same index and term hold the same command
 *   and follow entries of the same term (which, by induction, makes the logs identical up
 *   to there).
 * - LeaderCompleteness (§5.4): an entry a leader committed in term T is in the log of
 *   every leader of a term > T.
 * - NoCommittedEntryLost: an entry any node reported committed (its commit index passed
 *   it while in term T) is at that index in the log of every leader of a term > T; and a
 *   node's durable state at restart still holds every entry up to its durable commit.
 * - StateMachineSafety (§5.4.3): every node applies the same entry at each index, each
 *   index exactly once and in order; a snapshot restores exactly the state of the nodes
 *   that applied up to its index.
 * - PersistBeforeSend (the Ready contract, types.ts): when a message leaves, the durable
 *   state already holds what it promises (a granted vote, an acknowledged entry).
 * - MonotonicCommit: a running node's commit index never goes back.
 * - LinearizableRead (thesis §6.4): a read index is at least the commit index anyone knew
 *   when the read was requested.
 */
import type { RaftCore } from "../core.js";
import type { Entry, HardState, Message, NodeId, ReadState, Snapshot } from "../types.js";

export type InvariantName =
  | "ElectionSafety"
  | "LogMatching"
  | "LeaderCompleteness"
  | "NoCommittedEntryLost"
  | "StateMachineSafety"
  | "PersistBeforeSend"
  | "MonotonicCommit"
  | "LinearizableRead"
  | "Liveness"
  | "CoreAssertion";

export type Fail = (invariant: InvariantName, detail: string) => never;

/** A node's durable state in the simulation (what the Ready contract made it persist). */
export interface Disk {
  hardState: HardState;
  snapshot: Snapshot | undefined;
  /** Entries after the snapshot, consecutive. */
  entries: Entry[];
}

export function diskFirstIndex(disk: Disk): number {
  return (disk.snapshot?.meta.index ?? 0) + 1;
}

export function diskLastIndex(disk: Disk): number {
  return (disk.snapshot?.meta.index ?? 0) + disk.entries.length;
}

export function diskTerm(disk: Disk, index: number): number | undefined {
  const snapIndex = disk.snapshot?.meta.index ?? 0;
  if (index === snapIndex) return disk.snapshot?.meta.term ?? 0;
  if (index < snapIndex || index > diskLastIndex(disk)) return undefined;
  return disk.entries[index - snapIndex - 1]!.term;
}

/** The simulated state machine: how many entries it applied and a hash chain over them. */
export interface StateMachine {
  appliedIndex: number;
  hash: number;
}

/** Identity of an entry's command: the proposal id in its data, or -1 for a no-op. */
export function payloadOf(e: Entry): number {
  if (e.type === "noop") return -1;
  const d = e.data;
  return d[0]! | (d[1]! << 8) | (d[2]! << 16) | (d[3]! << 24);
}

export function applyHash(hash: number, e: Entry): number {
  let h = Math.imul(hash ^ e.index, 0x9e3779b1);
  h = Math.imul(h ^ e.term, 0x85ebca6b);
  h = Math.imul(h ^ payloadOf(e), 0xc2b2ae35);
  return (h ^ (h >>> 15)) >>> 0;
}

export function encodeStateMachine(sm: StateMachine): Uint8Array {
  const out = new Uint8Array(8);
  const view = new DataView(out.buffer);
  view.setUint32(0, sm.appliedIndex, true);
  view.setUint32(4, sm.hash, true);
  return out;
}

export function decodeStateMachine(data: Uint8Array): StateMachine {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return { appliedIndex: view.getUint32(0, true), hash: view.getUint32(4, true) };
}

const KEY_TERM_SPAN = 1_000_000;

export class InvariantChecker {
  private readonly leaderOfTerm = new Map<number, NodeId>();
  /** LogMatching: (index, term) -> the entry's command and the term of the entry before it. */
  private readonly entries = new Map<number, { payload: number; prevTerm: number | undefined }>();
  /** Term of the entry committed at each index, as first reported. */
  private readonly committedTerm: (number | undefined)[] = [0];
  /** Highest index reported committed while in each term: by leaders, and by anyone. */
  private readonly leaderCommitByTerm = new Map<number, number>();
  private readonly anyCommitByTerm = new Map<number, number>();
  /** StateMachineSafety: the hash chain every state machine must follow. */
  private readonly chain: number[] = [0];
  private readonly lastCommit = new Map<NodeId, number>();
  private readonly lastRole = new Map<NodeId, string>();
  private readonly pendingReads = new Map<string, number>();

  constructor(private readonly fail: Fail) {}

  /** Leaders and terms seen, for statistics. */
  get termsWithLeader(): number {
    return this.leaderOfTerm.size;
  }

  get highestCommitted(): number {
    return this.committedTerm.length - 1;
  }

  /** LogMatching, on the entries a node hands to its disk. */
  onReadyEntries(id: NodeId, raft: RaftCore, entries: readonly Entry[]): void {
    for (let k = 0; k < entries.length; k++) {
      const e = entries[k]!;
      const prevTerm = k > 0 ? entries[k - 1]!.term : raft.termAt(e.index - 1);
      const key = e.index * KEY_TERM_SPAN + e.term;
      const seen = this.entries.get(key);
      const payload = payloadOf(e);
      if (seen === undefined) {
        this.entries.set(key, { payload, prevTerm });
        continue;
      }
      if (seen.payload !== payload)
        this.fail("LogMatching", `node ${id} holds entry ${e.index}/${e.term} with command ${payload}, another node with command ${seen.payload}`);
      if (seen.prevTerm !== undefined && prevTerm !== undefined && seen.prevTerm !== prevTerm)
        this.fail("LogMatching", `entry ${e.index}/${e.term} follows term ${prevTerm} on node ${id} but term ${seen.prevTerm} elsewhere`);
      if (seen.prevTerm === undefined && prevTerm !== undefined) seen.prevTerm = prevTerm;
    }
  }

  /** PersistBeforeSend, for a message about to leave node `id` whose disk is `disk`. */
  onSend(id: NodeId, disk: Disk, m: Message): void {
    if (m.type === "VoteResp" && !m.reject) {
      const hs = disk.hardState;
      if (!(hs.term > m.term || (hs.term === m.term && hs.vote === m.to)))
        this.fail("PersistBeforeSend", `node ${id} granted its term-${m.term} vote to ${m.to} but its disk says term ${hs.term} vote ${hs.vote}`);
    }
    if ((m.type === "AppendResp" || m.type === "InstallSnapshotResp") && !m.reject && m.hintIndex > diskLastIndex(disk))
      this.fail("PersistBeforeSend", `node ${id} acknowledged index ${m.hintIndex} to ${m.to} but its disk ends at ${diskLastIndex(disk)}`);
    if (m.term > disk.hardState.term && m.type !== "PreVote" && m.type !== "PreVoteResp")
      this.fail("PersistBeforeSend", `node ${id} sent ${m.type} in term ${m.term} but its disk is at term ${disk.hardState.term}`);
  }

  /** After every step that touched node `id` (running, with incarnation-local history). */
  afterStep(id: NodeId, raft: RaftCore, trace: ((line: string) => void) | undefined): void {
    const s = raft.status();
    if (s.role === "leader") {
      const known = this.leaderOfTerm.get(s.term);
      if (known === undefined) {
        this.leaderOfTerm.set(s.term, id);
        trace?.(`n${id} elected leader of term ${s.term}`);
        this.checkNewLeader(id, raft, s.term);
      } else if (known !== id) {
        this.fail("ElectionSafety", `nodes ${known} and ${id} are both leaders of term ${s.term}`);
      }
    }
    if (trace && this.lastRole.get(id) !== s.role) {
      if (s.role !== "leader") trace(`n${id} is ${s.role} in term ${s.term}`);
      this.lastRole.set(id, s.role);
    }
    const before = this.lastCommit.get(id) ?? 0;
    if (s.commit < before) this.fail("MonotonicCommit", `node ${id} moved its commit index back from ${before} to ${s.commit}`);
    if (s.commit > before) {
      this.lastCommit.set(id, s.commit);
      trace?.(`n${id} committed ${s.commit}`);
      this.recordCommit(id, raft, before, s.commit, s.term, s.role === "leader");
    }
  }

  /** A node restarted: its running history starts over from its durable commit index. */
  onRestart(id: NodeId, disk: Disk): void {
    this.lastCommit.set(id, disk.hardState.commit);
    this.lastRole.delete(id);
    const commit = disk.hardState.commit;
    if (commit > diskLastIndex(disk))
      this.fail("NoCommittedEntryLost", `node ${id} restarts with commit ${commit} but its disk ends at ${diskLastIndex(disk)}`);
    for (let i = diskFirstIndex(disk); i <= commit; i++) {
      const want = this.committedTerm[i];
      const have = diskTerm(disk, i);
      if (want !== undefined && have !== want)
        this.fail("NoCommittedEntryLost", `node ${id} restarts without committed entry ${i}/${want} (its disk has term ${have})`);
    }
  }

  private recordCommit(id: NodeId, raft: RaftCore, from: number, to: number, term: number, isLeader: boolean): void {
    for (let i = from + 1; i <= to; i++) {
      const t = raft.termAt(i);
      if (t === undefined) continue; // covered by a snapshot: checked through the state machine
      const known = this.committedTerm[i];
      if (known === undefined) {
        // Fill the prefix; gaps (compacted) stay undefined.
        while (this.committedTerm.length < i) this.committedTerm.push(undefined);
        this.committedTerm[i] = t;
      } else if (known !== t) {
        this.fail("NoCommittedEntryLost", `node ${id} committed ${i}/${t} but ${i}/${known} was committed before`);
      }
    }
    if (isLeader) this.leaderCommitByTerm.set(term, Math.max(this.leaderCommitByTerm.get(term) ?? 0, to));
    this.anyCommitByTerm.set(term, Math.max(this.anyCommitByTerm.get(term) ?? 0, to));
  }

  private checkNewLeader(id: NodeId, raft: RaftCore, term: number): void {
    const first = raft.snapshotIndex() + 1;
    const check = (name: InvariantName, byTerm: Map<number, number>) => {
      let upTo = 0;
      for (const [t, index] of byTerm) if (t < term && index > upTo) upTo = index;
      for (let i = first; i <= upTo; i++) {
        const want = this.committedTerm[i];
        if (want === undefined) continue;
        const have = raft.termAt(i);
        if (have !== want)
          this.fail(name, `leader ${id} of term ${term} lacks entry ${i}/${want}, committed in an earlier term (it has ${have === undefined ? "nothing" : `term ${have}`})`);
      }
    };
    check("LeaderCompleteness", this.leaderCommitByTerm);
    check("NoCommittedEntryLost", this.anyCommitByTerm);
  }

  /** StateMachineSafety, for one applied entry. */
  onApply(id: NodeId, sm: StateMachine, e: Entry): void {
    if (e.index !== sm.appliedIndex + 1)
      this.fail("StateMachineSafety", `node ${id} applied entry ${e.index} after ${sm.appliedIndex}`);
    const hash = applyHash(sm.hash, e);
    const known = this.chain[e.index];
    if (known === undefined) {
      if (this.chain.length !== e.index) this.fail("StateMachineSafety", `node ${id} applied ${e.index} before anyone applied ${this.chain.length}`);
      this.chain.push(hash);
    } else if (known !== hash) {
      this.fail("StateMachineSafety", `node ${id} applied ${e.index}/${e.term} (command ${payloadOf(e)}) but other nodes applied a different entry there`);
    }
    sm.appliedIndex = e.index;
    sm.hash = hash;
  }

  /** StateMachineSafety, for a state machine restored from a snapshot. */
  onRestore(id: NodeId, sm: StateMachine, snapshot: Snapshot): void {
    const restored = decodeStateMachine(snapshot.data);
    if (restored.appliedIndex !== snapshot.meta.index)
      this.fail("StateMachineSafety", `node ${id} got snapshot ${snapshot.meta.index} holding state at ${restored.appliedIndex}`);
    if (this.chain[restored.appliedIndex] !== restored.hash)
      this.fail("StateMachineSafety", `node ${id} restored a snapshot at ${restored.appliedIndex} that differs from what the nodes applied`);
    sm.appliedIndex = restored.appliedIndex;
    sm.hash = restored.hash;
  }

  onReadRequest(context: string, knownCommit: number): void {
    this.pendingReads.set(context, Math.max(knownCommit, this.highestCommitted));
  }

  onReadState(id: NodeId, rs: ReadState): void {
    const min = this.pendingReads.get(rs.context);
    if (min === undefined) this.fail("LinearizableRead", `node ${id} released read ${rs.context} that was never requested (or twice)`);
    this.pendingReads.delete(rs.context);
    if (rs.index < min)
      this.fail("LinearizableRead", `node ${id} released read ${rs.context} at index ${rs.index}, below commit ${min} known when it was requested`);
  }
}

/**
 * RaftCore: the Raft consensus algorithm as a deterministic state machine (no I/O).
 *
 * References in comments: "§n" is the Raft paper (Ongaro & Ousterhout, "In Search of an
 * Understandable Consensus Algorithm", extended version); "thesis §n" is Ongaro's PhD
 * thesis "Consensus: Bridging Theory and Practice". The structure (one step function and
 * one tick function per role, a Ready/advance hand-off) follows etcd-io/raft.
 *
 * What the driver must do with it is written in ./types.ts. Everything here is synchronous
 * and a function of (config, the sequence of calls): no clock, no Math.random, no timers.
 */
import { assert } from "@flotilla/common";
import { RAFT_DEFAULTS, TRANSFER_CONTEXT, validateConfig } from "./config.js";
import { RaftLog } from "./log.js";
import { Progress } from "./progress.js";
import { ReadOnlyQueue } from "./read-only.js";
import {
  NONE,
  type Entry,
  type HardState,
  type Message,
  type MessageType,
  type NodeId,
  type ProposeResult,
  type RaftConfig,
  type RaftNode,
  type RaftStatus,
  type ReadState,
  type Ready,
  type Role,
  type Snapshot,
  type SoftState,
} from "./types.js";

const NO_ENTRIES: readonly Entry[] = Object.freeze([]);
const NO_DATA = new Uint8Array(0);

type CampaignKind = "pre-vote" | "election" | "transfer";
type MessageFields = Partial<Message> & { readonly type: MessageType; readonly to: NodeId };

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

function sameSoftState(a: SoftState, b: SoftState): boolean {
  return a.term === b.term && a.leader === b.leader && a.role === b.role;
}

export class RaftCore implements RaftNode {
  readonly id: NodeId;
  private readonly voters: readonly NodeId[];
  private readonly observers: readonly NodeId[];
  private readonly isVoter: boolean;
  private readonly quorum: number;
  private readonly electionTicks: number;
  private readonly heartbeatTicks: number;
  private readonly preVote: boolean;
  private readonly checkQuorum: boolean;
  private readonly maxEntriesPerAppend: number;
  private readonly maxInflightAppends: number;
  private readonly maxUncommittedEntries: number;
  private readonly maxCommittedEntriesPerReady: number;
  private readonly maxPendingReadIndex: number;
  private readonly random: { next(): number };

  // Persistent state (§5, Figure 2): term, vote and the log (log.committed is persisted
  // too, as HardState.commit, so a restart need not re-learn it).
  private term = 0;
  private vote: NodeId = NONE;
  private readonly log: RaftLog;

  // Volatile state.
  private role: Role;
  private leader: NodeId = NONE;
  /**
   * Followers and candidates: ticks since the last valid message from a leader, or since
   * the election started. Leader: ticks since the last check-quorum round.
   */
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  /** §5.2: randomized in [electionTicks, 2 * electionTicks) to make split votes rare. */
  private randomizedElectionTimeout = 0;
  /** Candidate and pre-candidate: the answers received, by voter. */
  private readonly votes = new Map<NodeId, boolean>();
  /** Leader: one Progress per peer, voters and observers, including itself. */
  private readonly progress = new Map<NodeId, Progress>();
  /** Leader: the voter leadership is being handed to (thesis §3.10), or NONE. */
  private leadTransferee: NodeId = NONE;
  private readonly readOnly = new ReadOnlyQueue();
  /** Leader: read requests that arrived before an entry of this term committed (thesis §6.4). */
  private readsWaitingForCommit: string[] = [];

  private stepRole: (m: Message) => void;
  private tickRole: () => void;

  // What the next Ready hands out.
  private msgs: Message[] = [];
  private readStates: ReadState[] = [];
  private prevHardState: HardState;
  private prevSoftState: SoftState;
  private outstandingReady: Ready | undefined;

  constructor(config: RaftConfig) {
    validateConfig(config);
    this.id = config.id;
    this.voters = [...config.voters];
    this.observers = [...(config.observers ?? [])];
    this.isVoter = this.voters.includes(this.id);
    this.quorum = Math.floor(this.voters.length / 2) + 1;
    this.electionTicks = config.electionTicks;
    this.heartbeatTicks = config.heartbeatTicks;
    this.preVote = config.preVote ?? true;
    this.checkQuorum = config.checkQuorum ?? true;
    this.maxEntriesPerAppend = config.maxEntriesPerAppend ?? RAFT_DEFAULTS.maxEntriesPerAppend;
    this.maxInflightAppends = config.maxInflightAppends ?? RAFT_DEFAULTS.maxInflightAppends;
    this.maxUncommittedEntries = config.maxUncommittedEntries ?? RAFT_DEFAULTS.maxUncommittedEntries;
    this.maxCommittedEntriesPerReady = config.maxCommittedEntriesPerReady ?? RAFT_DEFAULTS.maxCommittedEntriesPerReady;
    this.maxPendingReadIndex = config.maxPendingReadIndex ?? RAFT_DEFAULTS.maxPendingReadIndex;
    this.random = config.random;

    const initial = config.initial;
    this.log = new RaftLog({
      snapshot: initial?.snapshot,
      entries: initial?.entries ?? NO_ENTRIES,
      commit: initial?.hardState.commit ?? 0,
      applied: initial?.applied,
    });
    if (initial !== undefined) {
      this.term = initial.hardState.term;
      this.vote = initial.hardState.vote;
      assert(this.log.lastTerm() <= this.term, () => `recovered log ends in term ${this.log.lastTerm()} beyond the recovered term ${this.term}`);
    }
    this.prevHardState = this.hardState();

    this.role = this.isVoter ? "follower" : "observer";
    this.stepRole = this.stepFollower;
    this.tickRole = this.tickElection;
    this.resetRandomizedElectionTimeout();
    this.prevSoftState = this.softState();
  }

  // ---- the RaftNode surface --------------------------------------------------------

  tick(): void {
    this.tickRole();
  }

  step(m: Message): void {
    assert(m.to === this.id, () => `message for ${m.to} stepped into node ${this.id}`);
    assert(m.from !== this.id, () => `node ${this.id} stepped its own message`);
    // Static membership: a message from outside it is a misconfigured peer; it gets no say.
    if (!this.voters.includes(m.from) && !this.observers.includes(m.from)) return;

    if (m.term > this.term) {
      if (m.type === "PreVote" || m.type === "Vote") {
        // Thesis §4.2.3 (disruptive servers): a voter that heard from a leader within the
        // minimum election timeout ignores requests to replace it. A campaign started by the
        // leader itself (TimeoutNow) is exempt.
        const forced = m.type === "Vote" && m.context === TRANSFER_CONTEXT;
        const inLease = this.checkQuorum && this.leader !== NONE && this.electionElapsed < this.electionTicks;
        if (inLease && !forced) return;
      }
      if (m.type === "PreVote") {
        // Thesis §9.6: a pre-vote carries the term the sender would campaign in; it does
        // not change the receiver's term.
      } else if (m.type === "PreVoteResp" && !m.reject) {
        // A granted pre-vote echoes the future term; the term changes only when the
        // pre-candidate really campaigns.
      } else {
        const fromLeader = m.type === "Append" || m.type === "Heartbeat" || m.type === "InstallSnapshot";
        // §5.1: a server that sees a higher term adopts it and becomes a follower.
        this.becomeFollower(m.term, fromLeader ? m.from : NONE);
      }
    } else if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === "Append" || m.type === "Heartbeat")) {
        // A stale leader. With pre-vote or check-quorum our higher term may never reach it
        // through votes (they are ignored while it holds its lease), so answer it: the
        // higher term in the answer makes it step down (§5.1).
        this.send({ type: "AppendResp", to: m.from });
      } else if (m.type === "PreVote") {
        // Tell a pre-candidate behind us about our term, or it could keep asking forever.
        this.send({ type: "PreVoteResp", to: m.from, reject: true });
      }
      // §5.1: otherwise a request with a stale term is rejected (ignored).
      return;
    }

    if (m.type === "PreVote" || m.type === "Vote") {
      this.handleVoteRequest(m);
      return;
    }
    this.stepRole(m);
  }

  propose(data: Uint8Array): ProposeResult {
    if (this.role !== "leader") return { ok: false, reason: "not-leader", leader: this.leader };
    // Thesis §3.10: stop accepting proposals while handing over, or the transfer could
    // chase a moving log end forever.
    if (this.leadTransferee !== NONE) return { ok: false, reason: "transferring", leader: this.leader };
    if (this.log.lastIndex() - this.log.committed >= this.maxUncommittedEntries)
      return { ok: false, reason: "too-many-uncommitted", leader: this.leader };
    const entry: Entry = { term: this.term, index: this.log.lastIndex() + 1, type: "normal", data };
    this.appendEntry(entry);
    this.bcastAppend();
    return { ok: true, index: entry.index, term: entry.term };
  }

  /**
   * Thesis §6.4. On success `index` is the read index when it is already known (the commit
   * index now); it is 0 while the leader has not yet committed an entry of its term, in
   * which case the request waits for that. Either way the ReadState in a later Ready is
   * what counts. Requests are dropped if this node stops being leader before they are
   * confirmed: the driver fails them on a leader change (Ready.softState) or a timeout.
   * Over `maxPendingReadIndex` waiting reads the answer is "too-many-uncommitted".
   */
  readIndex(context: string): ProposeResult {
    if (this.role !== "leader") return { ok: false, reason: "not-leader", leader: this.leader };
    assert(!this.readOnly.has(context) && !this.readsWaitingForCommit.includes(context), () => `read-index context "${context}" is already pending`);
    if (this.readOnly.size + this.readsWaitingForCommit.length >= this.maxPendingReadIndex)
      return { ok: false, reason: "too-many-uncommitted", leader: this.leader };
    if (!this.committedInCurrentTerm()) {
      // Thesis §6.4 step 1: until its no-op commits, a new leader does not know the true
      // commit index (earlier terms' entries may be committed without it knowing).
      this.readsWaitingForCommit.push(context);
      return { ok: true, index: 0, term: this.term };
    }
    const index = this.log.committed;
    this.startRead(context);
    return { ok: true, index, term: this.term };
  }

  transferLeadership(to: NodeId): boolean {
    if (this.role !== "leader" || to === this.id || !this.voters.includes(to)) return false;
    if (this.leadTransferee === to) return true;
    if (this.leadTransferee !== NONE) this.abortLeaderTransfer();
    this.leadTransferee = to;
    // Thesis §3.10: the transfer is aborted if it has not completed within an election
    // timeout; the leader's electionElapsed counts exactly that from here.
    this.electionElapsed = 0;
    const pr = this.mustProgress(to);
    if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(to);
    else this.sendAppend(to);
    return true;
  }

  /**
   * Drops the log prefix up to `index` (which the driver has applied) and keeps a snapshot
   * made of `data` to send to followers that need it. Returns the snapshot, which the
   * driver must save (and drop its stored entries <= index); undefined when `index` is
   * already covered by the current snapshot and nothing changed.
   */
  compact(index: number, data: Uint8Array): Snapshot | undefined {
    assert(index <= this.log.applied, () => `compact(${index}) beyond the applied index ${this.log.applied}`);
    if (index <= this.log.snapshotLastIndex()) return undefined;
    const term = this.log.term(index);
    assert(term !== undefined, () => `compact(${index}): no term for an applied index`);
    const snapshot: Snapshot = { meta: { index, term, voters: [...this.voters], observers: [...this.observers] }, data };
    this.log.compact(snapshot);
    return snapshot;
  }

  hasReady(): boolean {
    if (this.outstandingReady !== undefined) return false;
    return (
      this.msgs.length > 0 ||
      this.readStates.length > 0 ||
      this.log.hasUnstable() ||
      this.log.hasCommittedToApply() ||
      !sameHardState(this.hardState(), this.prevHardState) ||
      !sameSoftState(this.softState(), this.prevSoftState)
    );
  }

  ready(): Ready {
    assert(this.outstandingReady === undefined, "ready() called again before advance() of the previous Ready");
    const { snapshot, entries } = this.log.takeUnstable();
    const committedEntries = this.log.committedAfter(snapshot !== undefined ? snapshot.meta.index : this.log.applied, this.maxCommittedEntriesPerReady);
    const hardState = this.hardState();
    const softState = this.softState();
    const rd: Ready = {
      ...(sameSoftState(softState, this.prevSoftState) ? {} : { softState }),
      ...(sameHardState(hardState, this.prevHardState) ? {} : { hardState }),
      ...(snapshot === undefined ? {} : { snapshot }),
      entries,
      messages: this.msgs,
      committedEntries,
      readStates: this.readStates,
    };
    this.prevHardState = hardState;
    this.prevSoftState = softState;
    this.msgs = [];
    this.readStates = [];
    this.outstandingReady = rd;
    return rd;
  }

  advance(rd: Ready): void {
    assert(this.outstandingReady === rd, "advance() of a Ready that is not the outstanding one");
    this.outstandingReady = undefined;
    const lastCommitted = rd.committedEntries[rd.committedEntries.length - 1];
    const applied = Math.max(lastCommitted?.index ?? 0, rd.snapshot?.meta.index ?? 0);
    if (applied > this.log.applied) this.log.appliedTo(applied);
  }

  status(): RaftStatus {
    const base = {
      id: this.id,
      role: this.role,
      term: this.term,
      leader: this.leader,
      commit: this.log.committed,
      applied: this.log.applied,
      lastIndex: this.log.lastIndex(),
    };
    if (this.role !== "leader") return base;
    const progress: Record<NodeId, { match: number; next: number }> = {};
    for (const [id, pr] of this.progress) progress[id] = { match: pr.match, next: pr.next };
    return { ...base, progress };
  }

  // ---- read-only views for tests and the simulator ----------------------------------

  /** Term of the log entry at `index`, undefined if compacted away or beyond the end. */
  termAt(index: number): number | undefined {
    return this.log.term(index);
  }

  /** Entries in [lo, hi) still held in memory (lo > the snapshot index). */
  entriesIn(lo: number, hi: number): readonly Entry[] {
    return this.log.slice(lo, hi);
  }

  /** Last index covered by the current snapshot (0 when none). */
  snapshotIndex(): number {
    return this.log.snapshotLastIndex();
  }

  /** Leader: the voter leadership is being transferred to, or NONE. */
  transferee(): NodeId {
    return this.leadTransferee;
  }

  // ---- role transitions ------------------------------------------------------------

  private reset(term: number): void {
    if (term !== this.term) {
      assert(term > this.term, () => `term going back from ${this.term} to ${term}`);
      this.term = term;
      this.vote = NONE;
    }
    this.leader = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.votes.clear();
    this.progress.clear();
    this.leadTransferee = NONE;
    this.readOnly.clear();
    this.readsWaitingForCommit = [];
  }

  private becomeFollower(term: number, leader: NodeId): void {
    this.reset(term);
    this.leader = leader;
    this.role = this.isVoter ? "follower" : "observer";
    this.stepRole = this.stepFollower;
    this.tickRole = this.tickElection;
  }

  /** Thesis §9.6: find out whether an election could be won before disrupting anyone. */
  private becomePreCandidate(): void {
    assert(this.isVoter, "an observer cannot campaign");
    assert(this.role !== "leader", "invalid transition leader -> pre-candidate");
    // Term and vote stay as they are: a lost pre-vote must leave no trace.
    this.leader = NONE;
    this.electionElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.votes.clear();
    this.role = "pre-candidate";
    this.stepRole = this.stepCandidate;
    this.tickRole = this.tickElection;
  }

  /** §5.2: increment the term, vote for oneself, ask the others. */
  private becomeCandidate(): void {
    assert(this.isVoter, "an observer cannot campaign");
    assert(this.role !== "leader", "invalid transition leader -> candidate");
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = "candidate";
    this.stepRole = this.stepCandidate;
    this.tickRole = this.tickElection;
  }

  private becomeLeader(): void {
    assert(this.role === "candidate", () => `invalid transition ${this.role} -> leader`);
    this.reset(this.term);
    this.leader = this.id;
    this.role = "leader";
    this.stepRole = this.stepLeader;
    this.tickRole = this.tickHeartbeat;
    // §5.3: nextIndex starts just after the leader's last entry; matchIndex at 0.
    const next = this.log.lastIndex() + 1;
    for (const id of this.voters) this.progress.set(id, new Progress(id, true, next, this.maxInflightAppends));
    for (const id of this.observers) this.progress.set(id, new Progress(id, false, next, this.maxInflightAppends));
    const self = this.mustProgress(this.id);
    self.match = this.log.lastIndex();
    self.becomeReplicate();
    self.recentActive = true;
    // §8 / thesis §6.4: a no-op of the new term, so that earlier terms' entries commit
    // (§5.4.2 forbids committing them by counting replicas) and reads can be served.
    this.appendEntry({ term: this.term, index: this.log.lastIndex() + 1, type: "noop", data: NO_DATA });
    this.bcastAppend();
  }

  private campaign(kind: CampaignKind): void {
    let voteType: MessageType;
    let voteTerm: number;
    if (kind === "pre-vote") {
      this.becomePreCandidate();
      voteType = "PreVote";
      voteTerm = this.term + 1;
    } else {
      this.becomeCandidate();
      voteType = "Vote";
      voteTerm = this.term;
    }
    if (this.poll(this.id, true) === "won") {
      // A single-voter cluster wins at once.
      if (kind === "pre-vote") this.campaign("election");
      else this.becomeLeader();
      return;
    }
    for (const id of this.voters) {
      if (id === this.id) continue;
      this.send({
        type: voteType,
        to: id,
        term: voteTerm,
        logIndex: this.log.lastIndex(),
        logTerm: this.log.lastTerm(),
        ...(kind === "transfer" ? { context: TRANSFER_CONTEXT } : {}),
      });
    }
  }

  private poll(from: NodeId, granted: boolean): "won" | "lost" | "pending" {
    if (!this.votes.has(from)) this.votes.set(from, granted);
    let yes = 0;
    let no = 0;
    for (const v of this.votes.values()) v ? yes++ : no++;
    if (yes >= this.quorum) return "won";
    if (no >= this.quorum) return "lost";
    return "pending";
  }

  // ---- ticks -----------------------------------------------------------------------

  /** Followers, observers and candidates: §5.2 election timeout. */
  private tickElection = (): void => {
    this.electionElapsed++;
    if (this.isVoter && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.campaign(this.preVote ? "pre-vote" : "election");
    }
  };

  private tickHeartbeat = (): void => {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    for (const pr of this.progress.values()) {
      // An InstallSnapshot or its answer may be lost; fall back to probing, which sends
      // the snapshot again if it is still needed.
      if (pr.state === "snapshot" && ++pr.snapshotElapsedTicks >= this.electionTicks) pr.becomeProbe();
    }
    if (this.electionElapsed >= this.electionTicks) {
      this.electionElapsed = 0;
      if (this.checkQuorum) {
        // Thesis §6.2: a leader that has not heard from a quorum within an election
        // timeout steps down, so clients stop waiting on a leader that cannot commit.
        if (!this.quorumRecentlyActive()) {
          this.becomeFollower(this.term, NONE);
          return;
        }
      }
      if (this.leadTransferee !== NONE) this.abortLeaderTransfer();
    }
    if (this.heartbeatElapsed >= this.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat(this.readOnly.lastContext());
    }
  };

  private quorumRecentlyActive(): boolean {
    let active = 0;
    for (const pr of this.progress.values()) {
      if (pr.id === this.id) {
        active++;
        continue;
      }
      if (pr.isVoter && pr.recentActive) active++;
      pr.recentActive = false;
    }
    return active >= this.quorum;
  }

  // ---- step functions, one per role ------------------------------------------------

  /** Votes are answered the same way in every role (§5.2, §5.4.1, thesis §9.6). */
  private handleVoteRequest(m: Message): void {
    const pre = m.type === "PreVote";
    const respType: MessageType = pre ? "PreVoteResp" : "VoteResp";
    if (this.voteGrantable(m)) {
      // A granted pre-vote echoes the term it was asked for (see step()).
      this.send({ type: respType, to: m.from, term: m.term });
      if (!pre) {
        // §5.2: one vote per term, made durable (HardState.vote) before the answer leaves.
        this.vote = m.from;
        this.electionElapsed = 0;
      }
    } else {
      this.send({ type: respType, to: m.from, reject: true });
    }
  }

  /**
   * Whether this node may grant the (pre-)vote `m`. §5.2: at most one vote per term,
   * first come first served; §5.4.1: only to a candidate whose log is at least as up to
   * date. A pre-vote for a later term may be granted regardless of this term's vote.
   * Observers never vote. Protected so that tests can break it on purpose.
   */
  protected voteGrantable(m: Message): boolean {
    if (!this.isVoter || !this.voters.includes(m.from)) return false;
    const canVote =
      this.vote === m.from || (this.vote === NONE && this.leader === NONE) || (m.type === "PreVote" && m.term > this.term);
    return canVote && this.log.isUpToDate(m.logIndex, m.logTerm);
  }

  private stepFollower = (m: Message): void => {
    switch (m.type) {
      case "Append":
      case "Heartbeat":
      case "InstallSnapshot":
        assert(this.leader === NONE || this.leader === m.from, () => `two leaders in term ${this.term}: ${this.leader} and ${m.from}`);
        this.electionElapsed = 0;
        this.leader = m.from;
        if (m.type === "Append") this.handleAppend(m);
        else if (m.type === "Heartbeat") this.handleHeartbeat(m);
        else this.handleSnapshot(m);
        return;
      case "TimeoutNow":
        // Thesis §3.10: the leader asks us to start an election at once, skipping the
        // pre-vote (the leader is about to stop, the lease does not apply).
        if (this.isVoter) this.campaign("transfer");
        return;
      default:
        // Answers to requests of an earlier role (e.g. late votes): nothing to do.
        return;
    }
  };

  private stepCandidate = (m: Message): void => {
    switch (m.type) {
      case "Append":
      case "Heartbeat":
      case "InstallSnapshot":
        // §5.2: a leader of our term exists (for a pre-candidate: of its current term).
        this.becomeFollower(m.term, m.from);
        this.stepFollower(m);
        return;
      case "PreVoteResp":
      case "VoteResp": {
        const pre = this.role === "pre-candidate";
        if (m.type !== (pre ? "PreVoteResp" : "VoteResp")) return;
        // Granted pre-votes carry the campaign term; rejections carry the voter's (ours).
        if (pre && !m.reject && m.term !== this.term + 1) return;
        const result = this.poll(m.from, !m.reject);
        if (result === "won") {
          if (pre) this.campaign("election");
          else this.becomeLeader();
        } else if (result === "lost") {
          this.becomeFollower(this.term, NONE);
        }
        return;
      }
      default:
        return;
    }
  };

  private stepLeader = (m: Message): void => {
    const pr = this.progress.get(m.from);
    assert(pr !== undefined, () => `leader ${this.id} has no progress for member ${m.from}`);
    switch (m.type) {
      case "AppendResp":
        pr.recentActive = true;
        this.handleAppendResp(m, pr);
        return;
      case "HeartbeatResp":
        pr.recentActive = true;
        this.handleHeartbeatResp(m, pr);
        return;
      case "InstallSnapshotResp":
        pr.recentActive = true;
        this.handleSnapshotResp(m, pr);
        return;
      case "Append":
      case "Heartbeat":
      case "InstallSnapshot":
        // §5.2 Election Safety: there is one leader per term.
        assert(false, `leader ${this.id} of term ${this.term} got ${m.type} from ${m.from} in the same term`);
        return;
      default:
        return;
    }
  };

  // ---- follower side of replication ------------------------------------------------

  /** §5.3 AppendEntries receiver implementation. */
  private handleAppend(m: Message): void {
    if (m.logIndex < this.log.committed) {
      // Everything up to our commit index matches any leader (§5.4 Leader Completeness);
      // tell the leader where to continue.
      this.send({ type: "AppendResp", to: m.from, logIndex: m.logIndex, hintIndex: this.log.committed });
      return;
    }
    const appended = this.log.maybeAppend(m.logIndex, m.logTerm, m.entries);
    if (appended !== undefined) {
      const lastNew = appended.lastNew;
      if (appended.truncatedFrom !== undefined) this.dropAcksFrom(appended.truncatedFrom);
      // §5.3 rule 5: commit up to min(leaderCommit, index of the last new entry). Entries
      // beyond lastNew may be stale ones of an old leader.
      this.log.commitTo(Math.min(m.commit, lastNew));
      this.send({ type: "AppendResp", to: m.from, logIndex: m.logIndex, hintIndex: lastNew });
      return;
    }
    // §5.3 rule 2, with the fast back-off hint (see Message.hintIndex).
    const hintIndex = m.logIndex > this.log.lastIndex() ? this.log.lastIndex() : this.log.findConflictByTerm(m.logIndex, m.logTerm);
    const hintTerm = this.log.term(hintIndex);
    assert(hintTerm !== undefined, () => `no term for back-off hint ${hintIndex}`);
    this.send({ type: "AppendResp", to: m.from, reject: true, logIndex: m.logIndex, hintIndex, hintTerm });
  }

  /**
   * Withdraws queued acknowledgements of entries at or after `index`, which were just
   * replaced. They were created for entries that may never reach the disk now; sending
   * one after the Ready that persists the replacement would promise a leader (of an
   * older term, still counting replicas) an entry this node does not hold, breaking the
   * majority that commitment relies on (§5.4). Dropping a message is always safe.
   * Acknowledgements already handed out in a Ready are sent after that Ready's entries
   * are durable, so they were true when they left.
   */
  private dropAcksFrom(index: number): void {
    this.msgs = this.msgs.filter((m) => m.type !== "AppendResp" || m.reject || m.hintIndex < index);
  }

  private handleHeartbeat(m: Message): void {
    // The leader sends min(our match, its commit), so we hold every entry up to it.
    this.log.commitTo(m.commit);
    this.send({ type: "HeartbeatResp", to: m.from, ...(m.context === undefined ? {} : { context: m.context }) });
  }

  /** §7 InstallSnapshot receiver. */
  private handleSnapshot(m: Message): void {
    const snapshot = m.snapshot;
    assert(snapshot !== undefined, () => `InstallSnapshot from ${m.from} without a snapshot`);
    const { index, term } = snapshot.meta;
    if (index > this.log.committed) {
      if (this.log.matchTerm(index, term)) {
        // §7: we hold the snapshot's last entry, so the log up to it matches: keep the
        // entries and just learn that they are committed.
        this.log.commitTo(index);
      } else {
        // §7: otherwise discard the entire log and start over from the snapshot. Entries
        // above the commit index we acknowledged are gone with it.
        this.dropAcksFrom(this.log.committed + 1);
        this.log.restore(snapshot);
      }
    }
    this.send({ type: "InstallSnapshotResp", to: m.from, hintIndex: this.log.committed });
  }

  // ---- leader side of replication --------------------------------------------------

  private handleAppendResp(m: Message, pr: Progress): void {
    if (m.reject) {
      const probeHint = m.hintTerm > 0 ? this.log.findConflictByTerm(m.hintIndex, m.hintTerm) : m.hintIndex;
      if (pr.maybeDecrTo(m.logIndex, probeHint)) {
        if (pr.state === "replicate") pr.becomeProbe();
        this.sendAppend(pr.id);
      }
      return;
    }
    assert(m.hintIndex <= this.log.lastIndex(), () => `peer ${m.from} acknowledged ${m.hintIndex} beyond the leader's last index ${this.log.lastIndex()}`);
    const wasPaused = pr.isPaused();
    // A probe answered with what we already knew still shows where the follower is: it
    // may start streaming.
    const probeConfirmed = pr.state === "probe" && m.hintIndex === pr.match && m.logIndex === pr.next - 1;
    const updated = pr.maybeUpdate(m.hintIndex);
    if (!updated && !probeConfirmed) return;
    switch (pr.state) {
      case "probe":
        pr.becomeReplicate();
        break;
      case "snapshot":
        // An earlier Append got through and reached beyond the compaction point.
        if (pr.match >= this.log.snapshotLastIndex()) {
          pr.becomeProbe();
          pr.becomeReplicate();
        }
        break;
      case "replicate":
        pr.inflights.freeTo(pr.match);
        break;
    }
    if (this.maybeCommit()) this.bcastAppend();
    // It was paused, so it may lack our latest commit index: tell it, even with no entries.
    else if (wasPaused && updated) this.sendAppend(pr.id);
    // Pipelining: fill the window. Bounded: each send adds an inflight or pauses a probe.
    for (let n = 0; n < this.maxInflightAppends && this.sendAppend(pr.id, false); n++);
    if (pr.id === this.leadTransferee && pr.match === this.log.lastIndex()) this.sendTimeoutNow(pr.id);
  }

  private handleHeartbeatResp(m: Message, pr: Progress): void {
    pr.probeSent = false;
    // A full window and a live follower: an Append was probably lost. Free a slot so the
    // next Append reveals the gap (the follower rejects it and we probe).
    if (pr.state === "replicate" && pr.inflights.full()) pr.inflights.freeFirst();
    // Also when nothing new is left to send: an empty Append at `next` lets the follower
    // reveal a gap left by lost Appends (it rejects, and we go back to probing).
    if (pr.match < this.log.lastIndex()) this.sendAppend(pr.id);
    if (m.context !== undefined && pr.isVoter) {
      const released = this.readOnly.ack(m.context, m.from, (acks) => this.countVoters(acks) >= this.quorum);
      for (const rs of released) this.readStates.push(rs);
    }
  }

  private handleSnapshotResp(m: Message, pr: Progress): void {
    assert(m.hintIndex <= this.log.lastIndex(), () => `peer ${m.from} reported commit ${m.hintIndex} beyond the leader's last index ${this.log.lastIndex()}`);
    pr.maybeUpdate(m.hintIndex);
    const wasSnapshot = pr.state === "snapshot";
    if (wasSnapshot) pr.becomeProbe();
    if (this.maybeCommit()) this.bcastAppend();
    else if (wasSnapshot) this.sendAppend(pr.id);
  }

  private sendAppend(to: NodeId, sendIfEmpty = true): boolean {
    const pr = this.mustProgress(to);
    if (pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    assert(prevIndex <= this.log.lastIndex(), () => `next ${pr.next} of peer ${to} beyond the leader's log end ${this.log.lastIndex()}`);
    const prevTerm = this.log.term(prevIndex);
    if (prevTerm === undefined) return this.sendSnapshot(pr);
    const last = Math.min(this.log.lastIndex(), prevIndex + this.maxEntriesPerAppend);
    const entries = last > prevIndex ? this.log.slice(prevIndex + 1, last + 1) : NO_ENTRIES;
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.send({ type: "Append", to, logIndex: prevIndex, logTerm: prevTerm, entries, commit: this.log.committed });
    pr.sentAppend(entries.length, last);
    return true;
  }

  private sendSnapshot(pr: Progress): boolean {
    const snapshot = this.log.currentSnapshot();
    assert(snapshot !== undefined, () => `peer ${pr.id} needs compacted entries but there is no snapshot`);
    this.send({ type: "InstallSnapshot", to: pr.id, snapshot });
    pr.becomeSnapshot(snapshot.meta.index);
    return true;
  }

  private bcastAppend(): void {
    for (const id of this.progress.keys()) if (id !== this.id) this.sendAppend(id);
  }

  private bcastHeartbeat(context: string | undefined): void {
    for (const pr of this.progress.values()) {
      if (pr.id === this.id) continue;
      // Only commit what the peer is known to hold: a heartbeat has no consistency check.
      const commit = Math.min(pr.match, this.log.committed);
      this.send({ type: "Heartbeat", to: pr.id, commit, ...(context === undefined ? {} : { context }) });
    }
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send({ type: "TimeoutNow", to });
  }

  private abortLeaderTransfer(): void {
    this.leadTransferee = NONE;
  }

  private appendEntry(entry: Entry): void {
    this.log.append([entry]);
    const self = this.mustProgress(this.id);
    self.maybeUpdate(entry.index);
    // A single-voter cluster commits at once.
    this.maybeCommit();
  }

  /**
   * §5.3/§5.4.2: the commit index is the highest index held by a quorum of voters, but
   * only if that entry is from the current term (Figure 8): an entry of an earlier term
   * is committed indirectly, by committing a later one.
   */
  private maybeCommit(): boolean {
    const matches: number[] = [];
    for (const id of this.voters) matches.push(this.mustProgress(id).match);
    matches.sort((a, b) => b - a);
    const quorumIndex = matches[this.quorum - 1]!;
    if (quorumIndex <= this.log.committed || !this.mayCommitByCounting(quorumIndex)) return false;
    const firstInTerm = !this.committedInCurrentTerm();
    this.log.commitTo(quorumIndex);
    if (firstInTerm && this.committedInCurrentTerm()) {
      const waiting = this.readsWaitingForCommit;
      this.readsWaitingForCommit = [];
      for (const context of waiting) this.startRead(context);
    }
    return true;
  }

  /** The Figure 8 rule. Protected so that tests can break it on purpose. */
  protected mayCommitByCounting(index: number): boolean {
    return this.log.term(index) === this.term;
  }

  private committedInCurrentTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  private startRead(context: string): void {
    if (this.quorum === 1) {
      this.readStates.push({ context, index: this.log.committed });
      return;
    }
    this.readOnly.add(context, this.log.committed, this.id);
    this.bcastHeartbeat(context);
  }

  private countVoters(ids: ReadonlySet<NodeId>): number {
    let n = 0;
    for (const id of ids) if (this.voters.includes(id)) n++;
    return n;
  }

  // ---- helpers ---------------------------------------------------------------------

  private mustProgress(id: NodeId): Progress {
    const pr = this.progress.get(id);
    assert(pr !== undefined, () => `no progress for ${id} (role ${this.role})`);
    return pr;
  }

  private send(fields: MessageFields): void {
    this.msgs.push({
      from: this.id,
      term: this.term,
      logIndex: 0,
      logTerm: 0,
      entries: NO_ENTRIES,
      commit: 0,
      reject: false,
      hintIndex: 0,
      hintTerm: 0,
      ...fields,
    });
  }

  private hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  private softState(): SoftState {
    return { leader: this.leader, role: this.role, term: this.term };
  }

  private resetRandomizedElectionTimeout(): void {
    this.randomizedElectionTimeout = this.electionTicks + Math.floor(this.random.next() * this.electionTicks);
  }
}

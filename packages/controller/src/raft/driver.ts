/**
 * The Raft driver: runs a pure Raft core (@flotilla/raft) against real time, durable
 * storage (./storage.ts), a transport (./transport.ts) and a state machine. It knows
 * nothing of what the state machine holds.
 *
 * The ready loop carries out the core's duties in the order packages/raft/src/types.ts
 * gives them: persist the snapshot, entries and hard state in one fsynced batch; only
 * then send the messages; apply committed entries; answer read states; advance. While a
 * batch is being fsynced, ticks, incoming messages and proposals still reach the core,
 * and the next Ready carries everything that arrived meanwhile, so many concurrent
 * proposals share one append and one fsync.
 */
import { randomInt } from "node:crypto";
import { assert, FlotillaError, SeededRandom } from "@flotilla/common";
import type { Logger } from "@flotilla/common/logger";
import type { Entry, Message, NodeId, RaftConfig, RaftNode, RaftStatus, Ready, Snapshot, SnapshotMeta, SoftState } from "@flotilla/raft";
import type { RaftStorage } from "./storage.js";
import type { RaftTransport } from "./transport.js";

/** What the driver replicates. Called only from the ready loop, one call at a time. */
export interface StateMachine {
  /** Applies one committed "normal" entry. Entries come in index order, each exactly once per run. */
  apply(entry: Entry): void;
  /** The state after the last applied entry, serialized. */
  snapshot(): Uint8Array;
  /** Replaces the whole state by a snapshot's data (at start-up or from the leader). */
  restore(data: Uint8Array, meta: SnapshotMeta): void;
}

/**
 * The core as the driver uses it. `compact` returns the snapshot it made, as RaftCore
 * does (types.ts's RaftNode still declares `void`), so the driver stores exactly the
 * snapshot the core keeps and sends to followers.
 */
export type DriverCore = Omit<RaftNode, "compact"> & {
  compact(index: number, data: Uint8Array): Snapshot | undefined;
};

export interface RaftDriverOptions {
  readonly id: NodeId;
  /** Voter id -> "host:port" (used for leader hints). Must include `id`. */
  readonly voters: ReadonlyMap<NodeId, string>;
  /** Opened storage; the driver reads `recovered` at start and writes every Ready. */
  readonly storage: RaftStorage;
  readonly transport: RaftTransport;
  readonly stateMachine: StateMachine;
  readonly logger: Logger;
  /** Builds the core. */
  readonly createCore: (config: RaftConfig) => DriverCore;
  /** Default: seeded from crypto randomness. */
  readonly random?: { next(): number };
  /** Length of one tick. Default 50 ms. */
  readonly tickMs?: number;
  /** Election timeout in ticks (randomized up to twice this). Default 10. */
  readonly electionTicks?: number;
  /** Leader heartbeat interval in ticks. Default 1. Must be < electionTicks. */
  readonly heartbeatTicks?: number;
  /** Take a state-machine snapshot and compact the log every this many applied entries. Default 10000. */
  readonly snapshotEveryEntries?: number;
  /** Default time a proposal may wait for commit and apply. Default 5000 ms. */
  readonly proposalTimeoutMs?: number;
  /** Default time a read may wait for its read index to be confirmed and applied. Default 5000 ms. */
  readonly readTimeoutMs?: number;
  /** Proposals waiting for commit at once; past it propose() fails at once. Default 10000. */
  readonly pendingProposalsMax?: number;
  /** Reads waiting at once; past it readIndex() fails at once. Default 10000. */
  readonly pendingReadsMax?: number;
  /** Passed to the core (see RaftConfig). */
  readonly maxEntriesPerAppend?: number;
  readonly maxInflightAppends?: number;
  readonly maxUncommittedEntries?: number;
  /** Called with leader/role/term changes, after they are logged. */
  readonly onSoftState?: (state: SoftState) => void;
  /**
   * Called when the driver cannot go on (a storage write failed, a broken invariant).
   * The driver has stopped by then. Default: rethrow, which crashes the process: a
   * crashed controller is safe, a diverged one is not.
   */
  readonly onFatalError?: (err: unknown) => void;
}

export interface ProposeOutcome {
  readonly index: number;
  readonly term: number;
}

interface PendingProposal {
  readonly term: number;
  readonly resolve: (outcome: ProposeOutcome) => void;
  readonly reject: (err: Error) => void;
  readonly timer: NodeJS.Timeout;
}

interface PendingRead {
  /** Set once the core confirmed the read index. */
  index: number | undefined;
  readonly resolve: (index: number) => void;
  readonly reject: (err: Error) => void;
  readonly timer: NodeJS.Timeout;
}

interface Waiter {
  readonly check: () => boolean;
  readonly resolve: () => void;
}

interface ResolvedOptions {
  tickMs: number;
  electionTicks: number;
  heartbeatTicks: number;
  snapshotEveryEntries: number;
  proposalTimeoutMs: number;
  readTimeoutMs: number;
  pendingProposalsMax: number;
  pendingReadsMax: number;
}

function positiveInt(value: number | undefined, fallback: number, name: string): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v < 1) throw new FlotillaError("INVALID_CONFIG", `${name} must be a positive integer, got ${v}`);
  return v;
}

/** Checks the driver's options; throws INVALID_CONFIG naming the bad one. */
export function resolveDriverOptions(options: RaftDriverOptions): ResolvedOptions {
  const resolved: ResolvedOptions = {
    tickMs: positiveInt(options.tickMs, 50, "tickMs"),
    electionTicks: positiveInt(options.electionTicks, 10, "electionTicks"),
    heartbeatTicks: positiveInt(options.heartbeatTicks, 1, "heartbeatTicks"),
    snapshotEveryEntries: positiveInt(options.snapshotEveryEntries, 10_000, "snapshotEveryEntries"),
    proposalTimeoutMs: positiveInt(options.proposalTimeoutMs, 5000, "proposalTimeoutMs"),
    readTimeoutMs: positiveInt(options.readTimeoutMs, 5000, "readTimeoutMs"),
    pendingProposalsMax: positiveInt(options.pendingProposalsMax, 10_000, "pendingProposalsMax"),
    pendingReadsMax: positiveInt(options.pendingReadsMax, 10_000, "pendingReadsMax"),
  };
  if (resolved.electionTicks <= resolved.heartbeatTicks) {
    throw new FlotillaError("INVALID_CONFIG", `electionTicks (${resolved.electionTicks}) must be greater than heartbeatTicks (${resolved.heartbeatTicks})`);
  }
  if (!options.voters.has(options.id)) throw new FlotillaError("INVALID_CONFIG", `node id ${options.id} is not among the voters ${[...options.voters.keys()].join(",")}`);
  return resolved;
}

export class RaftDriver {
  private readonly core: DriverCore;
  private readonly opts: ResolvedOptions;
  private readonly logger: Logger;
  private readonly storage: RaftStorage;
  private readonly transport: RaftTransport;
  private readonly sm: StateMachine;
  private readonly voterIds: readonly NodeId[];

  private applied: number;
  private appliedTerm: number;
  private snapshotIndex: number;
  private softState: SoftState;
  private hardTerm: number;

  private readonly proposals = new Map<number, PendingProposal>();
  private readonly reads = new Map<string, PendingRead>();
  private readSeq = 0;
  private readonly waiters = new Set<Waiter>();

  private tickTimer: NodeJS.Timeout | undefined;
  private loop: Promise<void> | undefined;
  private loopScheduled = false;
  /**
   * running -> stopping (handing leadership away; still ticking and receiving) ->
   * halted (no new work; the Ready in progress finishes) -> stopped. Any -> failed.
   */
  private state: "running" | "stopping" | "halted" | "stopped" | "failed" = "running";
  private stopPromise: Promise<void> | undefined;

  constructor(private readonly options: RaftDriverOptions) {
    this.opts = resolveDriverOptions(options);
    this.logger = options.logger;
    this.storage = options.storage;
    this.transport = options.transport;
    this.sm = options.stateMachine;
    this.voterIds = [...options.voters.keys()].sort((a, b) => a - b);

    const { hardState, snapshot, entries } = options.storage.recovered;
    if (snapshot) this.sm.restore(snapshot.data, snapshot.meta);
    this.applied = snapshot?.meta.index ?? 0;
    this.appliedTerm = snapshot?.meta.term ?? 0;
    this.snapshotIndex = this.applied;
    this.hardTerm = hardState?.term ?? 0;

    this.core = options.createCore({
      id: options.id,
      voters: this.voterIds,
      electionTicks: this.opts.electionTicks,
      heartbeatTicks: this.opts.heartbeatTicks,
      random: options.random ?? new SeededRandom(randomInt(0, 2 ** 31)),
      ...(options.maxEntriesPerAppend !== undefined ? { maxEntriesPerAppend: options.maxEntriesPerAppend } : {}),
      ...(options.maxInflightAppends !== undefined ? { maxInflightAppends: options.maxInflightAppends } : {}),
      ...(options.maxUncommittedEntries !== undefined ? { maxUncommittedEntries: options.maxUncommittedEntries } : {}),
      ...(hardState ? { initial: { hardState, entries, ...(snapshot ? { snapshot } : {}) } } : {}),
    });
    const status = this.core.status();
    this.softState = { leader: status.leader, role: status.role, term: status.term };
    this.logger.info(
      { id: options.id, voters: this.voterIds, term: this.hardTerm, vote: hardState?.vote ?? 0, commit: hardState?.commit ?? 0, snapshotIndex: this.snapshotIndex, entries: entries.length, lastIndex: status.lastIndex },
      "raft node starting from stored state",
    );
    this.tickTimer = setInterval(() => this.tick(), this.opts.tickMs);
    this.schedule();
  }

  get id(): NodeId {
    return this.options.id;
  }

  /** The core's status, with `applied` as the state machine has it. */
  status(): RaftStatus {
    return { ...this.core.status(), applied: this.applied };
  }

  /** Address of the known leader, or undefined. */
  leaderAddress(): string | undefined {
    const leader = this.core.status().leader;
    return leader === 0 ? undefined : this.options.voters.get(leader);
  }

  /** Hands an incoming message to the core. Ignored once stopped. */
  receive(message: Message): void {
    if (!this.active()) return;
    this.logger.trace({ type: message.type, from: message.from, term: message.term, entries: message.entries.length }, "raft message received");
    this.guard(() => this.core.step(message));
    this.schedule();
  }

  /**
   * Appends `data` to the log. Resolves once the entry is committed and applied here.
   * Rejects with NOT_CONTROLLER (leader hint) when this node is not the leader, or when
   * the entry committed at the proposal's index has another term (leadership was lost
   * and another leader's entry took the place: ours can never commit then).
   * REQUEST_TIMED_OUT after `timeoutMs`, and SHUTTING_DOWN when the driver stops first:
   * the entry's fate is unknown then (it may still commit). The fate is decided only by
   * what commits at the index, not by our log being overwritten: an overwritten entry
   * can still be committed by a later leader that holds it (Raft §5.4).
   */
  propose(data: Uint8Array, options: { timeoutMs?: number } = {}): Promise<ProposeOutcome> {
    if (this.state !== "running") return Promise.reject(this.shuttingDown());
    if (this.proposals.size >= this.opts.pendingProposalsMax) {
      return Promise.reject(new FlotillaError("NOT_ENOUGH_REPLICAS", `${this.proposals.size} proposals already wait for commit (pendingProposalsMax)`));
    }
    const result = this.guard(() => this.core.propose(data));
    if (result === undefined) return Promise.reject(this.shuttingDown());
    if (!result.ok) {
      if (result.reason === "too-many-uncommitted") {
        return Promise.reject(new FlotillaError("NOT_ENOUGH_REPLICAS", "too many uncommitted entries in the leader's log (maxUncommittedEntries); the followers are behind"));
      }
      return Promise.reject(this.notController(result.leader, result.reason === "transferring" ? "leadership is being transferred" : undefined));
    }
    const { index, term } = result;
    this.logger.trace({ index, term, bytes: data.byteLength }, "raft proposal appended");
    const timeoutMs = options.timeoutMs ?? this.opts.proposalTimeoutMs;
    return new Promise<ProposeOutcome>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.proposals.get(index)?.timer !== timer) return;
        this.proposals.delete(index);
        reject(new FlotillaError("REQUEST_TIMED_OUT", `proposal at index ${index} (term ${term}) not committed within ${timeoutMs} ms; it may still commit`));
      }, timeoutMs);
      this.proposals.set(index, { term, resolve, reject, timer });
      this.schedule();
    });
  }

  /**
   * Linearizable read (Raft §6.4, read index): resolves with an index once the leader
   * has confirmed it is still the leader and this state machine has applied up to that
   * index. Serve the read from the state machine right after it resolves.
   */
  readIndex(options: { timeoutMs?: number } = {}): Promise<number> {
    if (this.state !== "running") return Promise.reject(this.shuttingDown());
    if (this.reads.size >= this.opts.pendingReadsMax) {
      return Promise.reject(new FlotillaError("REQUEST_TIMED_OUT", `${this.reads.size} reads already wait (pendingReadsMax)`));
    }
    const context = `${this.options.id}.${++this.readSeq}`;
    const result = this.guard(() => this.core.readIndex(context));
    if (result === undefined) return Promise.reject(this.shuttingDown());
    if (!result.ok) {
      if (result.reason === "too-many-uncommitted") return Promise.reject(new FlotillaError("REQUEST_TIMED_OUT", "too many reads waiting at the leader"));
      return Promise.reject(this.notController(result.leader, result.reason === "transferring" ? "leadership is being transferred" : undefined));
    }
    const timeoutMs = options.timeoutMs ?? this.opts.readTimeoutMs;
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (!this.reads.delete(context)) return;
        reject(new FlotillaError("REQUEST_TIMED_OUT", `read index not confirmed and applied within ${timeoutMs} ms`));
      }, timeoutMs);
      this.reads.set(context, { index: undefined, resolve, reject, timer });
      this.schedule();
    });
  }

  /**
   * Asks the core to hand leadership to `to` and waits until `to` is the known leader.
   * NOT_CONTROLLER if this node is not the leader; INVALID_REQUEST if the core refuses
   * (unknown node, or a transfer already running); REQUEST_TIMED_OUT if the leadership
   * has not moved within `timeoutMs` (default two election timeouts).
   */
  async transferLeadership(to: NodeId, options: { timeoutMs?: number } = {}): Promise<void> {
    if (!this.active()) throw this.shuttingDown();
    const status = this.core.status();
    if (status.role !== "leader") throw this.notController(status.leader);
    if (to === this.options.id) return;
    if (!this.guard(() => this.core.transferLeadership(to))) {
      throw new FlotillaError("INVALID_REQUEST", `the raft core refused to transfer leadership from node ${this.options.id} to node ${to}`);
    }
    this.logger.info({ from: this.options.id, to, term: status.term }, "raft leadership transfer started");
    this.schedule();
    const timeoutMs = options.timeoutMs ?? 2 * this.opts.electionTicks * this.opts.tickMs;
    const moved = await this.waitUntil(() => {
      const s = this.core.status();
      return s.leader === to || (s.role !== "leader" && s.term > status.term && s.leader !== 0);
    }, timeoutMs);
    if (!moved) throw new FlotillaError("REQUEST_TIMED_OUT", `leadership did not move from node ${this.options.id} to node ${to} within ${timeoutMs} ms`);
    this.logger.info({ to, leader: this.core.status().leader, term: this.core.status().term }, "raft leadership transferred");
  }

  /**
   * Graceful stop: when leader, hands leadership to the most caught-up voter first
   * (controlled shutdown; `leadership: "abandon"` skips that, e.g. when the whole quorum
   * stops), then stops ticking, lets the ready loop finish, and fails whatever still
   * waits with SHUTTING_DOWN. Does not close the storage or transport it was given: the
   * caller closes them after stop() resolves.
   */
  stop(options: { leadership?: "transfer" | "abandon"; transferTimeoutMs?: number } = {}): Promise<void> {
    this.stopPromise ??= this.doStop(options.leadership ?? "transfer", options.transferTimeoutMs);
    return this.stopPromise;
  }

  private async doStop(leadership: "transfer" | "abandon", transferTimeoutMs: number | undefined): Promise<void> {
    if (this.state === "running") {
      this.state = "stopping";
      const status = this.core.status();
      const target = this.transferTarget(status);
      if (leadership === "transfer" && status.role === "leader" && target !== undefined) {
        try {
          await this.transferLeadership(target, transferTimeoutMs === undefined ? {} : { timeoutMs: transferTimeoutMs });
        } catch (err) {
          this.logger.warn({ to: target, err: (err as Error).message }, "raft leadership transfer before stop failed; stopping anyway");
        }
      }
    }
    if (this.state !== "failed") this.state = "halted";
    this.halt(this.shuttingDown());
    await this.loop;
    if (this.state !== "failed") this.state = "stopped";
    this.logger.info({ id: this.options.id, term: this.core.status().term, applied: this.applied }, "raft node stopped");
  }

  /** The voter with the highest matched index (ties: lowest id), other than this node. */
  private transferTarget(status: RaftStatus): NodeId | undefined {
    let best: NodeId | undefined;
    let bestMatch = -1;
    for (const id of this.voterIds) {
      if (id === this.options.id) continue;
      const match = status.progress?.[id]?.match ?? 0;
      if (match > bestMatch) {
        best = id;
        bestMatch = match;
      }
    }
    return best;
  }

  /** Stops the timer and fails everything waiting. */
  private halt(reason: Error): void {
    if (this.tickTimer) clearInterval(this.tickTimer);
    this.tickTimer = undefined;
    for (const [index, p] of this.proposals) {
      clearTimeout(p.timer);
      this.proposals.delete(index);
      p.reject(reason);
    }
    for (const [context, r] of this.reads) {
      clearTimeout(r.timer);
      this.reads.delete(context);
      r.reject(reason);
    }
    for (const w of this.waiters) w.resolve();
    this.waiters.clear();
  }

  private shuttingDown(): FlotillaError {
    return new FlotillaError("SHUTTING_DOWN", `raft node ${this.options.id} is ${this.state === "failed" ? "stopped after a fatal error" : "shutting down"}`);
  }

  private notController(leader: NodeId, why?: string): FlotillaError {
    const address = leader === 0 ? undefined : this.options.voters.get(leader);
    const where = leader === 0 ? "no leader is known" : `the leader is node ${leader}${address ? ` at ${address}` : ""}`;
    return new FlotillaError("NOT_CONTROLLER", `node ${this.options.id} is not the leader${why ? ` (${why})` : ""}; ${where}`, address ? { leaderHint: address } : {});
  }

  /** Still taking ticks, messages and Readies. */
  private active(): boolean {
    return this.state === "running" || this.state === "stopping";
  }

  private tick(): void {
    if (!this.active()) return;
    this.guard(() => this.core.tick());
    this.schedule();
  }

  /** Runs `fn` on the core; a throw there is a broken invariant and stops the driver. */
  private guard<T>(fn: () => T): T | undefined {
    if (!this.active()) return undefined;
    try {
      return fn();
    } catch (err) {
      this.fail(err);
      return undefined;
    }
  }

  private fail(err: unknown): void {
    if (this.state === "failed") return;
    this.state = "failed";
    this.logger.fatal({ err }, "raft driver stopped after a fatal error");
    this.halt(this.shuttingDown());
    if (this.options.onFatalError) this.options.onFatalError(err);
    else
      process.nextTick(() => {
        throw err;
      });
  }

  private waitUntil(check: () => boolean, timeoutMs: number): Promise<boolean> {
    if (check()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter: Waiter = {
        check,
        resolve: () => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve(check());
        },
      };
      const timer = setTimeout(() => waiter.resolve(), timeoutMs);
      this.waiters.add(waiter);
    });
  }

  /** Starts the ready loop soon, unless it is running (it re-checks hasReady itself). */
  private schedule(): void {
    if (this.loop !== undefined || this.loopScheduled || !this.active()) return;
    this.loopScheduled = true;
    // setImmediate, not a microtask: proposals made in the same turn join one Ready.
    setImmediate(() => {
      this.loopScheduled = false;
      if (this.loop !== undefined) return;
      this.loop = this.runLoop().finally(() => {
        this.loop = undefined;
        // Work may have arrived while the last round was finishing.
        if (this.active() && this.core.hasReady()) this.schedule();
      });
    });
  }

  private async runLoop(): Promise<void> {
    try {
      while (this.active() && this.core.hasReady()) {
        const rd = this.core.ready();
        await this.handleReady(rd);
        if (this.state === "failed") return;
        this.core.advance(rd);
        await this.maybeCompact();
        for (const w of [...this.waiters]) if (w.check()) w.resolve();
      }
    } catch (err) {
      this.fail(err);
    }
  }

  private async handleReady(rd: Ready): Promise<void> {
    if (rd.softState) this.onSoftState(rd.softState);
    if (rd.hardState && rd.hardState.term !== this.hardTerm) {
      this.logger.info({ from: this.hardTerm, to: rd.hardState.term, vote: rd.hardState.vote }, "raft term changed");
      this.hardTerm = rd.hardState.term;
    }

    // Duties 2 and 3: one atomic batch, fsynced unless only the commit index changed
    // (RaftStorage.persist: Raft never promises a commit index in a message).
    if (rd.snapshot || rd.entries.length > 0 || rd.hardState) {
      await this.storage.persist({ snapshot: rd.snapshot, entries: rd.entries, hardState: rd.hardState });
    }
    if (rd.snapshot) this.installSnapshot(rd.snapshot);

    // Duty 4: only now that the state they promise is durable.
    if (rd.messages.length > 0) {
      this.logger.trace({ messages: rd.messages.length, entries: rd.entries.length }, "raft ready persisted, sending");
      this.transport.send(rd.messages);
    }

    // Duty 5.
    for (const entry of rd.committedEntries) this.applyEntry(entry);

    // Duty 6.
    for (const rs of rd.readStates) {
      const pending = this.reads.get(rs.context);
      if (pending) pending.index = rs.index;
    }
    this.answerReads();
  }

  private onSoftState(next: SoftState): void {
    const prev = this.softState;
    this.softState = next;
    if (next.leader !== prev.leader) {
      this.logger.info({ term: next.term, leader: next.leader, previousLeader: prev.leader, role: next.role }, next.leader === 0 ? "raft leader lost" : "raft leader changed");
    }
    if (next.role !== prev.role) this.logger.info({ term: next.term, from: prev.role, to: next.role }, "raft role changed");
    if (prev.role === "leader" && next.role !== "leader") {
      // Read contexts waiting for a leader's confirmation will not get it from us now.
      for (const [context, r] of this.reads) {
        if (r.index !== undefined) continue;
        clearTimeout(r.timer);
        this.reads.delete(context);
        r.reject(this.notController(next.leader, "leadership lost before the read was confirmed"));
      }
    }
    this.options.onSoftState?.(next);
  }

  private installSnapshot(snapshot: Snapshot): void {
    const { index, term } = snapshot.meta;
    assert(index > this.applied, () => `snapshot from the leader at ${index} is not past applied ${this.applied}`);
    this.logger.info({ index, term, bytes: snapshot.data.byteLength }, "raft snapshot from the leader installed");
    this.sm.restore(snapshot.data, snapshot.meta);
    // Proposals the snapshot covers: we cannot tell whether ours or another leader's
    // entries were committed there.
    for (const [i, p] of this.proposals) {
      if (i > index) continue;
      if (i === index) this.settleProposal(i, term);
      else {
        this.proposals.delete(i);
        clearTimeout(p.timer);
        p.reject(new FlotillaError("REQUEST_TIMED_OUT", `proposal at index ${i} (term ${p.term}): a snapshot from the leader replaced the log up to ${index}; whether it committed is unknown`));
      }
    }
    this.applied = index;
    this.appliedTerm = term;
    this.snapshotIndex = index;
  }

  private applyEntry(entry: Entry): void {
    if (entry.index <= this.applied) return;
    assert(entry.index === this.applied + 1, () => `committed entry ${entry.index} does not follow applied ${this.applied}`);
    if (entry.type === "normal") this.sm.apply(entry);
    this.applied = entry.index;
    this.appliedTerm = entry.term;
    if (this.proposals.has(entry.index)) this.settleProposal(entry.index, entry.term);
  }

  /** Resolves (the committed entry has the proposal's term) or rejects the proposal at `index`. */
  private settleProposal(index: number, committedTerm: number): void {
    const p = this.proposals.get(index);
    if (!p) return;
    this.proposals.delete(index);
    clearTimeout(p.timer);
    if (committedTerm === p.term) p.resolve({ index, term: p.term });
    else p.reject(this.notController(this.core.status().leader, `leadership lost: index ${index} committed with term ${committedTerm}, not the proposal's term ${p.term}`));
  }

  private answerReads(): void {
    for (const [context, r] of this.reads) {
      if (r.index === undefined || r.index > this.applied) continue;
      clearTimeout(r.timer);
      this.reads.delete(context);
      r.resolve(r.index);
    }
  }

  /** Every snapshotEveryEntries applied entries: snapshot the state machine, compact the log. */
  private async maybeCompact(): Promise<void> {
    if (this.applied - this.snapshotIndex < this.opts.snapshotEveryEntries) return;
    const started = performance.now();
    const data = this.sm.snapshot();
    const snapshot = this.core.compact(this.applied, data);
    this.snapshotIndex = this.applied;
    if (snapshot === undefined) return;
    assert(snapshot.meta.index === this.applied && snapshot.meta.term === this.appliedTerm, () => `core compacted to ${snapshot.meta.index}/${snapshot.meta.term}, driver applied ${this.applied}/${this.appliedTerm}`);
    // Local compaction is not part of a Ready: the driver stores it (types.ts).
    await this.storage.snapshot.save(snapshot);
    this.logger.info({ index: snapshot.meta.index, term: snapshot.meta.term, bytes: data.byteLength, ms: Math.round(performance.now() - started) }, "raft snapshot taken, log compacted");
  }
}

/**
 * A seeded, virtual-time simulation of a Raft cluster: 3 or 5 voters (and sometimes an
 * observer) built from RaftCore, a simulated network and disk, a workload of proposals
 * and reads, and a nemesis. One seed determines everything (cluster configuration, fault
 * schedule, message timing), so any failure replays exactly: `pnpm sim --seed S --nodes N`.
 *
 * The simulator is the driver of types.ts, written out literally:
 * - ready() -> the disk write takes `diskDelayMs` of virtual time (a slow disk); until it
 *   completes the Ready's messages are held and no further Ready is taken. A crash before
 *   completion loses the whole write (writes are atomic batches).
 * - when the write completes: the disk holds snapshot/entries/hardState; then (unless the
 *   nemesis crashes the node right there: persisted but not sent) messages go to the
 *   network, committed entries are applied, read states answered, and advance() called.
 * - a crash drops everything but the disk; a restart rebuilds RaftCore from the disk and
 *   the state machine from the disk's snapshot.
 *
 * The run has two phases. Chaos: `chaosSteps` events with faults (delay, drop, duplicate,
 * reorder, symmetric and one-way partitions, crashes, slow disks, compaction, leadership
 * transfers). Then every fault heals and Liveness requires that a leader is elected and a
 * fresh proposal is applied on every node within `livenessBoundMs` of virtual time.
 * Safety invariants (./invariants.ts) are checked after every step.
 */
import { SeededRandom } from "@flotilla/common";
import { RaftCore } from "../core.js";
import { formatEntries, formatMessage } from "../format.js";
import type { Message, NodeId, RaftConfig, Ready } from "../types.js";
import { EventQueue } from "./event-queue.js";
import {
  decodeStateMachine,
  diskLastIndex,
  encodeStateMachine,
  InvariantChecker,
  payloadOf,
  type Disk,
  type InvariantName,
  type StateMachine,
} from "./invariants.js";

export interface SimOptions {
  readonly seed: number;
  /** Voters: 3 or 5. */
  readonly nodes: number;
  /** Events in the fault phase. */
  readonly chaosSteps?: number;
  /** Receives one line per event when set (replay mode). */
  readonly trace?: (line: string) => void;
  /**
   * "default" draws every parameter from the seed; "leader-churn" then forces one entry per
   * Append and crashes half of the new leaders within 30 ms of their election.
   */
  readonly profile?: SimProfile;
  /** Builds each node; tests pass deliberately broken RaftCore subclasses. */
  readonly createNode?: (config: RaftConfig) => RaftCore;
}

export type SimProfile = "default" | "leader-churn";

export interface SimResult {
  readonly seed: number;
  readonly nodes: number;
  readonly observer: boolean;
  readonly steps: number;
  readonly virtualMs: number;
  readonly termsWithLeader: number;
  readonly highestCommitted: number;
  readonly proposalsAccepted: number;
  readonly readsReleased: number;
  readonly crashes: number;
  readonly partitions: number;
  readonly compactions: number;
  readonly snapshotsInstalled: number;
  readonly transfers: number;
  readonly messagesDelivered: number;
  readonly messagesDropped: number;
  /** Virtual time from the heal until a fresh proposal was applied everywhere. */
  readonly livenessMs: number;
}

export const SIM_DEFAULTS = {
  chaosSteps: 1500,
  tickMs: 10,
  /** After the heal: the time allowed to elect a leader and commit a fresh proposal. */
  livenessBoundMs: 5000,
  livenessStepsMax: 200_000,
} as const;

export class SimViolation extends Error {
  constructor(
    readonly invariant: InvariantName,
    readonly seed: number,
    readonly nodes: number,
    readonly step: number,
    readonly atMs: number,
    readonly detail: string,
    /** The command that replays the run with a trace. */
    readonly reproduce: string,
  ) {
    super(`${invariant} violated (seed ${seed}, ${nodes} nodes, step ${step}, t=${atMs}ms): ${detail}\n  reproduce: ${reproduce}`);
    this.name = "SimViolation";
  }
}

type SimEvent =
  | { readonly kind: "tick"; readonly node: NodeId; readonly incarnation: number }
  | { readonly kind: "deliver"; readonly message: Message }
  | { readonly kind: "persisted"; readonly node: NodeId; readonly incarnation: number }
  | { readonly kind: "restart"; readonly node: NodeId }
  | { readonly kind: "crash"; readonly node: NodeId; readonly incarnation: number }
  | { readonly kind: "unblock"; readonly pairs: readonly string[] }
  | { readonly kind: "disk-fast"; readonly node: NodeId }
  | { readonly kind: "clock-normal"; readonly node: NodeId }
  | { readonly kind: "nemesis" }
  | { readonly kind: "workload" }
  | { readonly kind: "probe" };

interface SimNode {
  readonly id: NodeId;
  readonly observer: boolean;
  raft: RaftCore | undefined;
  incarnation: number;
  readonly disk: Disk;
  diskDelayMs: number;
  /** Virtual ms between ticks: SIM_DEFAULTS.tickMs, less while the nemesis runs its clock fast. */
  tickMs: number;
  persisting: Ready | undefined;
  sm: StateMachine;
}

/** Per-seed cluster and fault parameters, all drawn from the seed. */
interface SimParams {
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly maxEntriesPerAppend: number;
  readonly maxInflightAppends: number;
  readonly maxUncommittedEntries: number;
  readonly maxCommittedEntriesPerReady: number;
  readonly observer: boolean;
  /** Compact when the applied index is this far past the snapshot (0: only when the nemesis says). */
  readonly compactEvery: number;
  readonly crashAfterPersistRate: number;
  /** Chance that a newly elected leader crashes within a few ms (mid-replication). */
  readonly crashNewLeaderRate: number;
  readonly maxLatencyMs: number;
}

/** Probe proposals of the liveness phase carry ids from here up. */
const PROBE_BASE = 0x40000000;
const NEMESIS_ACTIONS = ["split", "isolate", "one-way", "crash", "crash-leader", "slow-disk", "fast-clock", "compact", "transfer", "network", "heal"] as const;

function payload(id: number): Uint8Array {
  return new Uint8Array([id & 0xff, (id >>> 8) & 0xff, (id >>> 16) & 0xff, (id >>> 24) & 0xff]);
}

export function runSimulation(options: SimOptions): SimResult {
  return new Simulation(options).run();
}

class Simulation {
  private readonly rng: SeededRandom;
  private readonly params: SimParams;
  private readonly nodes = new Map<NodeId, SimNode>();
  private readonly voterIds: NodeId[];
  private readonly observerIds: NodeId[];
  private readonly queue = new EventQueue<SimEvent>();
  private readonly checker: InvariantChecker;
  private readonly trace: ((line: string) => void) | undefined;
  /** `trace` with the time and step prefix, for the checker's lines. */
  private readonly traceFn: ((line: string) => void) | undefined;
  private readonly chaosSteps: number;

  private nowMs = 0;
  private step = 0;
  private phase: "chaos" | "liveness" = "chaos";
  private healedAtMs = 0;
  /** Blocked directed links "a>b", counted so overlapping partitions heal independently. */
  private readonly blocked = new Map<string, number>();
  private dropRate = 0;
  private dupRate = 0;
  private longDelayRate = 0;
  private readonly ambushedTerms = new Set<number>();
  private nextProposalId = 1;
  private nextReadId = 1;
  private nextProbeId = PROBE_BASE;
  private readonly probeAppliedBy = new Map<number, Set<NodeId>>();
  private liveAtMs: number | undefined;

  private stats = {
    proposalsAccepted: 0,
    readsReleased: 0,
    crashes: 0,
    partitions: 0,
    compactions: 0,
    snapshotsInstalled: 0,
    transfers: 0,
    messagesDelivered: 0,
    messagesDropped: 0,
  };

  constructor(private readonly options: SimOptions) {
    if (options.nodes !== 3 && options.nodes !== 5) throw new Error(`the simulator runs 3 or 5 voters, not ${options.nodes}`);
    this.rng = new SeededRandom(options.seed);
    this.trace = options.trace;
    this.traceFn = options.trace && ((line: string) => this.log(line));
    this.chaosSteps = options.chaosSteps ?? SIM_DEFAULTS.chaosSteps;
    this.checker = new InvariantChecker((invariant, detail) => this.fail(invariant, detail));
    const r = this.rng;
    const electionTicks = r.int(4, 11);
    this.params = {
      electionTicks,
      heartbeatTicks: r.int(1, Math.min(3, electionTicks)),
      preVote: r.bool(0.85),
      checkQuorum: r.bool(0.85),
      maxEntriesPerAppend: r.pick([1, 2, 4, 64]),
      maxInflightAppends: r.pick([1, 2, 4, 16]),
      maxUncommittedEntries: r.pick([8, 64, 1000]),
      maxCommittedEntriesPerReady: r.pick([1, 3, 1024]),
      observer: r.bool(0.4),
      compactEvery: r.pick([0, 3, 10, 40]),
      crashAfterPersistRate: r.pick([0, 0.002, 0.01]),
      crashNewLeaderRate: r.pick([0, 0.1, 0.3]),
      maxLatencyMs: r.pick([3, 10, 25]),
    };
    if (options.profile === "leader-churn") {
      // One entry per Append and leaders that die right after winning: logs end up
      // replicated piecemeal across terms, the ground where commit rules go wrong.
      this.params = { ...this.params, maxEntriesPerAppend: 1, crashNewLeaderRate: 0.5, observer: false };
    }
    this.voterIds = Array.from({ length: options.nodes }, (_, k) => k + 1);
    this.observerIds = this.params.observer ? [options.nodes + 1] : [];
    for (const id of [...this.voterIds, ...this.observerIds]) {
      this.nodes.set(id, {
        id,
        observer: this.observerIds.includes(id),
        raft: undefined,
        incarnation: 0,
        disk: { hardState: { term: 0, vote: 0, commit: 0 }, snapshot: undefined, entries: [] },
        diskDelayMs: 0,
        tickMs: SIM_DEFAULTS.tickMs,
        persisting: undefined,
        sm: { appliedIndex: 0, hash: 0 },
      });
    }
  }

  run(): SimResult {
    this.log(`seed ${this.options.seed}: ${this.options.nodes} voters${this.params.observer ? " + 1 observer" : ""} ${JSON.stringify(this.params)}`);
    for (const n of this.nodes.values()) this.start(n, this.rng.int(0, SIM_DEFAULTS.tickMs));
    this.queue.push(this.rng.int(20, 100), { kind: "nemesis" });
    this.queue.push(this.rng.int(1, 20), { kind: "workload" });

    while (this.step < this.chaosSteps) this.runOne();
    this.heal();
    const stepLimit = this.step + SIM_DEFAULTS.livenessStepsMax;
    while (this.liveAtMs === undefined) {
      if (this.nowMs > this.healedAtMs + SIM_DEFAULTS.livenessBoundMs || this.step >= stepLimit) {
        const roles = [...this.nodes.values()].map((n) => `${n.id}:${n.raft?.status().role ?? "down"}/t${n.raft?.status().term ?? "-"}`).join(" ");
        this.fail("Liveness", `no fresh proposal was applied on every node within ${SIM_DEFAULTS.livenessBoundMs}ms after the faults healed (roles ${roles})`);
      }
      this.runOne();
    }
    return {
      seed: this.options.seed,
      nodes: this.options.nodes,
      observer: this.params.observer,
      steps: this.step,
      virtualMs: this.nowMs,
      termsWithLeader: this.checker.termsWithLeader,
      highestCommitted: this.checker.highestCommitted,
      livenessMs: this.liveAtMs - this.healedAtMs,
      ...this.stats,
    };
  }

  private fail(invariant: InvariantName, detail: string): never {
    const o = this.options;
    const steps = this.chaosSteps === SIM_DEFAULTS.chaosSteps ? "" : ` --steps ${this.chaosSteps}`;
    const profile = o.profile === undefined || o.profile === "default" ? "" : ` --profile ${o.profile}`;
    const broken = o.createNode ? " (with the test's own node factory)" : "";
    throw new SimViolation(invariant, o.seed, o.nodes, this.step, this.nowMs, detail, `pnpm sim --seed ${o.seed} --nodes ${o.nodes}${steps}${profile}${broken}`);
  }

  private log(line: string): void {
    this.trace?.(`t=${String(this.nowMs).padStart(6, "0")} #${String(this.step).padStart(5, "0")} ${line}`);
  }

  private runOne(): void {
    const next = this.queue.pop();
    if (next === undefined) this.fail("Liveness", "nothing left to happen");
    this.nowMs = next.atMs;
    this.step++;
    try {
      const touched = this.handle(next.event);
      if (touched !== undefined) {
        const n = this.nodes.get(touched)!;
        if (n.raft) {
          this.checker.afterStep(n.id, n.raft, this.traceFn);
          this.maybeAmbushNewLeader(n);
        }
      }
    } catch (err) {
      if (err instanceof SimViolation) throw err;
      // An assert inside the core (or the simulator) is a bug like any violated invariant.
      this.fail("CoreAssertion", err instanceof Error ? `${err.message}\n${err.stack?.split("\n").slice(1, 4).join("\n")}` : String(err));
    }
  }

  /** Handles one event; returns the node whose Raft state it may have changed. */
  private handle(ev: SimEvent): NodeId | undefined {
    switch (ev.kind) {
      case "tick": {
        const n = this.nodes.get(ev.node)!;
        if (n.raft === undefined || n.incarnation !== ev.incarnation) return undefined;
        this.log(`n${n.id} tick`);
        n.raft.tick();
        this.drive(n);
        // Clocks drift a little: the next tick comes 9 to 11 ms later (or sooner while the
        // nemesis runs this node's clock fast).
        this.queue.push(this.nowMs + n.tickMs + this.rng.int(-1, 2), ev);
        return n.id;
      }
      case "deliver": {
        const m = ev.message;
        const n = this.nodes.get(m.to)!;
        if (n.raft === undefined || this.isBlocked(m.from, m.to)) {
          this.stats.messagesDropped++;
          this.log(`drop ${formatMessage(m)}${n.raft === undefined ? " (receiver down)" : " (partition)"}`);
          return undefined;
        }
        this.stats.messagesDelivered++;
        this.log(`deliver ${formatMessage(m)}`);
        n.raft.step(m);
        this.drive(n);
        return n.id;
      }
      case "persisted": {
        const n = this.nodes.get(ev.node)!;
        if (n.raft === undefined || n.incarnation !== ev.incarnation || n.persisting === undefined) return undefined;
        this.finishPersist(n);
        if (n.raft !== undefined) this.drive(n);
        return n.id;
      }
      case "crash": {
        const n = this.nodes.get(ev.node)!;
        if (n.raft === undefined || n.incarnation !== ev.incarnation || this.phase !== "chaos") return undefined;
        this.crash(n, " (a new leader, ambushed)");
        this.queue.push(this.nowMs + this.rng.int(5, 300), { kind: "restart", node: n.id });
        return undefined;
      }
      case "restart": {
        const n = this.nodes.get(ev.node)!;
        if (n.raft !== undefined) return undefined;
        this.start(n, 0);
        return n.id;
      }
      case "unblock":
        for (const pair of ev.pairs) {
          const c = (this.blocked.get(pair) ?? 0) - 1;
          if (c <= 0) this.blocked.delete(pair);
          else this.blocked.set(pair, c);
        }
        this.log(`partition heals ${ev.pairs.join(" ")}`);
        return undefined;
      case "disk-fast": {
        const n = this.nodes.get(ev.node)!;
        n.diskDelayMs = 0;
        this.log(`n${n.id} disk fast again`);
        return undefined;
      }
      case "clock-normal": {
        const n = this.nodes.get(ev.node)!;
        n.tickMs = SIM_DEFAULTS.tickMs;
        this.log(`n${n.id} clock normal again`);
        return undefined;
      }
      case "nemesis":
        if (this.phase !== "chaos") return undefined;
        this.queue.push(this.nowMs + this.rng.int(10, 120), ev);
        return this.nemesis();
      case "workload":
        if (this.phase !== "chaos") return undefined;
        this.queue.push(this.nowMs + this.rng.int(2, 30), ev);
        return this.workload();
      case "probe":
        this.queue.push(this.nowMs + 50, ev);
        return this.probe();
    }
  }

  // ---- the driver ----------------------------------------------------------------

  private start(n: SimNode, firstTickInMs: number): void {
    this.checker.onRestart(n.id, n.disk);
    const p = this.params;
    const config: RaftConfig = {
      id: n.id,
      voters: this.voterIds,
      observers: this.observerIds,
      electionTicks: p.electionTicks,
      heartbeatTicks: p.heartbeatTicks,
      preVote: p.preVote,
      checkQuorum: p.checkQuorum,
      maxEntriesPerAppend: p.maxEntriesPerAppend,
      maxInflightAppends: p.maxInflightAppends,
      maxUncommittedEntries: p.maxUncommittedEntries,
      maxCommittedEntriesPerReady: p.maxCommittedEntriesPerReady,
      random: new SeededRandom(this.rng.int(1, 2 ** 31)),
      initial: { hardState: n.disk.hardState, snapshot: n.disk.snapshot, entries: [...n.disk.entries] },
    };
    n.raft = this.options.createNode ? this.options.createNode(config) : new RaftCore(config);
    n.incarnation++;
    n.persisting = undefined;
    n.sm = { appliedIndex: 0, hash: 0 };
    if (n.disk.snapshot !== undefined) this.checker.onRestore(n.id, n.sm, n.disk.snapshot);
    if (n.incarnation > 1) this.log(`restart n${n.id} (term ${n.disk.hardState.term}, vote ${n.disk.hardState.vote}, commit ${n.disk.hardState.commit}, log ${diskLastIndex(n.disk)})`);
    this.queue.push(this.nowMs + firstTickInMs, { kind: "tick", node: n.id, incarnation: n.incarnation });
    this.drive(n);
  }

  private crash(n: SimNode, why: string): void {
    this.stats.crashes++;
    this.log(`crash n${n.id}${why}`);
    n.raft = undefined;
    n.persisting = undefined;
    n.incarnation++;
  }

  /** Takes Readies while the disk is free; a slow disk completes later ("persisted"). */
  private drive(n: SimNode): void {
    for (let guard = 0; n.raft !== undefined && n.persisting === undefined && n.raft.hasReady(); guard++) {
      if (guard >= 1000) this.fail("CoreAssertion", `node ${n.id} keeps producing Readies`);
      // Check the state the step left before its Ready is acted on, so that a violation is
      // reported by its own name and not by the damage it does next.
      this.checker.afterStep(n.id, n.raft, this.traceFn);
      const rd = n.raft.ready();
      this.checker.onReadyEntries(n.id, n.raft, rd.entries);
      n.persisting = rd;
      if (n.diskDelayMs === 0) {
        this.finishPersist(n);
      } else {
        this.queue.push(this.nowMs + n.diskDelayMs, { kind: "persisted", node: n.id, incarnation: n.incarnation });
        if (rd.entries.length > 0 || rd.hardState) this.log(`n${n.id} writing (slow disk, ${n.diskDelayMs}ms)`);
      }
    }
  }

  private finishPersist(n: SimNode): void {
    const rd = n.persisting!;
    const raft = n.raft!;
    const disk = n.disk;
    // Duty 2: a snapshot from the leader replaces the stored log.
    if (rd.snapshot) {
      disk.snapshot = rd.snapshot;
      disk.entries.length = 0;
    }
    // Duty 3: entries overwrite from their first index on, then the hard state.
    if (rd.entries.length > 0) {
      const first = rd.entries[0]!.index;
      const base = disk.snapshot?.meta.index ?? 0;
      if (first <= base || first > diskLastIndex(disk) + 1)
        this.fail("CoreAssertion", `node ${n.id} Ready entries start at ${first}, disk holds (${base}, ${diskLastIndex(disk)}]`);
      disk.entries.length = first - base - 1;
      for (const e of rd.entries) disk.entries.push(e);
    }
    if (rd.hardState) disk.hardState = rd.hardState;
    if (rd.snapshot || rd.entries.length > 0 || rd.hardState) {
      const hs = disk.hardState;
      this.log(`n${n.id} persisted${rd.entries.length > 0 ? ` entries ${formatEntries(rd.entries)}` : ""}${rd.snapshot ? ` snapshot ${rd.snapshot.meta.index}/${rd.snapshot.meta.term}` : ""} hard=${hs.term}/${hs.vote}/${hs.commit}`);
    }
    if (this.phase === "chaos" && this.params.crashAfterPersistRate > 0 && this.rng.bool(this.params.crashAfterPersistRate)) {
      this.crash(n, " after persisting, before sending");
      this.queue.push(this.nowMs + this.rng.int(5, 300), { kind: "restart", node: n.id });
      return;
    }
    // Duty 4: only now may messages leave.
    for (const m of rd.messages) {
      this.checker.onSend(n.id, disk, m);
      this.send(m);
    }
    // Duty 5: apply.
    if (rd.snapshot) {
      this.stats.snapshotsInstalled++;
      this.checker.onRestore(n.id, n.sm, rd.snapshot);
      this.log(`n${n.id} restored state machine from snapshot ${rd.snapshot.meta.index}`);
    }
    for (const e of rd.committedEntries) {
      this.checker.onApply(n.id, n.sm, e);
      const id = payloadOf(e);
      if (id >= PROBE_BASE) this.noteProbeApplied(n.id, id);
    }
    if (rd.committedEntries.length > 0) this.log(`n${n.id} applied ${formatEntries(rd.committedEntries)}`);
    // Duty 6: reads (the state machine is already at or past their index here).
    for (const rs of rd.readStates) {
      this.stats.readsReleased++;
      this.checker.onReadState(n.id, rs);
      this.log(`n${n.id} read ${rs.context} at index ${rs.index}`);
    }
    // Duty 7.
    raft.advance(rd);
    n.persisting = undefined;
    if (this.params.compactEvery > 0 && n.sm.appliedIndex - raft.snapshotIndex() >= this.params.compactEvery) this.compact(n);
  }

  private compact(n: SimNode): void {
    const raft = n.raft!;
    const snap = raft.compact(n.sm.appliedIndex, encodeStateMachine(n.sm));
    if (snap === undefined) return;
    this.stats.compactions++;
    const disk = n.disk;
    const base = disk.snapshot?.meta.index ?? 0;
    if (snap.meta.index > diskLastIndex(disk)) this.fail("CoreAssertion", `node ${n.id} compacted to ${snap.meta.index} beyond its durable log ${diskLastIndex(disk)}`);
    disk.entries.splice(0, snap.meta.index - base);
    disk.snapshot = snap;
    this.log(`n${n.id} compacted to ${snap.meta.index}`);
  }

  // ---- the network ---------------------------------------------------------------

  private isBlocked(from: NodeId, to: NodeId): boolean {
    return this.blocked.has(`${from}>${to}`);
  }

  private send(m: Message): void {
    if (this.isBlocked(m.from, m.to)) {
      this.stats.messagesDropped++;
      this.log(`drop ${formatMessage(m)} (partition)`);
      return;
    }
    if (this.dropRate > 0 && this.rng.bool(this.dropRate)) {
      this.stats.messagesDropped++;
      this.log(`drop ${formatMessage(m)} (lost)`);
      return;
    }
    const copies = this.dupRate > 0 && this.rng.bool(this.dupRate) ? 2 : 1;
    for (let k = 0; k < copies; k++) {
      let delay = this.rng.int(1, this.params.maxLatencyMs + 1);
      // Occasionally much later than the rest: messages overtake each other.
      if (this.longDelayRate > 0 && this.rng.bool(this.longDelayRate)) delay += this.rng.int(20, 300);
      this.queue.push(this.nowMs + delay, { kind: "deliver", message: m });
    }
    if (copies > 1) this.log(`duplicate ${formatMessage(m)}`);
  }

  private block(pairs: string[], durationMs: number, what: string): void {
    this.stats.partitions++;
    for (const p of pairs) this.blocked.set(p, (this.blocked.get(p) ?? 0) + 1);
    this.queue.push(this.nowMs + durationMs, { kind: "unblock", pairs });
    this.log(`partition ${what} for ${durationMs}ms`);
  }

  // ---- nemesis, workload, liveness -------------------------------------------------

  /**
   * A leader that dies a few ms after its election leaves entries on some followers and
   * not others, and its no-op half replicated: the histories of Figure 8 (§5.4.2).
   */
  private maybeAmbushNewLeader(n: SimNode): void {
    if (this.phase !== "chaos" || this.params.crashNewLeaderRate === 0) return;
    const s = n.raft!.status();
    if (s.role !== "leader" || this.ambushedTerms.has(s.term)) return;
    this.ambushedTerms.add(s.term);
    if (this.rng.bool(this.params.crashNewLeaderRate))
      this.queue.push(this.nowMs + this.rng.int(1, 30), { kind: "crash", node: n.id, incarnation: n.incarnation });
  }

  private allIds(): NodeId[] {
    return [...this.nodes.keys()];
  }

  private liveNodes(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.raft !== undefined);
  }

  private currentLeader(): SimNode | undefined {
    let best: SimNode | undefined;
    let bestTerm = -1;
    for (const n of this.nodes.values()) {
      const s = n.raft?.status();
      if (s?.role === "leader" && s.term > bestTerm) {
        best = n;
        bestTerm = s.term;
      }
    }
    return best;
  }

  private nemesis(): NodeId | undefined {
    const r = this.rng;
    const ids = this.allIds();
    const action = r.pick(NEMESIS_ACTIONS);
    switch (action) {
      case "split": {
        const side = ids.filter(() => r.bool());
        if (side.length === 0 || side.length === ids.length) return undefined;
        const other = ids.filter((id) => !side.includes(id));
        const pairs = side.flatMap((a) => other.flatMap((b) => [`${a}>${b}`, `${b}>${a}`]));
        this.block(pairs, r.int(50, 800), `{${side.join(",")}} | {${other.join(",")}}`);
        return undefined;
      }
      case "isolate": {
        const a = r.pick(ids);
        const pairs = ids.filter((b) => b !== a).flatMap((b) => [`${a}>${b}`, `${b}>${a}`]);
        this.block(pairs, r.int(50, 800), `n${a} isolated`);
        return undefined;
      }
      case "one-way": {
        const a = r.pick(ids);
        const targets = ids.filter((b) => b !== a && r.bool());
        if (targets.length === 0) return undefined;
        const outgoing = r.bool();
        const pairs = targets.map((b) => (outgoing ? `${a}>${b}` : `${b}>${a}`));
        this.block(pairs, r.int(50, 800), `one-way ${pairs.join(" ")}`);
        return undefined;
      }
      case "crash": {
        const live = this.liveNodes();
        if (live.length === 0) return undefined;
        const n = r.pick(live);
        this.crash(n, "");
        this.queue.push(this.nowMs + r.int(5, 500), { kind: "restart", node: n.id });
        return undefined;
      }
      case "crash-leader": {
        // Leaders dying mid-replication leave the partly replicated logs of Figure 8.
        const leader = this.currentLeader();
        if (leader === undefined) return undefined;
        this.crash(leader, " (the leader)");
        this.queue.push(this.nowMs + r.int(5, 300), { kind: "restart", node: leader.id });
        return undefined;
      }
      case "slow-disk": {
        const n = this.nodes.get(r.pick(ids))!;
        n.diskDelayMs = r.int(2, 60);
        this.queue.push(this.nowMs + r.int(50, 500), { kind: "disk-fast", node: n.id });
        this.log(`n${n.id} disk slow (${n.diskDelayMs}ms per write)`);
        return undefined;
      }
      case "fast-clock": {
        // A clock running fast times out early: elections at the worst moments.
        const n = this.nodes.get(r.pick(ids))!;
        n.tickMs = r.int(2, SIM_DEFAULTS.tickMs);
        this.queue.push(this.nowMs + r.int(50, 500), { kind: "clock-normal", node: n.id });
        this.log(`n${n.id} clock fast (a tick every ${n.tickMs}ms)`);
        return undefined;
      }
      case "compact": {
        const live = this.liveNodes();
        if (live.length === 0) return undefined;
        const n = r.pick(live);
        this.compact(n);
        return n.id;
      }
      case "transfer": {
        const leader = this.currentLeader();
        if (leader === undefined) return undefined;
        const to = r.pick(this.voterIds.filter((id) => id !== leader.id));
        if (leader.raft!.transferLeadership(to)) {
          this.stats.transfers++;
          this.log(`transfer leadership n${leader.id} -> n${to}`);
        }
        this.drive(leader);
        return leader.id;
      }
      case "network":
        this.dropRate = r.pick([0, 0.02, 0.1, 0.3, 0.6]);
        this.dupRate = r.pick([0, 0.02, 0.1]);
        this.longDelayRate = r.pick([0, 0.02, 0.1]);
        this.log(`network drop=${this.dropRate} duplicate=${this.dupRate} long-delay=${this.longDelayRate}`);
        return undefined;
      case "heal":
        this.blocked.clear();
        this.log("partitions heal");
        return undefined;
    }
  }

  private workload(): NodeId | undefined {
    const r = this.rng;
    const leader = this.currentLeader();
    const n = leader !== undefined && r.bool(0.8) ? leader : this.nodes.get(r.pick(this.allIds()))!;
    if (n.raft === undefined) return undefined;
    if (r.bool(0.2)) {
      const context = `r${this.nextReadId++}`;
      const knownCommit = Math.max(...this.liveNodes().map((x) => x.raft!.status().commit));
      const res = n.raft.readIndex(context);
      this.log(`read ${context} at n${n.id}: ${res.ok ? "accepted" : res.reason}`);
      if (res.ok) this.checker.onReadRequest(context, knownCommit);
    } else {
      const id = this.nextProposalId++;
      const res = n.raft.propose(payload(id));
      this.log(`propose p${id} at n${n.id}: ${res.ok ? `index ${res.index}` : res.reason}`);
      if (res.ok) this.stats.proposalsAccepted++;
    }
    this.drive(n);
    return n.id;
  }

  private heal(): void {
    this.phase = "liveness";
    this.healedAtMs = this.nowMs;
    this.blocked.clear();
    this.dropRate = 0;
    this.dupRate = 0;
    this.longDelayRate = 0;
    this.log("heal: partitions end, crashed nodes restart, disks and network are reliable");
    for (const n of this.nodes.values()) {
      n.diskDelayMs = 0;
      n.tickMs = SIM_DEFAULTS.tickMs;
      if (n.raft === undefined) this.start(n, this.rng.int(0, SIM_DEFAULTS.tickMs));
    }
    this.queue.push(this.nowMs + 1, { kind: "probe" });
  }

  /** Liveness phase: propose a fresh entry at the leader, if there is one. */
  private probe(): NodeId | undefined {
    if (this.liveAtMs !== undefined) return undefined;
    const leader = this.currentLeader();
    if (leader === undefined) return undefined;
    const id = this.nextProbeId++;
    const res = leader.raft!.propose(payload(id));
    this.log(`probe p${id} at n${leader.id}: ${res.ok ? `index ${res.index}` : res.reason}`);
    this.drive(leader);
    return leader.id;
  }

  private noteProbeApplied(node: NodeId, id: number): void {
    let by = this.probeAppliedBy.get(id);
    if (by === undefined) this.probeAppliedBy.set(id, (by = new Set()));
    by.add(node);
    if (by.size === this.nodes.size && this.liveAtMs === undefined) {
      this.liveAtMs = this.nowMs;
      this.log(`live: probe p${id} applied on every node ${this.nowMs - this.healedAtMs}ms after the heal`);
    }
  }
}

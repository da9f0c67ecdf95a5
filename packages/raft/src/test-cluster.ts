/**
 * A hand-driven in-memory cluster for unit and transcript tests: every node is a RaftCore
 * with a perfect in-memory "disk"; messages wait in a queue until the test delivers them.
 * Nothing happens unless the test says so (no timers, no randomness beyond the seed of the
 * election timeouts), so a test reads as a script. Not exported from the package.
 */
import { assert, SeededRandom } from "@flotilla/common";
import { RaftCore } from "./core.js";
import { formatEntries, formatMessage } from "./format.js";
import type { Entry, HardState, Message, NodeId, RaftConfig, ReadState, Snapshot } from "./types.js";

export interface Disk {
  hardState: HardState;
  snapshot: Snapshot | undefined;
  entries: Entry[];
}

export interface TestClusterOptions {
  voters: readonly NodeId[];
  observers?: readonly NodeId[];
  electionTicks?: number;
  heartbeatTicks?: number;
  preVote?: boolean;
  checkQuorum?: boolean;
  maxEntriesPerAppend?: number;
  maxInflightAppends?: number;
  maxUncommittedEntries?: number;
  seed?: number;
  /** Build a node (tests substitute deliberately broken subclasses). */
  create?: (config: RaftConfig) => RaftCore;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function data(text: string): Uint8Array {
  return encoder.encode(text);
}

export function text(entry: Entry): string {
  return decoder.decode(entry.data);
}

export class TestCluster {
  readonly nodes = new Map<NodeId, RaftCore>();
  readonly disks = new Map<NodeId, Disk>();
  /** What each node's state machine applied, in order ("index/term:text"). */
  readonly applied = new Map<NodeId, string[]>();
  readonly readStates = new Map<NodeId, ReadState[]>();
  /** Messages sent and not yet delivered, in send order. */
  queue: Message[] = [];
  /** Node pairs whose messages are dropped ("1>2" means from 1 to 2). */
  private readonly cuts = new Set<string>();
  readonly trace: string[] = [];
  private readonly random: SeededRandom;

  constructor(private readonly options: TestClusterOptions) {
    this.random = new SeededRandom(options.seed ?? 1);
    for (const id of [...options.voters, ...(options.observers ?? [])]) {
      this.disks.set(id, { hardState: { term: 0, vote: 0, commit: 0 }, snapshot: undefined, entries: [] });
      this.applied.set(id, []);
      this.readStates.set(id, []);
      this.start(id);
    }
  }

  private config(id: NodeId): RaftConfig {
    const o = this.options;
    const disk = this.disks.get(id)!;
    return {
      id,
      voters: o.voters,
      observers: o.observers ?? [],
      electionTicks: o.electionTicks ?? 10,
      heartbeatTicks: o.heartbeatTicks ?? 1,
      preVote: o.preVote ?? true,
      checkQuorum: o.checkQuorum ?? true,
      ...(o.maxEntriesPerAppend === undefined ? {} : { maxEntriesPerAppend: o.maxEntriesPerAppend }),
      ...(o.maxInflightAppends === undefined ? {} : { maxInflightAppends: o.maxInflightAppends }),
      ...(o.maxUncommittedEntries === undefined ? {} : { maxUncommittedEntries: o.maxUncommittedEntries }),
      random: new SeededRandom(this.random.int(1, 2 ** 31)),
      initial: { hardState: disk.hardState, snapshot: disk.snapshot, entries: [...disk.entries] },
    };
  }

  private start(id: NodeId): void {
    const config = this.config(id);
    this.nodes.set(id, this.options.create ? this.options.create(config) : new RaftCore(config));
  }

  node(id: NodeId): RaftCore {
    const n = this.nodes.get(id);
    assert(n !== undefined, `no node ${id}`);
    return n;
  }

  /** Crash and restart: volatile state is lost, the disk is kept. */
  restart(id: NodeId): void {
    this.queue = this.queue.filter((m) => m.to !== id && m.from !== id);
    this.trace.push(`restart ${id}`);
    const snap = this.disks.get(id)!.snapshot;
    // The state machine restarts from the snapshot (its data is the applied list as JSON).
    this.applied.set(id, snap === undefined ? [] : (JSON.parse(decoder.decode(snap.data)) as string[]));
    this.start(id);
  }

  /** Runs the node's Ready loop: persist, queue messages, apply, advance. */
  process(id: NodeId): void {
    const node = this.node(id);
    for (let guard = 0; node.hasReady(); guard++) {
      assert(guard < 1000, "ready loop did not settle");
      const rd = node.ready();
      const disk = this.disks.get(id)!;
      if (rd.softState) this.trace.push(`${id}: ${rd.softState.role} term=${rd.softState.term} leader=${rd.softState.leader}`);
      if (rd.snapshot) {
        disk.snapshot = rd.snapshot;
        disk.entries = [];
        this.applied.set(id, JSON.parse(decoder.decode(rd.snapshot.data)) as string[]);
        this.trace.push(`${id}: installed snapshot ${rd.snapshot.meta.index}/${rd.snapshot.meta.term}`);
      }
      if (rd.entries.length > 0) {
        const first = rd.entries[0]!.index;
        const base = disk.snapshot?.meta.index ?? 0;
        assert(first <= base + disk.entries.length + 1, "gap in persisted entries");
        disk.entries = [...disk.entries.slice(0, first - base - 1), ...rd.entries];
      }
      if (rd.hardState) disk.hardState = rd.hardState;
      for (const m of rd.messages) this.queue.push(m);
      const sm = this.applied.get(id)!;
      for (const e of rd.committedEntries) {
        sm.push(`${e.index}/${e.term}:${e.type === "noop" ? "noop" : text(e)}`);
      }
      if (rd.committedEntries.length > 0) this.trace.push(`${id}: applied ${formatEntries(rd.committedEntries)}`);
      for (const rs of rd.readStates) {
        this.readStates.get(id)!.push(rs);
        this.trace.push(`${id}: read-state ctx=${rs.context} index=${rs.index}`);
      }
      node.advance(rd);
    }
  }

  processAll(): void {
    for (const id of this.nodes.keys()) this.process(id);
  }

  tick(id: NodeId, times = 1): void {
    for (let k = 0; k < times; k++) {
      this.node(id).tick();
      this.process(id);
    }
  }

  tickAll(times = 1): void {
    for (let k = 0; k < times; k++) for (const id of this.nodes.keys()) this.tick(id);
  }

  /** Ticks `id` until it starts an election (at most 2 * electionTicks ticks). */
  campaign(id: NodeId): void {
    const limit = 2 * (this.options.electionTicks ?? 10);
    const node = this.node(id);
    const before = node.status();
    for (let k = 0; k < limit; k++) {
      this.tick(id);
      const s = node.status();
      if (s.role === "pre-candidate" || s.role === "candidate" || s.role === "leader" || s.term !== before.term) return;
    }
    assert(false, `node ${id} did not campaign within ${limit} ticks`);
  }

  cut(from: NodeId, to: NodeId): void {
    this.cuts.add(`${from}>${to}`);
  }

  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.cut(id, other);
      this.cut(other, id);
    }
  }

  heal(): void {
    this.cuts.clear();
  }

  /** Delivers the messages queued now (not those they cause). Returns how many were delivered. */
  deliverRound(filter: (m: Message) => boolean = () => true): number {
    const batch = this.queue.filter(filter);
    this.queue = this.queue.filter((m) => !filter(m));
    let delivered = 0;
    for (const m of batch) {
      if (this.cuts.has(`${m.from}>${m.to}`)) {
        this.trace.push(`drop ${formatMessage(m)}`);
        continue;
      }
      this.trace.push(formatMessage(m));
      this.node(m.to).step(m);
      this.process(m.to);
      delivered++;
    }
    return delivered;
  }

  /** Delivers until no message is left (bounded). */
  stabilize(filter?: (m: Message) => boolean): void {
    this.processAll();
    for (let round = 0; round < 100; round++) {
      const pending = filter ? this.queue.filter(filter).length : this.queue.length;
      if (pending === 0) return;
      this.deliverRound(filter);
    }
    assert(false, "cluster did not stabilize within 100 rounds");
  }

  /** Removes and returns the queued messages matching `filter` (to inspect or drop). */
  take(filter: (m: Message) => boolean = () => true): Message[] {
    const taken = this.queue.filter(filter);
    this.queue = this.queue.filter((m) => !filter(m));
    return taken;
  }

  /** Elects `id` (tick it into a campaign, then deliver everything). */
  elect(id: NodeId): void {
    this.campaign(id);
    this.stabilize();
    assert(this.node(id).status().role === "leader", () => `node ${id} was not elected: ${JSON.stringify(this.node(id).status())}`);
  }

  propose(id: NodeId, payload: string): void {
    const r = this.node(id).propose(data(payload));
    assert(r.ok, () => `proposal "${payload}" at ${id} refused: ${JSON.stringify(r)}`);
    this.process(id);
  }

  /** Compacts `id` at its applied index; the snapshot data is the applied list. */
  compact(id: NodeId): Snapshot | undefined {
    const node = this.node(id);
    const applied = node.status().applied;
    const sm = this.applied.get(id)!;
    const snap = node.compact(applied, encoder.encode(JSON.stringify(sm)));
    if (snap !== undefined) {
      const disk = this.disks.get(id)!;
      disk.snapshot = snap;
      const base = disk.entries[0]?.index ?? applied + 1;
      disk.entries = disk.entries.slice(Math.max(0, applied + 1 - base));
      this.trace.push(`${id}: compacted to ${applied}`);
    }
    return snap;
  }
}

/** A message with every field defaulted, for stepping nodes by hand. */
export function msg(fields: Partial<Message> & Pick<Message, "type" | "from" | "to" | "term">): Message {
  return { logIndex: 0, logTerm: 0, entries: [], commit: 0, reject: false, hintIndex: 0, hintTerm: 0, ...fields };
}

export function entry(index: number, term: number, payload = `e${index}`): Entry {
  return { index, term, type: "normal", data: data(payload) };
}

export interface LoneNodeOptions {
  id: NodeId;
  voters: readonly NodeId[];
  observers?: readonly NodeId[];
  term?: number;
  vote?: NodeId;
  commit?: number;
  /** Log terms by index, starting at index 1: [1, 1, 2] is 1/1 2/1 3/2. */
  logTerms?: readonly number[];
  electionTicks?: number;
  preVote?: boolean;
  checkQuorum?: boolean;
  seed?: number;
}

/** One node with a given durable state, to be stepped message by message. */
export function loneNode(o: LoneNodeOptions): RaftCore {
  const entries = (o.logTerms ?? []).map((term, k) => entry(k + 1, term));
  return new RaftCore({
    id: o.id,
    voters: o.voters,
    observers: o.observers ?? [],
    electionTicks: o.electionTicks ?? 10,
    heartbeatTicks: 1,
    preVote: o.preVote ?? true,
    checkQuorum: o.checkQuorum ?? true,
    random: new SeededRandom(o.seed ?? 7),
    initial: { hardState: { term: o.term ?? 0, vote: o.vote ?? 0, commit: o.commit ?? 0 }, entries },
  });
}

/** Takes the node's Ready, advances it, and returns its messages. */
export function drain(node: RaftCore): Message[] {
  if (!node.hasReady()) return [];
  const rd = node.ready();
  node.advance(rd);
  return [...rd.messages];
}

/**
 * The driver with the real Raft core, in one process: in-memory storage on MemoryDisks
 * (which outlive a driver, so "restart" is a new driver on the same disk) and an
 * in-process network that can cut nodes off. Fast ticks keep each test well under a
 * second or two.
 */
import { afterEach, describe, expect, it } from "vitest";
import { FlotillaError, SeededRandom } from "@flotilla/common";
import { silentLogger } from "@flotilla/common/logger";
import { RaftCore, type Message, type NodeId } from "@flotilla/raft";
import { RaftDriver, type RaftDriverOptions } from "./driver.js";
import type { KvRaftStorage } from "./storage.js";
import { MemoryDisk, openMemoryRaftStorage } from "./storage-memory.js";
import { AppendOnlyListMachine } from "./test-machine.js";
import type { RaftTransport } from "./transport.js";

const IDS: NodeId[] = [1, 2, 3];
const TICK_MS = 5;
const logger = silentLogger();

/** Delivers messages between drivers of one process on the next turn, unless cut. */
class LocalNetwork {
  readonly drivers = new Map<NodeId, RaftDriver>();
  private readonly cut = new Set<NodeId>();
  /** Called at send time, before delivery; tests check invariants there. */
  onSend: ((from: NodeId, m: Message) => void) | undefined;

  transport(from: NodeId): RaftTransport {
    return {
      send: (messages) => {
        for (const m of messages) {
          this.onSend?.(from, m);
          setImmediate(() => {
            if (this.cut.has(m.from) || this.cut.has(m.to)) return;
            this.drivers.get(m.to)?.receive(m);
          });
        }
      },
      close: async () => undefined,
    };
  }
  isolate(id: NodeId): void {
    this.cut.add(id);
  }
  heal(id: NodeId): void {
    this.cut.delete(id);
  }
}

interface Node {
  id: NodeId;
  driver: RaftDriver;
  machine: AppendOnlyListMachine;
  storage: KvRaftStorage;
  disk: MemoryDisk;
}

let network: LocalNetwork;
let nodes: Map<NodeId, Node>;
const fatal: unknown[] = [];

async function startNode(id: NodeId, disk = new MemoryDisk(), extra: Partial<RaftDriverOptions> = {}): Promise<Node> {
  const storage = await openMemoryRaftStorage(disk);
  const machine = new AppendOnlyListMachine();
  const driver = new RaftDriver({
    id,
    voters: new Map(IDS.map((i) => [i, `node-${i}:1`])),
    storage,
    transport: network.transport(id),
    stateMachine: machine,
    logger,
    createCore: (config) => new RaftCore(config),
    random: new SeededRandom(id * 7919),
    tickMs: TICK_MS,
    electionTicks: 10,
    heartbeatTicks: 1,
    onFatalError: (err) => fatal.push(err),
    ...extra,
  });
  network.drivers.set(id, driver);
  const node = { id, driver, machine, storage, disk };
  nodes.set(id, node);
  return node;
}

async function startCluster(extra: Partial<RaftDriverOptions> = {}): Promise<void> {
  for (const id of IDS) await startNode(id, new MemoryDisk(), extra);
}

async function stopNode(id: NodeId, leadership: "transfer" | "abandon" = "transfer"): Promise<void> {
  const node = nodes.get(id)!;
  await node.driver.stop({ leadership, transferTimeoutMs: 1000 });
  await node.storage.close();
  network.drivers.delete(id);
  nodes.delete(id);
}

async function waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs = 3000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, TICK_MS));
  }
}

function leaderAmong(ids: readonly NodeId[]): Node | undefined {
  const leaders = ids.map((id) => nodes.get(id)!).filter((n) => n.driver.status().role === "leader");
  if (leaders.length !== 1) return undefined;
  const leader = leaders[0]!;
  return ids.every((id) => nodes.get(id)!.driver.status().leader === leader.id) ? leader : undefined;
}

const waitLeader = (ids: readonly NodeId[] = IDS): Promise<Node> => waitFor(`a leader among ${ids.join(",")}`, () => leaderAmong(ids));
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const texts = (m: AppendOnlyListMachine): string[] => m.slice(0, m.size).map((i) => Buffer.from(i.data).toString());

afterEach(async () => {
  await Promise.all([...nodes.keys()].map((id) => stopNode(id, "abandon")));
  expect(fatal).toEqual([]);
  fatal.length = 0;
});

function fresh(): void {
  network = new LocalNetwork();
  nodes = new Map();
}

describe("RaftDriver with the real core", () => {
  it("rejects electionTicks <= heartbeatTicks at construction", async () => {
    fresh();
    await expect(startNode(1, new MemoryDisk(), { electionTicks: 2, heartbeatTicks: 2 })).rejects.toThrow(/electionTicks \(2\) must be greater than heartbeatTicks \(2\)/);
  });

  it("a proposal resolves once committed and applied on the leader, and every follower applies it", async () => {
    fresh();
    await startCluster();
    const leader = await waitLeader();
    const outcome = await leader.driver.propose(enc("hello"));
    expect(outcome.term).toBe(leader.driver.status().term);
    expect(texts(leader.machine)).toEqual(["hello"]);
    await waitFor("followers to apply", () => IDS.every((id) => nodes.get(id)!.machine.size === 1));
    for (const id of IDS) expect(nodes.get(id)!.machine.slice(0, 1)[0]!.index).toBe(outcome.index);
  });

  it("many concurrent proposals all commit, in one order on every node", async () => {
    fresh();
    await startCluster();
    const leader = await waitLeader();
    const outcomes = await Promise.all(Array.from({ length: 300 }, (_, i) => leader.driver.propose(enc(`p${i}`))));
    expect(new Set(outcomes.map((o) => o.index)).size).toBe(300);
    await waitFor("all nodes to apply 300", () => IDS.every((id) => nodes.get(id)!.machine.size === 300));
    const order = texts(leader.machine);
    for (const id of IDS) expect(texts(nodes.get(id)!.machine)).toEqual(order);
  });

  it("a follower refuses proposals and reads with NOT_CONTROLLER naming the leader's address", async () => {
    fresh();
    await startCluster();
    const leader = await waitLeader();
    const follower = nodes.get(IDS.find((id) => id !== leader.id)!)!;
    const err = await follower.driver.propose(enc("x")).catch((e: unknown) => e);
    expect(FlotillaError.is(err, "NOT_CONTROLLER")).toBe(true);
    expect((err as FlotillaError).leaderHint).toBe(`node-${leader.id}:1`);
  });

  it("persists before sending: every vote granted and every append acknowledged is already durable", async () => {
    fresh();
    const violations: string[] = [];
    network.onSend = (from, m) => {
      const storage = nodes.get(from)?.storage;
      if (!storage) return;
      if (m.type === "VoteResp" && !m.reject) {
        const hs = storage.hardState.current();
        if (hs?.term !== m.term || hs.vote !== m.to) violations.push(`node ${from} granted a vote to ${m.to} in term ${m.term} before storing it (stored ${JSON.stringify(hs)})`);
      }
      if (m.type === "AppendResp" && !m.reject && storage.log.lastIndex() < m.hintIndex) {
        violations.push(`node ${from} acknowledged index ${m.hintIndex} with only ${storage.log.lastIndex()} stored`);
      }
    };
    await startCluster();
    const leader = await waitLeader();
    await Promise.all(Array.from({ length: 50 }, (_, i) => leader.driver.propose(enc(`v${i}`))));
    await waitFor("all nodes to apply", () => IDS.every((id) => nodes.get(id)!.machine.size === 50));
    expect(violations).toEqual([]);
  });

  it("a proposal on a leader cut off from the quorum fails with NOT_CONTROLLER once another leader's entry commits at its index", async () => {
    fresh();
    await startCluster({ proposalTimeoutMs: 10_000 });
    const old = await waitLeader();
    network.isolate(old.id);
    const doomed = old.driver.propose(enc("lost")).catch((e: unknown) => e);
    const others = IDS.filter((id) => id !== old.id);
    const fresh2 = await waitLeader(others);
    await fresh2.driver.propose(enc("kept"));
    network.heal(old.id);
    const err = await doomed;
    expect(FlotillaError.is(err, "NOT_CONTROLLER"), String(err)).toBe(true);
    await waitFor("the old leader to apply the new leader's entry", () => texts(old.machine).includes("kept"));
    expect(texts(old.machine)).not.toContain("lost");
  });

  it("a proposal that cannot commit fails with REQUEST_TIMED_OUT after its timeout", async () => {
    fresh();
    await startCluster();
    const leader = await waitLeader();
    network.isolate(leader.id);
    const started = Date.now();
    const err = await leader.driver.propose(enc("stuck"), { timeoutMs: 150 }).catch((e: unknown) => e);
    expect(FlotillaError.is(err, "REQUEST_TIMED_OUT"), String(err)).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    network.heal(leader.id);
  });

  it("readIndex on the leader covers every proposal acknowledged before it", async () => {
    fresh();
    await startCluster();
    const leader = await waitLeader();
    const last = await leader.driver.propose(enc("w"));
    const index = await leader.driver.readIndex();
    expect(index).toBeGreaterThanOrEqual(last.index);
    expect(leader.driver.status().applied).toBeGreaterThanOrEqual(index);
  });

  it("compacts every N entries and a restarted node rebuilds its state from snapshot plus log", async () => {
    fresh();
    await startCluster({ snapshotEveryEntries: 20 });
    const leader = await waitLeader();
    for (let i = 0; i < 45; i++) await leader.driver.propose(enc(`s${i}`));
    await waitFor("all nodes to apply 45", () => IDS.every((id) => nodes.get(id)!.machine.size === 45));
    const follower = nodes.get(IDS.find((id) => id !== leader.id)!)!;
    expect(follower.storage.snapshot.current()?.meta.index).toBeGreaterThanOrEqual(20);
    expect(follower.storage.log.firstIndex()).toBe(follower.storage.snapshot.current()!.meta.index + 1);
    const expected = texts(leader.machine);
    const disk = follower.disk;
    await stopNode(follower.id);
    const restarted = await startNode(follower.id, disk, { snapshotEveryEntries: 20 });
    await waitFor("the restarted node to re-apply", () => restarted.machine.size === 45);
    expect(texts(restarted.machine)).toEqual(expected);
  });

  it("a follower that missed a compacted stretch of log catches up from the leader's snapshot", async () => {
    fresh();
    await startCluster({ snapshotEveryEntries: 10 });
    const leader = await waitLeader();
    const lagging = nodes.get(IDS.find((id) => id !== leader.id)!)!;
    network.isolate(lagging.id);
    for (let i = 0; i < 35; i++) await leader.driver.propose(enc(`m${i}`));
    expect(leader.storage.snapshot.current()?.meta.index).toBeGreaterThan(lagging.driver.status().lastIndex);
    network.heal(lagging.id);
    await waitFor("the lagging node to catch up", () => lagging.machine.size === 35, 5000);
    expect(texts(lagging.machine)).toEqual(texts(leader.machine));
    expect(lagging.storage.snapshot.current()).toBeDefined();
  });

  it("transferLeadership hands leadership to the named voter, and stop() on a leader hands it away", async () => {
    fresh();
    await startCluster();
    const leader = await waitLeader();
    const target = IDS.find((id) => id !== leader.id)!;
    await leader.driver.transferLeadership(target, { timeoutMs: 2000 });
    const next = await waitLeader();
    expect(next.id).toBe(target);
    await stopNode(target);
    // stop() returned only after the leadership moved: no election timeout of silence.
    const remaining = IDS.filter((id) => id !== target);
    expect(remaining.some((id) => nodes.get(id)!.driver.status().role === "leader")).toBe(true);
    const third = await waitLeader(remaining);
    expect(third.id).not.toBe(target);
    await expect(nodes.get(third.id)!.driver.propose(enc("after stop"))).resolves.toBeDefined();
  });
});

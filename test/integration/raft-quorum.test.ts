/**
 * Three real controller processes (packages/controller/src/raft/node-main.ts) on
 * 127.0.0.1: commits through the leader, leader crash (kill -9) and re-election, catch-up
 * of a restarted node, a crash of the whole quorum, and SIGTERM's controlled shutdown.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FlotillaError } from "../../packages/common/src/errors.js";
import { decodeHardState, encodeHardState } from "../../packages/controller/src/raft/codec.js";
import { LevelKvBackend } from "../../packages/controller/src/raft/storage-level.js";
import { RaftTestMachineClient } from "../../packages/controller/src/raft/test-machine-client.js";
import type { ReadResponse, StatusResponse } from "../../packages/controller/src/raft/test-machine-service.js";
import { freePorts, killAllProcesses, startTsProcess, type ChildHandle } from "../helpers/processes.js";

const NODE_MAIN = "packages/controller/src/raft/node-main.ts";
const IDS = [1, 2, 3] as const;
const WAIT_MS = 20_000;

let dataRoot: string;
let addresses: Map<number, string>;
let votersText: string;
const nodes = new Map<number, ChildHandle>();
let client: RaftTestMachineClient;

async function startNode(id: number): Promise<ChildHandle> {
  const node = await startTsProcess({
    name: `raft-node-${id}`,
    entry: NODE_MAIN,
    args: ["--node-id", String(id), "--voters", votersText, "--data-dir", path.join(dataRoot, `node-${id}`), "--snapshot-every", "50"],
    env: { FLOTILLA_LOG_LEVEL: "debug" },
    readyLine: /"event":"ready"/,
  });
  nodes.set(id, node);
  return node;
}

function addressOf(id: number): string {
  return addresses.get(id)!;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = WAIT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (let attempt = 0; attempt < 1000 && Date.now() < deadline; attempt++) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `; last error: ${String(last)}` : ""}`);
}

/** The one node that every live node agrees is the leader, with its status. */
async function agreedLeader(live: readonly number[]): Promise<{ id: number; status: StatusResponse }> {
  return waitFor(`a leader agreed on by nodes ${live.join(",")}`, async () => {
    const statuses = await Promise.all(live.map((id) => client.status(addressOf(id))));
    const leader = statuses.find((s) => s.role === "leader");
    if (!leader) return undefined;
    return statuses.every((s) => s.leader === leader.id && s.term === leader.term) ? { id: leader.id, status: leader } : undefined;
  });
}

function texts(read: ReadResponse): string[] {
  return read.items.map((i) => Buffer.from(i.data).toString());
}

function plainItems(read: ReadResponse): Array<[number, number, string]> {
  return read.items.map((i) => [i.index, i.term, Buffer.from(i.data).toString()]);
}

/** Waits until node `id`'s own applied list equals `expected` (it has caught up). */
async function waitCaughtUp(id: number, expected: ReadResponse): Promise<void> {
  await waitFor(`node ${id} to catch up to ${expected.total} items`, async () => {
    const local = await client.readAll(addressOf(id), "LOCAL");
    return local.total >= expected.total ? local : undefined;
  });
  const local = await client.readAll(addressOf(id), "LOCAL");
  expect(plainItems(local).slice(0, expected.total)).toEqual(plainItems(expected));
}

const acked: Array<{ index: number; term: number; text: string }> = [];

async function proposeText(text: string): Promise<void> {
  const r = await client.propose(new TextEncoder().encode(text), { deadlineMs: WAIT_MS, attemptsMax: 200 });
  expect(r.index).toBeGreaterThan(0);
  acked.push({ index: r.index, term: r.term, text });
}

/** Every acknowledged proposal sits at its index with its term, in order. */
function expectAllAcked(read: ReadResponse): void {
  const byIndex = new Map(read.items.map((i) => [i.index, i]));
  for (const a of acked) {
    const item = byIndex.get(a.index);
    expect(item, `acknowledged entry ${a.text} at index ${a.index}`).toBeDefined();
    expect([item!.term, Buffer.from(item!.data).toString()]).toEqual([a.term, a.text]);
  }
  const indexes = read.items.map((i) => i.index);
  expect(indexes).toEqual([...indexes].sort((x, y) => x - y));
}

describe("controller quorum of 3 real processes", () => {
  beforeAll(async () => {
    dataRoot = fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-raft-quorum-"));
    const ports = await freePorts(IDS.length);
    addresses = new Map(IDS.map((id, i) => [id, `127.0.0.1:${ports[i]}`]));
    votersText = IDS.map((id) => `${id}@${addressOf(id)}`).join(",");
    client = new RaftTestMachineClient(IDS.map(addressOf));
    await Promise.all(IDS.map(startNode));
  });

  afterAll(async () => {
    client?.close();
    await killAllProcesses();
    if (dataRoot) fs.rmSync(dataRoot, { recursive: true, force: true });
  });

  it("commits through the leader, survives kill -9 of the leader, catches up a restarted node, and keeps everything across a full crash", { timeout: 180_000 }, async () => {
    // 1. A proposal commits, following leader hints from whichever node the client asks.
    await proposeText("first");
    const first = await agreedLeader(IDS);
    const follower = IDS.find((id) => id !== first.id)!;
    const refused = await client.proposeAt(addressOf(follower), new TextEncoder().encode("to a follower")).catch((e: unknown) => e as FlotillaError);
    expect((refused as FlotillaError).errorName).toBe("NOT_CONTROLLER");
    expect((refused as FlotillaError).leaderHint).toBe(addressOf(first.id));
    expect((await client.status(addressOf(follower))).leaderAddress).toBe(addressOf(first.id));
    for (let i = 0; i < 60; i++) await proposeText(`before-crash-${i}`); // crosses a snapshot (every 50)

    // 2. kill -9 the leader: the other two elect a new one, and a proposal commits.
    const oldLeader = first.id;
    await nodes.get(oldLeader)!.kill("SIGKILL");
    const survivors = IDS.filter((id) => id !== oldLeader);
    const second = await agreedLeader(survivors);
    expect(second.id).not.toBe(oldLeader);
    expect(second.status.term).toBeGreaterThan(first.status.term);
    await proposeText("after-leader-crash");
    // Enough for the survivors to compact past everything the dead node holds, so it
    // can only catch up through an InstallSnapshot over gRPC.
    for (let i = 0; i < 60; i++) await proposeText(`while-down-${i}`);
    const afterCrash = await client.readLinearizable();
    expectAllAcked(afterCrash);

    // 3. The old leader restarts and catches up to the same applied list.
    await startNode(oldLeader);
    await waitCaughtUp(oldLeader, afterCrash);

    // 4. kill -9 all three, start all three: every committed entry is still there, in
    //    order, on every node, and the quorum still commits.
    await proposeText("before-full-crash");
    await Promise.all(IDS.map((id) => nodes.get(id)!.kill("SIGKILL")));
    await Promise.all(IDS.map(startNode));
    await agreedLeader(IDS);
    await proposeText("after-full-crash");
    const final = await client.readLinearizable();
    expectAllAcked(final);
    expect(texts(final)).toContain("first");
    for (const id of IDS) await waitCaughtUp(id, final);
  });

  it("SIGTERM on the leader hands leadership away and exits 0", { timeout: 60_000 }, async () => {
    const before = await agreedLeader(IDS);
    const exit = await nodes.get(before.id)!.kill("SIGTERM");
    expect(exit).toEqual({ code: 0, signal: null });
    const others = IDS.filter((id) => id !== before.id);
    // A transfer needs no election timeout of silence; allow one for slow machines.
    const after = await agreedLeader(others);
    expect(after.id).not.toBe(before.id);
    await proposeText("after-sigterm");
    await startNode(before.id);
    const final = await client.readLinearizable();
    expectAllAcked(final);
    await waitCaughtUp(before.id, final);
    const statuses = await client.statuses();
    for (const [address, s] of statuses) expect((s as FlotillaError).errorName, `node at ${address} answers`).toBeUndefined();
  });

  it("a node whose stored Raft state is corrupt refuses to start, naming the problem", { timeout: 60_000 }, async () => {
    const leader = await agreedLeader(IDS);
    const victim = IDS.find((id) => id !== leader.id)!;
    await nodes.get(victim)!.kill("SIGKILL");
    const kv = await LevelKvBackend.open(path.join(dataRoot, `node-${victim}`, "raft"));
    const current = new TextEncoder().encode("current");
    const hs = decodeHardState((await kv.get("hard-state", current))!);
    await kv.write([{ space: "hard-state", key: current, value: encodeHardState({ ...hs, commit: hs.commit + 1_000_000 }) }], { sync: true });
    await kv.close();
    const err = await startNode(victim).catch((e: unknown) => e as Error);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/STORAGE_CORRUPT: hard state commit index \d+ is beyond the last stored index \d+/);
  });
});

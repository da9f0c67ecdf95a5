/**
 * Consumer groups end to end, against one real `flotilla server` process and group members
 * that are real processes (test/helpers/group-member.ts, which logs every record it
 * processed and every commit acknowledged to a file, synchronously, so a SIGKILL loses
 * nothing that happened before it).
 *
 * One topic of 6 partitions, one story in steps (each `it` builds on the one before):
 * three members split the partitions and read every record exactly once; kill -9 of one
 * member while records flow moves its partitions to the others within the session timeout
 * and nothing is lost; a second group reads the same topic on its own; `groups describe`
 * shows the lag of records produced while nobody consumes; committed offsets survive a
 * restart of every process; reset-offsets is refused while members are active.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Admin, GroupAdmin, Producer } from "../../packages/client/src/index.js";
import { runFlotilla, spawnFlotilla } from "../helpers/cli.js";
import { freePorts, killAllProcesses, startTsProcess, type ChildHandle } from "../helpers/processes.js";

const TOPIC = "orders";
const PARTITIONS = 6;
const GROUP = "billing";
const OTHER_GROUP = "audit";
const SESSION_TIMEOUT_MS = 4_000;
const HEARTBEAT_INTERVAL_MS = 400;

let dataDir: string;
let eventsDir: string;
let port: number;
let server: ChildHandle | undefined;
let produced = 0;

const bootstrap = (): string => `127.0.0.1:${port}`;

interface MemberEvent {
  event: "record" | "committed" | "assigned" | "revoked" | "lost";
  pid: number;
  atMs: number;
  topic?: string;
  partition?: number;
  offset?: number;
  offsets?: { topic: string; partition: number; offset: number }[];
  assignment?: { topic: string; partition: number }[];
}

interface Member {
  name: string;
  handle: ChildHandle;
  eventsPath: string;
}

async function startServer(): Promise<ChildHandle> {
  return startTsProcess({
    name: "groups-node",
    entry: "packages/cli/src/main.ts",
    args: [
      "server",
      ...["node.id=1", "process.roles=broker,controller", `listeners=127.0.0.1:${port}`, `log.dirs=${dataDir}`].flatMap((o) => ["--override", o]),
      // One node: the offsets topic cannot have 3 replicas; few partitions keep start-up light.
      ...["offsets.topic.replication.factor=1", "offsets.topic.num.partitions=4", "group.min.session.timeout.ms=1000", "group.initial.rebalance.delay.ms=1500"].flatMap((o) => ["--override", o]),
    ],
    env: { FLOTILLA_LOG_LEVEL: "info" },
    readyLine: /"event":"ready"/,
    readyTimeoutMs: 30_000,
  });
}

async function startMember(name: string, groupId: string, extra: Record<string, unknown> = {}): Promise<Member> {
  const eventsPath = path.join(eventsDir, `${name}.jsonl`);
  const options = {
    bootstrapServers: bootstrap(),
    groupId,
    topics: [TOPIC],
    clientId: name,
    sessionTimeoutMs: SESSION_TIMEOUT_MS,
    heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS,
    autoCommitIntervalMs: 500,
    autoOffsetReset: "earliest",
    fetchMaxWaitMs: 200,
    ...extra,
  };
  const handle = await startTsProcess({
    name,
    entry: "test/helpers/group-member.ts",
    args: [JSON.stringify(options), eventsPath],
    env: { FLOTILLA_LOG_LEVEL: "info" },
    readyLine: /"event":"ready"/,
    readyTimeoutMs: 30_000,
  });
  return { name, handle, eventsPath };
}

function events(m: Member): MemberEvent[] {
  if (!fs.existsSync(m.eventsPath)) return [];
  return fs
    .readFileSync(m.eventsPath, "utf8")
    .split("\n")
    .filter((l) => l.trim().length > 0)
    .map((l) => JSON.parse(l) as MemberEvent);
}

/** The member's assignment as of its last rebalance event ([] before any). */
function currentAssignment(m: Member): string[] {
  const last = events(m)
    .filter((e) => e.event === "assigned" || e.event === "revoked" || e.event === "lost")
    .at(-1);
  return (last?.assignment ?? []).map((tp) => `${tp.topic}-${tp.partition}`).sort();
}

function recordKeys(ms: readonly Member[]): string[] {
  return ms.flatMap((m) => events(m).filter((e) => e.event === "record").map((e) => `${e.partition}/${e.offset}`));
}

/** Polls `check` every 200 ms until it returns true, or fails with `what` after `timeoutMs`. */
async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** How many members the group has now. */
async function describeMembers(groupId: string): Promise<number> {
  const groups = new GroupAdmin({ bootstrapServers: bootstrap() });
  try {
    const d = await groups.describeGroup(groupId);
    return d.state === "Stable" ? d.members.length : -1;
  } finally {
    await groups.close();
  }
}

async function produce(count: number): Promise<void> {
  const producer = new Producer({ bootstrapServers: bootstrap(), lingerMs: 2 });
  try {
    const base = produced;
    await producer.send({ topic: TOPIC, messages: Array.from({ length: count }, (_, i) => ({ key: `k${(base + i) % 97}`, value: `v${base + i}` })) });
    produced += count;
  } finally {
    await producer.close();
  }
}

/** Every offset of every partition up to the high watermark, as "partition/offset". */
async function allOffsets(): Promise<string[]> {
  const admin = new Admin({ bootstrapServers: bootstrap() });
  try {
    const ranges = await admin.fetchTopicOffsets(TOPIC);
    return ranges.flatMap((r) => Array.from({ length: r.high - r.low }, (_, i) => `${r.partition}/${r.low + i}`));
  } finally {
    await admin.close();
  }
}

describe("consumer groups", () => {
  let members: Member[] = [];

  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-groups-"));
    eventsDir = fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-groups-events-"));
    [port] = (await freePorts(1)) as [number];
    server = await startServer();
    const admin = new Admin({ bootstrapServers: bootstrap() });
    try {
      await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: PARTITIONS, replicationFactor: 1 }] });
    } finally {
      await admin.close();
    }
  }, 60_000);

  afterAll(async () => {
    for (const m of members) await m.handle.kill("SIGKILL").catch(() => undefined);
    await server?.kill("SIGKILL").catch(() => undefined);
    await killAllProcesses();
    fs.rmSync(dataDir, { recursive: true, force: true });
    fs.rmSync(eventsDir, { recursive: true, force: true });
  });

  it("three members split 6 partitions, each owned by exactly one, and read every record exactly once", async () => {
    await produce(600);
    members = await Promise.all(["m1", "m2", "m3"].map((n) => startMember(n, GROUP)));
    await waitFor(
      "every partition owned by exactly one of three members",
      () => {
        const owned = members.map(currentAssignment);
        const flat = owned.flat().sort();
        return owned.every((o) => o.length === 2) && flat.length === PARTITIONS && new Set(flat).size === PARTITIONS;
      },
      60_000,
    );
    const expected = await allOffsets();
    expect(expected).toHaveLength(600);
    await waitFor("600 records read", () => new Set(recordKeys(members)).size === 600, 60_000);
    const read = recordKeys(members);
    // Exactly once: eager rebalances while members joined committed before revoking.
    expect(read.length).toBe(600);
    expect([...new Set(read)].sort()).toEqual([...expected].sort());
  }, 150_000);

  it("kill -9 of a member while records flow: its partitions move once the session times out, nothing is lost", async () => {
    const victim = members[2] as Member;
    const survivors = members.slice(0, 2);
    const victimPartitions = currentAssignment(victim);
    let producing = true;
    const flow = (async () => {
      // Bounded: stops when the test says so, or after 400 rounds.
      for (let i = 0; producing && i < 400; i++) {
        await produce(12);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    await new Promise((r) => setTimeout(r, 1500));
    const lastCommitted = new Map<string, number>();
    await victim.handle.kill("SIGKILL");
    const killedAtMs = Date.now();
    for (const e of events(victim)) if (e.event === "committed") for (const o of e.offsets ?? []) lastCommitted.set(`${o.partition}`, o.offset);

    await waitFor(
      "the two survivors owning all 6 partitions",
      () => {
        const flat = survivors.flatMap(currentAssignment);
        return flat.length === PARTITIONS && new Set(flat).size === PARTITIONS;
      },
      SESSION_TIMEOUT_MS + 20_000,
    );
    const movedAfterMs = Date.now() - killedAtMs;
    // Detection takes the session timeout; then one rebalance (the survivors learn of it
    // within a heartbeat interval). Generous slack for a loaded machine.
    expect(movedAfterMs).toBeLessThan(SESSION_TIMEOUT_MS + 15_000);
    producing = false;
    await flow;

    const expected = await allOffsets();
    await waitFor("every produced record read by someone", () => new Set(recordKeys(members)).size === expected.length, 60_000);
    const all = recordKeys(members);
    expect([...new Set(all)].sort()).toEqual([...expected].sort());

    // Duplicates: only records of the victim's partitions that it read after its last
    // acknowledged commit, read again by their new owner.
    const counts = new Map<string, number>();
    for (const k of all) counts.set(k, (counts.get(k) ?? 0) + 1);
    const duplicates = [...counts].filter(([, n]) => n > 1).map(([k]) => k);
    for (const d of duplicates) {
      const [partition, offset] = d.split("/").map(Number) as [number, number];
      expect(victimPartitions).toContain(`${TOPIC}-${partition}`);
      expect(offset).toBeGreaterThanOrEqual(lastCommitted.get(`${partition}`) ?? 0);
      expect(counts.get(d)).toBe(2);
    }
    // The new owners started at the victim's last commit or later (a commit it made just
    // before the kill may not have reached its file), never before.
    for (const p of victimPartitions) {
      const partition = Number(p.slice(TOPIC.length + 1));
      const firstBySurvivor = survivors
        .flatMap((m) => events(m).filter((e) => e.event === "record" && e.partition === partition && e.atMs >= killedAtMs))
        .map((e) => e.offset as number)
        .sort((a, b) => a - b)[0];
      if (firstBySurvivor !== undefined) expect(firstBySurvivor).toBeGreaterThanOrEqual(lastCommitted.get(`${partition}`) ?? 0);
    }
    console.log(`kill -9: partitions moved after ${movedAfterMs} ms (session timeout ${SESSION_TIMEOUT_MS} ms); ${expected.length} records, ${duplicates.length} read twice`);
    members = survivors;
  }, 150_000);

  it("a second group reads the same topic on its own, from the beginning", async () => {
    const audit = await startMember("audit-1", OTHER_GROUP, { partitionAssigners: ["cooperative-sticky"] });
    members.push(audit);
    const expected = await allOffsets();
    await waitFor("the audit group to read every record", () => new Set(recordKeys([audit])).size === expected.length, 60_000);
    expect(recordKeys([audit]).length).toBe(expected.length);
    const list = await runFlotilla(["groups", "list", "--bootstrap-server", bootstrap()]);
    expect(list.code).toBe(0);
    expect(list.stdout.split("\n")).toEqual(expect.arrayContaining([GROUP, OTHER_GROUP]));
  }, 120_000);

  it("flotilla consume --group reads as a member and commits what it printed; run again, it prints only new records and commits on Ctrl-C", async () => {
    const expected = await allOffsets();
    const flags = ["consume", "--topic", TOPIC, "--group", "cli-readers", "--bootstrap-server", bootstrap(), "--format", "json"];
    const first = await runFlotilla([...flags, "--from-beginning", "--max-messages", String(expected.length)], { timeoutMs: 60_000 });
    expect(first.code, first.stderr).toBe(0);
    const printed = first.stdout.trim().split("\n").map((l) => JSON.parse(l) as { partition: number; offset: number });
    expect(printed.map((r) => `${r.partition}/${r.offset}`).sort()).toEqual([...expected].sort());
    expect(first.stderr).toContain(`Processed a total of ${expected.length} messages`);

    // Run again (still --from-beginning, which only applies without committed offsets): it
    // prints only the 5 records produced meanwhile; on Ctrl-C it commits them and leaves.
    const running = spawnFlotilla([...flags, "--from-beginning"]);
    try {
      await waitFor("the CLI member to own the partitions", async () => (await describeMembers("cli-readers")) === 1, 30_000);
      await produce(5);
      await running.waitForStdout(/(.*\n){5}/, 30_000);
      const status = await running.stop("SIGINT");
      expect(status.code).toBe(0);
    } finally {
      await running.stop("SIGKILL").catch(() => undefined);
    }
    expect(running.stdout().trim().split("\n")).toHaveLength(5);
    const groups = new GroupAdmin({ bootstrapServers: bootstrap() });
    const admin = new Admin({ bootstrapServers: bootstrap() });
    try {
      const ends = await admin.fetchTopicOffsets(TOPIC);
      expect((await groups.fetchOffsets("cli-readers")).map((o) => o.offset)).toEqual(ends.map((e) => e.high));
      expect((await groups.describeGroup("cli-readers")).members).toHaveLength(0);
    } finally {
      await Promise.all([groups.close(), admin.close()]);
    }
  }, 120_000);

  it("groups describe shows the lag of records produced while nobody consumes; reset-offsets is refused while members are active", async () => {
    const refused = await runFlotilla(["groups", "reset-offsets", "--group", GROUP, "--topic", TOPIC, "--to-earliest", "--execute", "--bootstrap-server", bootstrap()]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/NON_EMPTY_GROUP.*active members/);

    // Clean stops commit what was read and leave the group.
    const statuses = await Promise.all(members.map((m) => m.handle.kill("SIGTERM", 20_000)));
    expect(statuses.map((st) => st.code)).toEqual(members.map(() => 0));
    members = [];
    await produce(90);
    const described = await runFlotilla(["groups", "describe", "--group", GROUP, "--format", "json", "--bootstrap-server", bootstrap()]);
    expect(described.code).toBe(0);
    const rows = described.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { partition: number; currentOffset: number; logEndOffset: number; lag: number; consumerId: string | null });
    expect(rows.map((r) => r.partition).sort()).toEqual([0, 1, 2, 3, 4, 5]);
    expect(rows.reduce((n, r) => n + r.lag, 0)).toBe(90);
    for (const r of rows) expect(r.lag).toBe(r.logEndOffset - r.currentOffset);
    const text = await runFlotilla(["groups", "describe", "--group", GROUP, "--bootstrap-server", bootstrap()]);
    expect(text.stdout.split("\n")[0]).toMatch(/^GROUP\s+TOPIC\s+PARTITION\s+CURRENT-OFFSET\s+LOG-END-OFFSET\s+LAG\s+CONSUMER-ID\s+HOST\s+CLIENT-ID$/);
  }, 120_000);

  it("committed offsets survive a restart of every process; a restarted member reads only what it had not", async () => {
    const groups = new GroupAdmin({ bootstrapServers: bootstrap() });
    const before = await groups.fetchOffsets(GROUP);
    const beforeAudit = await groups.fetchOffsets(OTHER_GROUP);
    await groups.close();
    expect(before).toHaveLength(PARTITIONS);

    await server!.kill("SIGKILL");
    server = await startServer();

    const after = new GroupAdmin({ bootstrapServers: bootstrap() });
    try {
      expect(await after.fetchOffsets(GROUP)).toEqual(before);
      expect(await after.fetchOffsets(OTHER_GROUP)).toEqual(beforeAudit);
    } finally {
      await after.close();
    }
    const committed = new Map(before.map((o) => [o.partition, o.offset]));
    const m = await startMember("m-restarted", GROUP);
    members.push(m);
    const expected = (await allOffsets()).filter((k) => {
      const [p, o] = k.split("/").map(Number) as [number, number];
      return o >= (committed.get(p) ?? 0);
    });
    expect(expected).toHaveLength(90);
    await waitFor("the 90 records produced while the group was away", () => new Set(recordKeys([m])).size >= 90, 60_000);
    await new Promise((r) => setTimeout(r, 1000));
    expect(recordKeys([m]).sort()).toEqual(expected.sort());
  }, 150_000);
});

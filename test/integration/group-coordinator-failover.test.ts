/**
 * Group coordinator failover with real processes on loopback: three combined nodes (broker +
 * controller voter), `__consumer_offsets` with 3 replicas, a topic with 3 replicas, and a
 * group of two members that are their own processes (test/helpers/group-member.ts, which
 * logs every record processed and every commit acknowledged, synchronously).
 *
 * While records are produced and consumed, the node that FindCoordinator names for the
 * group is killed with SIGKILL. The group must find the new coordinator (the new leader of
 * partition abs(javaHash(group)) % N of `__consumer_offsets`, which rebuilt the group from
 * its replica of that partition) and carry on from its committed offsets:
 * - no acknowledged record is missing from what the members processed;
 * - commits acknowledged by the dead coordinator were replicated, not lost: the new one
 *   answers them, and a member that is assigned a partition starts at or after every commit
 *   of it acknowledged before; a member never reads a partition backwards between rebalances
 *   (so a record is read twice only after a rebalance, from progress that was not committed);
 * - once everything is consumed, the committed offsets equal the log end offsets.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Admin, GroupAdmin, Producer } from "../../packages/client/src/index.js";
import { CoordinatorConnection } from "../../packages/client/src/group/coordinator-connection.js";
import { COORDINATOR_KEY_TYPE_GROUP } from "../../packages/protocol/src/index.js";
import { startCombinedCluster, type CombinedCluster } from "../helpers/combined-cluster.js";
import { killAllProcesses, startTsProcess, type ChildHandle } from "../helpers/processes.js";

const TOPIC = "payments";
const PARTITIONS = 4;
const GROUP = "settlement";
const OFFSETS_PARTITIONS = 3;
const OFFSETS_TOPIC = "__consumer_offsets";
const BROKER_SESSION_TIMEOUT_MS = 3_000;
const GROUP_SESSION_TIMEOUT_MS = 5_000;
const HEARTBEAT_INTERVAL_MS = 400;
const AUTO_COMMIT_INTERVAL_MS = 500;

let cluster: CombinedCluster | undefined;
let eventsDir: string;
const members: { name: string; handle: ChildHandle; eventsPath: string }[] = [];

/** The cluster, once beforeAll started it. */
const c = (): CombinedCluster => {
  if (!cluster) throw new Error("the cluster did not start (see beforeAll)");
  return cluster;
};
/** Bootstrap over the nodes still alive, so no client starts at the dead one. */
const bootstrap = (): string => {
  const { brokerIds, isRunning, address } = c();
  return brokerIds.filter((id) => isRunning(id)).map(address).join(",");
};

/** Java's String.hashCode (UTF-16 code units), written here to check the product's placement independently. */
function javaHash(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(h, 31) + s.charCodeAt(i)) | 0;
  return h;
}

async function startMember(name: string): Promise<void> {
  const eventsPath = path.join(eventsDir, `${name}.jsonl`);
  const options = {
    bootstrapServers: c().bootstrap(),
    groupId: GROUP,
    topics: [TOPIC],
    clientId: name,
    sessionTimeoutMs: GROUP_SESSION_TIMEOUT_MS,
    heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS,
    autoCommitIntervalMs: AUTO_COMMIT_INTERVAL_MS,
    autoOffsetReset: "earliest",
    fetchMaxWaitMs: 200,
    metadataMaxAgeMs: 2_000,
  };
  const handle = await startTsProcess({
    name,
    entry: "test/helpers/group-member.ts",
    args: [JSON.stringify(options), eventsPath],
    env: { FLOTILLA_LOG_LEVEL: "info" },
    readyLine: /"event":"ready"/,
    readyTimeoutMs: 60_000,
  });
  members.push({ name, handle, eventsPath });
}

interface MemberEvent {
  event: "record" | "committed" | "assigned" | "revoked" | "lost";
  pid: number;
  atMs: number;
  partition?: number;
  offset?: number;
  value?: string | null;
  offsets?: { topic: string; partition: number; offset: number }[];
  assignment?: { topic: string; partition: number }[];
}

function events(eventsPath: string): MemberEvent[] {
  if (!fs.existsSync(eventsPath)) return [];
  return fs
    .readFileSync(eventsPath, "utf8")
    .split("\n")
    .filter((l) => l.trim().length > 0)
    .map((l) => JSON.parse(l) as MemberEvent);
}

const allEvents = (): MemberEvent[] => members.flatMap((m) => events(m.eventsPath));
const records = (): MemberEvent[] => allEvents().filter((e) => e.event === "record");

function currentAssignment(eventsPath: string): string[] {
  const last = events(eventsPath)
    .filter((e) => e.event === "assigned" || e.event === "revoked" || e.event === "lost")
    .at(-1);
  return (last?.assignment ?? []).map((tp) => `${tp.topic}-${tp.partition}`).sort();
}

/** FindCoordinator for the group, asked of one live node. */
async function findCoordinator(): Promise<number> {
  const id = c().brokerIds.find((n) => c().isRunning(n));
  if (id === undefined) throw new Error("no node is running to ask FindCoordinator");
  const conn = new CoordinatorConnection(c().address(id), "coordinator-failover-test");
  try {
    const res = await conn.findCoordinator({ key: GROUP, keyType: COORDINATOR_KEY_TYPE_GROUP }, { timeoutMs: 5_000 });
    if (res.errorCode !== 0) throw new Error(`FindCoordinator at node ${id}: error ${res.errorCode} ${res.errorMessage}`);
    return res.nodeId;
  } finally {
    conn.close();
  }
}

async function committedOffsets(): Promise<Map<number, number>> {
  const groups = new GroupAdmin({ bootstrapServers: bootstrap(), requestTimeoutMs: 5_000 });
  try {
    return new Map((await groups.fetchOffsets(GROUP)).map((o) => [o.partition, o.offset]));
  } finally {
    await groups.close();
  }
}

async function logEndOffsets(): Promise<Map<number, number>> {
  const a = new Admin({ bootstrapServers: bootstrap() });
  try {
    return new Map((await a.fetchTopicOffsets(TOPIC)).map((r) => [r.partition, r.high]));
  } finally {
    await a.close();
  }
}

beforeAll(async () => {
  eventsDir = fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-coordinator-failover-events-"));
  cluster = await startCombinedCluster({
    name: "coordinator-failover",
    nodes: 3,
    overrides: [
      `broker.session.timeout.ms=${BROKER_SESSION_TIMEOUT_MS}`,
      "offsets.topic.replication.factor=3",
      `offsets.topic.num.partitions=${OFFSETS_PARTITIONS}`,
      "group.min.session.timeout.ms=1000",
      "group.initial.rebalance.delay.ms=500",
    ],
  });
}, 120_000);

afterAll(async () => {
  for (const m of members) await m.handle.kill("SIGKILL").catch(() => undefined);
  await cluster?.destroy();
  await killAllProcesses();
  // KEEP_EVENTS=1 keeps the members' event files for a look after a failure.
  if (!process.env.KEEP_EVENTS) fs.rmSync(eventsDir, { recursive: true, force: true });
});

describe("group coordinator failover (3 combined nodes, offsets topic with 3 replicas)", () => {
  it("kill -9 of the coordinator's node: the group finds the new coordinator and carries on from its committed offsets", async () => {
    const { waitFor, describeTopic } = c();
    await c().waitForBrokersUnfenced(60_000);
    await c().createTopic(TOPIC, { partitions: PARTITIONS, configs: { "min.insync.replicas": "2" } }, 60_000);

    // Records flow for the whole run: sequential acks=all sends; a value is "acknowledged"
    // once its send resolved. Sends that fail around the kill are retried by the loop with
    // new values (the failed ones may or may not be stored; only acknowledged ones count).
    const acknowledged: string[] = [];
    let sendFailures = 0;
    let producing = true;
    const producer = new Producer({ bootstrapServers: c().bootstrap(), lingerMs: 2, deliveryTimeoutMs: 30_000, requestTimeoutMs: 3_000 });
    const flow = (async () => {
      let n = 0;
      // Bounded by count and by the test's flag.
      for (let round = 0; producing && round < 3_000; round++) {
        const values = Array.from({ length: 8 }, () => `v${n++}`);
        try {
          await producer.send({ topic: TOPIC, messages: values.map((v, j) => ({ key: `k${(n + j) % 53}`, value: v })) });
          acknowledged.push(...values);
        } catch {
          sendFailures++;
        }
        await new Promise((r) => setTimeout(r, 40));
      }
    })();

    try {
      await Promise.all(["member-1", "member-2"].map(startMember));
      await waitFor(
        "both members owning 2 partitions each",
        () => {
          const owned = members.map((m) => currentAssignment(m.eventsPath));
          const flat = owned.flat();
          return owned.every((o) => o.length === 2) && new Set(flat).size === PARTITIONS;
        },
        90_000,
      );
      await waitFor("records read and commits acknowledged by both members", () => members.every((m) => events(m.eventsPath).some((e) => e.event === "committed")) && records().length >= 200, 60_000);

      // The coordinator as FindCoordinator names it, checked against placement: the leader of
      // partition abs(javaHash(group)) % N of the offsets topic.
      const offsetsPartition = Math.abs(javaHash(GROUP)) % OFFSETS_PARTITIONS;
      const coordinator = await waitFor("FindCoordinator to answer", findCoordinator, 30_000);
      const offsetsBefore = (await describeTopic(OFFSETS_TOPIC)).partitions.find((p) => p.partition === offsetsPartition)!;
      expect(offsetsBefore.replicas.slice().sort()).toEqual(c().nodeIds);
      expect(coordinator).toBe(offsetsBefore.leader);
      // Let the offsets partition's ISR hold all three, so the new leader has every commit.
      await waitFor(`ISR of ${OFFSETS_TOPIC}-${offsetsPartition} with 3 replicas`, async () => (await describeTopic(OFFSETS_TOPIC)).partitions.find((p) => p.partition === offsetsPartition)!.isr.length === 3, 30_000);
      await new Promise((r) => setTimeout(r, 1_000));

      // Kill. The last commit before it, per partition: the highest offset any member had an
      // acknowledgement for at that moment (events are written before the member goes on).
      await c().stop(coordinator, "SIGKILL");
      const killedAtMs = Date.now();
      const lastCommittedAtKill = new Map<number, number>();
      for (const e of allEvents()) {
        if (e.event !== "committed") continue;
        for (const o of e.offsets ?? []) lastCommittedAtKill.set(o.partition, Math.max(lastCommittedAtKill.get(o.partition) ?? 0, o.offset));
      }
      const readBeforeKill = records().length;
      const acknowledgedAtKill = acknowledged.length;

      // The new coordinator: FindCoordinator names another node, which is the new leader of
      // the same offsets partition.
      const newCoordinator = await waitFor(
        "FindCoordinator to name the new leader of the offsets partition",
        async () => {
          const id = await findCoordinator();
          const leader = (await describeTopic(OFFSETS_TOPIC)).partitions.find((p) => p.partition === offsetsPartition)!.leader;
          return id !== coordinator && id === leader && c().isRunning(id) ? id : undefined;
        },
        BROKER_SESSION_TIMEOUT_MS + 60_000,
      );
      const coordinatorMovedAfterMs = Date.now() - killedAtMs;
      // Commits the dead coordinator acknowledged were replicated: the new one has them all.
      const committedAtNew = await waitFor("OffsetFetch at the new coordinator", committedOffsets, 60_000);
      for (const [p, o] of lastCommittedAtKill) expect(committedAtNew.get(p), `committed offset of ${TOPIC}-${p} at the new coordinator`).toBeGreaterThanOrEqual(o);

      // The group carries on: both members commit through the new coordinator and read records
      // produced after the kill.
      await waitFor("commits acknowledged after the kill by both members", () => members.every((m) => events(m.eventsPath).some((e) => e.event === "committed" && e.atMs > killedAtMs + 500)), 90_000);
      await waitFor("records produced after the kill read", () => records().length >= readBeforeKill + 200 && acknowledged.length >= acknowledgedAtKill + 200, 90_000);
      const described = await waitFor(
        "the group Stable at the new coordinator with both members",
        async () => {
          const groups = new GroupAdmin({ bootstrapServers: bootstrap(), requestTimeoutMs: 5_000 });
          try {
            const d = await groups.describeGroup(GROUP);
            return d.state === "Stable" && d.members.length === 2 ? d : undefined;
          } finally {
            await groups.close();
          }
        },
        60_000,
      );
      expect(described.coordinatorId).toBe(newCoordinator);

      // Make the group start partitions from the new coordinator's committed offsets: kill -9
      // member-2; member-1 rejoins there (a new generation), takes all partitions and asks
      // OffsetFetch where to start the ones it did not own.
      const [survivor, victim] = members as [(typeof members)[number], (typeof members)[number]];
      const victimPartitions = currentAssignment(victim.eventsPath).map((tp) => Number(tp.slice(TOPIC.length + 1)));
      await victim.handle.kill("SIGKILL");
      const memberKilledAtMs = Date.now();
      const lastCommittedAtMemberKill = new Map<number, number>();
      for (const e of events(victim.eventsPath)) {
        if (e.event !== "committed") continue;
        for (const o of e.offsets ?? []) lastCommittedAtMemberKill.set(o.partition, Math.max(lastCommittedAtMemberKill.get(o.partition) ?? 0, o.offset));
      }
      await waitFor("the survivor owning all partitions", () => currentAssignment(survivor.eventsPath).length === PARTITIONS, GROUP_SESSION_TIMEOUT_MS + 60_000);
      const takeoverAfterMs = Date.now() - memberKilledAtMs;
      for (const p of victimPartitions) {
        const first = events(survivor.eventsPath)
          .filter((e) => e.event === "record" && e.partition === p && e.atMs >= memberKilledAtMs)
          .map((e) => e.offset!)
          .sort((a, b) => a - b)[0];
        if (first !== undefined) expect(first, `survivor's first offset of ${TOPIC}-${p}`).toBeGreaterThanOrEqual(lastCommittedAtMemberKill.get(p) ?? 0);
      }
      await waitFor("records produced after the member kill read", () => records().some((e) => e.atMs > memberKilledAtMs + 1_000), 60_000);

      producing = false;
      await flow;
      await producer.close();

      // Everything acknowledged is read; then the committed offsets catch up with the log ends.
      await waitFor(
        "every acknowledged record read",
        () => {
          const read = new Set(records().map((e) => e.value));
          return acknowledged.every((v) => read.has(v));
        },
        90_000,
      );
      const ends = await logEndOffsets();
      const endsAfterProduce = [...ends.entries()].sort((a, b) => a[0] - b[0]);
      await waitFor(
        "committed offsets equal to the log end offsets",
        async () => {
          const committed = await committedOffsets();
          return endsAfterProduce.every(([p, end]) => committed.get(p) === end);
        },
        60_000,
      );
      // Nothing new was produced meanwhile: the log ends did not move.
      expect([...(await logEndOffsets()).entries()].sort((a, b) => a[0] - b[0])).toEqual(endsAfterProduce);

      // Every offset of every partition was read, and the values acknowledged are all there.
      const all = records();
      const byKey = new Map<string, number>();
      for (const e of all) byKey.set(`${e.partition}/${e.offset}`, (byKey.get(`${e.partition}/${e.offset}`) ?? 0) + 1);
      const expectedKeys = endsAfterProduce.flatMap(([p, end]) => Array.from({ length: end }, (_, o) => `${p}/${o}`));
      const missingOffsets = expectedKeys.filter((k) => !byKey.has(k));
      expect(missingOffsets, "offsets never read by the group").toEqual([]);
      const readValues = new Set(all.map((e) => e.value));
      expect(acknowledged.filter((v) => !readValues.has(v)), "acknowledged records never read").toEqual([]);

      // Duplicates come only from progress that was not committed: every time a member was
      // assigned a partition, its first read there is at or after every commit of that
      // partition acknowledged (to any member, by any coordinator) before the assignment.
      // A re-read below that would mean a commit was lost or ignored. (Re-reads from
      // uncommitted progress are at-least-once and allowed: a commit on revoke can fail while
      // the coordinator moves.)
      const duplicates = [...byKey].filter(([, c]) => c > 1);
      const commitsAcked = allEvents()
        .filter((e) => e.event === "committed")
        .flatMap((e) => (e.offsets ?? []).map((o) => ({ partition: o.partition, offset: o.offset, atMs: e.atMs })));
      const startsBelowCommit: string[] = [];
      for (const m of members) {
        const evs = events(m.eventsPath);
        for (const a of evs.filter((e) => e.event === "assigned")) {
          for (const tp of a.assignment ?? []) {
            const first = evs.find((e) => e.event === "record" && e.partition === tp.partition && e.atMs >= a.atMs);
            if (!first) continue;
            const floor = Math.max(0, ...commitsAcked.filter((c) => c.partition === tp.partition && c.atMs < a.atMs).map((c) => c.offset));
            if (first.offset! < floor) startsBelowCommit.push(`${m.name} assigned ${TOPIC}-${tp.partition} at ${a.atMs}: first read offset ${first.offset} at ${first.atMs}, below the commit ${floor} acknowledged before`);
          }
        }
      }
      expect(startsBelowCommit, "a member started a partition below a commit acknowledged before it was assigned it").toEqual([]);
      // And while a member owns a partition it never goes back: each read is past the previous
      // one (a leader change or a retried fetch must not deliver records again).
      const rewinds: string[] = [];
      for (const m of members) {
        const lastRead = new Map<number, number>();
        for (const e of events(m.eventsPath)) {
          if (e.event === "assigned" || e.event === "revoked" || e.event === "lost") lastRead.clear();
          if (e.event !== "record") continue;
          const prev = lastRead.get(e.partition!);
          if (prev !== undefined && e.offset! <= prev) rewinds.push(`${m.name} read ${TOPIC}-${e.partition} offset ${e.offset} at ${e.atMs} after offset ${prev}, with no rebalance between`);
          lastRead.set(e.partition!, e.offset!);
        }
      }
      expect(rewinds, "a member read a partition's records again without a rebalance").toEqual([]);
      const extraReads = duplicates.reduce((n, [, c]) => n + c - 1, 0);
      console.log(
        `coordinator failover: node ${coordinator} killed, node ${newCoordinator} coordinates after ${coordinatorMovedAfterMs} ms; ` +
          `then ${victim.name} killed, ${survivor.name} owned its partitions ${JSON.stringify(victimPartitions)} after ${takeoverAfterMs} ms; ` +
          `${acknowledged.length} records acknowledged (${sendFailures} failed sends), ${all.length} reads of ${expectedKeys.length} offsets, ` +
          `${duplicates.length} offsets read more than once (${extraReads} extra reads), none below a commit acknowledged before the reader was assigned the partition`,
      );
    } finally {
      producing = false;
      await flow.catch(() => undefined);
      await producer.close().catch(() => undefined);
    }
  }, 420_000);
});

/**
 * kcat's balanced consumer (`kcat -G`, librdkafka's high-level KafkaConsumer: FindCoordinator,
 * JoinGroup, SyncGroup, Heartbeat, OffsetFetch, OffsetCommit, LeaveGroup over the Kafka wire
 * protocol) against a real Flotilla node, resuming from its committed offsets after the node
 * restarts.
 *
 * 1. 30 keyed records go to a 3-partition topic with `kcat -P`; a plain `kcat -C -e` reads
 *    them back as the ground truth (partition, offset, payload).
 * 2. `kcat -G` consumes 12 of them (`-c 12`) and exits; on close librdkafka commits the
 *    offsets of everything it handed out (enable.auto.commit, committed synchronously in
 *    rd_kafka_consumer_close before LeaveGroup).
 * 3. The node restarts (SIGTERM, then start on the same data): its coordinator rebuilds the
 *    group from __consumer_offsets. Flotilla's own GroupAdmin (gRPC) reads the committed
 *    offsets: per partition, one past the last record of step 2 (partitions step 2 did not
 *    read have none).
 * 4. `kcat -G -e` in the same group reads to the end of every partition and exits.
 *
 * What is checked: step 2 and step 4 together are exactly the 30 records, and no record is
 * read by both. That is at-least-once with a re-read window of zero records: everything kcat
 * handed out in step 2 was committed when it closed, so at-least-once allows no duplicate
 * here; a duplicate would mean a commit was lost or applied late, a gap that one was applied
 * ahead of what was read.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Admin } from "../../packages/client/src/index.js";
import { GroupAdmin } from "../../packages/client/src/group/group-admin.js";
import { startCombinedCluster, type CombinedCluster } from "../helpers/combined-cluster.js";
import { parseKcatJson, runKcat, type KcatJsonRecord } from "./helpers.js";

const TOPIC = "kcat-group";
const GROUP = "kcat-group-g";
const PARTITIONS = 3;
const RECORDS = 30;
const FIRST_RUN_RECORDS = 12;
const KCAT_GROUP_TIMEOUT_MS = 90_000;

let cluster: CombinedCluster | undefined;

beforeAll(async () => {
  cluster = await startCombinedCluster({
    name: "kcat-group",
    nodes: 1,
    // One node: every replication factor is 1; a small __consumer_offsets and no initial
    // rebalance delay keep the test quick.
    overrides: ["default.replication.factor=1", "offsets.topic.num.partitions=3", "offsets.topic.replication.factor=1", "group.initial.rebalance.delay.ms=0"],
  });
}, 120_000);

afterAll(async () => {
  await cluster?.destroy();
}, 60_000);

function theCluster(): CombinedCluster {
  if (!cluster) throw new Error("cluster did not start");
  return cluster;
}

/** `kcat -G` arguments shared by both runs: librdkafka settings first, then -G group topic. */
function groupArgs(bootstrap: string, extra: readonly string[]): string[] {
  return [
    "-b",
    bootstrap,
    "-X",
    "auto.offset.reset=earliest",
    "-X",
    "session.timeout.ms=10000",
    "-X",
    "heartbeat.interval.ms=1000",
    "-J",
    "-q",
    ...extra,
    "-G",
    GROUP,
    TOPIC,
  ];
}

const id = (r: Pick<KcatJsonRecord, "partition" | "offset">): string => `${r.partition}@${r.offset}`;

describe("kcat balanced consumer (-G) against Flotilla", () => {
  it("consumes in a group, commits, and after a broker restart resumes from the committed offsets", async () => {
    const c = theCluster();
    const admin = new Admin({ bootstrapServers: c.bootstrap(), defaultApiTimeoutMs: 30_000 });
    try {
      await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: PARTITIONS, replicationFactor: 1 }], timeoutMs: 30_000 });
    } finally {
      await admin.close();
    }

    const input = Array.from({ length: RECORDS }, (_, i) => `key-${i}:value-${i}`).join("\n") + "\n";
    await runKcat(["-P", "-b", c.bootstrap(), "-t", TOPIC, "-K", ":", "-X", "partitioner=murmur2_random"], { input, timeoutMs: 60_000 });
    const all = parseKcatJson((await runKcat(["-C", "-b", c.bootstrap(), "-t", TOPIC, "-o", "beginning", "-e", "-J", "-q"], { timeoutMs: 60_000 })).stdout);
    expect(all).toHaveLength(RECORDS);
    expect(new Set(all.map((r) => r.partition)).size).toBeGreaterThan(1);

    const first = parseKcatJson((await runKcat(groupArgs(c.bootstrap(), ["-c", String(FIRST_RUN_RECORDS)]), { timeoutMs: KCAT_GROUP_TIMEOUT_MS })).stdout);
    expect(first).toHaveLength(FIRST_RUN_RECORDS);
    // Where the group should resume: one past the last record read, per partition.
    const expectedCommits = new Map<number, number>();
    for (const r of first) expectedCommits.set(r.partition, Math.max(expectedCommits.get(r.partition) ?? 0, r.offset + 1));

    await c.stop(1, "SIGTERM");
    await c.start(1);

    // The commits kcat made over the Kafka protocol, read back over gRPC by Flotilla's client
    // after the restart (the coordinator rebuilt them from __consumer_offsets).
    const groupAdmin = new GroupAdmin({ bootstrapServers: c.bootstrap(), defaultApiTimeoutMs: 30_000 });
    try {
      const committed = await c.waitFor(
        "the group's committed offsets after the restart",
        async () => {
          const offsets = await groupAdmin.fetchOffsets(GROUP, [{ topic: TOPIC, partitions: [0, 1, 2] }]);
          return offsets.some((o) => o.offset >= 0) ? offsets : undefined;
        },
        60_000,
      );
      const byPartition = new Map(committed.filter((o) => o.offset >= 0).map((o) => [o.partition, o.offset]));
      expect(byPartition).toEqual(expectedCommits);
    } finally {
      await groupAdmin.close();
    }

    const second = parseKcatJson((await runKcat(groupArgs(c.bootstrap(), ["-e"]), { timeoutMs: KCAT_GROUP_TIMEOUT_MS })).stdout);
    const firstIds = new Set(first.map(id));
    const reread = second.filter((r) => firstIds.has(id(r)));
    expect(reread, "records read again after the restart").toEqual([]);
    expect([...first, ...second].map(id).sort()).toEqual(all.map(id).sort());
    // Each record came back with its own payload.
    const payloadOf = new Map(all.map((r) => [id(r), r.payload]));
    for (const r of [...first, ...second]) expect(r.payload).toBe(payloadOf.get(id(r)));
  }, 300_000);
});

/**
 * kcat (librdkafka, a real and unmodified Kafka client) against a 3-node Flotilla cluster over
 * the Kafka wire protocol on the brokers' ordinary client port:
 * - `kcat -L` shows every broker at its advertised address, the controller, and the topic's
 *   partitions with leaders, replicas and ISRs as Flotilla's own metadata has them;
 * - keyed records with headers are produced with acks 0, 1 and all, each with gzip, snappy,
 *   lz4 and zstd batches (librdkafka compresses; the broker stores the bytes as they came);
 * - `kcat -C -J -e -X check.crcs=true` reads every record back with its key, value, headers
 *   and offset: offsets are dense per partition, each run's records keep their order, and
 *   every stored batch still carries the compression codec the client chose;
 * - kcat finds offsets through ListOffsets (relative to the end, by timestamp);
 * - librdkafka's idempotent producer gets a producer id (InitProducerId) and its numbered
 *   batches are stored once each, in order.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Admin } from "../../packages/client/src/index.js";
import { decodeBatches } from "../../packages/protocol/src/index.js";
import { RawBrokerClient } from "../../packages/broker/src/test-client.js";
import { startCombinedCluster, type CombinedCluster } from "../helpers/combined-cluster.js";
import { parseKcatJson, runKcat, type KcatJsonRecord } from "./helpers.js";

const TOPIC = "kcat-data";
const PARTITIONS = 3;
const REPLICATION_FACTOR = 3;
const RECORDS_PER_RUN = 6;
const ACKS = ["0", "1", "all"] as const;
const CODECS = ["gzip", "snappy", "lz4", "zstd"] as const;
/** Kafka's attribute bits 0-2 per codec. */
const CODEC_IDS: Record<(typeof CODECS)[number], number> = { gzip: 1, snappy: 2, lz4: 3, zstd: 4 };

let cluster: CombinedCluster | undefined;

beforeAll(async () => {
  cluster = await startCombinedCluster({ name: "kcat", nodes: 3 });
  await createTopic(TOPIC, PARTITIONS);
}, 180_000);

afterAll(async () => {
  await cluster?.destroy();
}, 60_000);

function bootstrap(): string {
  if (!cluster) throw new Error("cluster did not start");
  return cluster.bootstrap();
}

interface KcatMetadata {
  controllerid: number;
  brokers: { id: number; name: string }[];
  topics: { topic: string; error?: string; partitions: { partition: number; leader: number; replicas: { id: number }[]; isrs: { id: number }[] }[] }[];
}

interface Sent {
  run: string;
  index: number;
  key: string;
  value: string;
}

const runOf = (acks: string, codec: string) => `acks-${acks}-${codec}`;

function sentRecords(acks: string, codec: string): Sent[] {
  const run = runOf(acks, codec);
  // Distinct keys spread a run over the partitions; the value repeats enough to compress.
  return Array.from({ length: RECORDS_PER_RUN }, (_, index) => ({ run, index, key: `${run}-k${index}`, value: `${run} record ${index} ${"payload ".repeat(20)}é` }));
}

async function consumeAll(expected: number): Promise<KcatJsonRecord[]> {
  // acks=0 produces are answered before they are appended; read again until all arrived.
  return cluster!.waitFor(
    `${expected} records readable by kcat`,
    async () => {
      const { stdout } = await runKcat(["-C", "-b", bootstrap(), "-t", TOPIC, "-o", "beginning", "-e", "-J", "-q", "-X", "check.crcs=true"], { timeoutMs: 60_000 });
      const records = parseKcatJson(stdout);
      return records.length >= expected ? records : undefined;
    },
    90_000,
  );
}

async function createTopic(topic: string, partitions: number): Promise<void> {
  const admin = new Admin({ bootstrapServers: bootstrap(), defaultApiTimeoutMs: 30_000 });
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: partitions, replicationFactor: REPLICATION_FACTOR }] });
  } finally {
    await admin.close();
  }
  // Every partition led and fully in sync before the clients start, so acks=all is meaningful.
  await cluster!.waitFor(
    `${topic} partitions led with a full ISR`,
    async () => {
      const d = await cluster!.describeTopic(topic);
      return d.partitions.length === partitions && d.partitions.every((p) => p.leader >= 0 && p.isr.length === REPLICATION_FACTOR);
    },
    60_000,
  );
}

/** The batches stored for `topic`, read over gRPC from each partition's leader (Flotilla's own view of the bytes). */
async function storedBatches(topic: string): Promise<{ partition: number; batch: ReturnType<typeof decodeBatches>[number] }[]> {
  const ours = await cluster!.describeTopic(topic);
  const out: { partition: number; batch: ReturnType<typeof decodeBatches>[number] }[] = [];
  for (const p of ours.partitions) {
    const client = new RawBrokerClient(cluster!.address(p.leader));
    try {
      const res = await client.fetch({
        replicaId: -1,
        maxWaitMs: 0,
        minBytes: 0,
        maxBytes: 16 << 20,
        topics: [{ name: topic, partitions: [{ partition: p.partition, fetchOffset: 0, partitionMaxBytes: 16 << 20, currentLeaderEpoch: -1 }] }],
      });
      const part = res.topics[0]!.partitions[0]!;
      expect(part.errorCode).toBe(0);
      for (const batch of decodeBatches(part.records)) out.push({ partition: p.partition, batch });
    } finally {
      client.close();
    }
  }
  return out;
}

describe("kcat against a 3-node cluster", () => {
  it("kcat -L lists the brokers at their advertised addresses, the controller and the topic's partitions", async () => {
    const { stdout } = await runKcat(["-L", "-J", "-b", bootstrap(), "-t", TOPIC], { timeoutMs: 60_000 });
    const md = JSON.parse(stdout.toString("utf8")) as KcatMetadata;
    expect(md.brokers.map((b) => [b.id, b.name]).sort()).toEqual(cluster!.nodeIds.map((id) => [id, cluster!.address(id)]).sort());
    expect(cluster!.nodeIds).toContain(md.controllerid);
    const topic = md.topics.find((t) => t.topic === TOPIC);
    expect(topic?.error).toBeUndefined();
    const ours = await cluster!.describeTopic(TOPIC);
    expect(
      topic!.partitions
        .map((p) => ({ partition: p.partition, leader: p.leader, replicas: p.replicas.map((r) => r.id).sort(), isr: p.isrs.map((r) => r.id).sort() }))
        .sort((a, b) => a.partition - b.partition),
    ).toEqual(
      ours.partitions
        .map((p) => ({ partition: p.partition, leader: p.leader, replicas: [...p.replicas].sort(), isr: [...p.isr].sort() }))
        .sort((a, b) => a.partition - b.partition),
    );
  }, 90_000);

  it("produces keyed records with headers at acks 0, 1 and all with each codec, and reads them all back intact", async () => {
    const sent: Sent[] = [];
    for (const acks of ACKS) {
      for (const codec of CODECS) {
        const records = sentRecords(acks, codec);
        sent.push(...records);
        const input = records.map((r) => `${r.key}\t${r.value}`).join("\n") + "\n";
        await runKcat(
          ["-P", "-b", bootstrap(), "-t", TOPIC, "-K", "\t", "-H", `run=${runOf(acks, codec)}`, "-H", "origin=kcat", "-X", `acks=${acks}`, "-X", `compression.codec=${codec}`, "-X", "linger.ms=20"],
          { input, timeoutMs: 60_000 },
        );
      }
    }

    const got = await consumeAll(sent.length);
    expect(got).toHaveLength(sent.length);
    const byKey = new Map(got.map((r) => [r.key, r]));
    for (const s of sent) {
      const r = byKey.get(s.key);
      expect(r, `record ${s.key}`).toBeDefined();
      expect(r!.payload).toBe(s.value);
      expect(r!.headers).toEqual(["run", s.run, "origin", "kcat"]);
      expect(r!.tstype).toBe("create");
      expect(r!.ts).toBeGreaterThan(0);
    }
    // Offsets: each partition holds 0..n-1 exactly once.
    for (let p = 0; p < PARTITIONS; p++) {
      const offsets = got.filter((r) => r.partition === p).map((r) => r.offset).sort((a, b) => a - b);
      expect(offsets).toEqual(offsets.map((_, i) => i));
    }
    // Order: within a partition, each run's records appear in the order they were sent.
    const indexOf = new Map(sent.map((s) => [s.key, s.index]));
    for (let p = 0; p < PARTITIONS; p++) {
      const inPartition = got.filter((r) => r.partition === p).sort((a, b) => a.offset - b.offset);
      for (const acks of ACKS) {
        for (const codec of CODECS) {
          const seq = inPartition.filter((r) => r.headers?.[1] === runOf(acks, codec)).map((r) => indexOf.get(r.key!)!);
          expect(seq, `order of ${runOf(acks, codec)} in partition ${p}`).toEqual([...seq].sort((a, b) => a - b));
        }
      }
    }

    // The stored batches carry the client's codec: read them over gRPC from each leader.
    const codecOfKey = new Map<string, number>();
    for (const { batch } of await storedBatches(TOPIC)) {
      for (const rec of batch.records) codecOfKey.set(rec.key!.toString("utf8"), batch.header.attributes & 0x07);
    }
    const expectedCodecs = Object.fromEntries(sent.map((s) => [s.key, CODEC_IDS[s.run.split("-")[2] as (typeof CODECS)[number]]]));
    expect(Object.fromEntries(sent.map((s) => [s.key, codecOfKey.get(s.key)]))).toEqual(expectedCodecs);
  }, 240_000);

  // Runs after the produce test above, on the records it wrote.
  it("kcat finds offsets through ListOffsets: -o -2 reads a partition's last two records, -Q by timestamp", async () => {
    const all = await consumeAll(ACKS.length * CODECS.length * RECORDS_PER_RUN);
    const partition0 = all.filter((r) => r.partition === 0).sort((a, b) => a.offset - b.offset);
    expect(partition0.length).toBeGreaterThanOrEqual(2);
    const { stdout } = await runKcat(["-C", "-b", bootstrap(), "-t", TOPIC, "-p", "0", "-o", "-2", "-e", "-J", "-q"], { timeoutMs: 60_000 });
    expect(parseKcatJson(stdout).map((r) => [r.offset, r.key])).toEqual(partition0.slice(-2).map((r) => [r.offset, r.key]));

    // Timestamp 0: the first batch of each partition; a time after every record: none (-1).
    const future = Date.now() + 3_600_000;
    const query = await runKcat(["-Q", "-b", bootstrap(), "-t", `${TOPIC}:0:0`, "-t", `${TOPIC}:1:${future}`], { timeoutMs: 60_000 });
    const lines = query.stdout.toString("utf8").trim().split("\n");
    const offsetOf = (p: number) => {
      const line = lines.find((l) => l.includes(`[${p}]`));
      const m = line === undefined ? null : /offset (-?\d+)/.exec(line);
      if (!m) throw new Error(`no offset for partition ${p} in kcat -Q output:\n${lines.join("\n")}`);
      return Number(m[1]);
    };
    expect(offsetOf(0)).toBe(0);
    expect(offsetOf(1)).toBe(-1);
  }, 120_000);

  it("an idempotent librdkafka producer (InitProducerId, sequences) writes each record once, in order", async () => {
    const topic = "kcat-idempotent";
    await createTopic(topic, 1);
    const count = 40;
    const input = Array.from({ length: count }, (_, i) => `k${i}\tvalue ${i}`).join("\n") + "\n";
    await runKcat(["-P", "-b", bootstrap(), "-t", topic, "-p", "0", "-K", "\t", "-X", "enable.idempotence=true", "-X", "compression.codec=lz4", "-X", "linger.ms=5", "-X", "batch.num.messages=7"], {
      input,
      timeoutMs: 60_000,
    });
    const { stdout } = await runKcat(["-C", "-b", bootstrap(), "-t", topic, "-o", "beginning", "-e", "-J", "-q", "-X", "check.crcs=true"], { timeoutMs: 60_000 });
    expect(parseKcatJson(stdout).map((r) => [r.offset, r.key, r.payload])).toEqual(Array.from({ length: count }, (_, i) => [i, `k${i}`, `value ${i}`]));
    // librdkafka got a producer id and numbered its batches: one producer, sequences dense from 0.
    const batches = (await storedBatches(topic)).map((b) => b.batch.header);
    expect(batches.length).toBeGreaterThan(1);
    expect(new Set(batches.map((h) => h.producerId)).size).toBe(1);
    expect(batches[0]!.producerId).toBeGreaterThanOrEqual(0);
    let next = 0;
    for (const h of batches) {
      expect(h.baseSequence).toBe(next);
      next += h.recordCount;
    }
    expect(next).toBe(count);
  }, 120_000);
});

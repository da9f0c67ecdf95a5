/**
 * Interoperation between Flotilla's own client (gRPC) and real Kafka clients (kcat/librdkafka,
 * kafkajs) on one broker port, with a single-node cluster:
 * - records the Flotilla producer wrote are read by kcat and by kafkajs with the same keys,
 *   values, headers and timestamps, byte for byte;
 * - records kafkajs and kcat wrote are read by the Flotilla consumer with the same bytes;
 * - for a set of keys (empty, ASCII, unicode, binary), kafkajs's default partitioner, kcat
 *   with librdkafka's murmur2 partitioner and the Flotilla producer put each key in the same
 *   partition, observed by reading back where each record landed;
 * - gzip, snappy, lz4 and zstd batches cross both ways and stay compressed in the log;
 * - the broker's ApiVersions answer and kcat's chosen versions are docs/KAFKA.md's table;
 * - a group's committed offsets are one state: kafkajs commits them, Flotilla's GroupAdmin
 *   reads them, and kcat in the same group resumes after them;
 * - on a LogAppendTime topic every reader sees the broker's stamp, not the client's time.
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CompressionTypes, Partitioners, type IHeaders, type Kafka } from "kafkajs";
import { Admin, Consumer, GroupAdmin, Producer, type ConsumerRecord, type RecordHeader } from "../../packages/client/src/index.js";
import { partitionForKey, type Compression } from "../../packages/protocol/src/index.js";
import { startCombinedCluster, type CombinedCluster } from "../helpers/combined-cluster.js";
import { REPO_ROOT } from "../helpers/processes.js";
import { consumeWithKafkajs, kcatBrokerApiVersions, kcatSentVersions, newKafkajs, parseKcatJson, readKafkaDocTable, runKcat } from "./helpers.js";

let cluster: CombinedCluster | undefined;
let kafka: Kafka;

beforeAll(async () => {
  cluster = await startCombinedCluster({ name: "kafka-interop", nodes: 1, overrides: ["default.replication.factor=1", "offsets.topic.replication.factor=1"] });
  kafka = newKafkajs(cluster.bootstrap(), "flotilla-interop-test");
}, 120_000);

afterAll(async () => {
  await cluster?.destroy();
}, 60_000);

function theCluster(): CombinedCluster {
  if (!cluster) throw new Error("cluster did not start");
  return cluster;
}

const bootstrap = (): string => theCluster().bootstrap();

/**
 * Creates a topic and waits until its leaders serve it: Metadata can name a leader before
 * that broker has taken the partition, and a kafkajs produce in that window gets
 * UNKNOWN_TOPIC_OR_PARTITION for one partition and resends the whole request, duplicating
 * the partitions that succeeded (see kafkajs.test.ts).
 */
async function createTopic(topic: string, partitions: number, configs: Record<string, string> = {}): Promise<void> {
  const admin = new Admin({ bootstrapServers: bootstrap(), defaultApiTimeoutMs: 30_000 });
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: partitions, replicationFactor: 1, configs }] });
    await theCluster().waitFor(`the leaders of ${topic} to serve it`, async () => (await admin.fetchTopicOffsets(topic)).length === partitions, 30_000);
  } finally {
    await admin.close();
  }
}

async function produceWithFlotilla(
  topic: string,
  messages: { key: Buffer | null; value: Buffer | null; headers: RecordHeader[]; timestamp?: number }[],
  compression: Compression = "none",
): Promise<void> {
  const producer = new Producer({ bootstrapServers: bootstrap(), acks: "all", compression });
  try {
    // One send: the records keep their order within each partition.
    await producer.send({ topic, messages: messages.map((m) => ({ key: m.key, value: m.value, headers: m.headers, ...(m.timestamp !== undefined ? { timestamp: m.timestamp } : {}) })) });
  } finally {
    await producer.close();
  }
}

/** Reads `topic` (all partitions) from the beginning with the Flotilla consumer; there must be exactly `count` records. */
async function consumeWithFlotilla(topic: string, count: number, timeoutMs = 30_000): Promise<ConsumerRecord[]> {
  const consumer = new Consumer({ bootstrapServers: bootstrap(), autoOffsetReset: "earliest", fetchMaxWaitMs: 200 });
  const got: ConsumerRecord[] = [];
  try {
    await consumer.assign([{ topic }]);
    const deadline = Date.now() + timeoutMs;
    while (got.length < count && Date.now() < deadline) got.push(...(await consumer.poll({ timeoutMs: 500 })));
    // One more short poll: a record beyond `count` (a duplicate, say) fails the read.
    if (got.length === count) got.push(...(await consumer.poll({ timeoutMs: 300 })));
  } finally {
    await consumer.close();
  }
  if (got.length !== count) throw new Error(`Flotilla consumer read ${got.length} records of ${topic}, expected ${count}`);
  return got;
}

/** kafkajs headers (one value, or an array for a repeated name) as a flat ordered list. */
function flattenKafkajsHeaders(headers: IHeaders | undefined): RecordHeader[] {
  const out: RecordHeader[] = [];
  for (const [key, v] of Object.entries(headers ?? {})) {
    // kafkajs's types omit it, but a header stored with a null value comes back as null.
    for (const one of Array.isArray(v) ? v : [v]) out.push({ key, value: one === undefined || one === null ? null : Buffer.from(one) });
  }
  return out;
}

/**
 * Parses `kcat -C -f '%p %o %T %K %S\n%k%s\n'`: a text line with partition, offset,
 * timestamp and the key and value lengths (-1 for null), then exactly those bytes.
 */
function parseKcatBinary(out: Buffer): { partition: number; offset: number; timestamp: number; key: Buffer | null; value: Buffer | null }[] {
  const records = [];
  let at = 0;
  for (let i = 0; i < 100_000 && at < out.length; i++) {
    const nl = out.indexOf(0x0a, at);
    if (nl < 0) throw new Error(`kcat output truncated at byte ${at}`);
    const [partition, offset, timestamp, keyLength, valueLength] = out.subarray(at, nl).toString("ascii").split(" ").map(Number) as [number, number, number, number, number];
    at = nl + 1;
    const key = keyLength < 0 ? null : Buffer.from(out.subarray(at, at + keyLength));
    at += Math.max(keyLength, 0);
    const value = valueLength < 0 ? null : Buffer.from(out.subarray(at, at + valueLength));
    at += Math.max(valueLength, 0);
    if (out[at] !== 0x0a) throw new Error(`kcat output: expected a newline after the record at offset ${offset}`);
    at++;
    records.push({ partition, offset, timestamp, key, value });
  }
  return records;
}

const b = (s: string): Buffer => Buffer.from(s, "utf8");

/** Bytes in the segment files (.log) of one partition on node 1. */
function logBytesOf(topic: string, partition: number): number {
  if (!cluster) throw new Error("cluster did not start");
  const dir = path.join(cluster.logDirOf(1), `${topic}-${partition}`);
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".log"))
    .reduce((n, f) => n + fs.statSync(path.join(dir, f)).size, 0);
}

describe("Kafka clients and the Flotilla client on one broker port", () => {
  it("records produced by the Flotilla producer are read by kcat (-J and raw bytes) and by kafkajs identically", async () => {
    const topic = "interop-from-flotilla";
    await createTopic(topic, 1);
    const t0 = Date.now() - 3_600_000;
    const records = [
      { key: b("plain"), value: b("hello"), headers: [{ key: "h", value: b("1") }], timestamp: t0 },
      { key: b("ünïcödé ключ 日本"), value: b("välue 🚀 ✓"), headers: [{ key: "lang", value: b("ü") }, { key: "lang", value: b("日本") }], timestamp: t0 + 1 },
      { key: b(""), value: b(""), headers: [], timestamp: t0 + 2 },
      { key: null, value: b("no key"), headers: [{ key: "empty", value: b("") }, { key: "null", value: null }], timestamp: t0 + 3 },
      { key: b("tombstone"), value: null, headers: [], timestamp: t0 + 4 },
      // Bytes that are not UTF-8 text, including NUL and newline, for the raw-byte reads.
      { key: Buffer.from([0x00, 0xff, 0x0a, 0x80]), value: Buffer.from([0xc3, 0x28, 0x0a, 0x00, 0xfe, 0xfd]), headers: [{ key: "bin", value: Buffer.from([0x00, 0x0a, 0xff]) }], timestamp: t0 + 5 },
      { key: b("big"), value: Buffer.alloc(50_000, 7), headers: [], timestamp: t0 + 6 },
    ];
    await produceWithFlotilla(topic, records);

    // kcat, raw bytes of keys and values with their offsets and timestamps.
    const raw = parseKcatBinary((await runKcat(["-C", "-b", bootstrap(), "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%p %o %T %K %S\\n%k%s\\n"])).stdout);
    expect(raw.map((r) => r.offset)).toEqual(records.map((_, i) => i));
    records.forEach((r, i) => {
      expect(raw[i]?.partition).toBe(0);
      expect(raw[i]?.timestamp, `kcat timestamp of record ${i}`).toBe(r.timestamp);
      expect(raw[i]?.key, `kcat key of record ${i}`).toEqual(r.key);
      expect(raw[i]?.value, `kcat value of record ${i}`).toEqual(r.value);
    });

    // kcat -J for the text records: the same strings and headers, in order, with CreateTime.
    const json = parseKcatJson((await runKcat(["-C", "-b", bootstrap(), "-t", topic, "-o", "beginning", "-c", "5", "-e", "-q", "-J"])).stdout);
    expect(json).toHaveLength(5);
    records.slice(0, 5).forEach((r, i) => {
      const j = json[i]!;
      expect(j.offset).toBe(i);
      expect(j.tstype).toBe("create");
      expect(j.ts).toBe(r.timestamp);
      expect(j.key).toBe(r.key === null ? null : r.key.toString("utf8"));
      expect(j.payload).toBe(r.value === null ? null : r.value.toString("utf8"));
      expect(j.headers ?? []).toEqual(r.headers.flatMap((h) => [h.key, h.value === null ? null : h.value.toString("utf8")]));
    });

    // kafkajs (a consumer group): the same bytes, headers and timestamps.
    const consumed = await consumeWithKafkajs(kafka, { topic, groupId: "interop-from-flotilla", count: records.length, timeoutMs: 60_000 });
    consumed.sort((x, y) => Number(x.message.offset) - Number(y.message.offset));
    records.forEach((r, i) => {
      const m = consumed[i]!.message;
      expect(m.offset).toBe(String(i));
      expect(m.timestamp, `kafkajs timestamp of record ${i}`).toBe(String(r.timestamp));
      expect(m.key, `kafkajs key of record ${i}`).toEqual(r.key);
      expect(m.value, `kafkajs value of record ${i}`).toEqual(r.value);
      expect(flattenKafkajsHeaders(m.headers), `kafkajs headers of record ${i}`).toEqual(r.headers);
    });
  }, 120_000);

  it("records produced by kafkajs and by kcat are read back by the Flotilla consumer identically", async () => {
    const topic = "interop-to-flotilla";
    await createTopic(topic, 1);
    const t0 = Date.now() - 7_200_000;
    const fromKafkajs = [
      { key: b("kjs-1"), value: b("from kafkajs"), headers: [{ key: "origin", value: b("kafkajs") }], timestamp: t0 },
      { key: b("ключ ✓"), value: b("значение 🚀"), headers: [{ key: "u", value: b("ü") }], timestamp: t0 + 1 },
      { key: Buffer.from([0x00, 0xff, 0x80, 0x0a]), value: Buffer.from([0xfe, 0x00, 0x0a, 0xc3, 0x28]), headers: [{ key: "bin", value: Buffer.from([0xff, 0x00]) }], timestamp: t0 + 2 },
      { key: null, value: b("kafkajs null key"), headers: [], timestamp: t0 + 3 },
      { key: b("kjs-tombstone"), value: null, headers: [], timestamp: t0 + 4 },
    ];
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
    await producer.connect();
    try {
      // Two sends: a plain batch and a gzip batch of the same shape.
      await producer.send({
        topic,
        acks: -1,
        messages: fromKafkajs.slice(0, 3).map((r) => ({ key: r.key, value: r.value, headers: Object.fromEntries(r.headers.map((h) => [h.key, h.value ?? ""])), timestamp: String(r.timestamp) })),
      });
      await producer.send({
        topic,
        acks: -1,
        compression: CompressionTypes.GZIP,
        messages: fromKafkajs.slice(3).map((r) => ({ key: r.key, value: r.value, headers: {}, timestamp: String(r.timestamp) })),
      });
    } finally {
      await producer.disconnect();
    }

    const kcatLines = ["kcat-1\tfrom kcat", "kcat ключ\tзначение ✓ 🚀", "kcat-3\t"];
    const beforeKcatMs = Date.now();
    await runKcat(["-P", "-b", bootstrap(), "-t", topic, "-p", "0", "-K", "\t", "-H", "origin=kcat", "-H", "note=ünï", "-X", "enable.idempotence=true", "-z", "gzip"], {
      input: kcatLines.join("\n") + "\n",
    });
    const afterKcatMs = Date.now();

    const got = await consumeWithFlotilla(topic, fromKafkajs.length + kcatLines.length);
    expect(got.map((r) => r.offset)).toEqual(got.map((_, i) => i));
    fromKafkajs.forEach((r, i) => {
      const g = got[i]!;
      expect(g.timestamp, `timestamp of kafkajs record ${i}`).toBe(r.timestamp);
      expect(g.key, `key of kafkajs record ${i}`).toEqual(r.key);
      expect(g.value, `value of kafkajs record ${i}`).toEqual(r.value);
      expect(g.headers, `headers of kafkajs record ${i}`).toEqual(r.headers);
    });
    kcatLines.forEach((line, i) => {
      const g = got[fromKafkajs.length + i]!;
      const [key, value] = line.split("\t") as [string, string];
      expect(g.key, `key of kcat record ${i}`).toEqual(b(key));
      expect(g.value, `value of kcat record ${i}`).toEqual(b(value));
      expect(g.headers, `headers of kcat record ${i}`).toEqual([
        { key: "origin", value: b("kcat") },
        { key: "note", value: b("ünï") },
      ]);
      // librdkafka stamps CreateTime itself when the message is produced.
      expect(g.timestamp).toBeGreaterThanOrEqual(beforeKcatMs - 1000);
      expect(g.timestamp).toBeLessThanOrEqual(afterKcatMs + 1000);
    });
  }, 120_000);

  it("kafkajs's default partitioner, librdkafka's murmur2 partitioner and the Flotilla producer put each key in the same partition", async () => {
    const topic = "interop-partitioner";
    const partitions = 7;
    await createTopic(topic, partitions);
    const textKeys = [
      "a",
      "key-1",
      "user-42",
      "ünïcödé",
      "日本語キー",
      "emoji 🚀🔥",
      "Ωmega\u0001ctrl",
      "x".repeat(300),
      ...Array.from({ length: 16 }, (_, i) => `order-${i * 7919}`),
    ];
    const keys: Buffer[] = [
      b(""),
      ...textKeys.map(b),
      Buffer.from([0x00, 0xff, 0x10, 0x80, 0x7f]),
      Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03]),
      Buffer.from([0xff, 0xff, 0xff, 0xff]),
    ];
    const header = (source: string, i: number): RecordHeader[] => [
      { key: "source", value: b(source) },
      { key: "i", value: b(String(i)) },
    ];

    await produceWithFlotilla(
      topic,
      keys.map((key, i) => ({ key, value: b(`flotilla ${i}`), headers: header("flotilla", i) })),
    );
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
    await producer.connect();
    try {
      await producer.send({ topic, acks: -1, messages: keys.map((key, i) => ({ key, value: b(`kafkajs ${i}`), headers: { source: "kafkajs", i: String(i) } })) });
    } finally {
      await producer.disconnect();
    }
    // kcat reads "key<TAB>value" lines, so it gets the text keys (no tab or newline in them);
    // librdkafka's default partitioner is CRC32-based, murmur2 is the Java-compatible one.
    await runKcat(["-P", "-b", bootstrap(), "-t", topic, "-K", "\t", "-H", "source=kcat", "-X", "partitioner=murmur2"], {
      input: textKeys.map((k) => `${k}\tkcat ${keys.findIndex((x) => x.equals(b(k)))}`).join("\n") + "\n",
    });

    const got = await consumeWithFlotilla(topic, keys.length * 2 + textKeys.length);
    const landed = new Map<string, number>();
    for (const r of got) {
      const source = r.headers.find((h) => h.key === "source")?.value?.toString();
      const index = r.value?.toString().split(" ")[1];
      expect(source !== undefined && index !== undefined, `record at ${r.partition}/${r.offset}`).toBe(true);
      expect(r.value?.toString()).toBe(`${source} ${index}`);
      landed.set(`${source}/${index}`, r.partition);
    }
    keys.forEach((key, i) => {
      const flotilla = landed.get(`flotilla/${i}`);
      expect(flotilla, `partition of key ${i} (${key.toString("hex")})`).toBe(partitionForKey(key, partitions));
      expect(landed.get(`kafkajs/${i}`), `kafkajs partition of key ${i} (${key.toString("hex")})`).toBe(flotilla);
    });
    textKeys.forEach((k) => {
      const i = keys.findIndex((x) => x.equals(b(k)));
      expect(landed.get(`kcat/${i}`), `kcat partition of key ${JSON.stringify(k)}`).toBe(landed.get(`flotilla/${i}`));
    });
    // The keys cover several partitions, so agreement is not a coincidence of one partition.
    expect(new Set(keys.map((_, i) => landed.get(`flotilla/${i}`))).size).toBeGreaterThanOrEqual(5);
  }, 120_000);

  it("every compression codec crosses both ways: kcat batches read by the Flotilla consumer, Flotilla batches read by kcat", async () => {
    const codecs = ["gzip", "snappy", "lz4", "zstd"] as const;
    for (const codec of codecs) {
      const topic = `interop-codec-${codec}`;
      await createTopic(topic, 1);
      // Compressible values, so the codec really shrinks the batch instead of passing it through.
      const lines = Array.from({ length: 20 }, (_, i) => `${codec}-key-${i}\t${`${codec} value ${i} `.repeat(20)}ü`);
      await runKcat(["-P", "-b", bootstrap(), "-t", topic, "-p", "0", "-K", "\t", "-z", codec, "-X", "linger.ms=50"], { input: lines.join("\n") + "\n" });
      const fromFlotilla = Array.from({ length: 20 }, (_, i) => ({ key: b(`flotilla-${codec}-${i}`), value: b(`flotilla ${codec} ${i} `.repeat(20)), headers: [] }));
      await produceWithFlotilla(topic, fromFlotilla, codec);

      const got = await consumeWithFlotilla(topic, lines.length + fromFlotilla.length);
      lines.forEach((line, i) => {
        const [key, value] = line.split("\t") as [string, string];
        expect(got[i]?.key, `${codec}: key of kcat record ${i}`).toEqual(b(key));
        expect(got[i]?.value, `${codec}: value of kcat record ${i}`).toEqual(b(value));
      });
      const raw = parseKcatBinary((await runKcat(["-C", "-b", bootstrap(), "-t", topic, "-o", String(lines.length), "-e", "-q", "-f", "%p %o %T %K %S\\n%k%s\\n"])).stdout);
      expect(raw.map((r) => r.offset), `${codec}: offsets kcat read`).toEqual(fromFlotilla.map((_, i) => lines.length + i));
      fromFlotilla.forEach((r, i) => {
        expect(raw[i]?.key, `${codec}: key of Flotilla record ${i}`).toEqual(r.key);
        expect(raw[i]?.value, `${codec}: value of Flotilla record ${i}`).toEqual(r.value);
      });
      // Both writers' batches are stored compressed, as they were sent: the partition's log
      // holds far fewer bytes than the records' keys and values.
      const recordBytes = got.reduce((n, r) => n + (r.key?.length ?? 0) + (r.value?.length ?? 0), 0);
      expect(logBytesOf(topic, 0), `${codec}: bytes in the log vs ${recordBytes} bytes of records`).toBeLessThan(recordBytes / 3);
    }
  }, 120_000);

  it("the broker's ApiVersions answer and kcat's (librdkafka's) choices are those docs/KAFKA.md lists", async () => {
    const topic = "interop-versions";
    await createTopic(topic, 1);
    // The paths kcat has: an idempotent zstd producer, then a group consumer that resets to
    // the earliest offset, heartbeats (every 100 ms, so even a short membership sends one),
    // commits and leaves.
    const produced = await runKcat(["-P", "-b", bootstrap(), "-t", topic, "-d", "protocol,feature", "-X", "enable.idempotence=true", "-z", "zstd"], { input: "a\nb\n" });
    const grouped = await runKcat(["-G", "interop-versions", "-b", bootstrap(), "-e", "-d", "protocol", "-X", "auto.offset.reset=earliest", "-X", "heartbeat.interval.ms=100", topic], { timeoutMs: 45_000 });
    expect(grouped.stdout.toString()).toBe("a\nb\n");
    const sent = kcatSentVersions(produced.stderr + grouped.stderr);
    const rows = readKafkaDocTable(path.join(REPO_ROOT, "docs/KAFKA.md"));
    for (const r of rows) expect(sent.get(r.name), `kcat's ${r.name} version (docs/KAFKA.md says ${r.kcat ?? "–"})`).toBe(r.kcat);
    const documented = new Set(rows.map((r) => r.name));
    for (const name of sent.keys()) expect(documented.has(name), `kcat sent ${name}, which the table lacks`).toBe(true);
    // The broker's ApiVersions answer, as librdkafka received it, is the table's key/min/max.
    const advertised = kcatBrokerApiVersions(produced.stderr);
    expect([...advertised].map(([key, v]) => ({ key, ...v })).sort((x, y) => x.key - y.key)).toEqual(rows.map((r) => ({ key: r.key, min: r.min, max: r.max })));
  }, 120_000);

  it("a consumer group's committed offsets are shared: kafkajs commits, Flotilla's GroupAdmin sees them, kcat resumes after them", async () => {
    const topic = "interop-group";
    const groupId = "interop-shared-group";
    await createTopic(topic, 2);
    const first = Array.from({ length: 10 }, (_, i) => ({ key: b(`g-${i}`), value: b(`first ${i}`), headers: [] }));
    await produceWithFlotilla(topic, first);
    const consumed = await consumeWithKafkajs(kafka, { topic, groupId, count: first.length, timeoutMs: 60_000 });
    expect(consumed.map((c) => c.message.value?.toString()).sort()).toEqual(first.map((r) => r.value.toString()).sort());

    // kafkajs commits after each batch; the committed offsets are the partitions' ends.
    const perPartition = [0, 1].map((p) => consumed.filter((c) => c.partition === p).length);
    const groupAdmin = new GroupAdmin({ bootstrapServers: bootstrap(), defaultApiTimeoutMs: 20_000 });
    try {
      const offsets = await theCluster().waitFor(
        "kafkajs's commits to be visible to the Flotilla GroupAdmin",
        async () => {
          const o = await groupAdmin.fetchOffsets(groupId, [{ topic, partitions: [0, 1] }]);
          const byPartition = [0, 1].map((p) => o.find((x) => x.topic === topic && x.partition === p)?.offset ?? -1);
          return byPartition.every((off, p) => off === perPartition[p]) ? byPartition : undefined;
        },
        20_000,
      );
      expect(offsets).toEqual(perPartition);
      expect((await groupAdmin.listGroups()).map((g) => g.groupId)).toContain(groupId);
    } finally {
      await groupAdmin.close();
    }

    // kcat joins the same group and starts at the committed offsets: it reads only the new records.
    const second = Array.from({ length: 4 }, (_, i) => ({ key: b(`g-new-${i}`), value: b(`second ${i}`), headers: [] }));
    await produceWithFlotilla(topic, second);
    const resumed = await runKcat(["-G", groupId, "-b", bootstrap(), "-e", "-q", "-X", "auto.offset.reset=earliest", "-f", "%s\\n", topic], { timeoutMs: 45_000 });
    expect(resumed.stdout.toString().split("\n").filter((l) => l !== "").sort()).toEqual(second.map((r) => r.value.toString()).sort());
  }, 120_000);

  it("a LogAppendTime topic: the broker's stamp (and the CRC it rewrites) is what kcat, kafkajs and the Flotilla consumer see", async () => {
    const topic = "interop-log-append-time";
    await createTopic(topic, 1, { "message.timestamp.type": "LogAppendTime" });
    const clientTimestampMs = Date.now() - 86_400_000;
    const beforeMs = Date.now();
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
    await producer.connect();
    let acked;
    try {
      acked = await producer.send({ topic, acks: -1, messages: [0, 1, 2].map((i) => ({ key: `lat-${i}`, value: `value ${i}`, timestamp: String(clientTimestampMs) })) });
    } finally {
      await producer.disconnect();
    }
    await runKcat(["-P", "-b", bootstrap(), "-t", topic, "-p", "0", "-K", "\t"], { input: "lat-k\tfrom kcat\n" });
    const afterMs = Date.now();
    const appendTimeMs = Number(acked[0]?.logAppendTime);
    expect(appendTimeMs, "the LogAppendTime in kafkajs's Produce answer").toBeGreaterThanOrEqual(beforeMs - 1000);
    expect(appendTimeMs).toBeLessThanOrEqual(afterMs + 1000);

    // kcat checks CRCs (check.crcs) so a stamp without a new CRC fails here.
    const json = parseKcatJson((await runKcat(["-C", "-b", bootstrap(), "-t", topic, "-o", "beginning", "-e", "-q", "-J", "-X", "check.crcs=true"])).stdout);
    expect(json.map((j) => j.payload)).toEqual(["value 0", "value 1", "value 2", "from kcat"]);
    for (const j of json) {
      expect(j.tstype, `timestamp type of offset ${j.offset}`).toBe("logappend");
      expect(j.ts).toBeGreaterThanOrEqual(beforeMs - 1000);
      expect(j.ts).toBeLessThanOrEqual(afterMs + 1000);
    }
    expect(json.slice(0, 3).map((j) => j.ts)).toEqual([appendTimeMs, appendTimeMs, appendTimeMs]);

    const flotilla = await consumeWithFlotilla(topic, 4);
    expect(flotilla.map((r) => r.timestamp)).toEqual(json.map((j) => j.ts));
    const viaKafkajs = await consumeWithKafkajs(kafka, { topic, groupId: "interop-log-append-time", count: 4, timeoutMs: 60_000 });
    viaKafkajs.sort((x, y) => Number(x.message.offset) - Number(y.message.offset));
    expect(viaKafkajs.map((c) => Number(c.message.timestamp))).toEqual(json.map((j) => j.ts));
  }, 120_000);
});

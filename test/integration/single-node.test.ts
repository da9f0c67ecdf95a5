/**
 * End to end against one real `flotilla server` process (broker and controller in one):
 * create a topic through the Admin client, write 10,000 keyed records with the Producer,
 * read them back with the Consumer, kill -9 the server, restart it on the same data and
 * read the very same records again. Also a round trip through every compression codec.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Admin, Consumer, Producer, type ConsumerRecord, type RecordMetadata } from "../../packages/client/src/index.js";
import { partitionForKey } from "../../packages/protocol/src/index.js";
import { freePorts, killAllProcesses, startTsProcess, type ChildHandle } from "../helpers/processes.js";

const KEYS = 200;
const RECORDS = 10_000;
const PARTITIONS = 3;

let dataDir: string;
let port: number;
let server: ChildHandle | undefined;

function bootstrap(): string {
  return `127.0.0.1:${port}`;
}

async function startServer(): Promise<ChildHandle> {
  return startTsProcess({
    name: "single-node",
    entry: "packages/cli/src/main.ts",
    args: [
      "server",
      "--override",
      "node.id=1",
      "--override",
      "process.roles=broker,controller",
      "--override",
      `listeners=127.0.0.1:${port}`,
      "--override",
      `log.dirs=${dataDir}`,
    ],
    env: { FLOTILLA_LOG_LEVEL: "info" },
    readyLine: /"event":"ready"/,
    readyTimeoutMs: 30_000,
  });
}

/** Reads exactly `count` records from every partition of `topic`, from the earliest offset, within `timeoutMs`. */
async function readAll(topic: string, count: number, timeoutMs = 30_000): Promise<ConsumerRecord[]> {
  const consumer = new Consumer({ bootstrapServers: bootstrap(), autoOffsetReset: "earliest" });
  try {
    await consumer.assign([{ topic }]);
    const out: ConsumerRecord[] = [];
    const deadline = Date.now() + timeoutMs;
    while (out.length < count && Date.now() < deadline) out.push(...(await consumer.poll({ timeoutMs: 500 })));
    // Nothing more than `count` may be there: one more short poll must come back empty.
    if (out.length === count) out.push(...(await consumer.poll({ timeoutMs: 300 })));
    return out;
  } finally {
    await consumer.close();
  }
}

function byPartitionAndOffset(a: ConsumerRecord, b: ConsumerRecord): number {
  return a.partition - b.partition || a.offset - b.offset;
}

describe("a single node", () => {
  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-single-node-"));
    [port] = (await freePorts(1)) as [number];
    server = await startServer();
  });

  afterAll(async () => {
    await server?.kill("SIGKILL").catch(() => undefined);
    await killAllProcesses();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it("keeps 10,000 keyed records in key order per partition, and serves the same records after kill -9 and restart", async () => {
    const admin = new Admin({ bootstrapServers: bootstrap() });
    const created = await admin.createTopics({ topics: [{ topic: "keyed", numPartitions: PARTITIONS, replicationFactor: 1 }] });
    expect(created).toMatchObject([{ topic: "keyed", numPartitions: PARTITIONS }]);
    const [described] = await admin.describeTopics({ topics: ["keyed"] });
    expect(described?.partitions.map((p) => p.partition)).toEqual([0, 1, 2]);

    // Record i has key k(i % 200) and value "<key>:<sequence of this key>".
    const producer = new Producer({ bootstrapServers: bootstrap() });
    const sequences = new Map<string, number>();
    const messages = Array.from({ length: RECORDS }, (_, i) => {
      const key = `key-${i % KEYS}`;
      const seq = sequences.get(key) ?? 0;
      sequences.set(key, seq + 1);
      return { key, value: `${key}:${seq}`, headers: { n: String(i) } };
    });
    // 20 concurrent send() calls of 500 records: their order must hold per key as well.
    const chunks = Array.from({ length: RECORDS / 500 }, (_, c) => messages.slice(c * 500, c * 500 + 500));
    const metadata: RecordMetadata[] = (await Promise.all(chunks.map((chunk) => producer.send({ topic: "keyed", messages: chunk })))).flat();
    await producer.close();
    expect(metadata).toHaveLength(RECORDS);
    metadata.forEach((m, i) => expect(m.partition).toBe(partitionForKey(Buffer.from(messages[i]!.key), PARTITIONS)));

    const offsets = await admin.fetchTopicOffsets("keyed");
    expect(offsets.reduce((n, o) => n + o.high - o.low, 0)).toBe(RECORDS);

    const first = await readAll("keyed", RECORDS);
    expect(first).toHaveLength(RECORDS);
    first.sort(byPartitionAndOffset);
    const partitionOfKey = new Map<string, number>();
    const lastSeq = new Map<string, number>();
    for (const r of first) {
      const key = r.key!.toString();
      const [valueKey, seq] = r.value!.toString().split(":");
      expect(valueKey).toBe(key);
      expect(r.partition).toBe(partitionForKey(Buffer.from(key), PARTITIONS));
      expect(partitionOfKey.get(key) ?? r.partition).toBe(r.partition);
      partitionOfKey.set(key, r.partition);
      // In offset order, each key's sequence numbers come 0, 1, 2, ... without a gap.
      expect(Number(seq)).toBe((lastSeq.get(key) ?? -1) + 1);
      lastSeq.set(key, Number(seq));
    }
    expect(partitionOfKey.size).toBe(KEYS);
    // The offsets the producer was told are the offsets the consumer sees.
    const told = new Map(metadata.map((m, i) => [`${m.partition}/${m.offset}`, messages[i]!.value]));
    for (const r of first) expect(told.get(`${r.partition}/${r.offset}`)).toBe(r.value!.toString());

    await admin.close();
    await server!.kill("SIGKILL");
    server = await startServer();

    const second = await readAll("keyed", RECORDS, 45_000);
    second.sort(byPartitionAndOffset);
    const flat = (rs: ConsumerRecord[]) => rs.map((r) => `${r.partition}/${r.offset}/${r.key?.toString()}/${r.value?.toString()}/${r.headers.map((h) => `${h.key}=${h.value?.toString()}`).join(",")}`);
    expect(flat(second)).toEqual(flat(first));
  });

  it("round-trips records through every compression codec", async () => {
    const admin = new Admin({ bootstrapServers: bootstrap() });
    await admin.createTopics({ topics: [{ topic: "codecs", numPartitions: 1, replicationFactor: 1 }] });
    await admin.close();
    const codecs = ["none", "gzip", "snappy", "lz4", "zstd"] as const;
    const expected: string[] = [];
    for (const compression of codecs) {
      const producer = new Producer({ bootstrapServers: bootstrap(), compression });
      // Repetitive values, so that compressed batches really are smaller, and a null value.
      const messages = Array.from({ length: 300 }, (_, i) => ({ key: `${compression}-${i}`, value: i === 7 ? null : `${compression} value ${i} `.repeat(10), headers: [{ key: "codec", value: compression }] }));
      const sent = await producer.send({ topic: "codecs", messages });
      await producer.close();
      expect(sent.map((m) => m.partition)).toEqual(messages.map(() => 0));
      for (const m of messages) expected.push(`${m.key}|${m.value}|${compression}`);
    }
    const records = await readAll("codecs", expected.length);
    records.sort(byPartitionAndOffset);
    expect(records.map((r) => `${r.key?.toString()}|${r.value === null ? null : r.value.toString()}|${r.headers[0]?.value?.toString()}`)).toEqual(expected);
  });

  it("finds records by timestamp: Admin.listOffsets and Consumer.seek({ timestamp })", async () => {
    const admin = new Admin({ bootstrapServers: bootstrap() });
    await admin.createTopics({ topics: [{ topic: "times", numPartitions: 1, replicationFactor: 1 }] });
    const producer = new Producer({ bootstrapServers: bootstrap() });
    const base = 1_700_000_000_000;
    await producer.send({ topic: "times", messages: [0, 1, 2, 3].map((i) => ({ value: `t${i}`, timestamp: base + i * 1000 })) });
    await producer.close();

    // The broker answers per batch (the first batch whose max timestamp is >= the target),
    // so the offset may point before the record itself; never after it.
    const [byTime] = await admin.listOffsets("times", { timestamp: base + 1500 });
    expect(byTime?.offset).toBeGreaterThanOrEqual(0);
    expect(byTime?.offset).toBeLessThanOrEqual(2);
    expect(byTime?.timestamp).toBeGreaterThanOrEqual(base + 2000);
    expect((await admin.listOffsets("times", "earliest"))[0]?.offset).toBe(0);
    expect((await admin.listOffsets("times", "latest"))[0]?.offset).toBe(4);
    await admin.close();

    const consumer = new Consumer({ bootstrapServers: bootstrap() });
    try {
      await consumer.assign([{ topic: "times", partition: 0 }]);
      consumer.seek({ topic: "times", partition: 0 }, { timestamp: base + 1000 });
      expect(await consumer.position({ topic: "times", partition: 0 })).toBeLessThanOrEqual(1);
      const got: ConsumerRecord[] = [];
      for (let i = 0; i < 20 && got.length < 3; i++) got.push(...(await consumer.poll({ timeoutMs: 500 })));
      expect(got.map((r) => [r.offset, r.timestamp, r.value?.toString()])).toEqual([
        [1, base + 1000, "t1"],
        [2, base + 2000, "t2"],
        [3, base + 3000, "t3"],
      ]);
      // After every record: the end.
      consumer.seek({ topic: "times", partition: 0 }, { timestamp: base + 10_000 });
      expect(await consumer.position({ topic: "times", partition: 0 })).toBe(4);
    } finally {
      await consumer.close();
    }
  });
});

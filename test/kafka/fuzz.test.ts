/**
 * The Kafka listener under bad input, against a real Flotilla node (one combined node).
 *
 * Records are first produced with the Flotilla client (gRPC) to `fuzz`. Then a seeded
 * series of connections on the same port feeds the listener random frames and mutated
 * valid frames: pure noise, truncated frames, lying size prefixes, oversized size prefixes,
 * unknown api keys and versions, garbage after a valid header, flipped bytes, and Produce
 * requests whose record batches are mutated (CRC left stale, or recomputed so the batch
 * reaches the deeper checks) — all written in random pieces, several connections at once.
 * Mutated Produce requests go to a second topic, `fuzz-target`, so `fuzz` must come out
 * exactly as it went in.
 *
 * Afterwards: the node process is still running; a Flotilla (gRPC) consumer reads every
 * record of `fuzz` intact and nothing more; everything stored in `fuzz-target` (where some
 * mutated batches may legitimately have been accepted) still reads back through the
 * client's batch decoder; ApiVersions over the Kafka port still answers.
 *
 * Replay a failure with FLOTILLA_FUZZ_SEED=<seed printed in the failure>.
 *
 * A second test pipelines 120 valid requests of eight APIs on one connection and checks the
 * responses come back in request order, whatever each handler's latency.
 *
 * The last test checks both protocols on the one port with their real tools: `kcat -L`
 * (librdkafka) and the Flotilla CLI. kcat is required: the test fails, not skips, without
 * it (.ci/run installs it).
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SeededRandom } from "../../packages/common/src/index.js";
import { Admin, Consumer, Producer, type ConsumerRecord } from "../../packages/client/src/index.js";
import { decodeBatch, encodeBatch, validateBatches, writeBatchCrc } from "../../packages/protocol/src/index.js";
import { RawBrokerClient } from "../../packages/broker/src/test-client.js";
import {
  ApiKey,
  KafkaReader,
  KafkaWriter,
  apiVersionsApi,
  decodeApiVersionsResponse,
  decodeResponseHeader,
  encodeApiVersionsRequest,
  encodeRequestFrame,
  type FlexibleVersions,
} from "../../packages/protocol/src/kafka/index.js";
import { startCombinedCluster, type CombinedCluster } from "../helpers/combined-cluster.js";
import { runFlotilla } from "../helpers/cli.js";

const SEED = Number(process.env.FLOTILLA_FUZZ_SEED ?? 20261123);
/** FLOTILLA_FUZZ_CONNECTIONS runs a longer series by hand. */
const CONNECTIONS = Number(process.env.FLOTILLA_FUZZ_CONNECTIONS ?? 240);
const PARALLEL_CONNECTIONS = 8;
/** How long one fuzz connection is given to be answered or closed before the fuzzer hangs up. */
const CONNECTION_WAIT_MS = 400;
const RECORDS = 60;
const TOPIC = "fuzz";
const TARGET = "fuzz-target";
const PARTITIONS = 2;
/** Kafka's socket.request.max.bytes default, which the listener enforces. */
const REQUEST_MAX_BYTES = 100 * 1024 * 1024;

let cluster: CombinedCluster | undefined;
let port = 0;

function theCluster(): CombinedCluster {
  if (!cluster) throw new Error("cluster did not start");
  return cluster;
}

beforeAll(async () => {
  cluster = await startCombinedCluster({ name: "kafka-fuzz", nodes: 1, overrides: ["default.replication.factor=1", "offsets.topic.replication.factor=1"] });
  port = Number(cluster.address(1).split(":")[1]);
  const admin = new Admin({ bootstrapServers: cluster.bootstrap() });
  try {
    await admin.createTopics({ topics: [TOPIC, TARGET].map((topic) => ({ topic, numPartitions: PARTITIONS, replicationFactor: 1 })) });
  } finally {
    await admin.close();
  }
}, 120_000);

afterAll(async () => {
  await cluster?.destroy();
}, 60_000);

// ---- frames as a Kafka client writes them ----

const FLEX_NONE: FlexibleVersions = {};

function frame(apiKey: number, apiVersion: number, correlationId: number, body: (w: KafkaWriter) => void, spec: FlexibleVersions = FLEX_NONE): Buffer {
  return encodeRequestFrame({ apiKey, apiVersion, correlationId, clientId: "fuzzer" }, spec, body);
}

function apiVersionsRequest(correlationId: number, version: number): Buffer {
  return frame(ApiKey.ApiVersions, version, correlationId, (w) => encodeApiVersionsRequest(w, version, { clientSoftwareName: "fuzzer", clientSoftwareVersion: "1" }), apiVersionsApi);
}

function metadataRequest(correlationId: number, version: number, topics: string[] | null): Buffer {
  return frame(ApiKey.Metadata, version, correlationId, (w) => {
    if (version === 0) w.array(topics ?? [], (x, t) => x.string(t));
    else w.nullableArray(topics, (x, t) => x.string(t));
    if (version >= 4) w.boolean(false);
    if (version >= 8) w.boolean(false).boolean(false);
  });
}

function produceRequest(correlationId: number, version: number, acks: number, topic: string, partition: number, records: Buffer): Buffer {
  return frame(ApiKey.Produce, version, correlationId, (w) => {
    w.nullableString(null).int16(acks).int32(5000);
    w.array([topic], (x, t) => {
      x.string(t);
      x.array([partition], (y, p) => y.int32(p).bytes(records));
    });
  });
}

function fetchRequest(correlationId: number, topic: string, partition: number, offset: number): Buffer {
  return frame(ApiKey.Fetch, 4, correlationId, (w) => {
    w.int32(-1).int32(0).int32(0).int32(1 << 20).int8(0);
    w.array([topic], (x, t) => {
      x.string(t);
      x.array([partition], (y, p) => y.int32(p).int64(offset).int32(1 << 20));
    });
  });
}

function listOffsetsRequest(correlationId: number, topic: string, partition: number): Buffer {
  return frame(ApiKey.ListOffsets, 1, correlationId, (w) => {
    w.int32(-1);
    w.array([topic], (x, t) => {
      x.string(t);
      x.array([partition], (y, p) => y.int32(p).int64(-2));
    });
  });
}

function findCoordinatorRequest(correlationId: number, group: string): Buffer {
  return frame(ApiKey.FindCoordinator, 0, correlationId, (w) => w.string(group));
}

function heartbeatRequest(correlationId: number, group: string): Buffer {
  return frame(ApiKey.Heartbeat, 0, correlationId, (w) => w.string(group).int32(1).string("member-x"));
}

function listGroupsRequest(correlationId: number): Buffer {
  return frame(ApiKey.ListGroups, 0, correlationId, () => {});
}

function joinGroupRequest(correlationId: number, group: string): Buffer {
  return frame(ApiKey.JoinGroup, 1, correlationId, (w) => {
    w.string(group).int32(6000).int32(6000).string("").string("consumer");
    w.array(["range"], (x, name) => x.string(name).bytes(Buffer.from([0, 0, 0, 0, 0, 1, 0, 4, 0x66, 0x75, 0x7a, 0x7a, 0, 0, 0, 0])));
  });
}

function syncGroupRequest(correlationId: number, group: string): Buffer {
  return frame(ApiKey.SyncGroup, 0, correlationId, (w) => w.string(group).int32(1).string("member-x").array(["member-x"], (x, m) => x.string(m).bytes(Buffer.alloc(8))));
}

function leaveGroupRequest(correlationId: number, group: string): Buffer {
  return frame(ApiKey.LeaveGroup, 0, correlationId, (w) => w.string(group).string("member-x"));
}

function offsetCommitRequest(correlationId: number, group: string, offset: number): Buffer {
  return frame(ApiKey.OffsetCommit, 2, correlationId, (w) => {
    w.string(group).int32(-1).string("").int64(-1);
    w.array([TOPIC], (x, t) => x.string(t).array([0, 1], (y, p) => y.int32(p).int64(offset).nullableString("fuzz")));
  });
}

function offsetFetchRequest(correlationId: number, group: string): Buffer {
  return frame(ApiKey.OffsetFetch, 1, correlationId, (w) => w.string(group).array([TOPIC], (x, t) => x.string(t).array([0, 1], (y, p) => y.int32(p))));
}

function describeGroupsRequest(correlationId: number, group: string): Buffer {
  return frame(ApiKey.DescribeGroups, 0, correlationId, (w) => w.array([group], (x, g) => x.string(g)));
}

function createTopicsRequest(correlationId: number, topic: string): Buffer {
  return frame(ApiKey.CreateTopics, 0, correlationId, (w) => {
    w.array([topic], (x, t) => x.string(t).int32(1).int16(1).array([], () => {}).array([], () => {}));
    w.int32(5000);
  });
}

function initProducerIdRequest(correlationId: number): Buffer {
  return frame(ApiKey.InitProducerId, 0, correlationId, (w) => w.nullableString(null).int32(60_000));
}

function describeConfigsRequest(correlationId: number): Buffer {
  return frame(ApiKey.DescribeConfigs, 0, correlationId, (w) =>
    w.array(
      [
        [2, TOPIC],
        [4, "1"],
      ] as const,
      (x, [type, name]) => x.int8(type).string(name).nullableArray(null, () => {}),
    ),
  );
}

function batchOf(rng: SeededRandom, count: number): Buffer {
  const records = Array.from({ length: count }, (_, i) => ({ key: Buffer.from(`k${rng.int(0, 1000)}`), value: Buffer.from(`fuzz value ${i} ${rng.int(0, 1e9)}`) }));
  return encodeBatch(records, { compression: rng.pick(["none", "gzip", "snappy", "lz4", "zstd"] as const), nowMs: 1_700_000_000_000 });
}

// ---- mutations ----

function randomBytes(rng: SeededRandom, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = rng.int(0, 256);
  return b;
}

function flipBytes(rng: SeededRandom, b: Buffer, from: number, flips: number): Buffer {
  const out = Buffer.from(b);
  for (let i = 0; i < flips && out.length > from; i++) out[rng.int(from, out.length)] = rng.int(0, 256);
  return out;
}

function withSize(body: Buffer, size: number): Buffer {
  const prefix = Buffer.allocUnsafe(4);
  prefix.writeInt32BE(size | 0, 0);
  return Buffer.concat([prefix, body]);
}

/** A valid frame of a random API, for the fuzz mix. */
function validFrame(rng: SeededRandom, correlationId: number): Buffer {
  const partition = rng.int(0, PARTITIONS);
  const group = `g${rng.int(0, 3)}`;
  switch (rng.int(0, 17)) {
    case 0:
      return apiVersionsRequest(correlationId, rng.int(0, 4));
    case 1:
      return metadataRequest(correlationId, rng.int(0, 9), rng.bool() ? null : [TOPIC]);
    case 2:
      return fetchRequest(correlationId, TOPIC, partition, rng.int(0, RECORDS));
    case 3:
      return listOffsetsRequest(correlationId, TOPIC, partition);
    case 4:
      return findCoordinatorRequest(correlationId, group);
    case 5:
      return heartbeatRequest(correlationId, group);
    case 6:
      return listGroupsRequest(correlationId);
    case 7:
      return joinGroupRequest(correlationId, group);
    case 8:
      return syncGroupRequest(correlationId, group);
    case 9:
      return leaveGroupRequest(correlationId, group);
    case 10:
      return offsetCommitRequest(correlationId, group, rng.int(0, RECORDS));
    case 11:
      return offsetFetchRequest(correlationId, group);
    case 12:
      return describeGroupsRequest(correlationId, group);
    case 13:
      return createTopicsRequest(correlationId, `fz-${rng.int(0, 4)}`);
    case 14:
      return initProducerIdRequest(correlationId);
    case 15:
      return describeConfigsRequest(correlationId);
    default:
      return produceRequest(correlationId, rng.int(3, 9), rng.pick([0, 1, -1]), TARGET, partition, batchOf(rng, rng.int(1, 4)));
  }
}

type Case = { name: string; bytes: Buffer; expectClose: boolean };

/** One fuzz connection's bytes: a few frames, valid or mutated. */
function fuzzCase(rng: SeededRandom): Case {
  const corr = rng.int(0, 2 ** 31);
  const kind = rng.int(0, 13);
  switch (kind) {
    case 0:
      return { name: "noise", bytes: randomBytes(rng, rng.int(1, 300)), expectClose: false };
    case 1: {
      const body = randomBytes(rng, rng.int(0, 200));
      return { name: "random frame", bytes: withSize(body, body.length), expectClose: false };
    }
    case 2: {
      const f = validFrame(rng, corr);
      return { name: "truncated frame", bytes: f.subarray(0, rng.int(1, f.length)), expectClose: false };
    }
    case 3: {
      const f = validFrame(rng, corr);
      const lie = f.length - 4 + rng.pick([-20, -5, -1, 1, 7, 1000, 1 << 20]);
      return { name: "lying size prefix", bytes: withSize(f.subarray(4), Math.max(lie, 0)), expectClose: false };
    }
    case 4:
      return { name: "oversized size prefix", bytes: withSize(randomBytes(rng, 64), rng.pick([REQUEST_MAX_BYTES + 1, 0x7fffffff, 0x50000000])), expectClose: true };
    case 5: {
      let apiKey = rng.int(-32768, 32768);
      while (Object.values(ApiKey).includes(apiKey as never)) apiKey = rng.int(100, 32768);
      return { name: "unknown api key", bytes: frame(apiKey, 0, corr, (w) => w.raw(randomBytes(rng, 20))), expectClose: true };
    }
    case 6: {
      const apiKey = rng.pick([ApiKey.Produce, ApiKey.Fetch, ApiKey.Metadata, ApiKey.JoinGroup, ApiKey.OffsetCommit]);
      return { name: "unsupported version", bytes: frame(apiKey, rng.pick([-1, 30, 200, 32767]), corr, (w) => w.raw(randomBytes(rng, 20))), expectClose: true };
    }
    case 7: {
      const apiKey = rng.pick(Object.values(ApiKey));
      const body = randomBytes(rng, rng.int(0, 120));
      return { name: `garbage after a valid header (api ${apiKey})`, bytes: frame(apiKey, rng.int(0, 4), corr, (w) => w.raw(body)), expectClose: false };
    }
    case 8: {
      const f = validFrame(rng, corr);
      // Flip bytes after the size prefix: header and body.
      return { name: "flipped bytes", bytes: flipBytes(rng, f, 4, rng.int(1, 6)), expectClose: false };
    }
    case 9: {
      // A Produce whose batch has flipped bytes and a stale CRC: must be refused (CORRUPT_MESSAGE).
      const batch = flipBytes(rng, batchOf(rng, rng.int(1, 5)), 12, rng.int(1, 4));
      return { name: "produce with a corrupt batch", bytes: produceRequest(corr, rng.int(3, 9), rng.pick([1, -1]), TARGET, rng.int(0, PARTITIONS), batch), expectClose: false };
    }
    case 10: {
      // A Produce whose batch was mutated and its CRC recomputed: reaches the checks behind the CRC.
      const batch = flipBytes(rng, batchOf(rng, rng.int(1, 5)), 21, rng.int(1, 4));
      if (batch.length >= 61) writeBatchCrc(batch, 0, batch.length);
      return { name: "produce with a mutated batch and a valid CRC", bytes: produceRequest(corr, rng.int(3, 9), rng.pick([1, -1]), TARGET, rng.int(0, PARTITIONS), batch), expectClose: false };
    }
    case 11: {
      // A Produce with a batch cut short (or followed by junk) inside the records field.
      const batch = batchOf(rng, rng.int(1, 5));
      const records = rng.bool() ? batch.subarray(0, rng.int(1, batch.length)) : Buffer.concat([batch, randomBytes(rng, rng.int(1, 40))]);
      return { name: "produce with a truncated or padded batch", bytes: produceRequest(corr, rng.int(3, 9), 1, TARGET, rng.int(0, PARTITIONS), records), expectClose: false };
    }
    default: {
      // Several valid frames then one mutation: the valid ones are answered first.
      const frames = Array.from({ length: rng.int(1, 5) }, (_, i) => validFrame(rng, corr + i + 1));
      return { name: "valid frames then garbage", bytes: Buffer.concat([...frames, withSize(randomBytes(rng, 30), rng.int(-5, 40))]), expectClose: false };
    }
  }
}

/** Sends `bytes` in random pieces, then waits until the server closes or CONNECTION_WAIT_MS pass; hangs up. */
async function runCase(rng: SeededRandom, bytes: Buffer): Promise<{ closedByServer: boolean }> {
  const socket = net.connect({ port, host: "127.0.0.1" });
  socket.on("error", () => {});
  socket.on("data", () => {});
  let closed = false;
  const closedPromise = new Promise<void>((resolve) => socket.once("close", () => ((closed = true), resolve())));
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", () => resolve());
      socket.once("error", reject);
    });
    let at = 0;
    for (let piece = 0; at < bytes.length && piece < 64 && !closed; piece++) {
      const n = piece === 63 ? bytes.length - at : rng.int(1, Math.max(2, bytes.length - at + 1));
      socket.write(bytes.subarray(at, at + n));
      at += n;
      if (rng.bool(0.3)) await new Promise((r) => setTimeout(r, rng.int(0, 5)));
    }
    await Promise.race([closedPromise, new Promise((r) => setTimeout(r, CONNECTION_WAIT_MS))]);
    return { closedByServer: closed };
  } finally {
    socket.destroy();
  }
}

async function apiVersionsOverKafka(): Promise<{ errorCode: number; apiKeys: number[] }> {
  const socket = net.connect({ port, host: "127.0.0.1" });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", () => resolve());
      socket.once("error", reject);
    });
    socket.write(apiVersionsRequest(99, 3));
    const chunks: Buffer[] = [];
    const deadline = Date.now() + 10_000;
    for (;;) {
      const all = Buffer.concat(chunks);
      if (all.length >= 4 && all.length >= 4 + all.readInt32BE(0)) {
        const r = new KafkaReader(all, 4, 4 + all.readInt32BE(0));
        expect(decodeResponseHeader(r, 0).correlationId).toBe(99);
        const body = decodeApiVersionsResponse(r, 3);
        return { errorCode: body.errorCode, apiKeys: body.apiKeys.map((k) => k.apiKey) };
      }
      if (Date.now() > deadline) throw new Error("no ApiVersions response within 10 s");
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 100);
        socket.once("data", (b: Buffer) => {
          clearTimeout(t);
          chunks.push(b);
          resolve();
        });
      });
    }
  } finally {
    socket.destroy();
  }
}

/** Every record of `topic` from the start up to each partition's high watermark, through the Flotilla (gRPC) consumer. */
async function readToEnd(topic: string, timeoutMs = 30_000): Promise<ConsumerRecord[]> {
  const bootstrap = theCluster().bootstrap();
  const admin = new Admin({ bootstrapServers: bootstrap });
  const ends = new Map((await admin.fetchTopicOffsets(topic).finally(() => admin.close())).map((o) => [o.partition, o.high]));
  const consumer = new Consumer({ bootstrapServers: bootstrap, autoOffsetReset: "earliest" });
  try {
    await consumer.assign([{ topic }]);
    const out: ConsumerRecord[] = [];
    const next = new Map<number, number>();
    const done = () => [...ends].every(([p, high]) => (next.get(p) ?? 0) >= high);
    const deadline = Date.now() + timeoutMs;
    while (!done() && Date.now() < deadline) {
      for (const r of await consumer.poll({ timeoutMs: 500 })) {
        out.push(r);
        next.set(r.partition, r.offset + 1);
      }
    }
    if (!done()) throw new Error(`read ${out.length} records of ${topic}, short of the high watermarks ${JSON.stringify([...ends])}`);
    return out;
  } finally {
    await consumer.close();
  }
}

/**
 * Every stored batch of `topic`, fetched over gRPC from offset 0 to the high watermark;
 * fails unless each fetch answers without error, every batch passes its header and CRC
 * checks, and offsets run on without a gap or overlap.
 */
async function readBatches(topic: string): Promise<Buffer[]> {
  const client = new RawBrokerClient(theCluster().address(1));
  const out: Buffer[] = [];
  try {
    for (let partition = 0; partition < PARTITIONS; partition++) {
      let next = 0;
      for (let round = 0; round < 10_000; round++) {
        const res = await client.fetch({ replicaId: -1, maxWaitMs: 0, minBytes: 0, maxBytes: 4 << 20, topics: [{ name: topic, partitions: [{ partition, fetchOffset: next, partitionMaxBytes: 4 << 20, currentLeaderEpoch: -1 }] }] });
        const p = res.topics[0]!.partitions[0]!;
        expect(p.errorCode, `${topic}-${partition} at ${next}: ${p.errorMessage}`).toBe(0);
        if (next >= p.highWatermark) break;
        const batches = validateBatches(Buffer.from(p.records));
        expect(batches.length, `${topic}-${partition}: no batch at ${next} below the high watermark ${p.highWatermark}`).toBeGreaterThan(0);
        for (const b of batches) {
          expect(b.header.baseOffset, `${topic}-${partition}: batch offsets`).toBe(next);
          next = b.header.baseOffset + b.header.lastOffsetDelta + 1;
          out.push(Buffer.from(p.records.subarray(b.pos, b.pos + b.size)));
        }
      }
    }
    return out;
  } finally {
    client.close();
  }
}

describe("Kafka listener fuzzing on a real node", () => {
  it(`survives ${CONNECTIONS} connections of random and mutated frames (seed ${SEED}); records stay intact`, async () => {
    const c = theCluster();
    const producer = new Producer({ bootstrapServers: c.bootstrap(), acks: "all" });
    const sent = Array.from({ length: RECORDS }, (_, i) => ({ key: `key-${i}`, value: `value-${i}-${"x".repeat(i)}` }));
    try {
      await producer.send({ topic: TOPIC, messages: sent });
    } finally {
      await producer.close();
    }
    const before = await readToEnd(TOPIC);
    expect(before).toHaveLength(RECORDS);

    const rng = new SeededRandom(SEED);
    const cases = Array.from({ length: CONNECTIONS }, () => fuzzCase(rng));
    const caseSeeds = cases.map(() => rng.int(0, 2 ** 31));
    const outcomes: { name: string; closedByServer: boolean; expectClose: boolean }[] = [];
    let nextCase = 0;
    const worker = async (): Promise<void> => {
      while (nextCase < cases.length) {
        const i = nextCase++;
        const { closedByServer } = await runCase(new SeededRandom(caseSeeds[i]!), cases[i]!.bytes);
        outcomes[i] = { name: cases[i]!.name, closedByServer, expectClose: cases[i]!.expectClose };
      }
    };
    await Promise.all(Array.from({ length: PARALLEL_CONNECTIONS }, worker));

    expect(c.isRunning(1), `node died during fuzzing (seed ${SEED}); see ${c.handle(1)?.stderrPath}`).toBe(true);
    // Inputs the listener must refuse by closing the connection.
    const notClosed = outcomes.filter((o) => o.expectClose && !o.closedByServer).map((o) => o.name);
    expect(notClosed, `seed ${SEED}`).toEqual([]);

    const apiVersions = await apiVersionsOverKafka();
    expect(apiVersions.errorCode).toBe(0);
    expect(apiVersions.apiKeys).toContain(ApiKey.Produce);

    const after = await readToEnd(TOPIC);
    const show = (rs: ConsumerRecord[]) => rs.map((r) => `${r.partition}/${r.offset}/${r.key?.toString()}/${r.value?.toString()}`).sort();
    expect(show(after)).toEqual(show(before));
    expect(new Set(after.map((r) => r.key?.toString()))).toEqual(new Set(sent.map((s) => s.key)));

    // Whatever the fuzzer got accepted into the target topic reads back as whole, CRC-valid
    // batches with contiguous offsets up to the high watermark, and every one of them decodes
    // record by record: the broker validates the records of each produced batch, so a batch
    // with a right CRC but unreadable records never reaches the log.
    const target = await readBatches(TARGET);
    const undecodable = target.filter((b) => {
      try {
        decodeBatch(b);
        return false;
      } catch {
        return true;
      }
    });
    expect(undecodable.length, `fuzz seed ${SEED}: stored batches in ${TARGET} whose records do not decode`).toBe(0);

    // Bad input is logged at warn; an error-level line from the Kafka component means some
    // input reached a code path that failed unexpectedly (a bug, even if the node survived).
    const stderr = fs.readFileSync(c.handle(1)!.stderrPath, "utf8");
    const unexpected = stderr.split("\n").filter((l) => l.includes('"component":"kafka"') && l.includes('"level":50'));
    expect(unexpected.slice(0, 3), `seed ${SEED}: ${unexpected.length} error-level Kafka log lines`).toEqual([]);
    expect(c.isRunning(1)).toBe(true);
  }, 180_000);

  it("answers 120 pipelined requests of different APIs on one connection in request order", async () => {
    const rng = new SeededRandom(SEED + 1);
    const builders = [
      (corr: number) => apiVersionsRequest(corr, rng.int(0, 4)),
      (corr: number) => metadataRequest(corr, rng.int(0, 9), [TOPIC]),
      (corr: number) => listOffsetsRequest(corr, TOPIC, rng.int(0, PARTITIONS)),
      (corr: number) => fetchRequest(corr, TOPIC, rng.int(0, PARTITIONS), 0),
      (corr: number) => findCoordinatorRequest(corr, "ordered"),
      (corr: number) => offsetFetchRequest(corr, "ordered"),
      (corr: number) => describeConfigsRequest(corr),
      (corr: number) => produceRequest(corr, rng.int(3, 9), 1, TARGET, rng.int(0, PARTITIONS), batchOf(rng, 2)),
    ];
    const count = 120;
    const correlationIds = Array.from({ length: count }, (_, i) => 1000 + i * 7);
    const socket = net.connect({ port, host: "127.0.0.1" });
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once("connect", () => resolve());
        socket.once("error", reject);
      });
      const chunks: Buffer[] = [];
      socket.on("data", (b: Buffer) => chunks.push(b));
      socket.write(Buffer.concat(correlationIds.map((corr) => rng.pick(builders)(corr))));
      const seen: number[] = [];
      const deadline = Date.now() + 30_000;
      while (seen.length < count && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        let all = Buffer.concat(chunks);
        seen.length = 0;
        while (all.length >= 4 && all.length >= 4 + all.readInt32BE(0)) {
          seen.push(all.readInt32BE(4));
          all = all.subarray(4 + all.readInt32BE(0));
        }
      }
      expect(seen).toEqual(correlationIds);
    } finally {
      socket.destroy();
    }
  }, 60_000);

  it("serves kcat -L (librdkafka) and the Flotilla CLI on the same port", async () => {
    const c = theCluster();
    const kcat = spawnSync("kcat", ["-L", "-b", `127.0.0.1:${port}`, "-m", "20"], { encoding: "utf8", timeout: 30_000 });
    if (kcat.error && (kcat.error as NodeJS.ErrnoException).code === "ENOENT") {
      throw new Error("kcat is not installed: install it (Debian/Ubuntu: apt-get install kcat; .ci/run does this) — the Kafka interop tests need it");
    }
    expect(kcat.status, kcat.stderr).toBe(0);
    expect(kcat.stdout).toContain(`broker 1 at 127.0.0.1:${port}`);
    expect(kcat.stdout).toContain(`topic "${TOPIC}" with ${PARTITIONS} partitions`);

    const cli = await runFlotilla(["topics", "list", "--bootstrap-server", c.bootstrap()]);
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stdout).toContain(TOPIC);
  }, 60_000);
});

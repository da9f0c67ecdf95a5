/**
 * A real node behind an in-process gRPC proxy that loses the answer to the first Produce
 * (the node appends the batch, the client sees NETWORK_EXCEPTION): the idempotent producer's
 * retry is recognised by the partition leader's producer state and answered with the
 * original offsets, so every record is stored once. The same fault without idempotence
 * stores the batch twice, which shows the fault really hits.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FlotillaError } from "../../packages/common/src/index.js";
import { silentLogger } from "../../packages/common/src/logger.js";
import type { BrokerApi } from "../../packages/protocol/src/index.js";
import { loadServerConfig, startBrokerGrpcServer, startNode, type BrokerGrpcServer, type NodeHandle } from "../../packages/broker/src/index.js";
import { Admin, Consumer, Producer } from "../../packages/client/src/index.js";
import { BrokerConnection } from "../../packages/client/src/connection.js";

let dataDir: string;
let node: NodeHandle | undefined;
let proxy: BrokerGrpcServer | undefined;
let upstream: BrokerConnection | undefined;
/** Produce answers the proxy still has to lose. */
let dropProduceAnswers = 0;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), "flotilla-idempotence-"));
  node = await startNode(loadServerConfig({ env: {}, overrides: { "node.id": "1", listeners: "PLAINTEXT://127.0.0.1:0", "log.dirs": dataDir } }), { logger: silentLogger() });
  const up = new BrokerConnection(node.address, "proxy");
  upstream = up;
  const call = { timeoutMs: 10_000 };
  let proxyPort = 0;
  const api: BrokerApi = {
    async produce(req) {
      const res = await up.produce(req, call);
      if (dropProduceAnswers > 0) {
        dropProduceAnswers--;
        throw new FlotillaError("NETWORK_EXCEPTION", "proxy lost the Produce answer");
      }
      return res;
    },
    fetch: (req) => up.fetch(req, call),
    listOffsets: (req) => up.listOffsets(req, call),
    // Clients must come back through the proxy: it stands in for the node in metadata.
    metadata: async (req) => {
      const res = await up.metadata(req, call);
      return { ...res, brokers: res.brokers.map((b) => ({ ...b, host: "127.0.0.1", port: proxyPort })) };
    },
    createTopics: (req) => up.createTopics(req, call),
    deleteTopics: (req) => up.deleteTopics(req, call),
    describeTopics: (req) => up.describeTopics(req, call),
    initProducerId: (req) => up.initProducerId(req, call),
    createPartitions: (req) => up.createPartitions(req, call),
  };
  proxy = await startBrokerGrpcServer({ api, host: "127.0.0.1", port: 0, logger: silentLogger() });
  proxyPort = proxy.port;
}, 30_000);

afterAll(async () => {
  await proxy?.close(1000);
  upstream?.close();
  await node?.close();
  await rm(dataDir, { recursive: true, force: true });
});

async function readAll(topic: string, partition: number, count: number): Promise<{ offset: number; value: string }[]> {
  const consumer = new Consumer({ bootstrapServers: node!.address, autoOffsetReset: "earliest", logger: silentLogger() });
  const out: { offset: number; value: string }[] = [];
  try {
    await consumer.assign([{ topic, partition }]);
    // Bounded: at most 50 polls of at most 200 ms; one more poll past `count` shows duplicates.
    for (let i = 0; i < 50; i++) {
      const batch = await consumer.poll({ timeoutMs: 200 });
      for (const m of batch) out.push({ offset: m.offset, value: m.value?.toString() ?? "" });
      if (out.length >= count && batch.length === 0) break;
    }
  } finally {
    await consumer.close();
  }
  return out;
}

describe("idempotent producer against a real node", () => {
  it("a retry after a lost Produce answer is answered with the original offsets and stored once", async () => {
    const admin = new Admin({ bootstrapServers: proxy ? `127.0.0.1:${proxy.port}` : "", logger: silentLogger() });
    await admin.createTopics({ topics: [{ topic: "idem", numPartitions: 2 }] });
    await admin.close();

    const producer = new Producer({ bootstrapServers: `127.0.0.1:${proxy!.port}`, logger: silentLogger(), retryBackoffMs: 10 });
    try {
      dropProduceAnswers = 1;
      const meta = await producer.send({ topic: "idem", messages: Array.from({ length: 20 }, (_, i) => ({ value: `v${i}`, partition: 0 })) });
      expect(dropProduceAnswers).toBe(0);
      expect(meta.map((m) => m.offset)).toEqual(Array.from({ length: 20 }, (_, i) => i));
      const more = await producer.send({ topic: "idem", messages: [{ value: "after", partition: 0 }] });
      expect(more[0]!.offset).toBe(20);
    } finally {
      await producer.close();
    }
    const records = await readAll("idem", 0, 21);
    expect(records.map((r) => r.value)).toEqual([...Array.from({ length: 20 }, (_, i) => `v${i}`), "after"]);

    const plain = new Producer({ bootstrapServers: `127.0.0.1:${proxy!.port}`, logger: silentLogger(), retryBackoffMs: 10, idempotent: false });
    try {
      dropProduceAnswers = 1;
      await plain.send({ topic: "idem", messages: [{ value: "once", partition: 1 }] });
    } finally {
      await plain.close();
    }
    expect((await readAll("idem", 1, 2)).map((r) => r.value)).toEqual(["once", "once"]);
  }, 30_000);
});

/**
 * ListOffsets on a leader that just took over: until its high watermark has advanced in
 * its own leader epoch it answers consumers OFFSET_NOT_AVAILABLE (retriable), never the
 * stale high watermark it carried over; replicas still get the log end offset.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { FlotillaError, errorNameOf } from "@flotilla/common";
import { silentLogger } from "@flotilla/common/logger";
import { systemClock } from "@flotilla/common/node";
import { DEFAULT_TOPIC_CONFIG, EMPTY_IMAGE, diffImages, replay, type MetadataImage, type MetadataRecord } from "@flotilla/metadata";
import { EARLIEST_TIMESTAMP, LATEST_TIMESTAMP } from "@flotilla/protocol";
import { LogManager } from "@flotilla/storage";
import { buildBatch } from "@flotilla/storage/test-support";
import { handleListOffsets } from "./list-offsets.js";
import { handleProduce } from "./produce.js";
import { ReplicaManager, toLogConfig } from "./replica-manager.js";

const TOPIC = "offsets";
const TOPIC_ID = "BBBBBBBBBBBBBBBBBBBBBB";

let dir: string | undefined;
let replicas: ReplicaManager | undefined;

afterEach(async () => {
  await replicas?.close();
  replicas = undefined;
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

describe("ListOffsets and the high watermark of a new leader epoch", () => {
  it("answers OFFSET_NOT_AVAILABLE to consumers until the HW reaches the epoch's start offset, then the HW", async () => {
    dir = await mkdtemp(path.join(tmpdir(), "flotilla-list-offsets-"));
    // Broker 1 leads [1, 2]; broker 2 never fetches (there is no broker 2), so it holds the HW.
    let image: MetadataImage = EMPTY_IMAGE;
    const apply = async (records: MetadataRecord[]) => {
      const prev = image;
      for (const r of records) image = replay(image, r, image.offset + 1);
      await replicas!.applyImage(image, diffImages(prev, image));
    };
    const logs = await LogManager.open({ logDirs: [dir], clock: systemClock, logger: silentLogger(), configFor: () => toLogConfig(DEFAULT_TOPIC_CONFIG) });
    replicas = new ReplicaManager({
      nodeId: 1,
      logs,
      topicDefaults: DEFAULT_TOPIC_CONFIG,
      logger: silentLogger(),
      parkedFetchesMax: 10,
      controllerChannel: { alterPartition: () => Promise.reject(new FlotillaError("NETWORK_EXCEPTION", "no controller in this test")) },
      brokerEpoch: () => 0,
      replicaLagTimeMaxMs: 60_000,
      replicaFetch: { fetchWaitMaxMs: 100, fetchBackoffMs: 50 },
      replicaClientFactory: () => {
        throw new FlotillaError("NETWORK_EXCEPTION", "no other broker in this test");
      },
      highWatermarkCheckpointIntervalMs: 60_000,
    });
    const brokers: MetadataRecord[] = [1, 2].flatMap((id, i): MetadataRecord[] => [
      { type: "RegisterBroker", brokerId: id, incarnationId: `inc-${id}`, endpoints: [{ name: "PLAINTEXT", host: `broker-${id}`, port: 9000 + id }], rack: null },
      { type: "UnfenceBroker", brokerId: id, brokerEpoch: 2 * i },
    ]);
    await apply([...brokers, { type: "Topic", name: TOPIC, topicId: TOPIC_ID }, { type: "Partition", topicId: TOPIC_ID, partition: 0, replicas: [1, 2], isr: [1, 2], leader: 1, leaderEpoch: 0, partitionEpoch: 0 }]);

    const listOffsets = async (timestamp: number, replicaId = -1) => {
      const res = await handleListOffsets(replicas!, { replicaId, topics: [{ name: TOPIC, partitions: [{ partition: 0, timestamp }] }] });
      const p = res.topics[0]!.partitions[0]!;
      return { error: p.errorCode === 0 ? "NONE" : errorNameOf(p.errorCode), offset: p.offset };
    };
    const produced = await handleProduce(replicas, { acks: 1, timeoutMs: 1000, topics: [{ name: TOPIC, partitions: [{ partition: 0, records: buildBatch({ records: 3, seed: 1 }) }] }] }, () => Date.now());
    expect(produced.topics[0]!.partitions[0]!.errorCode).toBe(0);
    const p = replicas.partition(TOPIC, 0);
    expect(p.log.logEndOffset).toBe(3);
    // In epoch 0 the HW (0) is this leader's own: records broker 2 has not copied are not committed yet.
    expect(p.highWatermark).toBe(0);
    expect(await listOffsets(LATEST_TIMESTAMP)).toEqual({ error: "NONE", offset: 0 });

    // A new leader epoch on the same broker (as after a failover back to it): the HW it carries
    // (0) is below where the epoch starts (3), so it is not known yet.
    await apply([{ type: "PartitionChange", topicId: TOPIC_ID, partition: 0, leader: 1 }]);
    expect(p.leaderEpoch).toBe(1);
    expect(p.highWatermarkKnown).toBe(false);
    expect(await listOffsets(LATEST_TIMESTAMP)).toEqual({ error: "OFFSET_NOT_AVAILABLE", offset: -1 });
    expect(await listOffsets(EARLIEST_TIMESTAMP)).toEqual({ error: "OFFSET_NOT_AVAILABLE", offset: -1 });
    // A replica asking (replica id >= 0) gets the log end offset regardless.
    expect(await listOffsets(LATEST_TIMESTAMP, 2)).toEqual({ error: "NONE", offset: 3 });

    // Broker 2 fetches at 3 in the new epoch: the HW moves to 3 and is known.
    p.updateFollowerFetchState(2, 3);
    expect(p.highWatermark).toBe(3);
    expect(p.highWatermarkKnown).toBe(true);
    expect(await listOffsets(LATEST_TIMESTAMP)).toEqual({ error: "NONE", offset: 3 });
    expect(await listOffsets(EARLIEST_TIMESTAMP)).toEqual({ error: "NONE", offset: 0 });
  });
});

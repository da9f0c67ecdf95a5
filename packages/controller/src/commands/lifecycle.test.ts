import { describe, expect, it } from "vitest";
import { ErrorCodes } from "@flotilla/common";
import { EMPTY_IMAGE, type MetadataImage, type MetadataRecord, type PartitionRegistration } from "@flotilla/metadata";
import { brokerHeartbeat, registerBroker } from "./brokers.js";
import { allocateProducerIds, alterPartition, applyAhead, electLeaderless, fenceBroker, preferredLeaderChanges, type ElectionContext } from "./lifecycle.js";

const endpoints = [{ name: "PLAINTEXT", host: "127.0.0.1", port: 9092 }];
const TOPIC = "AAAAAAAAAAAAAAAAAAAAAA";
const ctx: ElectionContext = { shuttingDown: new Set(), uncleanLeaderElectionEnable: false };

/** Brokers 1..n registered and unfenced, then topic "t" with the given partitions (replicas, isr, leader). */
function cluster(n: number, partitions: { replicas: number[]; isr?: number[]; leader?: number }[]): MetadataImage {
  let image = EMPTY_IMAGE;
  for (let id = 1; id <= n; id++) {
    image = applyAhead(image, registerBroker(image, { brokerId: id, incarnationId: `i${id}`, endpoints, rack: null }).records);
    const epoch = image.brokers.get(id)!.brokerEpoch;
    image = applyAhead(image, [{ type: "UnfenceBroker", brokerId: id, brokerEpoch: epoch }]);
  }
  const records: MetadataRecord[] = [{ type: "Topic", name: "t", topicId: TOPIC }];
  partitions.forEach((p, i) =>
    records.push({ type: "Partition", topicId: TOPIC, partition: i, replicas: p.replicas, isr: p.isr ?? p.replicas, leader: p.leader ?? p.replicas[0]!, leaderEpoch: 0, partitionEpoch: 0 }),
  );
  return applyAhead(image, records);
}

const part = (image: MetadataImage, p = 0): PartitionRegistration => image.topicsById.get(TOPIC)!.partitions.get(p)!;
const epochOf = (image: MetadataImage, id: number): number => image.brokers.get(id)!.brokerEpoch;

describe("fencing a broker", () => {
  it("gives each partition it led the first live ISR replica in replica order, with a new leader epoch, and drops it from ISRs", () => {
    let image = cluster(3, [{ replicas: [1, 2, 3] }, { replicas: [2, 1, 3] }, { replicas: [3, 2, 1], isr: [3, 1] }]);
    image = applyAhead(image, fenceBroker(image, 1, ctx).records);
    expect(image.brokers.get(1)?.fenced).toBe(true);
    expect(part(image, 0)).toMatchObject({ leader: 2, leaderEpoch: 1, isr: [2, 3] });
    expect(part(image, 1)).toMatchObject({ leader: 2, leaderEpoch: 0, isr: [2, 3] });
    expect(part(image, 2)).toMatchObject({ leader: 3, leaderEpoch: 0, isr: [3] });
  });

  it("never shrinks the ISR below one member: the sole ISR leader leaves the partition leaderless and stays in the ISR", () => {
    let image = cluster(3, [{ replicas: [1, 2, 3], isr: [1] }]);
    image = applyAhead(image, fenceBroker(image, 1, ctx).records);
    expect(part(image)).toMatchObject({ leader: -1, isr: [1], leaderEpoch: 1 });
    // Unclean election instead takes a live replica outside the ISR.
    let unclean = cluster(3, [{ replicas: [1, 2, 3], isr: [1] }]);
    unclean = applyAhead(unclean, fenceBroker(unclean, 1, { ...ctx, uncleanLeaderElectionEnable: true }).records);
    expect(part(unclean)).toMatchObject({ leader: 2, isr: [2] });
  });

  it("a fenced broker that heartbeats caught up is unfenced and leads the leaderless partitions whose ISR holds it", () => {
    let image = cluster(3, [{ replicas: [1, 2, 3], isr: [1] }]);
    image = applyAhead(image, fenceBroker(image, 1, ctx).records);
    const behind = brokerHeartbeat(image, { brokerId: 1, brokerEpoch: epochOf(image, 1), currentMetadataOffset: epochOf(image, 1) - 1, wantFence: false }, ctx);
    expect(behind.records).toEqual([]);
    expect(behind.response).toMatchObject({ isFenced: true, isCaughtUp: false });
    const hb = brokerHeartbeat(image, { brokerId: 1, brokerEpoch: epochOf(image, 1), currentMetadataOffset: image.offset, wantFence: false }, ctx);
    image = applyAhead(image, hb.records);
    expect(hb.response).toEqual({ isFenced: false, shouldShutDown: false, isCaughtUp: true });
    expect(part(image)).toMatchObject({ leader: 1, isr: [1], leaderEpoch: 2 });
  });

  it("a new incarnation moves the old one's leaderships away before registering it fenced", () => {
    let image = cluster(3, [{ replicas: [1, 2, 3] }]);
    image = applyAhead(image, registerBroker(image, { brokerId: 1, incarnationId: "restarted", endpoints, rack: null }, ctx).records);
    expect(image.brokers.get(1)).toMatchObject({ incarnationId: "restarted", fenced: true });
    expect(part(image)).toMatchObject({ leader: 2, isr: [2, 3] });
  });
});

describe("controlled shutdown", () => {
  it("moves every leadership away and answers shouldShutDown (fenced) once the broker leads nothing", () => {
    let image = cluster(3, [{ replicas: [1, 2, 3] }, { replicas: [1, 3, 2], isr: [1] }, { replicas: [2, 1, 3] }]);
    const shutting: ElectionContext = { ...ctx, shuttingDown: new Set([1]) };
    const hb = brokerHeartbeat(image, { brokerId: 1, brokerEpoch: epochOf(image, 1), currentMetadataOffset: image.offset, wantFence: false, wantShutDown: true }, shutting);
    expect(hb.response).toEqual({ isFenced: true, shouldShutDown: true, isCaughtUp: true });
    image = applyAhead(image, hb.records);
    expect(part(image, 0)).toMatchObject({ leader: 2, isr: [2, 3] });
    expect(part(image, 1)).toMatchObject({ leader: -1, isr: [1] });
    expect(part(image, 2)).toMatchObject({ leader: 2, isr: [2, 3] });
    expect(image.brokers.get(1)?.fenced).toBe(true);
    // A shutting-down broker is not elected, even for a leaderless partition whose ISR holds it.
    expect(electLeaderless(image, shutting)).toEqual([]);
  });
});

describe("AlterPartition", () => {
  const base = () => cluster(3, [{ replicas: [1, 2, 3] }]);
  const call = (image: MetadataImage, over: Partial<Parameters<typeof alterPartition>[1]> = {}) =>
    alterPartition(image, { brokerId: 1, brokerEpoch: epochOf(image, 1), topicId: TOPIC, partition: 0, leaderEpoch: 0, partitionEpoch: 0, newIsr: [1, 2], ...over }, ctx);

  it("shrinks the ISR on a matching compare-and-set and answers the new partition epoch", () => {
    let image = base();
    const result = call(image);
    expect(result.response).toEqual({ errorCode: 0, errorMessage: "", leader: 1, leaderEpoch: 0, partitionEpoch: 1, isr: [1, 2] });
    image = applyAhead(image, result.records);
    expect(part(image)).toMatchObject({ isr: [1, 2], partitionEpoch: 1, leaderEpoch: 0 });
    // The same request again is stale now.
    const stale = call(image);
    expect(stale.records).toEqual([]);
    expect(stale.response.errorCode).toBe(ErrorCodes.INVALID_REQUEST.code);
    expect(stale.response.errorMessage).toContain("partition epoch 0; the current partition epoch is 1");
    expect(stale.response).toMatchObject({ partitionEpoch: 1, isr: [1, 2] });
  });

  it("refuses a stale leader epoch with FENCED_LEADER_EPOCH, a non-leader, and ISRs that leave out the leader or hold fenced brokers", () => {
    let image = base();
    image = applyAhead(image, [{ type: "PartitionChange", topicId: TOPIC, partition: 0, leader: 1 }]);
    const fenced = call(image);
    expect(fenced.response.errorCode).toBe(ErrorCodes.FENCED_LEADER_EPOCH.code);
    expect(fenced.response.errorMessage).toContain("leader epoch 0; the current leader epoch is 1");
    const current = { leaderEpoch: 1, partitionEpoch: 1 };
    expect(call(image, { ...current, brokerId: 2, brokerEpoch: epochOf(image, 2) }).response.errorCode).toBe(ErrorCodes.NOT_LEADER_OR_FOLLOWER.code);
    expect(call(image, { ...current, newIsr: [2, 3] }).response.errorMessage).toContain("leaves out the leader 1");
    expect(call(image, { ...current, newIsr: [1, 4] }).response.errorMessage).toContain("not replicas");
    expect(call(image, { ...current, brokerEpoch: 12345 }).response.errorCode).toBe(ErrorCodes.BROKER_NOT_AVAILABLE.code);
    image = applyAhead(image, [{ type: "FenceBroker", brokerId: 3, brokerEpoch: epochOf(image, 3) }]);
    const withFenced = call(image, { ...current, newIsr: [1, 2, 3] });
    expect(withFenced.response.errorCode).toBe(ErrorCodes.INVALID_REQUEST.code);
    expect(withFenced.response.errorMessage).toContain("brokers 3 are fenced");
    expect(call(image, { ...current, newIsr: [1, 2] }).response.errorCode).toBe(0);
  });
});

describe("preferred leaders and producer ids", () => {
  it("moves leadership back to the first replica only when it is live and in the ISR", () => {
    let image = cluster(3, [{ replicas: [1, 2, 3], leader: 2 }, { replicas: [3, 1, 2], isr: [1, 2], leader: 1 }]);
    const moves = preferredLeaderChanges(image, ctx);
    expect(moves).toEqual([{ type: "PartitionChange", topicId: TOPIC, partition: 0, leader: 1 }]);
    image = applyAhead(image, moves);
    expect(part(image, 0)).toMatchObject({ leader: 1, leaderEpoch: 1 });
    expect(preferredLeaderChanges(image, ctx)).toEqual([]);
  });

  it("hands out consecutive blocks of 1000 producer ids to registered brokers only", () => {
    let image = cluster(2, []);
    const a = allocateProducerIds(image, { brokerId: 1, brokerEpoch: epochOf(image, 1) });
    expect(a.response).toEqual({ firstProducerId: 0, count: 1000 });
    image = applyAhead(image, a.records);
    const b = allocateProducerIds(image, { brokerId: 2, brokerEpoch: epochOf(image, 2) });
    expect(b.response).toEqual({ firstProducerId: 1000, count: 1000 });
    expect(() => allocateProducerIds(image, { brokerId: 2, brokerEpoch: 999 })).toThrow(/BROKER_NOT_AVAILABLE/);
  });
});

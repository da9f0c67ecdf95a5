import { describe, expect, it } from "vitest";
import { FlotillaError } from "@flotilla/common";
import { EMPTY_IMAGE, replayAll, type MetadataImage, type MetadataRecord } from "@flotilla/metadata";
import { brokerHeartbeat, registerBroker } from "./brokers.js";

const endpoints = [{ name: "PLAINTEXT", host: "127.0.0.1", port: 9092 }];

function apply(image: MetadataImage, records: readonly MetadataRecord[]): MetadataImage {
  return replayAll(image, records.map((record, i) => ({ record, offset: image.offset + 1 + i }))).image;
}

describe("broker registration and heartbeats", () => {
  it("a new broker is registered fenced, and a heartbeat from a caught-up broker unfences it", () => {
    const reg = registerBroker(EMPTY_IMAGE, { brokerId: 1, incarnationId: "a", endpoints, rack: null });
    let image = apply(EMPTY_IMAGE, reg.records);
    expect(image.brokers.get(1)).toMatchObject({ fenced: true, brokerEpoch: 0 });
    // Not caught up yet (it has applied nothing): stays fenced.
    expect(brokerHeartbeat(image, { brokerId: 1, brokerEpoch: 0, currentMetadataOffset: -1, wantFence: false })).toEqual({ records: [], response: { isFenced: true, shouldShutDown: false, isCaughtUp: false } });
    const hb = brokerHeartbeat(image, { brokerId: 1, brokerEpoch: 0, currentMetadataOffset: 0, wantFence: false });
    expect(hb.response.isFenced).toBe(false);
    image = apply(image, hb.records);
    expect(image.brokers.get(1)?.fenced).toBe(false);
    // Asking to be fenced fences it.
    const fence = brokerHeartbeat(image, { brokerId: 1, brokerEpoch: 0, currentMetadataOffset: 1, wantFence: true });
    expect(apply(image, fence.records).brokers.get(1)?.fenced).toBe(true);
  });

  it("a retried registration with the same incarnation writes nothing; a new incarnation re-registers", () => {
    const image = apply(EMPTY_IMAGE, registerBroker(EMPTY_IMAGE, { brokerId: 1, incarnationId: "a", endpoints, rack: null }).records);
    expect(registerBroker(image, { brokerId: 1, incarnationId: "a", endpoints, rack: null }).records).toEqual([]);
    expect(registerBroker(image, { brokerId: 1, incarnationId: "b", endpoints, rack: null }).records).toHaveLength(1);
  });

  it("refuses a heartbeat with a stale epoch, and a registration without endpoints", () => {
    const image = apply(EMPTY_IMAGE, registerBroker(EMPTY_IMAGE, { brokerId: 1, incarnationId: "a", endpoints, rack: null }).records);
    expect(() => brokerHeartbeat(image, { brokerId: 1, brokerEpoch: 5, currentMetadataOffset: 9, wantFence: false })).toThrow(/stale broker epoch 5/);
    expect(() => brokerHeartbeat(image, { brokerId: 2, brokerEpoch: 0, currentMetadataOffset: 9, wantFence: false })).toThrow(/not registered/);
    let err: unknown;
    try {
      registerBroker(image, { brokerId: 2, incarnationId: "x", endpoints: [], rack: null });
    } catch (e) {
      err = e;
    }
    expect(FlotillaError.is(err, "INVALID_REQUEST")).toBe(true);
  });
});

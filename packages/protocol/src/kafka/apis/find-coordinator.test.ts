import { describe, expect, it } from "vitest";
import { KafkaReader, KafkaWriter } from "../wire.js";
import { findCoordinatorApi } from "./find-coordinator.js";

describe("FindCoordinator codec", () => {
  it("reads a v0 request as a group lookup and v1+ with its key type", () => {
    const v0 = new KafkaWriter().string("orders").toBuffer();
    expect(findCoordinatorApi.decodeRequest(new KafkaReader(v0), 0)).toEqual({ key: "orders", keyType: 0 });
    for (const version of [1, 2]) {
      const r = new KafkaReader(new KafkaWriter().string("txn-1").int8(1).toBuffer());
      expect(findCoordinatorApi.decodeRequest(r, version)).toEqual({ key: "txn-1", keyType: 1 });
      expect(r.remaining).toBe(0);
    }
  });

  it("writes v0 without throttle time and message, v1+ with both", () => {
    const res = { throttleTimeMs: 0, errorCode: 0, errorMessage: null, nodeId: 3, host: "127.0.0.1", port: 9092 };
    const w0 = new KafkaWriter();
    findCoordinatorApi.encodeResponse(w0, 0, res);
    const r0 = new KafkaReader(w0.toBuffer());
    expect([r0.int16(), r0.int32(), r0.string(), r0.int32(), r0.remaining]).toEqual([0, 3, "127.0.0.1", 9092, 0]);

    const w2 = new KafkaWriter();
    findCoordinatorApi.encodeResponse(w2, 2, findCoordinatorApi.errorResponse({ key: "g", keyType: 1 }, 2, 42, "key type 1 is not served"));
    const r2 = new KafkaReader(w2.toBuffer());
    expect([r2.int32(), r2.int16(), r2.nullableString(), r2.int32(), r2.string(), r2.int32(), r2.remaining]).toEqual([0, 42, "key type 1 is not served", -1, "", -1, 0]);
  });

  it("rejects a truncated request", () => {
    expect(() => findCoordinatorApi.decodeRequest(new KafkaReader(new KafkaWriter().string("g").toBuffer()), 1)).toThrow(/INVALID_REQUEST/);
  });
});

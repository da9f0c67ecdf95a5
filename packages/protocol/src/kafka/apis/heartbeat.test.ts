import { describe, expect, it } from "vitest";
import { KafkaReader, KafkaWriter } from "../wire.js";
import { heartbeatApi } from "./heartbeat.js";

describe("Heartbeat codec", () => {
  it.each([0, 1, 2, 3])("reads a v%i request", (version) => {
    const w = new KafkaWriter().string("g1").int32(9).string("m-1");
    if (version >= 3) w.nullableString("inst");
    const r = new KafkaReader(w.toBuffer());
    expect(heartbeatApi.decodeRequest(r, version)).toEqual({ groupId: "g1", generationId: 9, memberId: "m-1", groupInstanceId: version >= 3 ? "inst" : null });
    expect(r.remaining).toBe(0);
  });

  it("writes v0 as the error code alone and v1+ with throttle time first", () => {
    const w0 = new KafkaWriter();
    heartbeatApi.encodeResponse(w0, 0, { throttleTimeMs: 5, errorCode: 27 });
    expect([...w0.toBuffer()]).toEqual([0, 27]);
    const w3 = new KafkaWriter();
    heartbeatApi.encodeResponse(w3, 3, heartbeatApi.errorResponse({ groupId: "g", generationId: 1, memberId: "m", groupInstanceId: null }, 3, 15, "x"));
    expect([...w3.toBuffer()]).toEqual([0, 0, 0, 0, 0, 15]);
  });
});

import { describe, expect, it } from "vitest";
import { KafkaReader, KafkaWriter } from "../wire.js";
import { offsetFetchApi, type KafkaOffsetFetchResponse } from "./offset-fetch.js";

describe("OffsetFetch codec", () => {
  it.each([0, 1, 2, 5])("reads named partitions in a v%i request", (version) => {
    const w = new KafkaWriter().string("g1").array(["t1", "t2"], (w, name) => w.string(name).array([0, 1], (w, p) => w.int32(p)));
    const r = new KafkaReader(w.toBuffer());
    expect(offsetFetchApi.decodeRequest(r, version)).toEqual({
      groupId: "g1",
      topics: [
        { name: "t1", partitionIndexes: [0, 1] },
        { name: "t2", partitionIndexes: [0, 1] },
      ],
    });
    expect(r.remaining).toBe(0);
  });

  it("tells a null topic list (all, v2+) from an empty one, and refuses null below v2", () => {
    const nullList = new KafkaWriter().string("g1").int32(-1).toBuffer();
    expect(offsetFetchApi.decodeRequest(new KafkaReader(nullList), 2)).toEqual({ groupId: "g1", topics: null });
    expect(offsetFetchApi.decodeRequest(new KafkaReader(new KafkaWriter().string("g1").int32(0).toBuffer()), 2)).toEqual({ groupId: "g1", topics: [] });
    expect(() => offsetFetchApi.decodeRequest(new KafkaReader(nullList), 1)).toThrow(/INVALID_REQUEST.*v2/);
  });

  it.each([0, 1, 2, 3, 4, 5])("writes a v%i response with its version's fields", (version) => {
    const res: KafkaOffsetFetchResponse = {
      throttleTimeMs: 2,
      errorCode: 14,
      topics: [
        {
          name: "t1",
          partitions: [
            { partitionIndex: 0, committedOffset: 42, committedLeaderEpoch: 3, metadata: "m", errorCode: 0 },
            { partitionIndex: 1, committedOffset: -1, committedLeaderEpoch: -1, metadata: null, errorCode: 0 },
          ],
        },
      ],
    };
    const w = new KafkaWriter();
    offsetFetchApi.encodeResponse(w, version, res);
    const r = new KafkaReader(w.toBuffer());
    if (version >= 3) expect(r.int32()).toBe(2);
    const topics = r.array((t) => [t.string(), t.array((p) => [p.int32(), p.int64(), version >= 5 ? p.int32() : "none", p.nullableString(), p.int16()])]);
    expect(topics).toEqual([
      [
        "t1",
        [
          [0, 42, version >= 5 ? 3 : "none", "m", 0],
          [1, -1, version >= 5 ? -1 : "none", null, 0],
        ],
      ],
    ]);
    if (version >= 2) expect(r.int16()).toBe(14);
    expect(r.remaining).toBe(0);
  });

  it("puts a whole-request error on every named partition (v0/v1 have no top-level code)", () => {
    const res = offsetFetchApi.errorResponse({ groupId: "g", topics: [{ name: "t", partitionIndexes: [3] }] }, 1, 16, "x");
    expect(res.topics[0]!.partitions[0]).toEqual({ partitionIndex: 3, committedOffset: -1, committedLeaderEpoch: -1, metadata: null, errorCode: 16 });
    expect(res.errorCode).toBe(16);
  });
});

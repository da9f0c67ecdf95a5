import { describe, expect, it } from "vitest";
import { KafkaReader, KafkaWriter } from "../wire.js";
import { listOffsetsApi } from "./list-offsets.js";

describe("ListOffsets codec", () => {
  for (const version of [1, 2, 4, 5]) {
    it(`decodes a v${version} request and writes its response`, () => {
      const w = new KafkaWriter().int32(-1);
      if (version >= 2) w.int8(1);
      w.int32(1).string("t").int32(2);
      for (const [p, ts] of [
        [0, -1],
        [1, -2],
      ] as const) {
        w.int32(p);
        if (version >= 4) w.int32(9);
        w.int64(ts);
      }
      const r = new KafkaReader(w.toBuffer());
      const req = listOffsetsApi.decodeRequest(r, version);
      expect(r.remaining).toBe(0);
      expect(req).toEqual({
        replicaId: -1,
        isolationLevel: version >= 2 ? 1 : 0,
        topics: [
          {
            name: "t",
            partitions: [
              { partitionIndex: 0, currentLeaderEpoch: version >= 4 ? 9 : -1, timestamp: -1 },
              { partitionIndex: 1, currentLeaderEpoch: version >= 4 ? 9 : -1, timestamp: -2 },
            ],
          },
        ],
      });

      const out = new KafkaWriter();
      listOffsetsApi.encodeResponse(out, version, {
        throttleTimeMs: 0,
        topics: [{ name: "t", partitions: [{ partitionIndex: 0, errorCode: 0, timestamp: 1700000000000, offset: 12, leaderEpoch: 4 }] }],
      });
      const rr = new KafkaReader(out.toBuffer());
      if (version >= 2) expect(rr.int32()).toBe(0);
      expect([rr.int32(), rr.string(), rr.int32(), rr.int32(), rr.int16(), rr.int64(), rr.int64()]).toEqual([1, "t", 1, 0, 0, 1700000000000, 12]);
      if (version >= 4) expect(rr.int32()).toBe(4);
      expect(rr.remaining).toBe(0);
    });
  }

  it("errorResponse answers -1 offsets with the code on every partition", () => {
    const res = listOffsetsApi.errorResponse({ replicaId: -1, isolationLevel: 0, topics: [{ name: "t", partitions: [{ partitionIndex: 3, currentLeaderEpoch: -1, timestamp: -1 }] }] }, 5, 3, "x");
    expect(res.topics[0]!.partitions[0]).toEqual({ partitionIndex: 3, errorCode: 3, timestamp: -1, offset: -1, leaderEpoch: -1 });
  });
});

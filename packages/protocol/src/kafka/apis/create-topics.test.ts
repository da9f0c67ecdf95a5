import { describe, expect, it } from "vitest";
import { KafkaReader, KafkaWriter } from "../wire.js";
import { createTopicsApi } from "./create-topics.js";

describe("CreateTopics codec", () => {
  for (const version of [0, 1, 4]) {
    it(`decodes a v${version} request with assignments and configs, and writes its response`, () => {
      const w = new KafkaWriter().int32(2);
      w.string("a").int32(-1).int16(-1).int32(0).int32(2).string("retention.ms").nullableString("1000").string("x").nullableString(null);
      w.string("b").int32(1).int16(3).int32(1).int32(0).int32(3).int32(1).int32(2).int32(3).int32(0);
      w.int32(5000);
      if (version >= 1) w.boolean(true);
      const r = new KafkaReader(w.toBuffer());
      const req = createTopicsApi.decodeRequest(r, version);
      expect(r.remaining).toBe(0);
      expect(req).toEqual({
        topics: [
          { name: "a", numPartitions: -1, replicationFactor: -1, assignments: [], configs: [{ name: "retention.ms", value: "1000" }, { name: "x", value: null }] },
          { name: "b", numPartitions: 1, replicationFactor: 3, assignments: [{ partitionIndex: 0, brokerIds: [1, 2, 3] }], configs: [] },
        ],
        timeoutMs: 5000,
        validateOnly: version >= 1,
      });

      const out = new KafkaWriter();
      createTopicsApi.encodeResponse(out, version, { throttleTimeMs: 0, topics: [{ name: "a", errorCode: 36, errorMessage: "exists" }] });
      const rr = new KafkaReader(out.toBuffer());
      if (version >= 2) expect(rr.int32()).toBe(0);
      expect([rr.int32(), rr.string(), rr.int16()]).toEqual([1, "a", 36]);
      if (version >= 1) expect(rr.nullableString()).toBe("exists");
      expect(rr.remaining).toBe(0);
    });
  }
});

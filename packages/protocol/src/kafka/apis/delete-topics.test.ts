import { describe, expect, it } from "vitest";
import { KafkaReader, KafkaWriter } from "../wire.js";
import { deleteTopicsApi } from "./delete-topics.js";

describe("DeleteTopics codec", () => {
  for (const version of [0, 1, 3]) {
    it(`decodes a v${version} request and writes its response`, () => {
      const r = new KafkaReader(new KafkaWriter().int32(2).string("a").string("b").int32(3000).toBuffer());
      expect(deleteTopicsApi.decodeRequest(r, version)).toEqual({ topicNames: ["a", "b"], timeoutMs: 3000 });
      expect(r.remaining).toBe(0);
      const w = new KafkaWriter();
      deleteTopicsApi.encodeResponse(w, version, { throttleTimeMs: 0, responses: [{ name: "a", errorCode: 0 }, { name: "b", errorCode: 3 }] });
      const rr = new KafkaReader(w.toBuffer());
      if (version >= 1) expect(rr.int32()).toBe(0);
      expect(rr.array((x) => [x.string(), x.int16()])).toEqual([
        ["a", 0],
        ["b", 3],
      ]);
      expect(rr.remaining).toBe(0);
    });
  }
});

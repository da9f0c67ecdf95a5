import { describe, expect, it } from "vitest";
import { KafkaReader, KafkaWriter } from "../wire.js";
import { initProducerIdApi } from "./init-producer-id.js";

describe("InitProducerId codec", () => {
  it("decodes v0/v1 requests (null and non-null transactional id) and writes the response", () => {
    for (const version of [0, 1]) {
      expect(initProducerIdApi.decodeRequest(new KafkaReader(new KafkaWriter().nullableString(null).int32(60000).toBuffer()), version)).toEqual({ transactionalId: null, transactionTimeoutMs: 60000 });
      expect(initProducerIdApi.decodeRequest(new KafkaReader(new KafkaWriter().nullableString("tx").int32(1).toBuffer()), version)).toEqual({ transactionalId: "tx", transactionTimeoutMs: 1 });
      const w = new KafkaWriter();
      initProducerIdApi.encodeResponse(w, version, { throttleTimeMs: 0, errorCode: 0, producerId: 2 ** 40, producerEpoch: 0 });
      const r = new KafkaReader(w.toBuffer());
      expect([r.int32(), r.int16(), r.int64(), r.int16()]).toEqual([0, 0, 2 ** 40, 0]);
      expect(r.remaining).toBe(0);
    }
  });

  it("errorResponse answers producer id -1", () => {
    expect(initProducerIdApi.errorResponse({ transactionalId: null, transactionTimeoutMs: 0 }, 1, 15, "x")).toEqual({ throttleTimeMs: 0, errorCode: 15, producerId: -1, producerEpoch: -1 });
  });
});

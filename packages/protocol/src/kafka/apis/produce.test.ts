import { describe, expect, it } from "vitest";
import { KafkaReader, KafkaWriter } from "../wire.js";
import { produceApi, type KafkaProduceResponse } from "./produce.js";

function decode(body: Buffer, version: number) {
  const r = new KafkaReader(body);
  const req = produceApi.decodeRequest(r, version);
  expect(r.remaining).toBe(0);
  return req;
}

function encode(version: number, res: KafkaProduceResponse): KafkaReader {
  const w = new KafkaWriter(8);
  produceApi.encodeResponse(w, version, res);
  return new KafkaReader(w.toBuffer());
}

const response: KafkaProduceResponse = {
  topics: [
    {
      name: "orders",
      partitions: [
        { index: 0, errorCode: 0, baseOffset: 42, logAppendTimeMs: -1, logStartOffset: 7, recordErrors: [], errorMessage: null },
        { index: 1, errorCode: 6, baseOffset: -1, logAppendTimeMs: -1, logStartOffset: -1, recordErrors: [{ batchIndex: 0, batchIndexErrorMessage: "bad" }], errorMessage: "not leader" },
      ],
    },
  ],
  throttleTimeMs: 0,
};

describe("Produce codec", () => {
  it("decodes a v3 request laid out byte by byte as the protocol guide gives it, keeping the record bytes", () => {
    const batch = Buffer.from("00112233445566778899", "hex");
    const body = Buffer.concat([
      Buffer.from([0xff, 0xff]), // transactional_id null
      Buffer.from([0xff, 0xff]), // acks -1
      Buffer.from([0x00, 0x00, 0x75, 0x30]), // timeout_ms 30000
      Buffer.from([0, 0, 0, 1]), // one topic
      Buffer.from([0, 6]), Buffer.from("orders"),
      Buffer.from([0, 0, 0, 1]), // one partition
      Buffer.from([0, 0, 0, 3]), // index 3
      Buffer.from([0, 0, 0, batch.length]), batch,
    ]);
    const req = decode(body, 3);
    expect(req).toEqual({ transactionalId: null, acks: -1, timeoutMs: 30000, topics: [{ name: "orders", partitions: [{ index: 3, records: batch }] }] });
  });

  it("decodes a transactional id and null records", () => {
    const w = new KafkaWriter().nullableString("tx-1").int16(1).int32(5).int32(1).string("t").int32(1).int32(0).int32(-1);
    expect(decode(w.toBuffer(), 8)).toEqual({ transactionalId: "tx-1", acks: 1, timeoutMs: 5, topics: [{ name: "t", partitions: [{ index: 0, records: null }] }] });
  });

  it("refuses a truncated request with INVALID_REQUEST", () => {
    const w = new KafkaWriter().nullableString(null).int16(1).int32(5).int32(1).string("t").int32(1).int32(0).int32(100);
    expect(() => decode(w.toBuffer(), 3)).toThrow(/INVALID_REQUEST/);
  });

  it("decodes v0-v2 requests, which have no transactional_id", () => {
    for (const version of [0, 1, 2]) {
      const w = new KafkaWriter().int16(1).int32(1000).int32(1).string("t").int32(1).int32(2).int32(-1);
      expect(decode(w.toBuffer(), version)).toEqual({ transactionalId: null, acks: 1, timeoutMs: 1000, topics: [{ name: "t", partitions: [{ index: 2, records: null }] }] });
    }
  });

  for (const version of [0, 1, 2, 3, 4, 5, 7, 8]) {
    it(`writes a v${version} response with the fields of that version`, () => {
      const r = encode(version, response);
      expect(r.int32()).toBe(1);
      expect(r.string()).toBe("orders");
      expect(r.int32()).toBe(2);
      for (const p of response.topics[0]!.partitions) {
        expect([r.int32(), r.int16(), r.int64()]).toEqual([p.index, p.errorCode, p.baseOffset]);
        if (version >= 2) expect(r.int64()).toBe(p.logAppendTimeMs);
        if (version >= 5) expect(r.int64()).toBe(p.logStartOffset);
        if (version >= 8) {
          expect(r.array((e) => [e.int32(), e.nullableString()])).toEqual(p.recordErrors.map((e) => [e.batchIndex, e.batchIndexErrorMessage]));
          expect(r.nullableString()).toBe(p.errorMessage);
        }
      }
      if (version >= 1) expect(r.int32()).toBe(0); // throttle_time_ms
      expect(r.remaining).toBe(0);
    });
  }

  it("errorResponse puts the code on every partition", () => {
    const req = { transactionalId: null, acks: 1, timeoutMs: 1, topics: [{ name: "a", partitions: [{ index: 0, records: null }, { index: 2, records: null }] }] };
    const res = produceApi.errorResponse(req, 8, 42, "why");
    expect(res.topics[0]!.partitions.map((p) => [p.index, p.errorCode, p.baseOffset, p.errorMessage])).toEqual([
      [0, 42, -1, "why"],
      [2, 42, -1, "why"],
    ]);
  });
});

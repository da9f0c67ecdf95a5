import { describe, expect, it } from "vitest";
import { KafkaReader, KafkaWriter } from "../wire.js";
import { fetchApi, type KafkaFetchResponse } from "./fetch.js";

/** A Fetch request body as a client of `version` writes it. */
function requestBody(version: number): Buffer {
  const w = new KafkaWriter();
  w.int32(-1).int32(500).int32(1).int32(52428800).int8(1);
  if (version >= 7) w.int32(0).int32(-1);
  w.int32(1).string("orders").int32(2);
  for (const [partition, offset] of [
    [0, 10],
    [5, 99],
  ] as const) {
    w.int32(partition);
    if (version >= 9) w.int32(3);
    w.int64(offset);
    if (version >= 5) w.int64(-1);
    w.int32(1048576);
  }
  if (version >= 7) w.int32(1).string("old").int32(1).int32(4);
  if (version >= 11) w.string("rack-a");
  return w.toBuffer();
}

describe("Fetch codec", () => {
  for (const version of [4, 5, 7, 9, 11]) {
    it(`decodes a v${version} request with the fields of that version and their defaults`, () => {
      const r = new KafkaReader(requestBody(version));
      const req = fetchApi.decodeRequest(r, version);
      expect(r.remaining).toBe(0);
      expect(req).toEqual({
        replicaId: -1,
        maxWaitMs: 500,
        minBytes: 1,
        maxBytes: 52428800,
        isolationLevel: 1,
        sessionId: 0,
        sessionEpoch: -1,
        topics: [
          {
            topic: "orders",
            partitions: [
              { partition: 0, currentLeaderEpoch: version >= 9 ? 3 : -1, fetchOffset: 10, logStartOffset: -1, partitionMaxBytes: 1048576 },
              { partition: 5, currentLeaderEpoch: version >= 9 ? 3 : -1, fetchOffset: 99, logStartOffset: -1, partitionMaxBytes: 1048576 },
            ],
          },
        ],
        forgottenTopics: version >= 7 ? [{ topic: "old", partitions: [4] }] : [],
        rackId: version >= 11 ? "rack-a" : "",
      });
    });
  }

  const records = Buffer.alloc(3000, 7); // large enough to be appended by reference
  const response: KafkaFetchResponse = {
    throttleTimeMs: 0,
    errorCode: 0,
    sessionId: 0,
    topics: [
      {
        topic: "orders",
        partitions: [
          { partitionIndex: 0, errorCode: 0, highWatermark: 20, lastStableOffset: 20, logStartOffset: 2, abortedTransactions: [], preferredReadReplica: -1, records },
          { partitionIndex: 5, errorCode: 1, highWatermark: -1, lastStableOffset: -1, logStartOffset: -1, abortedTransactions: null, preferredReadReplica: -1, records: Buffer.alloc(0) },
        ],
      },
    ],
  };

  for (const version of [4, 5, 7, 11]) {
    it(`writes a v${version} response, records by reference`, () => {
      const w = new KafkaWriter(16);
      fetchApi.encodeResponse(w, version, response);
      expect(w.toChunks()).toContain(records);
      const r = new KafkaReader(w.toBuffer());
      expect(r.int32()).toBe(0);
      if (version >= 7) expect([r.int16(), r.int32()]).toEqual([0, 0]);
      expect(r.int32()).toBe(1);
      expect(r.string()).toBe("orders");
      expect(r.int32()).toBe(2);
      for (const p of response.topics[0]!.partitions) {
        expect([r.int32(), r.int16(), r.int64(), r.int64()]).toEqual([p.partitionIndex, p.errorCode, p.highWatermark, p.lastStableOffset]);
        if (version >= 5) expect(r.int64()).toBe(p.logStartOffset);
        const abortedCount = r.int32();
        expect(abortedCount).toBe(p.abortedTransactions === null ? -1 : 0);
        if (version >= 11) expect(r.int32()).toBe(-1);
        expect(r.bytes().equals(p.records!)).toBe(true);
      }
      expect(r.remaining).toBe(0);
    });
  }

  it("errorResponse answers every partition with the code and empty (not null) records", () => {
    const req = fetchApi.decodeRequest(new KafkaReader(requestBody(11)), 11);
    const res = fetchApi.errorResponse(req, 11, 42, "bad");
    expect(res.errorCode).toBe(42);
    expect(res.topics[0]!.partitions.map((p) => [p.partitionIndex, p.errorCode, p.records?.length])).toEqual([
      [0, 42, 0],
      [5, 42, 0],
    ]);
  });
});

import { describe, expect, it } from "vitest";
import { KafkaReader, KafkaWriter } from "../wire.js";
import { offsetCommitApi } from "./offset-commit.js";

/** An OffsetCommit request body laid out as a client writes `version`. */
function clientRequest(version: number): Buffer {
  const w = new KafkaWriter().string("g1");
  if (version >= 1) w.int32(3).string("m-1");
  if (version >= 7) w.nullableString("inst");
  if (version >= 2 && version <= 4) w.int64(86_400_000);
  w.array(["t1"], (w, name) => {
    w.string(name);
    w.array([0, 2], (w, partition) => {
      w.int32(partition).int64(100 + partition);
      if (version >= 6) w.int32(4);
      if (version === 1) w.int64(1_700_000_000_000);
      w.nullableString(partition === 0 ? "meta" : null);
    });
  });
  return w.toBuffer();
}

describe("OffsetCommit codec", () => {
  it.each([0, 1, 2, 3, 4, 5, 6, 7])("reads every field of a v%i request", (version) => {
    const r = new KafkaReader(clientRequest(version));
    const req = offsetCommitApi.decodeRequest(r, version);
    expect(r.remaining).toBe(0);
    expect(req).toEqual({
      // v0 carries no generation: a standalone commit.
      groupId: "g1",
      generationId: version >= 1 ? 3 : -1,
      memberId: version >= 1 ? "m-1" : "",
      groupInstanceId: version >= 7 ? "inst" : null,
      retentionTimeMs: version >= 2 && version <= 4 ? 86_400_000 : -1,
      topics: [
        {
          name: "t1",
          partitions: [
            { partitionIndex: 0, committedOffset: 100, committedLeaderEpoch: version >= 6 ? 4 : -1, commitTimestamp: version === 1 ? 1_700_000_000_000 : -1, committedMetadata: "meta" },
            { partitionIndex: 2, committedOffset: 102, committedLeaderEpoch: version >= 6 ? 4 : -1, commitTimestamp: version === 1 ? 1_700_000_000_000 : -1, committedMetadata: null },
          ],
        },
      ],
    });
  });

  it.each([0, 2, 3, 7])("writes a v%i response (throttle time from v3)", (version) => {
    const req = offsetCommitApi.decodeRequest(new KafkaReader(clientRequest(version)), version);
    const w = new KafkaWriter();
    offsetCommitApi.encodeResponse(w, version, offsetCommitApi.errorResponse(req, version, 16, "not coordinator"));
    const r = new KafkaReader(w.toBuffer());
    if (version >= 3) expect(r.int32()).toBe(0);
    expect(r.array((t) => [t.string(), t.array((p) => [p.int32(), p.int16()])])).toEqual([
      [
        "t1",
        [
          [0, 16],
          [2, 16],
        ],
      ],
    ]);
    expect(r.remaining).toBe(0);
  });
});

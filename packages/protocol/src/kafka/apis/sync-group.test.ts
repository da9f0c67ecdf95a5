import { describe, expect, it } from "vitest";
import { KafkaReader, KafkaWriter } from "../wire.js";
import { syncGroupApi } from "./sync-group.js";

describe("SyncGroup codec", () => {
  it.each([0, 1, 2, 3])("reads a v%i leader request with its assignments", (version) => {
    const w = new KafkaWriter().string("g1").int32(5).string("m-1");
    if (version >= 3) w.nullableString(null);
    w.array(
      [
        ["m-1", Buffer.from([1, 2])],
        ["m-2", Buffer.alloc(0)],
      ] as const,
      (w, [id, a]) => w.string(id).bytes(a),
    );
    const r = new KafkaReader(w.toBuffer());
    const req = syncGroupApi.decodeRequest(r, version);
    expect(r.remaining).toBe(0);
    expect({ ...req, assignments: req.assignments.map((a) => [a.memberId, [...a.assignment]]) }).toEqual({
      groupId: "g1",
      generationId: 5,
      memberId: "m-1",
      groupInstanceId: null,
      assignments: [
        ["m-1", [1, 2]],
        ["m-2", []],
      ],
    });
  });

  it("reads a v3 group instance id", () => {
    const w = new KafkaWriter().string("g1").int32(1).string("m").nullableString("inst").array([], () => {});
    expect(syncGroupApi.decodeRequest(new KafkaReader(w.toBuffer()), 3).groupInstanceId).toBe("inst");
  });

  it.each([0, 1, 3])("writes a v%i response", (version) => {
    const w = new KafkaWriter();
    syncGroupApi.encodeResponse(w, version, { throttleTimeMs: 3, errorCode: 27, assignment: Buffer.from([7, 7]) });
    const r = new KafkaReader(w.toBuffer());
    if (version >= 1) expect(r.int32()).toBe(3);
    expect(r.int16()).toBe(27);
    expect([...r.bytes()]).toEqual([7, 7]);
    expect(r.remaining).toBe(0);
  });
});

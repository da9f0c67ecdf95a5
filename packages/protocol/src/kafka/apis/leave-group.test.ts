import { describe, expect, it } from "vitest";
import { KafkaReader, KafkaWriter } from "../wire.js";
import { leaveGroupApi } from "./leave-group.js";

describe("LeaveGroup codec", () => {
  it.each([0, 1, 2])("reads the single member of a v%i request as a one-member batch", (version) => {
    const r = new KafkaReader(new KafkaWriter().string("g1").string("m-1").toBuffer());
    expect(leaveGroupApi.decodeRequest(r, version)).toEqual({ groupId: "g1", members: [{ memberId: "m-1", groupInstanceId: null }] });
    expect(r.remaining).toBe(0);
  });

  it("reads a v3 batch of members with instance ids", () => {
    const w = new KafkaWriter().string("g1").array(
      [
        ["m-1", null],
        ["", "inst-b"],
      ] as const,
      (w, [id, inst]) => w.string(id).nullableString(inst),
    );
    expect(leaveGroupApi.decodeRequest(new KafkaReader(w.toBuffer()), 3)).toEqual({
      groupId: "g1",
      members: [
        { memberId: "m-1", groupInstanceId: null },
        { memberId: "", groupInstanceId: "inst-b" },
      ],
    });
  });

  it.each([0, 1, 3])("writes a v%i response (members from v3)", (version) => {
    const w = new KafkaWriter();
    leaveGroupApi.encodeResponse(w, version, { throttleTimeMs: 1, errorCode: 0, members: [{ memberId: "m-1", groupInstanceId: "i", errorCode: 25 }] });
    const r = new KafkaReader(w.toBuffer());
    if (version >= 1) expect(r.int32()).toBe(1);
    expect(r.int16()).toBe(0);
    if (version >= 3) expect(r.array((m) => [m.string(), m.nullableString(), m.int16()])).toEqual([["m-1", "i", 25]]);
    expect(r.remaining).toBe(0);
  });
});

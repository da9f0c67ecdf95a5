import { describe, expect, it } from "vitest";
import { KafkaReader, KafkaWriter } from "../wire.js";
import { joinGroupApi, type KafkaJoinGroupResponse } from "./join-group.js";

/** A JoinGroup request body the way a client lays it out for `version`. */
function clientRequest(version: number): Buffer {
  const w = new KafkaWriter().string("g1").int32(30_000);
  if (version >= 1) w.int32(60_000);
  w.string("m-1");
  if (version >= 5) w.nullableString("instance-a");
  w.string("consumer");
  w.array(
    [
      ["range", Buffer.from([0, 1, 2])],
      ["roundrobin", Buffer.from([9])],
    ] as const,
    (w, [name, metadata]) => w.string(name).bytes(metadata),
  );
  return w.toBuffer();
}

describe("JoinGroup codec", () => {
  it.each([0, 1, 2, 3, 4, 5])("reads a v%i request field by field", (version) => {
    const r = new KafkaReader(clientRequest(version));
    const req = joinGroupApi.decodeRequest(r, version);
    expect(r.remaining).toBe(0);
    expect(req).toMatchObject({
      groupId: "g1",
      sessionTimeoutMs: 30_000,
      // v0 has no rebalance timeout: the session timeout stands in, as in Kafka.
      rebalanceTimeoutMs: version >= 1 ? 60_000 : 30_000,
      memberId: "m-1",
      groupInstanceId: version >= 5 ? "instance-a" : null,
      protocolType: "consumer",
    });
    expect(req.protocols.map((p) => [p.name, [...p.metadata]])).toEqual([
      ["range", [0, 1, 2]],
      ["roundrobin", [9]],
    ]);
  });

  it.each([0, 2, 5])("writes a v%i leader response with the member list", (version) => {
    const res: KafkaJoinGroupResponse = {
      throttleTimeMs: 7,
      errorCode: 0,
      generationId: 4,
      protocolName: "range",
      leader: "m-1",
      memberId: "m-1",
      members: [
        { memberId: "m-1", groupInstanceId: null, metadata: Buffer.from([1]) },
        { memberId: "m-2", groupInstanceId: "inst", metadata: Buffer.from([2, 2]) },
      ],
    };
    const w = new KafkaWriter();
    joinGroupApi.encodeResponse(w, version, res);
    const r = new KafkaReader(w.toBuffer());
    if (version >= 2) expect(r.int32()).toBe(7);
    expect([r.int16(), r.int32(), r.string(), r.string(), r.string()]).toEqual([0, 4, "range", "m-1", "m-1"]);
    const members = r.array((m) => {
      const memberId = m.string();
      const instance = version >= 5 ? m.nullableString() : "absent";
      return [memberId, instance, [...m.bytes()]];
    });
    expect(members).toEqual([
      ["m-1", version >= 5 ? null : "absent", [1]],
      ["m-2", version >= 5 ? "inst" : "absent", [2, 2]],
    ]);
    expect(r.remaining).toBe(0);
  });

  it("answers an error with generation -1 and the caller's member id", () => {
    const req = joinGroupApi.decodeRequest(new KafkaReader(clientRequest(5)), 5);
    expect(joinGroupApi.errorResponse(req, 5, 15, "no coordinator")).toEqual({ throttleTimeMs: 0, errorCode: 15, generationId: -1, protocolName: "", leader: "", memberId: "m-1", members: [] });
  });
});

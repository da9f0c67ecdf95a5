import { describe, expect, it } from "vitest";
import { KafkaReader, KafkaWriter } from "../wire.js";
import { KAFKA_AUTHORIZED_OPERATIONS_OMITTED } from "./metadata.js";
import { describeGroupsApi, type KafkaDescribeGroupsResponse } from "./describe-groups.js";

describe("DescribeGroups codec", () => {
  it.each([0, 1, 2, 3, 4])("reads a v%i request", (version) => {
    const w = new KafkaWriter().array(["a", "b"], (w, g) => w.string(g));
    if (version >= 3) w.boolean(true);
    const r = new KafkaReader(w.toBuffer());
    expect(describeGroupsApi.decodeRequest(r, version)).toEqual({ groups: ["a", "b"], includeAuthorizedOperations: version >= 3 });
    expect(r.remaining).toBe(0);
  });

  it.each([0, 1, 3, 4])("writes a v%i response with its version's fields", (version) => {
    const res: KafkaDescribeGroupsResponse = {
      throttleTimeMs: 1,
      groups: [
        {
          errorCode: 0,
          groupId: "a",
          groupState: "Stable",
          protocolType: "consumer",
          protocolData: "range",
          members: [{ memberId: "m-1", groupInstanceId: "inst", clientId: "c", clientHost: "/127.0.0.1", memberMetadata: Buffer.from([1]), memberAssignment: Buffer.from([2, 3]) }],
          authorizedOperations: KAFKA_AUTHORIZED_OPERATIONS_OMITTED,
        },
      ],
    };
    const w = new KafkaWriter();
    describeGroupsApi.encodeResponse(w, version, res);
    const r = new KafkaReader(w.toBuffer());
    if (version >= 1) expect(r.int32()).toBe(1);
    const groups = r.array((g) => {
      const head = [g.int16(), g.string(), g.string(), g.string(), g.string()];
      const members = g.array((m) => [m.string(), version >= 4 ? m.nullableString() : "none", m.string(), m.string(), [...m.bytes()], [...m.bytes()]]);
      const ops = version >= 3 ? g.int32() : "none";
      return [head, members, ops];
    });
    expect(groups).toEqual([
      [[0, "a", "Stable", "consumer", "range"], [["m-1", version >= 4 ? "inst" : "none", "c", "/127.0.0.1", [1], [2, 3]]], version >= 3 ? -2147483648 : "none"],
    ]);
    expect(r.remaining).toBe(0);
  });
});

import { describe, expect, it } from "vitest";
import { KafkaReader, KafkaWriter } from "../wire.js";
import { listGroupsApi } from "./list-groups.js";

describe("ListGroups codec", () => {
  it("reads the empty v0-v2 request without consuming bytes", () => {
    const r = new KafkaReader(Buffer.alloc(0));
    expect(listGroupsApi.decodeRequest(r, 2)).toEqual({});
  });

  it.each([0, 1, 2])("writes a v%i response", (version) => {
    const w = new KafkaWriter();
    listGroupsApi.encodeResponse(w, version, { throttleTimeMs: 4, errorCode: 14, groups: [{ groupId: "a", protocolType: "consumer" }, { groupId: "b", protocolType: "" }] });
    const r = new KafkaReader(w.toBuffer());
    if (version >= 1) expect(r.int32()).toBe(4);
    expect(r.int16()).toBe(14);
    expect(r.array((g) => [g.string(), g.string()])).toEqual([
      ["a", "consumer"],
      ["b", ""],
    ]);
    expect(r.remaining).toBe(0);
  });
});

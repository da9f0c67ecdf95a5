import { describe, expect, it } from "vitest";
import { parseQuorumVoters, voterAddress } from "./config.js";

describe("controller.quorum.voters", () => {
  it("parses id@host:port lists, IPv6 in brackets", () => {
    const voters = parseQuorumVoters("1@127.0.0.1:19091, 2@localhost:19092,3@[::1]:19093");
    expect(voters).toEqual([
      { id: 1, host: "127.0.0.1", port: 19091 },
      { id: 2, host: "localhost", port: 19092 },
      { id: 3, host: "::1", port: 19093 },
    ]);
    expect(voters.map(voterAddress)).toEqual(["127.0.0.1:19091", "localhost:19092", "[::1]:19093"]);
  });

  it.each([
    ["", /is empty/],
    ["1@host", /"1@host" is not id@host:port/],
    ["0@h:1", /node id .* must be between/],
    ["1@h:70000", /port .* must be between/],
    ["1@a:1,1@b:2", /node id 1 appears twice/],
  ])("rejects %j naming the key", (text, message) => {
    expect(() => parseQuorumVoters(text)).toThrow(message);
    expect(() => parseQuorumVoters(text)).toThrow(/controller\.quorum\.voters|INVALID_CONFIG/);
  });
});

import { describe, expect, it } from "vitest";
import { FlotillaError } from "@flotilla/common";
import { parseBootstrapServers } from "./connection.js";

describe("parseBootstrapServers", () => {
  it("splits a comma list and trims", () => {
    expect(parseBootstrapServers("a:1, b:9092 ,127.0.0.1:9093")).toEqual(["a:1", "b:9092", "127.0.0.1:9093"]);
    expect(parseBootstrapServers(["x:1,y:2", "z:3"])).toEqual(["x:1", "y:2", "z:3"]);
    expect(parseBootstrapServers("[::1]:9092")).toEqual(["[::1]:9092"]);
  });
  it("rejects entries that are not host:port with INVALID_CONFIG naming the entry", () => {
    for (const bad of ["", "localhost", "host:0", "host:70000", "host:port"]) {
      const err = (() => {
        try {
          parseBootstrapServers(bad);
          return undefined;
        } catch (e) {
          return e;
        }
      })();
      expect(FlotillaError.is(err, "INVALID_CONFIG"), bad).toBe(true);
    }
  });
});

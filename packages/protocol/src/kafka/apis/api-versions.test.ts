import { describe, expect, it } from "vitest";
import { KafkaReader, KafkaWriter } from "../wire.js";
import { apiVersionsApi, decodeApiVersionsResponse, encodeApiVersionsRequest } from "./api-versions.js";

const hex = (b: Buffer) => b.toString("hex");
const keys = [
  { apiKey: 0, minVersion: 3, maxVersion: 8 },
  { apiKey: 18, minVersion: 0, maxVersion: 3 },
];

describe("ApiVersions codec", () => {
  it("reads a v3 request as librdkafka writes it (compact strings, tagged fields)", () => {
    // client_software_name "librdkafka" (len+1 = 0x0b), version "2.3.0" (0x06), no tags.
    const body = Buffer.from("0b" + Buffer.from("librdkafka").toString("hex") + "06" + Buffer.from("2.3.0").toString("hex") + "00", "hex");
    const r = new KafkaReader(body);
    expect(apiVersionsApi.decodeRequest(r, 3)).toEqual({ clientSoftwareName: "librdkafka", clientSoftwareVersion: "2.3.0" });
    expect(r.remaining).toBe(0);
    const w = new KafkaWriter();
    encodeApiVersionsRequest(w, 3, { clientSoftwareName: "librdkafka", clientSoftwareVersion: "2.3.0" });
    expect(hex(w.toBuffer())).toBe(hex(body));
  });

  it("reads v0-v2 requests as empty bodies", () => {
    for (const v of [0, 1, 2]) {
      const r = new KafkaReader(Buffer.alloc(0));
      expect(apiVersionsApi.decodeRequest(r, v)).toEqual({ clientSoftwareName: "", clientSoftwareVersion: "" });
    }
  });

  it("writes v0 with a plain array and no throttle time", () => {
    const w = new KafkaWriter();
    apiVersionsApi.encodeResponse(w, 0, { errorCode: 35, apiKeys: keys, throttleTimeMs: 9 });
    expect(hex(w.toBuffer())).toBe("0023" + "00000002" + "000000030008" + "001200000003");
  });

  it("writes v1/v2 with throttle_time_ms after the array", () => {
    const w = new KafkaWriter();
    apiVersionsApi.encodeResponse(w, 2, { errorCode: 0, apiKeys: keys, throttleTimeMs: 9 });
    expect(hex(w.toBuffer())).toBe("0000" + "00000002" + "000000030008" + "001200000003" + "00000009");
  });

  it("writes v3 with a compact array, tagged fields per entry and at the end", () => {
    const w = new KafkaWriter();
    apiVersionsApi.encodeResponse(w, 3, { errorCode: 0, apiKeys: keys, throttleTimeMs: 0 });
    expect(hex(w.toBuffer())).toBe("0000" + "03" + "00000003000800" + "00120000000300" + "00000000" + "00");
    expect(decodeApiVersionsResponse(new KafkaReader(w.toBuffer()), 3)).toEqual({ errorCode: 0, apiKeys: keys, throttleTimeMs: 0 });
  });

  it("answers an error with an empty key list", () => {
    expect(apiVersionsApi.errorResponse({ clientSoftwareName: "", clientSoftwareVersion: "" }, 3, 42, "bad")).toEqual({ errorCode: 42, apiKeys: [], throttleTimeMs: 0 });
  });
});

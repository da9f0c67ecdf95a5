import { describe, expect, it } from "vitest";
import { FlotillaError } from "@flotilla/common";
import { ApiKey } from "./api.js";
import {
  decodeRequestHeader,
  decodeResponseHeader,
  encodeRequestFrame,
  encodeRequestHeader,
  encodeResponseHeader,
  isFlexibleVersion,
  readRequestHeaderRest,
  readRequestHeaderStart,
  requestHeaderVersion,
  responseHeaderVersion,
} from "./request-header.js";
import { KafkaReader, KafkaWriter } from "./wire.js";

const hex = (b: Buffer) => b.toString("hex");

describe("Kafka request header", () => {
  it("lays out header v1 as api_key, api_version, correlation_id, client_id", () => {
    const w = new KafkaWriter();
    encodeRequestHeader(w, { apiKey: 3, apiVersion: 8, correlationId: 0x01020304, clientId: "kc" }, 1);
    expect(hex(w.toBuffer())).toBe("0003" + "0008" + "01020304" + "0002" + "6b63");
  });

  it("adds an empty tagged-field section in header v2 and keeps client_id a plain NULLABLE_STRING", () => {
    const w = new KafkaWriter();
    encodeRequestHeader(w, { apiKey: 18, apiVersion: 3, correlationId: 1, clientId: null }, 2);
    expect(hex(w.toBuffer())).toBe("0012" + "0003" + "00000001" + "ffff" + "00");
  });

  it("reads back what it writes, skipping tagged fields a client sent", () => {
    const bytes = Buffer.from("0012" + "0003" + "0000002a" + "0003" + "616263" + "01" + "05" + "02" + "beef" + "ff", "hex");
    const r = new KafkaReader(bytes);
    expect(decodeRequestHeader(r, 2)).toEqual({ apiKey: 18, apiVersion: 3, correlationId: 42, clientId: "abc" });
    expect(r.int8()).toBe(-1);
    const start = readRequestHeaderStart(new KafkaReader(bytes));
    expect(start).toEqual({ apiKey: 18, apiVersion: 3, correlationId: 42 });
  });

  it("rejects a client_id longer than the frame with INVALID_REQUEST", () => {
    const r = new KafkaReader(Buffer.from("0000" + "0003" + "00000001" + "0010" + "61", "hex"));
    readRequestHeaderStart(r);
    expect(() => readRequestHeaderRest(r, 1)).toThrow(FlotillaError);
  });

  it("picks header versions from firstFlexibleVersion; ApiVersions responses always use header v0", () => {
    const spec = { firstFlexibleVersion: 3 };
    expect([isFlexibleVersion(spec, 2), isFlexibleVersion(spec, 3), isFlexibleVersion({}, 99)]).toEqual([false, true, false]);
    expect([requestHeaderVersion(spec, 2), requestHeaderVersion(spec, 3)]).toEqual([1, 2]);
    expect(responseHeaderVersion(ApiKey.ApiVersions, spec, 3)).toBe(0);
    expect(responseHeaderVersion(ApiKey.Metadata, { firstFlexibleVersion: 9 }, 9)).toBe(1);
    expect(responseHeaderVersion(ApiKey.Metadata, { firstFlexibleVersion: 9 }, 8)).toBe(0);
  });
});

describe("Kafka response header and frames", () => {
  it("writes correlation_id, plus tagged fields in v1", () => {
    const v0 = new KafkaWriter();
    encodeResponseHeader(v0, 7, 0);
    const v1 = new KafkaWriter();
    encodeResponseHeader(v1, 7, 1);
    expect([hex(v0.toBuffer()), hex(v1.toBuffer())]).toEqual(["00000007", "0000000700"]);
    expect(decodeResponseHeader(new KafkaReader(v1.toBuffer()), 1)).toEqual({ correlationId: 7 });
  });

  it("prefixes a request frame with the size of header and body", () => {
    const frame = encodeRequestFrame({ apiKey: 18, apiVersion: 0, correlationId: 5, clientId: "" }, { firstFlexibleVersion: 3 }, (w) => w.int8(9));
    expect(hex(frame)).toBe("0000000b" + "0012" + "0000" + "00000005" + "0000" + "09");
  });
});

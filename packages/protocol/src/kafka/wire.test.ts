import { describe, expect, it } from "vitest";
import { FlotillaError } from "@flotilla/common";
import { KafkaReader, KafkaWriter } from "./wire.js";

describe("Kafka wire primitives", () => {
  it("round-trips every primitive in both encodings", () => {
    const w = new KafkaWriter(8);
    w.int8(-3).int16(-300).int32(-70000).int64(2 ** 41 + 7).boolean(true).unsignedVarint(300);
    w.string("héllo").nullableString(null).compactString("ab").compactNullableString(null);
    w.bytes(Buffer.from([1, 2, 3])).nullableBytes(null).compactBytes(Buffer.from([9]));
    w.array([1, 2], (x, v) => x.int32(v)).compactArray(["x"], (x, v) => x.compactString(v)).taggedFields();
    w.chunkedBytes(Buffer.alloc(4096, 7)).int16(42);
    const r = new KafkaReader(w.toBuffer());
    expect([r.int8(), r.int16(), r.int32(), r.int64(), r.boolean(), r.unsignedVarint()]).toEqual([-3, -300, -70000, 2 ** 41 + 7, true, 300]);
    expect([r.string(), r.nullableString(), r.compactString(), r.compactNullableString()]).toEqual(["héllo", null, "ab", null]);
    expect([...r.bytes()]).toEqual([1, 2, 3]);
    expect(r.nullableBytes()).toBeNull();
    expect([...r.compactBytes()]).toEqual([9]);
    expect(r.array((x) => x.int32())).toEqual([1, 2]);
    expect(r.compactArray((x) => x.compactString())).toEqual(["x"]);
    r.taggedFields();
    expect(r.bytes().equals(Buffer.alloc(4096, 7))).toBe(true);
    expect(r.int16()).toBe(42);
    expect(r.remaining).toBe(0);
  });

  it("keeps large byte fields as separate chunks without copying them", () => {
    const big = Buffer.alloc(10_000, 1);
    const w = new KafkaWriter().int32(1).chunkedBytes(big).int32(2);
    const chunks = w.toChunks();
    expect(chunks).toContain(big);
    expect(w.length).toBe(4 + 4 + 10_000 + 4);
    expect(Buffer.concat(chunks).equals(w.toBuffer())).toBe(true);
  });

  it("rejects truncated input and lying lengths with INVALID_REQUEST naming the field", () => {
    const w = new KafkaWriter().int16(10).raw(Buffer.from("abc"));
    expect(() => new KafkaReader(w.toBuffer()).string("topic name")).toThrowError(/INVALID_REQUEST: truncated topic name/);
    const lying = new KafkaWriter().int32(1_000_000).toBuffer();
    expect(() => new KafkaReader(lying).array((r) => r.int32(), "partitions")).toThrowError(FlotillaError);
    const longVarint = Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    expect(() => new KafkaReader(longVarint).unsignedVarint()).toThrowError(/longer than 5 bytes/);
    const huge = new KafkaWriter();
    huge.raw(Buffer.from([0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]));
    expect(() => new KafkaReader(huge.toBuffer()).int64("offset")).toThrowError(/offset .* outside/);
  });
});

import { kafkaCodeOf, kafkaCodeOfError } from "./errors.js";
describe("Kafka error codes", () => {
  it("passes Kafka codes through and maps Flotilla's own codes to Kafka's", () => {
    expect(kafkaCodeOf(6)).toBe(6);
    expect(kafkaCodeOf(1000)).toBe(2);
    expect(kafkaCodeOf(1002)).toBe(56);
    expect(kafkaCodeOf(1003)).toBe(6);
    expect(kafkaCodeOf(4242)).toBe(-1);
    expect(kafkaCodeOfError(new FlotillaError("NOT_COORDINATOR"))).toBe(16);
    expect(kafkaCodeOfError(new Error("boom"))).toBe(-1);
  });
});

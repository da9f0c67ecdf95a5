import { describe, expect, it } from "vitest";
import { FlotillaError } from "@flotilla/common";
import { ByteCursor, VARLONG_MAGNITUDE_MAX, sizeOfVarint, sizeOfVarlong, writeVarint, writeVarlong } from "./varint.js";

function encodeVarint(value: number): string {
  const buf = Buffer.alloc(10);
  const end = writeVarint(buf, 0, value);
  expect(end).toBe(sizeOfVarint(value));
  return buf.subarray(0, end).toString("hex");
}

function encodeVarlong(value: number): string {
  const buf = Buffer.alloc(12);
  const end = writeVarlong(buf, 0, value);
  expect(end).toBe(sizeOfVarlong(value));
  return buf.subarray(0, end).toString("hex");
}

function cursor(hex: string): ByteCursor {
  const buf = Buffer.from(hex, "hex");
  return new ByteCursor(buf, 0, buf.length, "test");
}

function corruptMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(FlotillaError.is(err, "CORRUPT_MESSAGE")).toBe(true);
    return (err as Error).message;
  }
  throw new Error("expected a CORRUPT_MESSAGE");
}

describe("zig-zag varints", () => {
  it("encode the Protobuf sint32 known answers", () => {
    // Zig-zag table of the Protobuf encoding guide: 0->0, -1->1, 1->2, -2->3, 2147483647->4294967294, -2147483648->4294967295.
    expect(encodeVarint(0)).toBe("00");
    expect(encodeVarint(-1)).toBe("01");
    expect(encodeVarint(1)).toBe("02");
    expect(encodeVarint(-2)).toBe("03");
    expect(encodeVarint(63)).toBe("7e");
    expect(encodeVarint(-64)).toBe("7f");
    expect(encodeVarint(64)).toBe("8001");
    expect(encodeVarint(150)).toBe("ac02"); // zigzag 300 = the guide's "ac 02"
    expect(encodeVarint(2147483647)).toBe("feffffff0f");
    expect(encodeVarint(-2147483648)).toBe("ffffffff0f");
  });

  it("round-trip int32 values at every length boundary", () => {
    const values = [0, 1, -1, 63, -64, 64, -65, 8191, -8192, 8192, 1048575, -1048576, 134217727, -134217728, 134217728, 2147483647, -2147483648];
    for (const v of values) {
      const c = cursor(encodeVarint(v));
      expect(c.readVarint("v")).toBe(v);
      expect(c.remaining).toBe(0);
    }
  });

  it("round-trip varlongs, including timestamps and the largest supported magnitude", () => {
    const values = [0, -1, 1, 1_700_000_000_000, -1_700_000_000_001, 2 ** 31, -(2 ** 31) - 1, 2 ** 35 + 7, VARLONG_MAGNITUDE_MAX, -VARLONG_MAGNITUDE_MAX];
    for (const v of values) {
      const c = cursor(encodeVarlong(v));
      expect(c.readVarlong("v")).toBe(v);
      expect(c.remaining).toBe(0);
    }
    expect(encodeVarlong(-1)).toBe("01");
    expect(encodeVarlong(2 ** 31)).toBe("8080808010"); // zigzag 2^32
  });

  it("refuse values the writer cannot represent (programmer errors)", () => {
    expect(() => writeVarint(Buffer.alloc(8), 0, 2 ** 31)).toThrow(/not an int32/);
    expect(() => writeVarint(Buffer.alloc(8), 0, 1.5)).toThrow(/not an int32/);
    expect(() => writeVarlong(Buffer.alloc(12), 0, 2 ** 53)).toThrow(/varlong/);
  });

  it("reject a varint longer than 5 bytes or wider than 32 bits, naming the byte", () => {
    expect(corruptMessage(() => cursor("ffffffffff01").readVarint("x"))).toMatch(/bad varint x.*at byte 0/);
    expect(corruptMessage(() => cursor("ffffffff1f").readVarint("x"))).toMatch(/bad varint x/);
  });

  it("reject a varlong longer than 10 bytes or beyond 2^52", () => {
    expect(corruptMessage(() => cursor("ffffffffffffffffff7f").readVarlong("t"))).toMatch(/magnitude above 2\^52/);
    expect(corruptMessage(() => cursor("8080808080808080808001").readVarlong("t"))).toMatch(/longer than 10 bytes/);
  });

  it("report truncation instead of reading past the end", () => {
    expect(corruptMessage(() => cursor("80").readVarint("len"))).toMatch(/truncated varint len at byte 0/);
    expect(corruptMessage(() => cursor("ff").readVarlong("ts"))).toMatch(/truncated varlong ts/);
    expect(corruptMessage(() => cursor("0102").readBytes(3, "key"))).toMatch(/truncated key: needs 3 bytes but 2 remain/);
    expect(corruptMessage(() => cursor("").readInt8("attributes"))).toMatch(/truncated attributes/);
  });
});

import { describe, expect, it } from "vitest";
import { FlotillaError } from "@flotilla/common";
import { AppendOnlyListMachine } from "./test-machine.js";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

describe("append-only list test state machine", () => {
  it("a snapshot restores the same list, item for item", () => {
    const a = new AppendOnlyListMachine();
    a.apply({ index: 1, term: 1, type: "normal", data: enc("one") });
    a.apply({ index: 3, term: 2, type: "normal", data: new Uint8Array() });
    a.apply({ index: 2 ** 40, term: 7, type: "normal", data: enc("big index") });
    const b = new AppendOnlyListMachine();
    b.apply({ index: 9, term: 9, type: "normal", data: enc("replaced") });
    b.restore(a.snapshot());
    expect(b.size).toBe(3);
    expect(b.slice(0, 10)).toEqual(a.slice(0, 10));
    expect(Buffer.from(b.slice(2, 1)[0]!.data).toString()).toBe("big index");
  });

  it("a truncated snapshot is STORAGE_CORRUPT", () => {
    const a = new AppendOnlyListMachine();
    a.apply({ index: 1, term: 1, type: "normal", data: enc("payload") });
    const bytes = a.snapshot();
    expect(() => new AppendOnlyListMachine().restore(bytes.slice(0, bytes.length - 2))).toThrow(FlotillaError);
    expect(() => new AppendOnlyListMachine().restore(bytes.slice(0, 3))).toThrow(/shorter than its header/);
  });
});

import { describe, expect, it } from "vitest";
import { FetchPurgatory } from "./fetch-purgatory.js";

describe("FetchPurgatory", () => {
  it("wakes the fetches parked on a key, and only those", async () => {
    const p = new FetchPurgatory(10);
    const a = p.wait(["t-0", "t-1"], 5000);
    const b = p.wait(["t-2"], 50);
    expect(p.size).toBe(2);
    p.wake("t-1");
    expect(await a).toBe("woken");
    expect(await b).toBe("timeout");
    expect(p.size).toBe(0);
  });

  it("answers at once when full, and ends parked fetches on abort and on close", async () => {
    const p = new FetchPurgatory(2);
    const abort = new AbortController();
    const a = p.wait(["x"], 5000, abort.signal);
    const b = p.wait(["y"], 5000);
    expect(await p.wait(["z"], 5000)).toBe("full");
    abort.abort();
    expect(await a).toBe("aborted");
    p.close();
    expect(await b).toBe("closed");
    expect(await p.wait(["y"], 5000)).toBe("closed");
    expect(p.size).toBe(0);
  });

  it("a wake on a key with no fetches does nothing, and a woken fetch is not woken twice", async () => {
    const p = new FetchPurgatory(1);
    p.wake("nobody");
    const a = p.wait(["k"], 5000);
    p.wake("k");
    p.wake("k");
    expect(await a).toBe("woken");
    expect(p.size).toBe(0);
  });
});

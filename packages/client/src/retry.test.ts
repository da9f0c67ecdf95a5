import { describe, expect, it } from "vitest";
import { FlotillaError, SeededRandom, type Clock } from "@flotilla/common";
import { backoffMs, shouldRetry, withRetries, type RetrierDeps } from "./retry.js";

/** A clock that only moves when the fake sleep is called, so retries run instantly. */
function fakeDeps(seed = 1): RetrierDeps & { sleeps: number[]; now: () => number } {
  let now = 0;
  const sleeps: number[] = [];
  const clock: Clock = { nowMs: () => now, monotonicMs: () => now };
  return {
    clock,
    random: new SeededRandom(seed),
    sleepMs: async (ms) => {
      sleeps.push(ms);
      now += ms;
    },
    sleeps,
    now: () => now,
  };
}

const options = { retries: 10, retryBackoffMs: 100, retryBackoffMaxMs: 1000 };

describe("backoffMs", () => {
  it("doubles from retryBackoffMs and caps at retryBackoffMaxMs, with no jitter at random 0.5", () => {
    expect([1, 2, 3, 4, 5, 6].map((a) => backoffMs(a, options, 0.5))).toEqual([100, 200, 400, 800, 1000, 1000]);
  });
  it("stays within +-20% of the base", () => {
    expect(backoffMs(1, options, 0)).toBe(80);
    expect(backoffMs(1, options, 0.999999)).toBe(120);
    expect(backoffMs(10, options, 0)).toBe(800);
  });
  it("does not overflow for huge attempt numbers", () => {
    expect(backoffMs(10_000, options, 0.5)).toBe(1000);
  });
});

describe("shouldRetry", () => {
  const retriable = new FlotillaError("NOT_LEADER_OR_FOLLOWER");
  it("retries a retriable FlotillaError within retries and time", () => {
    expect(shouldRetry(retriable, 1, 3, 0, 1000, 100)).toBe(true);
  });
  it("does not retry a non-retriable one, a plain Error, or past retries or the deadline", () => {
    expect(shouldRetry(new FlotillaError("TOPIC_ALREADY_EXISTS"), 1, 3, 0, 1000, 100)).toBe(false);
    expect(shouldRetry(new Error("bug"), 1, 3, 0, 1000, 100)).toBe(false);
    expect(shouldRetry(retriable, 4, 3, 0, 1000, 100)).toBe(false);
    expect(shouldRetry(retriable, 1, 3, 950, 1000, 100)).toBe(false);
  });
});

describe("withRetries", () => {
  it("retries retriable errors with growing backoff until success", async () => {
    const deps = fakeDeps();
    let calls = 0;
    const result = await withRetries(
      async () => {
        calls++;
        if (calls < 4) throw new FlotillaError("LEADER_NOT_AVAILABLE", `attempt ${calls}`);
        return "ok";
      },
      options,
      deps,
      { deadlineMs: 60_000 },
    );
    expect(result).toBe("ok");
    expect(calls).toBe(4);
    expect(deps.sleeps).toHaveLength(3);
    expect(deps.sleeps[0]).toBeGreaterThanOrEqual(80);
    expect(deps.sleeps[0]).toBeLessThanOrEqual(120);
    expect(deps.sleeps[2]).toBeGreaterThanOrEqual(320);
    expect(deps.sleeps[2]).toBeLessThanOrEqual(480);
  });

  it("throws a non-retriable error at once", async () => {
    const deps = fakeDeps();
    let calls = 0;
    await expect(
      withRetries(
        async () => {
          calls++;
          throw new FlotillaError("TOPIC_ALREADY_EXISTS", "t");
        },
        options,
        deps,
        { deadlineMs: 60_000 },
      ),
    ).rejects.toMatchObject({ errorName: "TOPIC_ALREADY_EXISTS" });
    expect(calls).toBe(1);
  });

  it("never retries errors that are not FlotillaErrors (programmer errors)", async () => {
    let calls = 0;
    await expect(
      withRetries(
        async () => {
          calls++;
          throw new TypeError("boom");
        },
        options,
        fakeDeps(),
        { deadlineMs: 60_000 },
      ),
    ).rejects.toThrow("boom");
    expect(calls).toBe(1);
  });

  it("stops after `retries` retries and throws the last error", async () => {
    let calls = 0;
    await expect(
      withRetries(
        async () => {
          calls++;
          throw new FlotillaError("NETWORK_EXCEPTION", `attempt ${calls}`);
        },
        { ...options, retries: 2 },
        fakeDeps(),
        { deadlineMs: 60_000 },
      ),
    ).rejects.toThrow("attempt 3");
    expect(calls).toBe(3);
  });

  it("stops before the deadline, keeping the error's own code and the error as cause", async () => {
    const deps = fakeDeps();
    let calls = 0;
    const err = await withRetries(
      async () => {
        calls++;
        throw new FlotillaError("UNKNOWN_TOPIC_OR_PARTITION", "topic t");
      },
      options,
      deps,
      { deadlineMs: 1500 },
    ).catch((e: unknown) => e);
    expect(FlotillaError.is(err, "UNKNOWN_TOPIC_OR_PARTITION")).toBe(true);
    expect((err as Error).message).toMatch(/gave up after \d+ attempt/);
    expect((err as Error).cause).toBeInstanceOf(FlotillaError);
    expect(deps.now()).toBeLessThan(1500);
    // 100 + 200 + 400 (+-20%) fit; the fourth wait (~800) would pass 1500.
    expect(calls).toBe(4);
  });

  it("treats finalErrors as answers, and calls onRetriableError before each retry", async () => {
    const seen: string[] = [];
    let calls = 0;
    await expect(
      withRetries(
        async () => {
          calls++;
          throw new FlotillaError(calls === 1 ? "NOT_CONTROLLER" : "UNKNOWN_TOPIC_OR_PARTITION");
        },
        options,
        fakeDeps(),
        { deadlineMs: 60_000, finalErrors: new Set(["UNKNOWN_TOPIC_OR_PARTITION"]), onRetriableError: (e) => void seen.push(e.errorName) },
      ),
    ).rejects.toMatchObject({ errorName: "UNKNOWN_TOPIC_OR_PARTITION" });
    expect(calls).toBe(2);
    expect(seen).toEqual(["NOT_CONTROLLER"]);
  });
});

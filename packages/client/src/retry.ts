import { FlotillaError, type Clock, type ErrorName, type Random } from "@flotilla/common";

/**
 * Retry policy shared by the producer, consumer and admin client. As in KafkaJS and the
 * Java client, the only question asked of an error is `FlotillaError.retriable`: the
 * error table in @flotilla/common decides, not the call site. Anything that is not a
 * FlotillaError (a programmer error, an assert) is never retried.
 */
export interface RetryOptions {
  /** Kafka's `retries`: how many times a failed attempt is tried again. */
  retries: number;
  /** Kafka's `retry.backoff.ms`: the wait before the first retry. */
  retryBackoffMs: number;
  /** Kafka's `retry.backoff.max.ms`: the cap of the exponential backoff. */
  retryBackoffMaxMs: number;
}

export const DEFAULT_RETRY_OPTIONS: RetryOptions = {
  retries: 2147483647,
  retryBackoffMs: 100,
  retryBackoffMaxMs: 1000,
};

/** Kafka's ExponentialBackoff uses +-20% jitter so that many clients do not retry in step. */
export const RETRY_JITTER = 0.2;

/**
 * The wait before retry number `attempt` (1 = the first retry): retryBackoffMs * 2^(attempt-1),
 * capped at retryBackoffMaxMs, then jittered by +-20% with `random` (a value in [0, 1)).
 */
export function backoffMs(attempt: number, options: Pick<RetryOptions, "retryBackoffMs" | "retryBackoffMaxMs">, random: number): number {
  const exp = Math.min(Math.max(attempt - 1, 0), 30);
  const base = Math.min(options.retryBackoffMs * 2 ** exp, options.retryBackoffMaxMs);
  const jitter = 1 - RETRY_JITTER + 2 * RETRY_JITTER * random;
  return Math.max(0, Math.round(base * jitter));
}

/** True when a failure may be tried again: a retriable FlotillaError, with retries and time left. */
export function shouldRetry(err: unknown, attempt: number, retries: number, nowMs: number, deadlineMs: number, nextWaitMs: number): boolean {
  if (!(err instanceof FlotillaError) || !err.retriable) return false;
  if (attempt > retries) return false;
  return nowMs + nextWaitMs < deadlineMs;
}

export interface RetrierDeps {
  clock: Clock;
  random: Random;
  sleepMs: (ms: number) => Promise<void>;
}

export interface RetryCall {
  /** Absolute monotonic deadline (clock.monotonicMs()) after which no new attempt starts. */
  deadlineMs: number;
  /** Called before each retry, e.g. to refresh metadata after NOT_LEADER_OR_FOLLOWER. */
  onRetriableError?: (err: FlotillaError, attempt: number) => void | Promise<void>;
  /** Stops retrying when aborted (the last error is thrown). */
  signal?: AbortSignal;
  /**
   * Retriable errors this call takes as a final answer. The Admin client uses it for
   * UNKNOWN_TOPIC_OR_PARTITION: "describe topic x" should say x does not exist, not wait
   * for it to appear, while a producer waits (the topic may be being created).
   */
  finalErrors?: ReadonlySet<ErrorName>;
}

/**
 * Runs `fn` until it succeeds, a non-retriable error occurs, `retries` is exhausted or
 * the deadline would pass during the next backoff. The last error is thrown with its own
 * code (UNKNOWN_TOPIC_OR_PARTITION says more than "timed out"); when time is what stopped
 * it, the message says so and the last error is kept as `cause`.
 */
export async function withRetries<T>(
  fn: (attempt: number) => Promise<T>,
  options: RetryOptions,
  deps: RetrierDeps,
  call: RetryCall,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (!(err instanceof FlotillaError) || !err.retriable || call.signal?.aborted || call.finalErrors?.has(err.errorName)) throw err;
      if (attempt > options.retries) throw err;
      const waitMs = backoffMs(attempt, options, deps.random.next());
      const nowMs = deps.clock.monotonicMs();
      if (nowMs + waitMs >= call.deadlineMs) {
        const detail = err.message.replace(new RegExp(`^${err.errorName}: `), "");
        throw new FlotillaError(err.errorName, `${detail} (gave up after ${attempt} attempt(s), the deadline was near)`, { cause: err, ...(err.leaderHint ? { leaderHint: err.leaderHint } : {}) });
      }
      await call.onRetriableError?.(err, attempt);
      await deps.sleepMs(waitMs);
    }
  }
}

/** A Random backed by Math.random, for composition roots (the client constructors). */
export const mathRandom: Random = {
  next: () => Math.random(),
  int: (lo, hi) => lo + Math.floor(Math.random() * (hi - lo)),
};

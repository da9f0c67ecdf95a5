import { FlotillaError, type Clock, type Random } from "@flotilla/common";
import type { Logger } from "@flotilla/common/logger";
import { createLogger } from "@flotilla/common/logger";
import { systemClock, sleepMs } from "@flotilla/common/node";
import { Cluster } from "./cluster.js";
import { parseBootstrapServers } from "./connection.js";
import { DEFAULT_RETRY_OPTIONS, mathRandom, type RetryOptions } from "./retry.js";

/** Options every client (Producer, Consumer, Admin) takes. */
export interface CommonClientOptions {
  /** "host:port,host:port" or a list of host:port: where to ask for the cluster metadata. */
  bootstrapServers: string | readonly string[];
  /** Kafka's client.id: names this client in broker logs. Default "flotilla". */
  clientId?: string;
  /** Kafka's request.timeout.ms: how long one request may take. Default 30000. */
  requestTimeoutMs?: number;
  /** Kafka's retries: retries of a failed request with a retriable error. Default 2147483647 (bounded by time). */
  retries?: number;
  /** Kafka's retry.backoff.ms: first backoff after a retriable error. Default 100. */
  retryBackoffMs?: number;
  /** Kafka's retry.backoff.max.ms: cap of the exponential backoff. Default 1000. */
  retryBackoffMaxMs?: number;
  /** Kafka's metadata.max.age.ms: refresh cached metadata at least this often. Default 300000. */
  metadataMaxAgeMs?: number;
  /** A pino logger. Default: pino to stderr at FLOTILLA_LOG_LEVEL, else "warn". */
  logger?: Logger;
  /** Time source (tests). Default: the system clock. */
  clock?: Clock;
  /** Randomness for backoff jitter and partition choice (tests). Default: Math.random. */
  random?: Random;
}

export interface ResolvedCommon {
  bootstrapServers: string[];
  clientId: string;
  requestTimeoutMs: number;
  metadataMaxAgeMs: number;
  retry: RetryOptions;
  logger: Logger;
  clock: Clock;
  random: Random;
  sleepMs: (ms: number) => Promise<void>;
}

/** Throws INVALID_CONFIG naming the option unless `value` is an integer in [min, max]. */
export function checkInt(name: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new FlotillaError("INVALID_CONFIG", `${name} must be an integer in [${min}, ${max}], got ${String(value)}`);
  }
  return value;
}

export function resolveCommon(options: CommonClientOptions, component: string): ResolvedCommon {
  const retry: RetryOptions = {
    retries: checkInt("retries", options.retries ?? DEFAULT_RETRY_OPTIONS.retries, 0),
    retryBackoffMs: checkInt("retryBackoffMs", options.retryBackoffMs ?? DEFAULT_RETRY_OPTIONS.retryBackoffMs, 0),
    retryBackoffMaxMs: checkInt("retryBackoffMaxMs", options.retryBackoffMaxMs ?? DEFAULT_RETRY_OPTIONS.retryBackoffMaxMs, 0),
  };
  if (retry.retryBackoffMaxMs < retry.retryBackoffMs) {
    throw new FlotillaError("INVALID_CONFIG", `retryBackoffMaxMs (${retry.retryBackoffMaxMs}) must be >= retryBackoffMs (${retry.retryBackoffMs})`);
  }
  const clientId = options.clientId ?? "flotilla";
  return {
    bootstrapServers: parseBootstrapServers(options.bootstrapServers),
    clientId,
    requestTimeoutMs: checkInt("requestTimeoutMs", options.requestTimeoutMs ?? 30_000, 1),
    metadataMaxAgeMs: checkInt("metadataMaxAgeMs", options.metadataMaxAgeMs ?? 300_000, 0),
    retry,
    logger: (options.logger ?? createLogger("flotilla-client", { level: process.env.FLOTILLA_LOG_LEVEL ?? "warn" })).child({ component, clientId }),
    clock: options.clock ?? systemClock,
    random: options.random ?? mathRandom,
    sleepMs,
  };
}

export function makeCluster(c: ResolvedCommon): Cluster {
  return new Cluster({
    bootstrapServers: c.bootstrapServers,
    clientId: c.clientId,
    requestTimeoutMs: c.requestTimeoutMs,
    metadataMaxAgeMs: c.metadataMaxAgeMs,
    retry: c.retry,
    clock: c.clock,
    random: c.random,
    sleepMs: c.sleepMs,
    logger: c.logger,
  });
}

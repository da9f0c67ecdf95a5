import { FlotillaError } from "@flotilla/common";
import type { ConsumerRecord, TopicDescription } from "@flotilla/client";

/**
 * Exit codes a script can rely on:
 *   0  success
 *   1  the operation failed (unknown topic, broker unreachable, ...); stderr says
 *      `error: <CODE>: <detail>` with the code from the error table
 *   2  usage or configuration error (bad flag, bad value, bad server config)
 */
export const ExitCode = { ok: 0, failed: 1, usage: 2 } as const;

/** A bad command line: exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** The exit code and the one-line stderr message for an error. */
export function describeError(err: unknown): { exitCode: number; message: string } {
  if (err instanceof UsageError) return { exitCode: ExitCode.usage, message: `error: ${err.message}` };
  if (err instanceof FlotillaError) {
    // FlotillaError messages already read "<CODE>: <detail>".
    return { exitCode: err.errorName === "INVALID_CONFIG" ? ExitCode.usage : ExitCode.failed, message: `error: ${err.message}` };
  }
  const detail = err instanceof Error ? (err.stack ?? err.message) : String(err);
  return { exitCode: ExitCode.failed, message: `error: UNEXPECTED: ${detail}` };
}

/** Parses repeated `key=value` flags; the value may contain '='. */
export function parseKeyValues(items: readonly string[], flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items) {
    const i = item.indexOf("=");
    if (i <= 0) throw new UsageError(`${flag} expects key=value, got "${item}"`);
    out[item.slice(0, i)] = item.slice(i + 1);
  }
  return out;
}

/** Like parseKeyValues but keeps order and repeated keys (for record headers). */
export function parseHeaderFlags(items: readonly string[]): { key: string; value: string }[] {
  return items.map((item) => {
    const i = item.indexOf("=");
    if (i <= 0) throw new UsageError(`--header expects key=value, got "${item}"`);
    return { key: item.slice(0, i), value: item.slice(i + 1) };
  });
}

/** Parses a non-negative integer flag, or throws a UsageError naming the flag. */
export function parseIntFlag(value: string, flag: string, min = 0): number {
  if (!/^-?\d+$/.test(value.trim())) throw new UsageError(`${flag} expects an integer, got "${value}"`);
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`${flag} must be an integer >= ${min}, got "${value}"`);
  return n;
}

/** Splits a produce input line into key and value at the first separator; no separator, no key. */
export function splitLine(line: string, keySeparator: string | undefined): { key: string | null; value: string } {
  if (keySeparator === undefined || keySeparator === "") return { key: null, value: line };
  const i = line.indexOf(keySeparator);
  if (i < 0) return { key: null, value: line };
  return { key: line.slice(0, i), value: line.slice(i + keySeparator.length) };
}

const utf8 = (b: Buffer | null): string | null => (b === null ? null : b.toString("utf8"));

/**
 * One consumed record as a line. text: the value (or `key<TAB>value` with printKey; a null
 * key or value prints as "null", as Kafka's console consumer does). json: one object per
 * line, key/value/header values as UTF-8 strings or null, headers as a list of {key, value}
 * (a list, not an object, since a key may repeat).
 */
export function formatRecord(record: ConsumerRecord, format: "text" | "json", printKey: boolean): string {
  if (format === "json") {
    return JSON.stringify({
      topic: record.topic,
      partition: record.partition,
      offset: record.offset,
      timestamp: record.timestamp,
      key: utf8(record.key),
      value: utf8(record.value),
      headers: record.headers.map((h) => ({ key: h.key, value: utf8(h.value) })),
    });
  }
  const value = utf8(record.value) ?? "null";
  return printKey ? `${utf8(record.key) ?? "null"}\t${value}` : value;
}

/**
 * `topics describe` in the layout of Kafka's kafka-topics.sh: a line per topic, then a line
 * per partition, tab-separated `Name: value` pairs. Configs lists the topic's overrides, or
 * every effective config with allConfigs.
 */
export function formatTopicDescription(t: TopicDescription, allConfigs: boolean): string {
  const keys = (allConfigs ? Object.keys(t.configs) : t.overriddenConfigs).slice().sort();
  const configs = keys.map((k) => `${k}=${t.configs[k] ?? ""}`).join(",");
  const lines = [`Topic: ${t.name}\tTopicId: ${t.topicId}\tPartitionCount: ${t.partitions.length}\tReplicationFactor: ${t.replicationFactor}\tConfigs: ${configs}`];
  for (const p of t.partitions) {
    lines.push(
      `\tTopic: ${t.name}\tPartition: ${p.partition}\tLeader: ${p.leader < 0 ? "none" : p.leader}\tReplicas: ${p.replicas.join(",")}\tIsr: ${p.isr.join(",")}\tLeaderEpoch: ${p.leaderEpoch}` +
        (p.offlineReplicas.length > 0 ? `\tOffline: ${p.offlineReplicas.join(",")}` : ""),
    );
  }
  return lines.join("\n");
}

import { Command } from "commander";
import { Admin } from "@flotilla/client";
import { formatTopicDescription, parseIntFlag, parseKeyValues, UsageError } from "../format.js";
import { writeOut, type CliIo } from "../io.js";
import { addClientOptions, clientLogger, type ClientFlags } from "./client-options.js";

const collect = (value: string, previous: string[]): string[] => [...previous, value];

function makeAdmin(flags: ClientFlags, io: CliIo): Admin {
  const requestTimeoutMs = parseIntFlag(flags.requestTimeoutMs, "--request-timeout-ms", 1);
  // A CLI call should fail within a bounded time when the cluster is unreachable.
  return new Admin({ bootstrapServers: flags.bootstrapServer, clientId: "flotilla-cli", requestTimeoutMs, defaultApiTimeoutMs: Math.max(requestTimeoutMs, 15_000), logger: clientLogger(io) });
}

async function withAdmin<T>(flags: ClientFlags, io: CliIo, fn: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = makeAdmin(flags, io);
  try {
    return await fn(admin);
  } finally {
    await admin.close();
  }
}

function requireTopic(topic: string | undefined): string {
  if (!topic) throw new UsageError("--topic is required");
  return topic;
}

/** `flotilla topics create|list|describe|alter|delete`. */
export function topicsCommand(io: CliIo): Command {
  const topics = new Command("topics").description("create, list, describe, alter and delete topics");

  addClientOptions(topics.command("create").description("create a topic"))
    .option("--topic <name>", "topic name")
    .option("--partitions <n>", "number of partitions (default: the broker's num.partitions)")
    .option("--replication-factor <n>", "replicas per partition (default: the broker's default.replication.factor)")
    .option("--config <key=value>", "topic config override, repeatable (e.g. retention.ms=60000)", collect, [])
    .action(async (opts: ClientFlags & { topic?: string; partitions?: string; replicationFactor?: string; config: string[] }) => {
      const topic = requireTopic(opts.topic);
      const numPartitions = opts.partitions === undefined ? -1 : parseIntFlag(opts.partitions, "--partitions", 1);
      const replicationFactor = opts.replicationFactor === undefined ? -1 : parseIntFlag(opts.replicationFactor, "--replication-factor", 1);
      const configs = parseKeyValues(opts.config, "--config");
      await withAdmin(opts, io, (admin) => admin.createTopics({ topics: [{ topic, numPartitions, replicationFactor, configs }] }));
      await writeOut(io.stdout, `Created topic ${topic}.\n`);
    });

  addClientOptions(topics.command("list").description("list topic names, one per line"))
    .option("--include-internal", "also list internal topics")
    .action(async (opts: ClientFlags & { includeInternal?: boolean }) => {
      const names = await withAdmin(opts, io, (admin) => admin.listTopics({ includeInternal: opts.includeInternal ?? false }));
      await writeOut(io.stdout, names.map((n) => `${n}\n`).join(""));
    });

  addClientOptions(topics.command("describe").description("partitions (leader, replicas, ISR, leader epoch) and configs"))
    .option("--topic <name>", "topic to describe (default: every topic)")
    .option("--all-configs", "print every effective config, not only the topic's overrides")
    .option("--format <text|json>", "output format", "text")
    .action(async (opts: ClientFlags & { topic?: string; allConfigs?: boolean; format: string }) => {
      if (opts.format !== "text" && opts.format !== "json") throw new UsageError(`--format must be text or json, got "${opts.format}"`);
      const described = await withAdmin(opts, io, (admin) => admin.describeTopics(opts.topic ? { topics: [opts.topic] } : {}));
      const text = opts.format === "json" ? described.map((t) => JSON.stringify(t)).join("\n") : described.map((t) => formatTopicDescription(t, opts.allConfigs ?? false)).join("\n");
      await writeOut(io.stdout, text.length > 0 ? `${text}\n` : "");
    });

  addClientOptions(topics.command("alter").description("add partitions to a topic (kafka-topics --alter --partitions)"))
    .option("--topic <name>", "topic name")
    .option("--partitions <n>", "the new total number of partitions; must be larger than the current one")
    .action(async (opts: ClientFlags & { topic?: string; partitions?: string }) => {
      const topic = requireTopic(opts.topic);
      if (opts.partitions === undefined) throw new UsageError("--partitions is required");
      const count = parseIntFlag(opts.partitions, "--partitions", 1);
      await withAdmin(opts, io, (admin) => admin.createPartitions([{ topic, count }]));
      await writeOut(io.stdout, `Topic ${topic} now has ${count} partitions.\n`);
    });

  addClientOptions(topics.command("delete").description("delete a topic"))
    .option("--topic <name>", "topic name")
    .action(async (opts: ClientFlags & { topic?: string }) => {
      const topic = requireTopic(opts.topic);
      await withAdmin(opts, io, (admin) => admin.deleteTopics({ topics: [topic] }));
      await writeOut(io.stdout, `Deleted topic ${topic}.\n`);
    });

  return topics;
}

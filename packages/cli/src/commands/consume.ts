import { Command } from "commander";
import { FlotillaError } from "@flotilla/common";
import { Admin, Consumer, GroupConsumer, type ConsumerRecord, type SeekTarget } from "@flotilla/client";
import { formatRecord, parseIntFlag, UsageError } from "../format.js";
import { writeOut, type CliIo } from "../io.js";
import { addClientOptions, clientLogger, type ClientFlags } from "./client-options.js";

interface ConsumeFlags extends ClientFlags {
  topic?: string;
  fromBeginning?: boolean;
  partition?: string;
  offset?: string;
  maxMessages?: string;
  timeoutMs?: string;
  format: string;
  printKey?: boolean;
  group?: string;
}

/** Where to start, from --offset / --from-beginning; Kafka's console consumer starts at the end. */
export function startTarget(flags: { fromBeginning?: boolean; offset?: string; partition?: string }): SeekTarget {
  if (flags.offset !== undefined) {
    if (flags.fromBeginning) throw new UsageError("--offset and --from-beginning exclude each other");
    if (flags.offset === "earliest" || flags.offset === "latest") return flags.offset;
    const offset = parseIntFlag(flags.offset, "--offset");
    if (flags.partition === undefined) throw new UsageError("--offset <n> needs --partition (an offset means something only within one partition)");
    return { offset };
  }
  return flags.fromBeginning ? "earliest" : "latest";
}

/**
 * `flotilla consume`: prints records of a topic (or one partition) to stdout, one per line.
 * Stops after --max-messages, after --timeout-ms without a new record, or on Ctrl-C; then
 * prints "Processed a total of N messages" on stderr and exits 0.
 */
export function consumeCommand(io: CliIo): Command {
  return addClientOptions(new Command("consume").description("print records of a topic to stdout"))
    .option("--topic <name>", "topic to read")
    .option("--from-beginning", "start at the earliest offset (default: only new records)")
    .option("--partition <n>", "read only this partition")
    .option("--offset <n|earliest|latest>", "start offset (a number needs --partition)")
    .option("--max-messages <n>", "exit after this many records")
    .option("--timeout-ms <ms>", "exit when no record arrived for this long")
    .option("--format <text|json>", "text: the value per line; json: one object per line", "text")
    .option("--print-key", "text format: print key<TAB>value")
    .option("--group <id>", "read as a member of this consumer group: share the partitions with its other members and commit offsets as records are printed")
    .action(async (opts: ConsumeFlags) => {
      if (!opts.topic) throw new UsageError("--topic is required");
      const topic = opts.topic;
      if (opts.format !== "text" && opts.format !== "json") throw new UsageError(`--format must be text or json, got "${opts.format}"`);
      const format = opts.format;
      const partition = opts.partition === undefined ? undefined : parseIntFlag(opts.partition, "--partition");
      const maxMessages = opts.maxMessages === undefined ? Infinity : parseIntFlag(opts.maxMessages, "--max-messages", 1);
      const idleTimeoutMs = opts.timeoutMs === undefined ? Infinity : parseIntFlag(opts.timeoutMs, "--timeout-ms", 1);
      if (opts.group !== undefined && (opts.partition !== undefined || opts.offset !== undefined)) {
        throw new UsageError("--group excludes --partition and --offset (the group assigns partitions and starts from its committed offsets)");
      }
      const target = startTarget(opts);
      const requestTimeoutMs = parseIntFlag(opts.requestTimeoutMs, "--request-timeout-ms", 1);
      const logger = clientLogger(io);

      // Fail fast on a topic that does not exist (assign() would wait for it to appear).
      const admin = new Admin({ bootstrapServers: opts.bootstrapServer, clientId: "flotilla-cli", requestTimeoutMs, defaultApiTimeoutMs: Math.max(requestTimeoutMs, 15_000), logger });
      let numPartitions: number;
      try {
        const md = await admin.metadata({ topics: [topic] });
        const t = md.topics.find((x) => x.name === topic);
        if (!t) throw new FlotillaError("UNKNOWN_TOPIC_OR_PARTITION", `topic "${topic}" does not exist`);
        numPartitions = t.partitions.length;
      } finally {
        await admin.close();
      }
      if (partition !== undefined && partition >= numPartitions) {
        throw new FlotillaError("UNKNOWN_TOPIC_OR_PARTITION", `topic "${topic}" has no partition ${partition} (it has ${numPartitions})`);
      }

      if (opts.group !== undefined) {
        const count = await consumeAsGroupMember(io, {
          bootstrapServers: opts.bootstrapServer,
          requestTimeoutMs,
          groupId: opts.group,
          topic,
          fromBeginning: opts.fromBeginning ?? false,
          maxMessages,
          idleTimeoutMs,
          print: (records) => records.map((r) => `${formatRecord(r, format, opts.printKey ?? false)}\n`).join(""),
          logger,
        });
        await writeOut(io.stderr, `Processed a total of ${count} messages\n`);
        return;
      }
      const consumer = new Consumer({
        bootstrapServers: opts.bootstrapServer,
        clientId: "flotilla-cli",
        requestTimeoutMs,
        autoOffsetReset: target === "earliest" ? "earliest" : "latest",
        logger,
      });
      let stopped = false;
      const unregister = io.onShutdownSignal(() => {
        stopped = true;
        void consumer.close();
      });
      let count = 0;
      try {
        await consumer.assign(partition === undefined ? [{ topic }] : [{ topic, partition }]);
        for (const tp of consumer.assignment()) consumer.seek(tp, target);
        let lastRecordMs = performance.now();
        // Bounded by --max-messages, --timeout-ms or a signal; each turn waits at most 500 ms.
        while (!stopped && count < maxMessages) {
          const leftMs = idleTimeoutMs - (performance.now() - lastRecordMs);
          if (leftMs <= 0) break;
          const records = await consumer.poll({ timeoutMs: Math.min(500, Math.ceil(leftMs)), maxRecords: Math.min(500, maxMessages - count) });
          if (records.length === 0) continue;
          lastRecordMs = performance.now();
          count += records.length;
          await writeOut(io.stdout, records.map((r) => `${formatRecord(r, format, opts.printKey ?? false)}\n`).join(""));
        }
      } finally {
        unregister();
        await consumer.close();
      }
      await writeOut(io.stderr, `Processed a total of ${count} messages\n`);
    });
}

/**
 * `consume --group`: a GroupConsumer subscribed to the topic. Without a committed offset a
 * partition starts at the end, or at the beginning with --from-beginning (the group's
 * auto.offset.reset). Offsets of printed records are committed every 5 s and when it stops,
 * and it leaves the group on exit, so the next member starts after the last record printed.
 */
async function consumeAsGroupMember(
  io: CliIo,
  o: {
    bootstrapServers: string;
    requestTimeoutMs: number;
    groupId: string;
    topic: string;
    fromBeginning: boolean;
    maxMessages: number;
    idleTimeoutMs: number;
    print: (records: ConsumerRecord[]) => string;
    logger: ReturnType<typeof clientLogger>;
  },
): Promise<number> {
  const consumer = new GroupConsumer({
    bootstrapServers: o.bootstrapServers,
    clientId: "flotilla-cli",
    requestTimeoutMs: o.requestTimeoutMs,
    groupId: o.groupId,
    autoOffsetReset: o.fromBeginning ? "earliest" : "latest",
    logger: o.logger,
  });
  consumer.subscribe({ topics: [o.topic] });
  let stopped = false;
  const unregister = io.onShutdownSignal(() => {
    stopped = true;
    // Also ends a poll that waits for a rebalance; the finally below waits for the same close.
    void consumer.disconnect();
  });
  let count = 0;
  try {
    let lastRecordMs = performance.now();
    // Bounded by --max-messages, --timeout-ms or a signal; each turn waits at most 500 ms.
    while (!stopped && count < o.maxMessages) {
      const leftMs = o.idleTimeoutMs - (performance.now() - lastRecordMs);
      if (leftMs <= 0) break;
      const records = await consumer.poll({ timeoutMs: Math.min(500, Math.ceil(leftMs)), maxRecords: Math.min(500, o.maxMessages - count) });
      if (records.length === 0) continue;
      lastRecordMs = performance.now();
      count += records.length;
      await writeOut(io.stdout, o.print(records));
    }
  } finally {
    unregister();
    await consumer.disconnect();
  }
  return count;
}

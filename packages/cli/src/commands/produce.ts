import readline from "node:readline";
import { Command } from "commander";
import { FlotillaError } from "@flotilla/common";
import { Admin, Producer, type Acks, type ProducerMessage, type RecordMetadata } from "@flotilla/client";
import type { Compression } from "@flotilla/protocol";
import { parseHeaderFlags, parseIntFlag, splitLine, UsageError } from "../format.js";
import { writeOut, type CliIo } from "../io.js";
import { addClientOptions, clientLogger, type ClientFlags } from "./client-options.js";

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** Lines per send() call: enough to fill batches, few enough to keep memory small. */
const LINES_PER_SEND = 500;
/** send() calls in flight at most; stdin is paused beyond that (a bound on queued lines). */
const SENDS_IN_FLIGHT_MAX = 16;

function parseAcks(value: string): Acks {
  if (value === "all" || value === "-1") return "all";
  if (value === "0") return 0;
  if (value === "1") return 1;
  throw new UsageError(`--acks must be 0, 1 or all, got "${value}"`);
}

function parseCompression(value: string): Compression {
  if (value === "none" || value === "gzip" || value === "snappy" || value === "lz4" || value === "zstd") return value;
  throw new UsageError(`--compression must be none, gzip, snappy, lz4 or zstd, got "${value}"`);
}

interface ProduceFlags extends ClientFlags {
  topic?: string;
  keySeparator?: string;
  header: string[];
  acks: string;
  compression: string;
  partition?: string;
  lingerMs: string;
}

/**
 * `flotilla produce`: one record per stdin line. With --key-separator, a line holding the
 * separator is split at its first occurrence into key and value; other lines have no key.
 * Prints nothing on success except a summary on stderr.
 */
export function produceCommand(io: CliIo): Command {
  return addClientOptions(new Command("produce").description("write stdin lines to a topic, one record per line"))
    .option("--topic <name>", "topic to write to")
    .option("--key-separator <sep>", "split each line into key and value at the first <sep>")
    .option("--header <key=value>", "header added to every record, repeatable", collect, [])
    .option("--acks <0|1|all>", "acknowledgements to wait for", "all")
    .option("--compression <codec>", "none, gzip, snappy, lz4 or zstd", "none")
    .option("--partition <n>", "write every record to this partition")
    .option("--linger-ms <ms>", "how long a batch waits for more records", "5")
    .action(async (opts: ProduceFlags) => {
      if (!opts.topic) throw new UsageError("--topic is required");
      const topic = opts.topic;
      const acks = parseAcks(opts.acks);
      const compression = parseCompression(opts.compression);
      const headers = parseHeaderFlags(opts.header);
      const partition = opts.partition === undefined ? undefined : parseIntFlag(opts.partition, "--partition");
      const lingerMs = parseIntFlag(opts.lingerMs, "--linger-ms");
      const requestTimeoutMs = parseIntFlag(opts.requestTimeoutMs, "--request-timeout-ms", 1);
      const logger = clientLogger(io);

      // Fail fast on a topic that does not exist (the producer would wait max.block.ms for it).
      const admin = new Admin({ bootstrapServers: opts.bootstrapServer, clientId: "flotilla-cli", requestTimeoutMs, defaultApiTimeoutMs: Math.max(requestTimeoutMs, 15_000), logger });
      try {
        const md = await admin.metadata({ topics: [topic] });
        const t = md.topics.find((x) => x.name === topic);
        if (!t) throw new FlotillaError("UNKNOWN_TOPIC_OR_PARTITION", `topic "${topic}" does not exist`);
        if (partition !== undefined && t && partition >= t.partitions.length) {
          throw new FlotillaError("UNKNOWN_TOPIC_OR_PARTITION", `topic "${topic}" has no partition ${partition} (it has ${t.partitions.length})`);
        }
      } finally {
        await admin.close();
      }

      const producer = new Producer({
        bootstrapServers: opts.bootstrapServer,
        clientId: "flotilla-cli",
        acks,
        compression,
        lingerMs,
        requestTimeoutMs,
        deliveryTimeoutMs: Math.max(120_000, lingerMs + requestTimeoutMs),
        logger,
      });
      let sent = 0;
      let failure: unknown;
      const inflight = new Set<Promise<RecordMetadata[]>>();
      const lines = readline.createInterface({ input: io.stdin, crlfDelay: Infinity });
      let chunk: ProducerMessage[] = [];
      const flushChunk = async (): Promise<void> => {
        if (chunk.length === 0) return;
        const messages = chunk;
        chunk = [];
        const p = producer.send({ topic, messages });
        inflight.add(p);
        p.then(
          (r) => {
            sent += r.length;
          },
          (err: unknown) => {
            failure ??= err;
          },
        ).finally(() => inflight.delete(p));
        // Bounded: wait for the oldest sends before reading more lines.
        while (inflight.size >= SENDS_IN_FLIGHT_MAX && failure === undefined) await Promise.race(inflight).catch(() => undefined);
      };
      try {
        for await (const line of lines) {
          if (failure !== undefined) break;
          const { key, value } = splitLine(line, opts.keySeparator);
          const message: ProducerMessage = { key, value };
          if (headers.length > 0) message.headers = headers;
          if (partition !== undefined) message.partition = partition;
          chunk.push(message);
          if (chunk.length >= LINES_PER_SEND) await flushChunk();
        }
        await flushChunk();
        await Promise.allSettled([...inflight]);
      } finally {
        lines.close();
        await producer.close();
      }
      if (failure !== undefined) {
        await writeOut(io.stderr, `produced ${sent} record(s) to topic ${topic} before the error\n`);
        throw failure;
      }
      await writeOut(io.stderr, `produced ${sent} record(s) to topic ${topic}\n`);
    });
}

/**
 * Small shared pieces for tests that drive real Kafka clients (kcat, kafkajs) against real
 * Flotilla processes:
 *
 *   const { stdout } = await runKcat(["-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-J"]);
 *   const records = parseKcatJson(stdout);
 *   const kafka = newKafkajs(cluster.bootstrap(), "my-test");
 *   const messages = await consumeWithKafkajs(kafka, { topic, groupId: "g", count: 10, timeoutMs: 30_000 });
 *
 * Every kcat run is bounded by a timeout and killed by its pid when it overruns; every kafkajs
 * consumer started here is disconnected before the helper returns, whether it succeeded or not.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import { Kafka, logLevel, type KafkaMessage, type logCreator } from "kafkajs";

export interface KcatResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Raw bytes: kcat's output may carry binary keys and values. */
  stdout: Buffer;
  stderr: string;
}

const KCAT_TIMEOUT_MS_DEFAULT = 30_000;
/** Bytes of kcat output kept; a test that needs more has a bug. */
const KCAT_OUTPUT_BYTES_MAX = 16 << 20;

/**
 * Runs `kcat args...` with `input` on its stdin, waits for its exit, and fails if it exits
 * non-zero or overruns `timeoutMs` (it is then SIGKILLed by pid). `allowFailure` returns the
 * result of a non-zero exit instead of throwing.
 */
export async function runKcat(
  args: readonly string[],
  options: { input?: string | Buffer; timeoutMs?: number; allowFailure?: boolean } = {},
): Promise<KcatResult> {
  const timeoutMs = options.timeoutMs ?? KCAT_TIMEOUT_MS_DEFAULT;
  const child = spawn("kcat", args, { stdio: ["pipe", "pipe", "pipe"] });
  const pid = child.pid;
  const out: Buffer[] = [];
  let outBytes = 0;
  let stderr = "";
  child.stdout.on("data", (b: Buffer) => {
    outBytes += b.length;
    if (outBytes <= KCAT_OUTPUT_BYTES_MAX) out.push(b);
  });
  child.stderr.on("data", (b: Buffer) => {
    stderr += b.toString("utf8");
    if (stderr.length > 64_000) stderr = stderr.slice(-32_000);
  });
  // kcat may exit before reading all its input (an error); that is reported by its exit code.
  child.stdin.on("error", () => undefined);
  child.stdin.end(options.input ?? "");
  let timer: NodeJS.Timeout | undefined;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code, signal) => resolve({ code, signal }));
  });
  const overrun = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), timeoutMs);
  });
  try {
    const first = await Promise.race([exited, overrun]);
    if (first === "timeout") {
      if (pid !== undefined) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // Exited between the timeout and the kill.
        }
      }
      await exited.catch(() => undefined);
      throw new Error(`kcat ${args.join(" ")} did not exit within ${timeoutMs} ms (killed); stderr:\n${stderr.slice(-4000)}`);
    }
    const result: KcatResult = { ...first, stdout: Buffer.concat(out), stderr };
    if (outBytes > KCAT_OUTPUT_BYTES_MAX) throw new Error(`kcat ${args.join(" ")} wrote more than ${KCAT_OUTPUT_BYTES_MAX} bytes`);
    if (first.code !== 0 && !options.allowFailure) {
      throw new Error(`kcat ${args.join(" ")} exited with code ${first.code} signal ${first.signal}; stderr:\n${stderr.slice(-4000)}`);
    }
    return result;
  } finally {
    clearTimeout(timer);
    if (child.exitCode === null && child.signalCode === null && pid !== undefined) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
  }
}

/** One line of `kcat -C -J` output. Keys and payloads are strings (kcat prints them as text). */
export interface KcatJsonRecord {
  topic: string;
  partition: number;
  offset: number;
  tstype: string;
  ts: number;
  broker: number;
  /** Flat list: name, value, name, value, ... (values may be null). */
  headers?: (string | null)[];
  key: string | null;
  payload: string | null;
}

/** Parses `kcat -C -J` output (one JSON object per line); kcat's "% ..." notices go to stderr. */
export function parseKcatJson(stdout: Buffer): KcatJsonRecord[] {
  return stdout
    .toString("utf8")
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as KcatJsonRecord);
}

/**
 * A kafkajs logger that forwards warnings and errors to the test output (console.warn, which
 * vitest shows next to the failing test) and drops info and debug chatter.
 */
export const kafkajsLogCreator: logCreator = () => (entry) => {
  if (entry.level > logLevel.WARN) return;
  const { message, ...extra } = entry.log;
  const name = entry.level === logLevel.ERROR ? "ERROR" : "WARN";
  console.warn(`[kafkajs ${name} ${entry.namespace}] ${message} ${JSON.stringify(extra)}`);
};

/**
 * A kafkajs client for `bootstrap` ("host:port,host:port"), quiet, with bounded retries and
 * timeouts generous enough for a loaded 2-core machine. `silent` drops its warnings and
 * errors too, for tests that cause connection errors on purpose (failures still surface as
 * rejected calls).
 */
export function newKafkajs(bootstrap: string, clientId: string, options: { silent?: boolean } = {}): Kafka {
  return new Kafka({
    clientId,
    brokers: bootstrap.split(","),
    logLevel: options.silent ? logLevel.NOTHING : logLevel.WARN,
    logCreator: kafkajsLogCreator,
    connectionTimeout: 10_000,
    requestTimeout: 30_000,
    retry: { retries: 8, initialRetryTime: 200, maxRetryTime: 3_000 },
  });
}

export interface KafkajsConsumed {
  topic: string;
  partition: number;
  message: KafkaMessage;
}

/**
 * Joins group `groupId`, subscribes to `topic` from the beginning and collects messages until
 * `count` arrived or `timeoutMs` passed (rejects, saying how many arrived). It then keeps
 * reading for `settleMs` (default 300) and rejects if more than `count` arrived (a
 * duplicate, say); else resolves with the `count` messages in arrival order. The consumer is
 * always disconnected.
 */
export async function consumeWithKafkajs(
  kafka: Kafka,
  options: { topic: string; groupId: string; count: number; timeoutMs: number; settleMs?: number },
): Promise<KafkajsConsumed[]> {
  const consumer = kafka.consumer({ groupId: options.groupId, sessionTimeout: 10_000, rebalanceTimeout: 10_000, heartbeatInterval: 1_000, maxWaitTimeInMs: 200 });
  const got: KafkajsConsumed[] = [];
  // Group events, for the error message: a rebalance explains a redelivery.
  const events: string[] = [];
  consumer.on(consumer.events.GROUP_JOIN, (e) => events.push(`join(${JSON.stringify(e.payload.memberAssignment)}, after ${got.length} messages)`));
  consumer.on(consumer.events.COMMIT_OFFSETS, (e) => events.push(`commit(generation ${e.payload.groupGenerationId}, after ${got.length} messages)`));
  let timer: NodeJS.Timeout | undefined;
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [options.topic], fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      timer = setTimeout(
        () => reject(new Error(`kafkajs consumer of ${options.topic} (group ${options.groupId}) got ${got.length} of ${options.count} messages in ${options.timeoutMs} ms`)),
        options.timeoutMs,
      );
      // kafkajs restarts the consumer after a retriable crash; only a final one fails the wait.
      consumer.on(consumer.events.CRASH, (e) => {
        if (!e.payload.restart) reject(new Error(`kafkajs consumer crashed: ${String(e.payload.error)}`));
      });
      consumer
        .run({
          eachMessage: async ({ topic, partition, message }) => {
            got.push({ topic, partition, message });
            if (got.length >= options.count) resolve();
          },
        })
        .catch(reject);
    });
    await new Promise((r) => setTimeout(r, options.settleMs ?? 300));
    if (got.length > options.count) {
      const seen = new Map<string, number>();
      for (const g of got) seen.set(`${g.partition}/${g.message.offset}`, (seen.get(`${g.partition}/${g.message.offset}`) ?? 0) + 1);
      const repeated = [...seen].filter(([, n]) => n > 1).map(([at, n]) => `${at} x${n}`);
      throw new Error(
        `kafkajs consumer of ${options.topic} (group ${options.groupId}) got ${got.length} messages, expected ${options.count}; ` +
          `partition/offset delivered more than once: ${repeated.join(", ") || "none (the extra records sit at distinct offsets)"}; events: ${events.join(", ")}`,
      );
    }
    return got;
  } finally {
    clearTimeout(timer);
    await consumer.disconnect().catch(() => undefined);
  }
}

/** One row of the API table in docs/KAFKA.md. */
export interface KafkaDocRow {
  name: string;
  key: number;
  min: number;
  max: number;
  /** The version kafkajs uses against Flotilla. */
  kafkajs: number;
  /** The version kcat (librdkafka) was seen sending, or undefined ("–") for APIs kcat never sends. */
  kcat: number | undefined;
}

/** Reads the table between the kafka-api-table markers of docs/KAFKA.md. */
export function readKafkaDocTable(docPath: string): KafkaDocRow[] {
  const text = fs.readFileSync(docPath, "utf8");
  const begin = text.indexOf("<!-- kafka-api-table:begin -->");
  const end = text.indexOf("<!-- kafka-api-table:end -->");
  if (begin < 0 || end < begin) throw new Error(`${docPath} lacks the kafka-api-table markers`);
  const rows = text
    .slice(begin, end)
    .split("\n")
    .filter((l) => l.startsWith("|"))
    .slice(2); // header and separator
  return rows.map((line) => {
    const cells = line
      .split("|")
      .slice(1, -1)
      .map((c) => c.trim());
    if (cells.length !== 6) throw new Error(`${docPath}: table row has ${cells.length} cells, expected 6: ${line}`);
    const [name, key, min, max, kafkajs, kcat] = cells as [string, string, string, string, string, string];
    const int = (s: string, what: string): number => {
      if (!/^\d+$/.test(s)) throw new Error(`${docPath}: ${what} of ${name} is "${s}", not a version number`);
      return Number(s);
    };
    return { name, key: int(key, "key"), min: int(min, "min"), max: int(max, "max"), kafkajs: int(kafkajs, "kafkajs"), kcat: kcat === "–" ? undefined : int(kcat, "kcat") };
  });
}

/**
 * The highest version of each API librdkafka sent, from `-d protocol` debug output
 * ("Sent ProduceRequest (v7, ..."), keyed by Kafka's API name (librdkafka says
 * "ApiVersion" for ApiVersions).
 */
export function kcatSentVersions(debugOutput: string): Map<string, number> {
  const sent = new Map<string, number>();
  for (const m of debugOutput.matchAll(/Sent (\w+)Request \(v(\d+),/g)) {
    const name = m[1] === "ApiVersion" ? "ApiVersions" : m[1]!;
    sent.set(name, Math.max(sent.get(name) ?? -1, Number(m[2])));
  }
  return sent;
}

/**
 * The broker's ApiVersions answer as librdkafka logs it with `-d feature` ("ApiKey Produce (0)
 * Versions 0..8"), keyed by API key; the last answer logged wins.
 */
export function kcatBrokerApiVersions(debugOutput: string): Map<number, { min: number; max: number }> {
  const versions = new Map<number, { min: number; max: number }>();
  for (const m of debugOutput.matchAll(/ApiKey \w+ \((\d+)\) Versions (\d+)\.\.(\d+)/g)) {
    versions.set(Number(m[1]), { min: Number(m[2]), max: Number(m[3]) });
  }
  return versions;
}

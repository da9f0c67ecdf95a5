/**
 * A cluster of `flotilla server` processes on 127.0.0.1, for end-to-end tests of replication
 * and restarts. By default every node is combined (`process.roles=broker,controller`) and a
 * voter; `roles` gives other topologies, e.g. one combined node as the single voter and
 * broker-only nodes beside it, so brokers can die without taking the quorum with them.
 *
 *   const cluster = await startCombinedCluster({ name: "acks-all", nodes: 3 });
 *   await cluster.waitForBrokersUnfenced(30_000);  // every broker registered and unfenced
 *   await cluster.createTopic("t", { partitions: 3, configs: { "min.insync.replicas": "2" } }, 60_000);
 *   await cluster.waitFor("full ISRs", () => cluster.hasFullIsr("t", 3), 60_000);
 *   await cluster.stop(2, "SIGKILL");            // or SIGTERM: controlled shutdown
 *   await cluster.start(2);                      // same node id, ports and log dir
 *   cluster.pause(3); cluster.resume(3);          // SIGSTOP / SIGCONT by pid
 *   await cluster.waitFor("x", async () => ..., 30_000);
 *   await cluster.readAll("topic", n, 30_000);   // every record up to the high watermark
 *   await cluster.logBytes(2, "topic", 0, hw);   // a stopped node's stored batches, [start, hw)
 *   await cluster.destroy();                     // SIGKILL by pid, delete the data (afterAll)
 *
 * Timings are short (session 3 s, heartbeats 300 ms, replica lag 2 s) so failures are noticed
 * quickly; the waits built on them are the caller's, and should be generous.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { silentLogger } from "../../packages/common/src/logger.js";
import { systemClock } from "../../packages/common/src/node.js";
import { Admin, Consumer, type TopicDescription } from "../../packages/client/src/index.js";
import { ControllerQuorumClient, type ClusterDescription } from "../../packages/controller/src/index.js";
import { PartitionLog } from "../../packages/storage/src/index.js";
import { SERVER_NODE_FLAGS } from "../../packages/cli/src/node-flags.js";
import { freePorts, startTsProcess, type ChildHandle, type ExitStatus } from "./processes.js";

export type NodeRoles = "broker" | "controller" | "broker,controller";

export interface CombinedClusterOptions {
  /** Used in log file and directory names. */
  name: string;
  nodes: number;
  /**
   * Node `id`'s `process.roles` (default "broker,controller" for all). The voters are the nodes
   * with the controller role; they start first, the broker-only nodes once they are ready.
   */
  roles?: (id: number) => NodeRoles;
  /** Extra `key=value` server properties, applied after the defaults here. */
  overrides?: readonly string[];
  /** Node `id`'s listener address (default 127.0.0.1 for all), e.g. its network namespace's. */
  host?: (id: number) => string;
  /** A command prefix that runs node `id` (see StartOptions.wrap), e.g. `ip netns exec <ns>`. */
  wrap?: (id: number) => readonly string[];
  /** How long a node may take to print its ready line (default 60 s). */
  readyTimeoutMs?: number;
}

/** A record as `readAll` returns it; key and value as UTF-8 text. */
export interface ReadRecord {
  partition: number;
  offset: number;
  key: string | null;
  value: string | null;
}

export interface TopicSpec {
  partitions: number;
  /** Default 3. */
  replicationFactor?: number;
  configs?: Record<string, string>;
}

export interface CombinedCluster {
  readonly nodeIds: readonly number[];
  /** The nodes with the broker role. */
  readonly brokerIds: readonly number[];
  /** The nodes with the controller role: the voters. */
  readonly controllerIds: readonly number[];
  readonly dataDir: string;
  /** All brokers' client listeners, comma-separated. */
  bootstrap(): string;
  /** Node `id`'s client listener (brokers only). */
  address(id: number): string;
  /** Node `id`'s controller listener (voters only). */
  controllerAddress(id: number): string;
  /** Every voter's controller listener, in node id order. */
  controllerAddresses(): string[];
  logDirOf(id: number): string;
  isRunning(id: number): boolean;
  handle(id: number): ChildHandle | undefined;
  /** Starts (or restarts) node `id` and resolves once it printed its ready line. */
  start(id: number): Promise<ChildHandle>;
  /** Freezes node `id` (SIGSTOP by pid): it keeps its sockets open but answers nothing until `resume`. */
  pause(id: number): void;
  /** Thaws a node `pause` froze (SIGCONT by pid). */
  resume(id: number): void;
  /** Signals node `id` by pid (resuming it first if paused) and waits for its exit (SIGTERM falls back to SIGKILL after `timeoutMs`). */
  stop(id: number, signal: "SIGKILL" | "SIGTERM", timeoutMs?: number): Promise<ExitStatus>;
  /** The topic as a broker sees it (any running broker, or the one given). */
  describeTopic(topic: string, viaNode?: number): Promise<TopicDescription>;
  /** Polls `fn` every 200 ms until it returns (or resolves to) a truthy value; throws naming `what` after `timeoutMs`. */
  waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs: number): Promise<T>;
  /** Creates `topic` (replication factor 3 unless given), retrying until a broker accepts it or `timeoutMs` passed. */
  createTopic(topic: string, spec: TopicSpec, timeoutMs: number): Promise<void>;
  /** Whether `topic` has its `partitions` partitions, each with a leader and every replica in its ISR (as the running brokers see it). */
  hasFullIsr(topic: string, partitions: number): Promise<boolean>;
  /** Waits until the quorum lists every broker of the cluster, none fenced, and returns that description. */
  waitForBrokersUnfenced(timeoutMs: number): Promise<ClusterDescription>;
  /**
   * Every record of every partition of `topic` from the earliest offset up to the high watermark:
   * polls until at least `expectedAtLeast` records came and two polls in a row brought nothing
   * (so a surplus shows too), or `timeoutMs` passed.
   */
  readAll(topic: string, expectedAtLeast: number, timeoutMs: number): Promise<ReadRecord[]>;
  /** The stored batch bytes of a stopped node's partition from its log start up to `endOffset`, and its log end offset. */
  logBytes(id: number, topic: string, partition: number, endOffset: number): Promise<{ bytes: Buffer; logEndOffset: number }>;
  /** SIGKILLs every node still running (by pid) and removes the data directory. */
  destroy(): Promise<void>;
}

const POLL_INTERVAL_MS = 200;
const POLLS_MAX = 100_000;
const READ_POLL_MS = 500;
/** A consumer's close after readAll may wait on a broker that just went away; the records are in hand by then. */
const READ_CLOSE_MS = 15_000;

export async function startCombinedCluster(options: CombinedClusterOptions): Promise<CombinedCluster> {
  const nodeIds = Array.from({ length: options.nodes }, (_, i) => i + 1);
  const rolesOf = options.roles ?? ((): NodeRoles => "broker,controller");
  const brokerIds = nodeIds.filter((id) => rolesOf(id).includes("broker"));
  const controllerIds = nodeIds.filter((id) => rolesOf(id).includes("controller"));
  if (controllerIds.length === 0) throw new Error(`cluster ${options.name}: no node has the controller role`);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `flotilla-${options.name}-`));
  const ports = await freePorts(options.nodes * 2);
  const clientPorts = ports.slice(0, options.nodes);
  const controllerPorts = ports.slice(options.nodes);
  const procs = new Map<number, ChildHandle>();
  const paused = new Set<number>();
  const hostOf = options.host ?? ((): string => "127.0.0.1");
  const address = (id: number): string => {
    if (!brokerIds.includes(id)) throw new Error(`node ${id} is not a broker`);
    return `${hostOf(id)}:${clientPorts[id - 1]}`;
  };
  const controllerAddress = (id: number): string => {
    if (!controllerIds.includes(id)) throw new Error(`node ${id} is not a controller`);
    return `${hostOf(id)}:${controllerPorts[id - 1]}`;
  };
  const voters = controllerIds.map((id) => `${id}@${controllerAddress(id)}`).join(",");
  const logDirOf = (id: number): string => path.join(dataDir, `node-${id}`);
  const isRunning = (id: number): boolean => procs.get(id)?.isRunning() ?? false;

  const resume = (id: number): void => {
    if (!paused.delete(id)) return;
    const child = procs.get(id);
    if (child?.isRunning()) process.kill(child.pid, "SIGCONT");
  };

  const start = async (id: number): Promise<ChildHandle> => {
    if (isRunning(id)) throw new Error(`node ${id} is already running`);
    const listeners = [
      ...(brokerIds.includes(id) ? [`PLAINTEXT://${address(id)}`] : []),
      ...(controllerIds.includes(id) ? [`CONTROLLER://${controllerAddress(id)}`] : []),
    ];
    const child = await startTsProcess({
      name: `${options.name}-node-${id}`,
      entry: "packages/cli/src/main.ts",
      args: [
        "server",
        ...[
          `node.id=${id}`,
          `process.roles=${rolesOf(id)}`,
          `controller.quorum.voters=${voters}`,
          `listeners=${listeners.join(",")}`,
          `log.dirs=${logDirOf(id)}`,
          "broker.session.timeout.ms=3000",
          "broker.heartbeat.interval.ms=300",
          "controller.quorum.election.timeout.ms=1000",
          "replica.lag.time.max.ms=2000",
          "default.replication.factor=3",
          ...(options.overrides ?? []),
        ].flatMap((o) => ["--override", o]),
      ],
      env: { FLOTILLA_LOG_LEVEL: "info" },
      nodeArgs: SERVER_NODE_FLAGS,
      readyLine: /"event":"ready"/,
      // A loaded 2-core machine starts tsx slowly.
      readyTimeoutMs: options.readyTimeoutMs ?? 60_000,
      ...(options.wrap ? { wrap: options.wrap(id) } : {}),
    });
    procs.set(id, child);
    return child;
  };

  const waitFor = async <T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs: number): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    for (let i = 0; i < POLLS_MAX; i++) {
      try {
        const v = await fn();
        if (v) return v;
      } catch (err) {
        last = err;
      }
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, POLL_INTERVAL_MS));
    }
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ""}`);
  };

  const waitForBrokersUnfenced = async (timeoutMs: number): Promise<ClusterDescription> => {
    const quorum = new ControllerQuorumClient({ addresses: controllerIds.map(controllerAddress), totalTimeoutMs: 10_000 });
    try {
      return await waitFor(`${brokerIds.length} unfenced brokers`, async () => {
        const c = await quorum.describeCluster();
        return c.brokers.length === brokerIds.length && c.brokers.every((b) => !b.fenced) ? c : undefined;
      }, timeoutMs);
    } finally {
      quorum.close();
    }
  };

  const describeTopic = async (topic: string, viaNode?: number): Promise<TopicDescription> => {
    const servers = viaNode !== undefined ? address(viaNode) : brokerIds.filter(isRunning).map(address).join(",");
    const admin = new Admin({ bootstrapServers: servers, defaultApiTimeoutMs: 10_000 });
    try {
      const [t] = await admin.describeTopics({ topics: [topic] });
      if (!t) throw new Error(`topic ${topic} not described`);
      return t;
    } finally {
      await admin.close();
    }
  };

  const createTopic = async (topic: string, spec: TopicSpec, timeoutMs: number): Promise<void> => {
    const admin = new Admin({ bootstrapServers: brokerIds.map(address).join(","), defaultApiTimeoutMs: 20_000 });
    try {
      const request = { topic, numPartitions: spec.partitions, replicationFactor: spec.replicationFactor ?? 3, configs: spec.configs ?? {} };
      await waitFor(`topic ${topic} created`, async () => (await admin.createTopics({ topics: [request] })).length === 1, timeoutMs);
    } finally {
      await admin.close();
    }
  };

  const hasFullIsr = async (topic: string, partitions: number): Promise<boolean> => {
    const t = await describeTopic(topic);
    return t.partitions.length === partitions && t.partitions.every((p) => p.leader > 0 && p.replicas.length > 0 && p.isr.length === p.replicas.length);
  };

  const readAll = async (topic: string, expectedAtLeast: number, timeoutMs: number): Promise<ReadRecord[]> => {
    const consumer = new Consumer({ bootstrapServers: brokerIds.map(address).join(","), autoOffsetReset: "earliest" });
    const out: ReadRecord[] = [];
    try {
      await consumer.assign([{ topic }]);
      let quietPolls = 0;
      const deadline = Date.now() + timeoutMs;
      // Bounded by time (each poll by READ_POLL_MS); two empty polls after the expected count show any surplus too.
      while (Date.now() < deadline && (out.length < expectedAtLeast || quietPolls < 2)) {
        const records = await consumer.poll({ timeoutMs: READ_POLL_MS });
        quietPolls = records.length === 0 ? quietPolls + 1 : 0;
        for (const r of records) out.push({ partition: r.partition, offset: r.offset, key: r.key?.toString() ?? null, value: r.value?.toString() ?? null });
      }
    } finally {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([consumer.close(), new Promise((r) => (timer = setTimeout(r, READ_CLOSE_MS)))]).finally(() => clearTimeout(timer));
    }
    return out;
  };

  const logBytes = async (id: number, topic: string, partition: number, endOffset: number): Promise<{ bytes: Buffer; logEndOffset: number }> => {
    if (isRunning(id)) throw new Error(`node ${id} is running; stop it before reading its files`);
    const log = await PartitionLog.open({
      dir: path.join(logDirOf(id), `${topic}-${partition}`),
      config: { segmentBytes: 1 << 30, segmentMs: 7 * 24 * 3600_000, retentionMs: -1, retentionBytes: -1, indexIntervalBytes: 4096, segmentIndexBytes: 10 << 20 },
      clock: systemClock,
      logger: silentLogger(),
      topic,
      partition,
    });
    try {
      const parts: Buffer[] = [];
      let offset = log.logStartOffset;
      for (let i = 0; i < POLLS_MAX && offset < endOffset; i++) {
        const r = await log.read(offset, { maxBytes: 1 << 20, maxOffsetExclusive: endOffset, minOneBatch: true });
        if (r.records.length === 0) break;
        parts.push(r.records);
        offset = r.nextOffset;
      }
      return { bytes: Buffer.concat(parts), logEndOffset: log.logEndOffset };
    } finally {
      await log.close();
    }
  };

  const cluster: CombinedCluster = {
    nodeIds,
    brokerIds,
    controllerIds,
    dataDir,
    bootstrap: () => brokerIds.map(address).join(","),
    address,
    controllerAddress,
    controllerAddresses: () => controllerIds.map(controllerAddress),
    logDirOf,
    isRunning,
    handle: (id) => procs.get(id),
    start,
    pause: (id) => {
      if (!isRunning(id)) throw new Error(`node ${id} is not running`);
      process.kill(procs.get(id)!.pid, "SIGSTOP");
      paused.add(id);
    },
    resume,
    stop: async (id, signal, timeoutMs = 30_000) => {
      const child = procs.get(id);
      if (!child) throw new Error(`node ${id} was never started`);
      // A frozen process would not act on SIGTERM until thawed.
      if (paused.has(id)) resume(id);
      return child.kill(signal, timeoutMs);
    },
    describeTopic,
    waitFor,
    waitForBrokersUnfenced,
    createTopic,
    hasFullIsr,
    readAll,
    logBytes,
    destroy: async () => {
      await Promise.all([...procs.values()].map((c) => c.kill("SIGKILL").catch(() => undefined)));
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
  try {
    // Voters first: a broker-only node has no quorum to register with until they are up.
    await Promise.all(controllerIds.map((id) => start(id)));
    await Promise.all(nodeIds.filter((id) => !controllerIds.includes(id)).map((id) => start(id)));
  } catch (err) {
    await cluster.destroy();
    throw err;
  }
  return cluster;
}

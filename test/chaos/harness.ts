/**
 * The chaos harness: three combined nodes (`process.roles=broker,controller`, all three Raft
 * voters) as real processes on 127.0.0.1, an RF=3 min.insync.replicas=2 topic, a workload of
 * idempotent acks=all producers with keyed records and a consumer group, and a nemesis that
 * injects one fault at a time on a schedule drawn from a seeded PRNG:
 *   kill-random     kill -9 of a random node, restarted after the fault time
 *   kill-leader     kill -9 of the leader of a random partition of the topic
 *   kill-controller kill -9 of the active controller (the Raft leader, as the nodes' Metadata
 *                   answers name it: activeController())
 *   pause           SIGSTOP of a random node, SIGCONT after the fault time
 *   rolling-restart SIGTERM (controlled shutdown) and restart of each node in turn
 *   partition-leader  only with `netns: true` (root): each node runs in its own network namespace
 *                   (netns.ts) and the leader of a random partition has its link downed for
 *                   longer than the session timeout, then healed
 *   partition-controller  the same for the active controller (the metadata quorum's leader)
 *
 * Faults never overlap: after each one heals, the nemesis waits (bounded) for every replica to
 * be back in the ISR, so at most one of three nodes is ever down and acks=all stays possible.
 * Afterwards: heal, wait for full ISRs, stop the workload, read every partition from the
 * earliest offset to the high watermark, stop all nodes cleanly and read each replica's stored
 * bytes up to that high watermark, and give the history to the checker.
 *
 *   const result = await runChaos({ name: "ci", seed: 7, faultMs: 40_000, events: 4 });
 *   result.report.counts.lost  // must be 0
 *
 * Every process started is killed by pid in a finally, also when the run fails.
 */
import fs from "node:fs";
import path from "node:path";
import { assert } from "../../packages/common/src/errors.js";
import { SeededRandom } from "../../packages/common/src/time.js";
import { createLogger } from "../../packages/common/src/logger.js";
import { Admin, GroupConsumer, Producer } from "../../packages/client/src/index.js";
import { startCombinedCluster, type CombinedCluster } from "../helpers/combined-cluster.js";
import { createNetns, type Netns } from "./netns.js";
import { check, type CheckReport, type History, type ReadRecord, type ReplicaLog, type SendEvent } from "./checker.js";

export type NemesisKind = "kill-random" | "kill-leader" | "kill-controller" | "pause" | "rolling-restart" | "partition-leader" | "partition-controller";
export const NEMESIS_KINDS: readonly NemesisKind[] = ["kill-random", "kill-leader", "kill-controller", "pause", "rolling-restart"];
/** The kinds when the nodes run in network namespaces (ChaosOptions.netns). */
export const NETNS_NEMESIS_KINDS: readonly NemesisKind[] = [...NEMESIS_KINDS, "partition-leader", "partition-controller"];

export interface ChaosOptions {
  /** Used in process and directory names. */
  name: string;
  seed: number;
  /** How long the nemesis keeps injecting faults (ms); the last fault may end later. */
  faultMs: number;
  /** At most this many nemesis events (default: as many as fit in faultMs). */
  events?: number;
  /** The kinds to draw from (default all). The first `kinds.length` events use each once, in a seeded order. */
  kinds?: readonly NemesisKind[];
  partitions?: number;
  keys?: number;
  producers?: number;
  /** A gap with no acknowledgement longer than this is reported as unavailability (default 3000 ms). */
  unavailabilityThresholdMs?: number;
  /** Where to write `<stem>.json` and `<stem>.md`; no files when undefined. */
  reportPath?: string;
  /** Run each node in its own network namespace (root only), enabling partition-leader. */
  netns?: boolean;
}

export interface NemesisEvent {
  kind: NemesisKind;
  /** The node(s) it hit. */
  nodes: number[];
  /** What the target was, e.g. "leader of partition 2" or "active controller". */
  target: string;
  startMs: number;
  healedMs: number;
  /** When every replica was back in the ISR (undefined if the bounded wait ran out). */
  fullIsrMs: number | undefined;
}

export interface ChaosResult {
  seed: number;
  report: CheckReport;
  events: NemesisEvent[];
  consumerGroupRecords: number;
  highWatermarks: { partition: number; low: number; high: number }[];
  runStartMs: number;
  runEndMs: number;
}

const TOPIC = "chaos";
const GROUP = "chaos-group";
const CHUNK = 20;
const SENDS_IN_FLIGHT = 3;
/** Between chunks of one producer: a loaded 2-core box runs the cluster too. */
const PRODUCER_PAUSE_MS = 10;
const FULL_ISR_WAIT_MS = 90_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolves `p`, or undefined after `ms`. */
async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const log = createLogger("chaos");
  const rng = new SeededRandom(options.seed);
  const partitions = options.partitions ?? 3;
  const keys = options.keys ?? 30;
  const producerCount = options.producers ?? 2;
  // A partition needs the namespaces; without them the kind is skipped.
  const kinds = (options.kinds ?? (options.netns ? NETNS_NEMESIS_KINDS : NEMESIS_KINDS)).filter((k) => options.netns || !k.startsWith("partition-"));
  if (kinds.length === 0) throw new Error("no nemesis kind left to run (partition-leader and partition-controller need netns: true)");
  let cluster: CombinedCluster | undefined;
  let netns: Netns | undefined;
  try {
    netns = options.netns ? createNetns({ nodes: 3 }) : undefined;
    const namespaces = netns;
    cluster = await startCombinedCluster({
      name: `chaos-${options.name}`,
      nodes: 3,
      overrides: ["offsets.topic.replication.factor=3"],
      ...(namespaces ? { host: (id: number) => namespaces.address(id), wrap: (id: number) => namespaces.wrap(id) } : {}),
    });
    const c = cluster;
    await c.createTopic(TOPIC, { partitions, configs: { "min.insync.replicas": "2" } }, 90_000);
    const fullIsr = (): Promise<boolean> => c.hasFullIsr(TOPIC, partitions);
    await c.waitFor("leaders with full ISRs", fullIsr, FULL_ISR_WAIT_MS);
    log.info({ event: "cluster-ready", dataDir: c.dataDir }, "cluster up");

    const runStartMs = Date.now();
    const sends: SendEvent[] = [];
    let stopping = false;

    // Producers: each owns keys p, p+producers, ...; values "k<key>:<sequence>" are unique.
    const producerLoops = Array.from({ length: producerCount }, async (_, p) => {
      const producer = new Producer({ bootstrapServers: c.bootstrap(), acks: "all", lingerMs: 5, requestTimeoutMs: 5_000, deliveryTimeoutMs: 30_000 });
      const ownKeys = Array.from({ length: keys }, (_, k) => k).filter((k) => k % producerCount === p);
      const sequence = new Map<number, number>();
      const inFlight = new Set<Promise<void>>();
      let cursor = 0;
      try {
        for (let chunk = 0; chunk < 10_000_000 && !stopping; chunk++) {
          const events: SendEvent[] = [];
          for (let j = 0; j < CHUNK; j++) {
            const k = ownKeys[cursor++ % ownKeys.length]!;
            const seq = sequence.get(k) ?? 0;
            sequence.set(k, seq + 1);
            const key = `k${k}`;
            events.push({ key, value: `${key}:${seq}`, keySequence: seq, partition: -1, outcome: "unknown", sentAtMs: Date.now(), doneAtMs: Date.now() });
          }
          sends.push(...events);
          const sent = producer
            .send({ topic: TOPIC, messages: events.map((e) => ({ key: e.key, value: e.value })) })
            .then((metas) => {
              const now = Date.now();
              metas.forEach((m, j) => Object.assign(events[j]!, { outcome: "acked", partition: m.partition, offset: m.offset, doneAtMs: now }));
            })
            .catch((err: unknown) => {
              const now = Date.now();
              for (const e of events) Object.assign(e, { outcome: "failed", doneAtMs: now });
              log.warn({ event: "send-failed", err: String(err) }, "send failed");
            });
          inFlight.add(sent);
          void sent.finally(() => inFlight.delete(sent));
          if (inFlight.size >= SENDS_IN_FLIGHT) await Promise.race(inFlight);
          await sleep(PRODUCER_PAUSE_MS);
        }
        // Bounded: a send resolves within deliveryTimeoutMs; what is still open then stays "unknown".
        await within(Promise.all(inFlight), 45_000);
      } finally {
        await within(producer.close(), 15_000);
      }
    });

    // A consumer group reading along; its count goes into the report (the checker uses the full re-read).
    let consumerGroupRecords = 0;
    const group = new GroupConsumer({ bootstrapServers: c.bootstrap(), groupId: GROUP, autoOffsetReset: "earliest", sessionTimeoutMs: 10_000, heartbeatIntervalMs: 1_000 });
    group.subscribe({ topics: [TOPIC] });
    const groupRun = group.run({ eachMessage: async () => void consumerGroupRecords++ }).catch((err: unknown) => log.warn({ event: "group-failed", err: String(err) }, "group consumer stopped"));

    // The nemesis.
    const events: NemesisEvent[] = [];
    const maxEvents = options.events ?? Number.MAX_SAFE_INTEGER;
    const firstKinds = [...kinds];
    for (let i = firstKinds.length - 1; i > 0; i--) {
      const j = rng.int(0, i + 1);
      [firstKinds[i], firstKinds[j]] = [firstKinds[j]!, firstKinds[i]!];
    }
    const deadline = runStartMs + options.faultMs;
    await sleep(3_000); // the workload warms up before the first fault
    for (let n = 0; n < maxEvents && Date.now() < deadline; n++) {
      const kind = n < firstKinds.length ? firstKinds[n]! : rng.pick(kinds);
      const holdMs = rng.int(2_000, 6_000);
      const startMs = Date.now();
      let target = "";
      let nodes: number[] = [];
      if (kind === "kill-random" || kind === "kill-leader" || kind === "kill-controller") {
        let id = rng.pick(c.nodeIds);
        target = "random node";
        if (kind === "kill-leader") {
          const partition = rng.int(0, partitions);
          const t = await c.describeTopic(TOPIC);
          const leader = t.partitions.find((p) => p.partition === partition)?.leader ?? -1;
          if (leader > 0) id = leader;
          target = `leader of partition ${partition}`;
        } else if (kind === "kill-controller") {
          const controllerId = await activeController(c);
          if (controllerId !== undefined) id = controllerId;
          target = controllerId !== undefined ? "active controller" : "random node (no active controller agreed on)";
        }
        nodes = [id];
        log.info({ event: "nemesis", kind, node: id, target, holdMs }, "kill -9");
        await c.stop(id, "SIGKILL");
        await sleep(holdMs);
        await c.start(id);
      } else if (kind === "pause") {
        const id = rng.pick(c.nodeIds);
        nodes = [id];
        target = "random node";
        log.info({ event: "nemesis", kind, node: id, holdMs }, "SIGSTOP");
        c.pause(id);
        await sleep(holdMs);
        c.resume(id);
      } else if (kind === "partition-leader" || kind === "partition-controller") {
        assert(namespaces, `${kind} runs only with network namespaces`);
        let id: number;
        if (kind === "partition-leader") {
          const partition = rng.int(0, partitions);
          const t = await c.describeTopic(TOPIC);
          const leader = t.partitions.find((p) => p.partition === partition)?.leader ?? -1;
          id = leader > 0 ? leader : rng.pick(c.nodeIds);
          target = `leader of partition ${partition}`;
        } else {
          const controllerId = await activeController(c);
          id = controllerId ?? rng.pick(c.nodeIds);
          target = controllerId !== undefined ? "active controller" : "random node (no active controller agreed on)";
        }
        // Longer than broker.session.timeout.ms (3 s), so the controller fences it and moves leadership.
        const isolateMs = holdMs + 3_000;
        nodes = [id];
        log.info({ event: "nemesis", kind, node: id, target, holdMs: isolateMs }, "link down");
        namespaces.isolate(id);
        await sleep(isolateMs);
        namespaces.heal();
      } else {
        target = "every node in turn";
        for (const id of c.nodeIds) {
          nodes.push(id);
          log.info({ event: "nemesis", kind, node: id }, "SIGTERM and restart");
          await c.stop(id, "SIGTERM", 60_000);
          await c.start(id);
          await c.waitFor(`node ${id} back in every ISR`, fullIsr, FULL_ISR_WAIT_MS).catch(() => undefined);
        }
      }
      const healedMs = Date.now();
      const ok = await c.waitFor("full ISRs after a fault", fullIsr, FULL_ISR_WAIT_MS).then(() => true, () => false);
      events.push({ kind, nodes, target, startMs, healedMs, fullIsrMs: ok ? Date.now() : undefined });
      log.info({ event: "nemesis-healed", kind, nodes, fullIsr: ok }, "healed");
      await sleep(rng.int(1_000, 3_000));
    }

    // Heal and settle: every node running and in every ISR.
    for (const id of c.nodeIds) c.resume(id);
    netns?.heal();
    for (const id of c.nodeIds) if (!c.isRunning(id)) await c.start(id);
    await c.waitFor("full ISRs after the run", fullIsr, FULL_ISR_WAIT_MS);
    stopping = true;
    await Promise.all(producerLoops);
    const runEndMs = Date.now();

    const offsetsAdmin = new Admin({ bootstrapServers: c.bootstrap(), defaultApiTimeoutMs: 20_000 });
    let highWatermarks: { partition: number; low: number; high: number }[];
    try {
      highWatermarks = await offsetsAdmin.fetchTopicOffsets(TOPIC);
    } finally {
      await offsetsAdmin.close();
    }
    const expected = highWatermarks.reduce((sum, p) => sum + (p.high - p.low), 0);
    // The group catches up (bounded); it reads at least once, so after rebalances it may count more.
    await c.waitFor("the consumer group caught up", async () => consumerGroupRecords >= expected, 30_000).catch(() => undefined);
    await within(group.disconnect(), 30_000);
    await within(groupRun, 5_000);

    // Full re-read of every partition up to its high watermark; the checker takes a missing key or value as "".
    const reads: ReadRecord[] = (await c.readAll(TOPIC, expected, 120_000)).map((r) => ({ ...r, key: r.key ?? "", value: r.value ?? "" }));
    log.info({ event: "read-back", expected, read: reads.length }, "read everything back");

    // Followers learn the final high watermark on their next fetch; then stop all cleanly and read the files.
    await sleep(1_500);
    await Promise.all(c.nodeIds.map((id) => c.stop(id, "SIGTERM", 60_000)));
    const replicas: ReplicaLog[] = [];
    for (const { partition, high } of highWatermarks) {
      for (const id of c.nodeIds) {
        const { bytes } = await c.logBytes(id, TOPIC, partition, high);
        replicas.push({ partition, nodeId: id, highWatermark: high, bytes });
      }
    }

    const history: History = { runStartMs, runEndMs, sends, reads, replicas };
    const report = check(history, { unavailabilityThresholdMs: options.unavailabilityThresholdMs ?? 3_000 });
    const result: ChaosResult = { seed: options.seed, report, events, consumerGroupRecords, highWatermarks, runStartMs, runEndMs };
    if (options.reportPath) writeReport(options.reportPath, options, result);
    return result;
  } finally {
    // destroy() SIGKILLs by pid, which ends a paused (SIGSTOPped) node too.
    try {
      await cluster?.destroy();
    } finally {
      netns?.destroy();
    }
  }
}

/**
 * The active controller as the running nodes report it in Metadata (the metadata quorum's Raft
 * leader each last learned): the id most of them name, or undefined when none names one.
 */
export async function activeController(c: CombinedCluster): Promise<number | undefined> {
  const votes = new Map<number, number>();
  await Promise.all(
    c.nodeIds.filter((id) => c.isRunning(id)).map(async (id) => {
      const a = new Admin({ bootstrapServers: c.address(id), defaultApiTimeoutMs: 5_000, requestTimeoutMs: 4_000 });
      try {
        const controllerId = (await within(a.metadata({ topics: [] }), 6_000))?.controllerId;
        if (controllerId !== undefined && c.nodeIds.includes(controllerId)) votes.set(controllerId, (votes.get(controllerId) ?? 0) + 1);
      } catch {
        // This node does not answer now; the others decide.
      } finally {
        await a.close();
      }
    }),
  );
  let best: number | undefined;
  for (const [id, n] of votes) if (best === undefined || n > votes.get(best)!) best = id;
  return best;
}

/** One line per count, then the violations and windows: printed by the CI test and `pnpm chaos`. */
export function summarize(result: ChaosResult): string {
  const c = result.report.counts;
  const lines = [
    `chaos seed ${result.seed}: ${result.events.length} nemesis events (${result.events.map((e) => `${e.kind}@${e.nodes.join("+")}`).join(", ")})`,
    `sends ${c.sends} (acked ${c.acked}, failed ${c.failed}, unknown ${c.unknown}); read back ${c.read}; consumer group (at least once) read ${result.consumerGroupRecords}`,
    `lost ${c.lost} | duplicates ${c.duplicates} | order violations ${c.orderViolations} | replica disagreements ${c.replicaDisagreements} of ${c.replicasCompared} replicas | unavailability windows ${c.unavailabilityWindows} (longest ${result.report.longestUnavailabilityMs} ms)`,
  ];
  return lines.join("\n");
}

function writeReport(reportPath: string, options: ChaosOptions, result: ChaosResult): void {
  const stem = reportPath.replace(/\.(json|md)$/, "");
  fs.mkdirSync(path.dirname(stem), { recursive: true });
  const { report } = result;
  const json = { options: { ...options, reportPath: undefined }, ...result, report: { ...report, lost: report.lost.slice(0, 100), duplicates: report.duplicates.slice(0, 100), orderViolations: report.orderViolations.slice(0, 100) } };
  fs.writeFileSync(`${stem}.json`, `${JSON.stringify(json, null, 2)}\n`);
  const rel = (ms: number): string => `${((ms - result.runStartMs) / 1000).toFixed(1)} s`;
  const c = report.counts;
  const md = [
    `# Chaos run, seed ${result.seed}`,
    "",
    `Three combined nodes, topic \`${TOPIC}\` (${result.highWatermarks.length} partitions, RF 3, min.insync.replicas 2), faults for ${options.faultMs} ms; run ${((result.runEndMs - result.runStartMs) / 1000).toFixed(1)} s.`,
    "",
    "| check | count | must be |",
    "|---|---|---|",
    `| acknowledged records lost | ${c.lost} | 0 |`,
    `| duplicates | ${c.duplicates} | 0 |`,
    `| per-key order violations | ${c.orderViolations} | 0 |`,
    `| replicas disagreeing below the HW | ${c.replicaDisagreements} (of ${c.replicasCompared}) | 0 |`,
    `| unavailability windows > ${options.unavailabilityThresholdMs ?? 3000} ms | ${c.unavailabilityWindows} (longest ${report.longestUnavailabilityMs} ms) | — |`,
    "",
    `Sends: ${c.sends} (acked ${c.acked}, failed ${c.failed}, unknown ${c.unknown}); read back ${c.read}; the consumer group (at-least-once, reading along) read ${result.consumerGroupRecords}.`,
    "",
    "## Nemesis events",
    "",
    "| # | kind | nodes | target | start | healed | full ISR |",
    "|---|---|---|---|---|---|---|",
    ...result.events.map((e, i) => `| ${i + 1} | ${e.kind} | ${e.nodes.join(", ")} | ${e.target} | ${rel(e.startMs)} | ${rel(e.healedMs)} | ${e.fullIsrMs === undefined ? "not reached" : rel(e.fullIsrMs)} |`),
    "",
    "## Unavailability windows",
    "",
    ...(report.unavailability.length === 0 ? ["none"] : report.unavailability.map((w) => `- ${rel(w.startMs)} to ${rel(w.endMs)} (${w.durationMs} ms)`)),
    "",
  ];
  fs.writeFileSync(`${stem}.md`, md.join("\n"));
}

/**
 * One member of the controller quorum as a process, running the test state machine
 * (./test-machine.ts). Used by test/integration/raft-quorum.test.ts and
 * scripts/bench-raft.ts; the product's controller will host the metadata state machine
 * on the same driver.
 *
 *   node --import tsx packages/controller/src/raft/node-main.ts \
 *     --node-id 1 --voters 1@127.0.0.1:19091,2@127.0.0.1:19092,3@127.0.0.1:19093 \
 *     --data-dir /tmp/c1 [--listen 127.0.0.1:19091] [--tick-ms 50] [--election-ticks 10]
 *     [--heartbeat-ticks 1] [--snapshot-every 10000]
 *
 * Each flag can come from the environment instead: FLOTILLA_NODE_ID,
 * FLOTILLA_CONTROLLER_QUORUM_VOTERS, FLOTILLA_DATA_DIR, FLOTILLA_LISTEN,
 * FLOTILLA_RAFT_TICK_MS, FLOTILLA_RAFT_ELECTION_TICKS, FLOTILLA_RAFT_HEARTBEAT_TICKS,
 * FLOTILLA_RAFT_SNAPSHOT_EVERY. Once listening it prints one JSON line on stdout:
 *   {"event":"ready","nodeId":1,"listen":"127.0.0.1:19091","pid":1234}
 * SIGTERM / SIGINT: graceful stop (hand leadership away when leader), exit 0.
 * Bad configuration or corrupt storage: a message naming the problem, exit 1.
 */
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { FlotillaError } from "@flotilla/common";
import { createLogger } from "@flotilla/common/logger";
import { RaftCore } from "@flotilla/raft";
import { parseQuorumVoters, voterAddress } from "./config.js";
import { RaftDriver } from "./driver.js";
import { bindGrpcServer, createGrpcServer, shutdownGrpcServer } from "./grpc-server.js";
import { openLevelRaftStorage } from "./storage-level.js";
import { AppendOnlyListMachine } from "./test-machine.js";
import { addRaftTestMachineService } from "./test-machine-service.js";
import { GrpcRaftTransport, addRaftTransportService } from "./transport.js";

/** How long a graceful stop may take before the process exits anyway. */
const STOP_DEADLINE_MS = 10_000;

function setting(flag: string | undefined, envKey: string, key: string, required: true): string;
function setting(flag: string | undefined, envKey: string, key: string, required: false): string | undefined;
function setting(flag: string | undefined, envKey: string, key: string, required: boolean): string | undefined {
  const value = flag ?? process.env[envKey];
  if (required && (value === undefined || value === "")) throw new FlotillaError("INVALID_CONFIG", `${key} is required (--${key} or ${envKey})`);
  return value;
}

function intSetting(value: string | undefined, key: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new FlotillaError("INVALID_CONFIG", `${key} must be a positive integer, got "${value}"`);
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      "node-id": { type: "string" },
      voters: { type: "string" },
      "data-dir": { type: "string" },
      listen: { type: "string" },
      "tick-ms": { type: "string" },
      "election-ticks": { type: "string" },
      "heartbeat-ticks": { type: "string" },
      "snapshot-every": { type: "string" },
    },
    strict: true,
  });
  const nodeId = intSetting(setting(values["node-id"], "FLOTILLA_NODE_ID", "node-id", true), "node-id")!;
  const voters = parseQuorumVoters(setting(values.voters, "FLOTILLA_CONTROLLER_QUORUM_VOTERS", "voters", true), "voters (controller.quorum.voters)");
  const self = voters.find((v) => v.id === nodeId);
  if (!self) throw new FlotillaError("INVALID_CONFIG", `node-id ${nodeId} is not among the voters ${voters.map((v) => v.id).join(",")}`);
  const dataDir = setting(values["data-dir"], "FLOTILLA_DATA_DIR", "data-dir", true);
  const listen = setting(values.listen, "FLOTILLA_LISTEN", "listen", false) ?? voterAddress(self);

  const logger = createLogger("raft-node").child({ nodeId });
  fs.mkdirSync(dataDir, { recursive: true });
  const storage = await openLevelRaftStorage(path.join(dataDir, "raft"));
  const machine = new AppendOnlyListMachine();
  const addresses = new Map(voters.map((v) => [v.id, voterAddress(v)]));
  const transport = new GrpcRaftTransport({ selfId: nodeId, peers: addresses, logger: logger.child({ component: "transport" }) });
  const driver = new RaftDriver({
    id: nodeId,
    voters: addresses,
    storage,
    transport,
    stateMachine: machine,
    logger,
    createCore: (config) => new RaftCore(config),
    tickMs: intSetting(setting(values["tick-ms"], "FLOTILLA_RAFT_TICK_MS", "tick-ms", false), "tick-ms"),
    electionTicks: intSetting(setting(values["election-ticks"], "FLOTILLA_RAFT_ELECTION_TICKS", "election-ticks", false), "election-ticks"),
    heartbeatTicks: intSetting(setting(values["heartbeat-ticks"], "FLOTILLA_RAFT_HEARTBEAT_TICKS", "heartbeat-ticks", false), "heartbeat-ticks"),
    snapshotEveryEntries: intSetting(setting(values["snapshot-every"], "FLOTILLA_RAFT_SNAPSHOT_EVERY", "snapshot-every", false), "snapshot-every"),
    onFatalError: (err) => {
      logger.fatal({ err }, "raft node exiting after a fatal error");
      process.exit(1);
    },
  });

  const server = createGrpcServer();
  addRaftTransportService(server, { selfId: nodeId, onMessage: (m) => driver.receive(m), logger: logger.child({ component: "transport" }) });
  addRaftTestMachineService(server, { driver, machine });
  const port = await bindGrpcServer(server, listen);
  const host = listen.slice(0, listen.lastIndexOf(":"));
  logger.info({ listen: `${host}:${port}`, dataDir }, "raft node listening");
  process.stdout.write(`${JSON.stringify({ event: "ready", nodeId, listen: `${host}:${port}`, pid: process.pid })}\n`);

  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "raft node stopping");
    setTimeout(() => {
      logger.error({ deadlineMs: STOP_DEADLINE_MS }, "graceful stop took too long; exiting");
      process.exit(1);
    }, STOP_DEADLINE_MS).unref();
    void (async () => {
      await driver.stop();
      await shutdownGrpcServer(server, 500);
      await transport.close();
      await storage.close();
      process.exit(0);
    })().catch((err: unknown) => {
      logger.fatal({ err }, "error during graceful stop");
      process.exit(1);
    });
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
}

main().catch((err: unknown) => {
  process.stderr.write(`raft node failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});

/**
 * `flotilla start`: the local default cluster. Three combined nodes (broker + controller
 * voter), each a child process running `flotilla server`, on 127.0.0.1:
 *
 *   node  client listener   controller listener   data
 *   1     127.0.0.1:9092    127.0.0.1:19092        ./data/node-1   (log: ./data/node-1.log)
 *   2     127.0.0.1:9093    127.0.0.1:19093        ./data/node-2
 *   3     127.0.0.1:9094    127.0.0.1:19094        ./data/node-3
 *
 * Controller ports are the client ports + 10000 (Kafka's own examples use 9093 for the
 * controller, which would collide with node 2's client port here).
 *
 * It waits until every node has registered and printed its ready line, prints how to use
 * the cluster, and on Ctrl-C (SIGINT) or SIGTERM sends SIGTERM to every node at once (each
 * makes a controlled shutdown while the quorum is still up), then SIGKILLs any node still
 * running after STOP_TIMEOUT_MS. The nodes run in their own process group, so a Ctrl-C in
 * the terminal reaches them only through this command.
 *
 * `--nodes 1` starts one node in single-node mode (no Raft). `--override key=value` sets a
 * property on every node; an override of `listeners` with one host:port moves node 1's
 * client listener there and gives the other listeners free ports (tests use this). The
 * per-node keys (node.id, process.roles, listeners, controller.quorum.voters, log.dirs) are
 * passed as overrides, so they win over FLOTILLA_* environment variables.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import readline from "node:readline";
import { Command } from "commander";
import { parseIntFlag, parseKeyValues, UsageError } from "../format.js";
import { writeOut, type CliIo } from "../io.js";
import { SERVER_NODE_FLAGS } from "../node-flags.js";

const collect = (value: string, previous: string[]): string[] => [...previous, value];

export const LOCAL_CLIENT_BASE_PORT = 9092;
export const LOCAL_CONTROLLER_PORT_OFFSET = 10_000;
/** How long the nodes may take to become ready. */
export const START_TIMEOUT_MS = 90_000;
/** How long the nodes may take to stop after SIGTERM before they are SIGKILLed. */
export const STOP_TIMEOUT_MS = 12_000;
const NODES_MAX = 9;

export interface LocalNodePlan {
  readonly nodeId: number;
  readonly host: string;
  readonly clientPort: number;
  readonly controllerPort: number;
  readonly dataDir: string;
  readonly logFile: string;
  /** The `--override` properties of this node. */
  readonly properties: Record<string, string>;
}

async function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, host, () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** The properties of each local node (pure but for free-port probing when ports are not the defaults). */
export async function planLocalCluster(options: { cwd: string; nodes: number; overrides: Record<string, string> }): Promise<LocalNodePlan[]> {
  const { listeners, ...shared } = options.overrides;
  let host = "127.0.0.1";
  let firstPort: number | undefined;
  if (listeners !== undefined) {
    const m = /^(?:[A-Za-z][A-Za-z0-9_]*:\/\/)?([^:/\s]+):(\d+)$/.exec(listeners.trim());
    if (!m) throw new UsageError(`--override listeners=${listeners}: flotilla start takes one host:port there (node 1's client listener)`);
    host = m[1]!;
    firstPort = Number(m[2]);
  }
  const ids = Array.from({ length: options.nodes }, (_, i) => i + 1);
  const clientPorts: number[] = [];
  const controllerPorts: number[] = [];
  for (const id of ids) {
    if (firstPort === undefined) {
      clientPorts.push(LOCAL_CLIENT_BASE_PORT + id - 1);
      controllerPorts.push(LOCAL_CLIENT_BASE_PORT + id - 1 + LOCAL_CONTROLLER_PORT_OFFSET);
    } else {
      clientPorts.push(id === 1 ? firstPort : await freePort(host));
      controllerPorts.push(await freePort(host));
    }
  }
  const single = options.nodes === 1;
  const voters = ids.map((id, i) => `${id}@${host}:${controllerPorts[i]}`).join(",");
  return ids.map((id, i) => {
    const dataDir = path.resolve(options.cwd, "data", `node-${id}`);
    const properties: Record<string, string> = {
      ...shared,
      "node.id": String(id),
      "process.roles": "broker,controller",
      listeners: single ? `PLAINTEXT://${host}:${clientPorts[i]}` : `PLAINTEXT://${host}:${clientPorts[i]},CONTROLLER://${host}:${controllerPorts[i]}`,
      "log.dirs": dataDir,
      ...(single ? {} : { "controller.quorum.voters": voters, "default.replication.factor": shared["default.replication.factor"] ?? String(Math.min(3, options.nodes)) }),
    };
    return { nodeId: id, host, clientPort: clientPorts[i]!, controllerPort: single ? 0 : controllerPorts[i]!, dataDir, logFile: path.resolve(options.cwd, "data", `node-${id}.log`), properties };
  });
}

/** What `flotilla start` prints once every node is up. */
export function clusterBanner(plan: readonly LocalNodePlan[]): string {
  const first = plan[0]!;
  const address = `${first.host}:${first.clientPort}`;
  const isDefault = first.host === "127.0.0.1" && first.clientPort === LOCAL_CLIENT_BASE_PORT;
  const bs = isDefault ? "" : ` --bootstrap-server ${address}`;
  const controllers = plan.filter((p) => p.controllerPort > 0).map((p) => `${p.host}:${p.controllerPort}`);
  const cb = controllers.length > 0 && !isDefault ? ` --bootstrap-controller ${controllers.join(",")}` : "";
  return [
    `Flotilla is running on ${address} (${plan.length === 1 ? "one node, broker and controller" : `${plan.length} nodes, each broker and controller`}; data in ./data).`,
    "",
    ...plan.map((p) => `  node ${p.nodeId}: clients ${p.host}:${p.clientPort}${p.controllerPort ? `, controller ${p.host}:${p.controllerPort}` : ""}, data ${path.relative(process.cwd(), p.dataDir) || p.dataDir}, log ${path.basename(p.logFile)}`),
    "",
    "In another terminal:",
    `  pnpm --silent flotilla topics create --topic orders --partitions 3${plan.length >= 3 ? " --replication-factor 3" : ""}${bs}`,
    `  printf 'k1:first\\nk2:second\\n' | pnpm --silent flotilla produce --topic orders --key-separator :${bs}`,
    `  pnpm --silent flotilla consume --topic orders --from-beginning --max-messages 2 --print-key${bs}`,
    `  pnpm --silent flotilla topics describe --topic orders${bs}`,
    ...(controllers.length > 0 ? [`  pnpm --silent flotilla cluster describe${cb}`] : []),
    "",
    "Press Ctrl-C to stop.",
    "",
  ].join("\n");
}

interface RunningNode {
  readonly plan: LocalNodePlan;
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function tail(file: string, maxBytes = 3000): string {
  try {
    const text = fs.readFileSync(file, "utf8");
    return text.length > maxBytes ? text.slice(-maxBytes) : text;
  } catch {
    return "";
  }
}

function spawnNode(plan: LocalNodePlan, cwd: string, env: NodeJS.ProcessEnv): RunningNode {
  fs.mkdirSync(path.dirname(plan.logFile), { recursive: true });
  const logFd = fs.openSync(plan.logFile, "a");
  const args = [...SERVER_NODE_FLAGS.filter((f) => !process.execArgv.includes(f)), ...process.execArgv, process.argv[1]!, "server", ...Object.entries(plan.properties).flatMap(([k, v]) => ["--override", `${k}=${v}`])];
  const child = spawn(process.execPath, args, { cwd, env, stdio: ["ignore", "pipe", logFd], detached: true });
  fs.closeSync(logFd);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  return { plan, child, exited };
}

function waitReady(node: RunningNode, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const lines = readline.createInterface({ input: node.child.stdout! });
    const timer = setTimeout(() => reject(new Error(`node ${node.plan.nodeId} not ready within ${timeoutMs} ms; its log (${node.plan.logFile}) ends with:\n${tail(node.plan.logFile)}`)), timeoutMs);
    lines.on("line", (line) => {
      if (line.includes('"event":"ready"')) {
        clearTimeout(timer);
        resolve();
      }
    });
    void node.exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`node ${node.plan.nodeId} exited (${signal ?? `code ${code}`}) before it was ready; its log (${node.plan.logFile}) ends with:\n${tail(node.plan.logFile)}`));
    });
  });
}

function signal(node: RunningNode, sig: NodeJS.Signals): void {
  if (node.child.exitCode !== null || node.child.signalCode !== null || node.child.pid === undefined) return;
  try {
    process.kill(node.child.pid, sig);
  } catch {
    // Already gone.
  }
}

/** SIGTERM to every node at once, SIGKILL after `timeoutMs`; resolves when all have exited. Returns the nodes that needed SIGKILL or failed. */
async function stopAll(nodes: readonly RunningNode[], timeoutMs: number): Promise<string[]> {
  for (const n of nodes) signal(n, "SIGTERM");
  const killer = setTimeout(() => nodes.forEach((n) => signal(n, "SIGKILL")), timeoutMs);
  const statuses = await Promise.all(nodes.map((n) => n.exited));
  clearTimeout(killer);
  return statuses.flatMap((s, i) => (s.code === 0 ? [] : [`node ${nodes[i]!.plan.nodeId} (${s.signal ?? `exit code ${s.code}`})`]));
}

export function localClusterCommand(io: CliIo): Command {
  return new Command("start")
    .description("run the local cluster: 3 combined nodes on 127.0.0.1:9092-9094 (controllers on 19092-19094), data in ./data")
    .option("--nodes <n>", "number of nodes (1 = single-node mode without Raft)", "3")
    .option("--override <key=value>", "a property for every node, repeatable (listeners=host:port moves node 1's client port)", collect, [])
    .action(async (opts: { nodes: string; override: string[] }) => {
      const count = parseIntFlag(opts.nodes, "--nodes", 1);
      if (count > NODES_MAX) throw new UsageError(`--nodes ${count}: at most ${NODES_MAX}`);
      const plan = await planLocalCluster({ cwd: io.cwd, nodes: count, overrides: parseKeyValues(opts.override, "--override") });
      for (const p of plan) fs.mkdirSync(p.dataDir, { recursive: true });
      let stopRequested: (() => void) | undefined;
      const stopSignal = new Promise<void>((resolve) => (stopRequested = resolve));
      const unregister = io.onShutdownSignal(() => stopRequested?.());
      const nodes = plan.map((p) => spawnNode(p, io.cwd, io.env));
      try {
        const ready = Promise.all(nodes.map((n) => waitReady(n, START_TIMEOUT_MS)));
        ready.catch(() => undefined); // observed by the race below, or moot after a stop
        const first = await Promise.race([ready.then(() => "ready" as const), stopSignal.then(() => "stop" as const)]);
        if (first === "ready") {
          await writeOut(io.stdout, clusterBanner(plan));
          // A node that dies while the cluster runs is reported; the others keep running.
          for (const n of nodes) {
            void n.exited.then((s) => {
              if (s.code !== 0) io.stderr.write(`node ${n.plan.nodeId} exited (${s.signal ?? `code ${s.code}`}); see ${n.plan.logFile}\n`);
            });
          }
          await stopSignal;
        }
      } finally {
        unregister();
        const failed = await stopAll(nodes, STOP_TIMEOUT_MS);
        if (failed.length > 0) io.stderr.write(`stopped; not cleanly: ${failed.join(", ")}\n`);
      }
    });
}

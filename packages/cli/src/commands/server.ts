import path from "node:path";
import { Command } from "commander";
import { createLogger } from "@flotilla/common/logger";
import { parseKeyValues } from "../format.js";
import { writeOut, type CliIo } from "../io.js";

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/**
 * Loads the configuration (properties file, then FLOTILLA_* environment variables, then
 * --override, in rising precedence), starts the node, and runs until SIGINT/SIGTERM, when
 * it closes the node and returns (exit 0). A bad configuration throws INVALID_CONFIG naming
 * the key, which the CLI turns into exit code 2.
 */
async function runNode(
  io: CliIo,
  options: { configFile: string | undefined; overrides: Record<string, string>; onReady: (node: { address: string; port: number }) => Promise<void> },
): Promise<void> {
  // Loaded here, not at the top: client commands (produce, consume, ...) then start without
  // loading the broker, controller and storage code.
  const { loadServerConfig, startNode } = await import("@flotilla/broker");
  const logger = createLogger("flotilla-server", { level: io.env.FLOTILLA_LOG_LEVEL ?? "info" });
  const config = loadServerConfig({ file: options.configFile, env: io.env, overrides: options.overrides });
  const node = await startNode(config, { logger });
  let stop!: (signal: NodeJS.Signals) => void;
  const stopped = new Promise<NodeJS.Signals>((resolve) => (stop = resolve));
  const unregister = io.onShutdownSignal((signal) => stop(signal));
  try {
    await options.onReady(node);
    const signal = await stopped;
    logger.info({ signal }, "shutting down");
    await node.close();
    logger.info("stopped");
  } finally {
    unregister();
  }
}

/** `flotilla server`: one node with the given configuration. */
export function serverCommand(io: CliIo): Command {
  return new Command("server")
    .description("run a node (controller, broker or both, per process.roles)")
    .option("--config <path>", "a server.properties file with Kafka's property names")
    .option("--override <key=value>", "a property that wins over the file and the environment, repeatable", collect, [])
    .action(async (opts: { config?: string; override: string[] }) => {
      await runNode(io, {
        configFile: opts.config === undefined ? undefined : path.resolve(io.cwd, opts.config),
        overrides: parseKeyValues(opts.override, "--override"),
        // One JSON line on stdout, for supervisors and tests that wait for readiness.
        onReady: (node) => writeOut(io.stdout, `${JSON.stringify({ event: "ready", address: node.address, port: node.port })}\n`),
      });
    });
}

/** The properties of the local default node that `flotilla start` runs. */
export function localDefaults(cwd: string): Record<string, string> {
  return {
    "node.id": "1",
    "process.roles": "broker,controller",
    listeners: "127.0.0.1:9092",
    "log.dirs": path.resolve(cwd, "data"),
  };
}

/** The environment variable that sets a property (log.dirs -> FLOTILLA_LOG_DIRS), as the broker's config loader reads it. */
function envVariableOf(key: string): string {
  return `FLOTILLA_${key.toUpperCase().replaceAll(".", "_").replaceAll("-", "_")}`;
}

/** What `flotilla start` prints once the node is up. */
export function startBanner(address: string): string {
  const bs = address === "127.0.0.1:9092" ? "" : ` --bootstrap-server ${address}`;
  return [
    `Flotilla is running on ${address} (one node, broker and controller; data in ./data).`,
    "",
    "In another terminal:",
    `  pnpm --silent flotilla topics create --topic orders --partitions 3${bs}`,
    `  printf 'k1:first\\nk2:second\\n' | pnpm --silent flotilla produce --topic orders --key-separator :${bs}`,
    `  pnpm --silent flotilla consume --topic orders --from-beginning --max-messages 2 --print-key${bs}`,
    `  pnpm --silent flotilla topics describe --topic orders${bs}`,
    "",
    "Press Ctrl-C to stop.",
    "",
  ].join("\n");
}

/**
 * `flotilla start`: the local default, one combined node on 127.0.0.1:9092 with data in
 * ./data and node.id 1. (Later: a 3-node local cluster; localDefaults and runNode are the
 * seams for that.)
 */
export function startCommand(io: CliIo): Command {
  return new Command("start")
    .description("run a local node on 127.0.0.1:9092 with data in ./data")
    .option("--override <key=value>", "change a property of the local node, repeatable", collect, [])
    .action(async (opts: { override: string[] }) => {
      // The local defaults sit below the environment: FLOTILLA_LISTENERS=... still wins.
      const defaults = Object.fromEntries(Object.entries(localDefaults(io.cwd)).filter(([key]) => io.env[envVariableOf(key)] === undefined));
      await runNode(io, {
        configFile: undefined,
        overrides: { ...defaults, ...parseKeyValues(opts.override, "--override") },
        onReady: (node) => writeOut(io.stdout, startBanner(node.address)),
      });
    });
}

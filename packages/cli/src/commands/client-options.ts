import type { Command } from "commander";
import { createLogger, type Logger } from "@flotilla/common/logger";
import type { CliIo } from "../io.js";

export const DEFAULT_BOOTSTRAP_SERVER = "localhost:9092";

/** Adds the options every client command takes. */
export function addClientOptions(cmd: Command): Command {
  return cmd
    .option("--bootstrap-server <host:port>", "broker(s) to connect to, comma-separated", DEFAULT_BOOTSTRAP_SERVER)
    .option("--request-timeout-ms <ms>", "per-request timeout", "30000");
}

export interface ClientFlags {
  bootstrapServer: string;
  requestTimeoutMs: string;
}

/**
 * Client commands log to stderr at warn and above unless FLOTILLA_LOG_LEVEL says otherwise,
 * so stdout carries only the command's output.
 */
export function clientLogger(io: CliIo): Logger {
  return createLogger("flotilla-cli", { level: io.env.FLOTILLA_LOG_LEVEL ?? "warn" });
}

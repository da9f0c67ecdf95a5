import { pino, type Logger, type LoggerOptions } from "pino";

export type { Logger };

/**
 * The process logger: structured JSON to stderr (stdout belongs to command output,
 * e.g. `flotilla consume`). Level from FLOTILLA_LOG_LEVEL / LOG_LEVEL, default info.
 */
export function createLogger(name: string, options: LoggerOptions = {}): Logger {
  const level = process.env.FLOTILLA_LOG_LEVEL ?? process.env.LOG_LEVEL ?? "info";
  return pino({ name, level, base: { pid: process.pid }, ...options }, pino.destination(2));
}

/** A logger that drops everything, for tests and embedded use. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}

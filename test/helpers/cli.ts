/**
 * Runs one `flotilla` CLI command to completion as a real process (`node --import tsx
 * packages/cli/src/main.ts ...`), feeding stdin and collecting stdout, stderr and the exit
 * code. A command that runs past `timeoutMs` is SIGKILLed by pid and reported as such.
 */
import { spawn } from "node:child_process";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { REPO_ROOT } from "./processes.js";

export const CLI_ENTRY = path.join(REPO_ROOT, "packages/cli/src/main.ts");
/**
 * tsx's loader by absolute URL: `--import tsx` resolves the package from the working
 * directory, which for `flotilla start` is a temporary directory without node_modules.
 */
const TSX_LOADER = pathToFileURL(path.join(REPO_ROOT, "node_modules/tsx/dist/loader.mjs")).href;

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export function runFlotilla(args: readonly string[], options: { stdin?: string; timeoutMs?: number; env?: Record<string, string>; cwd?: string } = {}): Promise<CliResult> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", TSX_LOADER, CLI_ENTRY, ...args], {
      cwd: options.cwd ?? REPO_ROOT,
      env: { ...process.env, ...options.env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    const pid = child.pid;
    if (pid === undefined) {
      reject(new Error(`could not start flotilla ${args.join(" ")}`));
      return;
    }
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    child.stdout.setEncoding("utf8").on("data", (s: string) => (stdout += s));
    child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }, timeoutMs);
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
    child.stdin.on("error", () => undefined); // the command may exit before reading all input
    child.stdin.end(options.stdin ?? "");
  });
}

export interface RunningCli {
  readonly pid: number;
  /** Everything written to stdout and stderr so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves once stdout matches `pattern`; rejects after `timeoutMs` or if the process exits first. */
  waitForStdout(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** Sends `signal` by pid and resolves with the exit; SIGKILLs after `timeoutMs` and rejects. */
  stop(signal: "SIGINT" | "SIGTERM" | "SIGKILL", timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts a long-running `flotilla` command (server, start, consume) as a real process in
 * `cwd`. The caller must stop() it; tests do so in afterAll/finally.
 */
export function spawnFlotilla(args: readonly string[], options: { cwd?: string; env?: Record<string, string> } = {}): RunningCli {
  const child = spawn(process.execPath, ["--import", TSX_LOADER, CLI_ENTRY, ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    env: { ...process.env, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start flotilla ${args.join(" ")}`);
  let out = "";
  let err = "";
  const listeners = new Set<() => void>();
  child.stdout.setEncoding("utf8").on("data", (s: string) => {
    out += s;
    for (const l of listeners) l();
  });
  child.stderr.setEncoding("utf8").on("data", (s: string) => (err += s));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  let done = false;
  void exited.then(() => {
    done = true;
    for (const l of listeners) l();
  });
  return {
    pid,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitForStdout(pattern, timeoutMs = 30_000) {
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => finish(new Error(`flotilla ${args.join(" ")}: stdout did not match ${pattern} within ${timeoutMs} ms; stderr:\n${err.slice(-3000)}`)), timeoutMs);
        const check = (): void => {
          if (pattern.test(out)) finish();
          else if (done) finish(new Error(`flotilla ${args.join(" ")} exited before stdout matched ${pattern}; stderr:\n${err.slice(-3000)}`));
        };
        function finish(e?: Error): void {
          clearTimeout(timer);
          listeners.delete(check);
          if (e) reject(e);
          else resolve();
        }
        listeners.add(check);
        check();
      });
    },
    async stop(signal, timeoutMs = 15_000) {
      if (!done) {
        try {
          process.kill(pid, signal);
        } catch {
          // Already gone.
        }
      }
      let timer: NodeJS.Timeout | undefined;
      const result = await Promise.race([exited, new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), timeoutMs)))]);
      clearTimeout(timer);
      if (result !== "timeout") return result;
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Gone meanwhile.
      }
      await exited;
      throw new Error(`flotilla ${args.join(" ")} (pid ${pid}) did not exit within ${timeoutMs} ms of ${signal}`);
    },
  };
}

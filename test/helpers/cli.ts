/**
 * Runs one `flotilla` CLI command to completion as a real process (`node --import tsx
 * packages/cli/src/main.ts ...`), feeding stdin and collecting stdout, stderr and the exit
 * code. A command that runs past `timeoutMs` is SIGKILLed by pid and reported as such.
 */
import { spawn } from "node:child_process";
import path from "node:path";
import { REPO_ROOT } from "./processes.js";

export const CLI_ENTRY = path.join(REPO_ROOT, "packages/cli/src/main.ts");

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
    const child = spawn(process.execPath, ["--import", "tsx", CLI_ENTRY, ...args], {
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

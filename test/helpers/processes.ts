/**
 * Real child processes for integration tests, benchmarks and crash tests.
 *
 *   const node = await startTsProcess({
 *     name: "controller-1",
 *     entry: "packages/controller/src/raft/node-main.ts",
 *     args: ["--node-id", "1", ...],
 *     readyLine: /"event":"ready"/,        // or readyPort: { host, port }
 *   });
 *   node.readyJson;                         // the readiness line, parsed when it is JSON
 *   await node.kill("SIGKILL");             // by pid; resolves once it has exited
 *   afterAll(() => killAllProcesses());     // every child this process started
 *
 * Each child runs `node --import tsx <entry>` from the repository root. Its stderr (the
 * pino logs) goes to a file, `stderrPath`, kept after the test for debugging; errors
 * thrown here quote its tail. Stdout is read line by line; the last lines are kept.
 * Every child is tracked until it exits, and a process 'exit' hook SIGKILLs any left, so
 * a crashed test run does not leave processes behind.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export interface StartOptions {
  /** Short name, used in file names and error messages, e.g. "controller-1". */
  name: string;
  /** The .ts entry point, absolute or relative to the repository root. */
  entry: string;
  args?: readonly string[];
  /** Added to this process's environment (undefined removes a variable). */
  env?: Record<string, string | undefined>;
  /** Ready once a stdout line matches. */
  readyLine?: RegExp | ((line: string) => boolean);
  /** Ready once a TCP connection to this address succeeds. */
  readyPort?: { host: string; port: number };
  /** Default 20 s. On timeout the child is SIGKILLed and start fails. */
  readyTimeoutMs?: number;
  /** Where stderr files go. Default: $TMPDIR/flotilla-test-logs. */
  logDir?: string;
  /**
   * A command prefix that execs the node process, e.g. `["ip", "netns", "exec", "fl-1"]`. It must
   * exec (not fork) so the child's pid stays the node's pid for signals.
   */
  wrap?: readonly string[];
  /** Node flags before `--import tsx` (e.g. the server's SERVER_NODE_FLAGS). */
  nodeArgs?: readonly string[];
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ChildHandle {
  readonly name: string;
  readonly pid: number;
  /** File holding everything the child wrote to stderr. */
  readonly stderrPath: string;
  /** The stdout line that made it ready (readyLine mode), and that line parsed as JSON if it is JSON. */
  readonly readyText: string | undefined;
  readonly readyJson: unknown;
  /** Resolves when the child exits. */
  readonly exited: Promise<ExitStatus>;
  isRunning(): boolean;
  /** The last (up to 200) stdout lines. */
  stdoutLines(): readonly string[];
  /**
   * Sends `signal` (default SIGKILL) by pid and waits up to `timeoutMs` (default 10 s)
   * for the exit; after a SIGTERM that times out, sends SIGKILL and waits again.
   */
  kill(signal?: "SIGKILL" | "SIGTERM", timeoutMs?: number): Promise<ExitStatus>;
}

const STDOUT_LINES_MAX = 200;
const running = new Set<ChildProcess>();

process.on("exit", () => {
  for (const child of running) {
    try {
      if (child.pid !== undefined) process.kill(child.pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
});

/** The last `maxBytes` of a file, or "" if it cannot be read. */
export function tailFile(file: string, maxBytes = 4000): string {
  try {
    const text = fs.readFileSync(file, "utf8");
    return text.length > maxBytes ? text.slice(-maxBytes) : text;
  } catch {
    return "";
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | "timeout"> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** Starts `node --import tsx <entry>` and resolves once it is ready. */
export async function startTsProcess(options: StartOptions): Promise<ChildHandle> {
  const logDir = options.logDir ?? path.join(os.tmpdir(), "flotilla-test-logs");
  fs.mkdirSync(logDir, { recursive: true });
  const stderrPath = path.join(logDir, `${options.name}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}.stderr.log`);
  const stderrFd = fs.openSync(stderrPath, "a");
  const entry = path.resolve(REPO_ROOT, options.entry);
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const [key, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  let child: ChildProcess;
  try {
    const command = [...(options.wrap ?? []), process.execPath, ...(options.nodeArgs ?? []), "--import", "tsx", entry, ...(options.args ?? [])];
    child = spawn(command[0]!, command.slice(1), {
      cwd: REPO_ROOT,
      env,
      stdio: ["ignore", "pipe", stderrFd],
    });
  } finally {
    fs.closeSync(stderrFd);
  }
  if (child.pid === undefined) throw new Error(`${options.name}: spawn failed (see ${stderrPath})`);
  const pid = child.pid;
  running.add(child);

  let exitStatus: ExitStatus | undefined;
  const exited = new Promise<ExitStatus>((resolve) => {
    child.once("exit", (code, signal) => {
      exitStatus = { code, signal };
      running.delete(child);
      resolve(exitStatus);
    });
  });

  const lines: string[] = [];
  let readyText: string | undefined;
  let onLine: ((line: string) => void) | undefined;
  readline.createInterface({ input: child.stdout! }).on("line", (line) => {
    lines.push(line);
    if (lines.length > STDOUT_LINES_MAX) lines.shift();
    onLine?.(line);
  });

  const kill = async (signal: "SIGKILL" | "SIGTERM" = "SIGKILL", timeoutMs = 10_000): Promise<ExitStatus> => {
    if (exitStatus) return exitStatus;
    try {
      process.kill(pid, signal);
    } catch {
      // Exited between the check and the kill.
    }
    const result = await withTimeout(exited, timeoutMs);
    if (result !== "timeout") return result;
    if (signal === "SIGTERM") return kill("SIGKILL", timeoutMs);
    throw new Error(`${options.name} (pid ${pid}) did not exit within ${timeoutMs} ms of SIGKILL`);
  };

  const handle: ChildHandle = {
    name: options.name,
    pid,
    stderrPath,
    get readyText() {
      return readyText;
    },
    get readyJson() {
      if (readyText === undefined) return undefined;
      try {
        return JSON.parse(readyText) as unknown;
      } catch {
        return undefined;
      }
    },
    exited,
    isRunning: () => exitStatus === undefined,
    stdoutLines: () => lines.slice(),
    kill,
  };

  const readyTimeoutMs = options.readyTimeoutMs ?? 20_000;
  const failure = (why: string): Error => new Error(`${options.name} (pid ${pid}) ${why}; stderr (${stderrPath}) ends with:\n${tailFile(stderrPath)}`);

  const ready = new Promise<void>((resolve, reject) => {
    exited.then((status) => reject(failure(`exited before it was ready (code ${status.code}, signal ${status.signal})`)));
    const { readyLine, readyPort } = options;
    if (readyLine) {
      const matches = typeof readyLine === "function" ? readyLine : (line: string) => readyLine.test(line);
      const check = (line: string): void => {
        if (readyText === undefined && matches(line)) {
          readyText = line;
          resolve();
        }
      };
      lines.forEach(check);
      onLine = check;
    } else if (readyPort) {
      const deadline = Date.now() + readyTimeoutMs;
      const poll = async (): Promise<void> => {
        while (exitStatus === undefined && Date.now() < deadline) {
          if (await canConnect(readyPort.host, readyPort.port)) return resolve();
          await new Promise((r) => setTimeout(r, 50));
        }
      };
      void poll();
    } else {
      resolve();
    }
  });
  const outcome = await withTimeout(ready, readyTimeoutMs).catch((err: unknown) => err as Error);
  if (outcome === "timeout" || outcome instanceof Error) {
    await kill("SIGKILL").catch(() => undefined);
    throw outcome instanceof Error ? outcome : failure(`was not ready within ${readyTimeoutMs} ms`);
  }
  return handle;
}

/** SIGKILLs every child started here that is still running, and waits for their exits. */
export async function killAllProcesses(): Promise<void> {
  const exits: Promise<unknown>[] = [];
  for (const child of running) {
    exits.push(new Promise((resolve) => child.once("exit", resolve)));
    try {
      if (child.pid !== undefined) process.kill(child.pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
  await withTimeout(Promise.all(exits), 10_000);
}

/**
 * `count` distinct TCP ports that were free a moment ago on `host` (held open together,
 * then released). Another process could take one before the caller binds it; tests
 * accept that small race.
 */
export async function freePorts(count: number, host = "127.0.0.1"): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = net.createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(0, host, () => resolve());
      });
    }
    return servers.map((s) => (s.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  }
}

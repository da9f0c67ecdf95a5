/**
 * The NATS JetStream side of pnpm bench: a 3-node JetStream cluster of `nats-server`
 * processes on 127.0.0.1 (free ports, a temporary store directory) and an R3 file stream,
 * for the same publish workload as Flotilla's producer runs. JetStream acknowledges a
 * publish once the stream's Raft group has it on a quorum (2 of 3), the counterpart of
 * acks=all with min.insync.replicas=2; like Flotilla's default, it does not fsync each
 * message (its sync_interval is 2 minutes).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { connect, RetentionPolicy, StorageType } from "nats";
import { freePorts } from "../../test/helpers/processes.js";

export const NATS_STREAM = "BENCH";
export const NATS_SUBJECT_PREFIX = "bench";

/** The nats-server binary on PATH (or /usr/sbin), or undefined. */
export function findNatsServer(): string | undefined {
  for (const dir of [...(process.env.PATH ?? "").split(path.delimiter), "/usr/sbin", "/usr/local/sbin"]) {
    if (!dir) continue;
    const p = path.join(dir, "nats-server");
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

export function natsServerVersion(binary: string): string {
  const r = spawnSync(binary, ["--version"], { encoding: "utf8", timeout: 10_000 });
  return (r.stdout || r.stderr || "").trim();
}

export interface NatsCluster {
  servers: string[];
  pids: number[];
  /** SIGKILLs every server by pid and removes the store directory. */
  stop(): Promise<void>;
}

async function waitExit(proc: ChildProcess, ms: number): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  await Promise.race([new Promise((r) => proc.once("exit", r)), new Promise((r) => setTimeout(r, ms))]);
}

/** Starts 3 JetStream servers and creates the R3 stream; stops what it started if that fails. */
export async function startNatsCluster(binary: string, options: { startTimeoutMs?: number } = {}): Promise<NatsCluster> {
  const startTimeoutMs = options.startTimeoutMs ?? 60_000;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-bench-nats-"));
  const ports = await freePorts(6);
  const clientPorts = ports.slice(0, 3);
  const clusterPorts = ports.slice(3);
  const procs: ChildProcess[] = [];
  const stop = async (): Promise<void> => {
    for (const p of procs) {
      if (p.pid !== undefined && p.exitCode === null && p.signalCode === null) {
        try {
          process.kill(p.pid, "SIGKILL");
        } catch {
          // gone
        }
      }
    }
    await Promise.all(procs.map((p) => waitExit(p, 5000)));
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < 3; i++) {
      const routes = clusterPorts.filter((_, j) => j !== i).map((p) => `nats://127.0.0.1:${p}`).join(",");
      const log = fs.openSync(path.join(dir, `n${i + 1}.log`), "a");
      try {
        procs.push(
          spawn(binary, ["-a", "127.0.0.1", "-p", String(clientPorts[i]), "-n", `n${i + 1}`, "-js", "-sd", path.join(dir, `n${i + 1}`), "--cluster_name", "bench", "--cluster", `nats://127.0.0.1:${clusterPorts[i]}`, "--routes", routes], {
            stdio: ["ignore", log, log],
          }),
        );
      } finally {
        fs.closeSync(log);
      }
    }
    const servers = clientPorts.map((p) => `127.0.0.1:${p}`);
    // JetStream answers once its meta group has a leader; until then stream creation fails.
    const deadlineMs = Date.now() + startTimeoutMs;
    let last: unknown;
    for (let attempt = 0; attempt < 1000 && Date.now() < deadlineMs; attempt++) {
      if (procs.some((p) => p.exitCode !== null)) throw new Error(`nats-server exited at start; see ${dir}/n*.log`);
      try {
        const nc = await connect({ servers, timeout: 2000 });
        try {
          const jsm = await nc.jetstreamManager({ timeout: 5000 });
          await jsm.streams.add({ name: NATS_STREAM, subjects: [`${NATS_SUBJECT_PREFIX}.>`], num_replicas: 3, storage: StorageType.File, retention: RetentionPolicy.Limits });
          return { servers, pids: procs.map((p) => p.pid ?? -1), stop };
        } finally {
          await nc.close();
        }
      } catch (err) {
        last = err;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    throw new Error(`JetStream cluster not ready within ${startTimeoutMs} ms: ${String(last)}`);
  } catch (err) {
    await stop();
    throw err;
  }
}

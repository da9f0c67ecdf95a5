/**
 * pnpm sim --seeds N [--nodes 3|5] [--start S] [--steps K] [--profile P]
 *     runs seeds S .. S+N-1 (for both cluster sizes unless --nodes) and reports seeds/s.
 * pnpm sim --seed S [--nodes 3|5] [--steps K] [--profile P]
 *     replays one seed with a readable trace, one line per event.
 * --steps is the number of events in the fault phase; --profile leader-churn forces the
 * piecemeal replication histories of Figure 8 (see SimOptions.profile).
 * Exit code 1 on any invariant violation (the message names the invariant, the seed, the
 * step and the command that replays it), 2 on bad arguments.
 */
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { runSimulation, SIM_DEFAULTS, SimViolation, type SimResult } from "./sim.js";

const usage = "usage: pnpm sim --seeds N [--nodes 3|5] [--start S] [--steps K] [--profile default|leader-churn]\n       pnpm sim --seed S [--nodes 3|5] [--steps K] [--profile default|leader-churn]";

export interface CliOutput {
  out(text: string): void;
  err(text: string): void;
}

class UsageError extends Error {}

function intArg(name: string, value: string | undefined, min: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer >= ${min}, got "${value}"`);
  return n;
}

/** Runs the command; returns the exit code. */
export function main(args: readonly string[], io: CliOutput): number {
  try {
    return run(args, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`${err.message}\n${usage}\n`);
      return 2;
    }
    throw err;
  }
}

function run(args: readonly string[], io: CliOutput): number {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      options: {
        seed: { type: "string" },
        seeds: { type: "string" },
        start: { type: "string" },
        nodes: { type: "string" },
        steps: { type: "string" },
        profile: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const v = parsed.values;
  if (v.help) {
    io.out(`${usage}\n`);
    return 0;
  }
  const nodesArg = intArg("nodes", v.nodes, 3);
  if (nodesArg !== undefined && nodesArg !== 3 && nodesArg !== 5) throw new UsageError(`--nodes must be 3 or 5, got ${nodesArg}`);
  const chaosSteps = intArg("steps", v.steps, 1) ?? SIM_DEFAULTS.chaosSteps;
  const profile = v.profile ?? "default";
  if (profile !== "default" && profile !== "leader-churn") throw new UsageError(`--profile must be default or leader-churn, got "${profile}"`);
  const seed = intArg("seed", v.seed, 0);
  const seeds = intArg("seeds", v.seeds, 1);
  if ((seed === undefined) === (seeds === undefined)) throw new UsageError("give exactly one of --seed and --seeds");

  if (seed !== undefined) {
    const nodes = nodesArg ?? 3;
    try {
      const result = runSimulation({ seed, nodes, chaosSteps, profile, trace: (line) => io.out(`${line}\n`) });
      io.out(`ok: ${summary(result)}\n`);
      return 0;
    } catch (err) {
      return report(err, io);
    }
  }

  const start = intArg("start", v.start, 0) ?? 1;
  const sizes = nodesArg !== undefined ? [nodesArg] : [3, 5];
  for (const nodes of sizes) {
    const began = performance.now();
    let steps = 0;
    let lastReport = began;
    for (let k = 0; k < seeds!; k++) {
      const s = start + k;
      try {
        steps += runSimulation({ seed: s, nodes, chaosSteps, profile }).steps;
      } catch (err) {
        return report(err, io);
      }
      const now = performance.now();
      if (now - lastReport > 2000 || k === seeds! - 1) {
        lastReport = now;
        const secs = (now - began) / 1000;
        io.out(`${nodes} nodes: ${k + 1}/${seeds} seeds (${start}..${s}), ${((k + 1) / secs).toFixed(1)} seeds/s, ${Math.round(steps / secs)} steps/s\n`);
      }
    }
  }
  io.out("no violations\n");
  return 0;
}

function summary(r: SimResult): string {
  return `seed ${r.seed}, ${r.nodes} nodes${r.observer ? " + observer" : ""}: ${r.steps} steps, ${r.virtualMs}ms virtual, ${r.termsWithLeader} leaders, committed ${r.highestCommitted}, ${r.proposalsAccepted} proposals, ${r.readsReleased} reads, ${r.crashes} crashes, ${r.partitions} partitions, ${r.compactions} compactions, ${r.snapshotsInstalled} snapshots installed, ${r.transfers} transfers, ${r.messagesDelivered} delivered / ${r.messagesDropped} dropped, live ${r.livenessMs}ms after heal`;
}

function report(err: unknown, io: CliOutput): number {
  if (err instanceof SimViolation) {
    io.err(`${err.message}\n`);
    return 1;
  }
  throw err;
}

// Run when executed (`pnpm sim`), not when imported by the tests.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = main(process.argv.slice(2), {
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
  });
}

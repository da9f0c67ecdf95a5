/**
 * `flotilla cluster describe`: the brokers (id, endpoint, alive or fenced) and the
 * controller quorum (voters, leader, term, each voter's lag), read from the controller
 * listeners (DescribeCluster and DescribeQuorum of proto/flotilla/controller/v1). The lag
 * is known only at the Raft leader, so the quorum is asked there.
 */
import { Command } from "commander";
import { parseIntFlag, UsageError } from "../format.js";
import { writeOut, type CliIo } from "../io.js";

/** The controller listeners of the local cluster `flotilla start` runs. */
export const DEFAULT_BOOTSTRAP_CONTROLLERS = "127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094";

export interface ClusterView {
  brokers: { brokerId: number; brokerEpoch: number; endpoints: { name: string; host: string; port: number }[]; rack: string | null; fenced: boolean }[];
  activeControllerId: number;
  metadataOffset: number;
  quorum: { leaderId: number; term: number; commitIndex: number; lastIndex: number; voters: { id: number; address: string; matchIndex: number; lag: number }[] };
}

function pad(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join("  ").trimEnd()).join("\n");
}

export function formatClusterView(view: ClusterView): string {
  const brokers = pad([
    ["BROKER", "ENDPOINT", "STATE", "EPOCH", "RACK"],
    ...view.brokers.map((b) => [String(b.brokerId), b.endpoints.map((e) => `${e.name}://${e.host}:${e.port}`).join(","), b.fenced ? "fenced" : "alive", String(b.brokerEpoch), b.rack ?? "-"]),
  ]);
  const q = view.quorum;
  const voters = pad([
    ["VOTER", "ADDRESS", "ROLE", "MATCH", "LAG"],
    ...q.voters.map((v) => [String(v.id), v.address, v.id === q.leaderId ? "leader" : "follower", v.matchIndex < 0 ? "?" : String(v.matchIndex), v.lag < 0 ? "?" : String(v.lag)]),
  ]);
  return [
    `Brokers (metadata offset ${view.metadataOffset}):`,
    brokers,
    "",
    `Quorum: leader ${q.leaderId === 0 ? "unknown" : q.leaderId}, term ${q.term}, commit index ${q.commitIndex}`,
    voters,
    "",
  ].join("\n");
}

export function clusterCommand(io: CliIo): Command {
  const cluster = new Command("cluster").description("describe the cluster: brokers and the controller quorum");
  cluster
    .command("describe")
    .description("brokers (alive/fenced, endpoints) and the quorum (voters, leader, term, lag)")
    .option("--bootstrap-controller <host:port,...>", "controller listeners to ask", DEFAULT_BOOTSTRAP_CONTROLLERS)
    .option("--format <text|json>", "output format", "text")
    .option("--request-timeout-ms <ms>", "give up after this long", "10000")
    .action(async (opts: { bootstrapController: string; format: string; requestTimeoutMs: string }) => {
      if (opts.format !== "text" && opts.format !== "json") throw new UsageError(`--format must be text or json, got "${opts.format}"`);
      const timeoutMs = parseIntFlag(opts.requestTimeoutMs, "--request-timeout-ms", 1);
      const addresses = opts.bootstrapController.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
      if (addresses.length === 0) throw new UsageError("--bootstrap-controller names no address");
      // Loaded here so that other commands do not load the controller code.
      const { ControllerQuorumClient } = await import("@flotilla/controller");
      const client = new ControllerQuorumClient({ addresses, totalTimeoutMs: timeoutMs, callTimeoutMs: Math.min(timeoutMs, 5000) });
      try {
        const c = await client.describeCluster();
        // Lags are known at the leader: ask it when we know where it is.
        let q = await client.describeQuorum();
        const leaderAddress = q.voters.find((v) => v.id === q.leaderId)?.address;
        if (leaderAddress && q.nodeId !== q.leaderId) q = await client.describeQuorum(leaderAddress).catch(() => q);
        const view: ClusterView = { ...c, brokers: [...c.brokers], quorum: { leaderId: q.leaderId, term: q.term, commitIndex: q.commitIndex, lastIndex: q.lastIndex, voters: [...q.voters] } };
        await writeOut(io.stdout, opts.format === "json" ? `${JSON.stringify(view)}\n` : formatClusterView(view));
      } finally {
        client.close();
      }
    });
  return cluster;
}

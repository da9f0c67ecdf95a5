/**
 * Transcript tests (after etcd-io/raft's testdata): a script of commands drives a
 * TestCluster, and everything that happens is written down and compared with the file in
 * __transcripts__/. A change in behaviour shows up as a readable diff; accept it
 * (`npx vitest run -u packages/raft`) only once you understand every changed line.
 *
 * Commands:
 *   campaign N        tick N until it starts an election
 *   stabilize         deliver messages until none is left
 *   deliver           deliver the messages queued now (one round)
 *   propose N TEXT    propose at N
 *   tick N [K]        tick N (K times)
 *   tick-all [K]      tick every node (K rounds), delivering after each round
 *   isolate N | heal  drop every message to and from N | stop dropping
 *   transfer N M      ask leader N to hand leadership to M
 *   compact N         compact N at its applied index
 *   read N CTX        read-index request at N
 *   restart N         crash N and start it again from its disk
 *   status            one line per node
 */
import { describe, expect, it } from "vitest";
import { data, TestCluster, type TestClusterOptions } from "./test-cluster.js";

function runScript(options: TestClusterOptions, script: string): string {
  const c = new TestCluster(options);
  const out: string[] = [];
  const flush = () => {
    for (const line of c.trace) out.push(`  ${line}`);
    c.trace.length = 0;
  };
  for (const raw of script.trim().split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    out.push(`> ${line}`);
    const [cmd, ...args] = line.split(/\s+/);
    const n = Number(args[0]);
    switch (cmd) {
      case "campaign":
        c.campaign(n);
        break;
      case "stabilize":
        c.stabilize();
        break;
      case "deliver":
        c.deliverRound();
        break;
      case "propose": {
        const r = c.node(n).propose(data(args.slice(1).join(" ")));
        c.process(n);
        out.push(`  ${r.ok ? `proposed at index ${r.index} term ${r.term}` : `refused: ${r.reason} (leader ${r.leader})`}`);
        break;
      }
      case "tick":
        c.tick(n, args[1] === undefined ? 1 : Number(args[1]));
        break;
      case "tick-all":
        for (let k = 0; k < (args[0] === undefined ? 1 : Number(args[0])); k++) {
          c.tickAll();
          c.stabilize();
        }
        break;
      case "isolate":
        c.isolate(n);
        break;
      case "heal":
        c.heal();
        break;
      case "transfer":
        out.push(`  ${c.node(n).transferLeadership(Number(args[1])) ? "transfer started" : "transfer refused"}`);
        c.process(n);
        break;
      case "compact": {
        const snap = c.compact(n);
        if (snap === undefined) out.push("  nothing to compact");
        break;
      }
      case "read": {
        const r = c.node(n).readIndex(args[1]!);
        c.process(n);
        out.push(`  ${r.ok ? `read accepted (index ${r.index})` : `read refused: ${r.reason}`}`);
        break;
      }
      case "restart":
        c.restart(n);
        c.process(n);
        break;
      case "status":
        for (const node of c.nodes.values()) {
          const s = node.status();
          out.push(`  ${s.id}: ${s.role} term=${s.term} leader=${s.leader} commit=${s.commit} applied=${s.applied} last=${s.lastIndex}`);
        }
        break;
      default:
        throw new Error(`unknown transcript command "${line}"`);
    }
    flush();
  }
  return `${out.join("\n")}\n`;
}

describe("transcripts", () => {
  it("election with pre-vote, replication and commit", async () => {
    const transcript = runScript(
      { voters: [1, 2, 3], seed: 1 },
      `
      campaign 1
      stabilize
      propose 1 hello
      stabilize
      status
      `,
    );
    await expect(transcript).toMatchFileSnapshot("__transcripts__/election-replication.txt");
  });

  it("a partitioned node rejoins without disrupting the leader (pre-vote)", async () => {
    const transcript = runScript(
      { voters: [1, 2, 3], seed: 2 },
      `
      campaign 1
      stabilize
      isolate 3
      propose 1 while-3-is-away
      stabilize
      tick 3 25
      stabilize
      heal
      tick 1
      stabilize
      status
      `,
    );
    await expect(transcript).toMatchFileSnapshot("__transcripts__/prevote-rejoin.txt");
  });

  it("leadership transfer catches the target up first", async () => {
    const transcript = runScript(
      { voters: [1, 2, 3], seed: 3 },
      `
      campaign 1
      stabilize
      isolate 3
      propose 1 a
      stabilize
      heal
      transfer 1 3
      propose 1 refused-while-transferring
      stabilize
      status
      `,
    );
    await expect(transcript).toMatchFileSnapshot("__transcripts__/leader-transfer.txt");
  });

  it("a follower behind the compaction point installs a snapshot, then a read index is served", async () => {
    const transcript = runScript(
      { voters: [1, 2, 3], observers: [4], seed: 4 },
      `
      campaign 1
      stabilize
      isolate 3
      propose 1 a
      propose 1 b
      stabilize
      compact 1
      heal
      tick 1
      stabilize
      read 1 ctx-1
      stabilize
      restart 3
      tick-all 2
      status
      `,
    );
    await expect(transcript).toMatchFileSnapshot("__transcripts__/snapshot-read-index.txt");
  });
});

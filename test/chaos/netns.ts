/**
 * Network namespaces for partition tests (root only): one namespace per node, each joined to a
 * bridge in the root namespace by a veth pair, so every node has its own address and a link that
 * can be cut. The subnet (10.250.<run>.0/24) exists only on the links created here: the nodes
 * are .1 ... .N and the root side of the bridge is .254, so the test process reaches them
 * directly. Nothing is ever sent to any other address.
 *
 *   const net = createNetns({ nodes: 3 });     // throws if not root or `ip` is missing
 *   net.address(1);                            // "10.250.<run>.1"
 *   net.wrap(1);                               // ["ip", "netns", "exec", "fl-<pid>-1"]: a command prefix
 *   net.isolate(2);                            // node 2's link down: it reaches no one, no one reaches it
 *   net.heal();                                // every link up again
 *   net.destroy();                             // deletes every namespace and link made here (idempotent)
 *
 * A process 'exit' hook destroys whatever is left, so a failed run leaves no namespace behind
 * (processes still running inside a namespace keep it alive: kill them first).
 */
import { execFileSync } from "node:child_process";

export interface NetnsOptions {
  nodes: number;
  /** Distinguishes concurrent runs of one process; default 0. */
  run?: number;
}

export interface Netns {
  readonly namespaces: readonly string[];
  readonly bridge: string;
  /** The subnet's root-namespace address (on the bridge). */
  readonly rootAddress: string;
  /** Node `id`'s (1-based) address inside its namespace. */
  address(id: number): string;
  /** The command prefix that runs a program inside node `id`'s namespace. */
  wrap(id: number): string[];
  /** Downs node `id`'s link (both veth ends): it is cut off from every other node and from the test. */
  isolate(id: number): void;
  /** Brings every link up again. */
  heal(): void;
  /** The ids currently isolated. */
  isolated(): number[];
  destroy(): void;
}

function ip(args: readonly string[]): string {
  return execFileSync("ip", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/** Why namespaces cannot be used here, or undefined if they can. */
export function netnsUnavailableReason(): string | undefined {
  if (typeof process.getuid !== "function" || process.getuid() !== 0) return "network namespaces need root (run the test as root)";
  try {
    ip(["netns", "list"]);
  } catch (err) {
    return `\`ip netns\` (iproute2) is not usable: ${String(err)}`;
  }
  return undefined;
}

const live = new Set<Netns>();
process.on("exit", () => {
  for (const n of live) n.destroy();
});

export function createNetns(options: NetnsOptions): Netns {
  const reason = netnsUnavailableReason();
  if (reason) throw new Error(reason);
  if (options.nodes < 1 || options.nodes > 200) throw new Error(`nodes must be 1..200, got ${options.nodes}`);
  const run = options.run ?? 0;
  // Interface names are at most 15 bytes: "fl" + pid (<= 7 digits) + suffix.
  const tag = `${process.pid}${run > 0 ? `r${run}` : ""}`;
  const subnetOctet = (process.pid + run * 7) % 250;
  const prefix = `10.250.${subnetOctet}`;
  const ids = Array.from({ length: options.nodes }, (_, i) => i + 1);
  const namespaces = ids.map((id) => `fl-${tag}-${id}`);
  const bridge = `flb${tag}`;
  const hostVeth = (id: number): string => `flh${tag}x${id}`;
  const nsVeth = "eth0";
  const down = new Set<number>();
  const created = { bridge: false, namespaces: [] as string[], veths: [] as string[] };
  let destroyed = false;

  const net: Netns = {
    namespaces,
    bridge,
    rootAddress: `${prefix}.254`,
    address: (id) => `${prefix}.${id}`,
    wrap: (id) => ["ip", "netns", "exec", namespaces[id - 1]!],
    isolate: (id) => {
      ip(["link", "set", hostVeth(id), "down"]);
      ip(["-n", namespaces[id - 1]!, "link", "set", nsVeth, "down"]);
      down.add(id);
    },
    heal: () => {
      for (const id of down) {
        ip(["-n", namespaces[id - 1]!, "link", "set", nsVeth, "up"]);
        ip(["link", "set", hostVeth(id), "up"]);
      }
      down.clear();
    },
    isolated: () => [...down],
    destroy: () => {
      if (destroyed) return;
      destroyed = true;
      live.delete(net);
      // Deleting a namespace deletes the veth end inside it and so its peer; delete leftovers anyway.
      for (const ns of created.namespaces) {
        try {
          ip(["netns", "del", ns]);
        } catch {
          // Already gone.
        }
      }
      for (const veth of created.veths) {
        try {
          ip(["link", "del", veth]);
        } catch {
          // Went with its namespace.
        }
      }
      if (created.bridge) {
        try {
          ip(["link", "del", bridge]);
        } catch {
          // Already gone.
        }
      }
    },
  };
  live.add(net);
  try {
    ip(["link", "add", bridge, "type", "bridge"]);
    created.bridge = true;
    ip(["addr", "add", `${net.rootAddress}/24`, "dev", bridge]);
    ip(["link", "set", bridge, "up"]);
    for (const id of ids) {
      const ns = namespaces[id - 1]!;
      ip(["netns", "add", ns]);
      created.namespaces.push(ns);
      ip(["link", "add", hostVeth(id), "type", "veth", "peer", "name", nsVeth, "netns", ns]);
      created.veths.push(hostVeth(id));
      ip(["link", "set", hostVeth(id), "master", bridge]);
      ip(["link", "set", hostVeth(id), "up"]);
      ip(["-n", ns, "link", "set", "lo", "up"]);
      ip(["-n", ns, "addr", "add", `${net.address(id)}/24`, "dev", nsVeth]);
      ip(["-n", ns, "link", "set", nsVeth, "up"]);
    }
  } catch (err) {
    net.destroy();
    throw err;
  }
  return net;
}

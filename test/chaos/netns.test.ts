/**
 * The namespace setup on its own (root only): each node's address is reachable from the root
 * namespace through the bridge, isolate() cuts exactly that node off, heal() restores it, and
 * destroy() leaves no namespace or link behind.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { execFileSync } from "node:child_process";
import net from "node:net";
import readline from "node:readline";
import { afterAll, describe, expect, it } from "vitest";
import { createNetns, netnsUnavailableReason, type Netns } from "./netns.js";

const unavailable = netnsUnavailableReason();
if (unavailable) process.stdout.write(`netns tests skipped: ${unavailable}\n`);

const children: ChildProcess[] = [];
let netns: Netns | undefined;

afterAll(async () => {
  for (const c of children) {
    if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) {
      process.kill(c.pid, "SIGKILL");
      await new Promise((r) => c.once("exit", r));
    }
  }
  netns?.destroy();
});

/** A TCP server on `host:port` inside namespace `wrap`, resolved once it listens. */
async function serveIn(wrap: string[], host: string, port: number): Promise<void> {
  const script = `require("net").createServer((s)=>s.end("hi")).listen(${port},"${host}",()=>console.log("listening"))`;
  const child = spawn(wrap[0]!, [...wrap.slice(1), process.execPath, "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("server in namespace did not listen within 10 s")), 10_000);
    readline.createInterface({ input: child.stdout! }).on("line", (l) => {
      if (l === "listening") {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", (code) => reject(new Error(`server in namespace exited (${code})`)));
  });
}

/** True if a TCP connection to host:port answers within `timeoutMs`. */
function reachable(host: string, port: number, timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(false);
    }, timeoutMs);
    socket.once("data", () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}

describe.skipIf(unavailable !== undefined)(`network namespaces${unavailable ? ` (skipped: ${unavailable})` : ""}`, () => {
  it("gives each node its own reachable address, isolates one node, heals and cleans up", async () => {
    netns = createNetns({ nodes: 2, run: 9 });
    const listed = execFileSync("ip", ["netns", "list"], { encoding: "utf8" });
    for (const ns of netns.namespaces) expect(listed).toContain(ns);
    const port = 19_092;
    await serveIn(netns.wrap(1), netns.address(1), port);
    await serveIn(netns.wrap(2), netns.address(2), port);
    expect(await reachable(netns.address(1), port)).toBe(true);
    expect(await reachable(netns.address(2), port)).toBe(true);

    netns.isolate(1);
    expect(netns.isolated()).toEqual([1]);
    expect(await reachable(netns.address(1), port)).toBe(false);
    expect(await reachable(netns.address(2), port)).toBe(true);

    netns.heal();
    expect(await reachable(netns.address(1), port, 3_000)).toBe(true);

    for (const c of children) {
      process.kill(c.pid!, "SIGKILL");
      await new Promise((r) => c.once("exit", r));
    }
    const names = netns.namespaces;
    const bridge = netns.bridge;
    netns.destroy();
    const after = execFileSync("ip", ["netns", "list"], { encoding: "utf8" });
    for (const ns of names) expect(after).not.toContain(ns);
    expect(execFileSync("ip", ["-br", "link"], { encoding: "utf8" })).not.toContain(bridge);
  }, 30_000);
});

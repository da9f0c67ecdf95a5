import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { FlotillaError } from "@flotilla/common";
import type { FetchRequest, FetchResponse, ProduceRequest, ProduceResponse } from "./broker-api.js";
import { BROKER_PROTO, BROKER_SERVICE, GRPC_CHANNEL_OPTIONS, serviceClientCtor } from "./grpc.js";
import { PIPELINE_INFLIGHT_MAX, PipelineChannel, pipelineHandler, type PipelineHandlers } from "./pipeline.js";

const Ctor = serviceClientCtor(BROKER_PROTO, BROKER_SERVICE);
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

async function serve(handlers: PipelineHandlers, port = 0): Promise<{ port: number; server: grpc.Server }> {
  const server = new grpc.Server(GRPC_CHANNEL_OPTIONS);
  server.addService(Ctor.service, { Pipeline: pipelineHandler(handlers) as grpc.UntypedHandleCall });
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  cleanups.push(() => server.forceShutdown());
  return { port: bound, server };
}

function connect(port: number): { client: grpc.Client; pipeline: PipelineChannel } {
  const client = new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), GRPC_CHANNEL_OPTIONS);
  const pipeline = new PipelineChannel(client, `127.0.0.1:${port}`);
  cleanups.push(() => {
    pipeline.close();
    client.close();
  });
  return { client, pipeline };
}

const produceReq = (name: string): ProduceRequest => ({ acks: -1, timeoutMs: 1000, topics: [{ name, partitions: [] }] });
const fetchReq = (name: string): FetchRequest => ({ replicaId: -1, maxWaitMs: 0, minBytes: 0, maxBytes: 1024, topics: [{ name, partitions: [] }] });
const produceRes = (name: string): ProduceResponse => ({ topics: [{ name, partitions: [] }] });
const fetchRes = (name: string, records = Buffer.alloc(0)): FetchResponse => ({
  topics: [{ name, partitions: [{ partition: 0, errorCode: 0, errorMessage: "", highWatermark: 0, logStartOffset: 0, records }] }],
});
const never = <T>(signal: AbortSignal): Promise<T> => new Promise<T>((_resolve, reject) => signal.addEventListener("abort", () => reject(new FlotillaError("NETWORK_EXCEPTION", "aborted")), { once: true }));

/** Polls `cond` every 10 ms, at most `ms`. */
async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  for (const end = Date.now() + ms; !cond(); ) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function rejection(p: Promise<unknown>): Promise<FlotillaError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(FlotillaError);
    return err as FlotillaError;
  }
  throw new Error("expected the call to fail");
}

describe("Pipeline stream", () => {
  it("a client without the Pipeline method fails each call with a rejection naming the broker, not a synchronous throw", async () => {
    const client = new grpc.Client("127.0.0.1:1", grpc.credentials.createInsecure());
    cleanups.push(() => client.close());
    const pipeline = new PipelineChannel(client, "127.0.0.1:1");
    let returned: Promise<ProduceResponse> | undefined;
    expect(() => {
      returned = pipeline.produce(produceReq("t"), { timeoutMs: 1000 });
    }).not.toThrow();
    const err = await rejection(returned!);
    expect(err.errorName).toBe("UNSUPPORTED_VERSION");
    expect(err.message).toContain("127.0.0.1:1");
    expect(pipeline.inFlight).toBe(0);
  });

  it("answers each request by its correlation id, in the order they finish (a held produce does not hold up a fetch)", async () => {
    let release: (() => void) | undefined;
    const { port } = await serve({
      produce: (req) => new Promise((resolve) => (release = () => resolve(produceRes(req.topics[0]!.name)))),
      fetch: async (req) => fetchRes(req.topics[0]!.name),
    });
    const { pipeline } = connect(port);
    const produced = pipeline.produce(produceReq("held"), { timeoutMs: 10_000 });
    const fetched = await pipeline.fetch(fetchReq("quick"), { timeoutMs: 10_000 });
    expect(fetched.topics[0]!.name).toBe("quick");
    expect(pipeline.inFlight).toBe(1);
    await until("the produce to reach the handler", () => release !== undefined);
    release!();
    expect((await produced).topics[0]!.name).toBe("held");
    expect(pipeline.inFlight).toBe(0);
  });

  it("starts requests in the order they were written", async () => {
    const seen: string[] = [];
    const { port } = await serve({
      produce: async (req) => {
        seen.push(req.topics[0]!.name);
        return produceRes(req.topics[0]!.name);
      },
      fetch: async (req) => fetchRes(req.topics[0]!.name),
    });
    const { pipeline } = connect(port);
    const names = Array.from({ length: 200 }, (_, i) => `t${i}`);
    // Requests of very different sizes: on unary calls the small ones can overtake the big ones.
    const answers = await Promise.all(names.map((n, i) => pipeline.produce({ ...produceReq(n), topics: [{ name: n, partitions: [{ partition: 0, records: Buffer.alloc(i % 2 === 0 ? 256 * 1024 : 10) }] }] }, { timeoutMs: 30_000 })));
    expect(answers.map((a) => a.topics[0]!.name)).toEqual(names);
    expect(seen).toEqual(names);
  });

  it("returns a request that failed as a whole as its FlotillaError, leader hint included; anything else as UNKNOWN_SERVER_ERROR", async () => {
    const { port } = await serve({
      produce: async () => {
        throw new FlotillaError("NOT_LEADER_OR_FOLLOWER", "partition t-0 moved", { leaderHint: "127.0.0.9:9092" });
      },
      fetch: async () => {
        throw new Error("disk on fire");
      },
    });
    const { pipeline } = connect(port);
    const notLeader = await rejection(pipeline.produce(produceReq("t"), { timeoutMs: 10_000 }));
    expect(notLeader.errorName).toBe("NOT_LEADER_OR_FOLLOWER");
    expect(notLeader.leaderHint).toBe("127.0.0.9:9092");
    expect(notLeader.message).toBe(`NOT_LEADER_OR_FOLLOWER: Produce to 127.0.0.1:${port}: partition t-0 moved`);
    const unknown = await rejection(pipeline.fetch(fetchReq("t"), { timeoutMs: 10_000 }));
    expect(unknown.errorName).toBe("UNKNOWN_SERVER_ERROR");
    expect(unknown.message).toContain("disk on fire");
    // The stream survives errors of single requests.
    expect(pipeline.inFlight).toBe(0);
  });

  it("a cancelled request fails at once for the caller, and the broker's handler sees its signal aborted", async () => {
    let serverSignal: AbortSignal | undefined;
    const { port } = await serve({
      produce: async (req) => produceRes(req.topics[0]!.name),
      fetch: (_req, signal) => {
        serverSignal = signal;
        return never(signal);
      },
    });
    const { pipeline } = connect(port);
    const abort = new AbortController();
    const pending = pipeline.fetch(fetchReq("t"), { timeoutMs: 30_000, signal: abort.signal });
    await until("the fetch to reach the handler", () => serverSignal !== undefined);
    abort.abort();
    const err = await rejection(pending);
    expect(err.errorName).toBe("NETWORK_EXCEPTION");
    expect(err.message).toContain("cancelled by the caller");
    await until("the handler's signal to be aborted", () => serverSignal!.aborted);
    // The stream is still in use: the next request on it is answered.
    expect((await pipeline.produce(produceReq("after"), { timeoutMs: 10_000 })).topics[0]!.name).toBe("after");
  });

  it("a request without an answer in time fails with REQUEST_TIMED_OUT and drops the stream: the others on it fail with NETWORK_EXCEPTION, the next call opens a new one", async () => {
    const signals: AbortSignal[] = [];
    let answer = false;
    const { port } = await serve({
      produce: async (req) => produceRes(req.topics[0]!.name),
      fetch: (req, signal) => {
        if (answer) return Promise.resolve(fetchRes(req.topics[0]!.name));
        signals.push(signal);
        return never(signal);
      },
    });
    const { pipeline } = connect(port);
    const other = pipeline.fetch(fetchReq("other"), { timeoutMs: 30_000 });
    const timedOut = await rejection(pipeline.fetch(fetchReq("slow"), { timeoutMs: 300 }));
    expect(timedOut.errorName).toBe("REQUEST_TIMED_OUT");
    expect(timedOut.message).toContain("no answer in 300 ms");
    const dropped = await rejection(other);
    expect(dropped.errorName).toBe("NETWORK_EXCEPTION");
    expect(dropped.message).toContain("dropped after a request on it timed out");
    // The broker saw the stream go and stopped both handlers.
    await until("both handlers' signals to be aborted", () => signals.length === 2 && signals.every((s) => s.aborted));
    answer = true;
    expect((await pipeline.fetch(fetchReq("next"), { timeoutMs: 10_000 })).topics[0]!.name).toBe("next");
  });

  it("a broker that goes away fails what is in flight with NETWORK_EXCEPTION; a broker back on the address is reached by a later call", async () => {
    const { port, server } = await serve({ produce: async (req) => produceRes(req.topics[0]!.name), fetch: (_req, signal) => never(signal) });
    const { pipeline } = connect(port);
    const pending = pipeline.fetch(fetchReq("t"), { timeoutMs: 30_000 });
    await new Promise((r) => setTimeout(r, 100));
    server.forceShutdown();
    expect((await rejection(pending)).errorName).toBe("NETWORK_EXCEPTION");
    await serve({ produce: async (req) => produceRes(req.topics[0]!.name), fetch: async (req) => fetchRes(req.topics[0]!.name) }, port);
    // The channel reconnects with a backoff; until then a call fails fast with NETWORK_EXCEPTION.
    let answered: FetchResponse | undefined;
    for (let i = 0; i < 100 && !answered; i++) {
      try {
        answered = await pipeline.fetch(fetchReq("back"), { timeoutMs: 2000 });
      } catch (err) {
        expect((err as FlotillaError).retriable).toBe(true);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    expect(answered?.topics[0]!.name).toBe("back");
  });

  it(`runs at most ${PIPELINE_INFLIGHT_MAX} requests of one stream at once; the rest wait unread until some are answered`, async () => {
    const releases: (() => void)[] = [];
    let started = 0;
    const { port } = await serve({
      produce: (req) => {
        started++;
        return new Promise((resolve) => releases.push(() => resolve(produceRes(req.topics[0]!.name))));
      },
      fetch: async (req) => fetchRes(req.topics[0]!.name),
    });
    const { pipeline } = connect(port);
    const all = Array.from({ length: 200 }, (_, i) => pipeline.produce(produceReq(`t${i}`), { timeoutMs: 30_000 }));
    await until(`${PIPELINE_INFLIGHT_MAX} handlers to start`, () => started === PIPELINE_INFLIGHT_MAX);
    await new Promise((r) => setTimeout(r, 300));
    expect(started).toBe(PIPELINE_INFLIGHT_MAX);
    // Answering releases the rest, 64 at a time.
    for (let round = 0; round < 10 && releases.length > 0; round++) {
      for (const r of releases.splice(0)) r();
      await until("the next requests to start or all to finish", () => releases.length > 0 || started === 200);
    }
    for (const r of releases.splice(0)) r();
    const answers = await Promise.all(all);
    expect(answers.map((a) => a.topics[0]!.name)).toEqual(Array.from({ length: 200 }, (_, i) => `t${i}`));
  });

  it("stops taking the requests of a client that hangs without reading its answers, so large answers do not pile up in the broker", async () => {
    let handled = 0;
    const { port } = await serve({
      produce: async (req) => produceRes(req.topics[0]!.name),
      fetch: async (req) => {
        handled++;
        return fetchRes("t", Buffer.alloc(1024 * 1024, handled % 256));
      },
    });
    const sent = 300;
    const child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(new URL("./testing/pipeline-stalled-client.ts", import.meta.url)), String(port), String(sent)], { stdio: ["ignore", "pipe", "pipe"] });
    cleanups.push(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    await until("the client to send its requests and freeze", () => out.includes("sent"), 30_000);
    // The broker answers until its socket, the HTTP/2 window and the stream's write buffer are
    // full (a few MiB), then stops reading: the count settles far below what was sent.
    let before = -1;
    for (let i = 0; i < 50 && handled !== before; i++) {
      before = handled;
      await new Promise((r) => setTimeout(r, 300));
    }
    expect(handled).toBe(before);
    expect(handled).toBeGreaterThan(0);
    expect(handled).toBeLessThan(sent / 3);
    // Thawed, the client reads every answer, and the broker serves the rest.
    child.kill("SIGCONT");
    expect(await exited).toBe(0);
    expect(err).toBe("");
    expect(out).toContain(`answers ${sent}`);
    expect(handled).toBe(sent);
  }, 60_000);
});

/**
 * The HTTP admin endpoint of a node (http.listener, off unless set): probes for
 * supervisors and Prometheus metrics, on a port of its own so that a slow or saturated
 * gRPC listener does not make the probes lie.
 *
 *   GET /healthz  liveness: 200 "ok" whenever the event loop answers. Nothing else is
 *                 checked on purpose: a liveness failure restarts the process, which must
 *                 not happen just because a peer or the quorum is away.
 *   GET /readyz   readiness, "caught up and serving": 200 with the checks as JSON when every
 *                 check passes, else 503 with the same JSON. The checks (NodeStatus.readiness):
 *                 - serving: start-up finished (log dirs checked, metadata log open, client
 *                   and controller listeners bound; for a broker also registered with the
 *                   active controller and unfenced once) and close() has not begun;
 *                 - quorum-leader (controller role in a quorum): this voter knows a Raft
 *                   leader, i.e. the metadata quorum has a majority it can reach;
 *                 - metadata-applied: the controller's image has applied every committed
 *                   metadata record this node knows of (for a broker-only node, the records
 *                   it has fetched from the active controller);
 *                 - registered (broker role): the image holds this broker's current
 *                   registration (the epoch it registered with) and it is not fenced;
 *                 - broker-caught-up (broker role): the partition layer has applied the
 *                   image up to the controller's offset (leaderships and followings set up).
 *   GET /metrics  Prometheus text format (prom-client): process and Node.js metrics, and
 *                 the flotilla_* series documented in createNodeMetrics.
 * Every other path answers 404, every other method 405.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "@flotilla/common/logger";
import type { MetadataImage } from "@flotilla/metadata";
import type { FetchRequest, FetchResponse, ProduceRequest, ProduceResponse } from "@flotilla/protocol";
import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";
import type { ProcessRole } from "./config.js";

export interface ReadinessCheck {
  readonly name: string;
  readonly ok: boolean;
  /** Why, in a few words: shown in the /readyz body and the pod's events. */
  readonly detail: string;
}

export interface Readiness {
  readonly ready: boolean;
  readonly checks: readonly ReadinessCheck[];
}

/** What readiness and metrics read from a partition. */
export interface PartitionView {
  readonly topic: string;
  readonly partition: number;
  readonly isLeader: boolean;
  readonly highWatermark: number;
  readonly log: { readonly logEndOffset: number };
}

/** Raft's NONE leader id (packages/raft types.ts). */
const NO_LEADER = 0;

/**
 * The node's state as the probes see it, filled in by startNode as each part comes up
 * (so /healthz and /readyz answer from the first moment the HTTP listener is bound).
 */
export class NodeStatus {
  phase: "starting" | "serving" | "stopping" = "starting";
  controller: { image(): MetadataImage } | undefined;
  metadataLog: { committedOffset(): number } | undefined;
  quorum: { quorumStatus(): { leaderId: number; term: number } } | undefined;
  broker: { readonly replicas: { readonly appliedOffset: number; allPartitions(): readonly PartitionView[] }; brokerEpoch(): number } | undefined;

  constructor(
    readonly nodeId: number,
    readonly roles: readonly ProcessRole[],
  ) {}

  readiness(): Readiness {
    const checks: ReadinessCheck[] = [];
    const phaseDetail = { starting: "start-up not finished", serving: "listeners up, start-up finished", stopping: "shutting down" }[this.phase];
    checks.push({ name: "serving", ok: this.phase === "serving", detail: phaseDetail });
    if (this.quorum) {
      const { leaderId, term } = this.quorum.quorumStatus();
      checks.push(leaderId === NO_LEADER
        ? { name: "quorum-leader", ok: false, detail: `no known metadata quorum leader (term ${term})` }
        : { name: "quorum-leader", ok: true, detail: `leader ${leaderId} in term ${term}` });
    }
    const image = this.controller?.image();
    if (image && this.metadataLog) {
      const committed = this.metadataLog.committedOffset();
      checks.push({ name: "metadata-applied", ok: image.offset >= committed, detail: `image at offset ${image.offset}, committed ${committed}` });
    } else {
      checks.push({ name: "metadata-applied", ok: false, detail: "metadata log not open yet" });
    }
    if (this.roles.includes("broker")) {
      const registration = image?.brokers.get(this.nodeId);
      const epoch = this.broker?.brokerEpoch() ?? -1;
      if (!registration || epoch < 0) checks.push({ name: "registered", ok: false, detail: "not registered" });
      else if (registration.brokerEpoch !== epoch) checks.push({ name: "registered", ok: false, detail: `image has epoch ${registration.brokerEpoch}, this broker registered with ${epoch}` });
      else if (registration.fenced) checks.push({ name: "registered", ok: false, detail: `fenced (epoch ${epoch})` });
      else checks.push({ name: "registered", ok: true, detail: `unfenced with epoch ${epoch}` });
      const applied = this.broker?.replicas.appliedOffset ?? -1;
      const target = image?.offset ?? 0;
      checks.push({ name: "broker-caught-up", ok: this.broker !== undefined && applied >= target, detail: `partitions applied the image to offset ${applied} of ${target}` });
    }
    return { ready: checks.every((c) => c.ok), checks };
  }
}

/** Produce and fetch, the calls the metrics count. */
export interface CountedApi {
  produce(request: ProduceRequest): Promise<ProduceResponse>;
  fetch(request: FetchRequest, signal?: AbortSignal): Promise<FetchResponse>;
}

export interface NodeMetrics {
  readonly registry: Registry;
  /** `api` with produce and fetch counted; every other member is `api`'s own. */
  instrument<T extends CountedApi>(api: T): T;
}

/**
 * A registry per node (tests run several nodes in one process) with:
 *   process_* and nodejs_*                                 prom-client's default metrics
 *   flotilla_node_ready                                    1 when /readyz would answer 200
 *   flotilla_partitions                                    partitions hosted here
 *   flotilla_partitions_led                                partitions this broker leads
 *   flotilla_partition_log_end_offset{topic,partition}     next offset of each local log
 *   flotilla_partition_high_watermark{topic,partition}     committed offset of each local log
 *   flotilla_metadata_image_offset                         last applied metadata offset
 *   flotilla_requests_total{api,kind}                      produce / fetch calls (kind consumer or replica for fetch)
 *   flotilla_request_errors_total{api,kind}                calls that threw
 *   flotilla_produce_bytes_total                           record-batch bytes received by Produce
 *   flotilla_fetch_bytes_total{kind}                       record-batch bytes returned by Fetch
 */
export function createNodeMetrics(status: NodeStatus): NodeMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ node_id: String(status.nodeId) });
  collectDefaultMetrics({ register: registry });
  const partitions = () => status.broker?.replicas.allPartitions() ?? [];
  new Gauge({
    name: "flotilla_node_ready",
    help: "1 when every readiness check passes (GET /readyz answers 200), else 0",
    registers: [registry],
    collect() {
      this.set(status.readiness().ready ? 1 : 0);
    },
  });
  new Gauge({
    name: "flotilla_partitions",
    help: "Partition replicas hosted by this broker",
    registers: [registry],
    collect() {
      this.set(partitions().length);
    },
  });
  new Gauge({
    name: "flotilla_partitions_led",
    help: "Partitions this broker is the leader of",
    registers: [registry],
    collect() {
      this.set(partitions().filter((p) => p.isLeader).length);
    },
  });
  new Gauge({
    name: "flotilla_partition_log_end_offset",
    help: "Log end offset (the next offset to be written) of each local partition log",
    labelNames: ["topic", "partition"] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const p of partitions()) this.set({ topic: p.topic, partition: String(p.partition) }, p.log.logEndOffset);
    },
  });
  new Gauge({
    name: "flotilla_partition_high_watermark",
    help: "High watermark of each local partition",
    labelNames: ["topic", "partition"] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const p of partitions()) this.set({ topic: p.topic, partition: String(p.partition) }, p.highWatermark);
    },
  });
  new Gauge({
    name: "flotilla_metadata_image_offset",
    help: "Offset of the last metadata record applied to this node's image (-1 before any)",
    registers: [registry],
    collect() {
      this.set(status.controller?.image().offset ?? -1);
    },
  });
  const requests = new Counter({ name: "flotilla_requests_total", help: "Produce and Fetch calls received", labelNames: ["api", "kind"] as const, registers: [registry] });
  const errors = new Counter({ name: "flotilla_request_errors_total", help: "Produce and Fetch calls that failed as a whole", labelNames: ["api", "kind"] as const, registers: [registry] });
  const produceBytes = new Counter({ name: "flotilla_produce_bytes_total", help: "Record-batch bytes received by Produce", registers: [registry] });
  const fetchBytes = new Counter({ name: "flotilla_fetch_bytes_total", help: "Record-batch bytes returned by Fetch", labelNames: ["kind"] as const, registers: [registry] });

  const instrument = <T extends CountedApi>(api: T): T => {
    const produce = async (request: ProduceRequest): Promise<ProduceResponse> => {
      requests.inc({ api: "produce", kind: "client" });
      let bytes = 0;
      for (const t of request.topics) for (const p of t.partitions) bytes += p.records.length;
      produceBytes.inc(bytes);
      try {
        return await api.produce(request);
      } catch (err) {
        errors.inc({ api: "produce", kind: "client" });
        throw err;
      }
    };
    const fetch = async (request: FetchRequest, signal?: AbortSignal): Promise<FetchResponse> => {
      // Kafka's convention: a replica id >= 0 is a follower broker, -1 a consumer.
      const kind = request.replicaId >= 0 ? "replica" : "consumer";
      requests.inc({ api: "fetch", kind });
      try {
        const response = await api.fetch(request, signal);
        let bytes = 0;
        for (const t of response.topics) for (const p of t.partitions) bytes += p.records.length;
        fetchBytes.inc({ kind }, bytes);
        return response;
      } catch (err) {
        errors.inc({ api: "fetch", kind });
        throw err;
      }
    };
    // A proxy, not a copy: the broker's other methods keep their own `this`.
    return new Proxy(api, {
      get(target, key) {
        if (key === "produce") return produce;
        if (key === "fetch") return fetch;
        const value: unknown = Reflect.get(target, key, target);
        return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
  };
  return { registry, instrument };
}

export interface HttpAdminServer {
  /** The bound port (the real one when asked for port 0). */
  readonly port: number;
  close(): Promise<void>;
}

/** Longest a request may take before the server drops it (a stuck /metrics must not pile up sockets). */
const REQUEST_TIMEOUT_MS = 10_000;

export async function startHttpAdmin(options: { host: string; port: number; status: NodeStatus; registry: Registry; logger: Logger }): Promise<HttpAdminServer> {
  const { status, registry, logger } = options;
  const send = (res: http.ServerResponse, code: number, contentType: string, body: string) => {
    res.writeHead(code, { "content-type": contentType, "cache-control": "no-store" });
    res.end(body);
  };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://admin");
    const known = ["/healthz", "/readyz", "/metrics"].includes(url.pathname);
    if (!known) return send(res, 404, "text/plain", `no such path ${url.pathname}; try /healthz, /readyz or /metrics\n`);
    if (req.method !== "GET" && req.method !== "HEAD") return send(res, 405, "text/plain", `${req.method} not allowed; use GET\n`);
    if (url.pathname === "/healthz") return send(res, 200, "text/plain", "ok\n");
    if (url.pathname === "/readyz") {
      const readiness = status.readiness();
      return send(res, readiness.ready ? 200 : 503, "application/json", `${JSON.stringify({ nodeId: status.nodeId, ...readiness })}\n`);
    }
    registry.metrics().then(
      (text) => send(res, 200, registry.contentType, text),
      (err: unknown) => {
        logger.error({ err }, "collecting metrics failed");
        send(res, 500, "text/plain", "collecting metrics failed\n");
      },
    );
  });
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host === "" ? undefined : options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  logger.info({ host: options.host, port }, "http admin listener up (/healthz, /readyz, /metrics)");
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

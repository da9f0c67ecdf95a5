/**
 * The gRPC edge of the controller quorum (proto/flotilla/controller/v1/controller.proto):
 * proto messages in, Controller / RaftMetadataLog calls, proto messages out. Commands go
 * through the local Controller, which runs them when this voter is the active controller
 * and otherwise refuses with NOT_CONTROLLER and a leader hint (a voter's service never
 * forwards: the caller follows the hint). Reads (FetchMetadata, Describe*) are answered
 * from this voter's committed state.
 */
import * as grpc from "@grpc/grpc-js";
import { CALL_CANCELLED, FlotillaError } from "@flotilla/common";
import type { Logger } from "@flotilla/common/logger";
import { encodeRecord } from "@flotilla/metadata";
import { serviceClientCtor, toServiceError } from "@flotilla/protocol";
import type { Controller } from "./controller.js";
import { encodeImage } from "./image-snapshot.js";
import type { RaftMetadataLog } from "./raft-metadata-log.js";

export const CONTROLLER_PROTO = "flotilla/controller/v1/controller.proto";
export const CONTROLLER_SERVICE = "flotilla.controller.v1.Controller";
/** Longest FetchMetadata long-poll, whatever max_wait_ms asks. */
export const FETCH_METADATA_WAIT_MS_MAX = 10_000;
/** Records per FetchMetadata answer when the request says 0, and at most. */
export const FETCH_METADATA_RECORDS_DEFAULT = 2000;
export const FETCH_METADATA_RECORDS_MAX = 10_000;

type Req = Record<string, unknown>;
type Unary = (call: grpc.ServerUnaryCall<Req, unknown>, callback: grpc.sendUnaryData<unknown>) => void;

export interface ControllerServiceOptions {
  /** The controller running on the local metadata log; must not forward (no forwardTo). */
  readonly controller: Controller;
  readonly log: RaftMetadataLog;
  readonly logger: Logger;
}

const num = (v: unknown): number => (typeof v === "number" ? v : Number(v ?? 0));

export function addControllerService(server: grpc.Server, options: ControllerServiceOptions): void {
  const { controller, log, logger } = options;
  const unary = (name: string, run: (req: Req, signal: AbortSignal) => Promise<unknown>): Unary => (call, callback) => {
    const abort = new AbortController();
    call.on("cancelled", () => abort.abort(CALL_CANCELLED));
    run(call.request, abort.signal).then(
      (response) => callback(null, response),
      (err: unknown) => {
        if (!(err instanceof FlotillaError)) logger.error({ err, rpc: name }, "unexpected error in controller request handler");
        callback(toServiceError(err) as grpc.ServiceError);
      },
    );
  };
  const offset = () => controller.image().offset;
  const here = { forward: false } as const;
  const ctor = serviceClientCtor(CONTROLLER_PROTO, CONTROLLER_SERVICE);
  server.addService(ctor.service, {
    RegisterBroker: unary("RegisterBroker", async (req) => {
      const r = await controller.registerBroker({
        brokerId: num(req.brokerId),
        incarnationId: String(req.incarnationId ?? ""),
        endpoints: ((req.endpoints as Req[] | undefined) ?? []).map((e) => ({ name: String(e.name), host: String(e.host), port: num(e.port) })),
        rack: req.rack ? String(req.rack) : null,
      }, here);
      return { brokerEpoch: r.brokerEpoch, metadataOffset: offset() };
    }),
    BrokerHeartbeat: unary("BrokerHeartbeat", async (req) => {
      const r = await controller.brokerHeartbeat({
        brokerId: num(req.brokerId),
        brokerEpoch: num(req.brokerEpoch),
        currentMetadataOffset: num(req.currentMetadataOffset),
        wantFence: Boolean(req.wantFence),
        wantShutDown: Boolean(req.wantShutDown),
      }, here);
      return { ...r, metadataOffset: offset() };
    }),
    AlterPartition: unary("AlterPartition", async (req) => {
      const r = await controller.alterPartition({
        brokerId: num(req.brokerId),
        brokerEpoch: num(req.brokerEpoch),
        topicId: String(req.topicId ?? ""),
        partition: num(req.partition),
        leaderEpoch: num(req.leaderEpoch),
        partitionEpoch: num(req.partitionEpoch),
        newIsr: ((req.newIsr as unknown[] | undefined) ?? []).map(num),
      }, here);
      return { ...r, isr: [...r.isr], metadataOffset: offset() };
    }),
    CreateTopics: unary("CreateTopics", async (req) => {
      const topics = ((req.topics as Req[] | undefined) ?? []).map((t) => ({
        name: String(t.name),
        numPartitions: num(t.numPartitions),
        replicationFactor: num(t.replicationFactor),
        configs: (t.configs as Record<string, string> | undefined) ?? {},
      }));
      const response = await controller.createTopics({ topics, timeoutMs: num(req.timeoutMs), validateOnly: Boolean(req.validateOnly) }, here);
      return { response, metadataOffset: offset() };
    }),
    DeleteTopics: unary("DeleteTopics", async (req) => {
      const response = await controller.deleteTopics({ names: ((req.names as unknown[] | undefined) ?? []).map(String), timeoutMs: num(req.timeoutMs) }, here);
      return { response, metadataOffset: offset() };
    }),
    CreatePartitions: unary("CreatePartitions", async (req) => {
      const response = await controller.createPartitions({
        topics: ((req.topics as Req[] | undefined) ?? []).map((t) => ({ name: String(t.name), count: num(t.count) })),
        validateOnly: Boolean(req.validateOnly),
      }, here);
      return { ...response, metadataOffset: offset() };
    }),
    AllocateProducerIds: unary("AllocateProducerIds", async (req) => {
      const r = await controller.allocateProducerIds({ brokerId: num(req.brokerId), brokerEpoch: num(req.brokerEpoch) }, here);
      return { ...r, metadataOffset: offset() };
    }),
    FetchMetadata: unary("FetchMetadata", async (req, signal) => {
      const from = num(req.fromOffset);
      if (!Number.isSafeInteger(from) || from < 0) throw new FlotillaError("INVALID_REQUEST", `FetchMetadata from_offset ${from} must be >= 0`);
      const waitMs = Math.min(Math.max(0, num(req.maxWaitMs)), FETCH_METADATA_WAIT_MS_MAX);
      const asked = num(req.maxRecords);
      const maxRecords = asked > 0 ? Math.min(asked, FETCH_METADATA_RECORDS_MAX) : FETCH_METADATA_RECORDS_DEFAULT;
      const result = await log.fetch(from, waitMs, maxRecords, signal);
      if (result.kind === "snapshot") {
        return { records: [], snapshot: Buffer.from(encodeImage(result.image)), snapshotOffset: result.image.offset, committedOffset: result.committedOffset };
      }
      return { records: result.records.map((r) => Buffer.from(encodeRecord(r.record))), snapshot: Buffer.alloc(0), snapshotOffset: -1, committedOffset: result.committedOffset };
    }),
    DescribeQuorum: unary("DescribeQuorum", async () => {
      const q = log.quorumStatus();
      return { ...q, voters: q.voters.map((v) => ({ ...v })), metadataOffset: offset() };
    }),
    DescribeCluster: unary("DescribeCluster", async () => {
      const image = controller.image();
      return {
        brokers: [...image.brokers.values()]
          .sort((a, b) => a.brokerId - b.brokerId)
          .map((b) => ({ brokerId: b.brokerId, brokerEpoch: b.brokerEpoch, endpoints: b.endpoints.map((e) => ({ ...e })), rack: b.rack ?? "", fenced: b.fenced })),
        activeControllerId: log.quorumStatus().leaderId,
        metadataOffset: image.offset,
      };
    }),
  });
}

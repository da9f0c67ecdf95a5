/**
 * Broker lifecycle commands (KRaft's BrokerRegistration and BrokerHeartbeat): a broker
 * registers with a fresh incarnation id at every start and is fenced until a heartbeat
 * shows it has caught up with the metadata log up to its own registration.
 */
import { FlotillaError } from "@flotilla/common";
import type { Endpoint, MetadataImage, MetadataRecord } from "@flotilla/metadata";
import type { ControllerResult } from "./result.js";

export interface RegisterBrokerRequest {
  readonly brokerId: number;
  readonly incarnationId: string;
  readonly endpoints: readonly Endpoint[];
  readonly rack: string | null;
}

export interface BrokerHeartbeatRequest {
  readonly brokerId: number;
  readonly brokerEpoch: number;
  /** Offset of the last metadata record the broker has applied. */
  readonly currentMetadataOffset: number;
  /** True when the broker asks to be (or stay) fenced, e.g. while its logs are loading. */
  readonly wantFence: boolean;
}

export interface BrokerHeartbeatResponse {
  readonly isFenced: boolean;
}

function checkEndpoints(endpoints: readonly Endpoint[]): void {
  if (endpoints.length === 0) throw new FlotillaError("INVALID_REQUEST", "broker registration has no endpoints");
  for (const e of endpoints) {
    if (!e.name || !e.host) throw new FlotillaError("INVALID_REQUEST", `broker endpoint ${JSON.stringify(e)} has no listener name or host`);
    if (!Number.isInteger(e.port) || e.port <= 0 || e.port > 65535) throw new FlotillaError("INVALID_REQUEST", `broker endpoint ${e.name}://${e.host}:${e.port} has a bad port`);
  }
}

/**
 * Registers a broker. A retry with the same incarnation id changes nothing (the broker
 * epoch stays); a new incarnation replaces the registration and gets a new epoch (the
 * offset of its record, read from the image after commit).
 */
export function registerBroker(image: MetadataImage, request: RegisterBrokerRequest): ControllerResult<void> {
  if (!Number.isInteger(request.brokerId) || request.brokerId < 0) throw new FlotillaError("INVALID_REQUEST", `broker id ${request.brokerId} is not a non-negative integer`);
  if (!request.incarnationId) throw new FlotillaError("INVALID_REQUEST", `broker ${request.brokerId} registered without an incarnation id`);
  checkEndpoints(request.endpoints);
  const current = image.brokers.get(request.brokerId);
  if (current && current.incarnationId === request.incarnationId) return { records: [], response: undefined };
  const record: MetadataRecord = {
    type: "RegisterBroker",
    brokerId: request.brokerId,
    incarnationId: request.incarnationId,
    endpoints: request.endpoints.map((e) => ({ name: e.name, host: e.host, port: e.port })),
    rack: request.rack,
  };
  return { records: [record], response: undefined };
}

/**
 * A heartbeat unfences a caught-up broker that does not want to be fenced, and fences
 * one that asks for it. A heartbeat with an epoch other than the registered one is from
 * an older process of that broker and is refused.
 */
export function brokerHeartbeat(image: MetadataImage, request: BrokerHeartbeatRequest): ControllerResult<BrokerHeartbeatResponse> {
  const broker = image.brokers.get(request.brokerId);
  if (!broker) throw new FlotillaError("BROKER_NOT_AVAILABLE", `broker ${request.brokerId} is not registered`);
  if (broker.brokerEpoch !== request.brokerEpoch) {
    throw new FlotillaError("BROKER_NOT_AVAILABLE", `stale broker epoch ${request.brokerEpoch} for broker ${request.brokerId}; the registered epoch is ${broker.brokerEpoch}`);
  }
  if (broker.fenced && !request.wantFence && request.currentMetadataOffset >= broker.brokerEpoch) {
    return { records: [{ type: "UnfenceBroker", brokerId: broker.brokerId, brokerEpoch: broker.brokerEpoch }], response: { isFenced: false } };
  }
  if (!broker.fenced && request.wantFence) {
    return { records: [{ type: "FenceBroker", brokerId: broker.brokerId, brokerEpoch: broker.brokerEpoch }], response: { isFenced: true } };
  }
  return { records: [], response: { isFenced: broker.fenced } };
}

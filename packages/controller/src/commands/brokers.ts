/**
 * Broker lifecycle commands (KRaft's BrokerRegistration and BrokerHeartbeat): a broker
 * registers with a fresh incarnation id at every start and is fenced until a heartbeat
 * shows it has caught up with the metadata log up to its own registration.
 */
import { FlotillaError } from "@flotilla/common";
import type { Endpoint, MetadataImage, MetadataRecord } from "@flotilla/metadata";
import { applyAhead, electLeaderless, leadsAny, moveAwayFrom, type ElectionContext } from "./lifecycle.js";
import type { ControllerResult } from "./result.js";

/** No broker is shutting down and unclean election is off: for callers without controller state. */
export const DEFAULT_ELECTION_CONTEXT: ElectionContext = Object.freeze({ shuttingDown: new Set<number>(), uncleanLeaderElectionEnable: false });

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
  /** Controlled shutdown: move leadership away, then answer shouldShutDown. */
  readonly wantShutDown?: boolean;
}

export interface BrokerHeartbeatResponse {
  readonly isFenced: boolean;
  /** The broker leads nothing any more and may stop (only after wantShutDown). */
  readonly shouldShutDown: boolean;
  /** The broker has applied the metadata log up to its own registration. */
  readonly isCaughtUp: boolean;
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
export function registerBroker(image: MetadataImage, request: RegisterBrokerRequest, ctx: ElectionContext = DEFAULT_ELECTION_CONTEXT): ControllerResult<void> {
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
  // The old incarnation is gone (the process restarted): its leaderships move to other
  // ISR members first, as when it is fenced, since the new one starts fenced.
  const moves = current ? moveAwayFrom(image, request.brokerId, ctx) : [];
  return { records: [...moves, record], response: undefined };
}

/**
 * A heartbeat unfences a caught-up broker that does not want to be fenced (and gives it
 * the leadership of leaderless partitions whose ISR holds it), and fences one that asks
 * for it. With wantShutDown (controlled shutdown) the broker's leaderships move to other
 * ISR members and it leaves the ISRs; once it leads nothing it is fenced and told
 * shouldShutDown. A heartbeat with an epoch other than the registered one is from an
 * older process of that broker and is refused. `ctx.shuttingDown` must already contain
 * the broker when it asks to shut down.
 */
export function brokerHeartbeat(image: MetadataImage, request: BrokerHeartbeatRequest, ctx: ElectionContext = DEFAULT_ELECTION_CONTEXT): ControllerResult<BrokerHeartbeatResponse> {
  const broker = image.brokers.get(request.brokerId);
  if (!broker) throw new FlotillaError("BROKER_NOT_AVAILABLE", `broker ${request.brokerId} is not registered`);
  if (broker.brokerEpoch !== request.brokerEpoch) {
    throw new FlotillaError("BROKER_NOT_AVAILABLE", `stale broker epoch ${request.brokerEpoch} for broker ${request.brokerId}; the registered epoch is ${broker.brokerEpoch}`);
  }
  const isCaughtUp = request.currentMetadataOffset >= broker.brokerEpoch;
  if (request.wantShutDown) {
    if (broker.fenced) return { records: [], response: { isFenced: true, shouldShutDown: true, isCaughtUp } };
    const moves = moveAwayFrom(image, broker.brokerId, ctx);
    const after = applyAhead(image, moves);
    if (leadsAny(after, broker.brokerId)) return { records: moves, response: { isFenced: false, shouldShutDown: false, isCaughtUp } };
    return {
      records: [...moves, { type: "FenceBroker", brokerId: broker.brokerId, brokerEpoch: broker.brokerEpoch }],
      response: { isFenced: true, shouldShutDown: true, isCaughtUp },
    };
  }
  if (broker.fenced && !request.wantFence && isCaughtUp) {
    const unfence: MetadataRecord = { type: "UnfenceBroker", brokerId: broker.brokerId, brokerEpoch: broker.brokerEpoch };
    const elections = electLeaderless(applyAhead(image, [unfence]), ctx);
    return { records: [unfence, ...elections], response: { isFenced: false, shouldShutDown: false, isCaughtUp } };
  }
  if (!broker.fenced && request.wantFence) {
    const moves = moveAwayFrom(image, broker.brokerId, ctx);
    return { records: [...moves, { type: "FenceBroker", brokerId: broker.brokerId, brokerEpoch: broker.brokerEpoch }], response: { isFenced: true, shouldShutDown: false, isCaughtUp } };
  }
  return { records: [], response: { isFenced: broker.fenced, shouldShutDown: false, isCaughtUp } };
}

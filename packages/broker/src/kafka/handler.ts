import type { Logger } from "@flotilla/common/logger";
import type { BrokerApi, GroupCoordinatorApi, ReplicationApi } from "@flotilla/protocol";
import type { KafkaApiSpec } from "@flotilla/protocol/kafka";

/** What a Kafka request handler knows about the request beyond its body. */
export interface KafkaRequestContext {
  readonly apiVersion: number;
  readonly correlationId: number;
  readonly clientId: string | null;
  /** The peer as Kafka's DescribeGroups shows it, e.g. "/127.0.0.1". */
  readonly clientHost: string;
  /** Aborted when the connection closes. */
  readonly signal: AbortSignal;
  /**
   * Closes the connection once this request is done, without a response: Kafka's answer to
   * a failed acks=0 produce, so the producer notices and refreshes its metadata. Optional so
   * that tests can call handlers with a bare context.
   */
  readonly closeConnection?: (reason: string) => void;
}

/**
 * One served API: the codec from @flotilla/protocol/kafka and the function that answers
 * it through the same BrokerApi / GroupCoordinatorApi the gRPC edge uses (so both
 * protocols share logs, validation, groups and the error table).
 *
 * `handle` resolves to the response, or to `undefined` when the protocol sends none
 * (Produce with acks=0). A thrown FlotillaError becomes `spec.errorResponse(...)` with its
 * code; anything else is logged and answered with UNKNOWN_SERVER_ERROR (-1).
 */
export interface KafkaHandler<Req = unknown, Res = unknown> {
  readonly spec: KafkaApiSpec<Req, Res>;
  handle(request: Req, context: KafkaRequestContext): Promise<Res | undefined>;
}

/** Everything the handlers call into. */
export interface KafkaBackends {
  readonly broker: BrokerApi & Partial<ReplicationApi>;
  /** Absent on a broker built without a group coordinator (tests): group APIs then answer COORDINATOR_NOT_AVAILABLE. */
  readonly groups?: GroupCoordinatorApi;
  /** Broker-level config as DescribeConfigs(BROKER) reports it: Kafka property name -> value. */
  readonly brokerConfigs: () => Record<string, string>;
  readonly nodeId: number;
  readonly logger: Logger;
}

/** Builds handlers for a set of APIs. */
export type KafkaHandlerFactory = (backends: KafkaBackends) => KafkaHandler[];

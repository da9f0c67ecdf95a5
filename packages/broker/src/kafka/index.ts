/** The broker's Kafka protocol listener: handler table, connections, same-port sniffing. */
export type { KafkaBackends, KafkaHandler, KafkaHandlerFactory, KafkaRequestContext } from "./handler.js";
export { KafkaHandlerRegistry, buildKafkaRegistry, DEFAULT_KAFKA_HANDLER_FACTORIES } from "./registry.js";
export { KafkaConnection, DEFAULT_KAFKA_CONNECTION_LIMITS, SOCKET_REQUEST_MAX_BYTES_DEFAULT, type KafkaConnectionLimits, type KafkaConnectionOptions } from "./connection.js";
export { KafkaListener, sniffProtocol, listenKafkaOnly, HTTP2_PREFACE, KAFKA_CONNECTIONS_MAX_DEFAULT, type KafkaListenerOptions, type KafkaListenerSettings, type SniffResult } from "./listener.js";

import { topicConfigStrings } from "@flotilla/metadata";
import type { ServerConfig } from "../config.js";
import { BROKER_KEY_OF_TOPIC_KEY } from "./config-synonyms.js";
import { SOCKET_REQUEST_MAX_BYTES_DEFAULT } from "./connection.js";

/**
 * The broker's effective configuration under Kafka's broker property names, as
 * DescribeConfigs(BROKER) reports it (`KafkaBackends.brokerConfigs`).
 */
export function kafkaBrokerConfigs(config: ServerConfig): Record<string, string> {
  const out: Record<string, string> = {
    "node.id": String(config.nodeId),
    "broker.id": String(config.nodeId),
    "process.roles": config.processRoles.join(","),
    "num.partitions": String(config.numPartitions),
    "default.replication.factor": String(config.defaultReplicationFactor),
    "auto.create.topics.enable": String(config.autoCreateTopicsEnable),
    "fetch.max.bytes": String(config.fetchMaxBytes),
    "socket.request.max.bytes": String(SOCKET_REQUEST_MAX_BYTES_DEFAULT),
    "offsets.topic.num.partitions": String(config.groups.offsetsTopicNumPartitions),
    "offsets.topic.replication.factor": String(config.groups.offsetsTopicReplicationFactor),
    "group.min.session.timeout.ms": String(config.groups.groupMinSessionTimeoutMs),
    "group.max.session.timeout.ms": String(config.groups.groupMaxSessionTimeoutMs),
    "group.initial.rebalance.delay.ms": String(config.groups.groupInitialRebalanceDelayMs),
  };
  if (config.brokerRack !== null) out["broker.rack"] = config.brokerRack;
  for (const [topicKey, value] of Object.entries(topicConfigStrings(config.topicDefaults))) {
    const brokerKey = BROKER_KEY_OF_TOPIC_KEY[topicKey];
    if (brokerKey) out[brokerKey] = value;
  }
  return out;
}

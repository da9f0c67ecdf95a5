export { loadServerConfig, parseListener, parseVoters, clientListener, advertisedHost, SERVER_CONFIG_DEFS, type ServerConfig, type Listener, type QuorumVoter, type ProcessRole } from "./config.js";
export { collectProperties, envNameOfProperty, propertyNameOfEnv, type ConfigSources } from "./config-sources.js";
export { startNode, METADATA_LOG_DIR_NAME, FETCH_WAIT_MS_MAX, PARKED_FETCHES_MAX, type NodeHandle, type StartNodeOptions } from "./node.js";
export { Broker, type BrokerOptions } from "./broker.js";
export { ReplicaManager, toLogConfig, type PartitionLogStore, type ReplicaManagerOptions } from "./replica-manager.js";
export { Partition } from "./partition.js";
export { FetchPurgatory, type WakeReason } from "./fetch-purgatory.js";
export { startBrokerGrpcServer, brokerServiceHandlers, type BrokerGrpcServer } from "./grpc-server.js";
export { ensureMetaProperties, META_PROPERTIES_FILE } from "./meta-properties.js";

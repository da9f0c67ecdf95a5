/** The Raft driver of the controller quorum: durable storage, gRPC transport, ready loop. */
export { RaftDriver, resolveDriverOptions, type DriverCore, type RaftDriverOptions, type StateMachine, type ProposeOutcome } from "./driver.js";
export {
  KvRaftStorage,
  KEY_SPACES,
  type RaftStorage,
  type RaftLogStore,
  type HardStateStore,
  type SnapshotStore,
  type PersistRequest,
  type RecoveredState,
  type KvBackend,
  type KvOp,
  type KeySpace,
} from "./storage.js";
export { LevelKvBackend, openLevelRaftStorage } from "./storage-level.js";
export { MemoryDisk, MemoryKvBackend, openMemoryRaftStorage } from "./storage-memory.js";
export { GrpcRaftTransport, addRaftTransportService, type RaftTransport, type GrpcRaftTransportOptions, type PeerSendStats, type RaftTransportServiceOptions } from "./transport.js";
export { parseQuorumVoters, voterAddress, type QuorumVoter } from "./config.js";
export { createGrpcServer, bindGrpcServer, shutdownGrpcServer } from "./grpc-server.js";
export { RAFT_PROTO, RAFT_TRANSPORT_SERVICE, RAFT_TEST_MACHINE_SERVICE, messageToWire, messageFromWire } from "./wire.js";
export { AppendOnlyListMachine, type AppliedItem } from "./test-machine.js";
export { addRaftTestMachineService, READ_ITEMS_MAX } from "./test-machine-service.js";
export { RaftTestMachineClient, type RetryOptions } from "./test-machine-client.js";

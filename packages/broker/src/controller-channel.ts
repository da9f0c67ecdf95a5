/**
 * The broker's channel to the active controller. The contract and its types live in
 * @flotilla/controller (packages/controller/src/channel.ts), because the controller's
 * own forwarding (a voter that is not the Raft leader) uses the same calls; this module
 * is where broker code imports it from.
 *
 * Implementations:
 * - in-process: `Controller` itself implements ControllerChannel (it runs commands when it
 *   is the active controller and forwards them to the Raft leader otherwise);
 * - gRPC: `GrpcControllerChannel` over the controller listeners of every voter.
 */
export type {
  ControllerChannel,
  RegisterBrokerCall,
  BrokerHeartbeatCall,
  BrokerHeartbeatReply,
  AlterPartitionCall,
  AlterPartitionReply,
  AllocateProducerIdsCall,
  ProducerIdBlock,
} from "@flotilla/controller";
export { PRODUCER_ID_BLOCK_SIZE } from "@flotilla/controller";

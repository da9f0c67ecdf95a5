/**
 * The broker <-> controller channel (Kafka's BrokerToControllerChannelManager): the calls
 * a broker makes to the active controller. Two implementations: in-process (the node
 * hosts a controller, ./controller.ts, which forwards to the Raft leader when it is not
 * the active controller) and gRPC (./controller-client.ts, over the controller listeners
 * of every voter, following NOT_CONTROLLER leader hints).
 *
 * Every call is answered by the active controller after its records are committed.
 * Errors of the whole call are FlotillaErrors (NOT_CONTROLLER with a leader hint,
 * BROKER_NOT_AVAILABLE for a stale broker epoch, REQUEST_TIMED_OUT, ...). Per-item
 * errors travel in the responses, as in the broker API.
 */
import type { Endpoint } from "@flotilla/metadata";
import type { CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse } from "@flotilla/protocol";
import type { CreatePartitionsRequest, CreatePartitionsResponse } from "./commands/topics.js";

export interface RegisterBrokerCall {
  readonly brokerId: number;
  /** Fresh at every process start, so a restart is told apart from a retry. */
  readonly incarnationId: string;
  readonly endpoints: readonly Endpoint[];
  readonly rack?: string | null;
}

export interface BrokerHeartbeatCall {
  readonly brokerId: number;
  /** From registerBroker; a heartbeat with another epoch is refused (BROKER_NOT_AVAILABLE). */
  readonly brokerEpoch: number;
  /** Offset of the last metadata record the broker has applied (-1: none). */
  readonly currentMetadataOffset: number;
  /** The broker asks to be (or stay) fenced. */
  readonly wantFence: boolean;
  /** Controlled shutdown: move my leaderships away and take me out of ISRs. */
  readonly wantShutDown: boolean;
}

export interface BrokerHeartbeatReply {
  readonly isFenced: boolean;
  /** Controlled shutdown finished: the broker leads nothing and may exit. */
  readonly shouldShutDown: boolean;
  /** The broker has applied the metadata log up to its own registration. */
  readonly isCaughtUp: boolean;
}

export interface AlterPartitionCall {
  /** The partition leader asking. */
  readonly brokerId: number;
  readonly brokerEpoch: number;
  readonly topicId: string;
  readonly partition: number;
  /** The leader epoch and partition epoch the leader knows: a compare-and-set on both. */
  readonly leaderEpoch: number;
  readonly partitionEpoch: number;
  readonly newIsr: readonly number[];
}

export interface AlterPartitionReply {
  /** 0, or FENCED_LEADER_EPOCH / INVALID_REQUEST / NOT_LEADER_OR_FOLLOWER / UNKNOWN_TOPIC_OR_PARTITION / BROKER_NOT_AVAILABLE. */
  readonly errorCode: number;
  readonly errorMessage: string;
  /** The partition as the controller has it after the call (also on error, when the partition exists; -1 otherwise). */
  readonly leader: number;
  readonly leaderEpoch: number;
  readonly partitionEpoch: number;
  readonly isr: readonly number[];
}

export interface AllocateProducerIdsCall {
  readonly brokerId: number;
  readonly brokerEpoch: number;
}

export interface ProducerIdBlock {
  /** Ids [firstProducerId, firstProducerId + count) belong to the asking broker. */
  readonly firstProducerId: number;
  readonly count: number;
}

export interface ControllerChannel {
  registerBroker(request: RegisterBrokerCall): Promise<{ brokerEpoch: number }>;
  brokerHeartbeat(request: BrokerHeartbeatCall): Promise<BrokerHeartbeatReply>;
  /** ISR change by the partition leader (Kafka AlterPartition): compare-and-set on leaderEpoch + partitionEpoch. */
  alterPartition(request: AlterPartitionCall): Promise<AlterPartitionReply>;
  createTopics(request: CreateTopicsRequest): Promise<CreateTopicsResponse>;
  deleteTopics(request: DeleteTopicsRequest): Promise<DeleteTopicsResponse>;
  createPartitions(request: CreatePartitionsRequest): Promise<CreatePartitionsResponse>;
  /** A block of PRODUCER_ID_BLOCK_SIZE producer ids (1000). */
  allocateProducerIds(request: AllocateProducerIdsCall): Promise<ProducerIdBlock>;
}

/** Producer ids per block (Kafka's ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE). */
export const PRODUCER_ID_BLOCK_SIZE = 1000;

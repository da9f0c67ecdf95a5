/**
 * The cluster metadata log as the controller sees it: an ordered, durable sequence of
 * metadata records, one offset each, starting at 0. The single-node implementation is
 * LevelDB (./level-metadata-log.ts); the Raft-replicated one (./raft/) will implement
 * the same interface, so the Controller does not know which it runs on.
 *
 * Contract:
 * - `append` writes a batch atomically: after a crash either every record of the batch
 *   is in the log or none is. Records of one batch get consecutive offsets; batches are
 *   committed in the order `append` was called.
 * - A batch is *committed* once it is durable where the log's rules say (single node:
 *   fsynced to local disk; Raft: on a majority of voters). Only committed records are
 *   read or passed to listeners.
 * - Listeners see every committed batch exactly once, in offset order, without gaps,
 *   starting after the offset that was committed when they subscribed.
 * - `append` resolves with the batch's offsets after the batch is committed. It rejects
 *   with NOT_CONTROLLER when this node may not append (a Raft follower), and with
 *   KAFKA_STORAGE_ERROR when the disk failed; after a storage error the log refuses
 *   every later append (offsets could no longer be trusted).
 */
import type { CommittedRecord, MetadataImage, MetadataRecord } from "@flotilla/metadata";

export interface CommittedBatch {
  readonly baseOffset: number;
  /** baseOffset + records.length - 1. */
  readonly lastOffset: number;
  readonly records: readonly MetadataRecord[];
}

export type CommitListener = (batch: CommittedBatch) => void;

export interface MetadataLog {
  /** Offset of the last committed record, -1 when the log is empty. */
  committedOffset(): number;
  /** Appends `records` (1..METADATA_BATCH_RECORDS_MAX) as one batch; see the contract above. */
  append(records: readonly MetadataRecord[]): Promise<{ baseOffset: number; lastOffset: number }>;
  /** Committed records with offset >= fromOffset (up to the committed offset when called), in order. */
  read(fromOffset: number): AsyncIterable<CommittedRecord>;
  /** Subscribes to committed batches; returns the unsubscribe function. */
  onCommit(listener: CommitListener): () => void;
  /**
   * Whether this node may append now (it is the active controller). Logs without the
   * method (the single-node log) always may. A Raft log says yes only once the leader
   * has applied every entry of earlier terms, so that commands run on a current image.
   */
  isActive?(): boolean;
  /** "host:port" of the active controller's controller listener, when known. */
  activeAddress?(): string | undefined;
  /**
   * While this node is active: a number that changes each time it becomes active anew
   * (the Raft term it leads). The controller gives every broker a fresh session when it
   * changes, since it has heard no heartbeat in the new period. Logs without the method
   * are active in one period forever.
   */
  activeTerm?(): number;
  /**
   * The image as of the committed offset, for logs that keep one (the Raft log keeps it
   * for snapshots). The controller starts from it instead of replaying read(0).
   */
  currentImage?(): MetadataImage;
  /**
   * Subscribes to snapshot loads: the whole image was replaced (a lagging node got the
   * leader's snapshot). Listeners of onCommit then continue after `image.offset`.
   */
  onSnapshot?(listener: (image: MetadataImage) => void): () => void;
  /** Waits for appends in flight, then releases the storage. Appends after close reject. */
  close(): Promise<void>;
}

/** Most records one batch may hold (Kafka's controller caps one operation at 10,000 records). */
export const METADATA_BATCH_RECORDS_MAX = 10_000;

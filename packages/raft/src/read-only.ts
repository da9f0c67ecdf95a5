/**
 * Read index (Raft thesis §6.4): linearizable reads without writing to the log.
 *
 * The leader records its commit index when the request arrives, then proves it is still
 * the leader by a round of heartbeats carrying the request's context. Once a quorum of
 * voters answered, no newer leader can have committed anything the leader does not know,
 * so the read may be served once the state machine has applied the recorded index.
 *
 * Requests are confirmed in arrival order: an answer to a later request's heartbeat was
 * sent after every earlier request arrived, so it confirms those too.
 */
import { assert } from "@flotilla/common";
import type { NodeId, ReadState } from "./types.js";

interface PendingRead {
  readonly context: string;
  readonly index: number;
  readonly acks: Set<NodeId>;
}

export class ReadOnlyQueue {
  private readonly queue: PendingRead[] = [];
  private readonly byContext = new Map<string, PendingRead>();

  get size(): number {
    return this.queue.length;
  }

  has(context: string): boolean {
    return this.byContext.has(context);
  }

  add(context: string, index: number, self: NodeId): void {
    assert(!this.byContext.has(context), () => `read-index context "${context}" is already pending`);
    const read: PendingRead = { context, index, acks: new Set([self]) };
    this.queue.push(read);
    this.byContext.set(context, read);
  }

  /** The context of the newest request: heartbeats carry it, and its answers confirm all. */
  lastContext(): string | undefined {
    return this.queue[this.queue.length - 1]?.context;
  }

  /**
   * Records a voter's heartbeat answer for `context`. Returns the read states released by
   * it (this request and every earlier one) once `isQuorum` holds for its acks.
   */
  ack(context: string, from: NodeId, isQuorum: (acks: ReadonlySet<NodeId>) => boolean): ReadState[] {
    const read = this.byContext.get(context);
    if (read === undefined) return [];
    read.acks.add(from);
    if (!isQuorum(read.acks)) return [];
    const released: ReadState[] = [];
    while (this.queue.length > 0) {
      const head = this.queue.shift()!;
      this.byContext.delete(head.context);
      released.push({ context: head.context, index: head.index });
      if (head === read) break;
    }
    return released;
  }

  clear(): void {
    this.queue.length = 0;
    this.byContext.clear();
  }
}

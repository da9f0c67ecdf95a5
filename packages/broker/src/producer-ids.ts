/**
 * Producer ids for InitProducerId (Kafka's RPCProducerIdManager). The broker takes blocks of
 * ids from the active controller (AllocateProducerIds); each block is a ProducerIds metadata
 * record, so ids are unique in the cluster and never handed out twice, also across restarts of
 * any node. Ids are served from the current block; when it is PREFETCH_THRESHOLD used up the
 * next block is asked for in the background, so producers rarely wait for the controller.
 * One allocation is in flight at a time; its failure is the failure of the InitProducerId
 * calls that waited for it (they retry).
 */
import { FlotillaError, assert } from "@flotilla/common";
import type { Logger } from "@flotilla/common/logger";
import type { ProducerIdBlock } from "./controller-channel.js";

/** Fraction of a block used before the next one is fetched (Kafka's 0.9). */
export const PRODUCER_ID_PREFETCH_THRESHOLD = 0.9;

export class ProducerIdManager {
  private next = 0;
  private end = 0;
  private prefetched: ProducerIdBlock | undefined;
  private allocating: Promise<void> | undefined;
  private blockSize = 0;

  constructor(
    /** Asks the active controller for a block (ControllerChannel.allocateProducerIds with this broker's id and epoch). */
    private readonly allocate: () => Promise<ProducerIdBlock>,
    private readonly logger: Logger,
  ) {}

  /** A producer id no other producer of the cluster has or had. */
  async generateProducerId(): Promise<number> {
    // Bounded: each pass either returns or waits for one allocation, which installs a block
    // or throws; two passes are enough unless other callers drain a whole block meanwhile.
    for (let attempt = 0; attempt < 8; attempt++) {
      if (this.next >= this.end && this.prefetched) this.install(this.prefetched);
      if (this.next < this.end) {
        const id = this.next++;
        const remaining = this.end - this.next;
        if (!this.prefetched && !this.allocating && remaining < (1 - PRODUCER_ID_PREFETCH_THRESHOLD) * this.blockSize) {
          this.startAllocation().catch((err: unknown) => this.logger.warn({ err }, "prefetching a producer id block failed; will ask again"));
        }
        return id;
      }
      await this.startAllocation();
    }
    throw new FlotillaError("COORDINATOR_NOT_AVAILABLE", "producer ids ran out faster than the controller handed out blocks; try again");
  }

  private install(block: ProducerIdBlock): void {
    assert(block.count > 0 && block.firstProducerId >= 0, () => `the controller sent an empty producer id block ${JSON.stringify(block)}`);
    assert(block.firstProducerId >= this.end, () => `producer id block ${block.firstProducerId}+${block.count} starts below the previous block's end ${this.end}`);
    this.next = block.firstProducerId;
    this.end = block.firstProducerId + block.count;
    this.blockSize = block.count;
    this.prefetched = undefined;
  }

  private startAllocation(): Promise<void> {
    this.allocating ??= (async () => {
      try {
        const block = await this.allocate();
        this.logger.info({ firstProducerId: block.firstProducerId, count: block.count }, "got a producer id block from the controller");
        if (this.next >= this.end) this.install(block);
        else this.prefetched = block;
      } catch (err) {
        // Retriable for the client: the controller may be moving or briefly unreachable.
        if (err instanceof FlotillaError && err.retriable) throw err;
        throw new FlotillaError("COORDINATOR_NOT_AVAILABLE", `could not get producer ids from the controller: ${(err as Error).message}`, { cause: err });
      } finally {
        this.allocating = undefined;
      }
    })();
    return this.allocating;
  }
}

/**
 * A broker without the controller role follows the committed metadata log like a KRaft
 * observer: it long-polls FetchMetadata at the controller quorum and applies what comes
 * back to a local image. `FetchedMetadataLog` presents that as a MetadataLog that can
 * never append (NOT_CONTROLLER), so the node runs the same Controller class on it, which
 * forwards commands to the active controller and feeds the ReplicaManager from the image
 * exactly as on a voter.
 *
 * The loop: fetch(from = image.offset + 1, maxWaitMs) -> records (replayed as one
 * batch, offsets from `from`) or a snapshot (the image is replaced). Errors back off
 * (doubling up to FETCH_BACKOFF_MAX_MS) and the loop goes on until close().
 */
import { FlotillaError } from "@flotilla/common";
import type { Logger } from "@flotilla/common/logger";
import type { CommitListener, CommittedBatch, ControllerQuorumClient, MetadataLog } from "@flotilla/controller";
import { decodeImage } from "@flotilla/controller";
import { EMPTY_IMAGE, MetadataDelta, decodeRecord, type CommittedRecord, type MetadataImage, type MetadataRecord } from "@flotilla/metadata";

/** How long one FetchMetadata waits at the controller for new records. */
export const METADATA_FETCH_WAIT_MS = 2000;
const FETCH_BACKOFF_MIN_MS = 50;
const FETCH_BACKOFF_MAX_MS = 2000;

export class FetchedMetadataLog implements MetadataLog {
  private image: MetadataImage = EMPTY_IMAGE;
  private readonly commitListeners = new Set<CommitListener>();
  private readonly snapshotListeners = new Set<(image: MetadataImage) => void>();
  private closed = false;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly client: ControllerQuorumClient,
    private readonly logger: Logger,
  ) {}

  /** Starts following; resolves after the first successful fetch (or when `firstFetchTimeoutMs` passes). */
  async start(firstFetchTimeoutMs = 30_000): Promise<void> {
    let first!: () => void;
    const firstDone = new Promise<void>((resolve) => (first = resolve));
    this.loop = this.run(first);
    const timer = setTimeout(first, firstFetchTimeoutMs);
    await firstDone;
    clearTimeout(timer);
  }

  private async run(onFirst: () => void): Promise<void> {
    let backoffMs = FETCH_BACKOFF_MIN_MS;
    while (!this.closed) {
      try {
        const reply = await this.client.fetchMetadata(this.image.offset + 1, METADATA_FETCH_WAIT_MS);
        if (this.closed) return;
        if (reply.snapshot) this.loadSnapshot(decodeImage(reply.snapshot, "metadata snapshot from the controller"));
        else if (reply.records.length > 0) this.applyRecords(reply.records.map((r, i) => decodeRecord(r, `metadata record ${this.image.offset + 1 + i} from the controller`)));
        backoffMs = FETCH_BACKOFF_MIN_MS;
        onFirst();
      } catch (err) {
        if (this.closed) return;
        this.logger.warn({ err: (err as Error).message, offset: this.image.offset, backoffMs }, "metadata fetch failed; retrying");
        await new Promise((resolve) => setTimeout(resolve, backoffMs));
        backoffMs = Math.min(backoffMs * 2, FETCH_BACKOFF_MAX_MS);
      }
    }
  }

  private applyRecords(records: MetadataRecord[]): void {
    const baseOffset = this.image.offset + 1;
    const delta = new MetadataDelta(this.image);
    records.forEach((record, i) => delta.replay(record, baseOffset + i));
    this.image = delta.apply();
    const batch: CommittedBatch = Object.freeze({ baseOffset, lastOffset: this.image.offset, records: Object.freeze(records) });
    for (const listener of [...this.commitListeners]) listener(batch);
  }

  private loadSnapshot(image: MetadataImage): void {
    if (image.offset <= this.image.offset) return;
    this.image = image;
    for (const listener of [...this.snapshotListeners]) listener(image);
  }

  committedOffset(): number {
    return this.image.offset;
  }

  currentImage(): MetadataImage {
    return this.image;
  }

  isActive(): boolean {
    return false;
  }

  activeAddress(): string | undefined {
    return this.client.activeControllerAddress ?? this.client.leaderAddress;
  }

  append(): Promise<{ baseOffset: number; lastOffset: number }> {
    return Promise.reject(new FlotillaError("NOT_CONTROLLER", "a broker-only node follows the metadata log and cannot append to it", { leaderHint: this.client.leaderAddress }));
  }

  // eslint-disable-next-line require-yield
  async *read(): AsyncIterable<CommittedRecord> {
    throw new FlotillaError("OFFSET_OUT_OF_RANGE", "a broker-only node keeps the metadata image, not the records");
  }

  onCommit(listener: CommitListener): () => void {
    this.commitListeners.add(listener);
    return () => this.commitListeners.delete(listener);
  }

  onSnapshot(listener: (image: MetadataImage) => void): () => void {
    this.snapshotListeners.add(listener);
    return () => this.snapshotListeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // The loop sees `closed` after its current long-poll (or when the owner closes the
    // client, at once); nothing it does after that reaches the listeners.
    this.commitListeners.clear();
    this.snapshotListeners.clear();
  }
}

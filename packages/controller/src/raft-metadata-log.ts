/**
 * The metadata log on the Raft quorum (KRaft's metadata partition): implements
 * MetadataLog for the Controller and StateMachine for the RaftDriver.
 *
 * - `append` proposes ONE Raft entry holding the whole batch, so a batch commits
 *   atomically; it resolves once the entry is committed and applied here. On a follower
 *   it rejects with NOT_CONTROLLER and the leader's controller address as hint.
 * - Every voter applies committed entries in index order: records get consecutive
 *   metadata offsets (offset = position among all records ever committed, the same on
 *   every voter), are replayed into the image this log keeps, and go to the listeners.
 * - Snapshots are the image (./image-snapshot.ts); the driver takes one every
 *   `snapshotEveryEntries` entries and compacts the Raft log, and a restarted or lagging
 *   voter loads one (listeners of onSnapshot learn of it).
 * - The most recent committed records (up to RECENT_RECORDS_MAX) stay in memory so that
 *   brokers following the log (FetchMetadata) get records; one further behind gets the
 *   image instead.
 *
 * Entry layout (big-endian): version u8 (=1) | count u32 | count x (length u32 | record),
 * each record in the @flotilla/metadata codec.
 *
 * The Raft leader is the active controller only once it has applied every entry of the
 * earlier terms (its own no-op is applied), so commands never run on a stale image.
 */
import path from "node:path";
import { assert, FlotillaError } from "@flotilla/common";
import type { Logger } from "@flotilla/common/logger";
import { EMPTY_IMAGE, MetadataDelta, decodeRecord, encodeRecord, type CommittedRecord, type MetadataImage, type MetadataRecord } from "@flotilla/metadata";
import { RaftCore, type Entry, type NodeId, type SoftState } from "@flotilla/raft";
import { decodeImage, encodeImage } from "./image-snapshot.js";
import { METADATA_BATCH_RECORDS_MAX, type CommitListener, type CommittedBatch, type MetadataLog } from "./metadata-log.js";
import { RaftDriver, type StateMachine } from "./raft/driver.js";
import { openLevelRaftStorage } from "./raft/storage-level.js";
import type { KvRaftStorage } from "./raft/storage.js";
import { GrpcRaftTransport } from "./raft/transport.js";

const ENTRY_VERSION = 1;
/** Committed records kept in memory for FetchMetadata. */
export const RECENT_RECORDS_MAX = 20_000;
/** Raft index -> offsets of batches applied here, for append() to answer; oldest dropped past this. */
const APPLIED_INDEX_MAX = 4096;

export function encodeEntry(records: readonly MetadataRecord[]): Uint8Array {
  const encoded = records.map((r) => encodeRecord(r));
  const out = Buffer.alloc(5 + encoded.reduce((n, e) => n + 4 + e.byteLength, 0));
  out.writeUInt8(ENTRY_VERSION, 0);
  out.writeUInt32BE(encoded.length, 1);
  let at = 5;
  for (const e of encoded) {
    out.writeUInt32BE(e.byteLength, at);
    out.set(e, at + 4);
    at += 4 + e.byteLength;
  }
  return out;
}

export function decodeEntry(data: Uint8Array, where: string): MetadataRecord[] {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (buf.byteLength < 5) throw new FlotillaError("STORAGE_CORRUPT", `${where}: ${buf.byteLength} bytes, shorter than the header`);
  if (buf.readUInt8(0) !== ENTRY_VERSION) throw new FlotillaError("STORAGE_CORRUPT", `${where}: entry version ${buf.readUInt8(0)}, want ${ENTRY_VERSION}`);
  const count = buf.readUInt32BE(1);
  const records: MetadataRecord[] = [];
  let at = 5;
  for (let i = 0; i < count; i++) {
    if (at + 4 > buf.byteLength) throw new FlotillaError("STORAGE_CORRUPT", `${where}: truncated before record ${i}`);
    const length = buf.readUInt32BE(at);
    if (at + 4 + length > buf.byteLength) throw new FlotillaError("STORAGE_CORRUPT", `${where}: record ${i} runs past the entry`);
    records.push(decodeRecord(buf.subarray(at + 4, at + 4 + length), `${where}, record ${i}`));
    at += 4 + length;
  }
  if (at !== buf.byteLength) throw new FlotillaError("STORAGE_CORRUPT", `${where}: ${buf.byteLength - at} bytes after ${count} records`);
  return records;
}

export interface RaftMetadataLogOptions {
  readonly nodeId: NodeId;
  /** Voter id -> "host:port" of its controller listener. */
  readonly voters: ReadonlyMap<NodeId, string>;
  /** Directory for the Raft log, hard state and snapshots. */
  readonly dir: string;
  readonly logger: Logger;
  readonly tickMs?: number;
  readonly electionTicks?: number;
  readonly snapshotEveryEntries?: number;
  readonly proposalTimeoutMs?: number;
}

/** What FetchMetadata answers: records after the asked offset, or the whole image when they are gone from memory. */
export type MetadataFetchResult =
  | { readonly kind: "records"; readonly records: readonly CommittedRecord[]; readonly committedOffset: number }
  | { readonly kind: "snapshot"; readonly image: MetadataImage; readonly committedOffset: number };

export interface VoterStatus {
  readonly id: NodeId;
  readonly address: string;
  /** Leader's view: highest Raft index known replicated there; -1 when this node is not the leader. */
  readonly matchIndex: number;
  /** lastIndex - matchIndex at the leader; -1 when unknown. */
  readonly lag: number;
}

export interface QuorumStatus {
  readonly nodeId: NodeId;
  readonly leaderId: NodeId;
  readonly term: number;
  readonly role: string;
  readonly commitIndex: number;
  readonly lastIndex: number;
  readonly voters: readonly VoterStatus[];
}

export class RaftMetadataLog implements MetadataLog, StateMachine {
  private image: MetadataImage = EMPTY_IMAGE;
  private readonly commitListeners = new Set<CommitListener>();
  private readonly snapshotListeners = new Set<(image: MetadataImage) => void>();
  private readonly offsetWaiters = new Set<() => void>();
  private readonly leaderListeners = new Set<(leaderId: NodeId, address: string | undefined) => void>();
  private knownLeaderId: NodeId = 0;
  private recent: CommittedRecord[] = [];
  private readonly appliedByIndex = new Map<number, { baseOffset: number; lastOffset: number }>();
  private leaderTerm = 0;
  private leaderSinceIndex = Number.MAX_SAFE_INTEGER;
  private closed = false;
  driver!: RaftDriver;

  private constructor(
    private readonly options: RaftMetadataLogOptions,
    private readonly storage: KvRaftStorage,
    readonly transport: GrpcRaftTransport,
  ) {}

  /**
   * Opens the Raft storage in `dir`, loads the last snapshot and starts the driver. The
   * caller registers the Raft transport service on its controller gRPC server with
   * `message => log.driver.receive(message)`.
   */
  static async open(options: RaftMetadataLogOptions): Promise<RaftMetadataLog> {
    const storage = await openLevelRaftStorage(path.join(options.dir));
    const peers = new Map([...options.voters].filter(([id]) => id !== options.nodeId));
    const transport = new GrpcRaftTransport({ selfId: options.nodeId, peers, logger: options.logger.child({ component: "raft-transport" }) });
    const log = new RaftMetadataLog(options, storage, transport);
    log.driver = new RaftDriver({
      id: options.nodeId,
      voters: options.voters,
      storage,
      transport,
      stateMachine: log,
      logger: options.logger.child({ component: "raft" }),
      createCore: (config) => new RaftCore(config),
      tickMs: options.tickMs ?? 50,
      electionTicks: options.electionTicks ?? 10,
      snapshotEveryEntries: options.snapshotEveryEntries ?? 1000,
      proposalTimeoutMs: options.proposalTimeoutMs ?? 5000,
      onSoftState: (state) => log.onSoftState(state),
    });
    return log;
  }

  private onSoftState(state: SoftState): void {
    if (state.role === "leader" && state.term !== this.leaderTerm) {
      this.leaderTerm = state.term;
      // The new leader's no-op is its last entry now; once applied, every earlier entry is.
      this.leaderSinceIndex = this.driver.status().lastIndex;
    }
    if (state.leader !== this.knownLeaderId) {
      this.knownLeaderId = state.leader;
      if (state.leader !== 0) {
        const address = this.options.voters.get(state.leader);
        for (const listener of [...this.leaderListeners]) {
          try {
            listener(state.leader, address);
          } catch (err) {
            this.options.logger.error({ err, leaderId: state.leader }, "metadata quorum leader listener threw");
          }
        }
      }
    }
  }

  /**
   * Calls `listener` whenever this voter learns of a new Raft leader (Kafka's
   * RaftClient.Listener.handleLeaderChange): its id and controller address. Returns the
   * unsubscribe function.
   */
  onLeaderChange(listener: (leaderId: NodeId, address: string | undefined) => void): () => void {
    this.leaderListeners.add(listener);
    return () => this.leaderListeners.delete(listener);
  }

  /** The Raft leader as this voter knows it (the active controller once it has applied its no-op); -1 when unknown. */
  leaderId(): NodeId {
    const leader = this.driver.status().leader;
    return leader === 0 ? -1 : leader;
  }

  /** The term in which this voter became leader, while it is the leader; 0 otherwise. */
  activeTerm(): number {
    return this.isActive() ? this.leaderTerm : 0;
  }

  // --- StateMachine (called by the driver's ready loop) ---

  apply(entry: Entry): void {
    if (entry.data.byteLength === 0) return;
    const records = decodeEntry(entry.data, `metadata raft entry ${entry.index} (term ${entry.term})`);
    assert(records.length > 0, `metadata raft entry ${entry.index} holds no records`);
    const baseOffset = this.image.offset + 1;
    const delta = new MetadataDelta(this.image);
    records.forEach((record, i) => delta.replay(record, baseOffset + i));
    this.image = delta.apply();
    const lastOffset = this.image.offset;
    this.appliedByIndex.set(entry.index, { baseOffset, lastOffset });
    if (this.appliedByIndex.size > APPLIED_INDEX_MAX) this.appliedByIndex.delete(this.appliedByIndex.keys().next().value as number);
    records.forEach((record, i) => this.recent.push({ offset: baseOffset + i, record }));
    if (this.recent.length > RECENT_RECORDS_MAX * 2) this.recent = this.recent.slice(-RECENT_RECORDS_MAX);
    const batch: CommittedBatch = Object.freeze({ baseOffset, lastOffset, records: Object.freeze(records) });
    for (const listener of [...this.commitListeners]) listener(batch);
    this.wakeOffsetWaiters();
  }

  snapshot(): Uint8Array {
    return encodeImage(this.image);
  }

  restore(data: Uint8Array): void {
    this.image = decodeImage(data, `metadata snapshot in ${this.options.dir}`);
    this.recent = [];
    for (const listener of [...this.snapshotListeners]) listener(this.image);
    this.wakeOffsetWaiters();
  }

  // --- MetadataLog ---

  committedOffset(): number {
    return this.image.offset;
  }

  currentImage(): MetadataImage {
    return this.image;
  }

  isActive(): boolean {
    if (this.closed) return false;
    const status = this.driver.status();
    return status.role === "leader" && status.term === this.leaderTerm && status.applied >= this.leaderSinceIndex;
  }

  activeAddress(): string | undefined {
    return this.driver.leaderAddress();
  }

  async append(records: readonly MetadataRecord[]): Promise<{ baseOffset: number; lastOffset: number }> {
    assert(records.length > 0 && records.length <= METADATA_BATCH_RECORDS_MAX, `metadata batch of ${records.length} records (1..${METADATA_BATCH_RECORDS_MAX})`);
    if (this.closed) throw new FlotillaError("SHUTTING_DOWN", "the metadata log is closed");
    if (!this.isActive()) {
      const hint = this.activeAddress();
      throw new FlotillaError("NOT_CONTROLLER", `node ${this.options.nodeId} is not the active controller${hint ? `; the leader is at ${hint}` : ""}`, hint ? { leaderHint: hint } : {});
    }
    const { index } = await this.driver.propose(encodeEntry(records));
    const offsets = this.appliedByIndex.get(index);
    assert(offsets !== undefined, `metadata entry ${index} committed but its offsets are unknown`);
    this.appliedByIndex.delete(index);
    return offsets;
  }

  async *read(fromOffset: number): AsyncIterable<CommittedRecord> {
    const first = this.recent[0]?.offset ?? this.image.offset + 1;
    if (fromOffset < first && fromOffset <= this.image.offset) {
      throw new FlotillaError("OFFSET_OUT_OF_RANGE", `metadata records before offset ${first} are only in the snapshot`);
    }
    for (const r of [...this.recent]) if (r.offset >= fromOffset) yield r;
  }

  onCommit(listener: CommitListener): () => void {
    this.commitListeners.add(listener);
    return () => this.commitListeners.delete(listener);
  }

  onSnapshot(listener: (image: MetadataImage) => void): () => void {
    this.snapshotListeners.add(listener);
    return () => this.snapshotListeners.delete(listener);
  }

  private wakeOffsetWaiters(): void {
    const waiters = [...this.offsetWaiters];
    this.offsetWaiters.clear();
    for (const w of waiters) w();
  }

  /**
   * FetchMetadata: committed records with offset >= fromOffset (at most `maxRecords`),
   * waiting up to `maxWaitMs` when there are none yet; the image when fromOffset is
   * older than the records kept in memory.
   */
  async fetch(fromOffset: number, maxWaitMs: number, maxRecords: number, signal?: AbortSignal): Promise<MetadataFetchResult> {
    if (fromOffset > this.image.offset && maxWaitMs > 0 && !this.closed) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.offsetWaiters.delete(done);
          signal?.removeEventListener("abort", done);
          resolve();
        };
        const timer = setTimeout(done, maxWaitMs);
        this.offsetWaiters.add(done);
        signal?.addEventListener("abort", done);
      });
    }
    const committedOffset = this.image.offset;
    const first = this.recent[0]?.offset ?? committedOffset + 1;
    if (fromOffset < first && fromOffset <= committedOffset) return { kind: "snapshot", image: this.image, committedOffset };
    const start = this.recent.findIndex((r) => r.offset >= fromOffset);
    const records = start < 0 ? [] : this.recent.slice(start, start + maxRecords);
    return { kind: "records", records, committedOffset };
  }

  quorumStatus(): QuorumStatus {
    const s = this.driver.status();
    const voters: VoterStatus[] = [...this.options.voters].sort(([a], [b]) => a - b).map(([id, address]) => {
      const match = id === s.id && s.role === "leader" ? s.lastIndex : (s.progress?.[id]?.match ?? -1);
      return { id, address, matchIndex: match, lag: match < 0 ? -1 : Math.max(0, s.lastIndex - match) };
    });
    return { nodeId: s.id, leaderId: s.leader, term: s.term, role: s.role, commitIndex: s.commit, lastIndex: s.lastIndex, voters };
  }

  /** Hands leadership away when leader (unless `leadership: "abandon"`), stops Raft, closes transport and storage. */
  async close(options: { leadership?: "transfer" | "abandon" } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.leaderListeners.clear();
    await this.driver.stop({ leadership: options.leadership ?? "transfer", transferTimeoutMs: 2000 });
    this.wakeOffsetWaiters();
    this.commitListeners.clear();
    this.snapshotListeners.clear();
    await this.transport.close();
    await this.storage.close();
  }
}

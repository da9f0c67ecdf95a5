/**
 * The two sparse per-segment indexes, held in memory and written to disk whole.
 *
 * `.index` (offset index): entries of 8 bytes, big-endian, back to back, no header:
 *
 *     0  4  relativeOffset  int32  baseOffset of an indexed batch minus the segment's base offset
 *     4  4  position        int32  byte position of that batch in the segment's .log
 *
 *   Both columns strictly increase. An entry is added for a batch once at least
 *   `indexIntervalBytes` of log have been written since the previous entry (the first batch,
 *   at position 0, needs none). To find offset `o`, take the last entry with
 *   relativeOffset <= o - base (or position 0 if there is none) and walk batch headers forward.
 *   Kafka keys entries by the batch's last offset; keying by the base offset is equivalent for
 *   lookups and lets a reader check an entry against the header it points to.
 *
 * `.timeindex` (time index): entries of 12 bytes, big-endian, no header:
 *
 *     0  8  timestamp       int64  largest batch maxTimestamp in the segment up to and including the batch below
 *     8  4  relativeOffset  int32  baseOffset of that batch minus the segment's base offset
 *
 *   Timestamps strictly increase. An entry is added with each offset-index entry when the
 *   running maximum grew, and once more when the segment is closed (roll or shutdown) so the
 *   last entry holds the segment's largest timestamp. Every batch up to and including the one
 *   named by an entry has maxTimestamp <= the entry's timestamp; so for a target `t`, the last
 *   entry with timestamp < t names a batch the answer lies strictly after.
 *
 * Both files may be one entry longer than `segmentIndexBytes` allows: the closing time-index
 * entry is never refused, as in Kafka.
 */

export const OFFSET_INDEX_ENTRY_BYTES = 8;
export const TIME_INDEX_ENTRY_BYTES = 12;

const INITIAL_CAPACITY = 64;

function grow<T extends Int32Array | Float64Array>(array: T, needed: number, make: (n: number) => T): T {
  if (needed <= array.length) return array;
  let capacity = Math.max(INITIAL_CAPACITY, array.length);
  while (capacity < needed) capacity *= 2;
  const next = make(capacity);
  next.set(array);
  return next;
}

export class OffsetIndex {
  private relOffsets = new Int32Array(INITIAL_CAPACITY);
  private positions = new Int32Array(INITIAL_CAPACITY);
  private count = 0;

  constructor(readonly maxEntries: number) {}

  get entries(): number {
    return this.count;
  }

  isFull(): boolean {
    return this.count >= this.maxEntries;
  }

  /** Adds an entry; returns false (and adds nothing) when the index is full. Entries must increase. */
  append(relativeOffset: number, position: number): boolean {
    if (this.isFull()) return false;
    if (this.count > 0 && (relativeOffset <= this.relOffsets[this.count - 1]! || position <= this.positions[this.count - 1]!)) {
      throw new RangeError(`offset index entry (${relativeOffset}, ${position}) does not follow the last entry`);
    }
    this.relOffsets = grow(this.relOffsets, this.count + 1, (n) => new Int32Array(n));
    this.positions = grow(this.positions, this.count + 1, (n) => new Int32Array(n));
    this.relOffsets[this.count] = relativeOffset;
    this.positions[this.count] = position;
    this.count++;
    return true;
  }

  /** The last entry with relativeOffset <= target, or undefined when the target precedes every entry. */
  floor(relativeOffset: number): { relativeOffset: number; position: number } | undefined {
    let lo = 0;
    let hi = this.count - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.relOffsets[mid]! <= relativeOffset) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found < 0 ? undefined : { relativeOffset: this.relOffsets[found]!, position: this.positions[found]! };
  }

  last(): { relativeOffset: number; position: number } | undefined {
    return this.count === 0 ? undefined : { relativeOffset: this.relOffsets[this.count - 1]!, position: this.positions[this.count - 1]! };
  }

  /** Drops every entry whose position is >= `position` (the log was truncated there). */
  truncateToPosition(position: number): void {
    while (this.count > 0 && this.positions[this.count - 1]! >= position) this.count--;
  }

  encode(): Buffer {
    const buf = Buffer.allocUnsafe(this.count * OFFSET_INDEX_ENTRY_BYTES);
    for (let i = 0; i < this.count; i++) {
      buf.writeInt32BE(this.relOffsets[i]!, i * OFFSET_INDEX_ENTRY_BYTES);
      buf.writeInt32BE(this.positions[i]!, i * OFFSET_INDEX_ENTRY_BYTES + 4);
    }
    return buf;
  }

  /**
   * Parses a .index file. Returns undefined when it is not a whole number of entries, not
   * strictly increasing, or points at or past `logBytes`: the caller then rebuilds it.
   */
  static decode(buf: Buffer, maxEntries: number, logBytes: number): OffsetIndex | undefined {
    if (buf.length % OFFSET_INDEX_ENTRY_BYTES !== 0) return undefined;
    const n = buf.length / OFFSET_INDEX_ENTRY_BYTES;
    // An index written under a larger segment.index.bytes stays readable after a config change.
    const index = new OffsetIndex(Math.max(maxEntries, n));
    index.relOffsets = new Int32Array(Math.max(INITIAL_CAPACITY, n));
    index.positions = new Int32Array(Math.max(INITIAL_CAPACITY, n));
    for (let i = 0; i < n; i++) {
      const rel = buf.readInt32BE(i * OFFSET_INDEX_ENTRY_BYTES);
      const pos = buf.readInt32BE(i * OFFSET_INDEX_ENTRY_BYTES + 4);
      if (rel <= 0 || pos <= 0 || pos >= logBytes) return undefined;
      if (i > 0 && (rel <= index.relOffsets[i - 1]! || pos <= index.positions[i - 1]!)) return undefined;
      index.relOffsets[i] = rel;
      index.positions[i] = pos;
    }
    index.count = n;
    return index;
  }
}

export class TimeIndex {
  private timestamps = new Float64Array(INITIAL_CAPACITY);
  private relOffsets = new Int32Array(INITIAL_CAPACITY);
  private count = 0;

  constructor(readonly maxEntries: number) {}

  get entries(): number {
    return this.count;
  }

  /** Full while fewer than one slot is left: that slot is kept for the closing entry. */
  isFull(): boolean {
    return this.count >= this.maxEntries - 1;
  }

  /**
   * Adds (timestamp, relativeOffset) if the timestamp is larger than the last one. The
   * closing entry passes `closing` so it is written even when the index is full.
   */
  maybeAppend(timestamp: number, relativeOffset: number, closing = false): void {
    // -1 is RecordBatch.NO_TIMESTAMP: nothing to index.
    if (timestamp < 0) return;
    if (this.count > 0 && timestamp <= this.timestamps[this.count - 1]!) return;
    if (!closing && this.isFull()) return;
    if (this.count > 0 && relativeOffset < this.relOffsets[this.count - 1]!) {
      throw new RangeError(`time index entry offset ${relativeOffset} precedes the last entry's`);
    }
    this.timestamps = grow(this.timestamps, this.count + 1, (n) => new Float64Array(n));
    this.relOffsets = grow(this.relOffsets, this.count + 1, (n) => new Int32Array(n));
    this.timestamps[this.count] = timestamp;
    this.relOffsets[this.count] = relativeOffset;
    this.count++;
  }

  /** The relative offset of the last entry with timestamp < target, or undefined when none is. */
  lastBefore(timestamp: number): number | undefined {
    let lo = 0;
    let hi = this.count - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.timestamps[mid]! < timestamp) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found < 0 ? undefined : this.relOffsets[found]!;
  }

  last(): { timestamp: number; relativeOffset: number } | undefined {
    return this.count === 0 ? undefined : { timestamp: this.timestamps[this.count - 1]!, relativeOffset: this.relOffsets[this.count - 1]! };
  }

  /** Drops every entry naming a batch at or after `relativeOffset`. */
  truncateToOffset(relativeOffset: number): void {
    while (this.count > 0 && this.relOffsets[this.count - 1]! >= relativeOffset) this.count--;
  }

  encode(): Buffer {
    const buf = Buffer.allocUnsafe(this.count * TIME_INDEX_ENTRY_BYTES);
    for (let i = 0; i < this.count; i++) {
      buf.writeBigInt64BE(BigInt(this.timestamps[i]!), i * TIME_INDEX_ENTRY_BYTES);
      buf.writeInt32BE(this.relOffsets[i]!, i * TIME_INDEX_ENTRY_BYTES + 8);
    }
    return buf;
  }

  /**
   * Parses a .timeindex file. Returns undefined when it is not a whole number of entries, not
   * increasing, or names an offset at or past `relativeOffsetEnd`: the caller rebuilds it.
   */
  static decode(buf: Buffer, maxEntries: number, relativeOffsetEnd: number): TimeIndex | undefined {
    if (buf.length % TIME_INDEX_ENTRY_BYTES !== 0) return undefined;
    const n = buf.length / TIME_INDEX_ENTRY_BYTES;
    const index = new TimeIndex(Math.max(maxEntries, n + 1));
    index.timestamps = new Float64Array(Math.max(INITIAL_CAPACITY, n));
    index.relOffsets = new Int32Array(Math.max(INITIAL_CAPACITY, n));
    for (let i = 0; i < n; i++) {
      const ts = Number(buf.readBigInt64BE(i * TIME_INDEX_ENTRY_BYTES));
      const rel = buf.readInt32BE(i * TIME_INDEX_ENTRY_BYTES + 8);
      if (ts < 0 || rel < 0 || rel >= relativeOffsetEnd) return undefined;
      if (i > 0 && (ts <= index.timestamps[i - 1]! || rel < index.relOffsets[i - 1]!)) return undefined;
      index.timestamps[i] = ts;
      index.relOffsets[i] = rel;
    }
    index.count = n;
    return index;
  }
}

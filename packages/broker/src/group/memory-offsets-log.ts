/**
 * An in-memory OffsetsLog for tests: batches get consecutive offsets as a partition log
 * would give them (baseOffset rewritten; it is outside the CRC), reads return whole
 * batches. `hold()` parks appends and reads until released, to observe that calls wait for
 * durability; `failWith` makes appends fail.
 */
import { FlotillaError } from "@flotilla/common";
import { readBatchHeader, setBaseOffset } from "@flotilla/protocol";
import type { OffsetsLog } from "./coordinator.js";

interface StoredBatch {
  readonly baseOffset: number;
  readonly lastOffset: number;
  readonly bytes: Buffer;
}

export class MemoryOffsetsLog implements OffsetsLog {
  private readonly partitions = new Map<number, StoredBatch[]>();
  private held: (() => void)[] | undefined;
  failWith: FlotillaError | undefined;
  appends = 0;

  private batches(partition: number): StoredBatch[] {
    let list = this.partitions.get(partition);
    if (!list) this.partitions.set(partition, (list = []));
    return list;
  }

  /** Parks appends and reads from now on until `release()`. */
  hold(): void {
    this.held ??= [];
  }

  release(): void {
    const waiting = this.held ?? [];
    this.held = undefined;
    for (const w of waiting) w();
  }

  async append(partition: number, batch: Buffer): Promise<number> {
    if (this.held) await new Promise<void>((resolve) => this.held?.push(resolve));
    if (this.failWith) throw this.failWith;
    const list = this.batches(partition);
    const base = list.length === 0 ? 0 : list[list.length - 1]!.lastOffset + 1;
    const bytes = Buffer.from(batch);
    setBaseOffset(bytes, 0, base);
    const header = readBatchHeader(bytes, 0);
    list.push({ baseOffset: base, lastOffset: base + header.lastOffsetDelta, bytes });
    this.appends++;
    return base;
  }

  range(partition: number): { logStartOffset: number; logEndOffset: number } {
    const list = this.batches(partition);
    return { logStartOffset: list[0]?.baseOffset ?? 0, logEndOffset: list.length === 0 ? 0 : list[list.length - 1]!.lastOffset + 1 };
  }

  async read(partition: number, offset: number, maxBytes: number): Promise<Buffer> {
    if (this.held) await new Promise<void>((resolve) => this.held?.push(resolve));
    const out: Buffer[] = [];
    let bytes = 0;
    for (const b of this.batches(partition)) {
      if (b.lastOffset < offset) continue;
      if (out.length > 0 && bytes + b.bytes.length > maxBytes) break;
      out.push(b.bytes);
      bytes += b.bytes.length;
    }
    return Buffer.concat(out);
  }
}

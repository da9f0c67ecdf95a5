/**
 * The quorum's test state machine: an append-only list of every applied entry, kept in
 * memory and carried across restarts by Raft snapshots (plus replay of the log after
 * them). Integration tests and the benchmark compare these lists across nodes.
 *
 * Snapshot layout (big-endian):
 *   version u8 (=1) | count u32 | count x ( index u64 | term u64 | length u32 | data )
 */
import { FlotillaError } from "@flotilla/common";
import type { Entry } from "@flotilla/raft";
import type { StateMachine } from "./driver.js";

export interface AppliedItem {
  /** Raft index and term of the entry that appended this item. */
  readonly index: number;
  readonly term: number;
  readonly data: Uint8Array;
}

const FORMAT_VERSION = 1;
const ITEM_HEADER_BYTES = 8 + 8 + 4;

function setU64(dv: DataView, at: number, v: number): void {
  dv.setUint32(at, Math.floor(v / 0x1_0000_0000));
  dv.setUint32(at + 4, v >>> 0);
}
function getU64(dv: DataView, at: number): number {
  return dv.getUint32(at) * 0x1_0000_0000 + dv.getUint32(at + 4);
}

export class AppendOnlyListMachine implements StateMachine {
  private items: AppliedItem[] = [];

  apply(entry: Entry): void {
    // Copy: the entry's bytes may be a view into a gRPC or LevelDB buffer.
    this.items.push({ index: entry.index, term: entry.term, data: entry.data.slice() });
  }

  get size(): number {
    return this.items.length;
  }

  /** Items at positions [from, from + max). */
  slice(from: number, max: number): readonly AppliedItem[] {
    return this.items.slice(from, from + max);
  }

  snapshot(): Uint8Array {
    let bytes = 1 + 4;
    for (const item of this.items) bytes += ITEM_HEADER_BYTES + item.data.byteLength;
    const out = new Uint8Array(bytes);
    const dv = new DataView(out.buffer);
    dv.setUint8(0, FORMAT_VERSION);
    dv.setUint32(1, this.items.length);
    let at = 5;
    for (const item of this.items) {
      setU64(dv, at, item.index);
      setU64(dv, at + 8, item.term);
      dv.setUint32(at + 16, item.data.byteLength);
      out.set(item.data, at + ITEM_HEADER_BYTES);
      at += ITEM_HEADER_BYTES + item.data.byteLength;
    }
    return out;
  }

  restore(data: Uint8Array): void {
    const bad = (why: string): FlotillaError => new FlotillaError("STORAGE_CORRUPT", `test state machine snapshot: ${why}`);
    const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
    if (data.byteLength < 5) throw bad(`${data.byteLength} bytes, shorter than its header`);
    if (dv.getUint8(0) !== FORMAT_VERSION) throw bad(`unknown format version ${dv.getUint8(0)}`);
    const count = dv.getUint32(1);
    const items: AppliedItem[] = [];
    let at = 5;
    for (let i = 0; i < count; i++) {
      if (at + ITEM_HEADER_BYTES > data.byteLength) throw bad(`truncated in the header of item ${i}`);
      const length = dv.getUint32(at + 16);
      if (at + ITEM_HEADER_BYTES + length > data.byteLength) throw bad(`truncated in the data of item ${i}`);
      items.push({ index: getU64(dv, at), term: getU64(dv, at + 8), data: data.slice(at + ITEM_HEADER_BYTES, at + ITEM_HEADER_BYTES + length) });
      at += ITEM_HEADER_BYTES + length;
    }
    if (at !== data.byteLength) throw bad(`${data.byteLength - at} bytes left after ${count} items`);
    this.items = items;
  }
}

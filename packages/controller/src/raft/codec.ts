/**
 * Byte layouts of what the Raft driver stores in LevelDB. All integers are big-endian.
 * Every value starts with a format version byte so a later layout can be told apart.
 *
 * Log key (sublevel "log"):      index u64                              8 bytes
 *   Fixed-width big-endian, so LevelDB's byte order equals numeric order.
 *
 * Entry value (sublevel "log"):
 *   version u8 (=1) | type u8 (0 normal, 1 noop) | term u64 | index u64 | data (rest)
 *   The index is repeated inside the value so that start-up can check it against the key.
 *
 * HardState value (sublevel "hard-state", key "current"):
 *   version u8 (=1) | term u64 | vote u32 | commit u64                  21 bytes
 *
 * Snapshot value (sublevel "snapshot", key "current"):
 *   version u8 (=1) | index u64 | term u64 | voterCount u32 | voters u32 x voterCount
 *   | observerCount u32 | observers u32 x observerCount | data (rest)
 *
 * Decoders throw FlotillaError STORAGE_CORRUPT naming what is wrong; they never return
 * a half-decoded value.
 */
import { FlotillaError } from "@flotilla/common";
import type { Entry, EntryType, HardState, Snapshot } from "@flotilla/raft";

const FORMAT_VERSION = 1;
const ENTRY_HEADER_BYTES = 1 + 1 + 8 + 8;
const HARD_STATE_BYTES = 1 + 8 + 4 + 8;
/** Largest id count a snapshot header may claim; guards against garbage lengths. */
const SNAPSHOT_MEMBERS_MAX = 1024;

function corrupt(what: string): FlotillaError {
  return new FlotillaError("STORAGE_CORRUPT", what);
}

function checkU64(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${what} must be a non-negative safe integer, got ${value}`);
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function setU64(dv: DataView, offset: number, value: number): void {
  dv.setUint32(offset, Math.floor(value / 0x1_0000_0000));
  dv.setUint32(offset + 4, value >>> 0);
}

function getU64(dv: DataView, offset: number, what: string): number {
  const hi = dv.getUint32(offset);
  const lo = dv.getUint32(offset + 4);
  // Anything above 2^53 cannot be a term or index we wrote.
  if (hi > 0x1f_ffff) throw corrupt(`${what} is larger than 2^53`);
  return hi * 0x1_0000_0000 + lo;
}

/** A log index as an 8-byte big-endian key. */
export function encodeIndexKey(index: number): Uint8Array {
  checkU64(index, "log index");
  const out = new Uint8Array(8);
  setU64(view(out), 0, index);
  return out;
}

export function decodeIndexKey(key: Uint8Array): number {
  if (key.byteLength !== 8) throw corrupt(`log key has ${key.byteLength} bytes, expected 8`);
  return getU64(view(key), 0, "log key");
}

const ENTRY_TYPE_CODES: Record<EntryType, number> = { normal: 0, noop: 1 };
const ENTRY_TYPES: readonly EntryType[] = ["normal", "noop"];

export function encodeEntry(entry: Entry): Uint8Array {
  checkU64(entry.term, "entry term");
  checkU64(entry.index, "entry index");
  const out = new Uint8Array(ENTRY_HEADER_BYTES + entry.data.byteLength);
  const dv = view(out);
  dv.setUint8(0, FORMAT_VERSION);
  dv.setUint8(1, ENTRY_TYPE_CODES[entry.type]);
  setU64(dv, 2, entry.term);
  setU64(dv, 10, entry.index);
  out.set(entry.data, ENTRY_HEADER_BYTES);
  return out;
}

/** `where` names the key for the error message, e.g. "log entry at key 42". */
export function decodeEntry(bytes: Uint8Array, where: string): Entry {
  if (bytes.byteLength < ENTRY_HEADER_BYTES) throw corrupt(`${where}: ${bytes.byteLength} bytes, shorter than the ${ENTRY_HEADER_BYTES}-byte entry header`);
  const dv = view(bytes);
  const version = dv.getUint8(0);
  if (version !== FORMAT_VERSION) throw corrupt(`${where}: unknown entry format version ${version}`);
  const type = ENTRY_TYPES[dv.getUint8(1)];
  if (type === undefined) throw corrupt(`${where}: unknown entry type ${dv.getUint8(1)}`);
  const term = getU64(dv, 2, `${where}: term`);
  const index = getU64(dv, 10, `${where}: index`);
  // Copy: LevelDB may hand out views of a shared buffer.
  const data = bytes.slice(ENTRY_HEADER_BYTES);
  return { term, index, type, data };
}

export function encodeHardState(hs: HardState): Uint8Array {
  checkU64(hs.term, "hardState term");
  checkU64(hs.commit, "hardState commit");
  if (!Number.isInteger(hs.vote) || hs.vote < 0 || hs.vote > 0xffff_ffff) throw new RangeError(`hardState vote must be a u32, got ${hs.vote}`);
  const out = new Uint8Array(HARD_STATE_BYTES);
  const dv = view(out);
  dv.setUint8(0, FORMAT_VERSION);
  setU64(dv, 1, hs.term);
  dv.setUint32(9, hs.vote);
  setU64(dv, 13, hs.commit);
  return out;
}

export function decodeHardState(bytes: Uint8Array): HardState {
  if (bytes.byteLength !== HARD_STATE_BYTES) throw corrupt(`hardState has ${bytes.byteLength} bytes, expected ${HARD_STATE_BYTES}`);
  const dv = view(bytes);
  const version = dv.getUint8(0);
  if (version !== FORMAT_VERSION) throw corrupt(`hardState: unknown format version ${version}`);
  return { term: getU64(dv, 1, "hardState term"), vote: dv.getUint32(9), commit: getU64(dv, 13, "hardState commit") };
}

export function encodeSnapshot(snapshot: Snapshot): Uint8Array {
  const { meta, data } = snapshot;
  checkU64(meta.index, "snapshot index");
  checkU64(meta.term, "snapshot term");
  const headerBytes = 1 + 8 + 8 + 4 + 4 * meta.voters.length + 4 + 4 * meta.observers.length;
  const out = new Uint8Array(headerBytes + data.byteLength);
  const dv = view(out);
  let at = 0;
  dv.setUint8(at, FORMAT_VERSION);
  at += 1;
  setU64(dv, at, meta.index);
  at += 8;
  setU64(dv, at, meta.term);
  at += 8;
  for (const ids of [meta.voters, meta.observers]) {
    dv.setUint32(at, ids.length);
    at += 4;
    for (const id of ids) {
      dv.setUint32(at, id);
      at += 4;
    }
  }
  out.set(data, at);
  return out;
}

export function decodeSnapshot(bytes: Uint8Array): Snapshot {
  const dv = view(bytes);
  let at = 0;
  const need = (n: number, what: string): void => {
    if (at + n > bytes.byteLength) throw corrupt(`snapshot: truncated in ${what} (${bytes.byteLength} bytes)`);
  };
  need(17, "header");
  const version = dv.getUint8(0);
  if (version !== FORMAT_VERSION) throw corrupt(`snapshot: unknown format version ${version}`);
  const index = getU64(dv, 1, "snapshot index");
  const term = getU64(dv, 9, "snapshot term");
  at = 17;
  const lists: number[][] = [];
  for (const what of ["voters", "observers"]) {
    need(4, `${what} count`);
    const count = dv.getUint32(at);
    at += 4;
    if (count > SNAPSHOT_MEMBERS_MAX) throw corrupt(`snapshot: ${what} count ${count} is above ${SNAPSHOT_MEMBERS_MAX}`);
    need(4 * count, what);
    const ids: number[] = [];
    for (let i = 0; i < count; i++) ids.push(dv.getUint32(at + 4 * i));
    at += 4 * count;
    lists.push(ids);
  }
  return {
    meta: { index, term, voters: lists[0] ?? [], observers: lists[1] ?? [] },
    data: bytes.slice(at),
  };
}

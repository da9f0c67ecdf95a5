/**
 * In-memory backend of the Raft stores (./storage.ts), for tests and the simulator-like
 * uses of the driver. A `MemoryDisk` outlives the storage opened on it, so a test can
 * drop a storage without closing it ("crash") and open a new one on the same disk.
 * Values are copied in and out, as a disk would.
 */
import { KvRaftStorage, type KeySpace, type KvBackend, type KvOp } from "./storage.js";

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

/** The "disk": key spaces of byte keys (held as hex, whose order equals byte order). */
export class MemoryDisk {
  readonly spaces = new Map<KeySpace, Map<string, { key: Uint8Array; value: Uint8Array }>>();

  space(space: KeySpace): Map<string, { key: Uint8Array; value: Uint8Array }> {
    let map = this.spaces.get(space);
    if (!map) {
      map = new Map();
      this.spaces.set(space, map);
    }
    return map;
  }
}

export class MemoryKvBackend implements KvBackend {
  private closed = false;
  constructor(private readonly disk: MemoryDisk) {}

  private check(): void {
    if (this.closed) throw new Error("memory kv backend used after close");
  }

  async get(space: KeySpace, key: Uint8Array): Promise<Uint8Array | undefined> {
    this.check();
    const found = this.disk.space(space).get(hex(key));
    return found ? found.value.slice() : undefined;
  }

  async scan(space: KeySpace, range: { gte?: Uint8Array; lt?: Uint8Array } = {}): Promise<Array<[Uint8Array, Uint8Array]>> {
    this.check();
    const lo = range.gte ? hex(range.gte) : undefined;
    const hi = range.lt ? hex(range.lt) : undefined;
    return [...this.disk.space(space).entries()]
      .filter(([k]) => (lo === undefined || k >= lo) && (hi === undefined || k < hi))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, { key, value }]) => [key.slice(), value.slice()]);
  }

  async write(ops: readonly KvOp[]): Promise<void> {
    this.check();
    // All ops land in the same synchronous step: atomic with respect to a "crash".
    for (const op of ops) {
      const space = this.disk.space(op.space);
      if (op.value === undefined) space.delete(hex(op.key));
      else space.set(hex(op.key), { key: op.key.slice(), value: op.value.slice() });
    }
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

/** Opens an in-memory Raft storage on `disk` (a fresh disk when omitted). */
export async function openMemoryRaftStorage(disk: MemoryDisk = new MemoryDisk()): Promise<KvRaftStorage> {
  return KvRaftStorage.open(new MemoryKvBackend(disk));
}

/**
 * LevelDB backend of the Raft stores (./storage.ts): one LevelDB directory, one sublevel
 * per key space, keys and values as raw bytes. Batches are written with `sync: true`, so
 * LevelDB fsyncs its write-ahead log before the write resolves.
 */
import { FlotillaError } from "@flotilla/common";
import { Level } from "level";
import { KEY_SPACES, KvRaftStorage, type KeySpace, type KvBackend, type KvOp } from "./storage.js";

type Bytes = Uint8Array;
const ENCODINGS = { keyEncoding: "view", valueEncoding: "view" } as const;

function openSublevel(db: Level<Bytes, Bytes>, name: string) {
  return db.sublevel<Bytes, Bytes>(name, ENCODINGS);
}
type Sublevel = ReturnType<typeof openSublevel>;

export class LevelKvBackend implements KvBackend {
  private readonly spaces: Map<KeySpace, Sublevel>;

  private constructor(private readonly db: Level<Bytes, Bytes>) {
    this.spaces = new Map(KEY_SPACES.map((space) => [space, openSublevel(db, space)]));
  }

  /** Opens (creating if needed) the LevelDB directory `dir`. */
  static async open(dir: string): Promise<LevelKvBackend> {
    const db = new Level<Bytes, Bytes>(dir, ENCODINGS);
    try {
      await db.open({ createIfMissing: true });
    } catch (err) {
      // LEVEL_LOCKED: another process (or an unclosed handle in this one) holds the dir.
      const code = (err as { code?: string; cause?: { code?: string } }).code;
      throw new FlotillaError("KAFKA_STORAGE_ERROR", `cannot open raft storage at ${dir} (${code ?? "error"}): ${(err as Error).message}`, { cause: err });
    }
    return new LevelKvBackend(db);
  }

  private space(space: KeySpace): Sublevel {
    const sub = this.spaces.get(space);
    if (!sub) throw new Error(`unknown key space ${space}`);
    return sub;
  }

  async get(space: KeySpace, key: Uint8Array): Promise<Uint8Array | undefined> {
    return (await this.space(space).get(key)) ?? undefined;
  }

  async scan(space: KeySpace, range: { gte?: Uint8Array; lt?: Uint8Array } = {}): Promise<Array<[Uint8Array, Uint8Array]>> {
    const out: Array<[Uint8Array, Uint8Array]> = [];
    for await (const [key, value] of this.space(space).iterator(range)) out.push([key, value]);
    return out;
  }

  async write(ops: readonly KvOp[], options: { sync: boolean }): Promise<void> {
    await this.db.batch(
      ops.map((op) =>
        op.value === undefined
          ? { type: "del" as const, sublevel: this.space(op.space), key: op.key }
          : { type: "put" as const, sublevel: this.space(op.space), key: op.key, value: op.value },
      ),
      { sync: options.sync },
    );
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}

/** Opens the LevelDB-backed Raft storage in `dir`, checking what is there. */
export async function openLevelRaftStorage(dir: string): Promise<KvRaftStorage> {
  return KvRaftStorage.open(await LevelKvBackend.open(dir));
}

import { writeSync } from "node:fs";
import { open, unlink, type FileHandle } from "node:fs/promises";
import { FlotillaError, assert } from "@flotilla/common";

/** An I/O failure as the operating error callers handle: KAFKA_STORAGE_ERROR naming the file. */
export function storageError(operation: string, path: string, cause: unknown): FlotillaError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new FlotillaError("KAFKA_STORAGE_ERROR", `${operation} ${path} failed: ${reason}`, { cause });
}

export function isNotFound(err: unknown): boolean {
  return typeof err === "object" && err !== null && (err as { code?: unknown }).code === "ENOENT";
}

/**
 * Reads exactly `length` bytes at `position` into `into` (or a new buffer). A short file is
 * STORAGE_CORRUPT: callers only ask for bytes they know were written.
 */
export async function readExactly(handle: FileHandle, path: string, position: number, length: number, into?: Buffer): Promise<Buffer> {
  const buf = into ?? Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    let bytesRead: number;
    try {
      ({ bytesRead } = await handle.read(buf, done, length - done, position + done));
    } catch (err) {
      throw storageError("reading", path, err);
    }
    if (bytesRead === 0) {
      throw new FlotillaError("STORAGE_CORRUPT", `${path} ends at byte ${position + done}, expected at least ${position + length} bytes`);
    }
    done += bytesRead;
  }
  return buf;
}

/** Writes all of `buf` at `position`; one write call unless the kernel takes less. */
export async function writeFully(handle: FileHandle, path: string, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    let bytesWritten: number;
    try {
      ({ bytesWritten } = await handle.write(buf, done, buf.length - done, position + done));
    } catch (err) {
      throw storageError("writing", path, err);
    }
    done += bytesWritten;
  }
}

/**
 * writeFully without the thread pool, for log appends: a write lands in the page cache in
 * microseconds (about 20 us for 16 KiB here, against about 70 us and a wake-up of a pool
 * thread and then of the event loop for the async form). On a loaded machine those two
 * thread hand-offs, once per append and serialized per partition, cost more than the
 * write. The price: a write the kernel throttles (dirty-page write-back at its limit)
 * blocks the event loop for that long, as a Kafka request handler thread would block.
 */
export function writeFullySync(handle: FileHandle, path: string, buf: Buffer, position: number): void {
  let done = 0;
  // Bounded: each pass writes at least one byte or throws.
  while (done < buf.length) {
    let bytesWritten: number;
    try {
      bytesWritten = writeSync(handle.fd, buf, done, buf.length - done, position + done);
    } catch (err) {
      throw storageError("writing", path, err);
    }
    assert(bytesWritten > 0, () => `write to ${path} wrote nothing`);
    done += bytesWritten;
  }
}

/** Replaces a whole (small) file: the index files are written this way at roll and close. */
export async function writeWholeFile(path: string, buf: Buffer, options: { sync: boolean }): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(path, "w");
    await writeFully(handle, path, buf, 0);
    if (options.sync) await handle.sync();
  } catch (err) {
    throw FlotillaError.is(err) ? err : storageError("writing", path, err);
  } finally {
    await handle?.close();
  }
}

export async function syncFile(path: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(path, "r");
    await handle.sync();
  } catch (err) {
    if (isNotFound(err)) return;
    throw storageError("fsync of", path, err);
  } finally {
    await handle?.close();
  }
}

/** fsync of a directory makes file creations, renames and deletions in it durable (Linux). */
export async function syncDir(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, "r");
    await handle.sync();
  } catch (err) {
    throw storageError("fsync of directory", dir, err);
  } finally {
    await handle?.close();
  }
}

export async function unlinkIfExists(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw storageError("deleting", path, err);
  }
}

/**
 * A sliding view of a byte range [0, end) of a file, refilled by one positional read when a
 * request falls outside it. With `scratch`, the same buffer is refilled (for scans whose
 * bytes are not handed out); otherwise each refill is a fresh buffer that callers may keep
 * slices of.
 */
export class ByteWindow {
  buf: Buffer = Buffer.alloc(0);
  start = 0;
  private scratch: Buffer | undefined;

  constructor(
    private readonly handle: FileHandle,
    private readonly path: string,
    private readonly end: number,
    private readonly windowBytes: number,
    options: { reuse?: boolean } = {},
  ) {
    if (options.reuse) this.scratch = Buffer.allocUnsafe(0);
  }

  /** Makes [pos, pos + length) resident and returns its index in `buf`. Reads at most `windowBytes` (or `length`) bytes. */
  async at(pos: number, length: number, windowBytes = this.windowBytes): Promise<number> {
    if (pos >= this.start && pos + length <= this.start + this.buf.length) return pos - this.start;
    if (pos + length > this.end) {
      throw new FlotillaError("STORAGE_CORRUPT", `${this.path}: bytes [${pos}, ${pos + length}) lie past the end of the data at ${this.end}`);
    }
    const want = Math.min(this.end - pos, Math.max(length, windowBytes));
    let into: Buffer | undefined;
    if (this.scratch !== undefined) {
      if (this.scratch.length < want) this.scratch = Buffer.allocUnsafe(want);
      into = this.scratch.subarray(0, want);
    }
    this.buf = await readExactly(this.handle, this.path, pos, want, into);
    this.start = pos;
    return 0;
  }
}

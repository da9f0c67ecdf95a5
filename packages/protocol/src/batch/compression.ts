import zlib from "node:zlib";
// Default imports: these are CommonJS native addons, and Node's ESM loader only guarantees
// `module.exports` as the default export of such modules (named exports are best effort).
import lz4 from "lz4-napi";
import snappy from "snappy";
import zstdBinding from "zstd-napi/binding.js";
import { FlotillaError } from "@flotilla/common";

/**
 * Compression of a record batch's records section (everything after the 61-byte header),
 * with the codecs and framings Kafka uses on the wire (attributes bits 0-2):
 *
 *   code codec   compressed form
 *      0 none    the records as they are
 *      1 gzip    RFC 1952 gzip stream (what java.util.zip.GZIPOutputStream writes)
 *      2 snappy  Kafka's Java producer writes snappy-java's *xerial* framing:
 *                  magic  82 53 4e 41 50 50 59 00  ("\x82SNAPPY\0")
 *                  int32 BE version (1), int32 BE compatible version (1)
 *                  then blocks: int32 BE compressed length, one raw snappy block
 *                librdkafka, sarama and KafkaJS write one raw snappy block instead.
 *                We read both (the magic tells them apart) and write raw, which the Java
 *                reader (snappy-java's SnappyInputStream) also accepts.
 *      3 lz4     the LZ4 *frame* format (magic 04 22 4d 18), independent blocks, as Kafka
 *                has written since message format v1 (KIP-57 fixed the header checksum).
 *      4 zstd    Zstandard frames (RFC 8878). Java's zstd-jni streams do not record the
 *                content size, so decompression must not depend on it.
 *
 * Decompression is bounded: output beyond `decompressedBytesMax` is refused with
 * RECORD_LIST_TOO_LARGE before it is allocated (a small batch may expand a thousandfold),
 * and malformed input is CORRUPT_MESSAGE naming the codec and what was wrong.
 */
export type Compression = "none" | "gzip" | "snappy" | "lz4" | "zstd";

/** Default bound on a batch's decompressed records section: 64 MiB. */
export const decompressedBytesMax = 64 * 1024 * 1024;

export interface DecompressOptions {
  /** Refuse to produce more than this many bytes. Default `decompressedBytesMax` (64 MiB). */
  decompressedBytesMax?: number;
}

const CODES: Record<Compression, number> = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 };
const BY_CODE: readonly Compression[] = ["none", "gzip", "snappy", "lz4", "zstd"];

/** The attributes code (bits 0-2) of a codec. */
export function compressionCode(compression: Compression): number {
  return CODES[compression];
}

/** The codec for an attributes code 0-4; CORRUPT_MESSAGE for 5, 6 and 7, which Kafka does not define. */
export function compressionFromCode(code: number): Compression {
  const c = BY_CODE[code];
  if (c === undefined) throw new FlotillaError("CORRUPT_MESSAGE", `unknown compression code ${code} (Kafka defines 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd)`);
  return c;
}

/** Compresses `data` with `compression`; "none" returns the bytes as they are (a view, not a copy). */
export function compress(compression: Compression, data: Uint8Array): Buffer {
  const input = asBuffer(data);
  switch (compression) {
    case "none":
      return input;
    case "gzip":
      return zlib.gzipSync(input);
    case "snappy":
      return snappy.compressSync(input);
    case "lz4":
      // 64 KiB independent blocks and no checksums: the frame Kafka's own writer produces.
      return lz4.compressFrameSync(input, { blockChecksums: false, contentChecksum: false });
    case "zstd":
      return zstdCompress(input);
  }
}

/** Decompresses `data`; see the module comment for the accepted forms and the size bound. */
export function decompress(compression: Compression, data: Uint8Array, options: DecompressOptions = {}): Buffer {
  const max = options.decompressedBytesMax ?? decompressedBytesMax;
  const input = asBuffer(data);
  switch (compression) {
    case "none":
      if (input.length > max) throw tooLarge("none", input.length, max);
      return input;
    case "gzip":
      return gunzip(input, max);
    case "snappy":
      return isXerialSnappy(input) ? xerialSnappyDecompress(input, max) : rawSnappyDecompress(input, 0, input.length, max, "snappy");
    case "lz4":
      return lz4Decompress(input, max);
    case "zstd":
      return zstdDecompress(input, max);
  }
}

function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

function corrupt(codec: Compression, detail: string, cause?: unknown): FlotillaError {
  return new FlotillaError("CORRUPT_MESSAGE", `${codec}-compressed records are malformed: ${detail}`, cause === undefined ? {} : { cause });
}

function tooLarge(codec: Compression, bytes: number | string, max: number): FlotillaError {
  return new FlotillaError("RECORD_LIST_TOO_LARGE", `${codec}-compressed records decompress to ${bytes} bytes, more than decompressedBytesMax ${max}`);
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// ---------------------------------------------------------------------------------------------
// gzip

function gunzip(input: Buffer, max: number): Buffer {
  try {
    // maxOutputLength makes zlib stop (and throw) once the output passes the bound.
    return zlib.gunzipSync(input, { maxOutputLength: max });
  } catch (err) {
    if ((err as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") throw tooLarge("gzip", "more than " + max, max);
    throw corrupt("gzip", message(err), err);
  }
}

// ---------------------------------------------------------------------------------------------
// snappy

const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);
/** magic (8) + version (4) + compatible version (4). */
const XERIAL_HEADER_BYTES = 16;

/** True when `data` starts with snappy-java's xerial stream magic. */
export function isXerialSnappy(data: Uint8Array): boolean {
  if (data.length < XERIAL_MAGIC.length) return false;
  for (let i = 0; i < XERIAL_MAGIC.length; i++) if (data[i] !== XERIAL_MAGIC[i]) return false;
  return true;
}

/**
 * A raw snappy block starts with its uncompressed length as an unsigned varint of at most
 * 5 bytes (32 bits). Reading it first lets us refuse an oversized block before the
 * library allocates for it.
 */
function snappyUncompressedLength(input: Buffer, start: number, end: number, what: string): number {
  let u = 0;
  let scale = 1;
  for (let i = 0; i < 5; i++) {
    if (start + i >= end) throw corrupt("snappy", `${what} ends inside its length preamble`);
    const b = input[start + i]!;
    u += (b & 0x7f) * scale;
    if (b < 0x80) {
      if (u > 0xffffffff) break;
      return u;
    }
    scale *= 0x80;
  }
  throw corrupt("snappy", `${what} has a bad length preamble (not a varint of at most 32 bits)`);
}

function rawSnappyDecompress(input: Buffer, start: number, end: number, max: number, what: string): Buffer {
  const expected = snappyUncompressedLength(input, start, end, what);
  if (expected > max) throw tooLarge("snappy", expected, max);
  let out: Buffer;
  try {
    out = snappy.uncompressSync(input.subarray(start, end), { asBuffer: true }) as Buffer;
  } catch (err) {
    throw corrupt("snappy", `${what}: ${message(err)}`, err);
  }
  if (out.length !== expected) throw corrupt("snappy", `${what} declares ${expected} bytes but decompressed to ${out.length}`);
  return out;
}

function xerialSnappyDecompress(input: Buffer, max: number): Buffer {
  if (input.length < XERIAL_HEADER_BYTES) throw corrupt("snappy", `xerial stream is ${input.length} bytes, shorter than its 16-byte header`);
  // First walk the block lengths and add up the declared sizes, so an oversized stream is
  // refused before anything is decompressed. Each block takes at least 4 bytes, which bounds the walk.
  const blocks: { start: number; end: number }[] = [];
  let total = 0;
  let pos = XERIAL_HEADER_BYTES;
  while (pos < input.length) {
    if (input.length - pos < 4) throw corrupt("snappy", `xerial block length at byte ${pos} is truncated`);
    const length = input.readUInt32BE(pos);
    const start = pos + 4;
    if (length > input.length - start) {
      throw corrupt("snappy", `xerial block at byte ${pos} declares ${length} bytes but ${input.length - start} remain`);
    }
    total += snappyUncompressedLength(input, start, start + length, `xerial block at byte ${pos}`);
    if (total > max) throw tooLarge("snappy", `at least ${total}`, max);
    blocks.push({ start, end: start + length });
    pos = start + length;
  }
  const parts = blocks.map((b) => rawSnappyDecompress(input, b.start, b.end, max, `xerial block at byte ${b.start - 4}`));
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts, total);
}

// ---------------------------------------------------------------------------------------------
// lz4

const LZ4_FRAME_MAGIC = 0x184d2204;
/** Skippable frames use magics 0x184D2A50..0x184D2A5F. */
const LZ4_SKIPPABLE_MASK = 0xfffffff0;
const LZ4_SKIPPABLE_MAGIC = 0x184d2a50;
/** BD bits 4-6 -> block maximum size. */
const LZ4_BLOCK_MAX_BYTES: Record<number, number> = { 4: 64 * 1024, 5: 256 * 1024, 6: 1024 * 1024, 7: 4 * 1024 * 1024 };

/** How far the block-size bound may exceed the limit before decompressing: one largest block. */
const LZ4_BOUND_SLACK_BYTES = 4 * 1024 * 1024;

interface Lz4Frame {
  start: number;
  end: number;
  /** An upper bound on the frame's decompressed size, from its block sizes. */
  decompressedBytesBound: number;
}

/**
 * Walks the LZ4 frames in `input` without decompressing them (LZ4 frame format spec v1.6):
 *
 *   magic u32 LE 0x184D2204 | FLG | BD | [content size u64 LE] | [dict id u32 LE] | HC
 *   blocks: u32 LE size (high bit = stored uncompressed), data, [u32 block checksum]
 *   end mark u32 0 | [u32 content checksum]
 *
 * Each block decompresses to at most the frame's block maximum size (a stored block to
 * exactly its size), so the sum bounds the output, and so what the library can allocate.
 * The bound overshoots by up to one block per frame (the last block is usually partial,
 * and encoders pick up to 4 MiB blocks), so the walk refuses only a bound beyond
 * `max + LZ4_BOUND_SLACK_BYTES`; the exact size is checked after decompression. The library
 * decodes one frame per call, so the walk also finds where each frame ends.
 */
function lz4Frames(input: Buffer, max: number): Lz4Frame[] {
  const frames: Lz4Frame[] = [];
  let pos = 0;
  let total = 0;
  const need = (bytes: number, what: string): void => {
    if (input.length - pos < bytes) throw corrupt("lz4", `${what} at byte ${pos} is truncated`);
  };
  while (pos < input.length) {
    const start = pos;
    need(4, "frame magic");
    const magic = input.readUInt32LE(pos);
    pos += 4;
    if ((magic & LZ4_SKIPPABLE_MASK) >>> 0 === LZ4_SKIPPABLE_MAGIC) {
      need(4, "skippable frame size");
      const size = input.readUInt32LE(pos);
      pos += 4;
      need(size, "skippable frame");
      pos += size;
      continue;
    }
    if (magic !== LZ4_FRAME_MAGIC) throw corrupt("lz4", `bad frame magic 0x${magic.toString(16)} at byte ${start} (expected 0x184d2204)`);
    need(3, "frame descriptor");
    const flg = input[pos]!;
    const bd = input[pos + 1]!;
    pos += 2;
    if (flg >> 6 !== 1) throw corrupt("lz4", `frame at byte ${start} has version ${flg >> 6}, expected 1`);
    const blockChecksums = (flg & 0x10) !== 0;
    const hasContentSize = (flg & 0x08) !== 0;
    const contentChecksum = (flg & 0x04) !== 0;
    const hasDictId = (flg & 0x01) !== 0;
    const blockMaxBytes = LZ4_BLOCK_MAX_BYTES[(bd >> 4) & 0x07];
    if (blockMaxBytes === undefined) throw corrupt("lz4", `frame at byte ${start} has an invalid block maximum size code ${(bd >> 4) & 0x07}`);
    if (hasContentSize) {
      need(8, "frame content size");
      const contentBytes = input.readUInt32LE(pos) + input.readUInt32LE(pos + 4) * 2 ** 32;
      if (total + contentBytes > max) throw tooLarge("lz4", `at least ${total + contentBytes}`, max);
      pos += 8;
    }
    if (hasDictId) {
      need(4, "frame dictionary id");
      pos += 4;
    }
    need(1, "frame header checksum");
    pos += 1;
    let bound = 0;
    // Every block takes at least 4 bytes, so this loop ends within input.length / 4 turns.
    for (;;) {
      need(4, "block size");
      const word = input.readUInt32LE(pos);
      pos += 4;
      if (word === 0) break; // end mark
      const size = word & 0x7fffffff;
      const stored = word >>> 31 === 1;
      if (size > blockMaxBytes) throw corrupt("lz4", `block at byte ${pos - 4} is ${size} bytes, above the frame's ${blockMaxBytes}-byte block maximum`);
      need(size + (blockChecksums ? 4 : 0), "block");
      pos += size + (blockChecksums ? 4 : 0);
      bound += stored ? size : blockMaxBytes;
      if (total + bound > max + LZ4_BOUND_SLACK_BYTES) throw tooLarge("lz4", `up to ${total + bound}`, max);
    }
    if (contentChecksum) {
      need(4, "content checksum");
      pos += 4;
    }
    total += bound;
    frames.push({ start, end: pos, decompressedBytesBound: bound });
  }
  if (frames.length === 0) throw corrupt("lz4", "no LZ4 frame in the input");
  return frames;
}

function lz4Decompress(input: Buffer, max: number): Buffer {
  const frames = lz4Frames(input, max);
  const parts: Buffer[] = [];
  let total = 0;
  for (const frame of frames) {
    let out: Buffer;
    try {
      out = lz4.decompressFrameSync(input.subarray(frame.start, frame.end));
    } catch (err) {
      throw corrupt("lz4", `frame at byte ${frame.start}: ${message(err)}`, err);
    }
    total += out.length;
    if (out.length > frame.decompressedBytesBound) throw corrupt("lz4", `frame at byte ${frame.start} decompressed to more than its blocks allow`);
    if (total > max) throw tooLarge("lz4", `at least ${total}`, max);
    parts.push(out);
  }
  if (parts.length === 1) return parts[0]!;
  return Buffer.concat(parts, total);
}

// ---------------------------------------------------------------------------------------------
// zstd

let zstdCCtx: InstanceType<typeof zstdBinding.CCtx> | undefined;
let zstdDCtx: InstanceType<typeof zstdBinding.DCtx> | undefined;
/** zstd's recommended output chunk for streaming decompression (128 KiB + a block). */
const ZSTD_CHUNK_BYTES = zstdBinding.dStreamOutSize();

function zstdCompress(input: Buffer): Buffer {
  zstdCCtx ??= new zstdBinding.CCtx();
  // ZSTD_compressBound: the output never exceeds this, so one allocation suffices.
  const out = Buffer.allocUnsafe(zstdBinding.compressBound(input.length));
  const written = zstdCCtx.compress2(out, input);
  return out.subarray(0, written);
}

/**
 * Streaming decompression into chunks, stopping once the output passes `max`: the frame
 * header's content size is optional (Kafka's Java producer leaves it out) and may lie, so
 * it is never used to size an allocation. Each turn must consume input or produce output;
 * a turn that does neither means the frame is truncated.
 */
function zstdDecompress(input: Buffer, max: number): Buffer {
  zstdDCtx ??= new zstdBinding.DCtx();
  const dctx = zstdDCtx;
  dctx.reset(zstdBinding.ResetDirective.sessionOnly);
  const chunks: Buffer[] = [];
  let total = 0;
  let src = input;
  let pending = 1; // ZSTD_decompressStream's hint: 0 once a frame is fully decoded and flushed
  const chunkBytes = Math.min(Math.max(ZSTD_CHUNK_BYTES, input.length * 4), max + 1);
  // Each turn consumes input or produces output (else it throws), and output is capped at
  // max, so the loop ends within input.length + max + 1 turns; in practice a turn fills a chunk.
  while (src.length > 0 || pending !== 0) {
    const chunk = Buffer.allocUnsafe(chunkBytes);
    let produced: number;
    let consumed: number;
    try {
      [pending, produced, consumed] = dctx.decompressStream(chunk, src);
    } catch (err) {
      dctx.reset(zstdBinding.ResetDirective.sessionOnly);
      throw corrupt("zstd", message(err), err);
    }
    if (produced === 0 && consumed === 0) {
      dctx.reset(zstdBinding.ResetDirective.sessionOnly);
      throw corrupt("zstd", `frame ends early (${input.length - src.length} of ${input.length} bytes read, ${total} bytes decompressed)`);
    }
    total += produced;
    if (total > max) {
      dctx.reset(zstdBinding.ResetDirective.sessionOnly);
      throw tooLarge("zstd", `more than ${max}`, max);
    }
    if (produced > 0) chunks.push(chunk.subarray(0, produced));
    src = src.subarray(consumed);
  }
  // Decoded records are views into this output, so do not let a small result pin a large chunk.
  if (chunks.length === 1 && total > chunkBytes / 2) return chunks[0]!;
  return Buffer.concat(chunks, total);
}

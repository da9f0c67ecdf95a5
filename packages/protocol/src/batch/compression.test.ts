import { describe, expect, it } from "vitest";
import snappy from "snappy";
import { FlotillaError, type ErrorName } from "@flotilla/common";
import { compress, compressionCode, compressionFromCode, decompress, decompressedBytesMax, isXerialSnappy, type Compression } from "./compression.js";

const CODECS: Compression[] = ["none", "gzip", "snappy", "lz4", "zstd"];
const COMPRESSING: Compression[] = ["gzip", "snappy", "lz4", "zstd"];

/** Deterministic pseudo-random bytes (xorshift32), so tests do not depend on Math.random. */
function pseudoRandomBytes(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

function errorName(fn: () => unknown): ErrorName | "none" | "other" {
  try {
    fn();
    return "none";
  } catch (err) {
    return err instanceof FlotillaError ? err.errorName : "other";
  }
}

/** snappy-java's xerial framing, written from its documented layout: magic, version 1, compatible 1, then length-prefixed raw blocks. */
function xerialFrame(blocks: Buffer[]): Buffer {
  const header = Buffer.alloc(16);
  Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]).copy(header, 0);
  header.writeInt32BE(1, 8);
  header.writeInt32BE(1, 12);
  const parts: Buffer[] = [header];
  for (const block of blocks) {
    const length = Buffer.alloc(4);
    length.writeInt32BE(block.length, 0);
    parts.push(length, block);
  }
  return Buffer.concat(parts);
}

describe("codec codes", () => {
  it("map Kafka's attribute codes both ways and reject 5-7", () => {
    CODECS.forEach((c, i) => {
      expect(compressionCode(c)).toBe(i);
      expect(compressionFromCode(i)).toBe(c);
    });
    for (const code of [5, 6, 7]) expect(() => compressionFromCode(code)).toThrow(new RegExp(`unknown compression code ${code}`));
  });
});

describe("round trips", () => {
  const inputs: [string, Buffer][] = [
    ["empty", Buffer.alloc(0)],
    ["one byte", Buffer.from([0x2a])],
    ["text", Buffer.from("the quick brown fox jumps over the lazy dog ".repeat(50))],
    ["incompressible 300 KiB", pseudoRandomBytes(300 * 1024, 7)],
    ["compressible 2 MiB", Buffer.alloc(2 * 1024 * 1024, "abcdefgh")],
  ];
  for (const codec of CODECS) {
    for (const [name, data] of inputs) {
      it(`${codec}: ${name}`, () => {
        const packed = compress(codec, data);
        const unpacked = decompress(codec, packed);
        expect(unpacked.equals(data)).toBe(true);
        if (codec !== "none" && name.startsWith("compressible")) expect(packed.length).toBeLessThan(data.length / 10);
      });
    }
  }

  it("accept a Uint8Array that is not a Buffer", () => {
    const data = new Uint8Array(Buffer.from("plain typed array ".repeat(20)));
    for (const codec of CODECS) expect(decompress(codec, compress(codec, data)).equals(Buffer.from(data))).toBe(true);
  });

  it("snappy writes raw snappy (no xerial header); lz4 writes an LZ4 frame with 64 KiB independent blocks", () => {
    const data = Buffer.from("kafka ".repeat(100));
    const s = compress("snappy", data);
    expect(isXerialSnappy(s)).toBe(false);
    expect(snappy.uncompressSync(s, { asBuffer: true })).toEqual(data);
    const f = compress("lz4", data);
    expect(f.readUInt32LE(0)).toBe(0x184d2204);
    expect(f[4]! >> 6).toBe(1); // version 01
    expect(f[4]! & 0x20).toBe(0x20); // block independence, as Kafka's KafkaLZ4BlockOutputStream writes
    expect((f[5]! >> 4) & 7).toBe(4); // 64 KiB blocks
  });
});

describe("known answers from other implementations", () => {
  // The records section of sarama's one-record test batch (IBM/sarama record_test.go, recordBatchTestCases).
  const saramaRecords = Buffer.from([40, 0, 10, 0, 8, 1, 2, 3, 4, 6, 5, 6, 7, 2, 6, 8, 9, 10, 4, 11, 12]);

  it("gzip written by Go's compress/gzip (sarama)", () => {
    const gz = Buffer.from([
      31, 139, 8, 0, 0, 9, 110, 136, 0, 255, 0, 21, 0, 234, 255, 40, 0, 10, 0, 8, 1, 2, 3, 4, 6, 5, 6, 7, 2, 6, 8, 9, 10, 4, 11, 12, 3, 0, 173, 201, 88, 103,
      21, 0, 0, 0,
    ]);
    expect(decompress("gzip", gz)).toEqual(saramaRecords);
  });

  it("raw snappy written by golang/snappy (sarama)", () => {
    const raw = Buffer.from([21, 80, 40, 0, 10, 0, 8, 1, 2, 3, 4, 6, 5, 6, 7, 2, 6, 8, 9, 10, 4, 11, 12]);
    expect(decompress("snappy", raw)).toEqual(saramaRecords);
  });

  it("an LZ4 frame with a content checksum and a stored block, written by pierrec/lz4 (sarama)", () => {
    const frame = Buffer.from([
      4, 34, 77, 24, 100, 112, 185, 21, 0, 0, 128, 40, 0, 10, 0, 8, 1, 2, 3, 4, 6, 5, 6, 7, 2, 6, 8, 9, 10, 4, 11, 12, 0, 0, 0, 0, 12, 59, 239, 146,
    ]);
    expect(decompress("lz4", frame)).toEqual(saramaRecords);
  });

  it("xerial-framed snappy streams (eapache/go-xerial-snappy snappy_test.go, snappyStreamTestCases)", () => {
    const plain = Buffer.from([130, 83, 78, 65, 80, 80, 89, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 11, 9, 32, 80, 76, 65, 73, 78, 68, 65, 84, 65]);
    expect(isXerialSnappy(plain)).toBe(true);
    expect(decompress("snappy", plain).toString()).toBe("PLAINDATA");
    const json = Buffer.from([
      130, 83, 78, 65, 80, 80, 89, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 39, 37, 144, 123, 34, 97, 34, 58, 34, 85, 116, 97, 105, 116, 73, 76, 72, 77, 68, 65,
      65, 65, 65, 102, 85, 34, 44, 34, 98, 34, 58, 34, 230, 151, 165, 230, 156, 172, 34, 125,
    ]);
    expect(decompress("snappy", json).toString("utf8")).toBe('{"a":"UtaitILHMDAAAAfU","b":"日本"}');
    const a = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x0, 0x0, 0x0, 0x0, 0x1, 0x0, 0x0, 0x0, 0x1, 0x0, 0x0, 0x0, 0x3, 0x1, 0x0, 0x41]);
    expect(decompress("snappy", a).toString()).toBe("A");
    const headerOnly = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x0, 0x0, 0x0, 0x0, 0x1, 0x0, 0x0, 0x0, 0x1]);
    expect(decompress("snappy", headerOnly).length).toBe(0);
  });

  it("a xerial frame assembled here from raw snappy blocks, as snappy-java writes 32 KiB blocks", () => {
    const data = Buffer.concat([Buffer.from("first block ".repeat(3000)), pseudoRandomBytes(40_000, 3), Buffer.from("tail")]);
    const blocks: Buffer[] = [];
    for (let at = 0; at < data.length; at += 32 * 1024) blocks.push(snappy.compressSync(data.subarray(at, at + 32 * 1024)));
    expect(blocks.length).toBeGreaterThan(2);
    const framed = xerialFrame(blocks);
    expect(isXerialSnappy(framed)).toBe(true);
    expect(decompress("snappy", framed).equals(data)).toBe(true);
  });
});

describe("decompressedBytesMax", () => {
  it("defaults to 64 MiB", () => {
    expect(decompressedBytesMax).toBe(64 * 1024 * 1024);
  });

  for (const codec of CODECS) {
    it(`${codec}: output beyond the bound is RECORD_LIST_TOO_LARGE, at the bound it is fine`, () => {
      const data = Buffer.alloc(100_000, 0x61);
      const packed = compress(codec, data);
      expect(errorName(() => decompress(codec, packed, { decompressedBytesMax: 99_999 }))).toBe("RECORD_LIST_TOO_LARGE");
      expect(decompress(codec, packed, { decompressedBytesMax: 100_000 }).length).toBe(100_000);
    });
  }

  // Bombs: 16 MiB of zeros against a 1 MiB bound (the same code path as 64 MiB, at a quarter of the time).
  it("gzip: a bomb stops at the bound without inflating it all", () => {
    const bomb = compress("gzip", Buffer.alloc(16 * 1024 * 1024));
    expect(bomb.length).toBeLessThan(64 * 1024);
    expect(errorName(() => decompress("gzip", bomb, { decompressedBytesMax: 1024 * 1024 }))).toBe("RECORD_LIST_TOO_LARGE");
  });

  it("snappy: a block whose preamble claims 4 GiB is refused before decompressing", () => {
    const liar = Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x00]);
    expect(errorName(() => decompress("snappy", liar))).toBe("RECORD_LIST_TOO_LARGE");
    const xerialLiar = xerialFrame([liar, liar]);
    expect(errorName(() => decompress("snappy", xerialLiar))).toBe("RECORD_LIST_TOO_LARGE");
  });

  it("lz4: a bomb is refused from its block sizes alone", () => {
    const bomb = compress("lz4", Buffer.alloc(16 * 1024 * 1024));
    expect(bomb.length).toBeLessThan(256 * 1024);
    expect(errorName(() => decompress("lz4", bomb, { decompressedBytesMax: 1024 * 1024 }))).toBe("RECORD_LIST_TOO_LARGE");
  });

  it("lz4: frames are bounded by their block sizes, and a frame whose header claims a huge content size is refused", () => {
    const frames = Buffer.concat([compress("lz4", Buffer.alloc(70_000, 1)), compress("lz4", Buffer.alloc(70_000, 2))]);
    // Two frames of two 64 KiB blocks each bound the output at 256 KiB.
    expect(decompress("lz4", frames).length).toBe(140_000);
    expect(errorName(() => decompress("lz4", frames, { decompressedBytesMax: 100_000 }))).toBe("RECORD_LIST_TOO_LARGE");
    // FLG 0x68 = version 1, independent blocks, content size present; BD 0x40; size 2^40.
    const huge = Buffer.from([0x04, 0x22, 0x4d, 0x18, 0x68, 0x40, 0, 0, 0, 0, 0, 1, 0, 0, 0x00, 0, 0, 0, 0]);
    expect(errorName(() => decompress("lz4", huge))).toBe("RECORD_LIST_TOO_LARGE");
  });

  it("zstd: a frame without a content size (as Java's zstd-jni streams write) is still bounded", async () => {
    const { CompressStream } = (await import("zstd-napi")).default;
    const stream = new CompressStream();
    const chunks: Buffer[] = [];
    stream.on("data", (c: Buffer) => chunks.push(c));
    const done = new Promise((resolve) => stream.on("end", resolve));
    stream.end(Buffer.alloc(3_000_000, 0x62));
    await done;
    const frame = Buffer.concat(chunks);
    // Frame header descriptor bits 6-7 (content size flag) = 0 and bit 5 (single segment) = 0: no size recorded.
    expect(frame[4]! & 0xe0).toBe(0);
    expect(decompress("zstd", frame).length).toBe(3_000_000);
    expect(errorName(() => decompress("zstd", frame, { decompressedBytesMax: 2_999_999 }))).toBe("RECORD_LIST_TOO_LARGE");
  });
});

describe("malformed input", () => {
  for (const codec of COMPRESSING) {
    it(`${codec}: every truncation and garbage is CORRUPT_MESSAGE, never a crash or hang`, () => {
      const packed = compress(codec, Buffer.from("some records, some records, some records 0123456789".repeat(4)));
      for (let cut = 0; cut < packed.length; cut++) {
        const name = errorName(() => decompress(codec, packed.subarray(0, cut)));
        // A prefix of a snappy stream can be a valid shorter stream only by accident; none of these is.
        expect([cut, name]).toEqual([cut, "CORRUPT_MESSAGE"]);
      }
      for (let seed = 1; seed <= 20; seed++) {
        const garbage = pseudoRandomBytes(64 + seed, seed);
        const name = errorName(() => decompress(codec, garbage));
        expect(["CORRUPT_MESSAGE", "RECORD_LIST_TOO_LARGE"]).toContain(name);
      }
    });
  }

  it("names the codec and the problem", () => {
    expect(() => decompress("gzip", Buffer.from("not gzip at all"))).toThrow(/gzip-compressed records are malformed/);
    expect(() => decompress("lz4", Buffer.from([1, 2, 3, 4, 5]))).toThrow(/lz4-compressed records are malformed: bad frame magic 0x4030201 at byte 0/);
    expect(() => decompress("snappy", xerialFrame([]).subarray(0, 12))).toThrow(/xerial stream is 12 bytes, shorter than its 16-byte header/);
    const lyingBlock = Buffer.concat([xerialFrame([]), Buffer.from([0, 0, 0, 50, 1, 2])]);
    expect(() => decompress("snappy", lyingBlock)).toThrow(/xerial block at byte 16 declares 50 bytes but 2 remain/);
    expect(() => decompress("zstd", Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))).toThrow(/zstd-compressed records are malformed/);
  });
});

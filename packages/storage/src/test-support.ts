/**
 * Helpers for the storage tests and the benchmark; not exported from the package.
 * Builds valid RecordBatch v2 bytes by hand (header, varint records, CRC32C) so the storage
 * layer can be tested without the full record codec.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Clock } from "@flotilla/common";
import { BATCH_HEADER_BYTES, LOG_OVERHEAD, MAGIC_V2, writeBatchCrc } from "@flotilla/protocol";
import type { LogConfig } from "./config.js";

/** A clock tests move by hand. */
export class FakeClock implements Clock {
  constructor(public now = 1_700_000_000_000) {}
  nowMs(): number {
    return this.now;
  }
  monotonicMs(): number {
    return this.now;
  }
  advance(ms: number): void {
    this.now += ms;
  }
}

function zigzag(n: number): number {
  return n >= 0 ? n * 2 : -n * 2 - 1;
}

function varintBytes(n: number): number[] {
  let v = zigzag(n);
  const out: number[] = [];
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}

export interface BatchSpec {
  /** Records in the batch. Default 1. */
  records?: number;
  /** Bytes of each record's value. Default 16. */
  valueBytes?: number;
  /** Timestamp of the first record; record i has baseTimestamp + i * timestampStepMs. Default 1_700_000_000_000. */
  baseTimestamp?: number;
  timestampStepMs?: number;
  /** Written into the header; the leader overwrites it. Default 0. */
  baseOffset?: number;
  /** Seeds the value bytes so batches differ. Default 0. */
  seed?: number;
}

/** One valid v2 batch: records with a null key, a patterned value and no headers. */
export function buildBatch(spec: BatchSpec = {}): Buffer {
  const records = spec.records ?? 1;
  const valueBytes = spec.valueBytes ?? 16;
  const baseTimestamp = spec.baseTimestamp ?? 1_700_000_000_000;
  const step = spec.timestampStepMs ?? 0;
  const seed = spec.seed ?? 0;
  const body: number[] = [];
  for (let i = 0; i < records; i++) {
    const inner = [
      0, // attributes
      ...varintBytes(i * step), // timestampDelta
      ...varintBytes(i), // offsetDelta
      ...varintBytes(-1), // key: null
      ...varintBytes(valueBytes),
    ];
    for (let b = 0; b < valueBytes; b++) inner.push((seed * 31 + i * 7 + b) & 0xff);
    inner.push(...varintBytes(0)); // headers
    body.push(...varintBytes(inner.length), ...inner);
  }
  const size = BATCH_HEADER_BYTES + body.length;
  const buf = Buffer.alloc(size);
  buf.writeBigInt64BE(BigInt(spec.baseOffset ?? 0), 0);
  buf.writeInt32BE(size - LOG_OVERHEAD, 8);
  buf.writeInt32BE(-1, 12); // partitionLeaderEpoch
  buf.writeInt8(MAGIC_V2, 16);
  buf.writeInt16BE(0, 21); // attributes: no compression, CreateTime
  buf.writeInt32BE(records - 1, 23); // lastOffsetDelta
  buf.writeBigInt64BE(BigInt(baseTimestamp), 27);
  buf.writeBigInt64BE(BigInt(baseTimestamp + (records - 1) * step), 35);
  buf.writeBigInt64BE(-1n, 43); // producerId
  buf.writeInt16BE(-1, 51); // producerEpoch
  buf.writeInt32BE(-1, 53); // baseSequence
  buf.writeInt32BE(records, 57);
  Buffer.from(body).copy(buf, BATCH_HEADER_BYTES);
  writeBatchCrc(buf, 0, size);
  return buf;
}

/** A config for tests: small segments and indexes, no retention unless asked. */
export function testConfig(overrides: Partial<LogConfig> = {}): LogConfig {
  return {
    segmentBytes: 1024,
    segmentMs: 7 * 24 * 3600 * 1000,
    retentionMs: -1,
    retentionBytes: -1,
    indexIntervalBytes: 128,
    segmentIndexBytes: 4096,
    ...overrides,
  };
}

/** A fresh directory under os.tmpdir(); `cleanup` removes it. */
export async function tempDir(prefix = "flotilla-storage-"): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, cleanup: () => rm(path, { recursive: true, force: true }) };
}

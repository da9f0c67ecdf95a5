/**
 * Micro-benchmark of the partition log (not a test; it never fails on time):
 * appends 1 KiB batches of 100-byte records, then reads them back sequentially and at
 * random offsets, and prints MB/s.
 *
 *   node --import tsx packages/storage/src/bench.ts [totalMiB=64] [batchesPerAppend=1]
 */
import { SeededRandom } from "@flotilla/common";
import { systemClock } from "@flotilla/common/node";
import { silentLogger } from "@flotilla/common/logger";
import { DEFAULT_LOG_CONFIG, PartitionLog } from "./index.js";
import { buildBatch, tempDir } from "./test-support.js";

const totalMiB = Number(process.argv[2] ?? 64);
const batchesPerAppend = Number(process.argv[3] ?? 1);
const RECORD_VALUE_BYTES = 100;
const RECORDS_PER_BATCH = 9; // 9 records of 100 bytes plus framing and the 61-byte header: about 1 KiB

function mbPerSec(bytes: number, ms: number): string {
  return ((bytes / (1024 * 1024)) / (ms / 1000)).toFixed(1);
}

const dir = await tempDir("flotilla-bench-");
try {
  const log = await PartitionLog.open({
    dir: dir.path,
    config: { ...DEFAULT_LOG_CONFIG, segmentBytes: 16 * 1024 * 1024 },
    clock: systemClock,
    logger: silentLogger(),
    topic: "bench",
    partition: 0,
  });
  const one = buildBatch({ records: RECORDS_PER_BATCH, valueBytes: RECORD_VALUE_BYTES, baseTimestamp: Date.now() });
  const payload = Buffer.concat(Array.from({ length: batchesPerAppend }, () => one));
  const appends = Math.ceil((totalMiB * 1024 * 1024) / payload.length);
  console.log(`batch ${one.length} bytes (${RECORDS_PER_BATCH} records of ${RECORD_VALUE_BYTES} bytes), ${batchesPerAppend} per append, ${appends} appends`);

  let started = performance.now();
  for (let i = 0; i < appends; i++) await log.appendAsLeader(payload, { leaderEpoch: 0 });
  let ms = performance.now() - started;
  console.log(`append: ${mbPerSec(log.sizeBytes, ms)} MB/s, ${Math.round((appends * batchesPerAppend) / (ms / 1000))} batches/s, ${log.segmentCount} segments`);

  started = performance.now();
  let offset = 0;
  let bytes = 0;
  for (let i = 0; i < 10_000_000 && offset < log.logEndOffset; i++) {
    const result = await log.read(offset, { maxBytes: 1024 * 1024, minOneBatch: true });
    bytes += result.records.length;
    offset = result.nextOffset;
  }
  ms = performance.now() - started;
  console.log(`sequential read (1 MiB fetches): ${mbPerSec(bytes, ms)} MB/s`);

  const rng = new SeededRandom(1);
  const reads = 20_000;
  started = performance.now();
  bytes = 0;
  for (let i = 0; i < reads; i++) {
    const result = await log.read(rng.int(0, log.logEndOffset), { maxBytes: 16 * 1024, minOneBatch: true });
    bytes += result.records.length;
  }
  ms = performance.now() - started;
  console.log(`random read (16 KiB fetches): ${mbPerSec(bytes, ms)} MB/s, ${Math.round(reads / (ms / 1000))} reads/s`);
  await log.close();
} finally {
  await dir.cleanup();
}

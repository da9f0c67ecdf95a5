/**
 * Micro-benchmark of the record-batch codec (not a test: it reports figures, it never fails
 * on time). Records have a 10-byte key and a 100-byte value; batches hold `RECORDS_PER_BATCH`.
 *
 *   node --import tsx packages/protocol/src/batch/bench.ts [codec ...]
 */
import { performance } from "node:perf_hooks";
import { decodeBatch, encodeBatch, type Compression, type ProducerRecord } from "./records.js";

const RECORDS_PER_BATCH = 1000;
const VALUE_BYTES = 100;
/** Each case runs for about this long, and at most `ITERATIONS_MAX` batches. */
const CASE_MS = 1500;
const ITERATIONS_MAX = 100_000;

function makeRecords(): ProducerRecord[] {
  const records: ProducerRecord[] = [];
  for (let i = 0; i < RECORDS_PER_BATCH; i++) {
    // Some repetition, as real payloads have, so the compressing codecs have something to do.
    const value = Buffer.alloc(VALUE_BYTES);
    value.write(`{"id":${i},"user":"user-${i % 97}","event":"page-view","path":"/items/${(i * 7919) % 10007}"}`);
    records.push({ key: Buffer.from(`key-${String(i).padStart(6, "0")}`), value, timestamp: 1_700_000_000_000 + i });
  }
  return records;
}

function run(label: string, fn: () => void): number {
  for (let i = 0; i < 20; i++) fn(); // warm-up
  let iterations = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < CASE_MS && iterations < ITERATIONS_MAX) {
    fn();
    iterations++;
    elapsed = performance.now() - start;
  }
  const recordsPerSecond = (iterations * RECORDS_PER_BATCH) / (elapsed / 1000);
  console.log(`${label.padEnd(16)} ${Math.round(recordsPerSecond).toLocaleString("en-US").padStart(12)} records/s  (${iterations} batches in ${Math.round(elapsed)} ms)`);
  return recordsPerSecond;
}

const codecs = (process.argv.slice(2) as Compression[]).length > 0 ? (process.argv.slice(2) as Compression[]) : (["none", "lz4", "zstd", "snappy", "gzip"] as Compression[]);
const records = makeRecords();
console.log(`${RECORDS_PER_BATCH} records per batch, ${VALUE_BYTES}-byte values`);
for (const compression of codecs) {
  const batch = encodeBatch(records, { compression });
  console.log(`${compression}: ${batch.length} bytes per batch`);
  run(`encode ${compression}`, () => void encodeBatch(records, { compression }));
  run(`decode ${compression}`, () => void decodeBatch(batch));
}

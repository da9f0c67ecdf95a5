import { assert } from "@flotilla/common";

/**
 * Kafka's key -> partition mapping, bit-identical to the Java client
 * (`BuiltInPartitioner.partitionForKey`, `Utils.murmur2`, `Utils.toPositive`), so a key lands
 * on the same partition whichever client wrote it:
 *
 *   partition = toPositive(murmur2(keyBytes)) % numPartitions
 *
 * Note `% numPartitions`: the seed documents say `numPartitions - 1`, which is a slip.
 *
 * murmur2 is Austin Appleby's MurmurHash2 (32-bit) with Kafka's seed 0x9747b28c: the key is
 * read in little-endian 4-byte words, then the 1-3 trailing bytes are mixed in. Java ints wrap at 32 bits, so products use Math.imul and shifts are
 * the unsigned `>>>` Java writes.
 */
const SEED = 0x9747b28c;
const M = 0x5bd1e995;
const R = 24;

/** Kafka's `Utils.murmur2`: a signed 32-bit hash, as Java returns it. */
export function murmur2(data: Uint8Array): number {
  const length = data.length;
  let h = SEED ^ length;
  const wholeWords = length >>> 2;
  for (let i = 0; i < wholeWords; i++) {
    const at = i * 4;
    let k = data[at]! | (data[at + 1]! << 8) | (data[at + 2]! << 16) | (data[at + 3]! << 24);
    k = Math.imul(k, M);
    k ^= k >>> R;
    k = Math.imul(k, M);
    h = Math.imul(h, M);
    h ^= k;
  }
  // Java's fall-through switch on length % 4, written as ifs (the tsconfig forbids fall-through).
  const tail = length & ~3;
  const rest = length & 3;
  if (rest === 3) h ^= data[tail + 2]! << 16;
  if (rest >= 2) h ^= data[tail + 1]! << 8;
  if (rest >= 1) {
    h ^= data[tail]!;
    h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

/** Kafka's `Utils.toPositive`: clears the sign bit (not Math.abs, which fails for -2^31). */
export function toPositive(n: number): number {
  return n & 0x7fffffff;
}

/** The partition Kafka's Java producer picks for a non-null key. */
export function partitionForKey(key: Uint8Array, numPartitions: number): number {
  assert(Number.isInteger(numPartitions) && numPartitions > 0 && numPartitions <= 0x7fffffff, () => `numPartitions ${numPartitions} is not a positive int32`);
  return toPositive(murmur2(key)) % numPartitions;
}

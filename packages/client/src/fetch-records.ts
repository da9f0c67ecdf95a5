import type { RecordHeader } from "./records.js";

/** The parts of a decoded batch the consumer reads (a subset of the codec's DecodedBatch). */
export interface FetchedBatch {
  header: { baseOffset: number; lastOffsetDelta: number };
  isControl: boolean;
  timestampType?: string | number;
  records: readonly FetchedRecord[];
}

export interface FetchedRecord {
  /** Absolute offset. */
  offset: number;
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: readonly RecordHeader[];
}

/**
 * From the batches of one partition's fetch response, the records to hand to the user and
 * the next offset to fetch. A fetch returns whole batches, so the first batch may start
 * below `fetchOffset` (the consumer asked for a record in its middle): records below it are
 * skipped. Control batches (transaction markers) carry no user records. The next fetch
 * offset moves past the last batch even when the batch ends in records that were removed
 * (compaction) or were control records, so the consumer never asks for the same batch twice.
 */
export function recordsFromFetch(batches: readonly FetchedBatch[], fetchOffset: number): { records: FetchedRecord[]; nextFetchOffset: number } {
  const records: FetchedRecord[] = [];
  let next = fetchOffset;
  for (const b of batches) {
    const batchEnd = b.header.baseOffset + b.header.lastOffsetDelta + 1;
    if (batchEnd > next) next = batchEnd;
    if (b.isControl) continue;
    for (const r of b.records) if (r.offset >= fetchOffset) records.push(r);
  }
  return { records, nextFetchOffset: next };
}

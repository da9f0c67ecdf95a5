/** The parts of a fetched batch (a RecordBatchView) this module reads. */
export interface FetchedBatchHead {
  readonly baseOffset: number;
  /** baseOffset + lastOffsetDelta. */
  readonly lastOffset: number;
  readonly isControl: boolean;
}

/**
 * From the batches of one partition's fetch response, the batches to hand to the user,
 * each with the offset its records start at, and the next offset to fetch. A fetch returns
 * whole batches, so the first batch may start below `fetchOffset` (the consumer asked for a
 * record in its middle): its records below it are skipped, which is what `fromOffset` says.
 * Batches wholly below `fetchOffset` are dropped. Control batches (transaction markers)
 * carry no user records and are dropped too. The next fetch offset moves past the last
 * batch even when the batch ends in records that were removed (compaction) or were control
 * records, so the consumer never asks for the same batch twice. Nothing here reads records.
 */
export function batchesFromFetch<B extends FetchedBatchHead>(batches: readonly B[], fetchOffset: number): { batches: { batch: B; fromOffset: number }[]; nextFetchOffset: number } {
  const out: { batch: B; fromOffset: number }[] = [];
  let next = fetchOffset;
  for (const b of batches) {
    const batchEnd = b.lastOffset + 1;
    if (batchEnd > next) next = batchEnd;
    if (b.isControl || b.lastOffset < fetchOffset) continue;
    out.push({ batch: b, fromOffset: Math.max(b.baseOffset, fetchOffset) });
  }
  return { batches: out, nextFetchOffset: next };
}

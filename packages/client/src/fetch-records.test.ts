import { describe, expect, it } from "vitest";
import { batchesFromFetch, type FetchedBatchHead } from "./fetch-records.js";

function batch(baseOffset: number, count: number, isControl = false): FetchedBatchHead {
  return { baseOffset, lastOffset: baseOffset + count - 1, isControl };
}

const shape = (r: ReturnType<typeof batchesFromFetch>) => ({ batches: r.batches.map((x) => [x.batch.baseOffset, x.fromOffset]), next: r.nextFetchOffset });

describe("batchesFromFetch", () => {
  it("starts the first batch at the fetch offset when the fetch offset falls inside it", () => {
    expect(shape(batchesFromFetch([batch(10, 5), batch(15, 3)], 12))).toEqual({ batches: [[10, 12], [15, 15]], next: 18 });
  });

  it("returns every batch whole when the fetch offset is the first batch's start", () => {
    expect(shape(batchesFromFetch([batch(0, 3)], 0))).toEqual({ batches: [[0, 0]], next: 3 });
  });

  it("drops a batch that lies wholly below the fetch offset but still moves past it", () => {
    expect(shape(batchesFromFetch([batch(0, 3)], 3))).toEqual({ batches: [], next: 3 });
  });

  it("drops control batches and moves past them", () => {
    expect(shape(batchesFromFetch([batch(0, 2), batch(2, 1, true), batch(3, 2)], 0))).toEqual({ batches: [[0, 0], [3, 3]], next: 5 });
    expect(shape(batchesFromFetch([batch(0, 2), batch(2, 1, true)], 0))).toEqual({ batches: [[0, 0]], next: 3 });
  });

  it("moves past the batch end even when its last records were compacted away (lastOffset beyond the last record)", () => {
    // A compacted batch keeps lastOffsetDelta: 20..24 though only 20..22 remain.
    expect(shape(batchesFromFetch([batch(20, 5)], 20))).toEqual({ batches: [[20, 20]], next: 25 });
  });

  it("keeps the fetch offset for an empty response", () => {
    expect(batchesFromFetch([], 42)).toEqual({ batches: [], nextFetchOffset: 42 });
  });
});

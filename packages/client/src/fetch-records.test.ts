import { describe, expect, it } from "vitest";
import { recordsFromFetch, type FetchedBatch } from "./fetch-records.js";

function batch(baseOffset: number, count: number, options: { isControl?: boolean; gaps?: number[] } = {}): FetchedBatch {
  const records = [];
  for (let i = 0; i < count; i++) {
    if (options.gaps?.includes(i)) continue;
    records.push({ offset: baseOffset + i, timestamp: 1000 + i, key: null, value: Buffer.from(`v${baseOffset + i}`), headers: [] });
  }
  return { header: { baseOffset, lastOffsetDelta: count - 1 }, isControl: options.isControl ?? false, records };
}

describe("recordsFromFetch", () => {
  it("skips records below the fetch offset inside the first batch", () => {
    const { records, nextFetchOffset } = recordsFromFetch([batch(10, 5), batch(15, 3)], 12);
    expect(records.map((r) => r.offset)).toEqual([12, 13, 14, 15, 16, 17]);
    expect(nextFetchOffset).toBe(18);
  });

  it("returns everything when the fetch offset is the batch start", () => {
    const { records, nextFetchOffset } = recordsFromFetch([batch(0, 3)], 0);
    expect(records.map((r) => r.value?.toString())).toEqual(["v0", "v1", "v2"]);
    expect(nextFetchOffset).toBe(3);
  });

  it("returns nothing but still moves past a batch that lies wholly below the fetch offset", () => {
    const { records, nextFetchOffset } = recordsFromFetch([batch(0, 3)], 3);
    expect(records).toEqual([]);
    expect(nextFetchOffset).toBe(3);
  });

  it("skips control batches and moves past them", () => {
    const { records, nextFetchOffset } = recordsFromFetch([batch(0, 2), batch(2, 1, { isControl: true }), batch(3, 2)], 0);
    expect(records.map((r) => r.offset)).toEqual([0, 1, 3, 4]);
    expect(nextFetchOffset).toBe(5);
  });

  it("moves past the batch end even when its last records were compacted away", () => {
    const { records, nextFetchOffset } = recordsFromFetch([batch(20, 5, { gaps: [3, 4] })], 20);
    expect(records.map((r) => r.offset)).toEqual([20, 21, 22]);
    expect(nextFetchOffset).toBe(25);
  });

  it("keeps the fetch offset for an empty response", () => {
    expect(recordsFromFetch([], 42)).toEqual({ records: [], nextFetchOffset: 42 });
  });
});

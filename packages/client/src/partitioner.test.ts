import { describe, expect, it } from "vitest";
import { FlotillaError, SeededRandom } from "@flotilla/common";
import { partitionForKey } from "@flotilla/protocol";
import { PartitionChooser } from "./partitioner.js";

const base = { topic: "t", value: null, recordSizeBytes: 100 };

describe("PartitionChooser", () => {
  it("sends a keyed record to toPositive(murmur2(key)) % numPartitions, every time", () => {
    const chooser = new PartitionChooser({ unkeyed: "sticky", batchSizeBytes: 16_384 }, new SeededRandom(1));
    for (let i = 0; i < 200; i++) {
      const key = Buffer.from(`key-${i}`);
      const p = chooser.choose({ ...base, key, numPartitions: 7 });
      expect(p).toBe(partitionForKey(key, 7));
      expect(chooser.choose({ ...base, key, numPartitions: 7 })).toBe(p);
    }
  });

  it("puts a string key where Kafka's Java client does (murmur2(\"foobar\") = -790332482)", () => {
    const chooser = new PartitionChooser({ unkeyed: "sticky", batchSizeBytes: 16_384 }, new SeededRandom(1));
    // (-790332482 & 0x7fffffff) % 50 = 16, the Java client's answer for key "foobar" with 50 partitions.
    expect(chooser.choose({ ...base, key: Buffer.from("foobar"), numPartitions: 50 })).toBe(16);
    expect(chooser.choose({ ...base, key: Buffer.from("foobar"), numPartitions: 1 })).toBe(0);
  });

  it("lets an explicit partition win over the key", () => {
    const chooser = new PartitionChooser({ unkeyed: "sticky", batchSizeBytes: 16_384 }, new SeededRandom(1));
    const key = Buffer.from("k");
    const other = (partitionForKey(key, 4) + 1) % 4;
    expect(chooser.choose({ ...base, key, partition: other, numPartitions: 4 })).toBe(other);
  });

  it("rejects an explicit partition outside the topic", () => {
    const chooser = new PartitionChooser({ unkeyed: "sticky", batchSizeBytes: 16_384 }, new SeededRandom(1));
    for (const partition of [-1, 4, 1.5]) {
      expect(() => chooser.choose({ ...base, key: null, partition, numPartitions: 4 })).toThrow(FlotillaError);
    }
  });

  it("sticks unkeyed records to one partition for about batch.size bytes, then moves to another", () => {
    const chooser = new PartitionChooser({ unkeyed: "sticky", batchSizeBytes: 1000 }, new SeededRandom(7));
    const picks: number[] = [];
    for (let i = 0; i < 50; i++) picks.push(chooser.choose({ ...base, key: null, numPartitions: 5 }));
    // 100-byte records, 1000-byte budget: runs of 10.
    for (let run = 0; run < 5; run++) {
      const slice = picks.slice(run * 10, run * 10 + 10);
      expect(new Set(slice).size).toBe(1);
      if (run > 0) expect(slice[0]).not.toBe(picks[run * 10 - 1]);
    }
    expect(new Set(picks).size).toBeGreaterThan(1);
  });

  it("spreads unkeyed records one per partition in turn with round-robin", () => {
    const chooser = new PartitionChooser({ unkeyed: "round-robin", batchSizeBytes: 16_384 }, new SeededRandom(3));
    const picks = Array.from({ length: 8 }, () => chooser.choose({ ...base, key: null, numPartitions: 4 }));
    const start = picks[0]!;
    expect(picks).toEqual(Array.from({ length: 8 }, (_, i) => (start + i) % 4));
  });

  it("uses a custom partitioner for records without an explicit partition, and checks its answer", () => {
    const chooser = new PartitionChooser({ unkeyed: "sticky", custom: ({ numPartitions }) => numPartitions - 1, batchSizeBytes: 16_384 }, new SeededRandom(1));
    expect(chooser.choose({ ...base, key: Buffer.from("k"), numPartitions: 3 })).toBe(2);
    expect(chooser.choose({ ...base, key: null, partition: 0, numPartitions: 3 })).toBe(0);
    const bad = new PartitionChooser({ unkeyed: "sticky", custom: () => 9, batchSizeBytes: 16_384 }, new SeededRandom(1));
    expect(() => bad.choose({ ...base, key: null, numPartitions: 3 })).toThrow(/returned by the custom partitioner/);
  });
});

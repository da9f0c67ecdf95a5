import { describe, expect, it } from "vitest";
import { javaStringHashCode, partitionForGroup } from "./placement.js";

// Expected values computed independently with OpenJDK 17 in a throwaway program:
//   int h = s.hashCode();
//   int abs = (h == Integer.MIN_VALUE) ? 0 : Math.abs(h);   // Kafka's Utils.abs
//   System.out.println(h + " " + abs % 50 + " " + abs % 7);
const VECTORS: [string, number, number, number][] = [
  ["", 0, 0, 0],
  ["a", 97, 47, 6],
  ["my-group", -1906497762, 12, 1],
  ["test-group", 627841412, 12, 2],
  ["console-consumer-12345", 158455506, 6, 6],
  ["group-\u00e9\u4e2d\u{1f600}", 1260704085, 35, 4],
  // Hashes to Integer.MIN_VALUE: Utils.abs maps it to 0.
  ["polygenelubricants", -2147483648, 0, 0],
  ["Aa", 2112, 12, 5],
  ["BB", 2112, 12, 5],
  ["flotilla", 2027344259, 9, 3],
];

describe("coordinator placement", () => {
  it.each(VECTORS)("%j hashes like Java's String.hashCode and maps to Kafka's partition", (s, hash, p50, p7) => {
    expect(javaStringHashCode(s)).toBe(hash);
    expect(partitionForGroup(s, 50)).toBe(p50);
    expect(partitionForGroup(s, 7)).toBe(p7);
  });

  it("uses Utils.abs, not the sign-bit mask, for negative hashes", () => {
    // (-1906497762 & 0x7fffffff) % 50 would be 36.
    expect(partitionForGroup("my-group", 50)).toBe(12);
  });
});

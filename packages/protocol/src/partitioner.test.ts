import { describe, expect, it } from "vitest";
import { murmur2, partitionForKey, toPositive } from "./partitioner.js";

const utf8 = (s: string) => Buffer.from(s, "utf8");

describe("murmur2", () => {
  it("matches the vectors of Kafka's own UtilsTest.testMurmur2", () => {
    // apache/kafka clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java
    // (commit f55581dc73953c3509a4702433aeeeddc2970779), testMurmur2.
    expect(murmur2(utf8("21"))).toBe(-973932308);
    expect(murmur2(utf8("foobar"))).toBe(-790332482);
    expect(murmur2(utf8("a-little-bit-long-string"))).toBe(-985981536);
    expect(murmur2(utf8("a-little-bit-longer-string"))).toBe(-1486304829);
    expect(murmur2(utf8("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"))).toBe(-58897971);
    expect(murmur2(new Uint8Array([0x61, 0x62, 0x63]))).toBe(479470107); // new byte[] {'a', 'b', 'c'}
  });

  it("matches KafkaJS's Java-compatible partitioner vectors", () => {
    // tulios/kafkajs src/producer/partitioners/defaultJava/murmur2.spec.js, generated there with a
    // Java program. (KafkaJS's *legacy* partitioner vectors are not Java-compatible and are not used.)
    const vectors: [string, number][] = [
      ["0", 971027396],
      ["1", -1993445489],
      ["128", -326012175],
      ["2187", -1508407203],
      ["16384", -325739742],
      ["78125", -1654490814],
      ["279936", 1462227128],
      ["823543", -2014198330],
      ["2097152", 607668903],
      ["4782969", -1182699775],
      ["10000000", -1830336757],
      ["19487171", -1603849305],
      ["35831808", -857013643],
      ["62748517", -1167431028],
      ["105413504", -381294639],
      ["170859375", -1658323481],
      ["100:48069", 1009543857],
    ];
    for (const [key, hash] of vectors) expect(murmur2(utf8(key)), key).toBe(hash);
  });

  it("hashes the empty key and a multi-byte UTF-8 key as Java does", () => {
    // From the throwaway Java cross-check described below.
    expect(murmur2(new Uint8Array(0))).toBe(275646681);
    expect(murmur2(utf8("日本語キー"))).toBe(1445825182);
  });
});

describe("toPositive", () => {
  it("clears the sign bit, unlike Math.abs", () => {
    expect(toPositive(-1)).toBe(0x7fffffff);
    expect(toPositive(-(2 ** 31))).toBe(0);
    expect(toPositive(5)).toBe(5);
    expect(toPositive(-973932308)).toBe(-973932308 & 0x7fffffff);
  });
});

describe("partitionForKey", () => {
  /*
   * Random keys (0-19 bytes, then 20 of random length up to 63, bytes >= 0x80 included, so
   * every tail length and Java's signed bytes are covered) with their Java murmur2 and the
   * partition for 3, 7, 12 and 100 partitions. Produced by a throwaway Java 17 program
   * (/tmp/murmurcheck/Murmur2Vectors.java, not committed) that implements Utils.murmur2 from
   * Kafka's published algorithm with Java int arithmetic, seeded java.util.Random(20240601);
   * the same program reproduces every UtilsTest vector above.
   */
  const javaVectors: [string, number, [number, number, number, number]][] = [
  ["", 275646681, [0, 2, 9, 81]],
  ["58", -1422426446, [0, 2, 6, 2]],
  ["d2e9", -1648418037, [2, 2, 11, 11]],
  ["3c7fce", 1912105547, [2, 2, 11, 47]],
  ["55033a11", -845893507, [1, 5, 1, 41]],
  ["4e45adb5f8", -1908627668, [0, 6, 0, 80]],
  ["e70ec538704a", 814110555, [0, 6, 3, 55]],
  ["8e730035ba829b", 735219094, [1, 1, 10, 94]],
  ["9ea5f734992c84aa", -2086288710, [2, 0, 2, 38]],
  ["c5fcca8498f1073b77", 2109290103, [0, 4, 3, 3]],
  ["f6c128c895cd27ad220e", 648522124, [1, 5, 4, 24]],
  ["cecb0b7dad2eaee4888e27", -1612838232, [2, 4, 8, 16]],
  ["e295a36d5634c0ee62fe6140", -69041341, [1, 4, 7, 7]],
  ["4133665c79bcf2747001f7a5fe", -279415543, [1, 1, 1, 5]],
  ["f4c80d2a074ba4e8bf1f4f39b211", 2117034426, [0, 3, 6, 26]],
  ["1738933ad0d1df19fb0ae4bd3bddd7", 1400106862, [1, 0, 10, 62]],
  ["59ed106f1bd07e6c06a2962067245184", 15370540, [1, 3, 4, 40]],
  ["d39dee0e5df6b1463ca806dad74569807d", 217078373, [2, 1, 5, 73]],
  ["97e6b5680e8892bf05422879e2665c0bfb16", 1289603596, [1, 1, 4, 96]],
  ["d22af80a8818187217879738d5ba8a05d3f98a", -505116474, [2, 0, 2, 74]],
  ["e9b8204b", 2136502535, [2, 6, 11, 35]],
  ["af5ca09ecb", -714108421, [1, 4, 7, 27]],
  ["97dc218fe2481579287602f23c8f4517078ab0699db6e4165d5e", -143363057, [0, 4, 3, 91]],
  ["81c71ea6dc0ef0ce4a231c27673d142edcd1be9db7e69729c3", -731547919, [1, 5, 1, 29]],
  ["9afbf757f79bd41793111f90a9c14cce92b156b8eba66373c330b5f5ed4ceb56cfa585877cb597ef1ce7", 2146994853, [0, 3, 9, 53]],
  ["b844f4dd7fe3a644e92715a007d1f03970d88cdc4aa433d101485fc7ef3959f87ffe1e198931821403a67dcaeffff9fbb15349c752939538e312c464", -1404924807, [2, 3, 5, 41]],
  ["3e7af7ad76958cb3a5be2b7b0adeff652bde3703193e48b469ad2c9612afdc1aefdb7e968499ea4ca6f84aa4b19bc12b582da36a39ef55e7ba6060240b8d", 1721502034, [1, 0, 10, 34]],
  ["47b4c1a1a1f22ea0b19f1a401a5eb5dae0cefb", -921985024, [1, 0, 4, 24]],
  ["57a368c941bf10ae28ff41b076176d48ca611f2934fd0f5e4f810869f942cf0420e1fc098c789017e13cc024c662c87d30150bd8d0", 1422262441, [1, 5, 1, 41]],
  ["4d96166f44b437861938eb0802309a887a352103", -760506533, [0, 6, 3, 15]],
  ["f70b08c2f0425f2339749dc0d7ab8bba", -1996436829, [2, 0, 11, 19]],
  ["7041df1f3c3adbe1fd741d481cf1d93e8af997d3fb32a1d69eeaaa175500dc37e076f7cbfc", 54804032, [2, 3, 8, 32]],
  ["9230db15bb3ea12a54874fbc94693a2ccd791fdc60b9c2166cc0ffc7cb7c1c6311b65ce0a85c34bd08519a5869", -555063009, [2, 5, 11, 39]],
  ["cf6beabe85f0734aa786c57435", -1925669559, [2, 0, 5, 89]],
  ["61770871fe799289746f5cb060515fbb00e902fe91c1011aff78a95432e9e4c3add5151eeae25dc2c39969a81bc43db1de586964e9665246", 1143418324, [1, 6, 4, 24]],
  ["7f45a9c3bc37f40df86ff8e80a4ffdf9", -1506819156, [2, 6, 8, 92]],
  ["e1e3692783ff59ee77fa9face6e29c6162", -1663794303, [2, 6, 5, 45]],
  ["f541c13a5222b8811077e5e8285e2364992c34acf20b28ccfb437689a861df3252c4039881fe4cda37adf9e8166a5d064a", -1862811109, [1, 4, 7, 39]],
  ["e2", -612542667, [2, 0, 5, 81]],
  ["9107576641e6f1d56443", -1208322511, [1, 5, 1, 37]],
  ];

  it("matches a Java murmur2 on random keys, hash and partition", () => {
    const partitionCounts = [3, 7, 12, 100];
    for (const [hex, hash, partitions] of javaVectors) {
      const key = Buffer.from(hex, "hex");
      expect(murmur2(key), hex).toBe(hash);
      partitionCounts.forEach((n, i) => expect(partitionForKey(key, n), `${hex} % ${n}`).toBe(partitions[i]));
    }
  });

  it("uses % numPartitions, not % (numPartitions - 1)", () => {
    // "foobar" over 50 partitions: toPositive(-790332482) % 50 = 1357151166 % 50 = 16.
    expect(partitionForKey(utf8("foobar"), 50)).toBe(16);
    // With a single partition everything goes to 0 (numPartitions - 1 would divide by zero).
    expect(partitionForKey(utf8("foobar"), 1)).toBe(0);
  });

  it("spreads keys over every partition and stays in range", () => {
    const seen = new Set<number>();
    for (let i = 0; i < 2000; i++) {
      const p = partitionForKey(utf8(`key-${i}`), 16);
      expect(p).toBeGreaterThanOrEqual(0);
      expect(p).toBeLessThan(16);
      seen.add(p);
    }
    expect(seen.size).toBe(16);
  });

  it("rejects a partition count that is not a positive integer", () => {
    expect(() => partitionForKey(utf8("k"), 0)).toThrow(/numPartitions/);
    expect(() => partitionForKey(utf8("k"), 2.5)).toThrow(/numPartitions/);
  });
});

/**
 * Which partition of __consumer_offsets holds a group: Kafka's
 * `Utils.abs(groupId.hashCode) % offsets.topic.num.partitions` (GroupMetadataManager.
 * partitionFor), bit for bit, so that a group lands on the same partition number as in
 * Kafka. Note that Kafka uses Utils.abs here (Integer.MIN_VALUE maps to 0), not the
 * `toPositive` (mask off the sign bit) its producer partitioner uses: the two differ for
 * every negative hash.
 */

/** Java's String.hashCode: s[0]*31^(n-1) + ... + s[n-1] over UTF-16 code units, in int32 arithmetic. */
export function javaStringHashCode(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(h, 31) + s.charCodeAt(i)) | 0;
  return h;
}

/** Kafka's Utils.abs: |n|, with Integer.MIN_VALUE (whose absolute value does not fit) mapped to 0. */
export function kafkaAbs(n: number): number {
  return n === -2147483648 ? 0 : Math.abs(n);
}

/** The __consumer_offsets partition of a group. */
export function partitionForGroup(groupId: string, numPartitions: number): number {
  return kafkaAbs(javaStringHashCode(groupId)) % numPartitions;
}

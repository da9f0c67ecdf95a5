/** Named limits shared across packages. Hitting one is an operating error, not a hang. */
export const Limits = {
  /** Kafka's default message.max.bytes (1 MiB + overhead). */
  messageMaxBytesDefault: 1048588,
  /** Largest gRPC message either side accepts. */
  grpcMessageBytesMax: 64 * 1024 * 1024,
  /** Topic names: Kafka's rule. */
  topicNameLengthMax: 249,
} as const;

const topicNameRe = /^[a-zA-Z0-9._-]+$/;

/** Kafka's topic-name rule; returns the reason it is invalid, or undefined when valid. */
export function topicNameProblem(name: string): string | undefined {
  if (name.length === 0) return "topic name is empty";
  if (name === "." || name === "..") return `topic name cannot be "${name}"`;
  if (name.length > Limits.topicNameLengthMax) return `topic name is longer than ${Limits.topicNameLengthMax} characters`;
  if (!topicNameRe.test(name)) return `topic name "${name}" has characters other than ASCII letters, digits, '.', '_' and '-'`;
  return undefined;
}

/** Metadata and DescribeTopics answers, built from the metadata image. */
import { ErrorCodes } from "@flotilla/common";
import { NO_LEADER, resolveTopicConfig, topicConfigStrings, type MetadataImage, type TopicConfig, type TopicImage } from "@flotilla/metadata";
import type { BrokerInfo, PartitionMetadata, TopicDescription, TopicMetadata } from "@flotilla/protocol";

/** Brokers of the image with the endpoint of `listenerName` (else their first). */
export function brokerInfos(image: MetadataImage, listenerName: string): BrokerInfo[] {
  return [...image.brokers.values()]
    .sort((a, b) => a.brokerId - b.brokerId)
    .map((b) => {
      const e = b.endpoints.find((x) => x.name === listenerName) ?? b.endpoints[0];
      return { nodeId: b.brokerId, host: e?.host ?? "", port: e?.port ?? -1, rack: b.rack ?? "", fenced: b.fenced };
    });
}

export function partitionMetadata(image: MetadataImage, topic: TopicImage): PartitionMetadata[] {
  return [...topic.partitions.entries()]
    .sort(([a], [b]) => a - b)
    .map(([partition, p]) => ({
      errorCode: p.leader === NO_LEADER ? ErrorCodes.LEADER_NOT_AVAILABLE.code : 0,
      partition,
      leaderId: p.leader,
      leaderEpoch: p.leaderEpoch,
      replicas: [...p.replicas],
      isr: [...p.isr],
      offlineReplicas: p.replicas.filter((id) => {
        const b = image.brokers.get(id);
        return !b || b.fenced;
      }),
    }));
}

export function topicMetadata(image: MetadataImage, topic: TopicImage): TopicMetadata {
  return { errorCode: 0, errorMessage: "", name: topic.name, topicId: topic.topicId, isInternal: topic.name.startsWith("__"), partitions: partitionMetadata(image, topic) };
}

export function describeTopic(image: MetadataImage, topic: TopicImage, defaults: TopicConfig): TopicDescription {
  const overrides = image.configs.topic.get(topic.name) ?? new Map<string, string>();
  return {
    name: topic.name,
    errorCode: 0,
    errorMessage: "",
    topicId: topic.topicId,
    replicationFactor: topic.partitions.get(0)?.replicas.length ?? 0,
    partitions: partitionMetadata(image, topic),
    configs: topicConfigStrings(resolveTopicConfig(overrides, defaults)),
    overriddenConfigs: [...overrides.keys()].sort(),
  };
}

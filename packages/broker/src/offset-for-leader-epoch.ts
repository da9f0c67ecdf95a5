/**
 * OffsetForLeaderEpoch (KIP-101/279) on the leader: where a leader epoch ends in this log,
 * from its leader epoch cache (LeaderEpochCache.endOffsetFor). A follower asks about its
 * latest epoch before fetching in a new one and truncates its log there. Only the leader
 * answers, and a current_leader_epoch other than its own is fenced as in Fetch.
 */
import { errorFields, type EpochEndOffset, type OffsetForLeaderEpochRequest, type OffsetForLeaderEpochResponse } from "@flotilla/protocol";
import type { ReplicaManager } from "./replica-manager.js";
import { requireItems } from "./validation.js";

export async function handleOffsetForLeaderEpoch(replicas: ReplicaManager, request: OffsetForLeaderEpochRequest): Promise<OffsetForLeaderEpochResponse> {
  requireItems(request.topics, "topics");
  request.topics.forEach((t, i) => requireItems(t.partitions, `topics[${i}].partitions`));
  return {
    topics: request.topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map(({ partition, currentLeaderEpoch, leaderEpoch }): EpochEndOffset => {
        try {
          const p = replicas.partition(t.name, partition);
          p.requireLeader();
          p.checkLeaderEpoch(currentLeaderEpoch);
          const answer = p.log.leaderEpochCache.endOffsetFor(leaderEpoch, p.log.logEndOffset);
          return { partition, errorCode: 0, errorMessage: "", leaderEpoch: answer.epoch, endOffset: answer.endOffset };
        } catch (err) {
          return { partition, ...errorFields(err), leaderEpoch: -1, endOffset: -1 };
        }
      }),
    })),
  };
}

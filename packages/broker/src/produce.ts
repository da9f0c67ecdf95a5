/**
 * Produce: appends each partition's batches on its leader. Partitions of one request are
 * appended concurrently; appends to one partition are serialized by its log, in arrival
 * order. Errors are per partition, and a failed partition writes nothing.
 *
 * acks=0 and acks=1 answer after the leader's append. acks=-1 (all) checks the ISR holds
 * min.insync.replicas before appending (NOT_ENOUGH_REPLICAS, nothing written), then waits
 * in the produce purgatory until the high watermark passes the batch (success), the ISR
 * shrank below min.insync.replicas (NOT_ENOUGH_REPLICAS_AFTER_APPEND), leadership moved
 * (NOT_LEADER_OR_FOLLOWER) or timeout_ms passed (REQUEST_TIMED_OUT). The last three leave
 * the records in the leader's log: the idempotent producer's retry is deduplicated.
 */
import { FlotillaError } from "@flotilla/common";
import { errorFields, type PartitionProduceResponse, type ProduceRequest, type ProduceResponse } from "@flotilla/protocol";
import type { ReplicaManager } from "./replica-manager.js";
import { requireItems } from "./validation.js";

const VALID_ACKS = new Set([0, 1, -1]);
/** Longest an acks=all produce waits, whatever timeout_ms asks. */
export const PRODUCE_TIMEOUT_MS_MAX = 300_000;

export async function handleProduce(replicas: ReplicaManager, request: ProduceRequest, nowMs: () => number): Promise<ProduceResponse> {
  requireItems(request.topics, "topics");
  request.topics.forEach((t, i) => requireItems(t.partitions, `topics[${i}].partitions`));
  const acks = request.acks;
  const topics = await Promise.all(
    request.topics.map(async (topic) => ({
      name: topic.name,
      partitions: await Promise.all(
        topic.partitions.map(async ({ partition, records }): Promise<PartitionProduceResponse> => {
          try {
            if (!VALID_ACKS.has(acks)) throw new FlotillaError("INVALID_REQUIRED_ACKS", `acks must be -1, 0 or 1, got ${acks}`);
            const p = replicas.partition(topic.name, partition);
            const leaderEpoch = p.leaderEpoch;
            const result = await p.appendAsLeader(records, { acks, nowMs: nowMs() });
            if (acks === -1) await replicas.producePurgatory.wait(p, result.lastOffset + 1, leaderEpoch, Math.min(Math.max(0, request.timeoutMs), PRODUCE_TIMEOUT_MS_MAX));
            if (acks === 0) return { partition, errorCode: 0, errorMessage: "", baseOffset: -1, logAppendTimeMs: -1, logStartOffset: -1 };
            return { partition, errorCode: 0, errorMessage: "", baseOffset: result.baseOffset, logAppendTimeMs: result.logAppendTimeMs, logStartOffset: result.logStartOffset };
          } catch (err) {
            return { partition, ...errorFields(err), baseOffset: -1, logAppendTimeMs: -1, logStartOffset: -1 };
          }
        }),
      ),
    })),
  );
  return { topics };
}

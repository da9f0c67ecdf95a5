/**
 * Produce: appends each partition's batches on its leader. Partitions of one request are
 * appended concurrently; appends to one partition are serialized by its log, in arrival
 * order. Errors are per partition, and a failed partition writes nothing.
 */
import { FlotillaError } from "@flotilla/common";
import { errorFields, type PartitionProduceResponse, type ProduceRequest, type ProduceResponse } from "@flotilla/protocol";
import type { ReplicaManager } from "./replica-manager.js";
import { requireItems } from "./validation.js";

const VALID_ACKS = new Set([0, 1, -1]);

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
            const result = await p.appendAsLeader(records, { acks, nowMs: nowMs() });
            // With acks=-1 the answer waits for the high watermark to pass the batch; with
            // the ISR of the leader alone it already has. Followers will make this a wait.
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

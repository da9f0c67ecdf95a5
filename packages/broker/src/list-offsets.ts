/**
 * ListOffsets (Kafka's sentinels): -2 earliest = log start offset; -1 latest = the high
 * watermark for consumers, the log end offset for replicas; -3 = the first batch holding
 * the largest timestamp; otherwise the first batch whose max timestamp is >= the one
 * asked for (batch-granular: the broker does not decode records). A consumer is never
 * told an offset at or past the high watermark; with nothing to point at the answer is
 * offset -1, timestamp -1. A leader whose high watermark is not yet known in its own
 * leader epoch (it just took over) answers consumers OFFSET_NOT_AVAILABLE, retriable, as
 * Kafka does.
 */
import { errorFields, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, MAX_TIMESTAMP, type ListOffsetsPartitionResponse, type ListOffsetsRequest, type ListOffsetsResponse } from "@flotilla/protocol";
import { FlotillaError } from "@flotilla/common";
import type { ReplicaManager } from "./replica-manager.js";
import { requireItems } from "./validation.js";

export async function handleListOffsets(replicas: ReplicaManager, request: ListOffsetsRequest): Promise<ListOffsetsResponse> {
  requireItems(request.topics, "topics");
  request.topics.forEach((t, i) => requireItems(t.partitions, `topics[${i}].partitions`));
  const isConsumer = request.replicaId < 0;
  const topics = await Promise.all(
    request.topics.map(async (t) => ({
      name: t.name,
      partitions: await Promise.all(
        t.partitions.map(async ({ partition, timestamp }): Promise<ListOffsetsPartitionResponse> => {
          try {
            const p = replicas.partition(t.name, partition);
            if (!p.isLeader) throw new FlotillaError("NOT_LEADER_OR_FOLLOWER", `broker ${replicas.nodeId} is not the leader of ${p.key}`);
            // A leader that just took over may carry an old high watermark: answer "not yet"
            // (retriable) until it has advanced in this epoch, never a stale offset.
            if (isConsumer && !p.highWatermarkKnown) {
              throw new FlotillaError("OFFSET_NOT_AVAILABLE", `${p.key}: leader epoch ${p.leaderEpoch} has just begun on broker ${replicas.nodeId} and its high watermark (${p.highWatermark}) is not known yet; retry`);
            }
            const ok = (offset: number, ts: number): ListOffsetsPartitionResponse => ({ partition, errorCode: 0, errorMessage: "", timestamp: ts, offset, leaderEpoch: p.leaderEpoch });
            const visibleEnd = isConsumer ? p.highWatermark : p.log.logEndOffset;
            if (timestamp === EARLIEST_TIMESTAMP) return ok(p.log.logStartOffset, -1);
            if (timestamp === LATEST_TIMESTAMP) return ok(visibleEnd, -1);
            let found: { offset: number; timestamp: number } | undefined;
            if (timestamp === MAX_TIMESTAMP) found = await p.maxTimestampOffset();
            else if (timestamp >= 0) found = await p.log.offsetForTimestamp(timestamp);
            else throw new FlotillaError("INVALID_REQUEST", `timestamp ${timestamp} is neither a time nor one of -1, -2, -3`);
            if (!found || found.offset >= visibleEnd) return ok(-1, -1);
            return ok(found.offset, found.timestamp);
          } catch (err) {
            return { partition, ...errorFields(err), timestamp: -1, offset: -1, leaderEpoch: -1 };
          }
        }),
      ),
    })),
  );
  return { topics };
}

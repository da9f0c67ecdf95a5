/**
 * Fetch with long polling. A fetch answers at once when it has at least min_bytes, when
 * any partition has an error, or when max_wait_ms is 0; otherwise it parks in the
 * purgatory and reads again each time one of its partitions' high watermark moves, until
 * it has min_bytes or max_wait_ms has passed (then it answers with what there is).
 *
 * Consumers (replica_id -1) never see data at or past the high watermark; replicas
 * (replica_id >= 0) read up to the log end offset. A replica's fetch_offset is its log end
 * offset: the leader records it (Partition.updateFollowerFetchState, which may move the
 * HW and add the replica back to the ISR) before reading. Replica fetches also wake on
 * leader appends, not only on HW moves. Only the leader serves fetches; a
 * current_leader_epoch other than the leader's is fenced (FENCED_LEADER_EPOCH when older,
 * UNKNOWN_LEADER_EPOCH when newer; -1 skips the check). max_bytes bounds the response and
 * partition_max_bytes each partition, except that the first partition with data returns
 * at least one whole batch, so a consumer can always make progress (Kafka's rule).
 */
import { FlotillaError } from "@flotilla/common";
import { errorFields, type FetchPartitionResponse, type FetchRequest, type FetchResponse } from "@flotilla/protocol";
import type { ReplicaManager } from "./replica-manager.js";
import { requireItems, requireNonNegative } from "./validation.js";

export interface FetchLimits {
  /** fetch.max.bytes: cap on max_bytes. */
  readonly fetchMaxBytes: number;
  /** Cap on max_wait_ms, so a parked fetch always ends. */
  readonly fetchWaitMsMax: number;
}

/** Most reads one fetch may make while waiting (each needs a wake); a backstop to the time bound. */
const FETCH_ROUNDS_MAX = 10_000;

const EMPTY: Buffer = Buffer.alloc(0);

function validate(request: FetchRequest): void {
  requireItems(request.topics, "topics");
  requireNonNegative(request.maxWaitMs, "max_wait_ms");
  requireNonNegative(request.minBytes, "min_bytes");
  requireNonNegative(request.maxBytes, "max_bytes");
  request.topics.forEach((t, i) => {
    requireItems(t.partitions, `topics[${i}].partitions`);
    t.partitions.forEach((p, j) => requireNonNegative(p.partitionMaxBytes, `topics[${i}].partitions[${j}].partition_max_bytes`));
  });
}

interface Round {
  readonly response: FetchResponse;
  readonly bytes: number;
  readonly hasError: boolean;
  /** Sum of the partitions' high-watermark versions when the round began. */
  readonly version: number;
}

/** Suffix of the purgatory key replica fetches park on, woken by each leader append. */
export const REPLICA_WAKE_SUFFIX = "#replica";

function versionOf(replicas: ReplicaManager, request: FetchRequest): number {
  let v = 0;
  for (const t of request.topics) {
    for (const p of t.partitions) {
      try {
        const partition = replicas.partition(t.name, p.partition);
        v += partition.hwVersion;
        if (request.replicaId >= 0) v += partition.log.logEndOffset;
      } catch {
        // Unknown partitions count 0; a read reports them.
      }
    }
  }
  return v;
}

async function readRound(replicas: ReplicaManager, request: FetchRequest, limits: FetchLimits, firstRound: boolean): Promise<Round> {
  const version = versionOf(replicas, request);
  let budget = Math.min(request.maxBytes, limits.fetchMaxBytes);
  let bytes = 0;
  let hasError = false;
  const isConsumer = request.replicaId < 0;
  const topics: FetchResponse["topics"] = [];
  for (const t of request.topics) {
    const partitions: FetchPartitionResponse[] = [];
    for (const req of t.partitions) {
      let highWatermark = -1;
      let logStartOffset = -1;
      try {
        const p = replicas.partition(t.name, req.partition);
        if (!p.isLeader) throw new FlotillaError("NOT_LEADER_OR_FOLLOWER", `broker ${replicas.nodeId} is not the leader of ${p.key}`);
        p.checkLeaderEpoch(req.currentLeaderEpoch);
        if (!isConsumer && firstRound && req.fetchOffset <= p.log.logEndOffset) p.updateFollowerFetchState(request.replicaId, req.fetchOffset);
        highWatermark = p.highWatermark;
        logStartOffset = p.log.logStartOffset;
        const logEndOffset = p.log.logEndOffset;
        if (req.fetchOffset < logStartOffset || req.fetchOffset > logEndOffset) {
          throw new FlotillaError("OFFSET_OUT_OF_RANGE", `fetch offset ${req.fetchOffset} of ${p.key} is outside [${logStartOffset}, ${logEndOffset}]`);
        }
        const upTo = isConsumer ? highWatermark : logEndOffset;
        let records = EMPTY;
        if (req.fetchOffset < upTo && (budget > 0 || bytes === 0)) {
          const result = await p.log.read(req.fetchOffset, {
            maxBytes: Math.max(0, Math.min(req.partitionMaxBytes, budget)),
            maxOffsetExclusive: upTo,
            minOneBatch: bytes === 0,
          });
          records = result.records;
        }
        bytes += records.length;
        budget -= records.length;
        partitions.push({ partition: req.partition, errorCode: 0, errorMessage: "", highWatermark, logStartOffset, records });
      } catch (err) {
        hasError = true;
        partitions.push({ partition: req.partition, ...errorFields(err), highWatermark, logStartOffset, records: EMPTY });
      }
    }
    topics.push({ name: t.name, partitions });
  }
  return { response: { topics }, bytes, hasError, version };
}

export async function handleFetch(replicas: ReplicaManager, request: FetchRequest, limits: FetchLimits, signal?: AbortSignal): Promise<FetchResponse> {
  validate(request);
  const waitMs = Math.min(request.maxWaitMs, limits.fetchWaitMsMax);
  const deadline = performance.now() + waitMs;
  const keys = request.topics.flatMap((t) => t.partitions.map((p) => `${t.name}-${p.partition}`));
  if (request.replicaId >= 0) keys.push(...keys.map((k) => k + REPLICA_WAKE_SUFFIX));
  let round = await readRound(replicas, request, limits, true);
  for (let i = 0; i < FETCH_ROUNDS_MAX; i++) {
    if (round.hasError || round.bytes >= request.minBytes || request.minBytes === 0) return round.response;
    const remaining = deadline - performance.now();
    if (remaining <= 0) return round.response;
    // A high watermark that moved while we read would have woken nobody: read again now.
    if (versionOf(replicas, request) === round.version) {
      const reason = await replicas.purgatory.wait(keys, remaining, signal);
      // Not woken: nothing was appended since the read (timeout), the caller left, the
      // purgatory is full, or the broker is closing. The last read is the answer.
      if (reason !== "woken") return round.response;
    }
    round = await readRound(replicas, request, limits, false);
  }
  return round.response;
}

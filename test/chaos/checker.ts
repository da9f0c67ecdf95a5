/**
 * The chaos checker: a pure function from what a chaos run did and saw (its history) to
 * counts of safety violations and spans of unavailability. No I/O, no clock: the harness
 * records, this judges, and the unit test plants violations in synthetic histories.
 *
 * What it checks, in Kafka's terms:
 * - lost: an acknowledged send (acks=all) whose value is not found by the full re-read;
 * - duplicates: a value found more than once by the re-read (idempotence must prevent it);
 * - order violations: per key, acknowledged sends in send order (the per-key sequence) must
 *   sit at strictly increasing offsets of one partition;
 * - replica disagreements: a replica whose stored bytes below the high watermark differ from
 *   the first replica's of the same partition;
 * - unavailability windows: spans with no acknowledgement longer than a threshold.
 */

export type SendOutcome = "acked" | "failed" | "unknown";

export interface SendEvent {
  key: string;
  /** Unique over the run; encodes key and per-key sequence. */
  value: string;
  /** Position of this send among the sends of its key, 0-based, in the order they were issued. */
  keySequence: number;
  partition: number;
  outcome: SendOutcome;
  /** The acknowledged offset, when acked. */
  offset?: number;
  /** When send() was called and when its outcome was known (ms, any epoch). */
  sentAtMs: number;
  doneAtMs: number;
}

export interface ReadRecord {
  partition: number;
  offset: number;
  key: string;
  value: string;
}

export interface ReplicaLog {
  partition: number;
  nodeId: number;
  /** The high watermark the bytes were read up to. */
  highWatermark: number;
  /** Stored batch bytes from the log start up to the high watermark. */
  bytes: Uint8Array;
}

export interface History {
  runStartMs: number;
  runEndMs: number;
  sends: readonly SendEvent[];
  reads: readonly ReadRecord[];
  /** Empty when the replicas' bytes were not collected. */
  replicas: readonly ReplicaLog[];
}

export interface CheckerOptions {
  /** A gap with no acknowledgement longer than this is an unavailability window. */
  unavailabilityThresholdMs: number;
}

export interface UnavailabilityWindow {
  startMs: number;
  endMs: number;
  durationMs: number;
}

export interface CheckReport {
  counts: {
    sends: number;
    acked: number;
    failed: number;
    unknown: number;
    read: number;
    lost: number;
    duplicates: number;
    orderViolations: number;
    replicaDisagreements: number;
    replicasCompared: number;
    unavailabilityWindows: number;
  };
  lost: { key: string; value: string; partition: number; offset: number | undefined }[];
  /** Each value read more than once, with how often and where. */
  duplicates: { value: string; times: number; at: { partition: number; offset: number }[] }[];
  /** Each adjacent pair of a key's acknowledged sends whose positions do not increase. */
  orderViolations: { key: string; earlier: { value: string; partition: number; offset: number }; later: { value: string; partition: number; offset: number } }[];
  replicaDisagreements: { partition: number; nodeId: number; referenceNodeId: number; highWatermark: number; bytes: number; referenceBytes: number }[];
  unavailability: UnavailabilityWindow[];
  longestUnavailabilityMs: number;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function check(history: History, options: CheckerOptions): CheckReport {
  const acked = history.sends.filter((s) => s.outcome === "acked");

  // Where each value was read back (all places, to find duplicates).
  const readAt = new Map<string, { partition: number; offset: number }[]>();
  for (const r of history.reads) {
    let at = readAt.get(r.value);
    if (!at) readAt.set(r.value, (at = []));
    at.push({ partition: r.partition, offset: r.offset });
  }

  const lost = acked.filter((s) => !readAt.has(s.value)).map((s) => ({ key: s.key, value: s.value, partition: s.partition, offset: s.offset }));

  const duplicates = [...readAt]
    .filter(([, at]) => at.length > 1)
    .map(([value, at]) => ({ value, times: at.length, at }))
    .sort((a, b) => (a.value < b.value ? -1 : a.value > b.value ? 1 : 0));

  // Per key, acknowledged sends in send order must sit at increasing offsets of one partition.
  // A record's position is where the re-read found it (first copy), else where it was acked.
  const byKey = new Map<string, SendEvent[]>();
  for (const s of acked) {
    let list = byKey.get(s.key);
    if (!list) byKey.set(s.key, (list = []));
    list.push(s);
  }
  const orderViolations: CheckReport["orderViolations"] = [];
  for (const [key, list] of byKey) {
    list.sort((a, b) => a.keySequence - b.keySequence);
    let prev: { value: string; partition: number; offset: number } | undefined;
    for (const s of list) {
      const found = readAt.get(s.value)?.[0];
      const position = found ?? (s.offset !== undefined ? { partition: s.partition, offset: s.offset } : undefined);
      if (!position) continue; // lost and never acked at an offset: counted as lost, not as disorder
      const here = { value: s.value, ...position };
      if (prev && (here.partition !== prev.partition || here.offset <= prev.offset)) orderViolations.push({ key, earlier: prev, later: here });
      prev = here;
    }
  }

  // Replicas of one partition must hold identical bytes below the high watermark.
  const replicaDisagreements: CheckReport["replicaDisagreements"] = [];
  const byPartition = new Map<number, ReplicaLog[]>();
  for (const r of history.replicas) {
    let list = byPartition.get(r.partition);
    if (!list) byPartition.set(r.partition, (list = []));
    list.push(r);
  }
  for (const [partition, list] of byPartition) {
    const [reference, ...others] = list;
    if (!reference) continue;
    for (const r of others) {
      if (r.highWatermark !== reference.highWatermark || !bytesEqual(r.bytes, reference.bytes)) {
        replicaDisagreements.push({ partition, nodeId: r.nodeId, referenceNodeId: reference.nodeId, highWatermark: r.highWatermark, bytes: r.bytes.length, referenceBytes: reference.bytes.length });
      }
    }
  }

  // Gaps between acknowledgements (and from the start / to the end of the run).
  const ackTimes = acked.map((s) => s.doneAtMs).sort((a, b) => a - b);
  const marks = [history.runStartMs, ...ackTimes, history.runEndMs];
  const unavailability: UnavailabilityWindow[] = [];
  for (let i = 1; i < marks.length; i++) {
    const startMs = marks[i - 1]!;
    const endMs = marks[i]!;
    if (endMs - startMs > options.unavailabilityThresholdMs) unavailability.push({ startMs, endMs, durationMs: endMs - startMs });
  }

  return {
    counts: {
      sends: history.sends.length,
      acked: acked.length,
      failed: history.sends.filter((s) => s.outcome === "failed").length,
      unknown: history.sends.filter((s) => s.outcome === "unknown").length,
      read: history.reads.length,
      lost: lost.length,
      duplicates: duplicates.length,
      orderViolations: orderViolations.length,
      replicaDisagreements: replicaDisagreements.length,
      replicasCompared: history.replicas.length,
      unavailabilityWindows: unavailability.length,
    },
    lost,
    duplicates,
    orderViolations,
    replicaDisagreements,
    unavailability,
    longestUnavailabilityMs: Math.max(0, ...unavailability.map((w) => w.durationMs)),
  };
}
